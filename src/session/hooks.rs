//! Webhook events leaving the session object (`crate::webhooks`).
//!
//! An event is written to the `hooks` table in the same synchronous block
//! as the change it reports (a stored message, a desk change, the session's
//! creation), so it commits with that change or not at all, already sealed
//! (its data holds message text). After the event that produced them the
//! rows go to the `WEBHOOKS` queue in one call, through `wait_until`,
//! never between a message and its ack; a row is deleted only once the
//! queue took it. When the queue fails, the alarm tries again, backing off
//! as replication does, and chat carries on.
//!
//! Without a `WEBHOOKS` binding nothing is written, and with one an event
//! is written only if some enabled endpoint takes its kind, as this
//! isolate last read them (`webhooks::gate`): a deployment that uses no
//! webhooks pays nothing for them. Rows written while that reading was
//! stale are dropped, not sent, if the sender's fresh reading finds no
//! endpoint enabled.

use super::Core;
use crate::bindings::WEBHOOKS;
use crate::error::AppError;
use crate::store::now_ms;
use crate::webhooks::{aad, gate, new_event_id, payload, Envelope, Kind};
use serde::Serialize;
use std::cell::Cell;
use wasm_bindgen::JsValue;
use worker::{QueueContentType, RawMessageBuilder, SqlStorage, SqlStorageValue as V};

const SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS hooks (n INTEGER PRIMARY KEY AUTOINCREMENT, envelope TEXT NOT NULL)";
/// Rows per queue call: Queues take 100 messages, 256 KB, per `sendBatch`.
const SEND_ROWS: usize = 100;
const SEND_BYTES: usize = 200 * 1024;
/// The first wait while the queue fails; it doubles up to the outbox's
/// longest wait (`outbox::MAX_BACKOFF_MS`).
const FIRST_RETRY_MS: i64 = 1000;

/// One sender at a time, so that no row is sent twice by two of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sending {
    Idle,
    /// A send is due after the current event.
    Scheduled,
    /// A send is under way; it reads the table again before it stops, so
    /// rows added meanwhile go with it.
    Running,
}

/// The table of events not yet taken by the queue, and how sending fares.
pub struct Hooks {
    sql: SqlStorage,
    /// Whether the `WEBHOOKS` binding exists (learned once).
    bound: Cell<Option<bool>>,
    /// Whether a send is due or running.
    sending: Cell<Sending>,
    /// Sends failed in a row.
    failures: Cell<u32>,
}

impl Hooks {
    pub fn open(sql: &SqlStorage) -> Hooks {
        let _ = sql.exec(SCHEMA, None);
        Hooks {
            sql: sql.clone(),
            bound: Cell::new(None),
            sending: Cell::new(Sending::Idle),
            failures: Cell::new(0),
        }
    }

    /// After the storage was wiped.
    pub fn reopen(&self) {
        let _ = self.sql.exec(SCHEMA, None);
    }

    fn insert(&self, envelope: &str) -> Result<(), AppError> {
        self.sql
            .exec(
                "INSERT INTO hooks (envelope) VALUES (?)",
                vec![V::from(envelope)],
            )
            .map(|_| ())
            .map_err(AppError::internal)
    }

    /// The oldest rows, within one queue call's limits.
    fn oldest(&self) -> Result<Vec<(i64, String)>, AppError> {
        #[derive(serde::Deserialize)]
        struct Row {
            n: i64,
            envelope: String,
        }
        let rows: Vec<Row> = self
            .sql
            .exec(
                "SELECT n, envelope FROM hooks ORDER BY n LIMIT ?",
                vec![V::from(SEND_ROWS as i64)],
            )
            .and_then(|c| c.to_array())
            .map_err(AppError::internal)?;
        let mut bytes = 0;
        Ok(rows
            .into_iter()
            .take_while(|r| {
                bytes += r.envelope.len();
                bytes <= SEND_BYTES || bytes == r.envelope.len()
            })
            .map(|r| (r.n, r.envelope))
            .collect())
    }

    fn remove_all(&self) -> Result<(), AppError> {
        self.sql
            .exec("DELETE FROM hooks", None)
            .map(|_| ())
            .map_err(AppError::internal)
    }

    fn remove_through(&self, n: i64) -> Result<(), AppError> {
        self.sql
            .exec("DELETE FROM hooks WHERE n <= ?", vec![V::from(n)])
            .map(|_| ())
            .map_err(AppError::internal)
    }
}

impl Core {
    fn hooks_bound(&self) -> bool {
        if let Some(b) = self.hooks.bound.get() {
            return b;
        }
        let b = self.env.queue(WEBHOOKS).is_ok();
        self.hooks.bound.set(Some(b));
        b
    }

    /// Records an event, sealed, in the current synchronous block, and
    /// schedules the send. A failure is logged: it costs the webhook, never
    /// the change.
    /// `trace` is the `traceparent` of what made the event, if known.
    pub(super) fn hook<D: Serialize>(&self, kind: Kind, data: &D, trace: Option<String>) {
        if !self.hooks_bound() || !gate::admits(kind) {
            return;
        }
        let recorded = self.keyring().and_then(|keys| {
            let session = self.session_id();
            let id = new_event_id();
            let at = now_ms();
            let sealed = keys.seal(&aad(&session, &id), &payload(kind, at, data));
            let envelope = Envelope {
                id,
                kind,
                session,
                at,
                sealed,
                to: None,
                attempt: 1,
                trace,
            };
            let text = serde_json::to_string(&envelope).map_err(AppError::internal)?;
            self.hooks.insert(&text)
        });
        if let Err(e) = recorded {
            self.log_error("webhook_record_failed", &e);
            return;
        }
        if self.hooks.sending.get() == Sending::Idle {
            self.hooks.sending.set(Sending::Scheduled);
            if let Some(core) = self.me.upgrade() {
                self.state.wait_until(async move {
                    if let Some(at) = core.send_hooks().await {
                        core.alarm_no_later_than(at).await;
                    }
                });
            }
        }
    }

    /// Sends what waits to the queue; gives when to try again if the
    /// queue failed (None: nothing is left).
    pub(super) async fn send_hooks(&self) -> Option<i64> {
        if self.hooks.sending.get() == Sending::Running || !self.hooks_bound() {
            return None;
        }
        self.hooks.sending.set(Sending::Running);
        let next = self.send_all().await;
        self.hooks.sending.set(Sending::Idle);
        next
    }

    async fn send_all(&self) -> Option<i64> {
        if self.nobody_listens().await {
            if let Err(e) = self.hooks.remove_all() {
                return Some(self.hooks_failed(&e));
            }
            return None;
        }
        loop {
            let rows = match self.hooks.oldest() {
                Ok(r) if r.is_empty() => {
                    self.hooks.failures.set(0);
                    return None;
                }
                Ok(r) => r,
                Err(e) => return Some(self.hooks_failed(&e)),
            };
            let last = rows.last().map(|r| r.0).unwrap_or(0);
            let messages = rows
                .iter()
                .map(|(_, text)| {
                    RawMessageBuilder::new(JsValue::from_str(text))
                        .build_with_content_type(QueueContentType::Text)
                })
                .collect::<Vec<_>>();
            let sent = match self.env.queue(WEBHOOKS) {
                Ok(q) => q.send_raw_batch(messages).await.map_err(AppError::internal),
                Err(e) => Err(AppError::internal(e)),
            };
            if let Err(e) = sent.and_then(|()| self.hooks.remove_through(last)) {
                return Some(self.hooks_failed(&e));
            }
        }
    }

    /// Whether a fresh reading of the endpoints finds none enabled (not
    /// knowing is not that: the rows are then sent).
    async fn nobody_listens(&self) -> bool {
        gate::wanted(&self.env).await.is_some_and(|k| k.is_empty())
    }

    fn hooks_failed(&self, e: &AppError) -> i64 {
        self.log_error("webhook_enqueue_failed", e);
        let failures = self.hooks.failures.get() + 1;
        self.hooks.failures.set(failures);
        now_ms() + super::outbox::backoff_ms(FIRST_RETRY_MS, failures)
    }
}
