//! Runtimes whose assistant is the stand-in LLM, and reading its replies.

use super::*;
use serde_json::Value;

/// A runtime whose assistant uses the stand-in under a model name of its own
/// (so the test's script is its own), plus `extra` variables.
pub fn runtime(model: &str, extra: &[(&str, &str)]) -> Harness {
    Harness::start(Options {
        vars: runtime_vars(model, extra),
        ..Default::default()
    })
}

/// The variables of `runtime`, for a runtime started with other options.
pub fn runtime_vars(model: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = vec![
        ("LLM_PROVIDERS".to_string(), "openai".to_string()),
        ("OPENAI_BASE_URL".to_string(), "{llm_url}/v1".to_string()),
        ("OPENAI_MODEL".to_string(), model.to_string()),
        ("ANTHROPIC_BASE_URL".to_string(), "{llm_url}".to_string()),
        ("ANTHROPIC_MODEL".to_string(), format!("{model}-a")),
        ("GEMINI_BASE_URL".to_string(), "{llm_url}".to_string()),
        ("GEMINI_MODEL".to_string(), format!("{model}-g")),
        ("WORKERS_AI_MODEL".to_string(), format!("{model}-w")),
        ("LLM_BACKOFF_BASE_MS".to_string(), "10".to_string()),
        ("LLM_BACKOFF_CAP_MS".to_string(), "50".to_string()),
    ];
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push((k.to_string(), v.to_string()));
    }
    vars
}

/// Frames up to and including the assistant's final message.
pub async fn until_reply(ws: &mut Ws) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let f = recv(ws).await;
        // (A function call's message is the assistant's too, mid-turn.)
        let done =
            f["type"] == "message" && f["author"]["kind"] == "assistant" && f["kind"].is_null();
        frames.push(f);
        if done {
            return frames;
        }
    }
}
