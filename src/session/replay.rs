//! A new socket's greeting and resume replay, run in the session's serial
//! queue (`queue.rs`) one page at a time.
//!
//! **Order.** `hello`; when resuming (`after`), every message after
//! `after` in its current state; when the client also says which changes
//! it has seen (`changes`), every change it missed to the messages it
//! already had (`log/stream.rs`: each changed thing once, in its current
//! state); any message stored meanwhile; then `synced`.
//!
//! **Gap-free, duplicate-free.** The change window ends at the latest
//! change when the socket is greeted (`until`). From then on the socket
//! gets every event live, so changes after `until` reach it live and never
//! in the replay. Messages reach a replaying socket only through the
//! replay: the last step reads past the last message it sent in the same
//! synchronous block that puts the socket live, so each message arrives
//! exactly once.

use super::log::tools::Sight;
use super::log::Window;
use super::queue::{Job, REPLAY_PAGE};
use super::sockets::{attachment, presence, send_to};
use super::Core;
use crate::crypto::Keyring;
use crate::error::AppError;
use crate::protocol::{AuthorKind, ServerFrame, UserRef};
use worker::WebSocket;

/// Larger than any seq (and still exact as a JS number).
const NO_REPLAY: u64 = 1 << 52;

/// Where a replay stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Not greeted yet: `after` and `changes` are what the client asked for.
    Greet {
        after: Option<u64>,
        changes: Option<u64>,
    },
    /// Sending the messages after `after`; `until` is the change stream's
    /// end when greeted, and `owed` the changes still to send.
    Messages {
        after: u64,
        until: u64,
        owed: Option<Window>,
    },
    /// Sending the changes in `owed`; `after` is the last message sent.
    Changes { after: u64, owed: Window },
}

impl Core {
    /// Runs a replay from `step` until it must yield (a full page: the next
    /// one queues behind whatever arrived meanwhile) or goes live.
    pub(super) fn replay(&self, keys: &Keyring, ws: WebSocket, user: UserRef, step: Step) {
        let mut step = step;
        loop {
            let next = match step {
                Step::Greet { after, changes } => self.greet(&ws, &user).map(|until| {
                    // Without `after` there is nothing to replay: reading
                    // past any possible seq returns no rows.
                    let owed =
                        after
                            .zip(changes)
                            .map(|(upto, since)| Window { since, until, upto });
                    let after = after.unwrap_or(NO_REPLAY);
                    Some(Step::Messages { after, until, owed })
                }),
                Step::Messages { after, until, owed } => self
                    .replay_messages(keys, (&ws, &user.id), after)
                    .map(|(last, full)| match (full, owed) {
                        (true, _) => Some(Step::Messages {
                            after: last,
                            until,
                            owed,
                        }),
                        (false, Some(owed)) => Some(Step::Changes { after: last, owed }),
                        (false, None) => {
                            self.go_live(&ws, until);
                            None
                        }
                    }),
                Step::Changes { after, owed } => self
                    .replay_changes(keys, (&ws, &user.id), owed)
                    .map(|rest| {
                        Some(match rest {
                            Some(owed) => Step::Changes { after, owed },
                            // Then any message stored meanwhile.
                            None => Step::Messages {
                                after,
                                until: owed.until,
                                owed: None,
                            },
                        })
                    }),
            };
            match next {
                Ok(None) => return,
                Ok(Some(next)) => {
                    let yields = matches!(
                        (step, next),
                        (Step::Messages { .. }, Step::Messages { .. })
                            | (Step::Changes { .. }, Step::Changes { .. })
                    );
                    if yields {
                        return self.enqueue(Job::Replay {
                            ws,
                            user,
                            step: next,
                        });
                    }
                    step = next;
                }
                Err(e) => {
                    self.log_error("replay_failed", &e);
                    self.end_replay(&ws);
                    let _ = ws.close(
                        Some(crate::error::close::INTERNAL),
                        Some("replay failed; reconnect"),
                    );
                    return;
                }
            }
        }
    }

    /// Sends `hello`; gives the latest change number, where the replay's
    /// change window ends.
    fn greet(&self, ws: &WebSocket, user: &UserRef) -> Result<u64, AppError> {
        let meta = self.log.live()?;
        let last_change = self.log.last_change()?;
        let reads = self.log.read_positions().unwrap_or_default();
        let desk = self
            .log
            .desk(&meta)
            .unwrap_or_else(|_| crate::desk::Desk::new(0));
        let hello = ServerFrame::Hello {
            you: user,
            session: &meta.id,
            last_seq: meta.last_seq.max(0) as u64,
            present: presence(&self.state, None),
            reads,
            status: desk.status(),
            assignee: desk.assignee(),
            last_change,
            profile: meta
                .profile
                .as_deref()
                .unwrap_or(crate::llm::DEFAULT_PROFILE),
        };
        send_to(ws, &hello.to_json());
        self.mark_greeted(ws);
        Ok(last_change)
    }

    /// Sends a page of messages after `after`; gives the last seq sent (or
    /// `after`) and whether the page was full.
    fn replay_messages(
        &self,
        keys: &Keyring,
        (ws, reader): (&WebSocket, &str),
        after: u64,
    ) -> Result<(u64, bool), AppError> {
        let range = (after, NO_REPLAY);
        let agent = attachment(ws).is_some_and(|a| a.kind == AuthorKind::Agent);
        let how = (false, None, Sight::of(agent));
        let page = (self.log).page(keys, range, REPLAY_PAGE, how, Some(reader))?;
        for m in &page.messages {
            send_to(ws, &ServerFrame::Message(m).to_json());
        }
        // Where the page read to, not the last message sent: a page of
        // only blocked people's messages sends nothing and is still full.
        let last = page.read.map_or(after, |(_, last)| last);
        Ok((last, page.full))
    }

    /// Sends a page of the changes `owed`; gives what remains, if any.
    fn replay_changes(
        &self,
        keys: &Keyring,
        (ws, reader): (&WebSocket, &str),
        owed: Window,
    ) -> Result<Option<Window>, AppError> {
        let (frames, rest) = (self.log).changes_page(keys, (owed, reader), REPLAY_PAGE)?;
        for f in &frames {
            send_to(ws, f);
        }
        Ok(rest)
    }

    /// Puts the socket live: everything up to the last message and up to
    /// change `until` has been sent, and everything after arrives live.
    fn go_live(&self, ws: &WebSocket, until: u64) {
        // Nothing is in flight (the queue is serial), so the last seq now is
        // the last one this socket got from its replay.
        let last_seq = self.log.last_seq().unwrap_or(0);
        self.end_replay(ws);
        let synced = ServerFrame::Synced {
            last_seq,
            last_change: until,
        };
        send_to(ws, &synced.to_json());
        // Mid-reply: the text so far; live deltas follow from here.
        self.send_turn_snapshot(ws);
    }
}
