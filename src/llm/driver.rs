//! The policy of one assistant reply, pure: which provider is asked and how
//! often, how long each wait may last, when a failure is retried or handed
//! to the next provider, and how the reply ends. The session object supplies
//! the I/O (`ReplyIo`: fetch, clock, the sockets) and stores what comes back;
//! natively, tests drive it with scripted providers and a virtual clock
//! (`driver/tests.rs`).
//!
//! **Policy.** Before the first token is relayed, a 429, 5xx, network error
//! or timeout is retried with exponential backoff and jitter (honouring
//! Retry-After), up to `max_retries` times; a refusal that another try
//! cannot fix (401, 400, misconfiguration) goes straight to the next
//! provider. After tokens have gone out nothing is retried silently: the
//! reply ends cut short, with what was said. A stop ends it as stopped.
//!
//! **A turn** (`turn`) wraps replies in the budget and the tool loop. Each
//! reply reserves the most it can spend of the user's (and the profile's)
//! day before any provider is asked (none is asked when that is refused),
//! and gives the reservation back when it stores nothing; a stored reply
//! settles it (replication does, with what was actually spent, including
//! what the turn's earlier unstored replies spent: `Spent`). A reply that
//! only asked for calls stores nothing but keeps its reservation until a
//! later reply's record counts it, and for the day if none does
//! (`Unstored`): no round of a tool loop is free. A reply
//! that asks for function calls gets their results (`round.rs`: unknown
//! functions refused, calls that need a person's approval waited for, the
//! rest run), and the model is asked again with them, for at most
//! `MAX_TOOL_ROUNDS` rounds; the last reply may call none (`no_calls`), so
//! it answers in words.
//!
//! **Deadlines.** The first token must come within `first_token_timeout_ms`
//! of the attempt's start, counting the wait for response headers (which is
//! also bounded by `connect_timeout_ms`); after it, each read waits at most
//! `idle_timeout_ms`.

use super::budget::{reservation, Charge, Reservation};
use super::config::{Assistant, Provider};
use super::price::{Tokens, Usd};
use super::providers::{backoff_ms, build, clean_end, decode, failure, Request};
use super::sse::Parser;
use super::tools::{Calls, ToolCall, ToolResult};
use super::{Chunk, Prompt, Role, Turn};
use crate::error::AppError;

mod round;
pub use round::{Decision, MAX_TOOL_ROUNDS, NO_SUCH_TOOL};

/// Longest SSE line accepted from a provider.
pub const MAX_SSE_LINE: usize = 1 << 20;

/// Why a request produced no stream to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No response (headers) within the wait.
    TimedOut,
    /// A network error, or the request was aborted.
    Unreachable,
    /// The request cannot be made as configured (a header fetch refuses,
    /// no `AI` binding, inputs the binding cannot take).
    Misconfigured,
    /// The `AI` binding rejected the run.
    Unavailable,
    /// An HTTP status other than 200, with the provider's Retry-After.
    Status {
        status: u16,
        retry_after: Option<String>,
    },
}

/// One read of a response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Bytes(Vec<u8>),
    /// The body ended.
    End,
    /// The body failed (or was aborted by a stop).
    Broken,
    /// Nothing arrived within the wait.
    TimedOut,
}

/// What one reply needs from the world. The session object implements it
/// with fetch, the `AI` binding, `Delay` and its sockets; tests script it.
#[allow(async_fn_in_trait)] // single-threaded on both sides: no Send bound wanted
pub trait ReplyIo {
    type Body;
    fn now_ms(&self) -> i64;
    /// A uniform draw in [0, 1), for backoff jitter.
    fn random_unit(&self) -> f64;
    async fn sleep(&self, ms: u64);
    /// Sends `request` to `provider`, waiting at most `wait_ms` for the
    /// response to begin.
    async fn open(
        &self,
        provider: &Provider,
        request: &Request,
        wait_ms: u64,
    ) -> Result<Self::Body, Refused>;
    async fn read(&self, body: &mut Self::Body, wait_ms: u64) -> Read;
    /// Sends a piece of the reply to everyone.
    fn relay(&self, text: &str);
    /// Whether the reply was stopped (a `stop` frame, a takeover).
    fn stopped(&self) -> bool;
    /// An attempt failed before its first token (for the log).
    fn attempt_failed(&self, provider: &Provider, attempt: u32, code: &'static str);
}

/// How a reply that was attempted ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The provider finished, in its own words (`stop`, `length`, …).
    Finished(String),
    /// Stopped by a person; what was said stays.
    Stopped,
    /// Failed after tokens went out (the code is for clients).
    CutShort(&'static str),
    /// The provider finished asking for function calls, after saying
    /// `text` (often nothing).
    Called { text: String, calls: Vec<ToolCall> },
}

/// What the reply came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A provider answered (possibly with nothing, if stopped at once):
    /// its index in the chain, how it ended and what it reported.
    Reply {
        provider: usize,
        ending: Ending,
        tokens: Tokens,
        /// From the turn's start to the first relayed token.
        first_token_ms: Option<u64>,
    },
    /// Every provider failed before saying anything; the last one's code.
    Failed { code: &'static str },
}

/// What a turn's earlier replies spent without storing a message (they
/// only asked for calls, or were stopped before saying anything): added to
/// the next stored reply's record, so that budgets, the ledger and the
/// session's usage count every round of a tool loop. (Their reservations
/// are given back; the stored reply's settlement charges it all.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    pub tokens: Tokens,
    /// None while no part of it was priced.
    pub cost: Option<Usd>,
}

impl Spent {
    /// This and `tokens` costing `cost`, together.
    pub fn and(self, tokens: Tokens, cost: Option<Usd>) -> Spent {
        Spent {
            tokens: Tokens {
                input: self.tokens.input + tokens.input,
                cached: self.tokens.cached + tokens.cached,
                output: self.tokens.output + tokens.output,
            },
            cost: match (self.cost, cost) {
                (None, None) => None,
                (a, b) => Some(Usd(a.unwrap_or_default().0 + b.unwrap_or_default().0)),
            },
        }
    }
}

/// What a turn needs beyond a reply's I/O: the budget's store, and the
/// record of the reply (its message, its progress, what everyone is told).
#[allow(async_fn_in_trait)]
pub trait TurnIo: ReplyIo {
    /// Reserves `r` of the user's day; None when a budget is spent.
    async fn reserve(&self, r: &Reservation) -> Result<Option<Charge>, AppError>;
    /// Announces the reply about to stream, charged to `c`.
    async fn begin(&self, c: &Charge) -> Result<(), AppError>;
    /// Stores the reply `outcome` describes, with what the turn's earlier
    /// unstored replies spent; whether a message was stored (a reply that
    /// only asked for calls, or stopped or failed before any text, stores
    /// none).
    async fn record(&self, outcome: Outcome, c: &Charge, earlier: Spent) -> Result<bool, AppError>;
    /// Gives back a reservation whose reply stored nothing.
    async fn release(&self, c: &Charge);
    /// Asks a person to approve `calls`, waiting at most `wait_ms`: one
    /// decision per call, in order (a stop ends the wait: rejected).
    async fn approvals(&self, calls: &[ToolCall], wait_ms: u64) -> Vec<Decision>;
    /// Makes `calls` (at once): one result per call, in order.
    async fn run_tools(&self, calls: &[ToolCall]) -> Vec<ToolResult>;
    /// Stores what a round's calls came to.
    async fn record_results(&self, results: &[ToolResult]) -> Result<(), AppError>;
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEnd {
    /// A budget is spent: no provider was asked (for the turn's first
    /// reply, or for the next round of a tool loop).
    QuotaExceeded,
    /// The reply ran; `stored` says whether a message was kept.
    Ran { stored: bool },
}

/// One assistant turn for `user`: reserve, reply, record, and give a
/// reservation back when its reply stored nothing (or anything failed),
/// except one that only asked for calls (`Unstored`).
pub async fn turn<I: TurnIo>(
    io: &I,
    a: &Assistant,
    prompt: &Prompt,
    user: &str,
    started: i64,
) -> Result<TurnEnd, AppError> {
    let mut prompt = prompt.clone();
    prompt.tools = a.tools.iter().map(|t| t.spec.clone()).collect();
    let mut stored = false;
    let mut unstored = Unstored::default();
    for round in 0..=MAX_TOOL_ROUNDS {
        let last = round == MAX_TOOL_ROUNDS;
        prompt.no_calls = last;
        let now = if round == 0 { started } else { io.now_ms() };
        let charge = match reservation(a, &prompt, user, now) {
            None => Charge::unreserved(user, &a.profile, now),
            Some(r) => match io.reserve(&r).await? {
                Some(c) => c,
                None => return Ok(TurnEnd::QuotaExceeded),
            },
        };
        let (kept, called) = one_reply(io, a, &prompt, &charge, started, &mut unstored).await?;
        stored |= kept;
        // Past the last round, calls asked for anyway are not made.
        let Some((text, calls)) = called.filter(|_| !last) else {
            break;
        };
        let results = round::run(io, a, &calls).await;
        // A stop while calls were made (or waited for) ends the turn; what
        // they came to is kept.
        if io.stopped() {
            io.record_results(&results).await?;
            break;
        }
        io.record_results(&results).await?;
        prompt.turns.push(Turn {
            role: Role::Assistant,
            text,
            calls,
            ..Default::default()
        });
        prompt.turns.extend(results.into_iter().map(|r| Turn {
            role: Role::Tool,
            result: Some(r),
            ..Default::default()
        }));
    }
    Ok(TurnEnd::Ran { stored })
}

/// What a turn's replies that stored no message spent, and the
/// reservations of those that only asked for calls: held until a later
/// reply's record counts what they spent (then given back), and kept for
/// the day if none does (a stop, a failure), so that no round is free.
#[derive(Default)]
struct Unstored {
    spent: Spent,
    held: Vec<Charge>,
}

/// One reply of a turn, charged to `charge`: announced, run, and recorded
/// with what `unstored` spent. Stored, it lets go of what `unstored` held;
/// not stored, what it spent joins `unstored`, and its reservation is held
/// there if it asked for calls, or given back. Gives whether it was
/// stored, and the calls it asked for.
async fn one_reply<I: TurnIo>(
    io: &I,
    a: &Assistant,
    prompt: &Prompt,
    charge: &Charge,
    started: i64,
    unstored: &mut Unstored,
) -> Result<(bool, Option<(String, Vec<ToolCall>)>), AppError> {
    let mut called = None;
    let mut spent = None;
    let stored = match io.begin(charge).await {
        Ok(()) => {
            let outcome = reply(io, a, prompt, started).await;
            if let Outcome::Reply {
                ending,
                tokens,
                provider,
                ..
            } = &outcome
            {
                spent = Some((*tokens, a.cost(&a.chain[*provider], *tokens)));
                if let Ending::Called { text, calls } = ending {
                    called = Some((text.clone(), calls.clone()));
                }
            }
            io.record(outcome, charge, unstored.spent).await
        }
        Err(e) => Err(e),
    };
    match stored {
        Ok(true) => {
            for held in std::mem::take(&mut *unstored).held {
                io.release(&held).await;
            }
        }
        _ => {
            if let Some((tokens, cost)) = spent {
                unstored.spent = unstored.spent.and(tokens, cost);
            }
            if charge.holds() {
                if matches!(stored, Ok(false)) && called.is_some() {
                    unstored.held.push(charge.clone());
                } else {
                    io.release(charge).await;
                }
            }
        }
    }
    Ok((stored?, called))
}

/// How one attempt ended.
enum Attempt {
    Ended {
        ending: Ending,
        tokens: Tokens,
    },
    /// Failed before any token was relayed: may be retried or handed over.
    Before {
        code: &'static str,
        retryable: bool,
        retry_after_ms: Option<u64>,
    },
}

impl Attempt {
    fn before(code: &'static str) -> Attempt {
        Attempt::Before {
            code,
            retryable: true,
            retry_after_ms: None,
        }
    }
}

/// Runs one reply through the provider chain. `started` is when the turn
/// began (its time to first token counts from there).
pub async fn reply<I: ReplyIo>(io: &I, a: &Assistant, prompt: &Prompt, started: i64) -> Outcome {
    let mut last_code = "provider_unavailable";
    let mut first_token_ms = None;
    for (index, provider) in a.chain.iter().enumerate() {
        for attempt in 0..=a.max_retries {
            let (code, retryable, retry_after_ms) =
                match one(io, a, provider, prompt, started, &mut first_token_ms).await {
                    Attempt::Ended { ending, tokens } => {
                        return Outcome::Reply {
                            provider: index,
                            ending,
                            tokens,
                            first_token_ms,
                        }
                    }
                    Attempt::Before {
                        code,
                        retryable,
                        retry_after_ms,
                    } => (code, retryable, retry_after_ms),
                };
            last_code = code;
            io.attempt_failed(provider, attempt, code);
            if retryable && attempt < a.max_retries {
                let wait = backoff_ms(
                    attempt,
                    a.backoff_base_ms,
                    a.backoff_cap_ms,
                    retry_after_ms,
                    io.random_unit(),
                );
                io.sleep(wait).await;
                continue;
            }
            break;
        }
    }
    Outcome::Failed { code: last_code }
}

/// One request to one provider, relaying its stream.
async fn one<I: ReplyIo>(
    io: &I,
    a: &Assistant,
    p: &Provider,
    prompt: &Prompt,
    started: i64,
    first_token_ms: &mut Option<u64>,
) -> Attempt {
    let stopped = |tokens| Attempt::Ended {
        ending: Ending::Stopped,
        tokens,
    };
    // A reply stopped before (or between) attempts is not started again.
    if io.stopped() {
        return stopped(Tokens::default());
    }
    let request = build(&p.endpoint, p.api_key.as_ref().map(|k| k.expose()), prompt);
    let attempt_start = io.now_ms();
    let header_wait = a.connect_timeout_ms.min(a.first_token_timeout_ms);
    let mut body = match io.open(p, &request, header_wait).await {
        Ok(body) => body,
        // An aborted request shows up as a refusal.
        Err(_) if io.stopped() => return stopped(Tokens::default()),
        Err(refused) => return refusal(refused),
    };
    let mut parser = Parser::new(MAX_SSE_LINE);
    let mut tokens = Tokens::default();
    // What was said and asked for, for a reply that calls functions.
    let (mut said, mut calls) = (String::new(), Calls::default());
    let (mut finish, mut done, mut relayed) = (None::<String>, false, false);
    loop {
        // The AI binding takes no abort signal, so stops are also seen here.
        if io.stopped() {
            return stopped(tokens);
        }
        let wait = if relayed {
            a.idle_timeout_ms
        } else {
            let spent = (io.now_ms() - attempt_start).max(0) as u64;
            a.first_token_timeout_ms.saturating_sub(spent)
        };
        let bytes = match io.read(&mut body, wait).await {
            Read::Bytes(b) => b,
            Read::End => break,
            Read::Broken => return cut(io, relayed, "provider_stream_broken", tokens),
            Read::TimedOut => return cut(io, relayed, "provider_timeout", tokens),
        };
        let Ok(events) = parser.feed(&bytes) else {
            return cut(io, relayed, "provider_malformed", tokens);
        };
        for ev in events {
            let Ok(chunks) = decode(p.endpoint.kind, &ev) else {
                return cut(io, relayed, "provider_malformed", tokens);
            };
            for c in chunks {
                match c {
                    Chunk::Text(t) => {
                        if first_token_ms.is_none() {
                            *first_token_ms = Some((io.now_ms() - started).max(0) as u64);
                        }
                        relayed = true;
                        io.relay(&t);
                        said.push_str(&t);
                    }
                    Chunk::Usage {
                        input,
                        cached,
                        output,
                    } => {
                        tokens.input = input.unwrap_or(tokens.input);
                        tokens.cached = cached.unwrap_or(tokens.cached);
                        tokens.output = output.unwrap_or(tokens.output);
                    }
                    Chunk::ToolCall {
                        index,
                        id,
                        name,
                        arguments,
                    } => {
                        if calls.feed(index, id, name, &arguments).is_err() {
                            return cut(io, relayed, "provider_malformed", tokens);
                        }
                    }
                    Chunk::Finish(f) => finish = Some(f),
                    Chunk::Done => done = true,
                    Chunk::Error { .. } => return cut(io, relayed, "provider_error", tokens),
                }
            }
        }
    }
    if !clean_end(p.endpoint.kind, finish.is_some(), done) {
        return cut(io, relayed, "provider_stream_broken", tokens);
    }
    let Ok(calls) = calls.finish() else {
        return cut(io, relayed, "provider_malformed", tokens);
    };
    let ending = match calls.is_empty() {
        true => Ending::Finished(finish.unwrap_or_else(|| "stop".into())),
        false => Ending::Called { text: said, calls },
    };
    Attempt::Ended { ending, tokens }
}

/// A failure mid-stream: before any token it may be retried; after, it
/// is final. A stop shows up here as an aborted read.
fn cut<I: ReplyIo>(io: &I, relayed: bool, code: &'static str, tokens: Tokens) -> Attempt {
    if io.stopped() {
        Attempt::Ended {
            ending: Ending::Stopped,
            tokens,
        }
    } else if relayed {
        Attempt::Ended {
            ending: Ending::CutShort(code),
            tokens,
        }
    } else {
        Attempt::before(code)
    }
}

/// A request that produced no stream, as the chain treats it.
fn refusal(refused: Refused) -> Attempt {
    match refused {
        Refused::TimedOut => Attempt::before("provider_timeout"),
        Refused::Unreachable => Attempt::before("provider_unreachable"),
        Refused::Unavailable => Attempt::before("provider_unavailable"),
        Refused::Misconfigured => Attempt::Before {
            code: "provider_misconfigured",
            retryable: false,
            retry_after_ms: None,
        },
        Refused::Status {
            status,
            retry_after,
        } => {
            let f = failure(status, retry_after.as_deref());
            Attempt::Before {
                code: f.code,
                retryable: f.retryable,
                retry_after_ms: f.retry_after_ms,
            }
        }
    }
}

#[cfg(test)]
mod tests;
