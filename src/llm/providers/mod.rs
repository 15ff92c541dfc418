//! Per-provider request building, stream decoding and error mapping. Pure.
//! One module per wire format; this file dispatches, and holds what they
//! share: the endpoint, error mapping and retry timing.

mod anthropic;
mod gemini;
mod openai;
mod workers_ai;

use super::sse::Event;
use super::tools::{ToolCall, ToolResult};
use super::{Chunk, Image, Kind, Malformed, Prompt, Role};
use serde_json::Value;

/// A provider endpoint as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub kind: Kind,
    /// Base URL, without a trailing slash (unused for Workers AI).
    pub base_url: String,
    pub model: String,
    pub max_output_tokens: u32,
    /// None: the vendor's default.
    pub temperature: Option<Temperature>,
}

/// A sampling temperature from 0 to 2 (the range OpenAI and Gemini take;
/// Anthropic's ends at 1, which a profile checks), kept in hundredths so
/// that endpoints compare exactly. JSON shows it as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Temperature(u8);

impl Temperature {
    pub const MAX: f64 = 2.0;

    pub fn new(t: f64) -> Option<Temperature> {
        (t.is_finite() && (0.0..=Self::MAX).contains(&t))
            .then(|| Temperature((t * 100.0).round() as u8))
    }

    pub fn value(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl serde::Serialize for Temperature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.value())
    }
}

impl<'de> serde::Deserialize<'de> for Temperature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Temperature, D::Error> {
        let t = f64::deserialize(d)?;
        Temperature::new(t).ok_or_else(|| serde::de::Error::custom("a temperature from 0 to 2"))
    }
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
    let base = ep.base_url.trim_end_matches('/');
    let mut req = match ep.kind {
        Kind::Openai => openai::request(ep, base, api_key, prompt),
        Kind::Anthropic => anthropic::request(ep, base, api_key, prompt),
        Kind::Gemini => gemini::request(ep, base, api_key, prompt),
        Kind::WorkersAi => workers_ai::request(ep, prompt),
    };
    if prompt.no_calls && !prompt.tools.is_empty() {
        // Declared, but not to be called: each vendor's way of saying so.
        match ep.kind {
            Kind::Openai | Kind::WorkersAi => req.body["tool_choice"] = Value::from("none"),
            Kind::Anthropic => req.body["tool_choice"] = serde_json::json!({"type": "none"}),
            Kind::Gemini => {
                req.body["toolConfig"] =
                    serde_json::json!({"functionCallingConfig": {"mode": "NONE"}})
            }
        }
    }
    if let Some(t) = ep.temperature {
        // Every format names it `temperature`; Gemini's sits with its
        // other generation settings.
        let at = match ep.kind {
            Kind::Gemini => &mut req.body["generationConfig"],
            _ => &mut req.body,
        };
        at["temperature"] = Value::from(t.value());
    }
    req
}

/// Decodes one SSE event of `kind`'s stream.
pub fn decode(kind: Kind, ev: &Event) -> Result<Vec<Chunk>, Malformed> {
    match kind {
        Kind::Openai => openai::decode(ev),
        Kind::Anthropic => anthropic::decode(ev),
        Kind::Gemini => gemini::decode(ev),
        Kind::WorkersAi => workers_ai::decode(ev),
    }
}

fn json_headers() -> Vec<(String, String)> {
    vec![("content-type".to_string(), "application/json".to_string())]
}

/// One message of a strictly alternating conversation (Anthropic,
/// Gemini): consecutive turns of one side merged, functions' results on
/// the user's side (where both vendors want them), a leading assistant
/// turn dropped.
struct Merged<'a> {
    assistant: bool,
    text: String,
    images: Vec<&'a Image>,
    calls: Vec<&'a ToolCall>,
    results: Vec<&'a ToolResult>,
}

fn merged(prompt: &Prompt) -> Vec<Merged<'_>> {
    let mut out: Vec<Merged> = Vec::new();
    for t in &prompt.turns {
        let assistant = t.role == Role::Assistant;
        match out.last_mut() {
            Some(m) if m.assistant == assistant => {
                if !t.text.is_empty() {
                    if !m.text.is_empty() {
                        m.text.push_str("\n\n");
                    }
                    m.text.push_str(&t.text);
                }
            }
            None if assistant => continue,
            _ => out.push(Merged {
                assistant,
                text: t.text.clone(),
                images: Vec::new(),
                calls: Vec::new(),
                results: Vec::new(),
            }),
        }
        let m = out.last_mut().expect("pushed or matched above");
        m.images.extend(&t.images);
        m.calls.extend(&t.calls);
        m.results.extend(&t.result);
    }
    out
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
mod tests;
