//! The tool loop: a reply that asks for calls gets their results and the
//! model is asked again with them; unknown functions are refused, calls
//! that need approval wait for a person (granted, rejected, or timed out
//! on the virtual clock), and the rounds are bounded.

use super::*;
use crate::llm::tools::{Tool, ToolSpec};
use serde_json::{json, Value};

/// A turn's I/O with functions: scripted decisions and results.
struct Tooled {
    io: Script,
    /// Decisions handed out in order; a call past them times out.
    decisions: RefCell<VecDeque<Decision>>,
    /// The calls put to a person, and the wait each time.
    asked: RefCell<Vec<(Vec<String>, u64)>>,
    /// The calls made, by name, each round.
    made: RefCell<Vec<Vec<String>>>,
    recorded: RefCell<Vec<Outcome>>,
    /// What each stored reply's record counted of earlier, unstored ones.
    earlier: RefCell<Vec<Spent>>,
    results: RefCell<Vec<ToolResult>>,
    /// Someone stops the turn while a call waits for approval.
    stop_when_asked: Cell<bool>,
    /// Each round's reservation (with a budget), and those given back.
    reserved: RefCell<Vec<Charge>>,
    released: RefCell<Vec<Charge>>,
}

impl Tooled {
    fn new(answers: Vec<Answer>, decisions: Vec<Decision>) -> Tooled {
        Tooled {
            io: Script::new(answers),
            decisions: RefCell::new(decisions.into()),
            asked: Default::default(),
            made: Default::default(),
            recorded: Default::default(),
            earlier: Default::default(),
            results: Default::default(),
            stop_when_asked: Cell::new(false),
            reserved: Default::default(),
            released: Default::default(),
        }
    }

    /// The bodies of the requests made, in order.
    fn bodies(&self) -> Vec<Value> {
        self.io
            .requests
            .borrow()
            .iter()
            .map(|r| r.body.clone())
            .collect()
    }
}

impl ReplyIo for Tooled {
    type Body = <Script as ReplyIo>::Body;
    fn now_ms(&self) -> i64 {
        self.io.now_ms()
    }
    fn random_unit(&self) -> f64 {
        0.5
    }
    async fn sleep(&self, ms: u64) {
        self.io.sleep(ms).await
    }
    async fn open(&self, p: &Provider, r: &Request, w: u64) -> Result<Self::Body, Refused> {
        self.io.open(p, r, w).await
    }
    async fn read(&self, b: &mut Self::Body, w: u64) -> Read {
        self.io.read(b, w).await
    }
    fn relay(&self, t: &str) {
        self.io.relay(t)
    }
    fn stopped(&self) -> bool {
        self.io.stopped()
    }
    fn attempt_failed(&self, p: &Provider, n: u32, c: &'static str) {
        self.io.attempt_failed(p, n, c)
    }
}

impl TurnIo for Tooled {
    /// Granted, told apart by the round (`reserved` counts them).
    async fn reserve(&self, r: &Reservation) -> Result<Option<Charge>, AppError> {
        let mut all = self.reserved.borrow_mut();
        let c = Charge {
            user: r.user.clone(),
            day: format!("round {}", all.len()),
            reserved: r.tokens,
            reserved_nanos: 0,
            profile: r.profile.clone(),
            profile_held: false,
        };
        all.push(c.clone());
        Ok(Some(c))
    }
    async fn begin(&self, _: &Charge) -> Result<(), AppError> {
        Ok(())
    }
    /// As the session object does: a reply that only asked for calls
    /// stores nothing.
    async fn record(&self, outcome: Outcome, _: &Charge, earlier: Spent) -> Result<bool, AppError> {
        let stored = !matches!(&outcome,
            Outcome::Reply { ending: Ending::Called { text, .. }, .. } if text.is_empty());
        if stored {
            self.earlier.borrow_mut().push(earlier);
        }
        self.recorded.borrow_mut().push(outcome);
        Ok(stored)
    }
    async fn release(&self, c: &Charge) {
        self.released.borrow_mut().push(c.clone());
    }
    async fn approvals(&self, calls: &[ToolCall], wait_ms: u64) -> Vec<Decision> {
        let names = calls.iter().map(|c| c.name.clone()).collect();
        self.asked.borrow_mut().push((names, wait_ms));
        if self.stop_when_asked.get() {
            // A stop rejects what waits, and halts the turn.
            self.io.stopped.set(true);
            return vec![Decision::Rejected; calls.len()];
        }
        let mut out = Vec::new();
        for _ in calls {
            match self.decisions.borrow_mut().pop_front() {
                Some(d) => out.push(d),
                // Nobody answers: the whole wait passes.
                None => {
                    self.io.advance(wait_ms);
                    out.push(Decision::TimedOut);
                }
            }
        }
        out
    }
    async fn run_tools(&self, calls: &[ToolCall]) -> Vec<ToolResult> {
        self.made
            .borrow_mut()
            .push(calls.iter().map(|c| c.name.clone()).collect());
        calls
            .iter()
            .map(|c| ToolResult {
                call_id: c.id.clone(),
                name: c.name.clone(),
                content: format!("{} of {}", c.name, c.arguments),
                is_error: c.name == "flaky",
            })
            .collect()
    }
    async fn record_results(&self, results: &[ToolResult]) -> Result<(), AppError> {
        self.results.borrow_mut().extend_from_slice(results);
        Ok(())
    }
}

fn tool(name: &str, needs_approval: bool) -> Tool {
    Tool {
        spec: ToolSpec {
            name: name.into(),
            description: format!("does {name}"),
            parameters: json!({"type": "object"}),
        },
        needs_approval,
        kind: crate::llm::tools::ToolKind::Builtin(crate::llm::tools::Builtin::EndConversation),
    }
}

fn tooled_assistant() -> Assistant {
    let mut a = assistant(vec![provider(Kind::Openai, "m1")]);
    a.tools = vec![
        tool("lookup", false),
        tool("flaky", false),
        tool("refund", true),
    ];
    a.approval_timeout_ms = 30_000;
    a
}

/// An OpenAI stream asking for `calls` (id, name, arguments) in parallel,
/// each call's arguments in two fragments.
fn calling(calls: &[(&str, &str, Value)]) -> Answer {
    let mut out = Vec::new();
    for (i, (id, name, args)) in calls.iter().enumerate() {
        let text = args.to_string();
        let (a, b) = text.split_at(text.len() / 2);
        let head = json!({"choices":[{"index":0,"delta":{"tool_calls":[
            {"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": a}}]}}]});
        let tail = json!({"choices":[{"index":0,"delta":{"tool_calls":[
            {"index": i, "function": {"arguments": b}}]}}]});
        out.push((10, Piece::Bytes(format!("data: {head}\n\n"))));
        out.push((10, Piece::Bytes(format!("data: {tail}\n\n"))));
    }
    let end = json!({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],
        "usage":{"prompt_tokens":9,"completion_tokens":3}});
    out.push((10, Piece::Bytes(format!("data: {end}\n\ndata: [DONE]\n\n"))));
    Answer::Stream(out)
}

/// The `tool` messages of a request body: (call id, content).
fn results_sent(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn parallel_calls_are_made_and_the_model_answers_with_their_results() {
    let a = tooled_assistant();
    let io = Tooled::new(
        vec![
            calling(&[
                ("c1", "lookup", json!({"order": "A-1"})),
                ("c2", "flaky", json!({})),
                ("c3", "invented", json!({})),
            ]),
            Answer::Stream(openai(&["Your order ships today."], true)),
        ],
        vec![],
    );
    let end = block_on(turn(&io, &a, &prompt(), "ann", 1_000));
    assert_eq!(end, Ok(TurnEnd::Ran { stored: true }));
    // Both known calls made at once; the invented one refused unmade.
    assert_eq!(*io.made.borrow(), [vec!["lookup", "flaky"]]);
    assert!(io.asked.borrow().is_empty());
    // The answer's record counts the round that only asked for calls.
    assert_eq!(
        *io.earlier.borrow(),
        [Spent {
            tokens: Tokens {
                input: 9,
                cached: 0,
                output: 3
            },
            cost: None
        }]
    );
    let recorded = io.recorded.borrow();
    let Outcome::Reply {
        ending: Ending::Called { calls, text },
        ..
    } = &recorded[0]
    else {
        panic!("{:?}", recorded[0])
    };
    assert_eq!(text, "");
    assert_eq!(calls[0].arguments, json!({"order": "A-1"}));
    assert!(matches!(
        &recorded[1],
        Outcome::Reply { ending: Ending::Finished(f), .. } if f == "stop"
    ));
    // The first request offered the functions; the second carried the
    // calls and every result, in the calls' order.
    let bodies = io.bodies();
    assert_eq!(bodies[0]["tools"].as_array().unwrap().len(), 3);
    let sent = results_sent(&bodies[1]);
    assert_eq!(
        sent,
        [
            ("c1".to_string(), r#"lookup of {"order":"A-1"}"#.to_string()),
            ("c2".to_string(), "flaky of {}".to_string()),
            ("c3".to_string(), round::NO_SUCH_TOOL.to_string()),
        ]
    );
    let results = io.results.borrow();
    assert_eq!(
        results.iter().map(|r| r.is_error).collect::<Vec<_>>(),
        [false, true, true],
        "a failing function's result is an error, as an unknown one's"
    );
}

#[test]
fn calls_that_need_approval_wait_for_a_decision() {
    for (decision, made, told) in [
        (Some(Decision::Approved), true, None),
        (Some(Decision::Rejected), false, Some(round::REJECTED)),
        (None, false, Some(round::TIMED_OUT)),
    ] {
        let a = tooled_assistant();
        let io = Tooled::new(
            vec![
                calling(&[
                    ("c1", "refund", json!({"amount": 5})),
                    ("c2", "lookup", json!({})),
                ]),
                Answer::Stream(openai(&["Done."], true)),
            ],
            decision.into_iter().collect(),
        );
        let before = io.io.now.get();
        block_on(turn(&io, &a, &prompt(), "ann", 1_000)).unwrap();
        // Only the call that needs it is put to a person, with the wait.
        assert_eq!(*io.asked.borrow(), [(vec!["refund".to_string()], 30_000)]);
        let made_now: Vec<Vec<String>> = io.made.borrow().clone();
        // Made in the reply's order, the approved with the rest.
        let want = if made {
            vec!["refund", "lookup"]
        } else {
            vec!["lookup"]
        };
        assert_eq!(made_now, [want], "{decision:?}");
        let sent = results_sent(&io.bodies()[1]);
        assert_eq!(sent[1].0, "c2");
        match told {
            None => assert_eq!(sent[0].1, r#"refund of {"amount":5}"#),
            Some(t) => assert_eq!(sent[0].1, t),
        }
        // Only a wait nobody answered takes the whole timeout.
        let waited = io.io.now.get() - before >= 30_000;
        assert_eq!(waited, decision.is_none(), "{decision:?}");
    }
}

#[test]
fn rounds_are_bounded_and_the_last_reply_may_call_nothing() {
    let a = tooled_assistant();
    let mut answers: Vec<Answer> = (0..MAX_TOOL_ROUNDS)
        .map(|i| calling(&[(&format!("c{i}"), "lookup", json!({"n": i}))]))
        .collect();
    answers.push(Answer::Stream(openai(&["Enough."], true)));
    let io = Tooled::new(answers, vec![]);
    block_on(turn(&io, &a, &prompt(), "ann", 1_000)).unwrap();
    let bodies = io.bodies();
    assert_eq!(bodies.len(), MAX_TOOL_ROUNDS + 1);
    assert_eq!(io.made.borrow().len(), MAX_TOOL_ROUNDS);
    assert!(bodies[..MAX_TOOL_ROUNDS]
        .iter()
        .all(|b| b.get("tools").is_some() && b.get("tool_choice").is_none()));
    // Still declared (the history has calls), but none may be made.
    assert!(bodies[MAX_TOOL_ROUNDS].get("tools").is_some());
    assert_eq!(bodies[MAX_TOOL_ROUNDS]["tool_choice"], "none");
    // The last request carries every round's calls and results.
    assert_eq!(
        results_sent(&bodies[MAX_TOOL_ROUNDS]).len(),
        MAX_TOOL_ROUNDS
    );
    assert_eq!(io.io.relayed.borrow().as_str(), "Enough.");
}

#[test]
fn a_call_with_arguments_that_are_not_an_object_is_malformed() {
    let a = tooled_assistant();
    let bad = json!({"choices":[{"index":0,"delta":{"tool_calls":[
        {"index": 0, "id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "[1]"}}]}}]});
    let end = json!({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]});
    let stream = vec![(
        10,
        Piece::Bytes(format!("data: {bad}\n\ndata: {end}\n\ndata: [DONE]\n\n")),
    )];
    let mut a1 = a.clone();
    a1.max_retries = 0;
    let io = Tooled::new(vec![Answer::Stream(stream)], vec![]);
    block_on(turn(&io, &a1, &prompt(), "ann", 1_000)).unwrap();
    assert!(io.made.borrow().is_empty());
    assert_eq!(
        io.recorded.borrow()[0],
        Outcome::Failed {
            code: "provider_malformed"
        }
    );
}

/// The rounds (by `Tooled::reserve`'s day) whose reservations were given
/// back.
fn released_rounds(io: &Tooled) -> Vec<String> {
    io.released.borrow().iter().map(|c| c.day.clone()).collect()
}

#[test]
fn a_round_that_only_asked_for_calls_keeps_its_reservation_until_counted() {
    let mut a = tooled_assistant();
    a.daily_token_budget = 100_000;
    // Counted in the answer's record: its reservation is given back then
    // (the answer's settles what both spent).
    let io = Tooled::new(
        vec![
            calling(&[("c1", "lookup", json!({}))]),
            Answer::Stream(openai(&["Done."], true)),
        ],
        vec![],
    );
    let end = block_on(turn(&io, &a, &prompt(), "ann", 1_000));
    assert_eq!(end, Ok(TurnEnd::Ran { stored: true }));
    assert_eq!(io.reserved.borrow().len(), 2);
    assert_eq!(released_rounds(&io), ["round 0"]);
    // Stopped before any answer: nothing counts what the round spent, so
    // its reservation stands for the day.
    let io = Tooled::new(vec![calling(&[("c1", "refund", json!({}))])], vec![]);
    io.stop_when_asked.set(true);
    let end = block_on(turn(&io, &a, &prompt(), "ann", 1_000));
    assert_eq!(end, Ok(TurnEnd::Ran { stored: false }));
    assert_eq!(io.reserved.borrow().len(), 1);
    assert!(released_rounds(&io).is_empty());
}

#[test]
fn a_stop_while_a_call_waits_ends_the_turn() {
    let a = tooled_assistant();
    let io = Tooled::new(
        vec![
            calling(&[("c1", "refund", json!({})), ("c2", "lookup", json!({}))]),
            Answer::Stream(openai(&["never asked"], true)),
        ],
        vec![],
    );
    io.stop_when_asked.set(true);
    let end = block_on(turn(&io, &a, &prompt(), "ann", 1_000));
    // The reply only asked for calls: nothing to store.
    assert_eq!(end, Ok(TurnEnd::Ran { stored: false }));
    // No call is made, not even the one that needed no approval, and no
    // further reply is asked for. What the calls came to is kept.
    assert!(io.made.borrow().is_empty());
    assert_eq!(io.bodies().len(), 1);
    let results = io.results.borrow();
    let told: Vec<&str> = results.iter().map(|r| r.content.as_str()).collect();
    assert_eq!(told, [round::REJECTED, round::STOPPED]);
}
