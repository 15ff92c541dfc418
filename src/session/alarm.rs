//! The object's one alarm, shared by six parts: socket lifetimes (the
//! next token expiry, `lifetime.rs`), replication (the next outbox flush,
//! `outbox.rs`), the watchdog of a running turn (`progress.rs`), the
//! desk's timers (escalation timeout, idle close: `desk.rs`), webhook
//! events the queue refused (`hooks.rs`) and polls' closing times. It is set to whichever comes
//! first.
//!
//! The time of the pending alarm is cached while the object is awake, so
//! a change that finds a flush already scheduled costs no storage call.

use super::outbox::{backoff_ms, Flushed, Replication};
use super::Core;
use crate::error::AppError;
use crate::shards::Shard;
use crate::store::{self, now_ms};

impl Core {
    /// Makes sure the alarm fires no later than `at` (unix ms).
    pub(super) async fn alarm_no_later_than(&self, at: i64) {
        if self.alarm_at.get().is_some_and(|c| c <= at) {
            return;
        }
        let storage = self.state.storage();
        let current = match self.alarm_at.get() {
            Some(c) => Some(c),
            None => storage.get_alarm().await.ok().flatten(),
        };
        if current.is_some_and(|c| c <= at) {
            self.alarm_at.set(current);
            return;
        }
        match storage.set_alarm((at - now_ms()).max(0)).await {
            Ok(()) => self.alarm_at.set(Some(at)),
            Err(e) => self.log_error("alarm_failed", &AppError::internal(e)),
        }
    }

    /// Makes sure the alarm fires no later than `at`, after the current
    /// event (the runtime is told the object still has work in flight).
    pub(super) fn alarm_soon(&self, at: i64) {
        let Some(core) = self.me.upgrade() else {
            return;
        };
        self.state
            .wait_until(async move { core.alarm_no_later_than(at).await });
    }

    /// Called after every change to the log: the outbox holds something,
    /// so a flush is due within `REPLICATION_INTERVAL_MS` (unless one is
    /// already scheduled, or D1 is being waited out).
    pub(super) fn replicate_soon(&self) {
        if self.outbox.state() != Replication::Idle {
            return;
        }
        let interval = self.replication_interval();
        let at = now_ms() + interval;
        self.outbox.set_state(Replication::Scheduled(at));
        self.alarm_soon(at);
    }

    /// The D1 shard the session replicates to: the one it was created in,
    /// or the home shard for a log started before shards.
    pub(super) fn shard(&self) -> Result<Shard, AppError> {
        match self.log.shard()? {
            Some(s) => Ok(s),
            None => Ok(self.require_config()?.shards.home().clone()),
        }
    }

    pub(super) fn d1(&self) -> Result<worker::D1Database, AppError> {
        store::db(&self.env, &self.shard()?)
    }

    /// The home shard: per-user figures (token budgets) live there.
    pub(super) fn d1_home(&self) -> Result<worker::D1Database, AppError> {
        store::db(&self.env, self.require_config()?.shards.home())
    }

    fn replication_interval(&self) -> i64 {
        crate::runtime::config(&self.env)
            .map(|c| c.replication_interval_ms as i64)
            .unwrap_or(1000)
    }

    /// The alarm: end expired sockets, flush the outbox, and set the alarm
    /// for whatever comes next.
    pub(super) async fn on_alarm(&self) {
        // The runtime cleared the alarm that fired.
        self.alarm_at.set(None);
        let now = now_ms();
        // An alarm may wake a fresh instance that no call or socket has
        // told its session yet: the log knows it.
        if let Ok(Some(m)) = self.log.meta() {
            self.learn_session(&m.id);
            if m.live() {
                self.recover_turn();
            }
        }
        let next_expiry = self.expire_due(now as u64).map(|e| e as i64);
        let next_flush = self.flush_now(now).await;
        // Webhook events the queue has not taken yet (`hooks.rs`).
        let hooks = self.send_hooks().await;
        // The desk's escalation timeout and idle close (`desk.rs`).
        let desk = self.desk_timers(now).await;
        // Polls whose closing time has come (`crate::poll`).
        let polls = self.close_polls(now);
        // The pre-send filter's decisions, for the home shard (`filter.rs`).
        let decisions = self.send_decisions().await;
        // A running turn keeps its watchdog (`progress.rs`).
        let watchdog = self
            .turn_busy()
            .then(|| now_ms() + super::progress::WATCHDOG_MS);
        let next = [
            next_expiry,
            next_flush,
            watchdog,
            desk,
            hooks,
            polls,
            decisions,
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(at) = next {
            self.alarm_no_later_than(at).await;
        }
    }

    /// Announces every poll whose closing time has come (its final tally,
    /// as a change); gives when the next open poll closes. Votes after the
    /// closing time are refused whether or not this has run yet.
    fn close_polls(&self, now: i64) -> Option<i64> {
        let Ok(keys) = self.keyring() else {
            return None;
        };
        let closed = match self.log.close_due(now, &self.outbox) {
            Ok(c) => c,
            Err(e) => {
                self.log_error("poll_close_failed", &e);
                return Some(now + super::progress::WATCHDOG_MS);
            }
        };
        for (seq, change) in closed {
            if let Ok(Some(tally)) = self.log.tally(keys, seq, now, None) {
                let frame = crate::protocol::ServerFrame::Poll {
                    seq,
                    tally: &tally,
                    change,
                };
                self.broadcast_event(&frame.to_json());
            }
            self.replicate_soon();
        }
        self.log.next_close().ok().flatten()
    }

    /// One flush, if the outbox holds anything; gives when the next is due.
    async fn flush_now(&self, now: i64) -> Option<i64> {
        if let Err(e) = self.outbox.fold(self.log.sql(), now) {
            self.log_error("count_failed", &e);
        }
        let failures = match self.outbox.state() {
            Replication::BackingOff { failures, .. } => failures,
            _ => 0,
        };
        let waiting = self
            .outbox
            .depth(&self.log)
            .map(|(n, _)| n > 0)
            .unwrap_or(true);
        let session = self.session_id();
        if !waiting || session.is_empty() {
            self.outbox.set_state(Replication::Idle);
            return None;
        }
        let index = crate::runtime::config(&self.env).ok().and_then(|c| {
            let key = c.search.as_ref()?;
            Some(crate::store::replica::Indexer {
                keys: &c.keyring,
                key,
            })
        });
        let result = match (self.d1(), self.d1_home()) {
            (Ok(db), Ok(home)) => {
                self.outbox
                    .flush(&self.log, (&db, &home), &session, now, index)
                    .await
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let state = match result {
            Ok(Flushed::Drained) => Replication::Idle,
            // Take the rest at once, in a fresh invocation.
            Ok(Flushed::More) => Replication::Scheduled(now_ms()),
            Err(e) => {
                if failures == 0 {
                    self.log_error("replication_failed", &e);
                }
                let wait = backoff_ms(self.replication_interval(), failures + 1);
                Replication::BackingOff {
                    failures: failures + 1,
                    retry_at: now_ms() + wait,
                }
            }
        };
        self.outbox.set_state(state);
        match state {
            Replication::Idle => {
                // Changes made while the flush was in flight are still due.
                let left = self.outbox.depth(&self.log).map(|(n, _)| n);
                if left.is_ok_and(|n| n > 0) {
                    let at = now_ms() + self.replication_interval();
                    self.outbox.set_state(Replication::Scheduled(at));
                    Some(at)
                } else {
                    None
                }
            }
            Replication::Scheduled(at) => Some(at),
            Replication::BackingOff { retry_at, .. } => Some(retry_at),
        }
    }
}
