//! OpenAI-compatible Chat Completions (OpenAI, vLLM, Ollama, llama.cpp
//! server, …): `POST {base}/chat/completions` with `stream: true`; chunks
//! of `chat.completion.chunk`, usage in a final chunk, `data: [DONE]` last.

use super::{parse, u, Endpoint, Request};
use crate::llm::sse::Event;
use crate::llm::{Chunk, Malformed, Prompt, Role};
use serde_json::{json, Value};

/// Who the chat messages are for: Workers AI takes the same shape, but
/// no images (its vision models want an input of their own), and names
/// the function a result answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Openai,
    WorkersAi,
}

/// The system prompt and turns as chat messages. A turn with images has
/// content parts: its text, then each image as a `data:` URL.
pub(super) fn messages(prompt: &Prompt, shape: Shape) -> Vec<Value> {
    let mut messages = vec![json!({"role": "system", "content": prompt.system})];
    messages.extend(prompt.turns.iter().map(|t| match (t.role, &t.result) {
        (Role::Tool, Some(r)) => {
            let mut m = json!({"role": "tool", "tool_call_id": r.call_id, "content": r.content});
            if shape == Shape::WorkersAi {
                m["name"] = Value::from(r.name.as_str());
            }
            m
        }
        // A result is never without its call's; nothing to say.
        (Role::Tool, None) => json!({"role": "user", "content": ""}),
        (Role::Assistant, _) if !t.calls.is_empty() => {
            let calls: Vec<Value> = t
                .calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments.to_string()}})
                })
                .collect();
            let content = if t.text.is_empty() {
                Value::Null
            } else {
                Value::from(t.text.as_str())
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        (role, _) => {
            let role = if role == Role::User {
                "user"
            } else {
                "assistant"
            };
            if shape == Shape::WorkersAi || t.images.is_empty() {
                return json!({"role": role, "content": t.text});
            }
            let mut parts = vec![json!({"type": "text", "text": t.text})];
            parts.extend(t.images.iter().map(|i| {
                let url = format!("data:{};base64,{}", i.media_type, i.base64);
                json!({"type": "image_url", "image_url": {"url": url}})
            }));
            json!({"role": role, "content": parts})
        }
    }));
    messages
}

pub fn request(ep: &Endpoint, base: &str, api_key: Option<&str>, prompt: &Prompt) -> Request {
    let mut headers = super::json_headers();
    if let Some(k) = api_key {
        headers.push(("authorization".into(), format!("Bearer {k}")));
    }
    let mut req = Request {
        url: format!("{base}/chat/completions"),
        headers,
        body: json!({
            "model": ep.model,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": ep.max_output_tokens,
            "messages": messages(prompt, Shape::Openai),
        }),
    };
    if !prompt.tools.is_empty() {
        req.body["tools"] = tools(prompt);
    }
    req
}

/// The functions offered, as Chat Completions (and Workers AI) declare
/// them.
pub(super) fn tools(prompt: &Prompt) -> Value {
    let tools: Vec<Value> = prompt
        .tools
        .iter()
        .map(|t| {
            json!({"type": "function", "function":
            {"name": t.name, "description": t.description, "parameters": t.parameters}})
        })
        .collect();
    Value::from(tools)
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
