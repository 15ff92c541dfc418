//! Per-provider request building, stream decoding and error mapping. Pure.

use super::sse::Event;
use super::{Chunk, Kind, Malformed, Prompt, Role};
use serde_json::{json, Value};

/// A provider endpoint as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub kind: Kind,
    /// Base URL, without a trailing slash (unused for Workers AI).
    pub base_url: String,
    pub model: String,
    pub max_output_tokens: u32,
}

/// An HTTP request to make, or the inputs of a Workers AI `run`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

/// Builds the streaming request for `prompt`. `api_key` is None for
/// keyless local servers.
pub fn build(ep: &Endpoint, api_key: Option<&str>, prompt: &Prompt) -> Request {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    let base = ep.base_url.trim_end_matches('/');
    match ep.kind {
        Kind::Openai | Kind::WorkersAi => {
            let mut messages = vec![json!({"role": "system", "content": prompt.system})];
            messages.extend(prompt.turns.iter().map(|t| {
                json!({"role": if t.role == Role::User { "user" } else { "assistant" }, "content": t.text})
            }));
            if let Some(k) = api_key {
                headers.push(("authorization".into(), format!("Bearer {k}")));
            }
            let body = if ep.kind == Kind::Openai {
                json!({
                    "model": ep.model,
                    "stream": true,
                    "stream_options": {"include_usage": true},
                    "max_tokens": ep.max_output_tokens,
                    "messages": messages,
                })
            } else {
                json!({"stream": true, "max_tokens": ep.max_output_tokens, "messages": messages})
            };
            Request {
                url: format!("{base}/chat/completions"),
                headers,
                body,
            }
        }
        Kind::Anthropic => {
            if let Some(k) = api_key {
                headers.push(("x-api-key".into(), k.to_string()));
            }
            headers.push(("anthropic-version".into(), "2023-06-01".into()));
            Request {
                url: format!("{base}/v1/messages"),
                headers,
                body: json!({
                    "model": ep.model,
                    "max_tokens": ep.max_output_tokens,
                    "stream": true,
                    "system": prompt.system,
                    "messages": alternating(prompt, "user", "assistant", |role, text| json!({"role": role, "content": text})),
                }),
            }
        }
        Kind::Gemini => {
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
                    "contents": alternating(prompt, "user", "model", |role, text| json!({"role": role, "parts": [{"text": text}]})),
                    "generationConfig": {"maxOutputTokens": ep.max_output_tokens},
                }),
            }
        }
    }
}

/// Anthropic and Gemini want strictly alternating turns that start with the
/// user: consecutive turns of one speaker are merged, a leading assistant
/// turn is dropped.
fn alternating(
    prompt: &Prompt,
    user: &str,
    assistant: &str,
    shape: impl Fn(&str, &str) -> Value,
) -> Vec<Value> {
    let mut merged: Vec<(Role, String)> = Vec::new();
    for t in &prompt.turns {
        match merged.last_mut() {
            Some((r, text)) if *r == t.role => {
                text.push_str("\n\n");
                text.push_str(&t.text);
            }
            None if t.role == Role::Assistant => {}
            _ => merged.push((t.role, t.text.clone())),
        }
    }
    merged
        .iter()
        .map(|(r, text)| shape(if *r == Role::User { user } else { assistant }, text))
        .collect()
}

fn parse(data: &str) -> Result<Value, Malformed> {
    serde_json::from_str(data).map_err(|_| {
        Malformed(format!(
            "not JSON: {}",
            data.chars().take(80).collect::<String>()
        ))
    })
}

fn u(v: &Value) -> Option<u64> {
    v.as_u64()
}

/// Decodes one SSE event of `kind`'s stream.
pub fn decode(kind: Kind, ev: &Event) -> Result<Vec<Chunk>, Malformed> {
    match kind {
        Kind::Openai => decode_openai(ev),
        Kind::Anthropic => decode_anthropic(ev),
        Kind::Gemini => decode_gemini(ev),
        Kind::WorkersAi => decode_workers_ai(ev),
    }
}

fn decode_openai(ev: &Event) -> Result<Vec<Chunk>, Malformed> {
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
        if let Some(f) = choice["finish_reason"].as_str() {
            out.push(Chunk::Finish(f.to_string()));
        }
    }
    if v["usage"].is_object() {
        out.push(Chunk::Usage {
            input: u(&v["usage"]["prompt_tokens"]),
            output: u(&v["usage"]["completion_tokens"]),
        });
    }
    Ok(out)
}

fn decode_anthropic(ev: &Event) -> Result<Vec<Chunk>, Malformed> {
    let v = parse(&ev.data)?;
    // The `type` in the data is authoritative; `event:` repeats it.
    let ty = v["type"].as_str().or(ev.event.as_deref()).unwrap_or("");
    Ok(match ty {
        "message_start" => vec![Chunk::Usage {
            input: u(&v["message"]["usage"]["input_tokens"]),
            output: u(&v["message"]["usage"]["output_tokens"]),
        }],
        "content_block_delta" if v["delta"]["type"] == "text_delta" => {
            match v["delta"]["text"].as_str().filter(|t| !t.is_empty()) {
                Some(t) => vec![Chunk::Text(t.to_string())],
                None => vec![],
            }
        }
        "message_delta" => {
            let mut out = Vec::new();
            if let Some(r) = v["delta"]["stop_reason"].as_str() {
                out.push(Chunk::Finish(r.to_string()));
            }
            if v["usage"].is_object() {
                out.push(Chunk::Usage {
                    input: u(&v["usage"]["input_tokens"]),
                    output: u(&v["usage"]["output_tokens"]),
                });
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

fn decode_gemini(ev: &Event) -> Result<Vec<Chunk>, Malformed> {
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
        }
        if let Some(f) = c["finishReason"].as_str() {
            out.push(Chunk::Finish(f.to_string()));
        }
    }
    if v["usageMetadata"].is_object() {
        out.push(Chunk::Usage {
            input: u(&v["usageMetadata"]["promptTokenCount"]),
            output: u(&v["usageMetadata"]["candidatesTokenCount"]),
        });
    }
    Ok(out)
}

fn decode_workers_ai(ev: &Event) -> Result<Vec<Chunk>, Malformed> {
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
            output: u(&v["usage"]["completion_tokens"]),
        });
    }
    Ok(out)
}

/// Whether a stream that ends (EOF) after these markers ended properly.
/// Gemini has no end marker: a finish reason is its end.
pub fn clean_end(kind: Kind, saw_finish: bool, saw_done: bool) -> bool {
    match kind {
        Kind::Gemini => saw_finish,
        _ => saw_done,
    }
}

/// How a failed provider response is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Stable code for clients (`provider_rate_limited`, …).
    pub code: &'static str,
    /// Worth another attempt (before any token was relayed).
    pub retryable: bool,
    /// The provider's Retry-After, when it gave one.
    pub retry_after_ms: Option<u64>,
}

/// Maps an HTTP status (and Retry-After header) to a failure. The body is
/// never passed on: it may hold anything.
pub fn failure(status: u16, retry_after: Option<&str>) -> Failure {
    let retry_after_ms = retry_after
        .and_then(|r| r.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| (s * 1000.0) as u64);
    let (code, retryable) = match status {
        429 => ("provider_rate_limited", true),
        401 | 403 => ("provider_auth", false),
        408 => ("provider_timeout", true),
        // 529 is Anthropic's "overloaded".
        500..=599 => ("provider_unavailable", true),
        _ => ("provider_rejected", false),
    };
    Failure {
        code,
        retryable,
        retry_after_ms,
    }
}

/// Exponential backoff with full jitter: a wait in [0, min(cap, base·2ⁿ)),
/// or the provider's Retry-After when longer. `unit` in [0, 1) is the random
/// draw, passed in to keep this pure.
pub fn backoff_ms(
    attempt: u32,
    base_ms: u64,
    cap_ms: u64,
    retry_after_ms: Option<u64>,
    unit: f64,
) -> u64 {
    let ceiling = base_ms.saturating_mul(1u64 << attempt.min(20)).min(cap_ms);
    let jittered = (ceiling as f64 * unit.clamp(0.0, 1.0)) as u64;
    jittered.max(retry_after_ms.unwrap_or(0))
}

#[cfg(test)]
#[path = "providers_tests.rs"]
mod tests;
