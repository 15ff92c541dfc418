//! Process-wide runtime glue: configuration cached per isolate, and JSON-line
//! logging through the console (which Workers Logs and `wrangler tail` collect).

use crate::config::{Config, ConfigError, LogLevel};
use serde_json::{Map, Value};
use std::sync::OnceLock;
use worker::Env;

static CONFIG: OnceLock<Result<Config, ConfigError>> = OnceLock::new();

/// The configuration, read and validated once per isolate. An isolate's
/// bindings never change, so the first read is the only read.
pub fn config(env: &Env) -> Result<&'static Config, &'static ConfigError> {
    CONFIG
        .get_or_init(|| {
            let result = Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()));
            if let Err(e) = &result {
                log(
                    LogLevel::Error,
                    "config_invalid",
                    [
                        ("variable", Value::from(e.variable)),
                        ("expected", Value::from(e.expected.clone())),
                    ],
                );
            }
            result
        })
        .as_ref()
}

fn enabled(level: LogLevel) -> bool {
    match CONFIG.get() {
        Some(Ok(c)) => level >= c.log_level,
        // Before configuration is known (or when it is broken) log everything
        // from info up, so the reason for the breakage is visible.
        _ => level >= LogLevel::Info,
    }
}

/// Writes one JSON log line. Callers pass identifiers and figures only:
/// never message text, tokens, keys or contact details.
pub fn log<const N: usize>(level: LogLevel, event: &str, fields: [(&str, Value); N]) {
    if !enabled(level) {
        return;
    }
    let mut line = Map::new();
    line.insert("ts".into(), Value::from(worker::Date::now().as_millis()));
    let level_name = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    line.insert("level".into(), Value::from(level_name));
    line.insert("event".into(), Value::from(event));
    for (k, v) in fields {
        line.insert(k.into(), v);
    }
    let text = Value::Object(line).to_string();
    match level {
        LogLevel::Error => worker::console_error!("{text}"),
        LogLevel::Warn => worker::console_warn!("{text}"),
        _ => worker::console_log!("{text}"),
    }
}

/// `f`'s output, or None if `ms` pass first.
pub async fn timeout<F: std::future::Future>(ms: u64, f: F) -> Option<F::Output> {
    use futures::future::{select, Either};
    let f = std::pin::pin!(f);
    let d = std::pin::pin!(worker::Delay::from(std::time::Duration::from_millis(ms)));
    match select(f, d).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}
