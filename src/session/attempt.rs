//! One request to one provider within a turn (`turn.rs`): send it, relay
//! its stream piece by piece, and say how it ended, so the turn can retry,
//! fall back to the next provider, or store what was said.

use super::Core;
use crate::llm::config::{Assistant, Provider};
use crate::llm::providers::{build, clean_end, decode, failure};
use crate::llm::sse::Parser;
use crate::llm::{Chunk, Kind};
use crate::runtime::timeout;
use crate::store::now_ms;
use futures::StreamExt;
use serde_json::Value;
use worker::{AbortController, ByteStream, Fetch, Headers, Method, Request, RequestInit};

/// Longest SSE line accepted from a provider.
const MAX_SSE_LINE: usize = 1 << 20;

pub(super) enum Attempt {
    Finished {
        input: u64,
        output: u64,
        finish: String,
    },
    /// Failed before any token was relayed: may be retried or handed over.
    Before {
        code: &'static str,
        retryable: bool,
        retry_after_ms: Option<u64>,
    },
    /// Failed after tokens went out.
    After {
        code: &'static str,
        input: u64,
        output: u64,
    },
    Stopped {
        input: u64,
        output: u64,
    },
}

/// The fetch request for an HTTP provider.
fn http_request(req: &crate::llm::providers::Request, trace: Option<String>) -> Option<Request> {
    let headers = Headers::new();
    for (k, v) in &req.headers {
        headers.set(k, v).ok()?;
    }
    // The attempt's span of the turn's trace (W3C Trace Context).
    if let Some(t) = trace {
        headers.set("traceparent", &t).ok()?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(req.body.to_string().into()));
    Request::new_with_init(&req.url, &init).ok()
}

impl Core {
    /// One request to one provider, relaying its stream. (Long, and one
    /// async fn on purpose: with the request's opening split out it cost
    /// 0.35 KiB of the bundle budget.)
    pub(super) async fn attempt(
        &self,
        a: &Assistant,
        p: &Provider,
        prompt: &crate::llm::Prompt,
        started: i64,
        first_token_ms: &mut Option<u64>,
    ) -> Attempt {
        let req = build(&p.endpoint, p.api_key.as_ref().map(|k| k.expose()), prompt);
        let before = |code| Attempt::Before {
            code,
            retryable: true,
            retry_after_ms: None,
        };
        let controller = AbortController::default();
        let signal = controller.signal();
        // A reply stopped before this attempt began is not started at all.
        let stopped = self.with_reply(|t| !t.arm(controller));
        if stopped == Some(true) {
            return Attempt::Stopped {
                input: 0,
                output: 0,
            };
        }
        // The first-token deadline runs from the start of the attempt, through
        // the wait for response headers (some servers send none until then).
        let attempt_start = now_ms();
        let first_token_left = |now: i64| {
            a.first_token_timeout_ms
                .saturating_sub((now - attempt_start).max(0) as u64)
        };
        let header_wait = a.connect_timeout_ms.min(a.first_token_timeout_ms);
        let mut body = if p.endpoint.kind == Kind::WorkersAi {
            match self.run_workers_ai(p, &req.body, header_wait).await {
                Ok(stream) => stream,
                Err(attempt) => return self.interrupted(attempt, 0, 0),
            }
        } else {
            let Some(request) = http_request(&req, self.turn_span()) else {
                return Attempt::Before {
                    code: "provider_misconfigured",
                    retryable: false,
                    retry_after_ms: None,
                };
            };
            let mut response = match timeout(
                header_wait,
                Fetch::Request(request).send_with_signal(&signal),
            )
            .await
            {
                None => return before("provider_timeout"),
                Some(Err(_)) => return self.interrupted(before("provider_unreachable"), 0, 0),
                Some(Ok(r)) => r,
            };
            let status = response.status_code();
            if status != 200 {
                let retry_after = response.headers().get("retry-after").ok().flatten();
                let f = failure(status, retry_after.as_deref());
                return Attempt::Before {
                    code: f.code,
                    retryable: f.retryable,
                    retry_after_ms: f.retry_after_ms,
                };
            }
            match response.stream() {
                Ok(s) => s,
                Err(_) => return before("provider_unreachable"),
            }
        };
        let mut parser = Parser::new(MAX_SSE_LINE);
        let (mut input, mut output) = (0u64, 0u64);
        let (mut finish, mut done, mut relayed) = (None::<String>, false, false);
        loop {
            // The AI binding takes no abort signal, so stops are also seen here.
            if self.reply_stopped() {
                return Attempt::Stopped { input, output };
            }
            let wait = if relayed {
                a.idle_timeout_ms
            } else {
                first_token_left(now_ms())
            };
            let next = match timeout(wait, body.next()).await {
                None => return self.cut(relayed, "provider_timeout", input, output),
                Some(n) => n,
            };
            let bytes = match next {
                None => break,
                Some(Ok(b)) => b,
                Some(Err(_)) => return self.cut(relayed, "provider_stream_broken", input, output),
            };
            let Ok(events) = parser.feed(&bytes) else {
                return self.cut(relayed, "provider_malformed", input, output);
            };
            for ev in events {
                let Ok(chunks) = decode(p.endpoint.kind, &ev) else {
                    return self.cut(relayed, "provider_malformed", input, output);
                };
                for c in chunks {
                    match c {
                        Chunk::Text(t) => {
                            if first_token_ms.is_none() {
                                *first_token_ms = Some((now_ms() - started).max(0) as u64);
                            }
                            relayed = true;
                            self.relay(&t);
                        }
                        Chunk::Usage {
                            input: i,
                            output: o,
                        } => {
                            input = i.unwrap_or(input);
                            output = o.unwrap_or(output);
                        }
                        Chunk::Finish(f) => finish = Some(f),
                        Chunk::Done => done = true,
                        Chunk::Error { .. } => {
                            return self.cut(relayed, "provider_error", input, output)
                        }
                    }
                }
            }
        }
        if !clean_end(p.endpoint.kind, finish.is_some(), done) {
            return self.cut(relayed, "provider_stream_broken", input, output);
        }
        Attempt::Finished {
            input,
            output,
            finish: finish.unwrap_or_else(|| "stop".into()),
        }
    }

    /// A failure mid-stream: before any token it may be retried; after, it
    /// is final. A stop shows up here as an aborted read.
    fn cut(&self, relayed: bool, code: &'static str, input: u64, output: u64) -> Attempt {
        let failed = if relayed {
            Attempt::After {
                code,
                input,
                output,
            }
        } else {
            Attempt::Before {
                code,
                retryable: true,
                retry_after_ms: None,
            }
        };
        self.interrupted(failed, input, output)
    }

    fn interrupted(&self, otherwise: Attempt, input: u64, output: u64) -> Attempt {
        if self.reply_stopped() {
            Attempt::Stopped { input, output }
        } else {
            otherwise
        }
    }

    /// Starts a Workers AI run through the `AI` binding. The binding takes a
    /// plain object (a `serde_json::Value` would cross as a JS `Map`), and
    /// reports failure by rejecting, which counts as retryable.
    async fn run_workers_ai(
        &self,
        p: &Provider,
        body: &Value,
        wait_ms: u64,
    ) -> Result<ByteStream, Attempt> {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Message {
            role: String,
            content: String,
        }
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Inputs {
            stream: bool,
            max_tokens: u32,
            messages: Vec<Message>,
        }
        let misconfigured = Attempt::Before {
            code: "provider_misconfigured",
            retryable: false,
            retry_after_ms: None,
        };
        let Ok(inputs) = serde_json::from_value::<Inputs>(body.clone()) else {
            return Err(misconfigured);
        };
        let Ok(ai) = self.env.ai(crate::bindings::AI) else {
            return Err(misconfigured);
        };
        match timeout(wait_ms, ai.run_bytes(&p.endpoint.model, inputs)).await {
            None => Err(Attempt::Before {
                code: "provider_timeout",
                retryable: true,
                retry_after_ms: None,
            }),
            Some(Err(_)) => Err(Attempt::Before {
                code: "provider_unavailable",
                retryable: true,
                retry_after_ms: None,
            }),
            Some(Ok(stream)) => Ok(stream),
        }
    }
}
