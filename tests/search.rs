//! Search over encrypted history (`src/search.rs`): the replication flush
//! writes each message's words to D1 only as keyed hashes; a user finds
//! messages in their own sessions, an admin in all of them; edits and
//! deletions change what is found. Against the real worker and D1.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// A word no other test uses: letters and digits only, so it is one word.
fn word(prefix: &str) -> String {
    unique(prefix).replace('-', "x")
}

async fn search(user: &User, q: &str, extra: &str) -> (u16, Value) {
    let q: String = url_escape(q);
    user.call(Method::GET, &format!("/v1/search?q={q}{extra}"), None)
        .await
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// (session, seq) of each result, in order.
fn found(body: &Value) -> Vec<(String, u64)> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| {
            (
                r["session_id"].as_str().unwrap().to_string(),
                r["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn seq(ack: &Value) -> u64 {
    ack["seq"].as_u64().unwrap()
}

#[tokio::test]
async fn members_find_their_messages_by_words_that_d1_holds_only_as_hashes() {
    let h = Harness::shared();
    let owner = User::new(h, "searcher");
    let bob = User::new(h, "member");
    let stranger = User::new(h, "stranger");
    let admin = User::admin(h, "admin");
    let invoice = word("invoice");
    let other = word("other");
    let s = owner.create_session("Billing question").await;
    owner.add_member(&s, &bob).await;
    let theirs = stranger.create_session("their own").await;
    let (mut ws, _, _) = owner.join(&s, None).await;
    let (mut ws2, _, _) = stranger.join(&theirs, None).await;
    let first = seq(&send_msg(&mut ws, "a", &format!("My {invoice} number 4471 is wrong")).await);
    let _ = send_msg(&mut ws, "b", &format!("nothing to see, {other}")).await;
    let last = seq(&send_msg(
        &mut ws,
        "c",
        &format!("<b>{}</b> again!", invoice.to_uppercase()),
    )
    .await);
    let foreign = seq(&send_msg(&mut ws2, "d", &format!("my {invoice} too")).await);
    h.replicated(&s).await;
    h.replicated(&theirs).await;

    // D1 holds keyed hashes of the words, never the words.
    let terms = h
        .sql_all(
            "SELECT term FROM search_terms WHERE session_id = ?1",
            json!([s]),
        )
        .await;
    assert!(terms.len() >= 10, "{terms:?}");
    for t in &terms {
        let t = t["term"].as_str().unwrap();
        assert!(
            t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()),
            "{t}"
        );
    }
    let dump = serde_json::to_string(&terms).unwrap();
    assert!(
        !dump.contains(&invoice) && !dump.contains("wrong"),
        "{dump}"
    );

    // The owner and the member find the session's two, newest first, with
    // the hits marked in text pieces (markup stays text); not the stranger's.
    for u in [&owner, &bob] {
        let (status, body) = search(u, &invoice, "").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            found(&body),
            [(s.clone(), last), (s.clone(), first)],
            "{body}"
        );
        let top = &body["results"][0];
        assert_eq!(top["session_title"], "Billing question");
        assert_eq!(top["author"]["id"], owner.id.as_str());
        let pieces = top["snippet"].as_array().unwrap();
        assert_eq!(pieces[0], json!({"text": "<b>", "hit": false}), "{top}");
        assert_eq!(
            pieces[1],
            json!({"text": invoice.to_uppercase(), "hit": true}),
            "{top}"
        );
        assert_eq!(body["next_cursor"], Value::Null);
    }
    // Every word must match.
    let (_, body) = search(&owner, &format!("{invoice} 4471"), "").await;
    assert_eq!(found(&body), [(s.clone(), first)]);
    let (_, body) = search(&owner, &format!("{invoice} {other}"), "").await;
    assert!(found(&body).is_empty(), "{body}");
    let (_, body) = search(&stranger, &invoice, "").await;
    assert_eq!(found(&body), [(theirs.clone(), foreign)]);
    // An admin searches every session.
    let (_, body) = search(&admin, &invoice, "").await;
    let mut all = found(&body);
    all.sort();
    let mut want = vec![
        (s.clone(), first),
        (s.clone(), last),
        (theirs.clone(), foreign),
    ];
    want.sort();
    assert_eq!(all, want);

    // Pages: one result each, then none; no result twice.
    let (_, p1) = search(&admin, &invoice, "&limit=1").await;
    let cursor = p1["next_cursor"].as_str().unwrap().to_string();
    let (_, p2) = search(
        &admin,
        &invoice,
        &format!("&limit=1&cursor={}", url_escape(&cursor)),
    )
    .await;
    let c2 = p2["next_cursor"].as_str().unwrap().to_string();
    let (_, p3) = search(
        &admin,
        &invoice,
        &format!("&limit=1&cursor={}", url_escape(&c2)),
    )
    .await;
    let mut paged = [found(&p1), found(&p2), found(&p3)].concat();
    assert_eq!(p3["next_cursor"], Value::Null, "{p3}");
    paged.sort();
    assert_eq!(paged, want);

    // An edit replaces the message's words; a deletion removes them.
    let edited = word("edited");
    send_json(
        &mut ws,
        json!({"type": "edit", "seq": first, "text": format!("now {edited}")}),
    )
    .await;
    recv_type(&mut ws, "edited").await;
    send_json(&mut ws, json!({"type": "delete", "seq": last})).await;
    recv_type(&mut ws, "deleted").await;
    h.replicated(&s).await;
    let (_, body) = search(&owner, &invoice, "").await;
    assert!(found(&body).is_empty(), "{body}");
    let (_, body) = search(&owner, &edited, "").await;
    assert_eq!(found(&body), [(s.clone(), first)]);
    let left = h
        .sql_all(
            "SELECT count(*) AS n FROM search_terms WHERE session_id = ?1 AND seq = ?2",
            json!([s, last]),
        )
        .await;
    assert_eq!(left[0]["n"], 0, "a deleted message keeps no terms");

    // Erasing the session erases its terms.
    let (status, _) = owner
        .call(Method::DELETE, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(status, 204);
    let left = h
        .sql_all(
            "SELECT count(*) AS n FROM search_terms WHERE session_id = ?1",
            json!([s]),
        )
        .await;
    assert_eq!(
        left.iter().map(|r| r["n"].as_i64().unwrap()).sum::<i64>(),
        0
    );
    let (_, body) = search(&bob, &edited, "").await;
    assert!(found(&body).is_empty(), "{body}");
}

#[tokio::test]
async fn bad_searches_get_documented_errors() {
    let h = Harness::shared();
    let u = User::new(h, "bad-search");
    for (q, extra, code) in [
        ("", "", "invalid_query"),
        ("?! a", "", "invalid_query"),
        ("aa bb cc dd ee ff gg hh ii", "", "query_too_long"),
        ("hello", "&limit=0", "invalid_limit"),
        ("hello", "&cursor=nope", "invalid_cursor"),
        ("hello", "&cursor=1.2.%2F..%2F", "invalid_cursor"),
    ] {
        let (status, body) = search(&u, q, extra).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{q} {extra}: {body}"
        );
    }
    let res = http()
        .get(format!("{}/v1/search?q=hello", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

#[tokio::test]
async fn search_is_off_without_a_search_key() {
    let h = Harness::start(Options {
        vars: vec![("SEARCH_KEY_ID".into(), String::new())],
        ..Default::default()
    });
    let u = User::new(&h, "no-search");
    let (status, body) = search(&u, "hello", "").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
}
