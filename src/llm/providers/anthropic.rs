//! Anthropic Messages: `POST {base}/v1/messages` with `stream: true`;
//! typed SSE events (`message_start`, `content_block_delta`,
//! `message_delta`, `message_stop`, `ping`, `error`).

use super::{merged, parse, u, Endpoint, Merged, Request};
use crate::llm::sse::Event;
use crate::llm::{Chunk, Image, Malformed, Prompt};
use serde_json::{json, Value};

pub fn request(ep: &Endpoint, base: &str, api_key: Option<&str>, prompt: &Prompt) -> Request {
    let mut headers = super::json_headers();
    if let Some(k) = api_key {
        headers.push(("x-api-key".into(), k.to_string()));
    }
    headers.push(("anthropic-version".into(), "2023-06-01".into()));
    let mut body = json!({
        "model": ep.model,
        "max_tokens": ep.max_output_tokens,
        "stream": true,
        "system": prompt.system,
        "messages": merged(prompt).iter().map(message).collect::<Vec<_>>(),
    });
    if !prompt.tools.is_empty() {
        let tools: Vec<Value> = prompt
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        body["tools"] = Value::from(tools);
    }
    Request {
        url: format!("{base}/v1/messages"),
        headers,
        body,
    }
}

/// A message: its text alone, or blocks: functions' results first (as
/// Anthropic requires), then images (before the text, as it recommends),
/// the text, and the calls an assistant message asks for.
fn message(m: &Merged) -> Value {
    let role = if m.assistant { "assistant" } else { "user" };
    if m.images.is_empty() && m.calls.is_empty() && m.results.is_empty() {
        return json!({"role": role, "content": m.text});
    }
    let mut blocks: Vec<Value> = m
        .results
        .iter()
        .map(|r| json!({"type": "tool_result", "tool_use_id": r.call_id, "content": r.content, "is_error": r.is_error}))
        .collect();
    blocks.extend(m.images.iter().map(|i: &&Image| {
        json!({"type": "image", "source": {"type": "base64", "media_type": i.media_type, "data": i.base64}})
    }));
    if !m.text.is_empty() {
        blocks.push(json!({"type": "text", "text": m.text}));
    }
    blocks.extend(
        m.calls
            .iter()
            .map(|c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})),
    );
    json!({"role": role, "content": blocks})
}

pub fn decode(ev: &Event) -> Result<Vec<Chunk>, Malformed> {
    let v = parse(&ev.data)?;
    // The `type` in the data is authoritative; `event:` repeats it.
    let ty = v["type"].as_str().or(ev.event.as_deref()).unwrap_or("");
    Ok(match ty {
        "message_start" => vec![usage(&v["message"]["usage"])],
        "content_block_delta" if v["delta"]["type"] == "text_delta" => {
            match v["delta"]["text"].as_str().filter(|t| !t.is_empty()) {
                Some(t) => vec![Chunk::Text(t.to_string())],
                None => vec![],
            }
        }
        // A `tool_use` block: its id and name, then its input in pieces.
        "content_block_start" if v["content_block"]["type"] == "tool_use" => {
            let b = &v["content_block"];
            vec![Chunk::ToolCall {
                index: u(&v["index"]),
                id: b["id"].as_str().map(String::from),
                name: b["name"].as_str().map(String::from),
                arguments: String::new(),
            }]
        }
        "content_block_delta" if v["delta"]["type"] == "input_json_delta" => {
            vec![Chunk::ToolCall {
                index: u(&v["index"]),
                id: None,
                name: None,
                arguments: v["delta"]["partial_json"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            }]
        }
        "message_delta" => {
            let mut out = Vec::new();
            if let Some(r) = v["delta"]["stop_reason"].as_str() {
                out.push(Chunk::Finish(r.to_string()));
            }
            if v["usage"].is_object() {
                out.push(usage(&v["usage"]));
            }
            out
        }
        "message_stop" => vec![Chunk::Done],
        "error" => vec![Chunk::Error {
            kind: v["error"]["type"].as_str().unwrap_or("error").to_string(),
        }],
        // ping, content_block_start/stop, and types added later.
        _ => vec![],
    })
}

/// Anthropic's `input_tokens` leaves out the prompt read from or written to
/// its cache; Confab's input counts every prompt token, cached the reads.
fn usage(v: &Value) -> Chunk {
    let read = u(&v["cache_read_input_tokens"]);
    let written = u(&v["cache_creation_input_tokens"]);
    Chunk::Usage {
        input: u(&v["input_tokens"]).map(|i| i + read.unwrap_or(0) + written.unwrap_or(0)),
        cached: read,
        output: u(&v["output_tokens"]),
    }
}
