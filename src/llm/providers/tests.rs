use super::*;
use crate::llm::sse::{at_every_split, Parser};
use crate::llm::Turn;
use serde_json::json;

/// What a whole stream decodes to.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    text: String,
    input: Option<u64>,
    output: Option<u64>,
    finish: Option<String>,
    done: bool,
    errors: Vec<String>,
    calls: Vec<crate::llm::tools::ToolCall>,
}

fn summarize(kind: Kind, stream: &[u8]) -> Summary {
    let mut s = Summary::default();
    let mut calls = crate::llm::tools::Calls::default();
    // Splitting at every byte boundary must not change the events.
    for ev in at_every_split(stream) {
        for c in decode(kind, &ev).unwrap() {
            match c {
                Chunk::Text(t) => s.text.push_str(&t),
                Chunk::Usage { input, output, .. } => {
                    s.input = input.or(s.input);
                    s.output = output.or(s.output);
                }
                Chunk::Finish(f) => s.finish = Some(f),
                Chunk::Done => s.done = true,
                Chunk::Error { kind } => s.errors.push(kind),
                Chunk::ToolCall {
                    index,
                    id,
                    name,
                    arguments,
                } => calls.feed(index, id, name, &arguments).unwrap(),
            }
        }
    }
    s.calls = calls.finish().unwrap();
    s
}

const OPENAI: &str = concat!(
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
    ": OPENROUTER PROCESSING\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo, wörld 👋\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":4,\"total_tokens\":16}}\n\n",
    "data: [DONE]\n\n",
);

const ANTHROPIC: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-5-haiku-latest\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\n",
    "data: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\", naïve 🌍\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

// Google sends CRLF line endings.
const GEMINI: &str = concat!(
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hello\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"totalTokenCount\": 9},\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" there,\"}, {\"text\": \" señor\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 3,\"totalTokenCount\": 12}}\r\n\r\n",
);

const WORKERS_AI: &str = concat!(
    "data: {\"response\":\"Hi\",\"p\":\"abcdef\"}\n\n",
    "data: {\"response\":\" thére\"}\n\n",
    "data: {\"response\":\"\",\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"total_tokens\":12}}\n\n",
    "data: [DONE]\n\n",
);

#[test]
fn openai_stream() {
    let s = summarize(Kind::Openai, OPENAI.as_bytes());
    assert_eq!(s.text, "Hello, wörld 👋");
    assert_eq!((s.input, s.output), (Some(12), Some(4)));
    assert_eq!(s.finish.as_deref(), Some("stop"));
    assert!(s.done && s.errors.is_empty());
}

#[test]
fn anthropic_stream() {
    let s = summarize(Kind::Anthropic, ANTHROPIC.as_bytes());
    assert_eq!(s.text, "Hello, naïve 🌍");
    assert_eq!((s.input, s.output), (Some(25), Some(15)));
    assert_eq!(s.finish.as_deref(), Some("end_turn"));
    assert!(s.done);
}

#[test]
fn gemini_stream() {
    let s = summarize(Kind::Gemini, GEMINI.as_bytes());
    assert_eq!(s.text, "Hello there, señor");
    assert_eq!((s.input, s.output), (Some(9), Some(3)));
    assert_eq!(s.finish.as_deref(), Some("STOP"));
    assert!(!s.done, "Gemini has no end marker");
    assert!(clean_end(Kind::Gemini, true, false));
}

#[test]
fn workers_ai_stream() {
    let s = summarize(Kind::WorkersAi, WORKERS_AI.as_bytes());
    assert_eq!(s.text, "Hi thére");
    assert_eq!((s.input, s.output), (Some(10), Some(2)));
    assert!(s.done);
}

#[test]
fn in_stream_errors() {
    let anthropic = "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";
    assert_eq!(
        summarize(Kind::Anthropic, anthropic.as_bytes()).errors,
        ["overloaded_error"]
    );
    let openai = "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n";
    assert_eq!(
        summarize(Kind::Openai, openai.as_bytes()).errors,
        ["server_error"]
    );
    let gemini = "data: {\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\"}}\r\n\r\n";
    assert_eq!(
        summarize(Kind::Gemini, gemini.as_bytes()).errors,
        ["RESOURCE_EXHAUSTED"]
    );
}

#[test]
fn cut_streams_do_not_end_cleanly() {
    // Everything up to (not including) the terminal event.
    let cut = &OPENAI[..OPENAI.find("data: [DONE]").unwrap()];
    let s = summarize(Kind::Openai, cut.as_bytes());
    assert!(!s.done);
    assert!(!clean_end(Kind::Openai, s.finish.is_some(), s.done));
    let cut = &ANTHROPIC[..ANTHROPIC.find("event: message_stop").unwrap()];
    assert!(!summarize(Kind::Anthropic, cut.as_bytes()).done);
    let cut = &GEMINI[..GEMINI
        .find("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" there")
        .unwrap()];
    let s = summarize(Kind::Gemini, cut.as_bytes());
    assert!(!clean_end(Kind::Gemini, s.finish.is_some(), s.done));
}

#[test]
fn malformed_json_is_an_error_not_a_panic() {
    let mut p = Parser::new(1 << 16);
    let evs = p.feed(b"data: {\"choices\": [\n\n").unwrap();
    for kind in [Kind::Openai, Kind::Anthropic, Kind::Gemini, Kind::WorkersAi] {
        assert!(decode(kind, &evs[0]).is_err(), "{kind:?}");
    }
}

fn prompt() -> Prompt {
    Prompt {
        tools: Vec::new(),
        no_calls: false,
        system: "Be brief.".into(),
        turns: vec![
            Turn {
                role: Role::Assistant,
                text: "Hi! How can I help?".into(),
                images: Vec::new(),
                ..Default::default()
            },
            Turn {
                role: Role::User,
                text: "My invoice".into(),
                images: Vec::new(),
                ..Default::default()
            },
            Turn {
                role: Role::User,
                text: "is wrong".into(),
                images: Vec::new(),
                ..Default::default()
            },
            Turn {
                role: Role::Assistant,
                text: "Which one?".into(),
                images: Vec::new(),
                ..Default::default()
            },
            Turn {
                role: Role::User,
                text: "March".into(),
                images: Vec::new(),
                ..Default::default()
            },
        ],
    }
}

fn ep(kind: Kind, base: &str) -> Endpoint {
    Endpoint {
        kind,
        base_url: base.into(),
        model: "m-1".into(),
        max_output_tokens: 256,
        temperature: None,
    }
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn openai_request() {
    let r = build(
        &ep(Kind::Openai, "http://127.0.0.1:9/v1/"),
        Some("sk-x"),
        &prompt(),
    );
    assert_eq!(r.url, "http://127.0.0.1:9/v1/chat/completions");
    assert_eq!(header(&r, "authorization"), Some("Bearer sk-x"));
    assert_eq!(r.body["model"], "m-1");
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["stream_options"]["include_usage"], true);
    assert_eq!(r.body["max_tokens"], 256);
    let msgs = r.body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 6);
    assert_eq!(msgs[0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(msgs[5], json!({"role": "user", "content": "March"}));
    let keyless = build(
        &ep(Kind::Openai, "http://localhost:11434/v1"),
        None,
        &prompt(),
    );
    assert_eq!(header(&keyless, "authorization"), None);
}

#[test]
fn anthropic_request_alternates_and_starts_with_the_user() {
    let r = build(
        &ep(Kind::Anthropic, "https://api.anthropic.com"),
        Some("k"),
        &prompt(),
    );
    assert_eq!(r.url, "https://api.anthropic.com/v1/messages");
    assert_eq!(header(&r, "x-api-key"), Some("k"));
    assert_eq!(header(&r, "anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.body["system"], "Be brief.");
    assert_eq!(
        r.body["messages"],
        json!([
            {"role": "user", "content": "My invoice\n\nis wrong"},
            {"role": "assistant", "content": "Which one?"},
            {"role": "user", "content": "March"},
        ])
    );
}

#[test]
fn gemini_request() {
    let r = build(
        &ep(Kind::Gemini, "https://generativelanguage.googleapis.com"),
        Some("g"),
        &prompt(),
    );
    assert_eq!(
        r.url,
        "https://generativelanguage.googleapis.com/v1beta/models/m-1:streamGenerateContent?alt=sse"
    );
    assert_eq!(header(&r, "x-goog-api-key"), Some("g"));
    assert_eq!(r.body["systemInstruction"]["parts"][0]["text"], "Be brief.");
    assert_eq!(
        r.body["contents"][1],
        json!({"role": "model", "parts": [{"text": "Which one?"}]})
    );
    assert_eq!(r.body["generationConfig"]["maxOutputTokens"], 256);
}

#[test]
fn workers_ai_inputs() {
    let r = build(&ep(Kind::WorkersAi, ""), None, &prompt());
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["messages"][0]["role"], "system");
    assert!(
        r.body.get("model").is_none(),
        "the model is run's first argument"
    );
}

#[test]
fn failures_map_to_stable_codes() {
    assert_eq!(
        failure(429, Some("2")),
        Failure {
            code: "provider_rate_limited",
            retryable: true,
            retry_after_ms: Some(2000)
        }
    );
    assert_eq!(failure(429, Some("0.5")).retry_after_ms, Some(500));
    assert_eq!(failure(429, Some("soon")).retry_after_ms, None);
    assert!(
        failure(500, None).retryable
            && failure(503, None).retryable
            && failure(529, None).retryable
    );
    assert_eq!(failure(529, None).code, "provider_unavailable");
    assert_eq!(
        (failure(401, None).code, failure(401, None).retryable),
        ("provider_auth", false)
    );
    assert_eq!(
        (failure(400, None).code, failure(400, None).retryable),
        ("provider_rejected", false)
    );
}

#[test]
fn backoff_grows_jitters_caps_and_honours_retry_after() {
    assert_eq!(backoff_ms(0, 100, 5000, None, 0.999), 99);
    assert_eq!(backoff_ms(3, 100, 5000, None, 0.5), 400);
    assert_eq!(backoff_ms(10, 100, 5000, None, 0.999), 4995);
    assert_eq!(backoff_ms(0, 100, 5000, None, 0.0), 0);
    assert_eq!(backoff_ms(0, 100, 5000, Some(2000), 0.5), 2000);
    assert_eq!(backoff_ms(63, 100, 5000, None, 1.0), 5000, "no overflow");
}

/// A prompt whose user turns carry images: the second one's merges into
/// the first's for the vendors that want alternating turns.
fn pictured() -> Prompt {
    let img = |t: &'static str, b: &str| crate::llm::Image {
        media_type: t,
        base64: b.into(),
    };
    let mut p = prompt();
    p.turns[1].images = vec![img("image/png", "UE5H")];
    p.turns[2].images = vec![img("image/jpeg", "SlBH")];
    p
}

#[test]
fn images_go_in_each_wire_format() {
    let openai = build(&ep(Kind::Openai, "http://x/v1"), None, &pictured());
    assert_eq!(
        openai.body["messages"][2]["content"],
        json!([
            {"type": "text", "text": "My invoice"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,UE5H"}},
        ])
    );
    // A turn without images stays a plain string.
    assert_eq!(openai.body["messages"][5]["content"], "March");

    let anthropic = build(&ep(Kind::Anthropic, "http://x"), None, &pictured());
    assert_eq!(
        anthropic.body["messages"][0]["content"],
        json!([
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "UE5H"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "SlBH"}},
            {"type": "text", "text": "My invoice\n\nis wrong"},
        ])
    );
    assert_eq!(anthropic.body["messages"][2]["content"], "March");

    let gemini = build(&ep(Kind::Gemini, "http://x"), None, &pictured());
    assert_eq!(
        gemini.body["contents"][0]["parts"],
        json!([
            {"text": "My invoice\n\nis wrong"},
            {"inlineData": {"mimeType": "image/png", "data": "UE5H"}},
            {"inlineData": {"mimeType": "image/jpeg", "data": "SlBH"}},
        ])
    );

    // Workers AI: text only.
    let wai = build(&ep(Kind::WorkersAi, ""), None, &pictured());
    assert_eq!(wai.body["messages"][2]["content"], "My invoice");
}

/// Cached prompt tokens, as each vendor reports them, become one shape:
/// `input` counts the whole prompt, `cached` the part read from the cache.
#[test]
fn cached_prompt_tokens_are_counted_alike() {
    let usage = |kind, data: Value, event: Option<&str>| {
        let ev = crate::llm::sse::Event {
            event: event.map(String::from),
            data: data.to_string(),
            id: None,
        };
        decode(kind, &ev)
            .unwrap()
            .into_iter()
            .find(|c| matches!(c, Chunk::Usage { .. }))
            .unwrap()
    };
    let want = Chunk::Usage {
        input: Some(1_000),
        cached: Some(400),
        output: Some(20),
    };
    let openai = json!({"choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":20,
        "prompt_tokens_details":{"cached_tokens":400}}});
    assert_eq!(usage(Kind::Openai, openai, None), want);
    // Anthropic's input_tokens leaves out cache reads and writes.
    let anthropic = json!({"type":"message_start","message":{"usage":{"input_tokens":500,
        "cache_creation_input_tokens":100,"cache_read_input_tokens":400,"output_tokens":20}}});
    assert_eq!(
        usage(Kind::Anthropic, anthropic, Some("message_start")),
        want
    );
    let gemini = json!({"candidates":[],"usageMetadata":{"promptTokenCount":1000,
        "cachedContentTokenCount":400,"candidatesTokenCount":20}});
    assert_eq!(usage(Kind::Gemini, gemini, None), want);
}

/// Each vendor's stream of two parallel function calls, as their API
/// references show them, decodes to the same two calls.
#[test]
fn parallel_tool_calls_decode_alike_in_every_format() {
    use crate::llm::tools::ToolCall;
    let want = |ids: [&str; 2]| {
        vec![
            ToolCall {
                id: ids[0].into(),
                name: "lookup_order".into(),
                arguments: json!({"order": "A-1"}),
            },
            ToolCall {
                id: ids[1].into(),
                name: "open_ticket".into(),
                arguments: json!({"subject": "late", "urgent": true}),
            },
        ]
    };
    let openai = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"lookup_order\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"order\\\": \\\"A-1\\\"}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"open_ticket\",\"arguments\":\"{\\\"subject\\\"\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\": \\\"late\\\", \\\"urgent\\\": true}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let s = summarize(Kind::Openai, openai.as_bytes());
    assert_eq!(s.calls, want(["call_1", "call_2"]));
    assert_eq!(s.finish.as_deref(), Some("tool_calls"));
    assert_eq!(s.text, "");

    let anthropic = concat!(
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me check.\"}}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"lookup_order\",\"input\":{}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"order\\\": \\\"A-1\\\"}\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"open_ticket\",\"input\":{}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"subject\\\": \\\"late\\\",\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"urgent\\\": true}\"}}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":40}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );
    let s = summarize(Kind::Anthropic, anthropic.as_bytes());
    assert_eq!(s.calls, want(["toolu_1", "toolu_2"]));
    assert_eq!(
        (s.text.as_str(), s.finish.as_deref()),
        ("Let me check.", Some("tool_use"))
    );

    let gemini = concat!(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"lookup_order\",\"args\":{\"order\":\"A-1\"}}},",
        "{\"functionCall\":{\"name\":\"open_ticket\",\"args\":{\"subject\":\"late\",\"urgent\":true}}}],\"role\":\"model\"},",
        "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":30,\"candidatesTokenCount\":12}}\n\n",
    );
    let s = summarize(Kind::Gemini, gemini.as_bytes());
    assert_eq!(s.calls, want(["call_0", "call_1"]));

    // Workers AI's own shape: deltas like OpenAI's beside `response`, ended
    // by an entry of nulls.
    let workers_ai = concat!(
        "data: {\"response\":\"\",\"tool_calls\":[{\"id\":\"chatcmpl-tool-1\",\"type\":\"function\",\"index\":0,\"function\":{\"name\":\"lookup_order\",\"arguments\":\"\"}}]}\n\n",
        "data: {\"response\":\"\",\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"order\\\": \\\"A-1\\\"}\"}}]}\n\n",
        "data: {\"response\":\"\",\"tool_calls\":[{\"id\":\"chatcmpl-tool-2\",\"type\":\"function\",\"index\":1,\"function\":{\"name\":\"open_ticket\",\"arguments\":\"{\\\"subject\\\"\"}}]}\n\n",
        "data: {\"response\":\"\",\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\": \\\"late\\\", \\\"urgent\\\": true}\"}}]}\n\n",
        "data: {\"response\":\"\",\"tool_calls\":[{\"id\":null,\"type\":null,\"function\":{\"name\":null,\"arguments\":null}}]}\n\n",
        "data: {\"response\":\"\",\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":12}}\n\n",
        "data: [DONE]\n\n",
    );
    let s = summarize(Kind::WorkersAi, workers_ai.as_bytes());
    assert_eq!(s.calls, want(["chatcmpl-tool-1", "chatcmpl-tool-2"]));
    assert_eq!((s.input, s.output), (Some(30), Some(12)));
    // Whole calls, arguments as objects, in one event.
    let whole = concat!(
        "data: {\"response\":\"\",\"tool_calls\":[{\"name\":\"lookup_order\",\"arguments\":{\"order\":\"A-1\"}},",
        "{\"name\":\"open_ticket\",\"arguments\":{\"subject\":\"late\",\"urgent\":true}}]}\n\n",
        "data: [DONE]\n\n",
    );
    let s = summarize(Kind::WorkersAi, whole.as_bytes());
    assert_eq!(s.calls, want(["call_0", "call_1"]));
    // Models the binding serves in the Chat Completions format stream
    // OpenAI's chunks.
    let s = summarize(Kind::WorkersAi, openai.as_bytes());
    assert_eq!(s.calls, want(["call_1", "call_2"]));
}

/// A conversation in which the model called two functions in parallel and
/// got their results (one a failure), with the functions on offer.
fn with_tools() -> Prompt {
    use crate::llm::tools::{ToolCall, ToolResult, ToolSpec};
    let call = |id: &str, name: &str, args: Value| ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args,
    };
    let result = |id: &str, name: &str, content: &str, is_error| Turn {
        role: Role::Tool,
        result: Some(ToolResult {
            call_id: id.into(),
            name: name.into(),
            content: content.into(),
            is_error,
        }),
        ..Default::default()
    };
    Prompt {
        system: "Be brief.".into(),
        turns: vec![
            Turn {
                role: Role::User,
                text: "Where is A-1? Open a ticket too.".into(),
                ..Default::default()
            },
            Turn {
                role: Role::Assistant,
                text: "Checking.".into(),
                calls: vec![
                    call("c1", "lookup_order", json!({"order": "A-1"})),
                    call("c2", "open_ticket", json!({"subject": "A-1"})),
                ],
                ..Default::default()
            },
            result("c1", "lookup_order", r#"{"status":"shipped"}"#, false),
            result("c2", "open_ticket", "the ticket system timed out", true),
        ],
        tools: vec![ToolSpec {
            name: "lookup_order".into(),
            description: "Finds an order by its number.".into(),
            parameters: json!({"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}),
        }],
        no_calls: false,
    }
}

#[test]
fn openai_offers_tools_and_replays_calls_and_results() {
    let ep = Endpoint {
        kind: Kind::Openai,
        base_url: "https://api.openai.com/v1".into(),
        model: "gpt-4o-mini".into(),
        max_output_tokens: 64,
        temperature: None,
    };
    let body = build(&ep, Some("k"), &with_tools()).body;
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {"name": "lookup_order",
            "description": "Finds an order by its number.",
            "parameters": {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}}}])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Where is A-1? Open a ticket too."},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": "{\"order\":\"A-1\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "open_ticket", "arguments": "{\"subject\":\"A-1\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "{\"status\":\"shipped\"}"},
            {"role": "tool", "tool_call_id": "c2", "content": "the ticket system timed out"},
        ])
    );
    // Workers AI takes the same shape, each result naming its function.
    let wai = Endpoint {
        kind: Kind::WorkersAi,
        ..ep
    };
    let wai = build(&wai, None, &with_tools()).body;
    assert_eq!(wai["tools"], body["tools"]);
    assert_eq!(wai["messages"][2], body["messages"][2]);
    assert_eq!(
        wai["messages"][3],
        json!({"role": "tool", "tool_call_id": "c1", "name": "lookup_order", "content": "{\"status\":\"shipped\"}"})
    );
    assert_eq!(wai["messages"][4]["name"], "open_ticket");
}

#[test]
fn anthropic_puts_both_results_in_one_user_message_first() {
    let ep = Endpoint {
        kind: Kind::Anthropic,
        base_url: "https://api.anthropic.com".into(),
        model: "claude".into(),
        max_output_tokens: 64,
        temperature: None,
    };
    let body = build(&ep, Some("k"), &with_tools()).body;
    assert_eq!(
        body["tools"][0]["input_schema"]["required"],
        json!(["order"])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "Where is A-1? Open a ticket too."},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "c1", "name": "lookup_order", "input": {"order": "A-1"}},
                {"type": "tool_use", "id": "c2", "name": "open_ticket", "input": {"subject": "A-1"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "{\"status\":\"shipped\"}", "is_error": false},
                {"type": "tool_result", "tool_use_id": "c2", "content": "the ticket system timed out", "is_error": true}]},
        ])
    );
}

#[test]
fn gemini_declares_functions_and_answers_calls_by_name() {
    let ep = Endpoint {
        kind: Kind::Gemini,
        base_url: "https://generativelanguage.googleapis.com".into(),
        model: "gemini-2.0-flash".into(),
        max_output_tokens: 64,
        temperature: None,
    };
    let body = build(&ep, Some("k"), &with_tools()).body;
    assert_eq!(
        body["tools"][0]["functionDeclarations"][0]["name"],
        "lookup_order"
    );
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Where is A-1? Open a ticket too."}]},
            {"role": "model", "parts": [
                {"text": "Checking."},
                {"functionCall": {"name": "lookup_order", "args": {"order": "A-1"}}},
                {"functionCall": {"name": "open_ticket", "args": {"subject": "A-1"}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "lookup_order", "response": {"content": "{\"status\":\"shipped\"}"}}},
                {"functionResponse": {"name": "open_ticket", "response": {"error": "the ticket system timed out"}}}]},
        ])
    );
}

#[test]
fn a_trimmed_history_never_starts_with_a_result() {
    // A budget that keeps only the last turns would cut the call away.
    let p = with_tools();
    // Only the newest turn fits: a result, whose call is gone; so nothing.
    assert_eq!(crate::llm::budget::fit("s", &p.turns, 1).turns, vec![]);
    assert_eq!(
        crate::llm::budget::fit("s", &p.turns, 100_000).turns,
        p.turns
    );
}

#[test]
fn a_last_round_declares_the_functions_but_allows_no_call() {
    let mut p = with_tools();
    p.no_calls = true;
    let body = |kind| build(&ep(kind, "http://x"), Some("k"), &p).body;
    let (o, a, g, w) = (
        body(Kind::Openai),
        body(Kind::Anthropic),
        body(Kind::Gemini),
        body(Kind::WorkersAi),
    );
    assert_eq!(o["tool_choice"], "none");
    assert_eq!(w["tool_choice"], "none");
    assert_eq!(a["tool_choice"], json!({"type": "none"}));
    assert_eq!(
        g["toolConfig"],
        json!({"functionCallingConfig": {"mode": "NONE"}})
    );
    assert!([&o, &a, &g, &w].iter().all(|b| b["tools"].is_array()));
    // Without functions there is nothing to forbid.
    p.tools.clear();
    assert!(build(&ep(Kind::Openai, "http://x"), None, &p)
        .body
        .get("tool_choice")
        .is_none());
}
