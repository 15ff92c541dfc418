//! Attachments (`src/attachment.rs`): a member asks for an upload slot,
//! PUTs the bytes to its signed URL, and names the upload in a `send`;
//! members fetch it through short-lived signed links. R2 holds only sealed
//! bytes, which go with their message or session. Against the real worker
//! with Miniflare's R2.

mod common;

use base64ct::{Base64, Encoding};
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// A PNG's signature and IHDR chunk (`w` x `h`), then `tail`: what the
/// server reads of an image (it never decodes one).
fn png(w: u32, h: u32, tail: &[u8]) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(tail);
    b
}

/// Asks for a slot: (status, body).
async fn slot(user: &User, s: &str, name: &str, kind: &str, size: usize) -> (u16, Value) {
    let body = json!({"name": name, "type": kind, "size": size});
    (user)
        .call(
            Method::POST,
            &format!("/v1/sessions/{s}/attachments"),
            Some(body),
        )
        .await
}

/// PUTs `bytes` to an upload URL: (status, body).
async fn put(base: &str, url: &str, bytes: Vec<u8>) -> (u16, Value) {
    let res = http()
        .put(format!("{base}{url}"))
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Uploads a file: its attachment view, and the upload URL it used.
async fn upload(user: &User, s: &str, name: &str, kind: &str, bytes: Vec<u8>) -> (Value, String) {
    let (status, slot) = slot(user, s, name, kind, bytes.len()).await;
    assert_eq!(status, 201, "{slot}");
    let url = slot["upload_url"].as_str().unwrap().to_string();
    let (status, view) = put(&user.base, &url, bytes).await;
    assert_eq!(status, 201, "{view}");
    (view, url)
}

/// Sends a message with attachments; gives its ack or error frame.
async fn send_with(ws: &mut Ws, text: &str, attachments: Value) -> Value {
    let key = unique("att");
    send_json(
        ws,
        json!({"type": "send", "client_id": key, "text": text, "attachments": attachments}),
    )
    .await;
    loop {
        let f = recv(ws).await;
        if (f["type"] == "ack" || f["type"] == "error") && f["client_id"] == key.as_str() {
            return f;
        }
    }
}

/// Fetches a download link without any token: (status, headers, bytes).
async fn fetch(base: &str, url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let res = http().get(format!("{base}{url}")).send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.unwrap().to_vec())
}

async fn link(user: &User, s: &str, id: &str) -> (u16, Value) {
    (user)
        .call(
            Method::GET,
            &format!("/v1/sessions/{s}/attachments/{id}"),
            None,
        )
        .await
}

/// Waits until R2 holds exactly `n` objects under the session's prefix.
async fn r2_settles(h: &Harness, s: &str, n: usize) -> Vec<Value> {
    for _ in 0..50 {
        let objects = h.r2(&format!("sessions/{s}/")).await;
        if objects.len() == n {
            return objects;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "R2 never held {n} objects for {s}: {:?}",
        h.r2(&format!("sessions/{s}/")).await
    );
}

const MARKER: &[u8] = b"CONFAB-PLAINTEXT-MARKER-0123456789";

#[tokio::test]
async fn an_image_goes_up_sealed_reaches_members_and_goes_with_its_message() {
    let h = Harness::shared();
    let owner = User::new(h, "owner");
    let bob = User::new(h, "bob");
    let stranger = User::new(h, "stranger");
    let s = owner.create_session("files").await;
    owner.add_member(&s, &bob).await;
    let (mut mine, _, _) = owner.join(&s, None).await;
    let (mut theirs, _, _) = bob.join(&s, None).await;

    let bytes = png(640, 480, MARKER);
    let (view, url) = upload(&owner, &s, "screen shot.png", "image/png", bytes.clone()).await;
    assert_eq!(view["name"], "screen shot.png");
    assert_eq!(view["type"], "image/png");
    assert_eq!(view["size"], bytes.len());
    assert_eq!(
        (view["width"].as_u64(), view["height"].as_u64()),
        (Some(640), Some(480))
    );
    let id = view["id"].as_str().unwrap().to_string();

    // At rest R2 holds a sealed envelope, never the bytes.
    let stored = r2_settles(h, &s, 1).await;
    let raw = Base64::decode_vec(stored[0]["base64"].as_str().unwrap()).unwrap();
    assert!(raw.starts_with(b"v1."), "not an envelope");
    assert!(
        !raw.windows(MARKER.len()).any(|w| w == MARKER),
        "plaintext in R2"
    );

    // The upload URL works once: a replay is refused and leaves nothing.
    let (status, e) = put(&owner.base, &url, png(1, 1, b"swapped")).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("already_uploaded")),
        "{e}"
    );
    r2_settles(h, &s, 1).await;

    // Sent with an empty text; every socket gets the attachment.
    let ack = send_with(&mut mine, "", json!([id])).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let (m, _) = recv_type(&mut theirs, "message").await;
    assert_eq!(m["attachments"][0]["id"], id.as_str(), "{m}");
    assert_eq!(m["attachments"][0]["width"], 640);
    let seq = ack["seq"].as_u64().unwrap();

    // A member gets a link that works without a token; a stranger gets 404.
    let (status, l) = link(&bob, &s, &id).await;
    assert_eq!(status, 200, "{l}");
    assert!(l["expires_at"].as_i64().unwrap() > now_ms());
    let file_url = l["url"].as_str().unwrap().to_string();
    let (status, headers, got) = fetch(&bob.base, &file_url).await;
    assert_eq!(status, 200);
    assert_eq!(got, bytes, "the bytes as uploaded");
    assert_eq!(headers["content-type"], "image/png");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("inline"));
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let (status, e) = link(&stranger, &s, &id).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    // A link altered in any way is no link.
    let mut forged = file_url.clone().into_bytes();
    let i = forged.len() - 3;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let (status, _, _) = fetch(&bob.base, &String::from_utf8(forged).unwrap()).await;
    assert_eq!(status, 404);
    // An upload URL is not a download link.
    let (status, _, _) = fetch(&bob.base, &url.replace("/v1/uploads/", "/v1/files/")).await;
    assert_eq!(status, 404);

    // History keeps it; a second send cannot carry it again.
    let (status, page) = bob
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(status, 200);
    let last = page["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["attachments"][0]["name"], "screen shot.png", "{last}");
    let again = send_with(&mut mine, "again", json!([id])).await;
    assert_eq!(again["code"], "attachment_not_found", "{again}");

    // Deleting the message deletes the file: the link now finds nothing.
    let key = unique("del");
    send_json(
        &mut mine,
        json!({"type": "delete", "seq": seq, "client_id": key}),
    )
    .await;
    recv_type(&mut theirs, "deleted").await;
    r2_settles(h, &s, 0).await;
    let (status, _, _) = fetch(&bob.base, &file_url).await;
    assert_eq!(status, 404);
    let (status, _) = link(&bob, &s, &id).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_uploads_and_foreign_attachments_get_documented_errors() {
    let h = Harness::shared();
    let owner = User::new(h, "owner");
    let bob = User::new(h, "bob");
    let stranger = User::new(h, "stranger");
    let s = owner.create_session("bad files").await;
    let other = owner.create_session("other").await;
    owner.add_member(&s, &bob).await;

    // Slots the policy refuses, and a stranger, who learns nothing.
    let eleven_mib = 11 * 1024 * 1024;
    for (name, kind, size, status, code) in [
        (
            "big.png",
            "image/png",
            eleven_mib,
            413,
            "attachment_too_large",
        ),
        ("page.html", "text/html", 10, 415, "unsupported_type"),
        ("logo.svg", "image/svg+xml", 10, 415, "unsupported_type"),
        ("empty.txt", "text/plain", 0, 400, "attachment_empty"),
        ("../x.txt", "text/plain", 10, 400, "invalid_attachment_name"),
    ] {
        let (got, e) = slot(&owner, &s, name, kind, size).await;
        assert_eq!(
            (got, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{name}: {e}"
        );
    }
    let (status, e) = slot(&stranger, &s, "a.txt", "text/plain", 5).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // Bytes that are not what the slot says, or more of them, or none.
    let (_, sl) = slot(&owner, &s, "a.png", "image/png", 64).await;
    let url = sl["upload_url"].as_str().unwrap();
    let (status, e) = put(
        &owner.base,
        url,
        b"<html><script>alert(1)</script>".to_vec(),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (415, Some("content_mismatch"))
    );
    let (status, e) = put(&owner.base, url, png(1, 1, &[0; 64])).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (413, Some("attachment_too_large"))
    );
    let (status, e) = put(&owner.base, url, Vec::new()).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("attachment_empty"))
    );
    let (status, e) = put(&owner.base, "/v1/uploads/not.a-token", b"x".to_vec()).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // A member removed after getting a slot can no longer upload with it.
    let (_, sl) = slot(&bob, &s, "late.txt", "text/plain", 5).await;
    let (status, _) = owner
        .call(
            Method::DELETE,
            &format!("/v1/sessions/{s}/members/{}", bob.id),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, e) = put(
        &bob.base,
        sl["upload_url"].as_str().unwrap(),
        b"hello".to_vec(),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{e}"
    );
    // Nothing refused was kept.
    r2_settles(h, &s, 0).await;

    // Sends may carry only the sender's own unsent uploads in this session.
    owner.add_member(&s, &bob).await;
    let (elsewhere, _) = upload(&owner, &other, "o.txt", "text/plain", b"other".to_vec()).await;
    let (bobs, _) = upload(&bob, &s, "b.txt", "text/plain", b"bob's".to_vec()).await;
    let (mut ws, _, _) = owner.join(&s, None).await;
    for (ids, code) in [
        (json!([elsewhere["id"]]), "attachment_not_found"),
        (json!([bobs["id"]]), "attachment_not_found"),
        (json!(["att_nothex"]), "invalid_attachment"),
        (json!([bobs["id"], bobs["id"]]), "invalid_attachment"),
        (
            json!((0..11).map(|_| bobs["id"].clone()).collect::<Vec<_>>()),
            "invalid_attachment",
        ),
    ] {
        let f = send_with(&mut ws, "with files", ids.clone()).await;
        assert_eq!(f["code"], code, "{ids}: {f}");
    }
    // None of it stored a message.
    let texts = owner.history_texts(&s).await;
    assert!(texts.is_empty(), "{texts:?}");
}

#[tokio::test]
async fn erasing_a_session_deletes_its_files() {
    let h = Harness::shared();
    let owner = User::new(h, "owner");
    let s = owner.create_session("erased files").await;
    let (sent, _) = upload(&owner, &s, "a.txt", "text/plain", b"sent".to_vec()).await;
    // One never sent: erasure sweeps the session's whole prefix.
    upload(
        &owner,
        &s,
        "b.pdf",
        "application/pdf",
        b"%PDF-1.7\n".to_vec(),
    )
    .await;
    let (mut ws, _, _) = owner.join(&s, None).await;
    let ack = send_with(&mut ws, "two files", json!([sent["id"]])).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let (status, l) = link(&owner, &s, sent["id"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let url = l["url"].as_str().unwrap().to_string();
    let (status, headers, got) = fetch(&owner.base, &url).await;
    assert_eq!((status, got.as_slice()), (200, b"sent".as_slice()));
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename*=UTF-8''a.txt"));
    r2_settles(h, &s, 2).await;

    let (status, _) = owner
        .call(Method::DELETE, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(status, 204);
    assert!(h.r2(&format!("sessions/{s}/")).await.is_empty());
    let (status, _, _) = fetch(&owner.base, &url).await;
    assert_eq!(status, 404, "a link made before the erasure finds nothing");
}

/// The images in a stand-in request, as (media type, base64), in whichever
/// of the three vendors' wire formats it came.
fn images_in(request: &Value) -> Vec<(String, String)> {
    let body = &request["body"];
    let mut out = Vec::new();
    let turns = body["messages"].as_array().or(body["contents"].as_array());
    for part in turns.into_iter().flatten().flat_map(|m| {
        let parts = m["content"].as_array().or(m["parts"].as_array());
        parts.cloned().unwrap_or_default()
    }) {
        if let Some(url) = part["image_url"]["url"].as_str() {
            let (head, data) = url.split_once(";base64,").unwrap();
            out.push((head.trim_start_matches("data:").into(), data.into()));
        } else if part["type"] == "image" {
            let src = &part["source"];
            out.push((
                src["media_type"].as_str().unwrap().into(),
                src["data"].as_str().unwrap().into(),
            ));
        } else if let Some(d) = part.get("inlineData") {
            out.push((
                d["mimeType"].as_str().unwrap().into(),
                d["data"].as_str().unwrap().into(),
            ));
        }
    }
    out
}

/// The text of the last user turn of a stand-in request.
fn last_user_text(request: &Value) -> String {
    serde_json::to_string(
        request["body"]["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_assistant_sees_images_in_each_vendors_format_when_vision_is_on() {
    let model = unique("m");
    let h = common::llm::runtime(
        &model,
        &[
            ("LLM_PROVIDERS", "openai,anthropic,gemini"),
            ("LLM_VISION", "on"),
            ("LLM_MAX_RETRIES", "0"),
        ],
    );
    // OpenAI and Anthropic refuse, so each of the three vendors gets the turn.
    h.script(&model, json!([{"status": 401}])).await;
    h.script(&format!("{model}-a"), json!([{"status": 401}]))
        .await;
    let u = User::new(&h, "seer");
    let s = u.create_session("vision").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    let bytes = png(32, 16, MARKER);
    let (view, _) = upload(&u, &s, "chart.png", "image/png", bytes.clone()).await;
    let (text, _) = upload(&u, &s, "notes.txt", "text/plain", b"plain notes".to_vec()).await;
    let ack = send_with(&mut ws, "what is this?", json!([view["id"], text["id"]])).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let reply = common::llm::until_reply(&mut ws).await.pop().unwrap();
    assert_eq!(reply["turn"]["provider"], "gemini", "{reply}");

    // Only the image goes as an image, as the bytes uploaded; the text file
    // is named in the turn's text.
    let want = vec![("image/png".to_string(), Base64::encode_string(&bytes))];
    for m in [model.clone(), format!("{model}-a"), format!("{model}-g")] {
        let requests = h.standin_requests(Some(&m)).await;
        assert_eq!(requests.len(), 1, "{m}");
        assert_eq!(
            images_in(&requests[0]),
            want,
            "{m}: {:?}",
            requests[0]["body"]
        );
        let said = serde_json::to_string(&requests[0]["body"]).unwrap();
        assert!(said.contains("what is this?"), "{m}: {said}");
        assert!(
            said.contains("[attached: notes.txt (text/plain)]"),
            "{m}: {said}"
        );
    }
}

#[tokio::test]
async fn without_vision_the_assistant_reads_only_the_files_names() {
    let model = unique("m");
    let h = common::llm::runtime(&model, &[]);
    let u = User::new(&h, "blind");
    let s = u.create_session("no vision").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    let (view, _) = upload(&u, &s, "photo.png", "image/png", png(8, 8, MARKER)).await;
    let ack = send_with(&mut ws, "", json!([view["id"]])).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    common::llm::until_reply(&mut ws).await;
    let requests = h.standin_requests(Some(&model)).await;
    assert_eq!(requests.len(), 1);
    assert!(
        images_in(&requests[0]).is_empty(),
        "{:?}",
        requests[0]["body"]
    );
    let said = last_user_text(&requests[0]);
    assert!(said.contains("[attached: photo.png (image/png)]"), "{said}");
}
