//! Moderation (`src/moderation.rs`) against the real worker, its D1 and
//! the session objects: members report messages into the queue, a
//! moderator removes one (a tombstone naming who and why, live, in
//! history, on resume and in D1, with the original kept for audit) or
//! dismisses the reports, and mutes or bans a user from a session for a
//! while, which holds on the socket as well as over HTTP.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// A session with a member, answered by people (an agent claimed it), so
/// no assistant reply joins the transcript.
async fn staffed(h: &Harness, label: &str) -> (User, User, User, String) {
    let owner = User::new(h, &format!("{label}-owner"));
    let member = User::new(h, &format!("{label}-member"));
    let admin = User::admin(h, &format!("{label}-mod"));
    let s = owner.create_session(label).await;
    owner.add_member(&s, &member).await;
    let (status, body) = admin
        .call(Method::POST, &format!("/v1/admin/sessions/{s}/claim"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    (owner, member, admin, s)
}

async fn report(user: &User, s: &str, body: Value) -> (u16, Value) {
    user.call(
        Method::POST,
        &format!("/v1/sessions/{s}/reports"),
        Some(body),
    )
    .await
}

async fn queue_has(admin: &User, s: &str, seq: u64) -> Option<Value> {
    let (status, page) = admin
        .call(Method::GET, "/v1/admin/reports?limit=200", None)
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["session_id"] == s && i["seq"] == seq)
        .cloned()
}

async fn message(user: &User, s: &str, seq: u64) -> Value {
    let (status, page) = user
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(status, 200, "{page}");
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["seq"] == seq)
        .cloned()
        .unwrap_or_else(|| panic!("no message {seq} in {page}"))
}

#[tokio::test]
async fn a_reported_message_is_queued_then_removed_for_everyone_with_its_original_kept() {
    let h = Harness::shared();
    let (owner, member, admin, s) = staffed(h, "mod-remove").await;
    let (mut member_ws, _, _) = member.join(&s, None).await;
    let ack = send_msg(&mut member_ws, "spam-1", "buy cheap pills at example.com").await;
    let seq = ack["seq"].as_u64().unwrap();
    let (mut owner_ws, hello, _) = owner.join(&s, None).await;
    let changes_before = hello["last_change"].as_u64().unwrap();

    // Reports: one per member and message; bad ones get their codes.
    let (status, filed) = report(&owner, &s, json!({"seq": seq, "reason": "spam"})).await;
    assert_eq!(status, 201, "{filed}");
    assert_eq!(filed["status"], "open");
    let (status, again) = report(&owner, &s, json!({"seq": seq, "reason": "abuse"})).await;
    assert_eq!((status, &again["id"]), (200, &filed["id"]), "{again}");
    let (status, own) = report(&member, &s, json!({"seq": seq, "reason": "spam"})).await;
    assert_eq!(
        (status, own["error"]["code"].as_str()),
        (400, Some("cannot_report_own"))
    );
    let (status, bad) = report(&owner, &s, json!({"seq": seq, "reason": "boring"})).await;
    assert_eq!(status, 400, "{bad}");
    let (status, _) = report(&owner, &s, json!({"seq": 9999, "reason": "spam"})).await;
    assert_eq!(status, 404);
    let stranger = User::new(h, "mod-stranger");
    let (status, _) = report(&stranger, &s, json!({"seq": seq, "reason": "spam"})).await;
    assert_eq!(status, 404, "a stranger learns nothing of the session");

    // The queue: admins only, the message with its reasons counted.
    let item = queue_has(&admin, &s, seq).await.expect("queued");
    assert_eq!(item["reports"], 1, "{item}");
    assert_eq!(item["reasons"], json!([{"reason": "spam", "count": 1}]));
    assert_eq!(item["author_id"], member.id.as_str());
    let (status, _) = owner.call(Method::GET, "/v1/admin/reports", None).await;
    assert_eq!(status, 404);

    // The removal: live to every socket, naming the moderator and reason.
    let (status, removed) = admin
        .call(
            Method::POST,
            &format!("/v1/admin/sessions/{s}/remove"),
            Some(json!({"seq": seq, "reason": "spam"})),
        )
        .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["reports_closed"], 1);
    assert_eq!(removed["removed"]["by"]["id"], admin.id.as_str());
    for ws in [&mut owner_ws, &mut member_ws] {
        let (f, _) = recv_type(ws, "deleted").await;
        assert_eq!(f["seq"], seq);
        assert_eq!(f["removed"]["by"]["name"], admin.name.as_str(), "{f}");
        assert_eq!(f["removed"]["reason"], "spam");
    }
    assert!(queue_has(&admin, &s, seq).await.is_none(), "off the queue");

    // History: a tombstone that says who removed it; the text is gone.
    let m = message(&member, &s, seq).await;
    assert_eq!(
        (m["deleted"].as_bool(), m["text"].as_str()),
        (Some(true), Some(""))
    );
    assert_eq!(m["removed"]["by"]["id"], admin.id.as_str(), "{m}");

    // Resume: a device that was away gets the removal exactly once.
    let url = format!(
        "{}changes={changes_before}&ticket={}",
        owner.plain_ws_url(&s, Some(seq)),
        owner.ticket(&s).await
    );
    let mut back = connect(&url).await;
    let (f, _) = recv_type(&mut back, "deleted").await;
    assert_eq!(f["removed"]["reason"], "spam", "{f}");
    recv_type(&mut back, "synced").await;

    // The original stays for audit, readable by admins only.
    let path = format!("/v1/admin/sessions/{s}/moderation");
    let (status, record) = admin.call(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{record}");
    let r = &record["removals"][0];
    assert_eq!(r["original"], "buy cheap pills at example.com", "{record}");
    assert_eq!(
        (r["seq"].as_u64(), r["author_id"].as_str()),
        (Some(seq), Some(member.id.as_str()))
    );
    let (status, _) = owner.call(Method::GET, &path, None).await;
    assert_eq!(status, 404);

    // D1's copy is a tombstone too: the text is nowhere in plain form.
    h.replicated(&s).await;
    let rows = h
        .session_sql(
            &s,
            "SELECT body, deleted_at FROM messages WHERE session_id = ?1 AND seq = ?2",
            json!([s, seq]),
        )
        .await;
    assert_eq!(rows[0]["body"], "", "{rows:?}");
    assert!(rows[0]["deleted_at"].is_i64());

    // Once is enough; the audit trail has who did it.
    let (status, twice) = admin
        .call(
            Method::POST,
            &format!("/v1/admin/sessions/{s}/remove"),
            Some(json!({"seq": seq, "reason": "spam"})),
        )
        .await;
    assert_eq!(
        (status, twice["error"]["code"].as_str()),
        (409, Some("message_deleted"))
    );
    let (status, gone) = report(&owner, &s, json!({"seq": seq, "reason": "spam"})).await;
    assert_eq!(
        (status, gone["error"]["code"].as_str()),
        (409, Some("message_deleted"))
    );
    let audited = format!("/v1/admin/audit?action=admin.remove&actor={}", admin.id);
    let trail = wait_for_audit(&admin, &audited, 2).await;
    assert!(trail.iter().all(|e| e["target"] == s.as_str()), "{trail:?}");
}

/// The audit entries at `path` once there are `n` (written after the
/// response, so they may lag it a little).
async fn wait_for_audit(admin: &User, path: &str, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let (status, page) = admin.call(Method::GET, path, None).await;
        assert_eq!(status, 200, "{page}");
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        if entries.len() >= n {
            return entries;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} audit entries at {path}");
}

#[tokio::test]
async fn dismissing_closes_the_reports_and_keeps_the_message() {
    let h = Harness::shared();
    let (owner, member, admin, s) = staffed(h, "mod-dismiss").await;
    let (mut ws, _, _) = member.join(&s, None).await;
    let seq = send_msg(&mut ws, "fine-1", "a fine message").await["seq"]
        .as_u64()
        .unwrap();
    let (status, _) = report(&owner, &s, json!({"seq": seq, "reason": "other"})).await;
    assert_eq!(status, 201);
    let dismiss = format!("/v1/admin/sessions/{s}/dismiss");
    let (status, body) = admin
        .call(Method::POST, &dismiss, Some(json!({"seq": seq})))
        .await;
    assert_eq!(
        (status, body["reports_closed"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    assert!(queue_has(&admin, &s, seq).await.is_none());
    assert_eq!(message(&owner, &s, seq).await["text"], "a fine message");
    let (status, _) = admin
        .call(Method::POST, &dismiss, Some(json!({"seq": seq})))
        .await;
    assert_eq!(status, 404, "nothing open is left to dismiss");
    let rows = h
        .sql(
            "SELECT status, resolved_by FROM reports WHERE session_id = ?1",
            json!([s]),
        )
        .await;
    assert_eq!(
        rows,
        vec![json!({"status": "dismissed", "resolved_by": admin.id})]
    );
}

async fn sanction(admin: &User, s: &str, body: Value) -> (u16, Value) {
    admin
        .call(
            Method::POST,
            &format!("/v1/admin/sessions/{s}/sanctions"),
            Some(body),
        )
        .await
}

async fn lift(admin: &User, s: &str, user: &User) -> u16 {
    let path = format!("/v1/admin/sessions/{s}/sanctions/{}", user.id);
    admin.call(Method::DELETE, &path, None).await.0
}

#[tokio::test]
async fn a_mute_stops_speaking_until_it_ends_and_a_ban_shuts_the_door() {
    let h = Harness::shared();
    let (owner, member, admin, s) = staffed(h, "mod-sanction").await;
    let (mut ws, _, _) = member.join(&s, None).await;
    let seq = send_msg(&mut ws, "before", "before the mute").await["seq"]
        .as_u64()
        .unwrap();

    // Bad requests.
    for (body, code) in [
        (
            json!({"user_id": member.id, "kind": "mute", "duration_secs": 0, "reason": "spam"}),
            "invalid_duration",
        ),
        (
            json!({"user_id": admin.id, "kind": "ban", "reason": "spam"}),
            "cannot_sanction_self",
        ),
        (
            json!({"user_id": member.id, "kind": "kick", "reason": "spam"}),
            "invalid_json",
        ),
    ] {
        let (status, e) = sanction(&admin, &s, body).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (400, Some(code)),
            "{e}"
        );
    }
    assert_eq!(lift(&admin, &s, &member).await, 404, "nothing in force");

    // A 2-second mute: told at once, every write refused, reading open.
    let (status, m) = sanction(
        &admin,
        &s,
        json!({"user_id": member.id, "kind": "mute", "duration_secs": 2, "reason": "harassment"}),
    )
    .await;
    assert_eq!(status, 201, "{m}");
    let (told, _) = recv_type(&mut ws, "error").await;
    assert_eq!(told["code"], "muted");
    assert!(told["retry_after_ms"].as_u64().unwrap() <= 2000, "{told}");
    send_json(
        &mut ws,
        json!({"type": "send", "client_id": "muted-1", "text": "still here"}),
    )
    .await;
    let (e, _) = recv_type(&mut ws, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["client_id"].as_str()),
        (Some("muted"), Some("muted-1"))
    );
    send_json(
        &mut ws,
        json!({"type": "react", "seq": seq, "emoji": "👍", "action": "add", "client_id": "r1"}),
    )
    .await;
    let (e, _) = recv_type(&mut ws, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["client_id"].as_str()),
        (Some("muted"), Some("r1"))
    );
    assert_eq!(message(&member, &s, seq).await["text"], "before the mute");
    let (status, record) = admin
        .call(
            Method::GET,
            &format!("/v1/admin/sessions/{s}/moderation"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(record["sanctions"][0]["kind"], "mute", "{record}");
    // It ends by itself.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    send_msg(&mut ws, "after", "the mute ended").await;

    // A ban: the socket closes with 4003, HTTP answers 403 banned, and
    // the owner is untouched. Lifting it opens the door again.
    let (status, _) = sanction(
        &admin,
        &s,
        json!({"user_id": member.id, "kind": "ban", "reason": "abuse"}),
    )
    .await;
    assert_eq!(status, 201);
    let (e, _) = recv_type(&mut ws, "error").await;
    assert_eq!(e["code"], "banned");
    assert_eq!(close_code(&mut ws).await, Some(4003));
    let (status, e) = member
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!((status, e["error"]["code"].as_str()), (403, Some("banned")));
    let (status, _) = member
        .call(Method::POST, &format!("/v1/sessions/{s}/tickets"), None)
        .await;
    assert_eq!(status, 403);
    let (code, _) = refused_upgrade_as(&member.plain_ws_url(&s, None), Some(&member.token)).await;
    assert_eq!(code, 403);
    assert_eq!(owner.history_texts(&s).await.len(), 2);
    assert_eq!(lift(&admin, &s, &member).await, 204);
    let (mut ws, _, _) = member.join(&s, None).await;
    send_msg(&mut ws, "back", "thanks").await;
}

/// The texts of `user`'s view of the session's history.
async fn seen(user: &User, s: &str) -> Vec<String> {
    user.history_texts(s).await
}

#[tokio::test]
async fn a_block_hides_the_blocked_users_messages_from_the_blocker_live_and_in_history() {
    let h = Harness::shared();
    let (ann, bo, _admin, s) = staffed(h, "mod-block").await;
    let cy = User::new(h, "mod-block-cy");
    ann.add_member(&s, &cy).await;
    let (mut bo_ws, _, _) = bo.join(&s, None).await;
    let before = send_msg(&mut bo_ws, "b0", "bo before the block").await["seq"]
        .as_u64()
        .unwrap();

    // The list: one entry per person, never oneself.
    let path = format!("/v1/me/blocks/{}", bo.id);
    let (status, body) = ann.call(Method::PUT, &path, None).await;
    assert_eq!((status, &body["blocked"]), (201, &json!(bo.id)), "{body}");
    assert_eq!(ann.call(Method::PUT, &path, None).await.0, 200);
    let (status, list) = ann.call(Method::GET, "/v1/me/blocks", None).await;
    assert_eq!((status, list), (200, json!({"blocked": [bo.id]})));
    let own = format!("/v1/me/blocks/{}", ann.id);
    let (status, e) = ann.call(Method::PUT, &own, None).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("cannot_block_self"))
    );

    // History hides Bo's messages from Ann only.
    ann.until_history_shows(&s, "bo before the block", false)
        .await;
    assert!(seen(&cy, &s)
        .await
        .contains(&"bo before the block".to_string()));

    // Live: Bo's new message and his edit reach Cy, not Ann; Cy's reach Ann.
    let (mut ann_ws, ann_hello, replayed) = ann.join(&s, Some(0)).await;
    assert!(
        replayed.iter().all(|m| m["author"]["id"] != bo.id.as_str()),
        "{replayed:?}"
    );
    let (mut cy_ws, _, _) = cy.join(&s, None).await;
    send_msg(&mut bo_ws, "b1", "bo while blocked").await;
    send_json(
        &mut bo_ws,
        json!({"type": "edit", "seq": before, "text": "bo edited while blocked"}),
    )
    .await;
    let (m, _) = recv_type(&mut cy_ws, "message").await;
    assert_eq!(m["text"], "bo while blocked");
    let (e, _) = recv_type(&mut cy_ws, "edited").await;
    assert_eq!(e["text"], "bo edited while blocked");
    let hi = send_msg(&mut cy_ws, "c1", "cy says hi").await["seq"].clone();
    let (m, skipped) = recv_type(&mut ann_ws, "message").await;
    assert_eq!(
        m["text"], "cy says hi",
        "Bo's message came first: {skipped:?}"
    );
    assert!(
        skipped.iter().all(|f| f["type"] != "edited"),
        "Bo's edit reached Ann: {skipped:?}"
    );
    // Nor do his reactions or his typing; Cy sees both.
    let thumbs = json!({"type": "react", "seq": hi, "emoji": "👍", "action": "add"});
    send_json(&mut bo_ws, thumbs).await;
    send_json(&mut bo_ws, json!({"type": "typing"})).await;
    let (r, _) = recv_type(&mut cy_ws, "reaction").await;
    assert_eq!(r["user"]["id"], bo.id.as_str());
    recv_type(&mut cy_ws, "typing").await;
    let last = send_msg(&mut cy_ws, "c2", "sentinel").await["seq"]
        .as_u64()
        .unwrap();
    let (m, skipped) = recv_type(&mut ann_ws, "message").await;
    assert_eq!(m["text"], "sentinel");
    assert!(
        skipped
            .iter()
            .all(|f| f["type"] != "reaction" && f["type"] != "typing"),
        "Bo's reaction or typing reached Ann: {skipped:?}"
    );
    // A device of Ann's resuming from before: no change of Bo's either.
    let since = ann_hello["last_change"].as_u64().unwrap();
    let url = format!(
        "{}changes={since}&ticket={}",
        ann.plain_ws_url(&s, Some(last)),
        ann.ticket(&s).await
    );
    let mut back = connect(&url).await;
    let (_, replayed) = recv_type(&mut back, "synced").await;
    assert!(
        replayed
            .iter()
            .all(|f| f["user"]["id"] != bo.id.as_str() && f["text"] != "bo edited while blocked"),
        "{replayed:?}"
    );

    // Unblocking shows them again.
    let (status, _) = ann.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    ann.until_history_shows(&s, "bo while blocked", true).await;
    assert_eq!(
        ann.call(Method::DELETE, &path, None).await.0,
        204,
        "idempotent"
    );

    // A block holds in sessions made after it, from their first message.
    ann.call(Method::PUT, &path, None).await;
    let s2 = ann.create_session("after the block").await;
    ann.add_member(&s2, &bo).await;
    let (mut bo2, _, _) = bo.join(&s2, None).await;
    send_msg(&mut bo2, "b2", "bo in a new session").await;
    assert!(seen(&ann, &s2).await.is_empty());
    assert_eq!(seen(&bo, &s2).await, vec!["bo in a new session"]);
}

#[tokio::test]
async fn a_user_blocks_at_most_the_limit() {
    let h = Harness::shared();
    let ann = User::new(h, "mod-limit");
    for i in 0..100 {
        let (status, b) = ann
            .call(Method::PUT, &format!("/v1/me/blocks/limit-{i}"), None)
            .await;
        assert_eq!(status, 201, "{i}: {b}");
    }
    let (status, e) = ann.call(Method::PUT, "/v1/me/blocks/limit-100", None).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("too_many_blocks"))
    );
    assert_eq!(
        ann.call(Method::DELETE, "/v1/me/blocks/limit-0", None)
            .await
            .0,
        204
    );
    assert_eq!(
        ann.call(Method::PUT, "/v1/me/blocks/limit-100", None)
            .await
            .0,
        201
    );
}

/// Waits until `user`'s read of `s`'s history answers `status` (a
/// deployment-wide sanction reaches the session's object just after the
/// response).
async fn until_status(user: &User, s: &str, status: u16) {
    for _ in 0..100 {
        let (got, _) = user
            .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
            .await;
        if got == status {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{s}: never {status}");
}

#[tokio::test]
async fn a_deployment_ban_reaches_every_session_of_the_user_and_new_ones() {
    let h = Harness::shared();
    let (owner, member, admin, s) = staffed(h, "mod-deploy").await;
    // (D1 may not list the membership yet: the ban's second pass, after
    // the flush that writes it, reaches the session then.)
    let (mut ws, _, _) = member.join(&s, None).await;
    let (status, x) = admin
        .call(
            Method::POST,
            "/v1/admin/sanctions",
            Some(json!({"user_id": member.id, "kind": "ban", "reason": "spam"})),
        )
        .await;
    assert_eq!((status, x["kind"].as_str()), (201, Some("ban")), "{x}");
    // Their open socket closes, their sessions refuse them, and they start
    // nothing new.
    let (e, _) = recv_type(&mut ws, "error").await;
    assert_eq!(e["code"], "banned");
    assert_eq!(close_code(&mut ws).await, Some(4003));
    until_status(&member, &s, 403).await;
    let (status, e) = member
        .call(Method::POST, "/v1/sessions", Some(json!({"title": "new"})))
        .await;
    assert_eq!((status, e["error"]["code"].as_str()), (403, Some("banned")));
    // A session they are added to later knows it from the start.
    let s2 = owner.create_session("later").await;
    owner.add_member(&s2, &member).await;
    let (status, _) = member
        .call(Method::GET, &format!("/v1/sessions/{s2}/messages"), None)
        .await;
    assert_eq!(status, 403);
    let (status, list) = admin.call(Method::GET, "/v1/admin/sanctions", None).await;
    assert_eq!(status, 200);
    assert!(list["sanctions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["user_id"] == member.id.as_str()));
    let (status, _) = owner.call(Method::GET, "/v1/admin/sanctions", None).await;
    assert_eq!(status, 404, "admins only");

    // Lifted: everywhere again.
    let path = format!("/v1/admin/sanctions/{}", member.id);
    assert_eq!(admin.call(Method::DELETE, &path, None).await.0, 204);
    assert_eq!(admin.call(Method::DELETE, &path, None).await.0, 404);
    until_status(&member, &s, 200).await;
    until_status(&member, &s2, 200).await;
    let (status, _) = member
        .call(Method::POST, "/v1/sessions", Some(json!({"title": "back"})))
        .await;
    assert_eq!(status, 201);

    // A deployment mute: they read, but do not speak, anywhere.
    let (status, _) = admin
        .call(
            Method::POST,
            "/v1/admin/sanctions",
            Some(json!({"user_id": member.id, "kind": "mute", "duration_secs": 60, "reason": "abuse"})),
        )
        .await;
    assert_eq!(status, 201);
    let (mut ws, _, _) = member.join(&s, None).await;
    for _ in 0..100 {
        send_json(
            &mut ws,
            json!({"type": "send", "client_id": unique("mute"), "text": "hello?"}),
        )
        .await;
        let f = loop {
            let f = recv(&mut ws).await;
            if f["type"] == "ack" || f["type"] == "error" {
                break f;
            }
        };
        if f["code"] == "muted" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("never muted");
}
