//! D1 shards (src/shards.rs) against the real worker with the three shards
//! wrangler.toml configures locally: sessions spread over every shard and
//! stay in theirs, listings and metrics see every shard, per-user caps hold
//! across shards, and readiness names a shard it cannot reach.

mod common;

use common::*;
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};

/// The shards holding a session's row, asked of each database directly.
async fn holders(h: &Harness, s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for shard in h.shards().await {
        let n = h
            .sql_on(
                &shard,
                "SELECT count(*) AS n FROM sessions WHERE id = ?1",
                json!([s]),
            )
            .await[0]["n"]
            .as_i64()
            .unwrap();
        if n > 0 {
            out.push(shard);
        }
    }
    out
}

#[tokio::test]
async fn sessions_spread_over_every_shard_and_are_listed_and_counted_from_all() {
    let h = Harness::start(Options {
        vars: vec![("METRICS_TOKEN".into(), "metrics-token-0123456789".into())],
        ..Default::default()
    });
    let shards = h.shards().await;
    assert_eq!(shards, ["DB", "DB_SHARD_1", "DB_SHARD_2"]);
    let u = User::new(&h, "spread");
    // Session ids are random: create until every shard has one (60 tries
    // leave a shard empty with odds of about 1 in 10^10).
    let mut by_shard: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut sessions = Vec::new();
    while by_shard.len() < shards.len() {
        assert!(
            sessions.len() < 60,
            "sessions never reached every shard: {by_shard:?}"
        );
        let s = u
            .create_session(&format!("spread {}", sessions.len()))
            .await;
        let held = holders(&h, &s).await;
        assert_eq!(held.len(), 1, "{s} is in exactly one shard: {held:?}");
        by_shard.entry(held[0].clone()).or_default().push(s.clone());
        sessions.push(s);
    }
    // Each session's object names the shard the Worker put it in, and its
    // messages replicate there and nowhere else.
    for (shard, ids) in &by_shard {
        let s = &ids[0];
        assert_eq!(&h.shard_of(s).await, shard);
        let (mut ws, _, _) = u.join(s, None).await;
        send_msg(&mut ws, "m1", &format!("hello {shard}")).await;
        h.replicated(s).await;
        let rows = h
            .sql_all("SELECT seq FROM messages WHERE session_id = ?1", json!([s]))
            .await;
        let here = h
            .sql_on(
                shard,
                "SELECT seq FROM messages WHERE session_id = ?1",
                json!([s]),
            )
            .await;
        assert_eq!((rows.len(), here.len()), (1, 1), "{shard}: {rows:?}");
    }

    // The user's list, in pages of 2: every session once, newest activity
    // first, across shards.
    let mut listed: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/sessions?limit=2&cursor={c}"),
            None => "/v1/sessions?limit=2".to_string(),
        };
        let (status, page) = u.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        listed.extend(page["sessions"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let ids: Vec<&str> = listed.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), sessions.len(), "{ids:?}");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), sessions.len());
    let keys: Vec<(i64, &str)> = listed
        .iter()
        .map(|s| (s["updated_at"].as_i64().unwrap(), s["id"].as_str().unwrap()))
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] > w[1]),
        "keyset order: {keys:?}"
    );

    // The admin listing of this owner: the same sessions.
    let admin = User {
        token: token_with_roles("shard-admin", "Admin", &["admin"]),
        ..u.clone()
    };
    let (status, body) = admin
        .call(
            Method::GET,
            &format!("/v1/admin/sessions?owner={}&limit=200", u.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sessions"].as_array().unwrap().len(), sessions.len());
    // And the admin view of one in a non-home shard reads its own shard.
    let far = &by_shard["DB_SHARD_2"][0];
    let (status, view) = admin
        .call(Method::GET, &format!("/v1/admin/sessions/{far}"), None)
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["session"]["id"], far.as_str());

    // /metrics adds every shard up: the sessions gauge and the message
    // counter (kept by each shard's triggers) count all of them.
    let samples = h.metrics("metrics-token-0123456789").await;
    let total = |name: &str| -> f64 {
        samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| *v)
            .sum()
    };
    assert_eq!(total("confab_sessions"), sessions.len() as f64);
    assert_eq!(total("confab_messages_total"), shards.len() as f64);
}

#[tokio::test]
async fn the_daily_session_cap_holds_for_concurrent_creates_across_shards() {
    let h = Harness::start(Options {
        vars: vec![("MAX_SESSIONS_PER_USER_PER_DAY".into(), "4".into())],
        ..Default::default()
    });
    let u = User::new(&h, "capped");
    // Ten at once: they land in different shards, and the cap is counted
    // in one place (the home shard), so exactly four get through.
    let creates = (0..10).map(|i| {
        let u = u.clone();
        async move {
            u.call(
                Method::POST,
                "/v1/sessions",
                Some(json!({"title": format!("cap {i}")})),
            )
            .await
        }
    });
    let results = join_all(creates).await;
    let created: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    let refused = results
        .iter()
        .filter(|(s, b)| *s == 429 && b["error"]["code"] == "session_quota_exceeded")
        .count();
    assert_eq!((created.len(), refused), (4, 6), "{results:?}");
    let stored = h
        .sql_sum(
            "SELECT count(*) AS n FROM sessions WHERE owner_id = ?1",
            json!([u.id]),
        )
        .await;
    assert_eq!(stored, 4, "no row for a refused create");
}

#[tokio::test]
async fn readiness_names_a_shard_it_cannot_reach() {
    let h = Harness::start(Options {
        omit_bindings: vec!["DB_SHARD_2".into()],
        ..Default::default()
    });
    let (status, _, ready) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["checks"]["d1"]["ok"], false, "{ready}");
    // Which one is the operator's to read in the log; clients see no detail.
    assert!(!ready.to_string().contains("DB_SHARD_2"), "{ready}");
    let log = h.stop_and_read_log();
    let line = log
        .lines()
        .find(|l| l.contains("readyz_check_failed") && l.contains("\"d1\""))
        .unwrap_or_else(|| panic!("no readiness failure logged:\n{log}"));
    assert!(line.contains("DB_SHARD_2"), "{line}");
}
