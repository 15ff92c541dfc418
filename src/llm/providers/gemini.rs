//! Google Gemini: `POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse`;
//! each event a `GenerateContentResponse`. There is no end marker: the
//! `finishReason` ends the stream.

use super::{alternating, parse, u, Endpoint, Request};
use crate::llm::sse::Event;
use crate::llm::{Chunk, Image, Malformed, Prompt};
use serde_json::json;

pub fn request(ep: &Endpoint, base: &str, api_key: Option<&str>, prompt: &Prompt) -> Request {
    let mut headers = super::json_headers();
    if let Some(k) = api_key {
        headers.push(("x-goog-api-key".into(), k.to_string()));
    }
    Request {
        url: format!(
            "{base}/v1beta/models/{}:streamGenerateContent?alt=sse",
            ep.model
        ),
        headers,
        body: json!({
            "systemInstruction": {"parts": [{"text": prompt.system}]},
            "contents": alternating(prompt, "user", "model", |role, text, images| {
                let mut parts = vec![json!({"text": text})];
                parts.extend(images.iter().map(|i: &&Image| {
                    json!({"inlineData": {"mimeType": i.media_type, "data": i.base64}})
                }));
                json!({"role": role, "parts": parts})
            }),
            "generationConfig": {"maxOutputTokens": ep.max_output_tokens},
        }),
    }
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
