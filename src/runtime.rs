//! Process-wide runtime glue: configuration cached per isolate, JSON-line
//! logging through the console (which Workers Logs and `wrangler tail`
//! collect), and what both Durable Objects do with sockets: one JS string
//! per frame for any number of sockets, and single-use tickets.

use crate::config::{Config, ConfigError, LogLevel};
use serde_json::{Map, Value};
use std::sync::OnceLock;
use wasm_bindgen::{prelude::wasm_bindgen, JsCast, JsValue};
use worker::{Env, WebSocket};

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

#[wasm_bindgen]
extern "C" {
    /// The JS WebSocket, bound so that `send` takes an existing JS string:
    /// worker's `send_with_str` would copy the frame across the wasm boundary
    /// once per recipient.
    type RawSocket;

    #[wasm_bindgen(method, catch, js_name = send)]
    fn send_value(this: &RawSocket, data: &JsValue) -> Result<(), JsValue>;
}

/// A frame that has crossed into JS once and can go to any number of sockets.
pub struct Frame(JsValue);

impl Frame {
    pub fn new(json: &str) -> Self {
        Frame(JsValue::from_str(json))
    }

    /// Sends to one socket. A closing socket refuses; that is not an error
    /// for anyone else, and its close event cleans up.
    pub fn send(&self, ws: &WebSocket) {
        let raw: &worker::web_sys::WebSocket = ws.as_ref();
        let _ = raw.unchecked_ref::<RawSocket>().send_value(&self.0);
    }
}

/// Sends one frame to one socket (for replies that go nowhere else).
pub fn send_to(ws: &WebSocket, json: &str) {
    let _ = ws.send_with_str(json);
}

/// Whether a socket whose token is accepted until `expires_at` (unix ms;
/// 0: never told) has outlived it at `now`. One rule for both objects.
pub fn token_expired(expires_at: u64, now: u64) -> bool {
    expires_at != 0 && expires_at <= now
}

/// Ends a socket whose token expired: `token_expired`, then close 4001.
/// The client reconnects at once with a fresh ticket, so nothing is missed.
pub fn end_expired(ws: &WebSocket) {
    send_to(ws, &crate::error::SocketError::TokenExpired.frame(None));
    let _ = ws.close(
        Some(crate::error::close::TOKEN_EXPIRED),
        Some("token_expired"),
    );
}

/// Admits a socket's ticket once: its id is kept in the object's own
/// storage until it expires, so a replay is refused even while KV, which
/// is eventually consistent, still returns the ticket. Session objects and
/// the desk object both keep such a table.
pub fn spend_ticket(
    sql: &worker::SqlStorage,
    t: &crate::contract::Ticket,
) -> Result<(), crate::error::AppError> {
    use crate::error::AppError;
    use worker::SqlStorageValue as V;
    let run = |q: &str, args: Vec<V>| sql.exec(q, args).map_err(AppError::internal);
    run(
        "CREATE TABLE IF NOT EXISTS spent_tickets (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)",
        vec![],
    )?;
    run(
        "DELETE FROM spent_tickets WHERE expires_at < ?",
        vec![V::Integer(worker::Date::now().as_millis() as i64)],
    )?;
    let inserted = run(
        "INSERT OR IGNORE INTO spent_tickets (id, expires_at) VALUES (?, ?)",
        vec![V::String(t.id.clone()), V::Integer(t.expires_at as i64)],
    )?
    .rows_written();
    if inserted == 0 {
        return Err(AppError::Unauthorized("ticket_used"));
    }
    Ok(())
}

/// The attachments' R2 bucket (`crate::attachment`).
pub fn files(env: &Env) -> Result<worker::Bucket, crate::error::AppError> {
    env.bucket(crate::bindings::FILES)
        .map_err(|_| crate::error::AppError::Unavailable { check: "r2" })
}

/// An attachment's bytes: its object `key` in R2, read and opened with the
/// AAD that binds it to its session and id. `NotFound` when it is gone
/// (erased with its message or session).
pub async fn read_file(
    bucket: &worker::Bucket,
    keys: &crate::crypto::Keyring,
    (session, id, key): (&str, &str, String),
) -> Result<Vec<u8>, crate::error::AppError> {
    use crate::crypto::{aad, Field};
    use crate::error::AppError;
    let object = bucket
        .get(key)
        .execute()
        .await
        .map_err(AppError::internal)?
        .ok_or(AppError::NotFound)?;
    let sealed = object
        .body()
        .ok_or(AppError::NotFound)?
        .bytes()
        .await
        .map_err(AppError::internal)?;
    keys.open_bytes(&aad(Field::AttachmentBody, session, Some(id)), &sealed)
        .map_err(|e| AppError::internal(format!("attachment {id}: {}", e.code())))
}
