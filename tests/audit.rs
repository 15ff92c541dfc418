//! Security events and the admin audit trail (`src/audit.rs`): every admin
//! action is in `GET /v1/admin/audit` (who, what, on what, how it ended),
//! paginated and filterable, and every refusal and action is a `security`
//! log line with a pseudonym, never a raw id.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Every page of the trail with `query`, following `next_cursor`.
async fn all_pages(a: &User, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/admin/audit?{query}&cursor={c}"),
            None => format!("/v1/admin/audit?{query}"),
        };
        let (status, body) = a.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{body}");
        out.extend(body["entries"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn every_admin_action_is_in_the_trail_and_every_refusal_is_a_security_event() {
    let h = Harness::start(Options::default());
    let ann = User::admin(&h, "ann");
    let bob = User::admin(&h, "bob");
    let user = User::new(&h, "cus");
    let s = user.create_session("help").await;

    // Ann works the session and rotates keys; Bob manages a webhook.
    for verb in ["escalate", "claim"] {
        let (st, body) = ann
            .call(
                Method::POST,
                &format!("/v1/admin/sessions/{s}/{verb}"),
                None,
            )
            .await;
        assert_eq!(st, 200, "{verb}: {body}");
    }
    let (st, _) = ann
        .call(Method::GET, &format!("/v1/admin/sessions/{s}"), None)
        .await;
    assert_eq!(st, 200);
    let (st, _) = ann
        .call(
            Method::POST,
            "/v1/admin/maintenance/reencrypt?batch=1",
            None,
        )
        .await;
    assert_eq!(st, 200);
    let (st, hook) = bob
        .call(
            Method::POST,
            "/v1/admin/webhooks",
            Some(json!({"url": "https://hooks.example.com/x"})),
        )
        .await;
    assert_eq!(st, 201, "{hook}");
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let (st, _) = bob
        .call(
            Method::DELETE,
            &format!("/v1/admin/webhooks/{hook_id}"),
            None,
        )
        .await;
    assert_eq!(st, 204);
    // A refused admin action is audited too, with its status.
    let (st, _) = bob
        .call(Method::POST, "/v1/admin/sessions/s_nope/claim", None)
        .await;
    assert!(st == 404 || st == 400, "{st}");

    // Not admins: never audited, and the trail is hidden from them.
    let (st, _) = user.call(Method::GET, "/v1/admin/audit", None).await;
    assert_eq!(st, 404);
    // Refusals of every kind.
    let res = http()
        .get(format!("{}/v1/sessions", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = http()
        .get(format!("{}/v1/sessions", h.url))
        .header("origin", "https://evil.example")
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let (st, body) = refused_upgrade(&h.ws_url(&format!("/v1/sessions/{s}/ws?ticket=bogus"))).await;
    assert_eq!(st, 401, "{body}");
    let ticket_code = body["error"]["code"].as_str().unwrap().to_string();
    assert!(ticket_code.starts_with("ticket_"), "{ticket_code}");

    // The entries are written after each response: wait for all seven
    // (Ann: escalate, claim, read, reencrypt; Bob: create, delete, claim).
    let deadline = Instant::now() + Duration::from_secs(15);
    let entries = loop {
        let all = all_pages(&ann, "limit=2").await;
        let mine: Vec<Value> = all
            .into_iter()
            .filter(|e| e["action"] != "admin.audit")
            .collect();
        if mine.len() >= 7 || Instant::now() > deadline {
            break mine;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let seen: Vec<(String, String, Option<String>, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["actor_id"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
                e["target"].as_str().map(str::to_owned),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let has = |actor: &str, action: &str, target: Option<&str>, status: u64| {
        seen.iter().any(|(a, act, t, st)| {
            a == actor && act == action && t.as_deref() == target && *st == status
        })
    };
    assert!(has(&ann.id, "admin.escalate", Some(&s), 200), "{seen:?}");
    assert!(has(&ann.id, "admin.claim", Some(&s), 200), "{seen:?}");
    assert!(has(&ann.id, "admin.session", Some(&s), 200), "{seen:?}");
    assert!(has(&ann.id, "admin.reencrypt", None, 200), "{seen:?}");
    assert!(has(&bob.id, "admin.webhooks.create", None, 201), "{seen:?}");
    assert!(
        has(&bob.id, "admin.webhooks.delete", Some(&hook_id), 204),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(a, act, _, st)| a == &bob.id && act == "admin.claim" && *st >= 400),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|(a, ..)| a == &user.id),
        "users are not audited"
    );
    // Newest first, each entry once across pages of two.
    let ats: Vec<i64> = entries.iter().map(|e| e["at"].as_i64().unwrap()).collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]), "{ats:?}");
    let ids: HashSet<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), entries.len());
    for e in &entries {
        assert_eq!(e["level"], "admin");
        assert!(e["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    }

    // Filters.
    let claims = all_pages(&ann, "action=admin.claim").await;
    assert_eq!(claims.len(), 2, "{claims:?}");
    let bobs = all_pages(&ann, &format!("actor={}", bob.id)).await;
    assert_eq!(bobs.len(), 3, "{bobs:?}");
    assert!(bobs.iter().all(|e| e["actor_id"] == bob.id.as_str()));
    // Bad input.
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=201", "invalid_limit"),
        ("cursor=junk", "invalid_cursor"),
        ("action=Admin%20claim", "invalid_filter"),
    ] {
        let (st, body) = ann
            .call(Method::GET, &format!("/v1/admin/audit?{query}"), None)
            .await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}: {body}"
        );
    }

    // The log: a security line per refusal and per action, by kind, with
    // pseudonyms only.
    let log = h.stop_and_read_log();
    let security: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["event"] == "security")
        .collect();
    let kinds: HashSet<&str> = security.iter().filter_map(|l| l["kind"].as_str()).collect();
    for kind in [
        "admin_action",
        "key_rotation",
        "auth_failed",
        "origin_refused",
        "ticket_refused",
    ] {
        assert!(kinds.contains(kind), "no {kind} line: {kinds:?}");
    }
    let rotation = security
        .iter()
        .find(|l| l["kind"] == "key_rotation")
        .unwrap();
    assert_eq!(rotation["route"], "admin.reencrypt");
    assert!(rotation["user"].as_str().is_some_and(|u| !u.is_empty()));
    for raw in [&ann.id, &bob.id, &user.id] {
        assert!(
            !security
                .iter()
                .any(|l| l.to_string().contains(raw.as_str())),
            "a raw user id in a security line"
        );
    }
}

/// Entries older than `AUDIT_RETENTION_DAYS` are deleted as new ones are
/// written; younger ones stay.
#[tokio::test]
async fn the_trail_keeps_entries_for_the_retention_period() {
    let h = Harness::start(Options {
        vars: vec![("AUDIT_RETENTION_DAYS".into(), "1".into())],
        ..Default::default()
    });
    let day = 86_400_000;
    for (id, age) in [
        ("au_000000000000000000000001", 2 * day),
        ("au_000000000000000000000002", day / 2),
    ] {
        h.sql(
            "INSERT INTO audit_log (id, at, actor_id, level, action, method, target, status, request_id) \
             VALUES (?1, ?2, 'old-admin', 'admin', 'admin.sessions', 'GET', NULL, 200, 'r')",
            json!([id, now_ms() - age]),
        )
        .await;
    }
    let ann = User::admin(&h, "ann");
    let (st, _) = ann.call(Method::GET, "/v1/admin/sessions", None).await;
    assert_eq!(st, 200);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ids: Vec<Value> = h
            .sql("SELECT id, actor_id FROM audit_log ORDER BY at", json!([]))
            .await;
        let written = ids.iter().any(|r| r["actor_id"] == ann.id.as_str());
        if written {
            let kept: Vec<&str> = ids.iter().map(|r| r["id"].as_str().unwrap()).collect();
            assert!(!kept.contains(&"au_000000000000000000000001"), "{kept:?}");
            assert!(kept.contains(&"au_000000000000000000000002"), "{kept:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the entry was never written");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
