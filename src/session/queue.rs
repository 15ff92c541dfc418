//! The session's serial work queue.
//!
//! Every change to the session (sends, edits, deletes, reactions, read
//! positions) and every history replay for a resuming socket runs here, one
//! job at a time, in arrival order. Consecutive sends are taken together and
//! committed in one D1 batch (group commit): sends that arrive while a write
//! is in flight ride in the next write, and each is acked only after its
//! batch is durable.
//!
//! Because replays run in the same queue, a replay read never races a
//! commit: each page sees every message committed before it, and every
//! message committed after the final page is broadcast to the socket live.
//! That is what makes resume gap-free and duplicate-free.

use super::sockets::{presence, send_to, Frame};
use super::Core;
use crate::config::LogLevel;
use crate::error::AppError;
use crate::protocol::{AuthorKind, ReactAction, ServerFrame, UserRef};
use crate::runtime::log;
use crate::store::messages::{AuthorKey, Change, NewMessage, Page, Reacted};
use crate::store::{self, now_ms};
use serde_json::Value;
use worker::WebSocket;

/// Most sends committed in one D1 batch (two statements each).
pub const MAX_BATCH: usize = 50;
/// Messages per replay page; a long replay yields to other work between pages.
pub const REPLAY_PAGE: u32 = 100;
/// Larger than any seq (and still exact as a JS number).
const NO_REPLAY: u64 = 1 << 52;

pub enum Job {
    /// A message to store: a user's send (acked on `ws`) or the assistant's
    /// reply (no socket).
    Send {
        ws: Option<WebSocket>,
        msg: NewMessage,
    },
    Edit {
        ws: WebSocket,
        user: UserRef,
        kind: AuthorKind,
        seq: u64,
        text: String,
    },
    Delete {
        ws: WebSocket,
        user: UserRef,
        kind: AuthorKind,
        seq: u64,
    },
    React {
        ws: WebSocket,
        user: UserRef,
        seq: u64,
        emoji: String,
        action: ReactAction,
    },
    Read {
        ws: WebSocket,
        user: UserRef,
        seq: u64,
    },
    /// Greets a new socket and replays history after `after` (if given).
    Replay {
        ws: WebSocket,
        user: UserRef,
        after: Option<u64>,
        greeted: bool,
    },
}

enum Work {
    Commit(Vec<(Option<WebSocket>, NewMessage)>),
    One(Job),
}

impl Core {
    pub(super) fn enqueue(&self, job: Job) {
        self.queue.borrow_mut().push_back(job);
    }

    /// Runs queued jobs until the queue is empty. Only one drain runs at a
    /// time; a caller that finds one running leaves its job to it.
    pub(super) async fn drain(&self) {
        if self.draining.replace(true) {
            return;
        }
        loop {
            let work = {
                let mut q = self.queue.borrow_mut();
                match q.pop_front() {
                    None => break,
                    Some(Job::Send { ws, msg }) => {
                        let mut batch = vec![(ws, msg)];
                        while batch.len() < MAX_BATCH && matches!(q.front(), Some(Job::Send { .. }))
                        {
                            if let Some(Job::Send { ws, msg }) = q.pop_front() {
                                batch.push((ws, msg));
                            }
                        }
                        Work::Commit(batch)
                    }
                    Some(job) => Work::One(job),
                }
            };
            match work {
                Work::Commit(batch) => self.commit(batch).await,
                Work::One(job) => self.run(job).await,
            }
        }
        self.draining.set(false);
    }

    async fn commit(&self, batch: Vec<(Option<WebSocket>, NewMessage)>) {
        let msgs: Vec<NewMessage> = batch.iter().map(|(_, m)| m.clone()).collect();
        let result = match store::db(&self.env) {
            Ok(db) => match self.keys() {
                Ok(keys) => store::messages::commit(&db, keys, &self.session_id(), &msgs).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let committed = match result {
            Ok(c) => c,
            Err(e) => {
                self.log_error("commit_failed", &e);
                // Not acked, so the senders retry with the same client ids.
                for (ws, m) in &batch {
                    let Some(ws) = ws else { continue };
                    send_to(
                        ws,
                        &error_frame(
                            "persist_failed",
                            "message not stored; retry",
                            Some(&m.client_id),
                        ),
                    );
                }
                return;
            }
        };
        for ((ws, m), c) in batch.iter().zip(committed) {
            let Some(c) = c else {
                let Some(ws) = ws else { continue };
                send_to(
                    ws,
                    &error_frame(
                        "session_gone",
                        "this session no longer exists",
                        Some(&m.client_id),
                    ),
                );
                continue;
            };
            if let Some(ws) = ws {
                send_to(
                    ws,
                    &ServerFrame::Ack {
                        client_id: &m.client_id,
                        seq: c.view.seq,
                        id: &c.view.id,
                        duplicate: c.duplicate,
                    }
                    .to_json(),
                );
            }
            if !c.duplicate {
                self.broadcast_message(&ServerFrame::Message(&c.view).to_json());
                if c.view.author.kind == crate::protocol::AuthorKind::User {
                    self.request_turn(UserRef {
                        id: c.view.author.id.clone(),
                        name: c.view.author.name.clone(),
                    });
                }
            }
        }
    }

    async fn run(&self, job: Job) {
        let db = match store::db(&self.env) {
            Ok(db) => db,
            Err(e) => return self.log_error("no_database", &e),
        };
        let config = match crate::runtime::config(&self.env) {
            Ok(c) => c,
            Err(_) => {
                return self.log_error("no_config", &AppError::Unavailable { check: "config" })
            }
        };
        let keys = &config.keyring;
        let session = self.session_id();
        let now = now_ms();
        match job {
            Job::Edit {
                ws,
                user,
                kind,
                seq,
                text,
            } => {
                let who = AuthorKey { id: &user.id, kind };
                let keep = config.max_edit_history;
                match store::messages::edit(&db, keys, &session, seq, who, &text, now, keep).await {
                    Ok(Change::Done) => self.broadcast_event(
                        &ServerFrame::Edited {
                            seq,
                            text: &text,
                            edited_at: now,
                        }
                        .to_json(),
                    ),
                    Ok(other) => send_to(&ws, &change_error(other)),
                    Err(e) => self.fail(&ws, "edit_failed", &e),
                }
            }
            Job::Delete {
                ws,
                user,
                kind,
                seq,
            } => {
                let who = AuthorKey { id: &user.id, kind };
                match store::messages::delete(&db, &session, seq, who, now).await {
                    Ok(Change::Done) => self.broadcast_event(
                        &ServerFrame::Deleted {
                            seq,
                            deleted_at: now,
                        }
                        .to_json(),
                    ),
                    Ok(other) => send_to(&ws, &change_error(other)),
                    Err(e) => self.fail(&ws, "delete_failed", &e),
                }
            }
            Job::React {
                ws,
                user,
                seq,
                emoji,
                action,
            } => {
                let add = action == ReactAction::Add;
                let cap = config.max_reactions_per_user;
                let outcome =
                    store::messages::react(&db, &session, seq, &user.id, &emoji, add, now, cap);
                match outcome.await {
                    Ok(Reacted::Changed) => self.broadcast_event(
                        &ServerFrame::Reaction {
                            seq,
                            emoji: &emoji,
                            user: &user,
                            action,
                        }
                        .to_json(),
                    ),
                    // Already so: nothing changed, nothing to tell anyone.
                    Ok(Reacted::Unchanged) => {}
                    Ok(Reacted::Missing) => send_to(&ws, &change_error(Change::NotFound)),
                    Ok(Reacted::TooMany) => send_to(
                        &ws,
                        &error_frame(
                            "too_many_reactions",
                            &format!("at most {cap} different reactions per message"),
                            None,
                        ),
                    ),
                    Err(e) => self.fail(&ws, "react_failed", &e),
                }
            }
            Job::Read { ws, user, seq } => {
                match store::messages::mark_read(&db, &session, &user.id, seq, now).await {
                    Ok(Some(seq)) => {
                        self.broadcast_event(&ServerFrame::Receipt { user: &user, seq }.to_json())
                    }
                    Ok(None) => {}
                    Err(e) => self.fail(&ws, "read_failed", &e),
                }
            }
            Job::Replay {
                ws,
                user,
                after,
                greeted,
            } => {
                self.replay(&db, keys, &session, ws, user, after, greeted)
                    .await
            }
            Job::Send { .. } => unreachable!("sends are committed in batches"),
        }
    }

    /// One step of a replay: greet (first step), send one page, then either
    /// queue the next page behind whatever arrived meanwhile, or go live.
    #[allow(clippy::too_many_arguments)]
    async fn replay(
        &self,
        db: &worker::D1Database,
        keys: &crate::crypto::Keyring,
        session: &str,
        ws: WebSocket,
        user: UserRef,
        after: Option<u64>,
        greeted: bool,
    ) {
        // Without `after` there is nothing to replay: reading past any
        // possible seq returns no rows but still the current last_seq.
        let page = store::messages::page(
            db,
            keys,
            session,
            Page::After {
                after: after.unwrap_or(NO_REPLAY),
                limit: REPLAY_PAGE,
            },
        )
        .await;
        let (messages, last_seq) = match page {
            Ok(p) => p,
            Err(e) => {
                self.log_error("replay_failed", &e);
                self.end_replay(&ws);
                let _ = ws.close(
                    Some(crate::error::close::INTERNAL),
                    Some("replay failed; reconnect"),
                );
                return;
            }
        };
        if !greeted {
            let reads = store::messages::read_positions(db, session)
                .await
                .unwrap_or_default();
            let hello = ServerFrame::Hello {
                you: &user,
                session,
                last_seq,
                present: presence(&self.state, None),
                reads,
            };
            send_to(&ws, &hello.to_json());
            self.mark_greeted(&ws);
        }
        let frames: Vec<String> = messages
            .iter()
            .map(|m| ServerFrame::Message(m).to_json())
            .collect();
        for f in &frames {
            send_to(&ws, f);
        }
        let cursor = messages.last().map(|m| m.seq);
        if let (Some(next), true) = (cursor, messages.len() as u32 == REPLAY_PAGE) {
            self.enqueue(Job::Replay {
                ws,
                user,
                after: Some(next),
                greeted: true,
            });
            return;
        }
        // Nothing is in flight (this queue is serial), so everything up to
        // last_seq has been sent and everything after arrives live.
        self.end_replay(&ws);
        send_to(&ws, &ServerFrame::Synced { last_seq }.to_json());
        // Mid-reply: the text so far; live deltas follow from here.
        self.send_turn_snapshot(&ws);
    }

    /// Sends a `message` (or assistant `turn`/`delta`) frame to every live
    /// socket; replaying sockets get it from their replay (or the turn
    /// snapshot at its end) instead.
    pub(super) fn broadcast_message(&self, json: &str) {
        let frame = Frame::new(json);
        let replaying = self.replaying.borrow();
        for ws in self.state.get_websockets() {
            if !replaying.iter().any(|(r, _)| *r == ws) {
                frame.send(&ws);
            }
        }
    }

    /// Sends an event (edit, reaction, presence, …) to every socket that has
    /// been greeted. A replaying socket may get an event about a message it
    /// has not seen yet; its replay carries that message's current state.
    pub(super) fn broadcast_event(&self, json: &str) {
        self.broadcast_event_except(json, &[]);
    }

    pub(super) fn broadcast_event_except(&self, json: &str, except: &[WebSocket]) {
        let frame = Frame::new(json);
        let replaying = self.replaying.borrow();
        for ws in self.state.get_websockets() {
            let ungreeted = replaying.iter().any(|(r, greeted)| *r == ws && !greeted);
            if !ungreeted && !except.contains(&ws) {
                frame.send(&ws);
            }
        }
    }

    fn mark_greeted(&self, ws: &WebSocket) {
        if let Some(entry) = self
            .replaying
            .borrow_mut()
            .iter_mut()
            .find(|(r, _)| r == ws)
        {
            entry.1 = true;
        }
    }

    pub(super) fn end_replay(&self, ws: &WebSocket) {
        self.replaying.borrow_mut().retain(|(r, _)| r != ws);
    }

    fn fail(&self, ws: &WebSocket, event: &str, e: &AppError) {
        self.log_error(event, e);
        send_to(
            ws,
            &error_frame("internal", "the change was not applied; retry", None),
        );
    }

    /// Adds one to a metric counter, off the critical path.
    pub(super) fn count(&self, name: &'static str, labels: String) {
        let Ok(db) = store::db(&self.env) else { return };
        self.state.wait_until(async move {
            let _ = store::metrics::incr(&db, name, &labels, 1.0).await;
        });
    }

    fn keys(&self) -> Result<&'static crate::crypto::Keyring, AppError> {
        crate::runtime::config(&self.env)
            .map(|c| &c.keyring)
            .map_err(|_| AppError::Unavailable { check: "config" })
    }

    pub(super) fn log_error(&self, event: &str, e: &AppError) {
        log(
            LogLevel::Error,
            event,
            [
                ("session", Value::from(self.session_id())),
                ("detail", Value::from(e.to_string())),
            ],
        );
    }
}

pub fn error_frame(code: &str, message: &str, client_id: Option<&str>) -> String {
    ServerFrame::Error {
        code,
        message,
        client_id,
        retry_after_ms: None,
    }
    .to_json()
}

fn change_error(c: Change) -> String {
    match c {
        Change::Forbidden => {
            error_frame("forbidden", "only the author may change this message", None)
        }
        Change::Deleted => error_frame("message_deleted", "that message was deleted", None),
        Change::NotFound | Change::Done => error_frame("not_found", "no such message", None),
    }
}
