//! Token verification at runtime: the configured keys plus an identity
//! provider's JWKS, fetched with `fetch` and cached.
//!
//! Cache layers: this isolate's memory, then KV (shared by every isolate
//! in a location, and kept after it goes stale as the last good copy).
//! A JWKS older than `JWT_JWKS_CACHE_SECONDS` is fetched again; a token
//! with an unknown `kid` forces a fetch at most once per
//! `JWT_JWKS_REFETCH_MIN_SECONDS`, so forged kids cannot make Confab hammer
//! the provider. When the provider is down, the last good copy is used.

use crate::auth::jwks::{parse_jwks, Jwk};
use crate::auth::{self, AuthError, Identity, Keys};
use crate::config::{Config, LogLevel};
use crate::runtime::{log, timeout};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

/// How long a JWKS fetch may take before the cached copy is used instead.
const FETCH_TIMEOUT_MS: u64 = 5_000;
/// The largest JWKS document read.
const MAX_JWKS_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct Cached {
    keys: Rc<Vec<Jwk>>,
    fetched_at: u64,
}

thread_local! {
    static MEMORY: RefCell<Option<Cached>> = const { RefCell::new(None) };
    /// When this isolate last tried a fetch (successful or not).
    static LAST_ATTEMPT: RefCell<u64> = const { RefCell::new(0) };
}

/// What KV holds: the document as fetched and when.
#[derive(Serialize, Deserialize)]
struct Stored {
    fetched_at: u64,
    jwks: String,
}

fn kv_key(url: &str) -> String {
    // Hashed so any URL makes a valid, bounded key.
    format!("jwks:{}", auth::user_hash(b"confab/jwks-cache", url))
}

/// The identity a bearer token proves, checked against every key source.
pub async fn verify(env: &Env, config: &Config, token: &str) -> Result<Identity, AuthError> {
    let jwt = &config.jwt;
    let now = worker::Date::now().as_millis();
    let hmac = jwt.hs256_secret.as_ref().map(|s| s.expose().as_bytes());
    let Some(url) = jwt.jwks_url.as_deref() else {
        let sets: [&[Jwk]; 1] = [&jwt.inline_keys];
        return auth::verify(token, Keys { hmac, jwks: &sets }, &jwt.policy, now as i64);
    };
    // HS256 tokens need no fetched keys; do not fetch for them.
    let needs_remote = !matches!(auth::jwt::header(token), Ok((auth::jwks::Alg::Hs256, _)));
    let remote = if needs_remote {
        remote_keys(env, config, url, false).await?
    } else {
        Rc::new(Vec::new())
    };
    let attempt = |remote: &[Jwk]| {
        let sets: [&[Jwk]; 2] = [&jwt.inline_keys, remote];
        auth::verify(token, Keys { hmac, jwks: &sets }, &jwt.policy, now as i64)
    };
    match attempt(&remote) {
        Err(AuthError::UnknownKey) => {
            // The provider may have rotated keys since the copy we hold.
            let fresh = remote_keys(env, config, url, true).await?;
            attempt(&fresh)
        }
        other => other,
    }
}

async fn remote_keys(
    env: &Env,
    config: &Config,
    url: &str,
    unknown_kid: bool,
) -> Result<Rc<Vec<Jwk>>, AuthError> {
    let jwt = &config.jwt;
    let now = worker::Date::now().as_millis();
    let ttl_ms = jwt.jwks_cache_seconds * 1000;
    let refetch_ms = jwt.jwks_refetch_min_seconds * 1000;
    let fresh = |c: &Cached| now.saturating_sub(c.fetched_at) < ttl_ms;

    let mut best = MEMORY.with(|m| m.borrow().clone());
    if let Some(c) = &best {
        if fresh(c) && !unknown_kid {
            return Ok(c.keys.clone());
        }
    }
    let kv = env.kv(crate::runtime::KV_BINDING).ok();
    if best.as_ref().is_none_or(|c| !fresh(c)) {
        if let Some(stored) = read_kv(kv.as_ref(), url).await {
            if best
                .as_ref()
                .is_none_or(|b| stored.fetched_at > b.fetched_at)
            {
                MEMORY.with(|m| *m.borrow_mut() = Some(stored.clone()));
                best = Some(stored);
            }
        }
    }
    if let Some(c) = &best {
        if fresh(c) && !unknown_kid {
            return Ok(c.keys.clone());
        }
        // Another isolate (or this one) fetched very recently: an unknown
        // kid now is a forgery or a key not published yet, not a rotation
        // we missed.
        if unknown_kid && now.saturating_sub(c.fetched_at) < refetch_ms {
            return Ok(c.keys.clone());
        }
    }
    let last = LAST_ATTEMPT.with(|l| *l.borrow());
    if now.saturating_sub(last) < refetch_ms && best.is_some() {
        return Ok(best.map(|c| c.keys).unwrap_or_default());
    }
    LAST_ATTEMPT.with(|l| *l.borrow_mut() = now);
    match fetch_jwks(url).await {
        Ok((text, keys)) => {
            let cached = Cached {
                keys: Rc::new(keys),
                fetched_at: now,
            };
            MEMORY.with(|m| *m.borrow_mut() = Some(cached.clone()));
            if let Some(kv) = &kv {
                let stored = Stored {
                    fetched_at: now,
                    jwks: text,
                };
                if let Ok(put) = kv.put(
                    &kv_key(url),
                    serde_json::to_string(&stored).unwrap_or_default(),
                ) {
                    if let Err(e) = put.execute().await {
                        log(
                            LogLevel::Warn,
                            "jwks_cache_write_failed",
                            [("detail", Value::from(e.to_string()))],
                        );
                    }
                }
            }
            log(
                LogLevel::Info,
                "jwks_fetched",
                [("keys", Value::from(cached.keys.len()))],
            );
            Ok(cached.keys)
        }
        Err(why) => {
            log(
                LogLevel::Warn,
                "jwks_fetch_failed",
                [
                    ("detail", Value::from(why)),
                    ("using_cached", Value::from(best.is_some())),
                ],
            );
            best.map(|c| c.keys).ok_or(AuthError::KeysUnavailable)
        }
    }
}

async fn read_kv(kv: Option<&worker::kv::KvStore>, url: &str) -> Option<Cached> {
    let text = kv?.get(&kv_key(url)).text().await.ok()??;
    let stored: Stored = serde_json::from_str(&text).ok()?;
    let keys = parse_jwks(&stored.jwks).ok()?;
    Some(Cached {
        keys: Rc::new(keys),
        fetched_at: stored.fetched_at,
    })
}

/// Fetches and parses the JWKS. The error says why, for the log (never the
/// document itself).
async fn fetch_jwks(url: &str) -> Result<(String, Vec<Jwk>), String> {
    let headers = Headers::new();
    let _ = headers.set("accept", "application/json");
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let req = Request::new_with_init(url, &init).map_err(|e| format!("request: {e}"))?;
    let mut res = timeout(FETCH_TIMEOUT_MS, Fetch::Request(req).send())
        .await
        .ok_or("timed out")?
        .map_err(|e| format!("unreachable: {e}"))?;
    if res.status_code() != 200 {
        return Err(format!("status {}", res.status_code()));
    }
    let bytes = res.bytes().await.map_err(|e| format!("body: {e}"))?;
    if bytes.len() > MAX_JWKS_BYTES {
        return Err("document too large".into());
    }
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let keys = parse_jwks(&text)?;
    if keys.is_empty() {
        return Err("no usable signing keys".into());
    }
    Ok((text, keys))
}
