//! The session's mode: `assistant` (the AI answers) or `human` (an agent
//! has taken over). The mode itself is stored in D1; this part announces
//! changes to every socket and stops the assistant when a human takes over.
//! Changes arrive from the admin HTTP API (`/mode`) or from an agent's
//! socket (`takeover` / `release` frames).

use super::queue::error_frame;
use super::sockets::{send_to, Attachment};
use super::{internal, Core};
use crate::config::LogLevel;
use crate::error::AppError;
use crate::protocol::{AuthorKind, ServerFrame, UserRef};
use crate::runtime::log;
use crate::store::now_ms;
use serde_json::Value;
use worker::{Request, Response, WebSocket};

impl Core {
    pub(super) fn set_mode(&self, req: &Request) -> std::result::Result<Response, AppError> {
        let header = |name: &str| req.headers().get(name).map_err(AppError::internal);
        let mode = header(internal::HEADER_MODE)?
            .ok_or_else(|| AppError::internal("mode without mode"))?;
        let by: UserRef = header(internal::HEADER_USER)?
            .and_then(|u| serde_json::from_str(&u).ok())
            .ok_or_else(|| AppError::internal("mode without user"))?;
        self.apply_mode(&mode, &by);
        Ok(Response::empty()
            .map_err(AppError::internal)?
            .with_status(204))
    }

    /// Announces a mode already stored in D1; `human` stops any assistant
    /// reply in progress.
    fn apply_mode(&self, mode: &str, by: &UserRef) {
        if mode == "human" {
            self.stop_turn();
        }
        self.broadcast_event(&ServerFrame::Mode { mode, by }.to_json());
    }

    /// `takeover`/`release` from an agent's socket: the same as the admin
    /// HTTP calls.
    pub(super) async fn change_mode(&self, ws: &WebSocket, me: &Attachment, mode: &str) {
        if me.kind != AuthorKind::Agent {
            let e = AppError::Forbidden;
            send_to(
                ws,
                &error_frame(e.code(), "only agents may take over", None),
            );
            return;
        }
        let stored = match crate::store::db(&self.env) {
            Ok(db) => crate::store::sessions::set_mode(&db, &me.session, mode, now_ms()).await,
            Err(e) => Err(e),
        };
        match stored {
            Ok(true) => self.apply_mode(mode, &me.user),
            Ok(false) => send_to(ws, &error_frame("not_found", "not found", None)),
            Err(e) => {
                if let Some(d) = e.log_detail() {
                    log(
                        LogLevel::Error,
                        "mode_change_failed",
                        [("detail", Value::from(d))],
                    );
                }
                send_to(ws, &error_frame(e.code(), &e.public_message(), None));
            }
        }
    }
}
