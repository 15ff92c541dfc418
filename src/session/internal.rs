//! The Worker's side of the contract with the session object
//! (`crate::contract`): sending a [`Call`] and reading its typed reply.

use crate::bindings::SESSIONS;
use crate::contract::{Call, CALL_HEADER, ORIGIN};
use crate::error::AppError;
use crate::http::Ctx;
use crate::trace::Trace;
use serde::de::DeserializeOwned;
use worker::{Env, Headers, Method, Request, RequestInit, Response, Stub};

fn stub(env: &Env, session_id: &str) -> Result<Stub, AppError> {
    env.durable_object(SESSIONS)
        .and_then(|ns| ns.id_from_name(session_id)?.get_stub())
        .map_err(AppError::internal)
}

/// The longest the Worker waits for the session object. Every call is a
/// few local storage operations (a legacy session's first load reads D1
/// once); one that takes longer has met a fault (a panic in the object
/// leaves its answer pending forever, see the README's "What a panic
/// costs"), and the caller gets 503 instead of hanging.
pub const CALL_TIMEOUT_MS: u64 = 10_000;

fn request(call: &Call, trace: &Trace) -> Result<Request, AppError> {
    let h = Headers::new();
    h.set(CALL_HEADER, &call.encode())
        .map_err(AppError::internal)?;
    // The request's trace goes on to the object (W3C Trace Context).
    h.set("traceparent", &trace.header())
        .map_err(AppError::internal)?;
    let method = if let Call::Connect { .. } = call {
        h.set("upgrade", "websocket").map_err(AppError::internal)?;
        Method::Get
    } else {
        Method::Post
    };
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(h);
    Request::new_with_init(&format!("{ORIGIN}/{}", call.op()), &init).map_err(AppError::internal)
}

/// Sends one call and returns the object's response as it is (a 101 for
/// `connect`). Errors the object answered with are turned back into
/// `AppError`s, so the Worker renders them in its one place.
pub async fn call(ctx: &Ctx, call: &Call) -> Result<Response, AppError> {
    call_with(&ctx.env, &ctx.trace, call).await
}

/// `call` for work that outlives the request (after the response).
pub async fn call_with(env: &Env, trace: &Trace, call: &Call) -> Result<Response, AppError> {
    let stub = stub(env, call.session())?;
    let req = request(call, trace)?;
    let mut resp =
        match crate::runtime::timeout(CALL_TIMEOUT_MS, stub.fetch_with_request(req)).await {
            Some(r) => r.map_err(AppError::internal)?,
            None => return Err(AppError::Unavailable { check: "session" }),
        };
    let status = resp.status_code();
    if status < 400 {
        return Ok(resp);
    }
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    Err(from_object(status, &body))
}

/// `call` for replies with a JSON body.
pub async fn call_json<T: DeserializeOwned>(ctx: &Ctx, c: &Call) -> Result<T, AppError> {
    call(ctx, c)
        .await?
        .json::<T>()
        .await
        .map_err(AppError::internal)
}

/// The error an object answered with, as the Worker's own. Only the codes
/// the object produces are known; anything else is internal (its detail
/// was logged by the object).
fn from_object(status: u16, body: &serde_json::Value) -> AppError {
    let code = body["error"]["code"].as_str().unwrap_or_default();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    match code {
        "not_found" => AppError::NotFound,
        "ticket_used" => AppError::Unauthorized("ticket_used"),
        "too_many_members" => AppError::bad_request("too_many_members", message.to_string()),
        "already_assigned" => AppError::AlreadyAssigned,
        "session_closed" => AppError::SessionClosed,
        "already_uploaded" => AppError::Attachment(crate::attachment::Refusal::AlreadyUploaded),
        "cannot_report_own" => AppError::bad_request("cannot_report_own", message.to_string()),
        "message_deleted" => AppError::MessageGone,
        // The time left stays with the object: HTTP bodies carry no
        // retry time, and the socket's error frame has it.
        "banned" => AppError::Sanctioned {
            kind: crate::moderation::Kind::Ban,
            retry_after_ms: None,
        },
        _ if status == 503 => AppError::Unavailable { check: "session" },
        _ => AppError::Internal(format!("session object answered {status} {code}")),
    }
}
