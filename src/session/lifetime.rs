//! How long a socket may live: authorization holds for the whole life of a
//! connection, not only at its upgrade.
//!
//! - **Token expiry.** Each socket's attachment carries the `exp` of the
//!   token that opened it (directly, or through the ticket's identity).
//!   The object keeps one alarm at the earliest expiry among its sockets;
//!   when it fires, every expired socket gets an `error` frame
//!   `token_expired` and close 4001, and the alarm moves to the next
//!   expiry. A frame arriving on an expired socket (say, before the alarm
//!   ran) gets the same treatment instead of being served.
//! - **Revocation.** When the owner removes a member, the Worker tells the
//!   object (`/revoke`); that user's sockets get `access_revoked` and close
//!   4003 at once. Erasing the session closes every socket with 4004
//!   (`close_all`).
//!
//! Admins' agent sockets are bound to their token in the same way: an admin
//! whose role is taken away keeps it only until the token carrying it
//! expires, and the next ticket is checked against the new token.

use super::queue::error_frame;
use super::sockets::{attachment, send_to, user_tag, Attachment};
use super::{internal, Core};
use crate::error::{close, AppError};
use crate::protocol::AuthorKind;
use crate::store::now_ms;
use worker::{Request, Response, WebSocket};

impl Attachment {
    /// Whether the credentials behind this socket have expired at `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at != 0 && self.expires_at <= now
    }
}

impl Core {
    /// Ends a socket whose token expired. The client reconnects with a fresh
    /// ticket and `after=`, so nothing is missed.
    pub(super) fn expire(&self, ws: &WebSocket) {
        send_to(
            ws,
            &error_frame(
                "token_expired",
                "your token expired; reconnect with a fresh ticket",
                None,
            ),
        );
        let _ = ws.close(Some(close::TOKEN_EXPIRED), Some("token_expired"));
    }

    /// Makes sure the alarm fires no later than `at` (unix ms).
    pub(super) async fn expire_no_later_than(&self, at: u64) {
        if at == 0 {
            return;
        }
        let storage = self.state.storage();
        let current = storage.get_alarm().await.ok().flatten();
        if current.is_none_or(|c| c as u64 > at) {
            let offset = at as i64 - now_ms();
            if let Err(e) = storage.set_alarm(offset.max(0)).await {
                self.log_error("alarm_failed", &AppError::internal(e));
            }
        }
    }

    /// The alarm: close every expired socket, then wait for the next expiry.
    pub(super) async fn on_alarm(&self) {
        let now = now_ms() as u64;
        let mut next: Option<u64> = None;
        for ws in self.state.get_websockets() {
            let Some(a) = attachment(&ws) else { continue };
            self.learn_session(&a.session);
            if a.expired(now) {
                self.expire(&ws);
            } else if a.expires_at != 0 {
                next = Some(next.map_or(a.expires_at, |n| n.min(a.expires_at)));
            }
        }
        if let Some(at) = next {
            self.expire_no_later_than(at).await;
        }
    }

    /// `POST /revoke`: the user in `X-Confab-User` (a JSON string) lost
    /// access. Their user sockets close with 4003; an admin's agent sockets
    /// stay, since their access never came from membership.
    pub(super) fn revoke(&self, req: &Request) -> Result<Response, AppError> {
        let user: String = req
            .headers()
            .get(internal::HEADER_USER)
            .map_err(AppError::internal)?
            .and_then(|u| serde_json::from_str(&u).ok())
            .ok_or_else(|| AppError::internal("revoke without user"))?;
        for ws in self.state.get_websockets_with_tag(&user_tag(&user)) {
            if attachment(&ws).is_some_and(|a| a.kind == AuthorKind::User) {
                send_to(
                    &ws,
                    &error_frame(
                        "access_revoked",
                        "you no longer have access to this session",
                        None,
                    ),
                );
                let _ = ws.close(Some(close::ACCESS_REVOKED), Some("access_revoked"));
            }
        }
        Ok(Response::empty()
            .map_err(AppError::internal)?
            .with_status(204))
    }
}
