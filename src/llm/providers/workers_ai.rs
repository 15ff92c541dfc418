//! Workers AI through the `AI` binding: `run(model, inputs)` with
//! `stream: true` returns SSE of `{"response": "..."}` events, usage in the
//! last one, then `data: [DONE]`. The "request" is the inputs object, in
//! the Chat Completions shape the binding takes (messages, `tools`,
//! `tool_choice`).
//!
//! Function calls come in one of two shapes, as the model streams them:
//! the binding's own, a top-level `tool_calls` list beside `response`
//! (entries like OpenAI's deltas, `{index, id, function: {name,
//! arguments}}`, or whole calls, `{name, arguments: {...}}`, and a last
//! entry of nulls that ends them), or OpenAI's `choices[0].delta`, which
//! models served through the Chat Completions format stream.

use super::{parse, u, Endpoint, Request};
use crate::llm::sse::Event;
use crate::llm::{Chunk, Malformed, Prompt};
use serde_json::{json, Value};

pub fn request(ep: &Endpoint, prompt: &Prompt) -> Request {
    let mut body = json!({
        "stream": true,
        "max_tokens": ep.max_output_tokens,
        // Text only: Workers AI's vision models take an image in an input
        // shape of their own, which Confab does not build yet.
        "messages": super::openai::messages(prompt, super::openai::Shape::WorkersAi),
    });
    if !prompt.tools.is_empty() {
        body["tools"] = super::openai::tools(prompt);
    }
    Request {
        url: String::new(),
        headers: Vec::new(),
        body,
    }
}

pub fn decode(ev: &Event) -> Result<Vec<Chunk>, Malformed> {
    if ev.data.trim() == "[DONE]" {
        return Ok(vec![Chunk::Done]);
    }
    let v = parse(&ev.data)?;
    if v.get("choices").is_some() {
        return super::openai::decode(ev);
    }
    let mut out = Vec::new();
    if let Some(t) = v["response"].as_str().filter(|t| !t.is_empty()) {
        out.push(Chunk::Text(t.to_string()));
    }
    for c in v["tool_calls"].as_array().into_iter().flatten() {
        if let Some(chunk) = call(c) {
            out.push(chunk);
        }
    }
    if v["usage"].is_object() {
        out.push(Chunk::Usage {
            input: u(&v["usage"]["prompt_tokens"]),
            cached: None,
            output: u(&v["usage"]["completion_tokens"]),
        });
    }
    Ok(out)
}

/// One entry of a native `tool_calls` list; None for the entry of nulls
/// that ends a stream's calls.
fn call(c: &Value) -> Option<Chunk> {
    let f = c.get("function").unwrap_or(c);
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
    let (id, name) = (text(&c["id"]), text(&f["name"]));
    // A whole call's arguments come as an object, and it is a call of its
    // own; fragments without an index belong to the first call, as the
    // binding numbers them from 0.
    let (arguments, index) = match &f["arguments"] {
        Value::String(s) => (s.clone(), u(&c["index"]).or(Some(0))),
        Value::Null => (String::new(), u(&c["index"]).or(Some(0))),
        whole => (whole.to_string(), u(&c["index"])),
    };
    if id.is_none() && name.is_none() && arguments.is_empty() {
        return None;
    }
    Some(Chunk::ToolCall {
        index,
        id,
        name,
        arguments,
    })
}
