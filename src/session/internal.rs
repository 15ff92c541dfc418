//! The internal request contract, shared by the Worker (caller) and the
//! object (callee) so the two cannot drift apart.

use crate::error::AppError;
use crate::protocol::{AuthorKind, UserRef};
use worker::{Env, Headers, Method, Request, RequestInit, Stub};

pub const BINDING: &str = "SESSIONS";
pub const CONNECT_URL: &str = "https://session.internal/connect";
pub const CLOSE_URL: &str = "https://session.internal/close";
pub const MODE_URL: &str = "https://session.internal/mode";
pub const HEADER_MODE: &str = "x-confab-mode";
pub const HEADER_SESSION: &str = "x-confab-session";
pub const HEADER_REQUEST_ID: &str = "x-confab-request-id";
pub const HEADER_USER: &str = "x-confab-user";
pub const HEADER_KIND: &str = "x-confab-kind";
pub const HEADER_AFTER: &str = "x-confab-after";
pub const HEADER_TICKET: &str = "x-confab-ticket";

/// A ticket the connecting socket was admitted with: its id and expiry
/// (unix ms). The object admits each ticket once.
pub struct TicketUse<'a> {
    pub id: &'a str,
    pub expires_at: u64,
}

pub fn stub(env: &Env, session_id: &str) -> Result<Stub, AppError> {
    env.durable_object(BINDING)
        .and_then(|ns| ns.id_from_name(session_id)?.get_stub())
        .map_err(AppError::internal)
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
) -> Result<Request, AppError> {
    let user = serde_json::to_string(user).map_err(AppError::internal)?;
    let after = after.map(|a| a.to_string());
    let ticket = ticket.map(|t| format!("{} {}", t.id, t.expires_at));
    let mut headers = vec![
        ("upgrade", "websocket"),
        (HEADER_SESSION, session_id),
        (HEADER_REQUEST_ID, request_id),
        (HEADER_USER, user.as_str()),
        (HEADER_KIND, kind.as_str()),
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
    let by = serde_json::to_string(by).map_err(AppError::internal)?;
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
