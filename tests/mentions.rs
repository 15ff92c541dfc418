//! Mentions (`src/mention.rs`, `src/hub.rs`): `@name` resolves at send time
//! to the session's people and is stored with the message; the person
//! mentioned gets a `mention` frame on their sockets in their other
//! sessions, through their per-user object, unless they block the author.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

/// A user with a display name of our choosing.
fn person(h: &Harness, prefix: &str, name: &str) -> User {
    let u = User::new(h, prefix);
    User {
        token: token(&u.id, name),
        name: name.to_string(),
        ..u
    }
}

#[tokio::test]
async fn a_mention_is_stored_and_reaches_the_person_in_their_other_sessions() {
    let h = Harness::shared();
    let ann = person(h, "men-ann", "Ann Smith");
    let bo = person(h, "men-bo", "Bo Brown");
    let cy = person(h, "men-cy", "Cy Young");
    let s1 = ann.create_session("where the mention is").await;
    ann.add_member(&s1, &bo).await;
    let elsewhere = bo.create_session("bo's own").await;
    // Bo is in both; the session learns his name from his socket.
    let (mut bo_here, _, _) = bo.join(&s1, None).await;
    let (mut bo_there, _, _) = bo.join(&elsewhere, None).await;
    let (mut ann_ws, _, _) = ann.join(&s1, None).await;

    let text = "hey @bo, see @BoBrown and @cy (mail bo@example.com)";
    let seq = send_msg(&mut ann_ws, "m1", text).await["seq"]
        .as_u64()
        .unwrap();
    // Stored with the message: Bo once; Cy is not in this session.
    let (m, _) = recv_type(&mut bo_here, "message").await;
    assert_eq!(
        m["mentions"],
        json!([{"id": bo.id, "name": "Bo Brown"}]),
        "{m}"
    );
    let (status, page) = ann
        .call(Method::GET, &format!("/v1/sessions/{s1}/messages"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["messages"][0]["mentions"][0]["id"], bo.id.as_str());
    // Bo's other session's socket is told where, by whom, and what.
    let (f, _) = recv_type(&mut bo_there, "mention").await;
    assert_eq!(
        (
            f["session"].as_str(),
            f["seq"].as_u64(),
            f["by"]["name"].as_str()
        ),
        (Some(s1.as_str()), Some(seq), Some("Ann Smith"))
    );
    assert_eq!(f["text"], text);
    assert_eq!(f["message_id"], m["id"]);
    // Not in the session where the message itself arrived.
    assert_no_frame_of(&mut bo_here, "mention", 300).await;

    // Cy, a member now, is found by first name; nobody is by an address.
    ann.add_member(&s1, &cy).await;
    let (_cy_ws, _, _) = cy.join(&s1, None).await;
    send_msg(&mut ann_ws, "m2", "@cy welcome").await;
    let (m, _) = recv_type(&mut bo_here, "message").await;
    assert_eq!(m["mentions"], json!([{"id": cy.id, "name": "Cy Young"}]));

    // Someone who blocked the author is not told.
    let (status, _) = bo
        .call(
            Method::PUT,
            &format!("/v1/me/blocks/{}?session={s1}", ann.id),
            None,
        )
        .await;
    assert_eq!(status, 201);
    send_msg(&mut ann_ws, "m3", "@bo are you there?").await;
    assert_no_frame_of(&mut bo_there, "mention", 1500).await;
}
