//! The local LLM stand-ins speak each vendor's real wire format: their
//! streams go through Confab's own SSE parser and vendor decoders, and every
//! scripted fault looks the way the real vendor's would.

mod common;

use common::*;
use confab::llm::providers::{build, clean_end, decode, failure, Endpoint};
use confab::llm::sse::Parser;
use confab::llm::{Chunk, Kind, Prompt, Role, Turn};
use serde_json::json;

struct Outcome {
    status: u16,
    retry_after: Option<String>,
    text: String,
    usage: (Option<u64>, Option<u64>),
    clean: bool,
    malformed: bool,
    calls: confab::llm::tools::Calls,
    finish: Option<String>,
}

fn endpoint(h: &Harness, kind: Kind, model: &str) -> Endpoint {
    let base = match kind {
        Kind::Openai => format!("{}/v1", h.llm_url),
        _ => h.llm_url.clone(),
    };
    Endpoint {
        kind,
        base_url: base,
        model: model.into(),
        max_output_tokens: 128,
        temperature: None,
    }
}

/// Calls the stand-in the way Confab will, streaming the body through the
/// parser chunk by chunk as it arrives.
async fn call(h: &Harness, kind: Kind, model: &str, said: &str) -> Outcome {
    let prompt = Prompt {
        tools: Vec::new(),
        no_calls: false,
        system: "Be brief.".into(),
        turns: vec![Turn {
            role: Role::User,
            text: said.into(),
            images: vec![],
            ..Default::default()
        }],
    };
    let req = build(&endpoint(h, kind, model), Some("test-key"), &prompt);
    // Workers AI's inputs go to the stand-in the AI binding's stand-in
    // calls.
    let url = match kind {
        Kind::WorkersAi => format!("{}/_standin/workers-ai/{model}", h.llm_url),
        _ => req.url.clone(),
    };
    let mut r = http().post(&url).json(&req.body);
    for (k, v) in &req.headers {
        r = r.header(k, v);
    }
    let mut res = r.send().await.unwrap();
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let mut out = Outcome {
        status,
        retry_after,
        text: String::new(),
        usage: (None, None),
        clean: false,
        malformed: false,
        calls: Default::default(),
        finish: None,
    };
    if status != 200 {
        return out;
    }
    let mut parser = Parser::new(1 << 20);
    let (mut finish, mut done) = (false, false);
    loop {
        let bytes = match res.chunk().await {
            Ok(Some(b)) => b,
            // A cut connection ends the body early, as an error or as EOF.
            Ok(None) | Err(_) => break,
        };
        for ev in parser.feed(&bytes).unwrap() {
            match decode(kind, &ev) {
                Err(_) => out.malformed = true,
                Ok(chunks) => {
                    for c in chunks {
                        match c {
                            Chunk::Text(t) => out.text.push_str(&t),
                            Chunk::Usage { input, output, .. } => {
                                out.usage = (input.or(out.usage.0), output.or(out.usage.1))
                            }
                            Chunk::Finish(f) => {
                                finish = true;
                                out.finish = Some(f);
                            }
                            Chunk::ToolCall {
                                index,
                                id,
                                name,
                                arguments,
                            } => out.calls.feed(index, id, name, &arguments).unwrap(),
                            Chunk::Done => done = true,
                            Chunk::Error { .. } => {}
                        }
                    }
                }
            }
        }
    }
    out.clean = clean_end(kind, finish, done);
    out
}

const KINDS: [Kind; 3] = [Kind::Openai, Kind::Anthropic, Kind::Gemini];

#[tokio::test]
async fn every_vendor_stream_decodes_to_the_full_reply_with_usage() {
    let h = Harness::shared();
    for kind in Kind::ALL {
        let model = unique(kind.as_str());
        let o = call(h, kind, &model, "héllo there").await;
        assert_eq!(o.status, 200, "{kind:?}");
        assert_eq!(
            o.text, "Stand-in assistant here. You said: héllo there",
            "{kind:?}"
        );
        assert!(o.usage.0.unwrap() > 0 && o.usage.1.unwrap() > 0, "{kind:?}");
        assert!(o.clean, "{kind:?} ends with its terminal event");
        assert!(!o.malformed);
    }
    // The stand-in saw what Confab's request builder sent.
    let model = unique("anthropic-req");
    call(h, Kind::Anthropic, &model, "check my headers").await;
    let seen = h.standin_requests(Some(&model)).await;
    assert_eq!(seen[0]["headers"]["x-api-key"], "test-key");
    assert_eq!(seen[0]["headers"]["anthropic-version"], "2023-06-01");
    assert_eq!(seen[0]["body"]["system"], "Be brief.");
    assert_eq!(seen[0]["body"]["stream"], true);
}

#[tokio::test]
async fn scripted_faults_look_like_the_vendors_own() {
    let h = Harness::shared();
    for kind in KINDS {
        let model = unique(&format!("faults-{}", kind.as_str()));
        h.script(
            &model,
            json!([
                {"status": 429, "retry_after": "2"},
                {"status": 500},
                {"cut_after": 2},
                {"malformed_after": 1},
                {"repeat": 300, "delay_ms": 0},
                {"text": "custom reply"}
            ]),
        )
        .await;
        let o = call(h, kind, &model, "x").await;
        assert_eq!(o.status, 429, "{kind:?}");
        let f = failure(o.status, o.retry_after.as_deref());
        assert!(f.retryable && f.retry_after_ms == Some(2000), "{kind:?}");
        let o = call(h, kind, &model, "x").await;
        assert!(failure(o.status, None).retryable, "{kind:?} 500");
        let o = call(h, kind, &model, "x").await;
        assert!(!o.clean, "{kind:?}: a cut stream is not a clean end");
        assert_eq!(
            o.text, "Stand-in assistant ",
            "{kind:?}: two pieces arrived"
        );
        let o = call(h, kind, &model, "x").await;
        assert!(o.malformed && !o.clean, "{kind:?}");
        let o = call(h, kind, &model, "x").await;
        assert_eq!(o.text.len(), "lorem ipsum ".len() * 300, "{kind:?}");
        assert!(o.clean);
        let o = call(h, kind, &model, "x").await;
        assert_eq!(o.text, "custom reply");
        // Script used up: back to normal replies.
        let o = call(h, kind, &model, "again").await;
        assert!(o.text.ends_with("You said: again"));
    }
}

#[tokio::test]
async fn scripted_tool_calls_come_in_each_vendors_format() {
    let h = Harness::shared();
    let calls = json!([
        {"name": "lookup_order", "arguments": {"order": "A-1", "items": [1, 2]}},
        {"name": "open_ticket", "arguments": {"subject": "späť", "urgent": true}},
    ]);
    for (kind, finish, ids) in [
        (Kind::Openai, Some("tool_calls"), ["call_0", "call_1"]),
        (Kind::Anthropic, Some("tool_use"), ["toolu_1", "toolu_2"]),
        (Kind::Gemini, Some("STOP"), ["call_0", "call_1"]),
        // The binding's own stream says no finish reason.
        (
            Kind::WorkersAi,
            None,
            ["chatcmpl-tool-0", "chatcmpl-tool-1"],
        ),
    ] {
        let model = unique(&format!("tools-{}", kind.as_str()));
        h.script(&model, json!([{"text": "Checking.", "tool_calls": calls}]))
            .await;
        let o = call(h, kind, &model, "where is my order?").await;
        assert_eq!(o.status, 200, "{kind:?}");
        assert!(o.clean && !o.malformed, "{kind:?}");
        assert_eq!(o.text, "Checking.", "{kind:?}");
        assert_eq!(o.finish.as_deref(), finish, "{kind:?}");
        let got = o.calls.finish().unwrap();
        let got: Vec<_> = got
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    ids[0],
                    "lookup_order",
                    json!({"order": "A-1", "items": [1, 2]})
                ),
                (
                    ids[1],
                    "open_ticket",
                    json!({"subject": "späť", "urgent": true})
                ),
            ],
            "{kind:?}"
        );
    }
}
