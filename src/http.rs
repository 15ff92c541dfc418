//! HTTP plumbing shared by handlers: the per-request context, JSON responses,
//! and the single place where an `AppError` becomes a response.

use crate::config::{Config, ConfigError, LogLevel};
use crate::error::AppError;
use crate::ids::random_hex;
use crate::runtime::{self, log};
use serde::Serialize;
use serde_json::Value;
use worker::{Env, Headers, Request, Response};

pub type HandlerResult = Result<Response, AppError>;

/// What every handler gets: bindings, configuration and the request id.
pub struct Ctx {
    pub env: Env,
    pub request_id: String,
    started_ms: u64,
}

impl Ctx {
    pub fn new(req: &Request, env: Env) -> Self {
        // Cloudflare's ray id is what operators search logs by; locally there
        // is none, so mint one.
        let request_id = req
            .headers()
            .get("cf-ray")
            .ok()
            .flatten()
            .unwrap_or_else(|| random_hex(8));
        Ctx {
            env,
            request_id,
            started_ms: worker::Date::now().as_millis(),
        }
    }

    pub fn config(&self) -> Result<&'static Config, &'static ConfigError> {
        runtime::config(&self.env)
    }

    /// The configuration, or 503 for routes that cannot serve without it.
    pub fn require_config(&self) -> Result<&'static Config, AppError> {
        self.config()
            .map_err(|_| AppError::Unavailable { check: "config" })
    }

    /// Turns a handler's result into the response, adds the common headers
    /// and writes the request's log line.
    pub fn finish(
        &self,
        method: &str,
        path: &str,
        result: HandlerResult,
    ) -> worker::Result<Response> {
        let (mut response, code, detail) = match result {
            Ok(r) => (r, None, None),
            Err(e) => {
                let body = e.body(&self.request_id);
                let r = Response::from_json(&body)?.with_status(e.status());
                (r, Some(e.code()), e.log_detail().map(str::to_owned))
            }
        };
        let status = response.status_code();
        // A 101 carries the live socket and its headers are immutable.
        if status != 101 {
            let h = response.headers_mut();
            let _ = h.set("x-request-id", &self.request_id);
            let _ = h.set("x-content-type-options", "nosniff");
            let _ = h.set("referrer-policy", "no-referrer");
            let _ = h.set("content-security-policy", "frame-ancestors 'none'");
            let _ = h.set("cache-control", "no-store");
        }
        let level = if status >= 500 {
            LogLevel::Error
        } else {
            LogLevel::Info
        };
        log(
            level,
            "http",
            [
                ("request_id", Value::from(self.request_id.as_str())),
                ("method", Value::from(method)),
                ("path", Value::from(path)),
                ("status", Value::from(status)),
                (
                    "duration_ms",
                    Value::from(
                        worker::Date::now()
                            .as_millis()
                            .saturating_sub(self.started_ms),
                    ),
                ),
                ("code", code.map(Value::from).unwrap_or(Value::Null)),
                ("detail", detail.map(Value::from).unwrap_or(Value::Null)),
            ],
        );
        Ok(response)
    }
}

/// A JSON response with the given status.
pub fn json<T: Serialize>(status: u16, body: &T) -> HandlerResult {
    Ok(Response::from_json(body)
        .map_err(AppError::internal)?
        .with_status(status))
}

/// True when the request asks for a WebSocket upgrade.
pub fn is_websocket_upgrade(headers: &Headers) -> bool {
    headers
        .get("upgrade")
        .ok()
        .flatten()
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}
