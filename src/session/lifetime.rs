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
//! - **Revocation.** When the owner removes a member (`remove_member`
//!   call), that user's sockets get `access_revoked` and close 4003 at
//!   once. Erasing the session closes every socket with 4004.
//!
//! Admins' agent sockets are bound to their token in the same way: an admin
//! whose role is taken away keeps it only until the token carrying it
//! expires, and the next ticket is checked against the new token.

use super::sockets::{attachment, send_to, user_tag, Attachment};
use super::Core;
use crate::error::{close, SocketError};
use crate::protocol::AuthorKind;
use crate::runtime::end_expired;

impl Attachment {
    /// Whether the credentials behind this socket have expired at `now`.
    pub fn expired(&self, now: u64) -> bool {
        crate::runtime::token_expired(self.expires_at, now)
    }
}

impl Core {
    /// Closes every expired socket; gives the next expiry among the rest.
    pub(super) fn expire_due(&self, now: u64) -> Option<u64> {
        let mut next: Option<u64> = None;
        for ws in self.state.get_websockets() {
            let Some(a) = attachment(&ws) else { continue };
            self.learn_session(&a.session);
            if a.expired(now) {
                end_expired(&ws);
            } else if a.expires_at != 0 {
                next = Some(next.map_or(a.expires_at, |n| n.min(a.expires_at)));
            }
        }
        next
    }

    /// `user_id` lost access (removed as a member). Their user sockets
    /// close with 4003; an admin's agent sockets stay, since their access
    /// never came from membership.
    pub(super) fn revoke(&self, user_id: &str) {
        let why = SocketError::AccessRevoked.frame(None);
        self.tell_user(
            user_id,
            &why,
            Some((close::ACCESS_REVOKED, "access_revoked")),
        );
    }

    /// Sends `frame` to `user_id`'s user sockets, and closes them with
    /// `end` if given. An admin's agent sockets are left alone: their
    /// access comes from the admin role, not from the session.
    pub(super) fn tell_user(&self, user_id: &str, frame: &str, end: Option<(u16, &str)>) {
        for ws in self.state.get_websockets_with_tag(&user_tag(user_id)) {
            if attachment(&ws).is_some_and(|a| a.kind == AuthorKind::User) {
                send_to(&ws, frame);
                if let Some((code, reason)) = end {
                    let _ = ws.close(Some(code), Some(reason));
                }
            }
        }
    }
}
