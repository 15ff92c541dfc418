//! A running turn's side of the driver (`crate::llm::driver::TurnIo`):
//! the budget in the home shard, each reply announced (a message id of
//! its own, its progress row, the `turn` frame), and what it came to,
//! stored through the session queue. The reply's own I/O is `attempt.rs`;
//! function calls and approvals are `tools.rs`.

use super::queue::Job;
use super::turn::TurnState;
use super::Core;
use crate::config::LogLevel;
use crate::error::{AppError, SocketError};
use crate::ids::{ClientId, MessageId};
use crate::llm::budget::{Charge, Reservation};
use crate::llm::config::Assistant;
use crate::llm::driver::{Decision, Ending, Outcome, Spent, TurnIo};
use crate::llm::tools::{ToolCall, ToolResult};
use crate::protocol::{Author, AuthorKind, ServerFrame, TurnMeta, UserRef, ASSISTANT_AUTHOR_ID};
use crate::runtime::log;
use crate::store::messages::NewMessage;
use crate::store::{self, now_ms};
use serde_json::Value;
use worker::D1Database;

/// One turn as it runs: who asked, the reply's id and author, and the
/// home shard where budgets are kept (whichever shard the session is in).
pub(super) struct Running<'a> {
    pub core: &'a Core,
    pub a: &'a Assistant,
    asked_by: &'a UserRef,
    db: D1Database,
    pub started: i64,
    /// The reply being written: a new one for each round of a tool loop.
    message_id: std::cell::RefCell<MessageId>,
    author: Author,
}

impl<'a> Running<'a> {
    pub fn new(
        core: &'a Core,
        a: &'a Assistant,
        asked_by: &'a UserRef,
        db: D1Database,
        started: i64,
    ) -> Running<'a> {
        let author = Author {
            id: ASSISTANT_AUTHOR_ID.into(),
            name: a.name.clone(),
            kind: AuthorKind::Assistant,
        };
        Running {
            core,
            a,
            asked_by,
            db,
            started,
            message_id: std::cell::RefCell::new(MessageId::new()),
            author,
        }
    }
}

impl TurnIo for Running<'_> {
    async fn reserve(&self, r: &Reservation) -> Result<Option<Charge>, AppError> {
        store::messages::reserve(&self.db, r).await
    }

    async fn begin(&self, c: &Charge) -> Result<(), AppError> {
        let core = self.core;
        let message_id = MessageId::new();
        *self.message_id.borrow_mut() = message_id.clone();
        core.set_reply(Some(TurnState::new(
            message_id.clone(),
            self.author.clone(),
        )));
        let head = &self.a.chain[0].endpoint;
        core.progress_start(super::progress::Started {
            message_id: message_id.as_str(),
            author: &self.author,
            asked_by: self.asked_by,
            charge: c,
            provider: head.kind.as_str(),
            model: &head.model,
            started_at: self.started,
        })?;
        if let Some(me) = core.me.upgrade() {
            let at = now_ms() + super::progress::WATCHDOG_MS;
            core.state
                .wait_until(async move { me.alarm_no_later_than(at).await });
        }
        core.broadcast_message(
            &ServerFrame::Turn {
                message_id: message_id.as_str(),
                author: &self.author,
                text: "",
                index: 0,
            }
            .to_json(),
        );
        Ok(())
    }

    /// Queues the reply for storage through the session queue (so its seq
    /// and broadcast stay in order with everyone else's messages); its
    /// commit takes its progress row with it. Nothing stored: the progress
    /// row goes. (Long: the reply's metadata, log line and message.)
    async fn record(&self, outcome: Outcome, c: &Charge, earlier: Spent) -> Result<bool, AppError> {
        let stored = self.store(outcome, c, earlier).await;
        if !matches!(stored, Ok(true)) {
            self.core.progress_clear();
        }
        stored
    }

    async fn release(&self, c: &Charge) {
        if let Err(e) = store::messages::release(&self.db, c).await {
            self.core.log_error("budget_release_failed", &e);
        }
    }

    async fn approvals(&self, calls: &[ToolCall], wait_ms: u64) -> Vec<Decision> {
        self.ask(calls, wait_ms).await
    }

    async fn run_tools(&self, calls: &[ToolCall]) -> Vec<ToolResult> {
        self.make(calls).await
    }

    /// Kept in the session log with the calls (`tools.rs`).
    async fn record_results(&self, results: &[ToolResult]) -> Result<(), AppError> {
        let reply = self.message_id.borrow().clone();
        self.keep_results(reply.as_str(), results);
        Ok(())
    }
}

impl Running<'_> {
    pub(super) fn asked_by(&self) -> &UserRef {
        self.asked_by
    }
}

impl Running<'_> {
    /// Stores the reply; its record counts what the turn's earlier
    /// unstored replies spent too (`Spent`).
    async fn store(&self, outcome: Outcome, c: &Charge, earlier: Spent) -> Result<bool, AppError> {
        let core = self.core;
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
                core.count(
                    crate::metrics::Metric::LlmTurns,
                    format!(
                        r#"provider="{}",model="{}",outcome="failed""#,
                        self.a.chain[0].endpoint.kind.as_str(),
                        crate::metrics::escape(&self.a.chain[0].endpoint.model)
                    ),
                );
                core.broadcast_event(&SocketError::AssistantUnavailable { code }.frame(None));
                return Ok(false);
            }
        };
        let (finish, incomplete) = match ending {
            Ending::Finished(f) => (f, false),
            Ending::Called { calls, .. } => {
                self.keep_calls(self.message_id.borrow().as_str(), &calls);
                ("tool_calls".to_string(), false)
            }
            Ending::Stopped => ("stopped".to_string(), true),
            Ending::CutShort(code) => {
                core.broadcast_event(&SocketError::ReplyCutShort { code }.frame(None));
                ("error".to_string(), true)
            }
        };
        // Recorded through the session queue, so its seq and its broadcast
        // stay in order with everyone else's messages.
        let text = core.with_reply(|t| t.text.clone()).unwrap_or_default();
        core.set_reply(None);
        // A reply that only asked for calls says nothing to store.
        if text.is_empty() && (incomplete || finish == "tool_calls") {
            return Ok(false);
        }
        let message_id = self.message_id.borrow().clone();
        let provider = &self.a.chain[index];
        let all = earlier.and(tokens, self.a.cost(provider, tokens));
        let meta = TurnMeta {
            profile: self.a.profile.clone(),
            provider: provider.endpoint.kind.as_str().to_string(),
            model: provider.endpoint.model.clone(),
            tokens_in: all.tokens.input,
            tokens_out: all.tokens.output,
            tokens_cached: all.tokens.cached,
            cost_usd: all.cost,
            ttft_ms: first_token_ms.unwrap_or(0),
            latency_ms: (now_ms() - self.started).max(0) as u64,
            finish_reason: finish,
            incomplete,
        };
        log(
            LogLevel::Info,
            "turn_finished",
            [
                ("session", Value::from(core.session_id().as_str())),
                ("trace_id", core.turn_trace_id()),
                ("provider", Value::from(meta.provider.as_str())),
                ("finish", Value::from(meta.finish_reason.as_str())),
                ("latency_ms", Value::from(meta.latency_ms)),
            ],
        );
        core.enqueue(Job::Send {
            ws: None,
            msg: NewMessage {
                client_id: ClientId::of_reply(&message_id),
                id: message_id,
                author: self.author.clone(),
                text,
                reply_to: None,
                created_at: now_ms(),
                turn: Some(Box::new((meta, c.clone()))),
                poll: None,
                attachments: Vec::new(),
                mentions: Vec::new(),
            },
        });
        core.drain().await;
        Ok(true)
    }
}
