//! The reply policy against scripted providers and a virtual clock: every
//! wait the driver asks for is recorded, and time only moves when it waits.

use super::*;
use crate::config::Secret;
use crate::llm::providers::Endpoint;
use crate::llm::{Kind, Role, Turn};
use futures::executor::block_on;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

/// One thing a scripted response body does, after `after_ms` of silence.
#[derive(Clone)]
enum Piece {
    Bytes(String),
    Broken,
    /// Someone stops the reply; the abort breaks the read.
    Stop,
}

/// What the next request to a provider gets.
enum Answer {
    /// Refused after `ms`.
    Refuse(Refused, u64),
    /// A 200 whose body is these pieces, each after its delay.
    Stream(Vec<(u64, Piece)>),
}

#[derive(Default)]
struct Script {
    now: Cell<i64>,
    stopped: Cell<bool>,
    /// A stop lands while the driver sleeps (between attempts).
    stop_in_sleep: Cell<bool>,
    answers: RefCell<VecDeque<Answer>>,
    /// Which model each request went to, and its header wait.
    opened: RefCell<Vec<(String, u64)>>,
    /// The requests, as built.
    requests: RefCell<Vec<Request>>,
    slept: RefCell<Vec<u64>>,
    /// The read waits the driver asked for.
    waits: RefCell<Vec<u64>>,
    relayed: RefCell<String>,
    failures: RefCell<Vec<(String, u32, &'static str)>>,
}

impl Script {
    fn new(answers: Vec<Answer>) -> Script {
        Script {
            now: Cell::new(1_000),
            answers: RefCell::new(answers.into()),
            ..Default::default()
        }
    }

    fn advance(&self, ms: u64) {
        self.now.set(self.now.get() + ms as i64);
    }
}

impl ReplyIo for Script {
    type Body = VecDeque<(u64, Piece)>;

    fn now_ms(&self) -> i64 {
        self.now.get()
    }

    fn random_unit(&self) -> f64 {
        0.5
    }

    async fn sleep(&self, ms: u64) {
        if self.stop_in_sleep.get() {
            self.stopped.set(true);
        }
        self.slept.borrow_mut().push(ms);
        self.advance(ms);
    }

    async fn open(&self, p: &Provider, r: &Request, wait_ms: u64) -> Result<Self::Body, Refused> {
        self.opened
            .borrow_mut()
            .push((p.endpoint.model.clone(), wait_ms));
        self.requests.borrow_mut().push(r.clone());
        match self.answers.borrow_mut().pop_front().expect("an answer") {
            Answer::Refuse(r, ms) => {
                self.advance(ms.min(wait_ms));
                Err(if ms > wait_ms { Refused::TimedOut } else { r })
            }
            Answer::Stream(pieces) => Ok(pieces.into()),
        }
    }

    async fn read(&self, body: &mut Self::Body, wait_ms: u64) -> Read {
        self.waits.borrow_mut().push(wait_ms);
        let Some((after, _)) = body.front_mut() else {
            return Read::End;
        };
        if *after > wait_ms {
            *after -= wait_ms;
            self.advance(wait_ms);
            return Read::TimedOut;
        }
        self.advance(*after);
        let (_, piece) = body.pop_front().unwrap();
        match piece {
            Piece::Bytes(s) => Read::Bytes(s.into_bytes()),
            Piece::Broken => Read::Broken,
            Piece::Stop => {
                self.stopped.set(true);
                Read::Broken
            }
        }
    }

    fn relay(&self, text: &str) {
        self.relayed.borrow_mut().push_str(text);
    }

    fn stopped(&self) -> bool {
        self.stopped.get()
    }

    fn attempt_failed(&self, p: &Provider, attempt: u32, code: &'static str) {
        self.failures
            .borrow_mut()
            .push((p.endpoint.model.clone(), attempt, code));
    }
}

fn provider(kind: Kind, model: &str) -> Provider {
    Provider {
        endpoint: Endpoint {
            kind,
            base_url: "http://127.0.0.1:9".into(),
            model: model.into(),
            max_output_tokens: 256,
            temperature: None,
        },
        api_key: Some(Secret::new("k".into())),
    }
}

fn assistant(chain: Vec<Provider>) -> Assistant {
    Assistant {
        chain,
        name: "Assistant".into(),
        system_prompt: "Be brief.".into(),
        prompt_token_budget: 4_000,
        connect_timeout_ms: 3_000,
        first_token_timeout_ms: 10_000,
        idle_timeout_ms: 5_000,
        max_retries: 2,
        backoff_base_ms: 200,
        backoff_cap_ms: 2_000,
        daily_token_budget: 0,
        daily_cost_budget: None,
        prices: Default::default(),
        vendors: Vec::new(),
        vision: false,
        profile: crate::llm::DEFAULT_PROFILE.into(),
        profile_budget: Default::default(),
        tools: Vec::new(),
        approval_timeout_ms: 60_000,
        show_tools: false,
        tool_secret: None,
    }
}

fn prompt() -> Prompt {
    Prompt {
        tools: Vec::new(),
        no_calls: false,
        system: "Be brief.".into(),
        turns: vec![Turn {
            role: Role::User,
            text: "hi".into(),
            images: vec![],
            ..Default::default()
        }],
    }
}

/// An OpenAI-compatible stream saying `words`, with usage 7 in, n out.
fn openai(words: &[&str], finish: bool) -> Vec<(u64, Piece)> {
    let mut out: Vec<(u64, Piece)> = words
        .iter()
        .map(|w| {
            let ev = serde_json::json!({"choices":[{"index":0,"delta":{"content":w}}]});
            (10, Piece::Bytes(format!("data: {ev}\n\n")))
        })
        .collect();
    if finish {
        let usage = serde_json::json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":7,"completion_tokens":words.len()}});
        out.push((
            10,
            Piece::Bytes(format!("data: {usage}\n\ndata: [DONE]\n\n")),
        ));
    }
    out
}

fn status(code: u16, retry_after: Option<&str>) -> Answer {
    Answer::Refuse(
        Refused::Status {
            status: code,
            retry_after: retry_after.map(String::from),
        },
        5,
    )
}

fn stopped(out: &Outcome) -> bool {
    matches!(
        out,
        Outcome::Reply {
            ending: Ending::Stopped,
            ..
        }
    )
}

fn run(a: &Assistant, io: &Script) -> Outcome {
    block_on(reply(io, a, &prompt(), 1_000))
}

#[test]
fn a_clean_stream_is_relayed_and_finished() {
    let a = assistant(vec![provider(Kind::Openai, "m1")]);
    let io = Script::new(vec![Answer::Stream(openai(&["Hel", "lo"], true))]);
    let out = run(&a, &io);
    assert_eq!(
        out,
        Outcome::Reply {
            provider: 0,
            ending: Ending::Finished("stop".into()),
            tokens: Tokens {
                input: 7,
                cached: 0,
                output: 2
            },
            first_token_ms: Some(10),
        }
    );
    assert_eq!(*io.relayed.borrow(), "Hello");
    // The header wait is the shorter of the connect and first-token limits.
    assert_eq!(*io.opened.borrow(), vec![("m1".to_string(), 3_000)]);
}

#[test]
fn retryable_failures_back_off_then_fall_back_to_the_next_provider() {
    let a = assistant(vec![
        provider(Kind::Openai, "m1"),
        provider(Kind::Anthropic, "m2"),
    ]);
    let anthropic = concat!(
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );
    let io = Script::new(vec![
        status(503, None),
        // Retry-After (seconds) wins over a shorter backoff.
        status(429, Some("3")),
        Answer::Refuse(Refused::Unreachable, 1),
        Answer::Stream(vec![(20, Piece::Bytes(anthropic.into()))]),
    ]);
    let out = run(&a, &io);
    let Outcome::Reply {
        provider, ending, ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!((provider, ending), (1, Ending::Finished("end_turn".into())));
    // Three attempts at the first provider (1 + max_retries), two waits
    // between them: full jitter at 0.5 of 200·2⁰, then Retry-After's 3 s.
    assert_eq!(*io.slept.borrow(), vec![100, 3_000]);
    assert_eq!(
        *io.failures.borrow(),
        vec![
            ("m1".into(), 0, "provider_unavailable"),
            ("m1".into(), 1, "provider_rate_limited"),
            ("m1".into(), 2, "provider_unreachable"),
        ]
    );
    let models: Vec<_> = io.opened.borrow().iter().map(|o| o.0.clone()).collect();
    assert_eq!(models, ["m1", "m1", "m1", "m2"]);
}

#[test]
fn a_refusal_retrying_cannot_fix_hands_over_at_once() {
    let a = assistant(vec![
        provider(Kind::Openai, "m1"),
        provider(Kind::Gemini, "m2"),
    ]);
    let io = Script::new(vec![
        status(401, None),
        Answer::Refuse(Refused::Misconfigured, 0),
    ]);
    assert_eq!(
        run(&a, &io),
        Outcome::Failed {
            code: "provider_misconfigured"
        }
    );
    assert!(io.slept.borrow().is_empty());
    assert_eq!(io.failures.borrow()[0].2, "provider_auth");
}

#[test]
fn every_provider_failing_reports_the_last_code() {
    let a = assistant(vec![provider(Kind::Openai, "m1")]);
    let io = Script::new(vec![
        status(500, None),
        status(502, None),
        status(429, None),
    ]);
    assert_eq!(
        run(&a, &io),
        Outcome::Failed {
            code: "provider_rate_limited"
        }
    );
    // Backoff doubles, jittered at 0.5: 100, 200.
    assert_eq!(*io.slept.borrow(), vec![100, 200]);
}

#[test]
fn the_first_token_deadline_counts_the_header_wait() {
    let mut a = assistant(vec![provider(Kind::Openai, "m1")]);
    a.max_retries = 1;
    // Headers after 2 s, then silence: the first read may wait only the
    // 8 s left of the 10 s first-token limit, and the attempt is retried.
    let slow = vec![
        (2_000, Piece::Bytes(": keep-alive\n\n".into())),
        (60_000, Piece::Broken),
    ];
    let io = Script::new(vec![
        Answer::Stream(slow),
        Answer::Stream(openai(&["late"], true)),
    ]);
    let out = run(&a, &io);
    assert!(
        matches!(
            out,
            Outcome::Reply {
                ending: Ending::Finished(_),
                ..
            }
        ),
        "{out:?}"
    );
    let waits = io.waits.borrow();
    assert_eq!(&waits[..2], &[10_000, 8_000]);
    assert_eq!(io.failures.borrow()[0].2, "provider_timeout");
    // The time to first token counts from the turn's start, across attempts.
    let Outcome::Reply { first_token_ms, .. } = out else {
        unreachable!()
    };
    assert_eq!(first_token_ms, Some(10_000 + 100 + 10));
}

#[test]
fn headers_that_never_come_time_out_and_are_retried() {
    let mut a = assistant(vec![provider(Kind::Openai, "m1")]);
    a.max_retries = 1;
    let io = Script::new(vec![
        Answer::Refuse(Refused::Unreachable, 60_000),
        Answer::Stream(openai(&["x"], true)),
    ]);
    let out = run(&a, &io);
    assert!(matches!(out, Outcome::Reply { provider: 0, .. }), "{out:?}");
    assert_eq!(io.failures.borrow()[0].2, "provider_timeout");
}

#[test]
fn after_tokens_a_stall_cuts_the_reply_short_without_a_retry() {
    let a = assistant(vec![
        provider(Kind::Openai, "m1"),
        provider(Kind::Openai, "m2"),
    ]);
    let mut pieces = openai(&["partial "], false);
    pieces.push((6_000, Piece::Broken));
    let io = Script::new(vec![Answer::Stream(pieces)]);
    let out = run(&a, &io);
    assert_eq!(
        out,
        Outcome::Reply {
            provider: 0,
            ending: Ending::CutShort("provider_timeout"),
            tokens: Tokens::default(),
            first_token_ms: Some(10),
        }
    );
    assert_eq!(*io.relayed.borrow(), "partial ");
    // After the first token, each read waits the idle limit.
    assert_eq!(io.waits.borrow()[1], 5_000);
    assert_eq!(io.opened.borrow().len(), 1);
}

#[test]
fn broken_malformed_or_unfinished_streams_before_a_token_are_retried() {
    let a = assistant(vec![provider(Kind::Openai, "m1")]);
    let io = Script::new(vec![
        Answer::Stream(vec![(5, Piece::Broken)]),
        Answer::Stream(vec![(5, Piece::Bytes("data: {not json\n\n".into()))]),
        // Ends without [DONE].
        Answer::Stream(vec![(5, Piece::Bytes(": nothing\n\n".into()))]),
    ]);
    assert_eq!(
        run(&a, &io),
        Outcome::Failed {
            code: "provider_stream_broken"
        }
    );
    let codes: Vec<_> = io.failures.borrow().iter().map(|f| f.2).collect();
    assert_eq!(
        codes,
        [
            "provider_stream_broken",
            "provider_malformed",
            "provider_stream_broken"
        ]
    );
}

#[test]
fn an_error_inside_the_stream_after_tokens_cuts_short() {
    let a = assistant(vec![provider(Kind::Anthropic, "m1")]);
    let body = concat!(
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"so\"}}\n\n",
        "event: error\n",
        "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    );
    let io = Script::new(vec![Answer::Stream(vec![(5, Piece::Bytes(body.into()))])]);
    let out = run(&a, &io);
    assert!(
        matches!(
            out,
            Outcome::Reply {
                ending: Ending::CutShort("provider_error"),
                ..
            }
        ),
        "{out:?}"
    );
}

#[test]
fn a_stop_mid_stream_keeps_what_was_said_and_tries_nothing_else() {
    let a = assistant(vec![
        provider(Kind::Openai, "m1"),
        provider(Kind::Openai, "m2"),
    ]);
    let mut pieces = openai(&["one ", "two "], false);
    pieces.push((50, Piece::Stop));
    let io = Script::new(vec![Answer::Stream(pieces)]);
    let out = run(&a, &io);
    assert!(
        matches!(
            out,
            Outcome::Reply {
                ending: Ending::Stopped,
                provider: 0,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(*io.relayed.borrow(), "one two ");
    assert_eq!(io.opened.borrow().len(), 1);
}

#[test]
fn a_stop_during_a_failed_attempt_ends_the_reply_with_nothing() {
    let a = assistant(vec![
        provider(Kind::Openai, "m1"),
        provider(Kind::Openai, "m2"),
    ]);
    // Stopped before the first token: the aborted read is not a failure to
    // retry, and no other provider is asked.
    let io = Script::new(vec![Answer::Stream(vec![(50, Piece::Stop)])]);
    let out = run(&a, &io);
    assert!(stopped(&out), "{out:?}");
    assert!(io.relayed.borrow().is_empty());
    assert!(io.failures.borrow().is_empty());
    assert_eq!(io.opened.borrow().len(), 1);
}

#[test]
fn a_stop_during_backoff_starts_no_further_attempt() {
    let a = assistant(vec![provider(Kind::Openai, "m1")]);
    let io = Script::new(vec![status(503, None)]);
    // The stop lands while the driver sleeps.
    io.stop_in_sleep.set(true);
    let out = run(&a, &io);
    assert!(stopped(&out), "{out:?}");
    assert_eq!(io.opened.borrow().len(), 1);
}

#[test]
fn gemini_ends_at_its_finish_reason_without_a_done_marker() {
    let a = assistant(vec![provider(Kind::Gemini, "g")]);
    let ev = serde_json::json!({"candidates":[{"content":{"parts":[{"text":"hi"}],"role":"model"},
        "finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}});
    let io = Script::new(vec![Answer::Stream(vec![(
        5,
        Piece::Bytes(format!("data: {ev}\n\n")),
    )])]);
    assert_eq!(
        run(&a, &io),
        Outcome::Reply {
            provider: 0,
            ending: Ending::Finished("STOP".into()),
            tokens: Tokens {
                input: 3,
                cached: 0,
                output: 1
            },
            first_token_ms: Some(5),
        }
    );
}

mod tools;
mod turn;
