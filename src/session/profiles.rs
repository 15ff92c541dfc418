//! The session's assistant profile (`crate::llm::profile`): which one a
//! turn runs under, and an agent's switch to another (`set_profile`).
//!
//! A profile lives in D1's home shard. The object keeps the last one it
//! read for `FRESH_MS`, so a conversation's turns do not each wait on a
//! D1 read; an admin's change to a profile reaches a session within that
//! time. A session whose profile was deleted gets no reply
//! (`assistant_unavailable`, code `profile_missing`) until an agent
//! switches it to another.

use super::sockets::{send_to, Attachment};
use super::Core;
use crate::config::{LogLevel, Secret};
use crate::crypto::Keyring;
use crate::error::{AppError, SocketError};
use crate::llm::config::Assistant;
use crate::llm::profile::{key_aad, stored_name};
use crate::protocol::{AuthorKind, ServerFrame};
use crate::store::{self, now_ms};
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;
use worker::WebSocket;

/// How long a profile read from D1 is used before it is read again.
const FRESH_MS: i64 = 30_000;

/// The last profile read: its name, when, and the assistant it makes.
#[derive(Default)]
pub(super) struct Profiles {
    last: RefCell<Option<(String, i64, Rc<Assistant>)>>,
}

impl Profiles {
    fn cached(&self, name: &str, now: i64) -> Option<Rc<Assistant>> {
        match &*self.last.borrow() {
            Some((n, at, a)) if n == name && now - at < FRESH_MS => Some(a.clone()),
            _ => None,
        }
    }

    /// Forgets what was read, so the next turn reads the profile again.
    fn forget(&self) {
        *self.last.borrow_mut() = None;
    }
}

impl Core {
    /// The assistant a turn runs with: the deployment's, or the session's
    /// profile over it. None when the profile no longer exists.
    pub(super) async fn turn_assistant(
        &self,
        base: &Assistant,
        keys: &Keyring,
    ) -> Result<Option<Rc<Assistant>>, AppError> {
        let Some(name) = self.log.live()?.profile else {
            return Ok(Some(Rc::new(base.clone())));
        };
        let now = now_ms();
        if let Some(a) = self.profiles.cached(&name, now) {
            return Ok(Some(a));
        }
        let Some(row) = store::profiles::get(&self.d1_home()?, &name).await? else {
            return Ok(None);
        };
        let p = row.profile()?;
        // A key no key opens (retired before it was re-sealed) leaves its
        // provider keyless, so it fails rather than the whole turn.
        let opened = (p.chain.iter().enumerate())
            .map(|(i, l)| {
                let sealed = l.api_key.as_deref()?;
                keys.open(&key_aad(&name, i), sealed).ok().map(Secret::new)
            })
            .collect();
        let a = Rc::new(p.assistant(&name, base, opened));
        *self.profiles.last.borrow_mut() = Some((name, now, a.clone()));
        Ok(Some(a))
    }

    /// `set_profile`: an agent switches the session's profile. The next
    /// turn runs under it; a reply streaming now finishes under the old.
    pub(super) async fn set_profile(&self, ws: &WebSocket, me: &Attachment, profile: String) {
        let refuse = |e: SocketError| send_to(ws, &e.frame(None));
        if me.kind != AuthorKind::Agent {
            return refuse(SocketError::NotAnAgent);
        }
        let stored = stored_name(&profile);
        if let Some(name) = &stored {
            let found = match self.d1_home() {
                Ok(db) => store::profiles::get(&db, name).await,
                Err(e) => Err(e),
            };
            match found {
                Ok(Some(_)) => {}
                Ok(None) => return refuse(SocketError::UnknownProfile),
                Err(e) => return self.fail(ws, "profile_read_failed", &e, None),
            }
        }
        if let Err(e) = self.log.set_profile(stored, &self.outbox, now_ms()) {
            return self.fail(ws, "profile_switch_failed", &e, None);
        }
        self.profiles.forget();
        self.replicate_soon();
        crate::runtime::log(
            LogLevel::Info,
            "profile_switched",
            [
                ("session", Value::from(self.session_id().as_str())),
                ("profile", Value::from(profile.as_str())),
            ],
        );
        let frame = ServerFrame::Profile {
            profile: &profile,
            by: &me.user,
        };
        self.broadcast_event(&frame.to_json());
    }
}
