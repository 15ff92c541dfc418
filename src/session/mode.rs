//! The session's mode: `assistant` (the AI answers) or `human` (an agent
//! has taken over). The mode is part of the session log; this part stores
//! changes, announces them to every socket and stops the assistant when a
//! human takes over. Changes arrive from the admin HTTP API (`set_mode`
//! call) or from an agent's socket (`takeover` / `release` frames).

use super::sockets::{send_to, Attachment};
use super::Core;
use crate::contract::Mode;
use crate::error::{AppError, SocketError};
use crate::protocol::{AuthorKind, ServerFrame, UserRef};
use crate::store::now_ms;
use worker::WebSocket;

impl Core {
    /// Stores and announces a mode; `human` stops any reply in progress.
    pub(super) fn set_mode(&self, mode: Mode, by: &UserRef) -> Result<(), AppError> {
        self.log.set_mode(mode, now_ms(), &self.outbox)?;
        self.replicate_soon();
        if mode == Mode::Human {
            self.stop_turn();
        }
        self.broadcast_event(
            &ServerFrame::Mode {
                mode: mode.as_str(),
                by,
            }
            .to_json(),
        );
        Ok(())
    }

    /// `takeover`/`release` from an agent's socket: the same as the admin
    /// HTTP calls.
    pub(super) fn change_mode(&self, ws: &WebSocket, me: &Attachment, mode: Mode) {
        if me.kind != AuthorKind::Agent {
            send_to(ws, &SocketError::NotAnAgent.frame(None));
            return;
        }
        if let Err(e) = self.set_mode(mode, &me.user) {
            if e.log_detail().is_some() {
                self.log_error("mode_change_failed", &e);
            }
            send_to(ws, &SocketError::App(e).frame(None));
        }
    }
}
