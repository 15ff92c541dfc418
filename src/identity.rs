//! Token verification at runtime: the configured keys plus an identity
//! provider's JWKS, fetched with `fetch` and cached.
//!
//! Cache layers: this isolate's memory, then KV (shared by every isolate
//! in a location, and kept after it goes stale as the last good copy).
//! A JWKS older than `JWT_JWKS_CACHE_SECONDS` is fetched again; a token
//! with an unknown `kid` forces a fetch at most once per
//! `JWT_JWKS_REFETCH_MIN_SECONDS`, so forged kids cannot make Confab hammer
//! the provider. When the provider is down, the last good copy is used.
//!
//! RS256, ES256 and EdDSA signatures are checked with the runtime's
//! WebCrypto (`crypto.subtle`), so the worker links no RSA or elliptic
//! curve code; imported keys are kept per isolate.

use crate::auth::jwks::{parse_jwks, Alg, Jwk, MAX_KEYS};
use crate::auth::jwt::SignatureCheck;
use crate::auth::{self, AuthError, Identity, Keys};
use crate::config::{Config, LogLevel};
use crate::runtime::{log, timeout};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::{prelude::wasm_bindgen, JsValue};
use worker::js_sys::{Array, Promise, Uint8Array, JSON};
use worker::wasm_bindgen_futures::JsFuture;
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
    /// Keys imported into WebCrypto, so a token does not pay for an
    /// import (an RSA key's is the dearer half of a check).
    static IMPORTED: RefCell<Vec<(Jwk, JsValue)>> = const { RefCell::new(Vec::new()) };
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
/// `trace` is the request's span: a JWKS fetch is a child of it.
pub async fn verify(
    env: &Env,
    config: &Config,
    token: &str,
    trace: &crate::trace::Trace,
) -> Result<Identity, AuthError> {
    let jwt = &config.jwt;
    let now = worker::Date::now().as_millis();
    let hmac = jwt.hs256_secret.as_ref().map(|s| s.expose().as_bytes());
    let visitor = config.visitors.as_ref().map(|v| v.key.expose().as_bytes());
    let Some(url) = jwt.jwks_url.as_deref() else {
        let sets: [&[Jwk]; 1] = [&jwt.inline_keys];
        let keys = Keys {
            hmac,
            jwks: &sets,
            visitor,
        };
        return auth::verify(token, keys, &jwt.policy, now as i64, &WebCrypto).await;
    };
    // HS256 tokens need no fetched keys; do not fetch for them.
    let needs_remote = !matches!(auth::jwt::header(token), Ok((auth::jwks::Alg::Hs256, _)));
    let remote = if needs_remote {
        remote_keys(env, config, url, false, trace).await?
    } else {
        Rc::new(Vec::new())
    };
    let attempt = |remote: Rc<Vec<Jwk>>| async move {
        let sets: [&[Jwk]; 2] = [&jwt.inline_keys, &remote];
        let keys = Keys {
            hmac,
            jwks: &sets,
            visitor,
        };
        auth::verify(token, keys, &jwt.policy, now as i64, &WebCrypto).await
    };
    match attempt(remote).await {
        Err(AuthError::UnknownKey) => {
            // The provider may have rotated keys since the copy we hold.
            let fresh = remote_keys(env, config, url, true, trace).await?;
            attempt(fresh).await
        }
        other => other,
    }
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = importKey, catch)]
    fn import_key(
        format: &str,
        key: &JsValue,
        algorithm: &JsValue,
        extractable: bool,
        usages: &Array,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = verify, catch)]
    fn subtle_verify(
        algorithm: &JsValue,
        key: &JsValue,
        signature: &Uint8Array,
        data: &Uint8Array,
    ) -> Result<Promise, JsValue>;
}

/// The runtime's WebCrypto as `jwt::verify`'s signature check.
struct WebCrypto;

impl WebCrypto {
    /// WebCrypto's names for a key's algorithm: (for importKey, for verify).
    fn algorithms(alg: Alg) -> Option<(&'static str, &'static str)> {
        Some(match alg {
            Alg::Rs256 => (
                r#"{"name":"RSASSA-PKCS1-v1_5","hash":"SHA-256"}"#,
                r#"{"name":"RSASSA-PKCS1-v1_5"}"#,
            ),
            Alg::Es256 => (
                r#"{"name":"ECDSA","namedCurve":"P-256"}"#,
                r#"{"name":"ECDSA","hash":"SHA-256"}"#,
            ),
            Alg::EdDsa => (r#"{"name":"Ed25519"}"#, r#"{"name":"Ed25519"}"#),
            Alg::Hs256 => return None,
        })
    }

    /// The key imported for verifying, from this isolate's cache or anew.
    /// A key WebCrypto refuses (a point off the curve, say) is None.
    async fn imported(key: &Jwk, import_as: &str) -> Option<JsValue> {
        let cached = IMPORTED.with(|c| {
            c.borrow()
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        });
        if cached.is_some() {
            return cached;
        }
        let jwk = JSON::parse(&key.key.to_jwk().to_string()).ok()?;
        let algorithm = JSON::parse(import_as).ok()?;
        let usages = Array::of1(&JsValue::from_str("verify"));
        let promise = import_key("jwk", &jwk, &algorithm, false, &usages).ok()?;
        let imported = JsFuture::from(promise).await.ok()?;
        IMPORTED.with(|c| {
            let mut c = c.borrow_mut();
            // Bounded: two full key sets (the one in use and its successor).
            if c.len() >= 2 * MAX_KEYS {
                c.clear();
            }
            c.push((key.clone(), imported.clone()));
        });
        Some(imported)
    }
}

impl SignatureCheck for WebCrypto {
    async fn check(&self, key: &Jwk, message: &[u8], signature: &[u8]) -> bool {
        let Some((import_as, verify_as)) = Self::algorithms(key.alg) else {
            return false;
        };
        let Some(imported) = Self::imported(key, import_as).await else {
            return false;
        };
        let Ok(algorithm) = JSON::parse(verify_as) else {
            return false;
        };
        // Copies, not views of wasm memory: the check is asynchronous.
        let (signature, data) = (Uint8Array::from(signature), Uint8Array::from(message));
        let Ok(promise) = subtle_verify(&algorithm, &imported, &signature, &data) else {
            return false;
        };
        // A malformed signature rejects or resolves false; either way it
        // does not verify.
        JsFuture::from(promise)
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }
}

/// The JWKS at `url`: from this isolate's memory or KV while fresh, else
/// fetched (at most once per `JWT_JWKS_REFETCH_MIN_SECONDS` for an unknown
/// `kid`), falling back to the last good copy when the fetch fails. (Long:
/// the cache tiers and the fallback read best as one sequence.)
async fn remote_keys(
    env: &Env,
    config: &Config,
    url: &str,
    unknown_kid: bool,
    trace: &crate::trace::Trace,
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
    let kv = env.kv(crate::bindings::KV).ok();
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
    match fetch_jwks(url, &trace.child().header()).await {
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
                // As bytes: `put` of a String goes through serde and float
                // formatting for nothing.
                let json = serde_json::to_string(&stored).unwrap_or_default();
                if let Ok(put) = kv.put_bytes(&kv_key(url), json.as_bytes()) {
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
async fn fetch_jwks(url: &str, traceparent: &str) -> Result<(String, Vec<Jwk>), String> {
    let headers = Headers::new();
    let _ = headers.set("accept", "application/json");
    let _ = headers.set("traceparent", traceparent);
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
