//! HTTP plumbing shared by handlers: the per-request context, JSON responses,
//! and the single place where an `AppError` becomes a response.

use crate::auth::{bearer, user_hash, Identity};
use crate::config::{Config, ConfigError, LogLevel};
use crate::error::AppError;
use crate::ids::random_hex;
use crate::router::{Access, Route};
use crate::runtime::{self, log};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use worker::{Env, Headers, Request, Response};

pub type HandlerResult = Result<Response, AppError>;

/// What every handler gets: bindings, configuration and the request id.
pub struct Ctx {
    pub env: Env,
    /// This request's span: the caller's `traceparent` continued, or a new
    /// trace (`crate::trace`). Calls it makes carry it.
    pub trace: crate::trace::Trace,
    /// The invocation, for work after the response (`wait_until`).
    exec: worker::Context,
    pub request_id: String,
    started_ms: u64,
    /// Set once the caller is authenticated: their pseudonym, for the log.
    user_hash: std::cell::RefCell<Option<String>>,
    /// Set when an admin or the product's backend passed a route of theirs:
    /// who and at which level, for the audit trail (`crate::audit`).
    actor: std::cell::RefCell<Option<(String, Access)>>,
    /// Read once from the request; the router resolves from these.
    pub method: String,
    pub path: String,
    /// The `Origin` header, when a browser sent one.
    pub origin: Option<String>,
    /// The deployment's own origin, when this request was addressed to it:
    /// from `PUBLIC_ORIGINS`, or else the URL Cloudflare routed here. `None`
    /// when the Host is not one of the configured origins.
    own_origin: Option<String>,
}

impl Ctx {
    pub fn new(req: &Request, env: Env, exec: worker::Context) -> Self {
        // Cloudflare's ray id is what operators search logs by; locally there
        // is none, so mint one.
        let request_id = req
            .headers()
            .get("cf-ray")
            .ok()
            .flatten()
            .unwrap_or_else(|| random_hex(8));
        // Read (once per isolate) before anything logs, so LOG_LEVEL holds
        // even for routes that never look at the configuration.
        let config = runtime::config(&env).ok();
        let url = req.inner().url();
        let url_origin = crate::uri::origin(&url).unwrap_or_default().to_string();
        let own_origin = match config.map(|c| &c.public_origins) {
            Some(own) if !own.is_empty() => own
                .iter()
                .find(|o| o.eq_ignore_ascii_case(&url_origin))
                .cloned(),
            _ => Some(url_origin),
        };
        let trace = crate::trace::Trace::continued(
            req.headers().get("traceparent").ok().flatten().as_deref(),
        );
        Ctx {
            env,
            trace,
            exec,
            request_id,
            started_ms: worker::Date::now().as_millis(),
            user_hash: std::cell::RefCell::new(None),
            actor: std::cell::RefCell::new(None),
            // The method as sent: worker's `Method` maps every method it
            // does not know (PURGE, PROPFIND, …) to GET.
            method: req.inner().method(),
            path: req.path(),
            origin: req.headers().get("origin").ok().flatten(),
            own_origin,
        }
    }

    /// Whether the caller's origin may use the API: no `Origin` (not a
    /// browser), this deployment's own origin (its web client), or one on
    /// the allowlist. Without configuration only the first two pass.
    pub fn origin_allowed(&self) -> bool {
        match &self.origin {
            None => true,
            Some(o)
                if self
                    .own_origin
                    .as_deref()
                    .is_some_and(|own| o.eq_ignore_ascii_case(own)) =>
            {
                true
            }
            Some(o) => self.config().is_ok_and(|c| c.origins.allows(o)),
        }
    }

    /// Whether the request was addressed to one of the deployment's own
    /// origins (always, when `PUBLIC_ORIGINS` is not set).
    pub fn host_allowed(&self) -> bool {
        self.own_origin.is_some()
    }

    /// The CORS preflight answer. The router has already refused origins
    /// not on the allowlist; without an `Origin` it is no preflight at all.
    pub fn preflight(&self) -> HandlerResult {
        if self.origin.is_none() {
            return Err(AppError::OriginNotAllowed);
        }
        let mut r = Response::empty()
            .map_err(AppError::internal)?
            .with_status(204);
        let h = r.headers_mut();
        let _ = h.set(
            "access-control-allow-methods",
            "GET, HEAD, POST, PUT, PATCH, DELETE",
        );
        let _ = h.set(
            "access-control-allow-headers",
            "authorization, content-type",
        );
        let _ = h.set("access-control-max-age", "600");
        Ok(r)
    }

    pub fn config(&self) -> Result<&'static Config, &'static ConfigError> {
        runtime::config(&self.env)
    }

    /// The configuration, or 503 for routes that cannot serve without it.
    pub fn require_config(&self) -> Result<&'static Config, AppError> {
        self.config()
            .map_err(|_| AppError::Unavailable { check: "config" })
    }

    /// Applies the per-IP HTTP rate limit (the `HTTP_RATE_LIMITER` Rate
    /// Limiting binding, keyed by the client IP Cloudflare reports). Without
    /// the binding there is no per-IP limit; readiness reports that.
    pub async fn rate_limit(&self, req: &Request, applies: bool) -> Result<(), AppError> {
        if !applies {
            return Ok(());
        }
        let Ok(limiter) = self.env.rate_limiter(crate::bindings::HTTP_RATE_LIMITER) else {
            return Ok(());
        };
        let ip = req
            .headers()
            .get("cf-connecting-ip")
            .ok()
            .flatten()
            .unwrap_or_else(|| "unknown".into());
        match limiter.limit(ip).await {
            Ok(outcome) if !outcome.success => Err(AppError::RateLimited {
                retry_after_s: self.config().map(|c| c.http_rate_period_s).unwrap_or(60),
            }),
            // A limiter that fails open keeps the API up; it is logged.
            Err(e) => {
                log(
                    LogLevel::Warn,
                    "rate_limiter_failed",
                    [("detail", Value::from(e.to_string()))],
                );
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    }

    /// The caller's identity from `Authorization: Bearer`. Tokens are never
    /// taken from URLs (they end up in logs and histories); browsers open
    /// sockets with a ticket instead (`api::tickets`).
    pub async fn authenticate(&self, req: &Request) -> Result<Identity, AppError> {
        let config = self.require_config()?;
        let header = req.headers().get("authorization").ok().flatten();
        let token = bearer(header.as_deref())?;
        let who = crate::identity::verify(&self.env, config, token, &self.trace).await?;
        self.identified(&who);
        Ok(who)
    }

    /// Notes who the caller is, for the request's log line.
    pub fn identified(&self, who: &Identity) {
        if let Ok(config) = self.config() {
            *self.user_hash.borrow_mut() = Some(user_hash(
                config.pseudonym_key.expose().as_bytes(),
                &who.user_id,
            ));
        }
    }

    /// Notes that `who` passed a route of level `access`; audited levels
    /// are written to the trail when the request ends.
    pub fn acting(&self, who: &Identity, access: Access) {
        if crate::audit::audited(access) {
            *self.actor.borrow_mut() = Some((who.user_id.clone(), access));
        }
    }

    /// The pseudonym noted by `identified`, if any.
    pub fn user_pseudonym(&self) -> Option<String> {
        self.user_hash.borrow().clone()
    }

    /// Work to finish after the response (`wait_until`).
    pub fn after_response(&self, f: impl std::future::Future<Output = ()> + 'static) {
        self.exec.wait_until(f);
    }

    /// Whether `who` holds the configured admin role.
    pub fn is_admin(&self, who: &Identity) -> bool {
        self.config().is_ok_and(|c| who.has_role(&c.admin_role))
    }

    /// The caller's identity, which must hold the configured admin role.
    /// Non-admins get 404: admin routes do not reveal themselves.
    pub async fn require_admin(&self, req: &Request) -> Result<Identity, AppError> {
        let who = self.authenticate(req).await?;
        if self.is_admin(&who) {
            Ok(who)
        } else {
            Err(AppError::NotFound)
        }
    }

    /// Turns a handler's result into the response, adds the common headers
    /// and writes the request's log line: request id, route, status,
    /// duration, session id and the caller's pseudonym. Never bodies,
    /// tokens, query strings or message text. (Long, and kept whole: it is
    /// the one place every response passes, so what it adds is read at once.)
    pub fn finish(&self, route: Option<&Route>, result: HandlerResult) -> worker::Result<Response> {
        let (mut response, code, detail) = match result {
            Ok(r) => (r, None, None),
            Err(e) => {
                let body = e.body(&self.request_id);
                let mut r =
                    json(e.status(), &body).map_err(|e| worker::Error::RustError(e.to_string()))?;
                if let AppError::RateLimited { retry_after_s }
                | AppError::Quota { retry_after_s, .. } = e
                {
                    let _ = r
                        .headers_mut()
                        .set("retry-after", &retry_after_s.to_string());
                }
                if e == AppError::MethodNotAllowed {
                    // RFC 9110 15.5.6: a 405 names the methods that work.
                    let allow = crate::router::allowed_methods(&self.path).join(", ");
                    let _ = r.headers_mut().set("allow", &allow);
                }
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
            // API answers are never framed; pages bring their own policy.
            if !h.has("content-security-policy").unwrap_or(false) {
                let _ = h.set("content-security-policy", "frame-ancestors 'none'");
            }
            let _ = h.set("cache-control", "no-store");
            // Responses differ by origin, so caches must key on it.
            let _ = h.set("vary", "Origin");
            if let (Some(origin), true) = (&self.origin, self.origin_allowed()) {
                let _ = h.set("access-control-allow-origin", origin);
                let _ = h.set("access-control-expose-headers", "x-request-id, retry-after");
            }
            if let Ok(c) = self.config() {
                if c.hsts_max_age > 0 {
                    let _ = h.set(
                        "strict-transport-security",
                        &format!("max-age={}; includeSubDomains", c.hsts_max_age),
                    );
                }
            }
        }
        let duration_ms = worker::Date::now()
            .as_millis()
            .saturating_sub(self.started_ms);
        let actor = self.actor.borrow_mut().take();
        crate::api::audit::finished(self, route, status, code, actor);
        if crate::api::metrics::record(route.map(|r| r.name()), status, code, duration_ms) {
            let env = self.env.clone();
            self.exec
                .wait_until(async move { crate::api::metrics::flush(&env).await });
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
                ("trace_id", Value::from(self.trace.trace_id())),
                ("method", Value::from(self.method.as_str())),
                // The path only when no route matched, and then only its
                // shape: known routes are named, and any path may hold user
                // ids or e-mail addresses.
                (
                    "path",
                    match route {
                        Some(_) => Value::Null,
                        None => Value::from(crate::router::redacted_path(&self.path)),
                    },
                ),
                (
                    "route",
                    route.map(|r| Value::from(r.name())).unwrap_or(Value::Null),
                ),
                (
                    "session",
                    route
                        .and_then(|r| r.session_id())
                        .map(Value::from)
                        .unwrap_or(Value::Null),
                ),
                (
                    "user",
                    self.user_hash
                        .borrow()
                        .clone()
                        .map(Value::from)
                        .unwrap_or(Value::Null),
                ),
                ("status", Value::from(status)),
                ("duration_ms", Value::from(duration_ms)),
                ("code", code.map(Value::from).unwrap_or(Value::Null)),
                ("detail", detail.map(Value::from).unwrap_or(Value::Null)),
            ],
        );
        Ok(response)
    }
}

/// A JSON response with the given status.
pub fn json<T: Serialize>(status: u16, body: &T) -> HandlerResult {
    json_text(
        status,
        serde_json::to_string(body).map_err(AppError::internal)?,
    )
}

/// A response of JSON text already serialized. Not generic, so the
/// response is built by one copy of this code whatever the body's type
/// (worker's `Response::from_json` is one copy per type).
pub fn json_text(status: u16, text: String) -> HandlerResult {
    Ok(worker::ResponseBuilder::new()
        .with_status(status)
        .with_header("content-type", "application/json")
        .map_err(AppError::internal)?
        .fixed(text.into_bytes()))
}

/// True when the request asks for a WebSocket upgrade.
pub fn is_websocket_upgrade(headers: &Headers) -> bool {
    headers
        .get("upgrade")
        .ok()
        .flatten()
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Largest JSON request body accepted by the HTTP API.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Reads and parses a JSON body: 413 past `MAX_BODY_BYTES`, 400 `invalid_json`
/// for anything that does not parse into `T` (the parser's message says why).
pub async fn read_json<T: DeserializeOwned>(req: &mut Request) -> Result<T, AppError> {
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(AppError::PayloadTooLarge);
    }
    let body = req
        .bytes()
        .await
        .map_err(|_| AppError::bad_request("invalid_body", "request body could not be read"))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(AppError::PayloadTooLarge);
    }
    let invalid = |e: serde_json::Error| {
        let msg: String = e.to_string().chars().take(200).collect();
        AppError::bad_request("invalid_json", format!("invalid JSON body: {msg}"))
    };
    // serde reads a struct from an array too (fields by position); every
    // body this API takes is an object, so nothing else gets that far.
    match serde_json::from_slice::<Value>(&body).map_err(invalid)? {
        v @ Value::Object(_) => serde_json::from_value(v).map_err(invalid),
        _ => Err(AppError::bad_request(
            "invalid_json",
            "the request body must be a JSON object",
        )),
    }
}

/// The first value of a query parameter.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    crate::uri::query_param(&req.inner().url(), name)
}
