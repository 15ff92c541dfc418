//! Google Gemini: `POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse`;
//! each event a `GenerateContentResponse`. There is no end marker: the
//! `finishReason` ends the stream.

use super::{merged, parse, u, Endpoint, Merged, Request};
use crate::llm::sse::Event;
use crate::llm::{Chunk, Image, Malformed, Prompt};
use serde_json::{json, Value};

pub fn request(ep: &Endpoint, base: &str, api_key: Option<&str>, prompt: &Prompt) -> Request {
    let mut headers = super::json_headers();
    if let Some(k) = api_key {
        headers.push(("x-goog-api-key".into(), k.to_string()));
    }
    let mut body = json!({
        "systemInstruction": {"parts": [{"text": prompt.system}]},
        "contents": merged(prompt).iter().map(content).collect::<Vec<_>>(),
        "generationConfig": {"maxOutputTokens": ep.max_output_tokens},
    });
    if !prompt.tools.is_empty() {
        let declarations: Vec<Value> = prompt
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
            .collect();
        body["tools"] = json!([{"functionDeclarations": declarations}]);
    }
    Request {
        url: format!(
            "{base}/v1beta/models/{}:streamGenerateContent?alt=sse",
            ep.model
        ),
        headers,
        body,
    }
}

/// A content: functions' responses (matched by name), the text, images,
/// and the calls a model turn asked for.
fn content(m: &Merged) -> Value {
    let mut parts: Vec<Value> = m
        .results
        .iter()
        .map(|r| {
            let said = if r.is_error { "error" } else { "content" };
            json!({"functionResponse": {"name": r.name, "response": {said: r.content}}})
        })
        .collect();
    if !m.text.is_empty() || (m.results.is_empty() && m.calls.is_empty()) {
        parts.push(json!({"text": m.text}));
    }
    parts.extend(
        m.images
            .iter()
            .map(|i: &&Image| json!({"inlineData": {"mimeType": i.media_type, "data": i.base64}})),
    );
    parts.extend(
        m.calls
            .iter()
            .map(|c| json!({"functionCall": {"name": c.name, "args": c.arguments}})),
    );
    json!({"role": if m.assistant { "model" } else { "user" }, "parts": parts})
}

pub fn decode(ev: &Event) -> Result<Vec<Chunk>, Malformed> {
    let v = parse(&ev.data)?;
    if let Some(err) = v.get("error") {
        let kind = err["status"].as_str().unwrap_or("error");
        return Ok(vec![Chunk::Error {
            kind: kind.to_string(),
        }]);
    }
    let mut out = Vec::new();
    if let Some(c) = v["candidates"].get(0) {
        if let Some(parts) = c["content"]["parts"].as_array() {
            let text: String = parts.iter().filter_map(|p| p["text"].as_str()).collect();
            if !text.is_empty() {
                out.push(Chunk::Text(text));
            }
            // Each call comes whole, its arguments an object.
            for call in parts
                .iter()
                .map(|p| &p["functionCall"])
                .filter(|c| c.is_object())
            {
                out.push(Chunk::ToolCall {
                    index: None,
                    id: call["id"].as_str().map(String::from),
                    name: call["name"].as_str().map(String::from),
                    arguments: call.get("args").map_or(String::new(), |a| a.to_string()),
                });
            }
        }
        if let Some(f) = c["finishReason"].as_str() {
            out.push(Chunk::Finish(f.to_string()));
        }
    }
    if v["usageMetadata"].is_object() {
        out.push(Chunk::Usage {
            input: u(&v["usageMetadata"]["promptTokenCount"]),
            cached: u(&v["usageMetadata"]["cachedContentTokenCount"]),
            output: u(&v["usageMetadata"]["candidatesTokenCount"]),
        });
    }
    Ok(out)
}
