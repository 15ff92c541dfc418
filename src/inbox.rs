//! The desk object: the agents' live inbox.
//!
//! **Keying.** One object per deployment, `idFromName("desk")` on the
//! `DESK` namespace. It holds the admin console's sockets (hibernating,
//! like a session's) and passes on what session objects tell it: each
//! session sends the [`Item`]s one group of commits produced (created, a
//! status change, a message's preview) in one call, after the commit and
//! off the path to the ack, already rendered as `inbox` frames (one per
//! line, [`batch`]). The desk forwards them to every console without
//! parsing them: serialized once, by the session.
//!
//! **What it keeps.** Only sockets (their token's expiry as attachment) and the
//! ids of spent tickets. Items are never stored: a console that was away
//! reloads the listing (D1) when it reconnects, and the next item about a
//! session replaces its line whole. Previews are therefore never at rest
//! here, sealed or not.
//!
//! **Authorization for the socket's life.** The Worker lets admins only
//! reach `connect`, with a single-use ticket or a bearer token; the desk
//! admits each ticket once and ends each socket when its token expires
//! (`token_expired`, close 4001), on its alarm or at the socket's next
//! frame.
//!
//! **Limits.** One object serves every console and every session's
//! events, and each event costs it one send per console. On the 2-core
//! test machine (BENCHMARKS.md, the desk) 100 consoles keep up with 100
//! messages a second across 1,000 sessions (p99 about 100-150 ms) and fall
//! behind at 200 (seconds). A larger desk would shard consoles by team or
//! send each console only the sessions it watches.

use crate::bindings::DESK;
use crate::contract::CALL_HEADER;
use crate::desk::feed::{batch, frames, Connect, Item, READY_FRAME};
use crate::error::{close, AppError, SocketError};
use crate::protocol::{FrameError, PING_FRAME, PONG_FRAME};
use crate::runtime::{end_expired, send_to, spend_ticket, token_expired, Frame};
use worker::{
    durable_object, DurableObject, Env, Headers, Method, Request, RequestInit, Response, Result,
    State, Stub, WebSocket, WebSocketIncomingMessage, WebSocketPair, WebSocketRequestResponsePair,
};

/// The name of the one desk object.
const DESK_NAME: &str = "desk";
const ORIGIN: &str = "https://desk.internal";
/// The longest a session object or the Worker waits for the desk.
const CALL_TIMEOUT_MS: u64 = 5_000;

// A console socket's attachment is all it carries across hibernation:
// when its token stops being accepted (unix ms; 0: never). Who the agent
// is does not matter to the desk, which sends every console the same
// frames.

fn now() -> u64 {
    worker::Date::now().as_millis()
}

#[durable_object]
pub struct SupportDesk {
    state: State,
}

impl DurableObject for SupportDesk {
    fn new(state: State, _env: Env) -> Self {
        if let Ok(pair) = WebSocketRequestResponsePair::new(PING_FRAME, PONG_FRAME) {
            state.set_websocket_auto_response(&pair);
        }
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let result = match req.path().as_str() {
            "/events" => match req.text().await.as_deref().map(frames) {
                Ok(Some(frames)) => {
                    self.fan_out(&frames);
                    Ok(Response::empty()?.with_status(204))
                }
                _ => Err(AppError::internal("desk events unreadable or too many")),
            },
            "/connect" => self.accept(&req).await,
            _ => Err(AppError::NotFound),
        };
        result.or_else(|e| {
            crate::http::json(e.status(), &e.body(""))
                .map_err(|e| worker::Error::RustError(e.to_string()))
        })
    }

    async fn alarm(&self) -> Result<Response> {
        if let Some(next) = self.expire_due(now()) {
            self.state
                .storage()
                .set_alarm(next as i64 - now() as i64)
                .await?;
        }
        Response::empty()
    }

    async fn websocket_message(&self, ws: WebSocket, _m: WebSocketIncomingMessage) -> Result<()> {
        // A console only listens (its pings are answered by the runtime);
        // an expired one is ended here even if the alarm has not run yet.
        match ws.deserialize_attachment::<u64>().ok().flatten() {
            Some(at) if token_expired(at, now()) => end_expired(&ws),
            Some(_) => send_to(
                &ws,
                &SocketError::Frame(FrameError::inbox_listens_only()).frame(None),
            ),
            None => {
                let _ = ws.close(Some(close::POLICY), Some("unknown connection"));
            }
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _r: String,
        _c: bool,
    ) -> Result<()> {
        let code = match code as u16 {
            1005 | 1006 => close::NORMAL,
            c => c,
        };
        let _ = ws.close(Some(code), Some("closed"));
        Ok(())
    }
}

impl SupportDesk {
    /// Sends each frame to every console, as one JS string. (Grouping
    /// the frames of calls that arrive together into one `batch` frame
    /// was tried and measured no better: BENCHMARKS.md, the desk.)
    fn fan_out(&self, frames: &[&str]) {
        let sockets = self.state.get_websockets();
        if sockets.is_empty() {
            return;
        }
        for f in frames {
            let frame = Frame::new(f);
            for ws in &sockets {
                frame.send(ws);
            }
        }
    }

    /// Accepts a console socket for an agent the Worker admitted.
    async fn accept(&self, req: &Request) -> std::result::Result<Response, AppError> {
        let call: Connect = req
            .headers()
            .get(CALL_HEADER)
            .ok()
            .flatten()
            .and_then(|h| serde_json::from_str(&h).ok())
            .ok_or_else(|| AppError::internal("desk connect without a valid call"))?;
        if let Some(t) = &call.ticket {
            spend_ticket(&self.state.storage().sql(), t)?;
        }
        let pair = WebSocketPair::new().map_err(AppError::internal)?;
        self.state.accept_web_socket(&pair.server);
        pair.server
            .serialize_attachment(call.expires_at)
            .map_err(AppError::internal)?;
        send_to(&pair.server, READY_FRAME);
        if call.expires_at != 0 {
            self.alarm_no_later_than(call.expires_at).await;
        }
        Response::from_websocket(pair.client).map_err(AppError::internal)
    }

    async fn alarm_no_later_than(&self, at: u64) {
        let storage = self.state.storage();
        let current = storage.get_alarm().await.ok().flatten();
        if current.is_none_or(|c| c > at as i64) {
            let _ = storage.set_alarm((at as i64 - now() as i64).max(0)).await;
        }
    }

    /// Ends every expired console; gives the next expiry among the rest.
    fn expire_due(&self, now: u64) -> Option<u64> {
        let mut next: Option<u64> = None;
        for ws in self.state.get_websockets() {
            let Some(at) = ws.deserialize_attachment::<u64>().ok().flatten() else {
                continue;
            };
            if token_expired(at, now) {
                end_expired(&ws);
            } else if at != 0 {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        next
    }
}

fn stub(env: &Env) -> std::result::Result<Stub, AppError> {
    env.durable_object(DESK)
        .and_then(|ns| ns.id_from_name(DESK_NAME)?.get_stub())
        .map_err(AppError::internal)
}

/// One call to the desk object, within `CALL_TIMEOUT_MS`.
async fn call(
    env: &Env,
    path: &str,
    init: &RequestInit,
) -> std::result::Result<Response, AppError> {
    let req =
        Request::new_with_init(&format!("{ORIGIN}{path}"), init).map_err(AppError::internal)?;
    crate::runtime::timeout(CALL_TIMEOUT_MS, stub(env)?.fetch_with_request(req))
        .await
        .ok_or(AppError::Unavailable { check: "desk" })?
        .map_err(AppError::internal)
}

/// The Worker's side: opens an admitted agent's console socket (101).
pub async fn connect(env: &Env, request: &Connect) -> std::result::Result<Response, AppError> {
    let h = Headers::new();
    let encoded = serde_json::to_string(request).map_err(AppError::internal)?;
    h.set(CALL_HEADER, &encoded).map_err(AppError::internal)?;
    h.set("upgrade", "websocket").map_err(AppError::internal)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(h);
    let resp = call(env, "/connect", &init).await?;
    match resp.status_code() {
        101 => Ok(resp),
        401 => Err(AppError::Unauthorized("ticket_used")),
        s => Err(AppError::internal(format!("desk answered {s}"))),
    }
}

/// A session object's side: tells the desk what happened. Best effort:
/// a lost call leaves consoles a step behind until the session's next
/// item or their next reload, and never holds up chat.
pub async fn tell(env: &Env, items: &[Item]) -> std::result::Result<(), AppError> {
    let body = batch(items);
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(wasm_bindgen::JsValue::from_str(&body)));
    match call(env, "/events", &init).await?.status_code() {
        204 => Ok(()),
        s => Err(AppError::internal(format!("desk answered {s}"))),
    }
}
