//! The assistant's reply in progress, kept in the session log so that it
//! survives what memory does not: a crash, a deploy, an eviction.
//!
//! While a reply streams, its text so far is saved (sealed like any
//! message body) at least every `SAVE_EVERY_MS`. The row is deleted in the
//! same commit that stores the finished reply (`log.rs`), or when a turn
//! ends without storing one. So a row found by an instance that is not
//! running a turn belongs to a turn that was cut off. That instance stores
//! the text so far as an `incomplete` reply with `finish_reason:
//! "interrupted"`, tells connected clients with an `error` frame
//! (`reply_interrupted`), and answers the question once more: no client is
//! left with an orphaned `turn`, and no question goes unanswered.
//!
//! An instance that dies mid-turn may have no client to wake its
//! successor, so each turn keeps the alarm within `WATCHDOG_MS` while it
//! runs (`alarm.rs`); the alarm of a dead instance's turn wakes the next.
//! The table itself is part of the log's schema (`log/mod.rs`).

use super::queue::Job;
use super::Core;
use crate::crypto::{aad, Field};
use crate::error::{AppError, SocketError};
use crate::ids::{ClientId, MessageId};
use crate::protocol::{Author, AuthorKind, TurnMeta, UserRef, ASSISTANT_AUTHOR_ID};
use crate::store::messages::{Charge, NewMessage};
use crate::store::now_ms;
use serde::Deserialize;
use worker::SqlStorageValue as V;

/// How often, at most, the text so far is written while a reply streams.
pub const SAVE_EVERY_MS: i64 = 250;
/// How far ahead a running turn keeps the alarm.
pub const WATCHDOG_MS: i64 = 5_000;

/// What a starting reply records about itself.
pub struct Started<'a> {
    pub message_id: &'a str,
    pub author: &'a Author,
    pub asked_by: &'a UserRef,
    pub charge: &'a Charge,
    pub provider: &'a str,
    pub model: &'a str,
    pub started_at: i64,
}

#[derive(Deserialize)]
struct Row {
    message_id: String,
    author_name: String,
    asked_by: String,
    charge: String,
    provider: String,
    model: String,
    body: String,
    started_at: i64,
    saved_at: i64,
}

impl Core {
    fn session_keys(&self) -> Result<(&'static crate::crypto::Keyring, String), AppError> {
        Ok((self.keyring()?, self.session_id()))
    }

    /// Records that a reply started (empty text so far).
    pub(super) fn progress_start(&self, s: Started<'_>) -> Result<(), AppError> {
        let (keys, session) = self.session_keys()?;
        let body = keys.seal(&aad(Field::MessageBody, &session, Some(s.message_id)), "");
        let json = |v: serde_json::Value| V::String(v.to_string());
        self.log
            .sql()
            .exec(
                "INSERT OR REPLACE INTO turn_progress (one, message_id, author_name, asked_by, charge, provider, model,
                   body, started_at, saved_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    V::from(s.message_id),
                    V::from(s.author.name.as_str()),
                    json(serde_json::to_value(s.asked_by).map_err(AppError::internal)?),
                    json(serde_json::to_value(s.charge).map_err(AppError::internal)?),
                    V::from(s.provider),
                    V::from(s.model),
                    V::String(body),
                    V::Integer(s.started_at),
                    V::Integer(s.started_at),
                ],
            )
            .map_err(AppError::internal)?;
        self.progress_saved_at.set(s.started_at);
        Ok(())
    }

    /// Saves the text so far, unless it was saved under `SAVE_EVERY_MS` ago.
    pub(super) fn progress_save(&self, message_id: &str, text: &str) {
        let now = now_ms();
        if now - self.progress_saved_at.get() < SAVE_EVERY_MS {
            return;
        }
        self.progress_saved_at.set(now);
        let saved = self.session_keys().and_then(|(keys, session)| {
            let body = keys.seal(&aad(Field::MessageBody, &session, Some(message_id)), text);
            self.log
                .sql()
                .exec(
                    "UPDATE turn_progress SET body = ?, saved_at = ? WHERE message_id = ?",
                    vec![V::String(body), V::Integer(now), V::from(message_id)],
                )
                .map_err(AppError::internal)
        });
        if let Err(e) = saved {
            self.log_error("progress_save_failed", &e);
        }
    }

    /// Forgets the reply in progress (the turn ended without storing one).
    pub(super) fn progress_clear(&self) {
        let _ = self.log.sql().exec("DELETE FROM turn_progress", None);
    }

    /// Once per instance, and never while this instance runs a turn: ends a
    /// reply that a dead instance left behind, and asks again.
    pub(super) fn recover_turn(&self) {
        if self.turn_busy() || self.recovered.replace(true) {
            return;
        }
        let row = self
            .log
            .sql()
            .exec("SELECT * FROM turn_progress WHERE one = 1", None)
            .and_then(|c| c.to_array::<Row>())
            .map(|rows| rows.into_iter().next());
        let row = match row {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => return self.log_error("progress_read_failed", &AppError::internal(e)),
        };
        if let Err(e) = self.end_interrupted(row) {
            self.log_error("turn_recovery_failed", &e);
        }
    }

    fn end_interrupted(&self, r: Row) -> Result<(), AppError> {
        let (keys, session) = self.session_keys()?;
        let id = MessageId::stored(r.message_id);
        let asked_by: UserRef = serde_json::from_str(&r.asked_by).map_err(AppError::internal)?;
        let charge: Charge = serde_json::from_str(&r.charge).map_err(AppError::internal)?;
        // Unreadable (a key retired mid-turn): the reply is kept empty.
        let text = keys
            .open(
                &aad(Field::MessageBody, &session, Some(id.as_str())),
                &r.body,
            )
            .unwrap_or_default();
        self.progress_clear();
        crate::runtime::log(
            crate::config::LogLevel::Warn,
            "turn_interrupted",
            [
                ("session", serde_json::Value::from(session.as_str())),
                ("chars", serde_json::Value::from(text.chars().count())),
            ],
        );
        self.broadcast_event(&SocketError::ReplyInterrupted.frame(None));
        let meta = TurnMeta {
            profile: charge.profile.clone(),
            provider: r.provider,
            model: r.model,
            tokens_in: 0,
            tokens_out: 0,
            tokens_cached: 0,
            cost_usd: None,
            ttft_ms: 0,
            latency_ms: (r.saved_at - r.started_at).max(0) as u64,
            finish_reason: "interrupted".into(),
            incomplete: true,
        };
        // Stored even when empty, so a client holding its `turn` frame
        // sees how that reply ended; the charge settles with no tokens.
        self.enqueue(Job::Send {
            ws: None,
            msg: NewMessage {
                client_id: ClientId::of_reply(&id),
                id,
                author: Author {
                    id: ASSISTANT_AUTHOR_ID.into(),
                    name: r.author_name,
                    kind: AuthorKind::Assistant,
                },
                text,
                reply_to: None,
                created_at: now_ms(),
                turn: Some(Box::new((meta, charge))),
                poll: None,
                attachments: Vec::new(),
                mentions: Vec::new(),
            },
        });
        // Answer again; the interrupted reply stays out of the prompt.
        self.request_turn(asked_by, None);
        if let Some(core) = self.me.upgrade() {
            self.state.wait_until(async move { core.drain().await });
        }
        Ok(())
    }
}
