//! OpenAI-compatible Chat Completions (OpenAI, vLLM, Ollama, llama.cpp
//! server, …): `POST {base}/chat/completions` with `stream: true`; chunks
//! of `chat.completion.chunk`, usage in a final chunk, `data: [DONE]` last.

use super::{parse, u, Endpoint, Request};
use crate::llm::sse::Event;
use crate::llm::{Chunk, Malformed, Prompt, Role};
use serde_json::{json, Value};

/// The system prompt and turns as chat messages (shared with Workers AI,
/// which gets no images: `images` false). A turn with images has content
/// parts: its text, then each image as a `data:` URL.
pub(super) fn messages(prompt: &Prompt, images: bool) -> Vec<Value> {
    let mut messages = vec![json!({"role": "system", "content": prompt.system})];
    messages.extend(prompt.turns.iter().map(|t| {
        let role = if t.role == Role::User {
            "user"
        } else {
            "assistant"
        };
        if !images || t.images.is_empty() {
            return json!({"role": role, "content": t.text});
        }
        let mut parts = vec![json!({"type": "text", "text": t.text})];
        parts.extend(t.images.iter().map(|i| {
            let url = format!("data:{};base64,{}", i.media_type, i.base64);
            json!({"type": "image_url", "image_url": {"url": url}})
        }));
        json!({"role": role, "content": parts})
    }));
    messages
}

pub fn request(ep: &Endpoint, base: &str, api_key: Option<&str>, prompt: &Prompt) -> Request {
    let mut headers = super::json_headers();
    if let Some(k) = api_key {
        headers.push(("authorization".into(), format!("Bearer {k}")));
    }
    Request {
        url: format!("{base}/chat/completions"),
        headers,
        body: json!({
            "model": ep.model,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": ep.max_output_tokens,
            "messages": messages(prompt, true),
        }),
    }
}

pub fn decode(ev: &Event) -> Result<Vec<Chunk>, Malformed> {
    if ev.data.trim() == "[DONE]" {
        return Ok(vec![Chunk::Done]);
    }
    let v = parse(&ev.data)?;
    let mut out = Vec::new();
    if let Some(err) = v.get("error") {
        let kind = err["type"]
            .as_str()
            .or(err["code"].as_str())
            .unwrap_or("error");
        return Ok(vec![Chunk::Error {
            kind: kind.to_string(),
        }]);
    }
    if let Some(choice) = v["choices"].get(0) {
        if let Some(t) = choice["delta"]["content"]
            .as_str()
            .filter(|t| !t.is_empty())
        {
            out.push(Chunk::Text(t.to_string()));
        }
        // A call's id and name come first, its arguments in fragments.
        for c in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let text = |v: &Value| v.as_str().map(String::from);
            out.push(Chunk::ToolCall {
                index: u(&c["index"]),
                id: text(&c["id"]),
                name: text(&c["function"]["name"]),
                arguments: c["function"]["arguments"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            });
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            out.push(Chunk::Finish(f.to_string()));
        }
    }
    if v["usage"].is_object() {
        out.push(Chunk::Usage {
            input: u(&v["usage"]["prompt_tokens"]),
            cached: u(&v["usage"]["prompt_tokens_details"]["cached_tokens"]),
            output: u(&v["usage"]["completion_tokens"]),
        });
    }
    Ok(out)
}
