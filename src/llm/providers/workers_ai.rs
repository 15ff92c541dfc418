//! Workers AI through the `AI` binding: `run(model, inputs)` with
//! `stream: true` returns SSE of `{"response": "..."}` events, usage in the
//! last one, then `data: [DONE]`. The "request" is the inputs object.

use super::{parse, u, Endpoint, Request};
use crate::llm::sse::Event;
use crate::llm::{Chunk, Malformed, Prompt};
use serde_json::json;

pub fn request(ep: &Endpoint, prompt: &Prompt) -> Request {
    Request {
        url: String::new(),
        headers: Vec::new(),
        body: json!({
            "stream": true,
            "max_tokens": ep.max_output_tokens,
            // Text only: Workers AI's vision models take an image in an
            // input shape of their own, which Confab does not build yet.
            "messages": super::openai::messages(prompt, false),
        }),
    }
}

pub fn decode(ev: &Event) -> Result<Vec<Chunk>, Malformed> {
    if ev.data.trim() == "[DONE]" {
        return Ok(vec![Chunk::Done]);
    }
    let v = parse(&ev.data)?;
    let mut out = Vec::new();
    if let Some(t) = v["response"].as_str().filter(|t| !t.is_empty()) {
        out.push(Chunk::Text(t.to_string()));
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
