//! Polls (`src/poll.rs`): a `send` with `poll` asks its text as a question;
//! `vote` frames replace the voter's ballot; every socket gets the tally
//! (`poll` frames, numbered in the change stream), which history, resume
//! and D1 keep. Against the real worker and its D1.

mod common;

use common::llm::*;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Sends a vote with a fresh key; gives the `applied` frame and the `poll`
/// frame (the new tally) that came before it, if any.
async fn vote(ws: &mut Ws, seq: u64, choices: Value) -> (Value, Option<Value>) {
    let key = unique("vote");
    send_json(
        ws,
        json!({"type": "vote", "seq": seq, "choices": choices, "client_id": key}),
    )
    .await;
    let (f, before) = recv_type(ws, "applied").await;
    assert_eq!(f["client_id"], key.as_str(), "{f}");
    let tally = before.into_iter().find(|b| b["type"] == "poll");
    (f, tally)
}

/// Sends a vote that must be refused; gives the error's code (which must
/// carry the vote's key).
async fn refused_vote(ws: &mut Ws, seq: u64, choices: Value) -> String {
    let key = unique("vote");
    send_json(
        ws,
        json!({"type": "vote", "seq": seq, "choices": choices, "client_id": key}),
    )
    .await;
    let (e, _) = recv_type(ws, "error").await;
    assert_eq!(e["client_id"], key.as_str(), "{e}");
    e["code"].as_str().unwrap().to_string()
}

/// Sends a poll; gives its seq.
async fn ask(ws: &mut Ws, question: &str, poll: Value) -> u64 {
    let key = unique("poll");
    send_json(
        ws,
        json!({"type": "send", "client_id": key, "text": question, "poll": poll}),
    )
    .await;
    let (ack, _) = recv_type(ws, "ack").await;
    assert_eq!(ack["client_id"], key.as_str(), "{ack}");
    ack["seq"].as_u64().unwrap()
}

async fn history(user: &User, s: &str) -> Vec<Value> {
    let (status, page) = (user)
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(status, 200, "{page}");
    page["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn each_user_counts_once_and_every_socket_sees_the_tally() {
    let h = Harness::shared();
    let owner = User::new(h, "owner");
    let bob = User::new(h, "bob");
    let s = owner.create_session("polls").await;
    owner.add_member(&s, &bob).await;
    let (mut mine, _, _) = owner.join(&s, None).await;
    let (mut theirs, _, _) = bob.join(&s, None).await;

    // Bad polls are refused with documented codes, and store nothing.
    let eleven: Vec<String> = (0..11).map(|i| format!("o{i}")).collect();
    for (poll, code) in [
        (json!({"options": ["only"]}), "invalid_poll"),
        (json!({"options": eleven}), "invalid_poll"),
        (json!({"options": ["a", " a "]}), "invalid_poll"),
        (
            json!({"options": ["a", "b"], "closes_at": now_ms() - 1}),
            "invalid_poll",
        ),
        (
            json!({"options": ["a", "b"], "closes_at": now_ms() + 31 * 86_400_000i64}),
            "invalid_poll",
        ),
    ] {
        let key = unique("bad");
        let frame = json!({"type": "send", "client_id": key, "text": "q?", "poll": poll});
        send_json(&mut mine, frame).await;
        let (e, _) = recv_type(&mut mine, "error").await;
        assert_eq!(
            (e["code"].as_str(), e["client_id"].as_str()),
            (Some(code), Some(key.as_str())),
            "{poll}: {e}"
        );
    }
    assert!(history(&owner, &s).await.is_empty());

    let options = json!(["pizza", "sushi", "tacos"]);
    let seq = ask(&mut mine, "Lunch?", json!({"options": options})).await;
    let (m, _) = recv_type(&mut theirs, "message").await;
    assert_eq!(m["seq"], seq);
    assert_eq!(m["text"], "Lunch?");
    assert_eq!(m["poll"]["options"], options);
    assert_eq!(
        (
            m["poll"]["multiple"].clone(),
            m["poll"]["anonymous"].clone()
        ),
        (json!(false), json!(false))
    );
    assert_eq!(m["poll"]["tally"]["counts"], json!([0, 0, 0]));
    // A poll asks the people here, not the assistant.
    assert_no_frame_of(&mut mine, "turn", 700).await;

    // Bob votes: everyone sees the tally, Bob's sockets with his ballot.
    let (applied, own) = vote(&mut theirs, seq, json!([1])).await;
    let first = applied["change"].as_u64().expect("a vote is a change");
    let (t, _) = recv_type(&mut mine, "poll").await;
    assert_eq!(
        (t["seq"].as_u64(), t["change"].as_u64()),
        (Some(seq), Some(first))
    );
    assert_eq!(t["tally"]["counts"], json!([0, 1, 0]));
    assert_eq!(t["tally"]["voters"], 1);
    assert_eq!(t["tally"]["users"], json!([[], [bob.id], []]));
    assert_eq!(t["tally"].get("mine"), None, "{t}");
    let own = own.expect("the voter's sockets get the tally");
    assert_eq!(own["tally"]["mine"], json!([1]));
    assert_eq!(own["change"], first);

    // A resend of the same key changes nothing; a new ballot replaces the
    // old one, so Bob still counts once.
    let key = unique("again");
    for duplicate in [false, true] {
        let frame = json!({"type": "vote", "seq": seq, "choices": [2], "client_id": key});
        send_json(&mut theirs, frame).await;
        let (a, _) = recv_type(&mut theirs, "applied").await;
        assert_eq!(a["duplicate"], duplicate, "{a}");
    }
    let (t, _) = recv_type(&mut mine, "poll").await;
    assert_eq!(t["tally"]["counts"], json!([0, 0, 1]));
    assert_eq!(t["tally"]["voters"], 1);
    assert_no_frame_of(&mut mine, "poll", 400).await;
    // The same ballot again is no change.
    assert_eq!(
        vote(&mut theirs, seq, json!([2])).await.0["change"],
        Value::Null
    );

    let (after, _) = vote(&mut mine, seq, json!([2])).await;
    assert!(after["change"].as_u64().unwrap() > first);
    let (t, _) = recv_type(&mut theirs, "poll").await;
    assert_eq!(
        (t["tally"]["counts"].clone(), t["tally"]["voters"].clone()),
        (json!([0, 0, 2]), json!(2))
    );

    // Ballots the poll does not take.
    assert_eq!(
        refused_vote(&mut theirs, seq, json!([0, 1])).await,
        "invalid_choice"
    );
    assert_eq!(
        refused_vote(&mut theirs, seq, json!([3])).await,
        "invalid_choice"
    );
    assert_eq!(
        refused_vote(&mut theirs, seq + 50, json!([0])).await,
        "not_found"
    );
    let plain = send_msg(&mut mine, &unique("plain"), "not a poll").await["seq"]
        .as_u64()
        .unwrap();
    assert_eq!(
        refused_vote(&mut theirs, plain, json!([0])).await,
        "not_a_poll"
    );

    // History has the tally, with the reader's own ballot.
    let page = history(&bob, &s).await;
    let p = &page.iter().find(|m| m["seq"] == seq).unwrap()["poll"];
    assert_eq!(p["options"], options);
    assert_eq!(p["tally"]["counts"], json!([0, 0, 2]));
    assert_eq!(p["tally"]["mine"], json!([2]));
    assert!(page
        .iter()
        .find(|m| m["seq"] == plain)
        .unwrap()
        .get("poll")
        .is_none());

    // D1's replicated copy: the ballots, and the options sealed.
    h.replicated(&s).await;
    let votes = h
        .session_sql(
            &s,
            "SELECT user_id, choice FROM poll_votes WHERE session_id = ?1 ORDER BY user_id",
            json!([s]),
        )
        .await;
    let mut want = vec![
        json!({"user_id": bob.id, "choice": 2}),
        json!({"user_id": owner.id, "choice": 2}),
    ];
    want.sort_by_key(|v| v["user_id"].as_str().unwrap().to_string());
    assert_eq!(votes, want);
    let polls = h
        .session_sql(
            &s,
            "SELECT options, closed FROM polls WHERE session_id = ?1",
            json!([s]),
        )
        .await;
    assert_eq!(polls.len(), 1);
    assert!(
        !polls[0]["options"].as_str().unwrap().contains("sushi"),
        "{polls:?}"
    );
}

#[tokio::test]
async fn an_anonymous_poll_replays_its_tally_on_resume_and_closes_on_time() {
    let h = Harness::shared();
    let owner = User::new(h, "owner");
    let bob = User::new(h, "bob");
    let s = owner.create_session("closing poll").await;
    owner.add_member(&s, &bob).await;
    let (mut mine, _, _) = owner.join(&s, None).await;
    let (mut theirs, hello, _) = bob.join(&s, None).await;
    let closes_at = now_ms() + 4000;
    let poll = json!({"options": ["red", "green", "blue"], "multiple": true, "anonymous": true, "closes_at": closes_at});
    let seq = ask(&mut mine, "Colours?", poll).await;
    recv_type(&mut theirs, "message").await;
    let seen = hello["last_change"].as_u64().unwrap();
    drop(theirs);

    // While Bob is away, the owner votes for two colours.
    let t = vote(&mut mine, seq, json!([0, 2])).await.1.unwrap();
    assert_eq!(t["tally"]["users"], Value::Null, "anonymous: {t}");
    assert_eq!(t["tally"]["mine"], json!([0, 2]));

    // Bob resumes: the tally as it is now, before `synced`, without the
    // owner's name and with his own (empty) ballot.
    let url = format!("{}&changes={seen}", bob.ws_url(&s, Some(seq)).await);
    let mut theirs = connect(&url).await;
    assert_eq!(recv(&mut theirs).await["type"], "hello");
    let (synced, replayed) = recv_type(&mut theirs, "synced").await;
    let polls: Vec<&Value> = replayed.iter().filter(|f| f["type"] == "poll").collect();
    assert_eq!(polls.len(), 1, "{replayed:?}");
    let tally = &polls[0]["tally"];
    assert_eq!(tally["counts"], json!([1, 0, 1]));
    assert_eq!(tally["voters"], 1);
    assert_eq!(tally["mine"], json!([]));
    assert_eq!(tally["closed"], false);
    assert!(!polls[0].to_string().contains(&owner.id));
    assert_eq!(synced["last_change"], polls[0]["change"]);

    // At its closing time the alarm announces the final tally to everyone,
    // as a change; a vote after it is refused.
    let (closed, _) = recv_type(&mut theirs, "poll").await;
    assert!(now_ms() >= closes_at);
    assert_eq!(closed["tally"]["closed"], true, "{closed}");
    assert_eq!(closed["tally"]["counts"], json!([1, 0, 1]));
    assert!(closed["change"].as_u64() > synced["last_change"].as_u64());
    assert_eq!(
        refused_vote(&mut theirs, seq, json!([1])).await,
        "poll_closed"
    );
    let page = history(&owner, &s).await;
    assert_eq!(page[0]["poll"]["tally"]["closed"], true);

    // Deleting the poll's message deletes the poll: no vote reaches it.
    send_json(&mut mine, json!({"type": "delete", "seq": seq})).await;
    recv_type(&mut theirs, "deleted").await;
    assert_eq!(
        refused_vote(&mut theirs, seq, json!([0])).await,
        "not_found"
    );
    assert!(history(&owner, &s).await[0].get("poll").is_none());
    h.replicated(&s).await;
    let rows = h
        .session_sql(
            &s,
            "SELECT count(*) AS n FROM poll_votes WHERE session_id = ?1",
            json!([s]),
        )
        .await;
    assert_eq!(rows[0]["n"], 0);
}

#[tokio::test]
async fn the_assistant_sees_a_poll_with_its_options_and_counts() {
    let model = unique("poll-prompt");
    let h = runtime(&model, &[]);
    let u = User::new(&h, "asker");
    let s = u.create_session("poll prompt").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    let seq = ask(&mut ws, "Lunch?", json!({"options": ["pizza", "sushi"]})).await;
    vote(&mut ws, seq, json!([1])).await;
    // The poll started no turn; the question after it does.
    send_msg(&mut ws, "q", "What did we pick?").await;
    until_reply(&mut ws).await;
    let requests = h.standin_requests(Some(&model)).await;
    assert_eq!(requests.len(), 1, "only the question asked the assistant");
    let prompt = requests[0]["body"]["messages"].to_string();
    assert!(
        prompt.contains("Lunch? [poll, open: pizza (0) | sushi (1)]"),
        "{prompt}"
    );
    assert!(
        !prompt.contains(&u.id),
        "no voter ids in the prompt: {prompt}"
    );
}
