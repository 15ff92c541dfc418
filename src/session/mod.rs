//! The per-session Durable Object.
//!
//! **Keying.** One object per chat session, addressed with
//! `idFromName(session id)` on the `SESSIONS` namespace, so every Worker
//! instance anywhere reaches the same object for a session.
//!
//! **Guarantees (foundation).** Every text frame a socket sends is relayed,
//! byte for byte, to every *other* socket of the session. Binary frames get an
//! `error` frame; frames over `MAX_FRAME_BYTES` close the socket with 1009.
//!
//! **Hibernation.** Sockets are accepted through the hibernation API with
//! their identity in a serialized attachment and a `conn:<id>` tag. The object
//! keeps no in-memory state that it needs after waking, so the runtime may
//! evict it between any two events.
//!
//! **Internal request contract.** The object is reachable only through its
//! namespace binding, i.e. from Confab's own Worker; it trusts the Worker's
//! headers and nothing else.
//! - `GET https://session.internal/connect`
//!   headers: `Upgrade: websocket`, `X-Confab-Session: <session id>`,
//!   `X-Confab-Request-Id: <id>`.
//!   Answers 101 with the socket, or a JSON error body.

mod sockets;

use crate::error::{close, AppError};
use crate::ids::random_hex;
use crate::protocol::ServerFrame;
use crate::runtime;
use serde::{Deserialize, Serialize};
use sockets::broadcast_except;
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

/// The internal request contract, shared by the Worker (caller) and the
/// object (callee) so the two cannot drift apart.
pub mod internal {
    use crate::error::AppError;
    use worker::{Headers, Method, Request, RequestInit};

    pub const BINDING: &str = "SESSIONS";
    pub const CONNECT_URL: &str = "https://session.internal/connect";
    pub const HEADER_SESSION: &str = "x-confab-session";
    pub const HEADER_REQUEST_ID: &str = "x-confab-request-id";

    pub fn connect_request(session_id: &str, request_id: &str) -> Result<Request, AppError> {
        let headers = Headers::new();
        let set = |k: &str, v: &str| headers.set(k, v).map_err(AppError::internal);
        set("upgrade", "websocket")?;
        set(HEADER_SESSION, session_id)?;
        set(HEADER_REQUEST_ID, request_id)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Get).with_headers(headers);
        Request::new_with_init(CONNECT_URL, &init).map_err(AppError::internal)
    }
}

/// What a socket carries across hibernation.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct Attachment {
    conn: String,
    session: String,
}

#[durable_object]
pub struct ChatSession {
    state: State,
    env: Env,
}

impl DurableObject for ChatSession {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let result = match req.path().as_str() {
            "/connect" => self.accept_socket(&req),
            _ => Err(AppError::NotFound),
        };
        match result {
            Ok(r) => Ok(r),
            Err(e) => {
                let request_id = req
                    .headers()
                    .get(internal::HEADER_REQUEST_ID)?
                    .unwrap_or_default();
                if let Some(detail) = e.log_detail() {
                    runtime::log(
                        crate::config::LogLevel::Error,
                        "session_error",
                        [
                            ("request_id", request_id.clone().into()),
                            ("detail", detail.into()),
                        ],
                    );
                }
                Response::from_json(&e.body(&request_id)).map(|r| r.with_status(e.status()))
            }
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let Ok(config) = runtime::config(&self.env) else {
            let _ = ws.close(Some(close::TRY_AGAIN_LATER), Some("configuration invalid"));
            return Ok(());
        };
        match message {
            WebSocketIncomingMessage::String(text) => {
                if text.len() > config.max_frame_bytes {
                    let _ = ws.close(Some(close::TOO_BIG), Some("frame too large"));
                    return Ok(());
                }
                broadcast_except(&self.state.get_websockets(), &ws, &text);
            }
            WebSocketIncomingMessage::Binary(_) => {
                let frame = ServerFrame::Error {
                    code: "binary_not_supported",
                    message: "frames must be JSON text",
                };
                let _ = ws.send_with_str(frame.to_json());
            }
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        // Complete the closing handshake; 1005/1006 are reserved and cannot be sent.
        let code = match code as u16 {
            1005 | 1006 => close::NORMAL,
            c => c,
        };
        let _ = ws.close(Some(code), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        let _ = ws.close(Some(close::INTERNAL), Some("socket error"));
        Ok(())
    }
}

impl ChatSession {
    fn accept_socket(&self, req: &Request) -> std::result::Result<Response, AppError> {
        let session = req
            .headers()
            .get(internal::HEADER_SESSION)
            .map_err(AppError::internal)?
            .ok_or_else(|| AppError::internal("connect without session header"))?;
        let pair = WebSocketPair::new().map_err(AppError::internal)?;
        let conn = random_hex(8);
        let tag = format!("conn:{conn}");
        self.state.accept_websocket_with_tags(&pair.server, &[&tag]);
        pair.server
            .serialize_attachment(Attachment { conn, session })
            .map_err(AppError::internal)?;
        Response::from_websocket(pair.client).map_err(AppError::internal)
    }
}
