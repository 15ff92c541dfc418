//! The edge-local session log and its replication to D1, against D1 far
//! away (`--d1-latency-ms`), D1 down (the control endpoint's `/d1/fail`
//! and `/d1/recover`), and the runtime killed with SIGKILL before and
//! during a flush. Acks never wait for D1; D1 catches up on its own, with
//! every change exactly once.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// D1's copy of a session's messages: (seq, client_id), in seq order.
async fn d1_messages(h: &Harness, s: &str) -> Vec<(u64, String)> {
    h.session_sql(
        s,
        "SELECT seq, client_id FROM messages WHERE session_id = ?1 ORDER BY seq",
        json!([s]),
    )
    .await
    .iter()
    .map(|r| {
        (
            r["seq"].as_u64().unwrap(),
            r["client_id"].as_str().unwrap_or_default().to_string(),
        )
    })
    .collect()
}

fn numbered(prefix: &str, n: u64) -> Vec<(u64, String)> {
    (1..=n).map(|i| (i, format!("{prefix}{i}"))).collect()
}

#[tokio::test]
async fn acks_never_wait_for_a_far_away_d1() {
    let h = Harness::start(Options {
        d1_latency_ms: Some(1000),
        ..Default::default()
    });
    let (status, _, ready) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let d1_ms = ready["checks"]["d1"]["latency_ms"].as_u64().unwrap();
    assert!(d1_ms >= 1000, "readyz's D1 query took {d1_ms} ms");
    let u = User::new(&h, "far");
    let s = u.create_session("far away").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    // Each ack comes from the local commit: well inside one D1 round trip.
    for i in 1..=5 {
        let started = Instant::now();
        send_msg(&mut ws, &format!("f{i}"), "hello from afar").await;
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1000), "ack {i} took {took:?}");
    }
    // D1 gets them all, in order, once.
    h.replicated(&s).await;
    assert_eq!(d1_messages(&h, &s).await, numbered("f", 5));
}

#[tokio::test]
async fn a_d1_outage_keeps_chat_going_and_d1_catches_up_with_no_duplicates() {
    let h = Harness::start(Options::default());
    let u = User::new(&h, "outage");
    let other = User::new(&h, "outage-member");
    let s = u.create_session("outage").await;
    u.add_member(&s, &other).await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_msg(&mut ws, "o1", "before").await;
    h.replicated(&s).await;

    h.d1_outage(true).await;
    let (status, _, ready) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(ready["failing"], json!(["d1"]));
    // Joining, sending, editing, reacting, reading and history all work
    // from the session log while D1 is down.
    let mut them = connect_bearer(&u.plain_ws_url(&s, Some(0)), &other.token).await;
    let (hello, _) = recv_type(&mut them, "hello").await;
    assert_eq!(hello["last_seq"], 1);
    for i in 2..=20 {
        let ack = send_msg(&mut ws, &format!("o{i}"), &format!("during {i}")).await;
        assert_eq!(ack["seq"], i, "{ack}");
    }
    send_json(
        &mut ws,
        json!({"type": "edit", "seq": 2, "text": "during 2, edited"}),
    )
    .await;
    recv_type(&mut ws, "edited").await;
    send_json(
        &mut them,
        json!({"type": "react", "seq": 3, "emoji": "👍", "action": "add"}),
    )
    .await;
    recv_type(&mut them, "reaction").await;
    send_json(&mut them, json!({"type": "read", "seq": 20})).await;
    recv_type(&mut them, "receipt").await;
    let texts = u.history_texts(&s).await;
    assert_eq!(texts.len(), 20);
    assert_eq!(texts[1], "during 2, edited");

    h.d1_outage(false).await;
    // The backlog drains by itself.
    h.replicated(&s).await;
    assert_eq!(d1_messages(&h, &s).await, numbered("o", 20));
    let edits = h
        .session_sql(
            &s,
            "SELECT seq FROM message_edits WHERE session_id = ?1",
            json!([s]),
        )
        .await;
    assert_eq!(edits, vec![json!({"seq": 2})]);
    let reactions = h
        .session_sql(
            &s,
            "SELECT seq, user_id, emoji FROM reactions WHERE session_id = ?1",
            json!([s]),
        )
        .await;
    assert_eq!(
        reactions,
        vec![json!({"seq": 3, "user_id": other.id, "emoji": "👍"})]
    );
    let reads = h
        .session_sql(
            &s,
            "SELECT user_id, seq FROM read_positions WHERE session_id = ?1",
            json!([s]),
        )
        .await;
    assert_eq!(reads, vec![json!({"user_id": other.id, "seq": 20})]);
    let row = &h
        .session_sql(
            &s,
            "SELECT last_seq, message_count FROM sessions WHERE id = ?1",
            json!([s]),
        )
        .await[0];
    assert_eq!(
        (row["last_seq"].as_u64(), row["message_count"].as_u64()),
        (Some(20), Some(20))
    );
}

#[tokio::test]
async fn sigkill_before_a_flush_loses_nothing_and_the_alarm_catches_d1_up() {
    let dir = temp_dir("unflushed");
    // A flush five seconds away: the kill certainly comes first.
    let first = Harness::start(Options {
        persist: Some(dir.clone()),
        vars: vec![("REPLICATION_INTERVAL_MS".into(), "5000".into())],
        ..Default::default()
    });
    let u = User::new(&first, "unflushed");
    let s = u.create_session("unflushed").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    for i in 1..=10 {
        send_msg(&mut ws, &format!("k{i}"), &format!("acked {i}")).await;
    }
    assert!(
        d1_messages(&first, &s).await.is_empty(),
        "nothing flushed yet"
    );
    first.kill_9();
    drop(ws);
    drop(first);

    let second = Harness::start(Options {
        persist: Some(dir),
        ..Default::default()
    });
    // Nobody touches the session: the alarm the dead instance set wakes a
    // fresh one, which learns its session from the log and flushes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while d1_messages(&second, &s).await.len() < 10 {
        assert!(
            Instant::now() < deadline,
            "the persisted alarm never flushed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(d1_messages(&second, &s).await, numbered("k", 10));
    // Every acked message survived in the session log too.
    let u = User {
        base: second.url.clone(),
        ..u
    };
    let texts = u.history_texts(&s).await;
    assert_eq!(
        texts,
        (1..=10).map(|i| format!("acked {i}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn sigkill_after_d1_committed_a_flush_but_before_the_object_heard_repeats_nothing() {
    let dir = temp_dir("midflush");
    // D1 answers 1.5 s after it commits (see standins/d1-latency.mjs).
    let first = Harness::start(Options {
        persist: Some(dir.clone()),
        d1_latency_ms: Some(3000),
        vars: vec![("METRICS_TOKEN".into(), "metrics-token-0123456789".into())],
        ..Default::default()
    });
    let u = User::new(&first, "midflush");
    let s = u.create_session("midflush").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    for i in 1..=5 {
        send_msg(&mut ws, &format!("m{i}"), &format!("text {i}")).await;
    }
    // Watch D1 directly (the control endpoint does not go through the
    // latency wrapper): once the flush has committed, kill the runtime
    // while the object still waits for D1's answer.
    let deadline = Instant::now() + Duration::from_secs(20);
    while d1_messages(&first, &s).await.len() < 5 {
        assert!(Instant::now() < deadline, "the flush never reached D1");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill_9();
    drop(ws);
    drop(first);

    let restarted_at = now_ms();
    let second = Harness::start(Options {
        persist: Some(dir),
        vars: vec![("METRICS_TOKEN".into(), "metrics-token-0123456789".into())],
        ..Default::default()
    });
    // The object never heard that D1 took the batch, so it flushes it
    // again after the restart (its alarm fires again, or a call wakes it).
    second.replicated(&s).await;
    let flushed_at = second
        .session_sql(
            &s,
            "SELECT flushed_at FROM replication WHERE session_id = ?1",
            json!([s]),
        )
        .await[0]["flushed_at"]
        .as_i64()
        .unwrap();
    assert!(
        flushed_at >= restarted_at,
        "the unconfirmed flush was repeated after the restart"
    );
    second.replicated(&s).await;
    // The repeated flush changed nothing: each row once, each count once.
    assert_eq!(d1_messages(&second, &s).await, numbered("m", 5));
    let samples = second.metrics("metrics-token-0123456789").await;
    let users: f64 = samples
        .iter()
        .filter(|(n, l, _)| {
            n == "confab_messages_total" && l.get("kind").map(String::as_str) == Some("user")
        })
        .map(|(_, _, v)| v)
        .sum();
    assert_eq!(
        users, 5.0,
        "confab_messages_total counted each message once"
    );
    let row = &second
        .session_sql(
            &s,
            "SELECT message_count, last_seq FROM sessions WHERE id = ?1",
            json!([s]),
        )
        .await[0];
    assert_eq!(
        (row["message_count"].as_u64(), row["last_seq"].as_u64()),
        (Some(5), Some(5))
    );
}

#[tokio::test]
async fn a_session_from_before_the_log_is_loaded_from_d1_on_first_use() {
    // Sessions from before the log (and before shards) are in the home shard.
    loads_from_d1("DB").await;
}

#[tokio::test]
async fn a_session_whose_init_was_lost_is_found_in_whichever_shard_holds_it() {
    // The Worker inserted the row in the shard it picked, and the `init`
    // that would have told the object never arrived.
    loads_from_d1("DB_SHARD_2").await;
}

/// Seeds a session in D1's layout, in `shard` only, that no object was ever
/// told of, then uses it: the object finds it, loads it, and replicates to
/// that shard from then on.
async fn loads_from_d1(shard: &str) {
    let h = Harness::start(Options::default());
    let owner = User::new(&h, "legacy-owner");
    let member = User::new(&h, "legacy-member");
    // Seed D1 in the old layout, as a deployment before this change left
    // it: the session, a member, three sealed messages (one edited), a
    // reaction and a read position, and no session object ever told.
    let s = confab::ids::random_hex(16);
    let keys = confab::crypto::Keyring::parse(KEY_K1, "k1").unwrap();
    let seal = |id: &str, text: &str| {
        keys.seal(
            &confab::crypto::aad(confab::crypto::Field::MessageBody, &s, Some(id)),
            text,
        )
    };
    let now = now_ms();
    h.sql_on(
        shard,
        "INSERT INTO sessions (id, owner_id, mode, last_seq, message_count, created_at, updated_at)
         VALUES (?1, ?2, 'assistant', 3, 3, ?3, ?3)",
        json!([s, owner.id, now]),
    )
    .await;
    h.sql_on(
        shard,
        "INSERT INTO session_members (session_id, user_id, added_at) VALUES (?1, ?2, ?3)",
        json!([s, member.id, now]),
    )
    .await;
    for (seq, text) in [(1, "old one"), (2, "old two"), (3, "old three")] {
        let id = format!("legacy{seq}");
        h.sql_on(
        shard,
            "INSERT INTO messages (session_id, seq, id, client_id, author_id, author_name, author_kind, body, created_at, edited_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'Owner', 'user', ?6, ?7, ?8)",
            json!([s, seq, id, format!("c{seq}"), owner.id, seal(&id, text), now, if seq == 2 { Value::from(now) } else { Value::Null }]),
        )
        .await;
    }
    h.sql_on(
        shard,
        "INSERT INTO message_edits (session_id, seq, edited_at, body) VALUES (?1, 2, ?2, ?3)",
        json!([s, now, seal("legacy2", "old two, first draft")]),
    )
    .await;
    h.sql_on(
        shard,
        "INSERT INTO reactions (session_id, seq, user_id, emoji, created_at) VALUES (?1, 1, ?2, '🎉', ?3)",
        json!([s, member.id, now]),
    )
    .await;
    h.sql_on(
        shard,
        "INSERT INTO read_positions (session_id, user_id, seq, updated_at) VALUES (?1, ?2, 2, ?3)",
        json!([s, member.id, now]),
    )
    .await;

    // The member (known only from D1's member list) resumes from the start.
    let (mut ws, hello, replayed) = member.join(&s, Some(0)).await;
    assert_eq!(hello["last_seq"], 3, "{hello}");
    assert_eq!(hello["reads"], json!([{"user_id": member.id, "seq": 2}]));
    let texts: Vec<&str> = replayed
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["old one", "old two", "old three"]);
    assert_eq!(
        replayed[0]["reactions"],
        json!([{"emoji": "🎉", "users": [member.id]}])
    );
    // New sends continue the seq; the owner's retry of an old client id
    // is still a duplicate.
    let again = send_msg(&mut ws, "c1", "old one").await;
    assert_eq!(
        (again["seq"].as_u64(), again["duplicate"].as_bool()),
        (Some(4), Some(false)),
        "client ids are per author: {again}"
    );
    let next = send_msg(&mut ws, "new-1", "new").await;
    assert_eq!(next["seq"], 5);
    let (mut own, _, _) = owner.join(&s, None).await;
    let dup = send_msg(&mut own, "c2", "old two").await;
    assert_eq!(
        (dup["seq"].as_u64(), dup["duplicate"].as_bool()),
        (Some(2), Some(true))
    );
    // D1 keeps the old rows as they were and gains the new ones once.
    h.replicated(&s).await;
    assert_eq!(h.shard_of(&s).await, shard, "it stays in its shard");
    let rows = d1_messages(&h, &s).await;
    let seqs: Vec<u64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let edits = h
        .session_sql(
            &s,
            "SELECT count(*) AS n FROM message_edits WHERE session_id = ?1",
            json!([s]),
        )
        .await;
    assert_eq!(edits[0]["n"], 1);
}

#[tokio::test]
async fn a_reply_cut_off_by_sigkill_ends_as_interrupted_and_the_question_is_answered_again() {
    let dir = temp_dir("midreply");
    let model = unique("midreply");
    let opts = Options {
        persist: Some(dir),
        vars: common::llm::runtime_vars(&model, &[]),
        ..Default::default()
    };
    let first = Harness::start(opts.clone());
    // A long, slow reply: about six seconds of deltas.
    first
        .script(&model, json!([{"repeat": 200, "delay_ms": 30}]))
        .await;
    let u = User::new(&first, "midreply");
    let s = u.create_session("midreply").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_msg(&mut ws, "q1", "tell me everything").await;
    let mut seen = String::new();
    let mut deltas = 0;
    // Past several progress saves (every 250 ms at most).
    while deltas < 40 {
        let f = recv(&mut ws).await;
        if f["type"] == "delta" {
            seen.push_str(f["text"].as_str().unwrap());
            deltas += 1;
        }
    }
    first.kill_9();
    drop(ws);
    drop(first);

    let second = Harness::start(opts);
    let u = User {
        base: second.url.clone(),
        ..u
    };
    // Resuming after the question: the cut-off reply is there, ended as
    // interrupted with the text saved so far, then a fresh answer follows.
    let (mut ws, _, replayed) = u.join(&s, Some(1)).await;
    let mut frames: Vec<Value> = replayed;
    let reply = loop {
        if let Some(done) = frames
            .iter()
            .find(|m| m["author"]["kind"] == "assistant" && m["turn"]["incomplete"] == false)
        {
            break done.clone();
        }
        let f = recv(&mut ws).await;
        if f["type"] == "message" {
            frames.push(f);
        }
    };
    let cut = frames
        .iter()
        .find(|m| m["turn"]["finish_reason"] == "interrupted")
        .unwrap_or_else(|| panic!("no interrupted reply in {frames:?}"));
    assert_eq!(
        (cut["seq"].as_u64(), cut["turn"]["incomplete"].as_bool()),
        (Some(2), Some(true))
    );
    let saved = cut["text"].as_str().unwrap();
    assert!(!saved.is_empty(), "the text so far was saved");
    // What was saved is the reply so far: the start of the scripted text
    // (clients may have read less or more of it when the runtime died).
    assert!(
        "lorem ipsum ".repeat(200).starts_with(saved) && seen.starts_with("lorem ipsum"),
        "saved text is the start of the reply: {saved:?}"
    );
    // The harness restarts workerd once while it starts (it migrates on a
    // private port, then moves to the final one). If the recovered turn's
    // alarm fires before that, the restart cuts the new answer off too, as
    // a deploy would: it ends as interrupted as well and is asked again.
    // Only the last reply completes.
    let last = reply["seq"].as_u64().unwrap();
    assert!(last >= 3, "{frames:#?}");
    let between: Vec<&Value> = frames
        .iter()
        .filter(|m| (3..last).contains(&m["seq"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(between.len() as u64, last - 3, "{frames:#?}");
    assert!(
        between
            .iter()
            .all(|m| m["author"]["kind"] == "assistant"
                && m["turn"]["finish_reason"] == "interrupted"),
        "{frames:#?}"
    );
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("tell me everything"),
        "the question is answered again: {reply}"
    );
    // The new turn's prompt holds the question, not the cut-off text.
    let asked = second.standin_requests(Some(&model)).await;
    assert!(
        (1..=last as usize - 2).contains(&asked.len()),
        "one request per attempt: {}",
        asked.len()
    );
    for a in &asked {
        assert!(!a["body"].to_string().contains("lorem"), "{}", a["body"]);
    }
    // Each reply reaches D1 once.
    second.replicated(&s).await;
    let rows = second
        .session_sql(
            &s,
            "SELECT seq, finish_reason, incomplete FROM messages WHERE session_id = ?1 ORDER BY seq",
            json!([s]),
        )
        .await;
    let mut want = vec![json!({"seq": 1, "finish_reason": null, "incomplete": 0})];
    for seq in 2..last {
        want.push(json!({"seq": seq, "finish_reason": "interrupted", "incomplete": 1}));
    }
    want.push(json!({"seq": last, "finish_reason": "stop", "incomplete": 0}));
    assert_eq!(rows, want);
}

/// A backlog longer than one flush's appends (100): the reactions and
/// polls of messages past the first flush wait for their messages rather
/// than be written as nothing (their statements are guarded by the
/// message row) and dropped.
#[tokio::test]
async fn a_backlog_longer_than_one_flush_keeps_its_tails_reactions_and_votes() {
    let h = Harness::start(Options {
        vars: vec![
            ("RATE_MESSAGES_PER_MINUTE".into(), "0".into()),
            ("RATE_ACTIONS_PER_MINUTE".into(), "0".into()),
        ],
        ..Default::default()
    });
    let u = User::new(&h, "backlog");
    let s = u.create_session("backlog").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    h.d1_outage(true).await;
    for i in 1..=110 {
        send_msg(&mut ws, &format!("b{i}"), &format!("m{i}")).await;
    }
    let poll = json!({"options": ["a", "b"]});
    send_json(
        &mut ws,
        json!({"type": "send", "client_id": "b111", "text": "poll", "poll": poll}),
    )
    .await;
    recv_type(&mut ws, "ack").await;
    send_json(
        &mut ws,
        json!({"type": "react", "seq": 105, "emoji": "👍", "action": "add"}),
    )
    .await;
    recv_type(&mut ws, "reaction").await;
    send_json(&mut ws, json!({"type": "vote", "seq": 111, "choices": [1]})).await;
    recv_type(&mut ws, "poll").await;
    h.d1_outage(false).await;
    h.replicated(&s).await;
    assert_eq!(d1_messages(&h, &s).await.len(), 111);
    let q = |sql: &'static str| h.session_sql(&s, sql, json!([s]));
    assert_eq!(
        q("SELECT seq, emoji FROM reactions WHERE session_id = ?1").await,
        vec![json!({"seq": 105, "emoji": "👍"})]
    );
    assert_eq!(
        q("SELECT seq, choice FROM poll_votes WHERE session_id = ?1").await,
        vec![json!({"seq": 111, "choice": 1})]
    );
    assert_eq!(
        q("SELECT seq FROM polls WHERE session_id = ?1").await,
        vec![json!({"seq": 111})]
    );
}
