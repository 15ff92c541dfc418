//! One assistant turn: gate, choose the assistant (the session's profile,
//! `profiles.rs`), prompt (the history, with earlier turns' function calls
//! put back), call the provider chain, relay the stream, record the reply;
//! and when a reply calls functions, make them (`tools.rs`) and ask again.
//!
//! **Policy.** One turn at a time per session. A user message that arrives
//! during a turn does not start a second one; when the turn ends, one more
//! turn runs whose prompt (read from the session log) includes everything that arrived
//! meanwhile. No turn runs in `human` mode (an agent has taken over).
//!
//! **Robustness.** The turn's policy (its budget reservations, retries with
//! backoff and jitter, fallback across the provider chain, deadlines,
//! stops, the tool loop and its approvals) is the pure `crate::llm::driver`;
//! `running.rs`, `attempt.rs` and `tools.rs` carry out its I/O. After tokens have gone
//! out nothing is retried silently: clients get an `error` frame and the
//! partial text is stored, marked incomplete. A `stop` frame aborts the
//! upstream request and stores the partial text as stopped. Provider error
//! bodies never reach clients.
//!
//! **Resume.** The reply so far lives in memory while the turn runs (and in
//! the session log at least every 250 ms, so that a crash cannot orphan it:
//! `progress.rs`); a socket that finishes its replay mid-turn gets a `turn`
//! frame with the text so far, then the live `delta`s, with nothing missing
//! or repeated.
//!
//! **State.** One `TurnSlot` per session: `Idle`, or `Busy` with the reply
//! streaming (if any), the turn's trace, and who asked for another turn
//! meanwhile.
//!
//! **Tracing.** A turn joins the trace of the `send` that asked for it (its
//! `traceparent`, or a new trace: `crate::trace`); each provider attempt is
//! a child span, sent to the provider as `traceparent`, and the turn's log
//! lines carry its `trace_id`.

use super::log::tools::Sight;
use super::running::Running;
use super::sockets::send_to;
use super::Core;
use crate::error::{AppError, SocketError};
use crate::ids::MessageId;
use crate::llm::config::Assistant;
use crate::llm::driver::{self, TurnEnd};
use crate::llm::tools::{with_exchanges, Placed};
use crate::llm::{budget, Role, Turn};
use crate::protocol::{Author, AuthorKind, ServerFrame, UserRef};
use crate::store::now_ms;
use crate::trace::Trace;
use serde_json::Value;
use worker::{AbortController, WebSocket};

/// The assistant in this session: one state, not parallel flags.
pub enum TurnSlot {
    /// No turn runs.
    Idle,
    /// A turn runs. `reply` is the reply streaming (None while the turn
    /// gates, builds its prompt, reserves its budget or makes function
    /// calls); `again` is who asked for another turn meanwhile (one more
    /// runs after this one); `halted`: a `stop` (or a takeover) came, so
    /// no further reply of this turn starts (a tool loop's next round).
    Busy {
        reply: Option<TurnState>,
        trace: Trace,
        again: Option<(UserRef, Trace)>,
        halted: bool,
    },
}

impl TurnState {
    /// A reply about to stream, with nothing said yet.
    pub(super) fn new(message_id: MessageId, author: Author) -> TurnState {
        TurnState {
            message_id,
            author,
            text: String::new(),
            index: 0,
            abort: None,
            stopped: false,
        }
    }

    /// Gives the reply the abort handle of its current request, so that
    /// `stop` can cut it; false (and nothing kept) if already stopped.
    pub(super) fn arm(&mut self, controller: AbortController) -> bool {
        if self.stopped {
            return false;
        }
        self.abort = Some(controller);
        true
    }
}

/// The reply in progress.
pub struct TurnState {
    pub message_id: MessageId,
    pub author: Author,
    pub text: String,
    /// The index the next delta will carry.
    pub index: u64,
    abort: Option<AbortController>,
    stopped: bool,
}

/// History read for the prompt (the budget then trims it).
const HISTORY: u32 = 100;

impl Core {
    /// Asks for a turn on behalf of `user`; runs it now, or after the one in
    /// progress.
    /// The trace is that of the message that asked (`asked`).
    pub(super) fn request_turn(&self, user: UserRef, asked: Option<Trace>) {
        let Ok(config) = crate::runtime::config(&self.env) else {
            return;
        };
        if config.assistant.is_none() {
            return;
        }
        let trace = asked.unwrap_or_else(Trace::root);
        {
            let mut slot = self.turn.borrow_mut();
            match &mut *slot {
                TurnSlot::Busy { again, .. } => {
                    *again = Some((user, trace));
                    return;
                }
                TurnSlot::Idle => {
                    *slot = TurnSlot::Busy {
                        reply: None,
                        trace,
                        again: None,
                        halted: false,
                    }
                }
            }
        }
        let Some(core) = self.me.upgrade() else {
            *self.turn.borrow_mut() = TurnSlot::Idle;
            return;
        };
        self.state.wait_until(async move {
            let mut next = Some(user);
            while let Some(user) = next {
                core.run_turn(user).await;
                next = match &mut *core.turn.borrow_mut() {
                    TurnSlot::Busy {
                        again,
                        trace,
                        halted,
                        ..
                    } => again.take().map(|(u, t)| {
                        *trace = t;
                        *halted = false;
                        u
                    }),
                    TurnSlot::Idle => None,
                };
            }
            *core.turn.borrow_mut() = TurnSlot::Idle;
        });
    }

    /// `regenerate`: marks the assistant's last reply superseded, tells
    /// everyone, and asks for a new turn (which leaves superseded replies
    /// out of its prompt). Only when that reply is the newest message, no
    /// turn runs and the assistant answers in this session.
    pub(super) fn regenerate(&self, ws: &WebSocket, user: UserRef) {
        let refuse = |e: SocketError| send_to(ws, &e.frame(None));
        if self.turn_busy() {
            return refuse(SocketError::AssistantBusy);
        }
        let configured = crate::runtime::config(&self.env).is_ok_and(|c| c.assistant.is_some());
        let open = match self.desk_admits_writes() {
            Err(e) => return refuse(SocketError::App(e)),
            Ok(()) => configured && self.assistant_answers().unwrap_or(false),
        };
        let last = self.log.regenerable();
        let seq = match (open, last) {
            (_, Err(e)) => return self.fail(ws, "regenerate_failed", &e, None),
            (true, Ok(Some(seq))) => seq,
            _ => return refuse(SocketError::NothingToRegenerate),
        };
        let now = now_ms();
        match self.log.supersede(seq, now, &self.outbox) {
            Ok(change) => {
                self.broadcast_event(&ServerFrame::Superseded { seq, change }.to_json());
                self.replicate_soon();
                self.request_turn(user, None);
            }
            Err(e) => self.fail(ws, "regenerate_failed", &e, None),
        }
    }

    /// The running turn's trace id, for its log lines.
    pub(super) fn turn_trace_id(&self) -> Value {
        match &*self.turn.borrow() {
            TurnSlot::Busy { trace, .. } => Value::from(trace.trace_id()),
            TurnSlot::Idle => Value::Null,
        }
    }

    /// A new span of the running turn's trace, as a `traceparent`.
    pub(super) fn turn_span(&self) -> Option<String> {
        match &*self.turn.borrow() {
            TurnSlot::Busy { trace, .. } => Some(trace.child().header()),
            TurnSlot::Idle => None,
        }
    }

    /// Whether a turn runs in this instance.
    pub(super) fn turn_busy(&self) -> bool {
        matches!(*self.turn.borrow(), TurnSlot::Busy { .. })
    }

    /// Runs `f` on the reply in progress, if there is one.
    pub(super) fn with_reply<R>(&self, f: impl FnOnce(&mut TurnState) -> R) -> Option<R> {
        match &mut *self.turn.borrow_mut() {
            TurnSlot::Busy { reply: Some(t), .. } => Some(f(t)),
            _ => None,
        }
    }

    /// Sets (or, with None, ends) the reply of the running turn.
    pub(super) fn set_reply(&self, state: Option<TurnState>) {
        if let TurnSlot::Busy { reply, .. } = &mut *self.turn.borrow_mut() {
            *reply = state;
        }
    }

    pub(super) fn reply_stopped(&self) -> bool {
        match &*self.turn.borrow() {
            TurnSlot::Busy { reply, halted, .. } => {
                *halted || reply.as_ref().is_some_and(|t| t.stopped)
            }
            TurnSlot::Idle => false,
        }
    }

    /// Stops the reply in progress, if any (a `stop` frame, or a takeover).
    pub(super) fn stop_turn(&self) {
        if let TurnSlot::Busy { halted, .. } = &mut *self.turn.borrow_mut() {
            *halted = true;
        }
        self.with_reply(|t| {
            t.stopped = true;
            if let Some(a) = t.abort.take() {
                a.abort();
            }
        });
        self.reject_waiting();
    }

    /// The reply so far, for a socket that just caught up.
    pub(super) fn send_turn_snapshot(&self, ws: &WebSocket) {
        let frame = self.with_reply(|t| {
            ServerFrame::Turn {
                message_id: t.message_id.as_str(),
                author: &t.author,
                text: &t.text,
                index: t.index,
            }
            .to_json()
        });
        if let Some(f) = frame {
            send_to(ws, &f);
        }
        self.send_waiting(ws);
    }

    async fn run_turn(&self, user: UserRef) {
        let Ok(config) = crate::runtime::config(&self.env) else {
            return;
        };
        let Some(base) = config.assistant.as_ref() else {
            return;
        };
        let assistant = match self.turn_assistant(base, &config.keyring).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                let code = "profile_missing";
                return self
                    .broadcast_event(&SocketError::AssistantUnavailable { code }.frame(None));
            }
            Err(e) => {
                self.log_error("profile_read_failed", &e);
                return self.broadcast_event(&SocketError::AssistantFailed.frame(None));
            }
        };
        if let Err(e) = self.turn_inner(&assistant, &config.keyring, &user).await {
            self.log_error("turn_failed", &e);
            self.broadcast_event(&SocketError::AssistantFailed.frame(None));
        }
        self.set_reply(None);
    }

    async fn turn_inner(
        &self,
        a: &Assistant,
        keys: &crate::crypto::Keyring,
        user: &UserRef,
    ) -> Result<(), AppError> {
        let started = now_ms();
        // The mode and the prompt's history come from the local log: no
        // round trip before the turn's budget check.
        if !self.assistant_answers()? {
            return Ok(());
        }
        let history = (self.log)
            .page(
                keys,
                (0, u64::MAX),
                HISTORY,
                (true, None, Sight::Hidden),
                None,
            )?
            .messages;
        let mut images = if a.vision {
            self.prompt_images(keys, &history).await
        } else {
            Default::default()
        };
        let placed = placed(&history, &mut images);
        // Earlier turns' calls and results, where the assistant offers
        // functions (vendors want them declared while calls are in the
        // history).
        let exchanges = match (a.tools.is_empty(), history.first()) {
            (false, Some(first)) => self.log.exchanges(keys, first.created_at)?,
            _ => Vec::new(),
        };
        let turns = with_exchanges(placed, exchanges);
        let prompt = budget::fit(&a.system_prompt, &turns, a.prompt_token_budget);
        let run = Running::new(self, a, user, self.d1_home()?, started);
        match driver::turn(&run, a, &prompt, &user.id, started).await? {
            TurnEnd::QuotaExceeded => {
                self.count(
                    crate::metrics::Metric::LlmTurns,
                    r#"provider="",model="",outcome="quota_exceeded""#.into(),
                );
                self.broadcast_event(&SocketError::AssistantQuota.frame(None));
            }
            TurnEnd::Ran { .. } => {}
        }
        Ok(())
    }

    /// Appends a piece to the reply and sends it to every live socket.
    pub(super) fn relay(&self, piece: &str) {
        let frame = self.with_reply(|t| {
            t.text.push_str(piece);
            let f = ServerFrame::Delta {
                message_id: t.message_id.as_str(),
                index: t.index,
                text: piece,
            }
            .to_json();
            t.index += 1;
            f
        });
        let Some(frame) = frame else { return };
        self.broadcast_message(&frame);
        if now_ms() - self.progress_saved_at.get() >= super::progress::SAVE_EVERY_MS {
            let saved = self.with_reply(|t| (t.message_id.clone(), t.text.clone()));
            if let Some((id, text)) = saved {
                self.progress_save(id.as_str(), &text);
            }
        }
    }
}

/// The history as the prompt sees it: each message as a turn, with when
/// it was said and its id (for `with_exchanges`).
fn placed(
    history: &[crate::protocol::MessageView],
    images: &mut std::collections::HashMap<u64, Vec<crate::llm::Image>>,
) -> Vec<Placed> {
    history
        .iter()
        // A reply cut off by a crash is answered again, not continued.
        // A reply answered again is left out: the new one replaces it.
        .filter(|m| !m.deleted && !m.superseded && m.unreadable.is_none())
        .filter(|m| !m.text.is_empty() || !m.attachments.is_empty())
        .filter(|m| {
            m.turn
                .as_ref()
                .is_none_or(|t| t.finish_reason != "interrupted")
        })
        .map(|m| Placed {
            at: m.created_at,
            id: m.id.clone(),
            turn: Turn {
                role: if m.author.kind == AuthorKind::Assistant {
                    Role::Assistant
                } else {
                    Role::User
                },
                text: match (&m.poll, m.author.kind) {
                    // The assistant sees a poll's options and tally too.
                    (Some(p), _) => format!("{}: {}", m.author.name, p.describe(&m.text)),
                    (None, AuthorKind::Assistant) => m.text.clone(),
                    // Each file is named, so a model without vision (or an
                    // image past the prompt's few) still knows it was sent.
                    (None, _) => format!(
                        "{}: {}",
                        m.author.name,
                        crate::attachment::describe(&m.text, &m.attachments)
                    ),
                },
                images: images.remove(&m.seq).unwrap_or_default(),
                ..Default::default()
            },
        })
        .collect()
}
