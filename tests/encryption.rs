//! Encryption at rest, the error model and configuration validation,
//! checked against what D1 actually stores.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Every row of every table of every D1 shard, as one string.
async fn dump(h: &Harness) -> String {
    let mut out = String::new();
    for shard in h.shards().await {
        let tables = h
            .sql_on(&shard, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'", json!([]))
            .await;
        for t in tables {
            let name = t["name"].as_str().unwrap();
            let rows = h
                .sql_on(&shard, &format!("SELECT * FROM \"{name}\""), json!([]))
                .await;
            out.push_str(&format!("{shard}.{name}: {}\n", Value::Array(rows)));
        }
    }
    out
}

#[tokio::test]
async fn no_plaintext_reaches_d1_or_the_object_storage() {
    let dir = temp_dir("plaintext");
    let h = Harness::start(Options {
        persist: Some(dir.clone()),
        ..Default::default()
    });
    let u = User::new(&h, "secretive");
    // A webhook endpoint: its signing secret is shown once, then sealed.
    let ops = User {
        token: token_with_roles("ops", "Ops", &["admin"]),
        ..u.clone()
    };
    let (status, hook) = ops
        .call(
            Method::POST,
            "/v1/admin/webhooks",
            Some(json!({"url": "https://hooks.example.com/c", "enabled": false})),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let secret = hook["secret"]
        .as_str()
        .unwrap()
        .trim_start_matches("whsec_")
        .to_string();
    let (status, s) = u
        .call(
            Method::POST,
            "/v1/sessions",
            Some(json!({"title": "TITLE-MARKER-7q", "contact": {"name": "NAME-MARKER-3k", "email": "email-marker-9z@example.com"}})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(s["title"], "TITLE-MARKER-7q", "the API shows plaintext");
    let id = s["id"].as_str().unwrap();
    let (mut ws, _, _) = u.join(id, None).await;
    send_msg(&mut ws, "m1", "BODY-MARKER-1a").await;
    let seq = send_msg(&mut ws, "m2", "BODY-MARKER-2b").await["seq"]
        .as_u64()
        .unwrap();
    send_json(
        &mut ws,
        json!({"type": "edit", "seq": seq, "text": "EDITED-MARKER-4d"}),
    )
    .await;
    recv_type(&mut ws, "edited").await;
    let (_, page) = u
        .call(Method::GET, &format!("/v1/sessions/{id}/messages"), None)
        .await;
    assert_eq!(page["messages"][1]["text"], "EDITED-MARKER-4d");
    // A moderator's removal keeps the original for audit: sealed too.
    let removed = send_msg(&mut ws, "m3", "REMOVED-MARKER-5e").await["seq"].clone();
    let remove = format!("/v1/admin/sessions/{id}/remove");
    let (status, r) = ops
        .call(
            Method::POST,
            &remove,
            Some(json!({"seq": removed, "reason": "abuse"})),
        )
        .await;
    assert_eq!(status, 200, "{r}");

    // The session log, byte for byte (database and write-ahead log): it
    // holds the session (else the scan proves nothing), sealed.
    let bytes = object_storage_bytes(&dir);
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        contains(id) && contains("v1.k1."),
        "the scan sees the session's log"
    );
    for marker in ["BODY-MARKER", "EDITED-MARKER", "REMOVED-MARKER"] {
        assert!(
            !contains(marker),
            "{marker} is in the object storage in plaintext"
        );
    }

    h.replicated(id).await;
    let raw = dump(&h).await;
    // The scan saw this session's rows (else it proves nothing).
    for table in ["sessions", "messages", "message_edits"] {
        let lines: Vec<&str> = raw
            .lines()
            .filter(|l| l.contains(&format!(".{table}: ")))
            .collect();
        assert_eq!(lines.len(), 3, "{table} in every shard's dump");
        assert!(
            lines.iter().any(|l| l.contains(id)),
            "{table} has no row of the session: {lines:?}"
        );
    }
    let stored = h
        .sql("SELECT secret FROM webhook_endpoints", json!([]))
        .await;
    assert!(
        stored[0]["secret"].as_str().unwrap().starts_with("v1.k1."),
        "{stored:?}"
    );
    for marker in [
        "TITLE-MARKER",
        "NAME-MARKER",
        "email-marker",
        "BODY-MARKER",
        "EDITED-MARKER",
        secret.as_str(),
    ] {
        assert!(
            !raw.contains(marker),
            "{marker} is stored in plaintext:\n{raw}"
        );
    }
    // What is there instead: v1 envelopes under the active key, including
    // the edit history's copy of the old text.
    let bodies = h
        .session_sql(
            id,
            "SELECT body FROM messages WHERE session_id = ?1 AND deleted_at IS NULL",
            json!([id]),
        )
        .await;
    // (D1's copy of the removed message is a tombstone with no body.)
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies
        .iter()
        .all(|b| b["body"].as_str().unwrap().starts_with("v1.k1.")));
    let edits = h
        .session_sql(
            id,
            "SELECT body FROM message_edits WHERE session_id = ?1",
            json!([id]),
        )
        .await;
    assert_eq!(edits.len(), 1);
    assert!(edits[0]["body"].as_str().unwrap().starts_with("v1.k1."));
    let row = &h
        .session_sql(
            id,
            "SELECT title, contact_email FROM sessions WHERE id = ?1",
            json!([id]),
        )
        .await[0];
    assert!(row["title"].as_str().unwrap().starts_with("v1.k1."));
    assert!(row["contact_email"].as_str().unwrap().starts_with("v1.k1."));
}

#[tokio::test]
async fn damaged_rows_read_as_unreadable_while_the_rest_of_the_page_reads_fine() {
    let dir = temp_dir("damaged");
    let opts = Options {
        persist: Some(dir.clone()),
        ..Default::default()
    };
    let first = Harness::start(opts.clone());
    let u = User::new(&first, "victim");
    let s = u.create_session("TITLE").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    for i in 1..=5 {
        send_msg(&mut ws, &format!("t{i}"), &format!("text {i}")).await;
    }
    drop(ws);
    assert_eq!(first.terminate(), Some(0));
    // Damage the session log itself, where history is served from.
    let body = |seq: u64| {
        object_sql(
            &dir,
            &s,
            "SELECT body FROM messages WHERE seq = ?",
            json!([seq]),
        )[0]["body"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // 2: one ciphertext character flipped.
    let mut b2: Vec<char> = body(2).chars().collect();
    let i = b2.len() - 3;
    b2[i] = if b2[i] == 'A' { 'B' } else { 'A' };
    let b2: String = b2.into_iter().collect();
    // 4: the (valid) ciphertext of row 3 copied over it.
    let b3 = body(3);
    // 5: an unknown key id.
    let b5 = body(5).replacen("v1.k1.", "v1.k9.", 1);
    for (seq, b) in [(2, b2), (4, b3), (5, b5)] {
        object_sql(
            &dir,
            &s,
            "UPDATE messages SET body = ? WHERE seq = ?",
            json!([b, seq]),
        );
    }
    let h = Harness::start(opts);
    let u = User {
        base: h.url.clone(),
        ..u
    };
    h.session_sql(
        &s,
        "UPDATE sessions SET title = ?1 WHERE id = ?2",
        json!([format!("v1.k1.{}", "A".repeat(40)), s]),
    )
    .await;

    let (status, page) = u
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(status, 200, "{page}");
    let m = page["messages"].as_array().unwrap();
    let view: Vec<(String, Value)> = m
        .iter()
        .map(|m| {
            (
                m["text"].as_str().unwrap().to_string(),
                m["unreadable"].clone(),
            )
        })
        .collect();
    assert_eq!(
        view,
        vec![
            ("text 1".to_string(), Value::Null),
            ("".to_string(), json!("ciphertext_tampered")),
            ("text 3".to_string(), Value::Null),
            ("".to_string(), json!("ciphertext_tampered")),
            ("".to_string(), json!("ciphertext_unknown_key")),
        ]
    );
    // The socket replay survives it too.
    let (_, _, replayed) = u.join(&s, Some(0)).await;
    assert_eq!(replayed.len(), 5);
    assert_eq!(replayed[4]["unreadable"], "ciphertext_unknown_key");
    // A damaged title is null with a reason; the session still reads and lists.
    let (status, got) = u
        .call(Method::GET, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["title"], Value::Null);
    assert_eq!(
        got["unreadable"],
        json!([{"field": "title", "code": "ciphertext_tampered"}])
    );
    let (status, list) = u.call(Method::GET, "/v1/sessions", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["sessions"][0]["id"], s.as_str());
}

async fn count_on(h: &Harness, prefix: &str) -> u64 {
    let like = format!("{prefix}%");
    let q = "SELECT
        (SELECT count(*) FROM messages WHERE body LIKE ?1) +
        (SELECT count(*) FROM message_edits WHERE body LIKE ?1) +
        (SELECT count(*) FROM polls WHERE options LIKE ?1) +
        (SELECT count(*) FROM sessions WHERE title LIKE ?1) +
        (SELECT count(*) FROM sessions WHERE contact_name LIKE ?1) +
        (SELECT count(*) FROM sessions WHERE contact_email LIKE ?1) AS n";
    h.sql_sum(q, json!([like])).await as u64
}

async fn all_texts(u: &User, sessions: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for s in sessions {
        let (_, got) = u
            .call(Method::GET, &format!("/v1/sessions/{s}"), None)
            .await;
        assert!(got.get("unreadable").is_none(), "{got}");
        out.push(got["title"].as_str().unwrap().to_string());
        out.push(got["contact"]["email"].as_str().unwrap().to_string());
        let (_, page) = u
            .call(
                Method::GET,
                &format!("/v1/sessions/{s}/messages?limit=100"),
                None,
            )
            .await;
        for m in page["messages"].as_array().unwrap() {
            assert!(m.get("unreadable").is_none(), "{m}");
            out.push(m["text"].as_str().unwrap().to_string());
            if let Some(p) = m.get("poll") {
                out.push(p["options"].to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn rotation_moves_every_row_to_the_new_key_and_resumes_after_interruption() {
    let dir = temp_dir("rotate");
    let first = Harness::start(Options {
        persist: Some(dir.clone()),
        ..Default::default()
    });
    let u = User::new(&first, "rotator");
    let mut sessions = Vec::new();
    for i in 0..3 {
        let (status, s) = u
            .call(
                Method::POST,
                "/v1/sessions",
                Some(json!({"title": format!("title {i}"), "contact": {"name": "Ann", "email": format!("ann{i}@example.com")}})),
            )
            .await;
        assert_eq!(status, 201);
        let id = s["id"].as_str().unwrap().to_string();
        let (mut ws, _, _) = u.join(&id, None).await;
        for j in 0..10 {
            send_msg(&mut ws, &format!("r{j}"), &format!("message {i}.{j}")).await;
        }
        // A poll: its options are sealed too.
        let poll = json!({"options": [format!("yes {i}"), format!("no {i}")]});
        send_json(
            &mut ws,
            json!({"type": "send", "client_id": "rp", "text": format!("poll {i}"), "poll": poll}),
        )
        .await;
        recv_type(&mut ws, "ack").await;
        send_json(
            &mut ws,
            json!({"type": "edit", "seq": 1, "text": format!("edited {i}")}),
        )
        .await;
        recv_type(&mut ws, "edited").await;
        first.replicated(&id).await;
        sessions.push(id);
    }
    let ops = User {
        token: token_with_roles("ops", "Ops", &["admin"]),
        ..u.clone()
    };
    let (status, hook) = ops
        .call(
            Method::POST,
            "/v1/admin/webhooks",
            Some(json!({"url": "https://hooks.example.com/r", "enabled": false})),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    // An assistant profile with two providers' API keys, sealed.
    let keyed = json!({"chain": [
        {"provider": "openai", "api_key": "sk-rotate-me"},
        {"provider": "anthropic", "api_key": "sk-rotate-me-too"},
    ]});
    let (status, p) = ops
        .call(Method::PUT, "/v1/admin/profiles/keyed", Some(keyed))
        .await;
    assert_eq!(status, 201, "{p}");
    // A removed message: its original, kept for audit in the session log,
    // is sealed too (and D1 keeps no text of it).
    let remove = format!("/v1/admin/sessions/{}/remove", sessions[0]);
    let (status, r) = ops
        .call(
            Method::POST,
            &remove,
            Some(json!({"seq": 2, "reason": "spam"})),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    first.replicated(&sessions[0]).await;
    let before = all_texts(&u, &sessions).await;
    let total = count_on(&first, "v1.k1.").await;
    assert_eq!(
        total,
        3 * 3 + 3 * 11 - 1 + 3 + 3,
        "3 sessions × 3 fields, 33 messages but one removed, 3 edits, 3 polls"
    );
    assert_eq!(first.terminate(), Some(0));

    // Add k2 and make it active: old rows still read.
    let rotate_vars = vec![
        ("ENCRYPTION_KEYS".to_string(), format!("{KEY_K1},{KEY_K2}")),
        ("ENCRYPTION_ACTIVE_KEY_ID".to_string(), "k2".to_string()),
    ];
    let second = Harness::start(Options {
        persist: Some(dir.clone()),
        vars: rotate_vars.clone(),
        ..Default::default()
    });
    let u = User {
        base: second.url.clone(),
        ..u
    };
    assert_eq!(all_texts(&u, &sessions).await, before);

    let admin = User {
        token: token_with_roles("ops", "Ops", &["admin"]),
        ..u.clone()
    };
    let path = "/v1/admin/maintenance/reencrypt";
    assert_eq!(
        u.call(Method::POST, path, None).await.0,
        404,
        "not for non-admins"
    );

    // One partial batch, then the run is "interrupted" (its cursor lost).
    let (status, r) = admin
        .call(Method::POST, &format!("{path}?batch=10"), None)
        .await;
    assert_eq!(status, 200, "{r}");
    // The session objects' logs come first: 10 of the first session's 13
    // bodies (11 messages, 1 edit, 1 poll), and the cursor comes back to it.
    assert_eq!(
        (r["rotated"].as_u64(), r["done"].as_bool()),
        (Some(10), Some(false)),
        "{r}"
    );
    assert!(
        r["next_cursor"].as_str().unwrap().starts_with("objects:"),
        "{r}"
    );
    let (_, r) = admin
        .call(
            Method::POST,
            &format!(
                "{path}?batch=10&cursor={}",
                r["next_cursor"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(r["rotated"], 10);
    // D1 gets the objects' re-sealed rows by replication.
    for s in &sessions {
        second.replicated(s).await;
    }
    let halfway = count_on(&second, "v1.k2.").await;
    assert!(
        halfway > 0 && halfway < total,
        "halfway: {halfway} of {total}"
    );
    assert_eq!(
        all_texts(&u, &sessions).await,
        before,
        "mixed keys read fine"
    );

    // Starting again from scratch finishes the job.
    let mut cursor: Option<String> = None;
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls < 50);
        let q = match &cursor {
            Some(c) => format!("{path}?batch=7&cursor={c}"),
            None => format!("{path}?batch=7"),
        };
        let (status, r) = admin.call(Method::POST, &q, None).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["unreadable"], json!([]));
        assert_eq!(r["active_key"], "k2");
        if r["done"] == true {
            break;
        }
        cursor = r["next_cursor"].as_str().map(String::from);
    }
    for s in &sessions {
        second.replicated(s).await;
    }
    assert_eq!(count_on(&second, "v1.k2.").await, total);
    assert_eq!(count_on(&second, "v1.k1.").await, 0);
    // The webhook endpoint's secret, too (after the home shard's rows).
    let secrets = second
        .sql("SELECT secret FROM webhook_endpoints", json!([]))
        .await;
    assert_eq!(secrets.len(), 1);
    assert!(
        secrets[0]["secret"].as_str().unwrap().starts_with("v1.k2."),
        "{secrets:?}"
    );
    // And the profile's keys, both of them.
    let spec = second
        .sql(
            "SELECT spec FROM assistant_profiles WHERE name = 'keyed'",
            json!([]),
        )
        .await;
    let spec = spec[0]["spec"].as_str().unwrap();
    assert_eq!(
        (
            spec.matches("\"v1.k2.").count(),
            spec.matches("v1.k1.").count()
        ),
        (2, 0),
        "{spec}"
    );
    assert!(!spec.contains("sk-rotate-me"), "{spec}");
    assert_eq!(all_texts(&u, &sessions).await, before);
    let (status, body) = admin
        .call(Method::POST, &format!("{path}?cursor=nope"), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    assert_eq!(second.terminate(), Some(0));
    // The session logs themselves hold nothing under k1 either.
    for s in &sessions {
        let left = object_sql(
            &dir,
            s,
            "SELECT (SELECT count(*) FROM messages WHERE body LIKE 'v1.k1.%')
                  + (SELECT count(*) FROM message_edits WHERE body LIKE 'v1.k1.%')
                  + (SELECT count(*) FROM polls WHERE options LIKE 'v1.k1.%')
                  + (SELECT count(*) FROM removals WHERE body LIKE 'v1.k1.%') AS n,
                    (SELECT count(*) FROM messages WHERE body LIKE 'v1.k2.%')
                  + (SELECT count(*) FROM removals WHERE body LIKE 'v1.k2.%') AS k2",
            json!([]),
        );
        assert_eq!(
            (left[0]["n"].as_i64(), left[0]["k2"].as_i64()),
            (Some(0), Some(11)),
            "{s}"
        );
    }

    // k1 can now be retired, once search's key is derived from another
    // entry (README, key rotation runbook): a keyring without the entry
    // SEARCH_KEY_ID names is refused.
    let third = Harness::start(Options {
        persist: Some(dir),
        vars: vec![
            ("ENCRYPTION_KEYS".to_string(), KEY_K2.to_string()),
            ("ENCRYPTION_ACTIVE_KEY_ID".to_string(), "k2".to_string()),
            ("SEARCH_KEY_ID".to_string(), "k2".to_string()),
        ],
        ..Default::default()
    });
    let u = User {
        base: third.url.clone(),
        ..u
    };
    assert_eq!(all_texts(&u, &sessions).await, before);
    let ops = User {
        base: third.url.clone(),
        ..ops
    };
    let record = format!("/v1/admin/sessions/{}/moderation", sessions[0]);
    let (status, r) = ops.call(Method::GET, &record, None).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["removals"][0]["original"], "message 0.1", "{r}");
}

/// The `arguments` and `result` of every function call D1 holds for `s`.
async fn sealed_calls(h: &Harness, s: &str) -> Vec<String> {
    h.session_sql(
        s,
        "SELECT arguments, result FROM tool_calls WHERE session_id = ?1",
        json!([s]),
    )
    .await
    .iter()
    .flat_map(|r| [&r["arguments"], &r["result"]])
    .map(|v| v.as_str().unwrap().to_string())
    .collect()
}

#[tokio::test]
async fn rotation_re_seals_the_assistants_function_calls() {
    use common::llm::{runtime_vars, until_reply};
    let dir = temp_dir("rotate-tools");
    let model = unique("rt");
    let first = Harness::start(Options {
        persist: Some(dir.clone()),
        vars: runtime_vars(&model, &[]),
        ..Default::default()
    });
    let ops = User::admin(&first, "ops");
    let profile = json!({"chain": [{"provider": "openai"}],
        "tools": [{"builtin": "escalate_to_human"}]});
    let (status, body) = ops
        .call(Method::PUT, "/v1/admin/profiles/desk", Some(profile))
        .await;
    assert_eq!(status, 201, "{body}");
    let user = User::new(&first, "asker");
    let (status, body) = user
        .call(
            Method::POST,
            "/v1/sessions",
            Some(json!({"profile": "desk"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let s = body["id"].as_str().unwrap().to_string();
    first
        .script(
            &model,
            json!([{"tool_calls": [{"name": "escalate_to_human", "arguments": {"why": "asked"}}]}]),
        )
        .await;
    let (mut ws, _, _) = user.join(&s, None).await;
    send_msg(&mut ws, "q1", "a person, please").await;
    until_reply(&mut ws).await;
    first.replicated(&s).await;
    let sealed = sealed_calls(&first, &s).await;
    assert_eq!(sealed.len(), 2, "one call: its arguments and result");
    assert!(sealed.iter().all(|v| v.starts_with("v1.k1.")), "{sealed:?}");
    assert_eq!(first.terminate(), Some(0));

    let mut vars = runtime_vars(&model, &[]);
    vars.push(("ENCRYPTION_KEYS".into(), format!("{KEY_K1},{KEY_K2}")));
    vars.push(("ENCRYPTION_ACTIVE_KEY_ID".into(), "k2".into()));
    let second = Harness::start(Options {
        persist: Some(dir),
        vars,
        ..Default::default()
    });
    let ops = User {
        base: second.url.clone(),
        ..ops
    };
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let q = match &cursor {
            Some(c) => format!("/v1/admin/maintenance/reencrypt?cursor={c}"),
            None => "/v1/admin/maintenance/reencrypt".to_string(),
        };
        let (status, r) = ops.call(Method::POST, &q, None).await;
        assert_eq!(status, 200, "{r}");
        if r["done"] == true {
            break;
        }
        cursor = r["next_cursor"].as_str().map(String::from);
    }
    // The log's rows are re-sealed, and D1 gets them by replication.
    second.replicated(&s).await;
    let sealed = sealed_calls(&second, &s).await;
    assert!(sealed.iter().all(|v| v.starts_with("v1.k2.")), "{sealed:?}");
    let (status, view) = ops
        .call(Method::GET, &format!("/v1/admin/sessions/{s}"), None)
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["tools"][0]["arguments"], json!({"why": "asked"}));
    assert_eq!(view["tools"][0]["is_error"], false);
}

#[tokio::test]
async fn internal_errors_return_a_generic_body_and_log_the_detail() {
    let h = Harness::start(Options {
        no_migrations: true,
        ..Default::default()
    });
    let u = User::new(&h, "unlucky");
    let res = u
        .req(Method::POST, "/v1/sessions")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 500);
    let header_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal");
    assert_eq!(body["error"]["request_id"], header_id.as_str());
    let text = body.to_string();
    for leak in ["no such table", "D1", "SQLITE", "sessions", "at "] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
    // The log line for that request has the detail.
    let log = h.stop_and_read_log();
    let line = log
        .lines()
        .find(|l| l.contains(&header_id) && l.contains("\"event\":\"http\""))
        .unwrap_or_else(|| panic!("no log line for {header_id}:\n{log}"));
    assert!(line.contains("no such table"), "{line}");
}

#[tokio::test]
async fn each_invalid_variable_is_named_and_chat_is_refused() {
    // Each invalid value is distinctive, so finding it in a response can
    // only mean it leaked.
    let cases = [
        ("ENCRYPTION_KEYS", ""),
        ("ENCRYPTION_KEYS", "k1:tooshortSECRETvalue7q"),
        ("ENCRYPTION_ACTIVE_KEY_ID", "kZZ9unknownkey"),
        ("JWT_HS256_SECRET", "shortSECRET8x"),
        ("MAX_MESSAGE_CHARS", "-777777"),
        ("LOG_LEVEL", "loudLEVELxyz"),
    ];
    for (var, value) in cases {
        let h = Harness::start(Options {
            vars: vec![(var.to_string(), value.to_string())],
            ..Default::default()
        });
        let (status, _, ready) = get_json(&h.url, "/readyz").await;
        assert_eq!(status, 503, "{var}={value}: {ready}");
        assert_eq!(ready["checks"]["config"]["code"], "config_invalid");
        assert_eq!(
            ready["checks"]["config"]["variable"], var,
            "{var}={value}: {ready}"
        );
        let u = User::new(&h, "nobody");
        let (status, refused) = u.call(Method::POST, "/v1/sessions", Some(json!({}))).await;
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (503, Some("unavailable")),
            "{var}"
        );
        // Values never appear in what readyz (or the refusal) says.
        if !value.is_empty() {
            for body in [&ready, &refused] {
                assert!(!body.to_string().contains(value), "{var} leaked: {body}");
            }
        }
    }
}
