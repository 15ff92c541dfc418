//! Socket identity and fan-out.
//!
//! What a socket is lives on the socket, so it survives hibernation: its
//! serialized attachment (connection id, session, user, author kind, when
//! its token expires) and its tags (`user:<id>`, and `frames:batch` or
//! `frames:single` for how it takes messages). The object keeps two things
//! about sockets in memory only, each harmless to lose: the sockets still
//! replaying history (`queue.rs`; they exist only while a replay job runs)
//! and when each connection last relayed `typing` (losing it allows one
//! extra typing frame).

use crate::protocol::{AuthorKind, PresenceEntry, UserRef};
pub use crate::runtime::{send_to, Frame};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use worker::{State, WebSocket};

/// What a socket carries across hibernation.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Attachment {
    pub conn: String,
    pub session: String,
    pub user: UserRef,
    pub kind: AuthorKind,
    /// When the token that opened the socket expires (unix ms; 0: never
    /// told). See `lifetime.rs`.
    #[serde(default)]
    pub expires_at: u64,
}

/// Tags of sockets that take `batch` frames (`?batch=1`) and of sockets
/// that take messages one frame each. Every socket has one of them.
pub const BATCH_TAG: &str = "frames:batch";
pub const SINGLE_TAG: &str = "frames:single";

pub fn user_tag(user_id: &str) -> String {
    format!("user:{user_id}")
}

pub fn attachment(ws: &WebSocket) -> Option<Attachment> {
    ws.deserialize_attachment().ok().flatten()
}

/// Who is connected, with device counts, from the sockets' attachments.
/// `leaving` is left out (it is closing but still listed).
pub fn presence(state: &State, leaving: Option<&WebSocket>) -> Vec<PresenceEntry> {
    let mut by_user: BTreeMap<String, PresenceEntry> = BTreeMap::new();
    for ws in state.get_websockets() {
        if Some(&ws) == leaving {
            continue;
        }
        if let Some(a) = attachment(&ws) {
            by_user
                .entry(a.user.id.clone())
                .or_insert(PresenceEntry {
                    user: a.user,
                    devices: 0,
                })
                .devices += 1;
        }
    }
    by_user.into_values().collect()
}

/// How many sockets a user has open, `leaving` excluded.
pub fn devices(state: &State, user_id: &str, leaving: Option<&WebSocket>) -> usize {
    state
        .get_websockets_with_tag(&user_tag(user_id))
        .iter()
        .filter(|ws| Some(*ws) != leaving)
        .count()
}

impl super::Core {
    /// Relays typing to the other participants, at most once per throttle
    /// window per connection. Never stored.
    pub(super) fn typing(&self, me: &Attachment, throttle_ms: u64) {
        let now = crate::store::now_ms() as u64;
        {
            let mut last = self.typing_at.borrow_mut();
            match last.get(&me.conn) {
                Some(&t) if now.saturating_sub(t) < throttle_ms => return,
                _ => {
                    last.insert(me.conn.clone(), now);
                }
            }
        }
        // Not to their own sockets, nor to those who block them.
        let mut except = self.state.get_websockets_with_tag(&user_tag(&me.user.id));
        except.extend(self.blockers_of(&crate::protocol::Author {
            id: me.user.id.clone(),
            name: me.user.name.clone(),
            kind: me.kind,
        }));
        self.broadcast_event_except(
            &crate::protocol::ServerFrame::Typing { user: &me.user }.to_json(),
            &except,
        );
    }
}
