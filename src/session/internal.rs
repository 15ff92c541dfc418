//! The internal request contract, shared by the Worker (caller) and the
//! object (callee) so the two cannot drift apart.

use crate::error::AppError;
use crate::protocol::{AuthorKind, UserRef};
use worker::{Env, Headers, Method, Request, RequestInit, Response, Stub};

pub const BINDING: &str = "SESSIONS";
pub const CONNECT_URL: &str = "https://session.internal/connect";
pub const CLOSE_URL: &str = "https://session.internal/close";
pub const MODE_URL: &str = "https://session.internal/mode";
pub const REVOKE_URL: &str = "https://session.internal/revoke";
/// Development only: the object panics (see `api::dev::fault`).
pub const FAULT_URL: &str = "https://session.internal/fault";
pub const HEADER_MODE: &str = "x-confab-mode";
pub const HEADER_SESSION: &str = "x-confab-session";
pub const HEADER_REQUEST_ID: &str = "x-confab-request-id";
pub const HEADER_USER: &str = "x-confab-user";
pub const HEADER_KIND: &str = "x-confab-kind";
pub const HEADER_AFTER: &str = "x-confab-after";
pub const HEADER_TICKET: &str = "x-confab-ticket";
/// When the connecting identity's token expires (unix ms).
pub const HEADER_EXPIRES: &str = "x-confab-expires";

/// JSON with every non-ASCII character escaped (`\u00fc`): header values
/// must be bytes, and names and user ids may be any Unicode.
pub fn header_json<T: serde::Serialize>(value: &T) -> Result<String, AppError> {
    let json = serde_json::to_string(value).map_err(AppError::internal)?;
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    Ok(out)
}

/// A ticket the connecting socket was admitted with: its id and expiry
/// (unix ms). The object admits each ticket once.
pub struct TicketUse<'a> {
    pub id: &'a str,
    pub expires_at: u64,
}

fn stub(env: &Env, session_id: &str) -> Result<Stub, AppError> {
    env.durable_object(BINDING)
        .and_then(|ns| ns.id_from_name(session_id)?.get_stub())
        .map_err(AppError::internal)
}

/// The longest the Worker waits for the session object. Every call is a
/// few storage operations at most; one that takes longer has met a fault
/// (a panic in the object leaves its answer pending forever, see the
/// README's "What a panic costs"), and the caller gets 503 instead of
/// hanging.
pub const CALL_TIMEOUT_MS: u64 = 10_000;

/// Sends one internal request to the session's object.
pub async fn call(env: &Env, session_id: &str, req: Request) -> Result<Response, AppError> {
    let stub = stub(env, session_id)?;
    match crate::runtime::timeout(CALL_TIMEOUT_MS, stub.fetch_with_request(req)).await {
        Some(r) => r.map_err(AppError::internal),
        None => Err(AppError::Unavailable { check: "session" }),
    }
}

fn request(url: &str, method: Method, headers: &[(&str, &str)]) -> Result<Request, AppError> {
    let h = Headers::new();
    for (k, v) in headers {
        h.set(k, v).map_err(AppError::internal)?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(h);
    Request::new_with_init(url, &init).map_err(AppError::internal)
}

pub fn connect_request(
    session_id: &str,
    request_id: &str,
    user: &UserRef,
    kind: AuthorKind,
    after: Option<u64>,
    ticket: Option<TicketUse<'_>>,
    expires_at: u64,
) -> Result<Request, AppError> {
    let user = header_json(user)?;
    let expires = expires_at.to_string();
    let after = after.map(|a| a.to_string());
    let ticket = ticket.map(|t| format!("{} {}", t.id, t.expires_at));
    let mut headers = vec![
        ("upgrade", "websocket"),
        (HEADER_SESSION, session_id),
        (HEADER_REQUEST_ID, request_id),
        (HEADER_USER, user.as_str()),
        (HEADER_KIND, kind.as_str()),
        (HEADER_EXPIRES, expires.as_str()),
    ];
    if let Some(a) = after.as_deref() {
        headers.push((HEADER_AFTER, a));
    }
    if let Some(t) = ticket.as_deref() {
        headers.push((HEADER_TICKET, t));
    }
    request(CONNECT_URL, Method::Get, &headers)
}

/// Tells the object the session's mode changed (already stored in D1).
pub fn mode_request(
    session_id: &str,
    request_id: &str,
    mode: &str,
    by: &UserRef,
) -> Result<Request, AppError> {
    let by = header_json(by)?;
    request(
        MODE_URL,
        Method::Post,
        &[
            (HEADER_SESSION, session_id),
            (HEADER_REQUEST_ID, request_id),
            (HEADER_MODE, mode),
            (HEADER_USER, by.as_str()),
        ],
    )
}

/// Tells the object that `user_id` lost access (removed as a member): its
/// user sockets are closed with 4003.
pub fn revoke_request(
    session_id: &str,
    request_id: &str,
    user_id: &str,
) -> Result<Request, AppError> {
    let user = header_json(&user_id)?;
    request(
        REVOKE_URL,
        Method::Post,
        &[
            (HEADER_SESSION, session_id),
            (HEADER_REQUEST_ID, request_id),
            (HEADER_USER, user.as_str()),
        ],
    )
}

pub fn fault_request(session_id: &str, request_id: &str) -> Result<Request, AppError> {
    request(
        FAULT_URL,
        Method::Post,
        &[
            (HEADER_SESSION, session_id),
            (HEADER_REQUEST_ID, request_id),
        ],
    )
}

pub fn close_request(session_id: &str, request_id: &str) -> Result<Request, AppError> {
    request(
        CLOSE_URL,
        Method::Post,
        &[
            (HEADER_SESSION, session_id),
            (HEADER_REQUEST_ID, request_id),
        ],
    )
}
