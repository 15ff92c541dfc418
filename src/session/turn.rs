//! One assistant turn: gate, prompt, call the provider chain, relay the
//! stream, record the reply.
//!
//! **Policy.** One turn at a time per session. A user message that arrives
//! during a turn does not start a second one; when the turn ends, one more
//! turn runs whose prompt (read from the session log) includes everything that arrived
//! meanwhile. No turn runs in `human` mode (an agent has taken over).
//!
//! **Robustness.** The reply's policy (retries with backoff and jitter,
//! fallback across the provider chain, deadlines, stops) is the pure
//! `crate::llm::driver`, fed by `attempt.rs`'s I/O. After tokens have gone
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

use super::attempt::TurnIo;
use super::queue::Job;
use super::sockets::send_to;
use super::Core;
use crate::config::LogLevel;
use crate::error::{AppError, SocketError};
use crate::ids::{ClientId, MessageId};
use crate::llm::config::Assistant;
use crate::llm::driver::{self, Ending, Outcome};
use crate::llm::{budget, Role, Turn};
use crate::protocol::{Author, AuthorKind, ServerFrame, TurnMeta, UserRef, ASSISTANT_AUTHOR_ID};
use crate::runtime::log;
use crate::store::messages::{Charge, NewMessage, Reservation};
use crate::store::{self, now_ms};
use crate::trace::Trace;
use serde_json::Value;
use worker::{AbortController, WebSocket};

/// The assistant in this session: one state, not parallel flags.
pub enum TurnSlot {
    /// No turn runs.
    Idle,
    /// A turn runs. `reply` is the reply streaming (None while the turn
    /// gates, builds its prompt or reserves its budget); `again` is who
    /// asked for another turn meanwhile (one more runs after this one).
    Busy {
        reply: Option<TurnState>,
        trace: Trace,
        again: Option<(UserRef, Trace)>,
    },
}

impl TurnState {
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
                    TurnSlot::Busy { again, trace, .. } => again.take().map(|(u, t)| {
                        *trace = t;
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
    fn set_reply(&self, state: Option<TurnState>) {
        if let TurnSlot::Busy { reply, .. } = &mut *self.turn.borrow_mut() {
            *reply = state;
        }
    }

    pub(super) fn reply_stopped(&self) -> bool {
        self.with_reply(|t| t.stopped).unwrap_or(false)
    }

    /// Stops the reply in progress, if any (a `stop` frame, or a takeover).
    pub(super) fn stop_turn(&self) {
        self.with_reply(|t| {
            t.stopped = true;
            if let Some(a) = t.abort.take() {
                a.abort();
            }
        });
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
    }

    async fn run_turn(&self, user: UserRef) {
        let Ok(config) = crate::runtime::config(&self.env) else {
            return;
        };
        let Some(assistant) = config.assistant.as_ref() else {
            return;
        };
        if let Err(e) = self.turn_inner(assistant, &config.keyring, &user).await {
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
        // Budgets are kept in the home shard, whichever shard the session is in.
        let db = self.d1_home()?;
        let started = now_ms();
        // The mode and the prompt's history come from the local log: no
        // round trip before the turn's budget check.
        if !self.assistant_answers()? {
            return Ok(());
        }
        let history = (self.log).page(keys, (0, u64::MAX), HISTORY, (true, None), None)?;
        let mut images = if a.vision {
            self.prompt_images(keys, &history).await
        } else {
            Default::default()
        };
        let turns: Vec<Turn> = history
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
            .map(|m| Turn {
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
            })
            .collect();
        let prompt = budget::fit(&a.system_prompt, &turns, a.prompt_token_budget);
        // Reserve the turn's most it can cost before spending anything.
        let charge = if a.daily_token_budget > 0 || a.daily_cost_budget.is_some() {
            let prompt_tokens = budget::turn_estimate(&prompt, 0);
            let wanted = Reservation {
                tokens: prompt_tokens + a.max_output_tokens() as u64,
                token_budget: a.daily_token_budget,
                cost: a.most_cost(prompt_tokens),
                cost_budget: a.daily_cost_budget,
            };
            store::messages::reserve(&db, &user.id, started, &wanted).await?
        } else {
            Some(Charge {
                user: user.id.clone(),
                day: crate::limits::utc_day(started),
                reserved: 0,
                reserved_nanos: 0,
            })
        };
        let Some(charge) = charge else {
            self.count(
                crate::metrics::Metric::LlmTurns,
                r#"provider="",model="",outcome="quota_exceeded""#.into(),
            );
            self.broadcast_event(&SocketError::AssistantQuota.frame(None));
            return Ok(());
        };
        let stored = self.reply(a, &prompt, started, &charge, user).await;
        // A queued reply takes its progress row with it when it is stored
        // (one commit); a turn that stored nothing leaves nothing in progress.
        if !matches!(stored, Ok(true)) {
            self.progress_clear();
        }
        // A turn that stored nothing gives its reservation back.
        if !matches!(stored, Ok(true)) && (charge.reserved > 0 || charge.reserved_nanos > 0) {
            if let Err(e) = store::messages::release(&db, &charge).await {
                self.log_error("budget_release_failed", &e);
            }
        }
        stored.map(|_| ())
    }

    /// Streams one reply through the provider chain and queues it for
    /// storage. `Ok(true)` when a reply was queued (its commit settles
    /// `charge`), `Ok(false)` when nothing was. (Long, and one async fn on
    /// purpose: each async fn is a state machine of its own, and splitting
    /// this one cost bundle size.)
    async fn reply(
        &self,
        a: &Assistant,
        prompt: &crate::llm::Prompt,
        started: i64,
        charge: &Charge,
        asked_by: &UserRef,
    ) -> Result<bool, AppError> {
        let session = self.session_id();

        let author = Author {
            id: ASSISTANT_AUTHOR_ID.into(),
            name: a.name.clone(),
            kind: AuthorKind::Assistant,
        };
        let message_id = MessageId::new();
        self.set_reply(Some(TurnState {
            message_id: message_id.clone(),
            author: author.clone(),
            text: String::new(),
            index: 0,
            abort: None,
            stopped: false,
        }));
        let head = &a.chain[0].endpoint;
        self.progress_start(super::progress::Started {
            message_id: message_id.as_str(),
            author: &author,
            asked_by,
            charge,
            provider: head.kind.as_str(),
            model: &head.model,
            started_at: started,
        })?;
        if let Some(core) = self.me.upgrade() {
            let at = now_ms() + super::progress::WATCHDOG_MS;
            self.state
                .wait_until(async move { core.alarm_no_later_than(at).await });
        }
        self.broadcast_message(
            &ServerFrame::Turn {
                message_id: message_id.as_str(),
                author: &author,
                text: "",
                index: 0,
            }
            .to_json(),
        );

        let outcome = driver::reply(&TurnIo(self), a, prompt, started).await;
        let (index, ending, tokens, first_token_ms) = match outcome {
            Outcome::Reply {
                provider,
                ending,
                tokens,
                first_token_ms,
            } => (provider, ending, tokens, first_token_ms),
            Outcome::Failed { code } => {
                // Every provider failed before saying anything; counted
                // against the head of the chain.
                self.count(
                    crate::metrics::Metric::LlmTurns,
                    format!(
                        r#"provider="{}",model="{}",outcome="failed""#,
                        head.kind.as_str(),
                        crate::metrics::escape(&head.model)
                    ),
                );
                self.broadcast_event(&SocketError::AssistantUnavailable { code }.frame(None));
                return Ok(false);
            }
        };
        let (finish, incomplete) = match ending {
            Ending::Finished(f) => (f, false),
            Ending::Stopped => ("stopped".to_string(), true),
            Ending::CutShort(code) => {
                self.broadcast_event(&SocketError::ReplyCutShort { code }.frame(None));
                ("error".to_string(), true)
            }
        };
        // Recorded through the session queue, so its seq and its broadcast
        // stay in order with everyone else's messages.
        let text = self.with_reply(|t| t.text.clone()).unwrap_or_default();
        self.set_reply(None);
        if text.is_empty() && incomplete {
            return Ok(false);
        }
        let provider = &a.chain[index];
        let meta = TurnMeta {
            provider: provider.endpoint.kind.as_str().to_string(),
            model: provider.endpoint.model.clone(),
            tokens_in: tokens.input,
            tokens_out: tokens.output,
            tokens_cached: tokens.cached,
            cost_usd: a.cost(provider, tokens),
            ttft_ms: first_token_ms.unwrap_or(0),
            latency_ms: (now_ms() - started).max(0) as u64,
            finish_reason: finish,
            incomplete,
        };
        log(
            LogLevel::Info,
            "turn_finished",
            [
                ("session", Value::from(session.as_str())),
                ("trace_id", self.turn_trace_id()),
                ("provider", Value::from(meta.provider.as_str())),
                ("finish", Value::from(meta.finish_reason.as_str())),
                ("latency_ms", Value::from(meta.latency_ms)),
            ],
        );
        self.enqueue(Job::Send {
            ws: None,
            msg: NewMessage {
                id: message_id.clone(),
                client_id: ClientId::of_reply(&message_id),
                author,
                text,
                reply_to: None,
                created_at: now_ms(),
                turn: Some(Box::new((meta, charge.clone()))),
                poll: None,
                attachments: Vec::new(),
                mentions: Vec::new(),
            },
        });
        self.drain().await;
        Ok(true)
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
