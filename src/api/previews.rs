//! Link previews: the Worker fetches a page for a signed-in user and
//! returns what it says about itself (`crate::preview` has the rules).
//!
//! The fetch is bounded: only URLs `preview::check` passes, each redirect
//! checked again before it is followed (at most `MAX_REDIRECTS`), the
//! whole of it within `LINK_PREVIEW_TIMEOUT_MS`, and at most
//! `LINK_PREVIEW_MAX_BYTES` of the page read. A preview is kept in KV for
//! a day, so a link shown to many people is fetched once.

use crate::config::Previews;
use crate::error::AppError;
use crate::http::{json, json_text, query_param, Ctx, HandlerResult};
use crate::preview::{self, Preview, MAX_REDIRECTS};
use crate::runtime::timeout;
use futures::StreamExt;
use worker::{Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

/// How long a preview is kept in KV.
const CACHE_TTL_S: u64 = 86_400;

fn cache_key(url: &str) -> String {
    // Hashed so any URL makes a valid, bounded key.
    format!(
        "preview:{}",
        crate::auth::user_hash(b"confab/preview-cache", url)
    )
}

/// GET /v1/previews?url=
///
/// The preview of `url`: `{url, title, description, image, site_name}`.
/// 404 when `LINK_PREVIEWS` is off; 400 `invalid_url` or `url_not_allowed`;
/// 502 `preview_unavailable`; 504 `preview_timeout`.
pub async fn get(req: Request, ctx: &Ctx) -> HandlerResult {
    let config = ctx.require_config()?;
    let Some(settings) = &config.previews else {
        return Err(AppError::NotFound);
    };
    let url = query_param(&req, "url").unwrap_or_default();
    refuse(preview::check(&url, &settings.allow))?;
    let kv = ctx.env.kv(crate::bindings::KV).ok();
    let key = cache_key(&url);
    if let Some(kv) = &kv {
        if let Ok(Some(hit)) = kv.get(&key).text().await {
            return json_text(200, hit);
        }
    }
    let controller = worker::AbortController::default();
    let signal = controller.signal();
    let fetched = timeout(
        u64::from(settings.timeout_ms),
        fetch(&url, settings, &signal),
    )
    .await;
    let Some(found) = fetched else {
        controller.abort();
        return Err(AppError::PreviewFailed { timed_out: true });
    };
    let found = found?;
    let body = serde_json::to_string(&found).map_err(AppError::internal)?;
    if let Some(kv) = kv {
        // A cache that cannot be written costs a later fetch, nothing more.
        if let Ok(put) = kv.put(&key, body.as_str()) {
            let _ = put.expiration_ttl(CACHE_TTL_S).execute().await;
        }
    }
    json(200, &found)
}

fn refuse(checked: Result<(), preview::Refused>) -> Result<(), AppError> {
    checked.map_err(|r| AppError::bad_request(r.code(), r.message()))
}

/// Fetches `url`, following checked redirects, and reads its preview.
async fn fetch(
    url: &str,
    settings: &Previews,
    signal: &worker::AbortSignal,
) -> Result<Preview, AppError> {
    let failed = AppError::PreviewFailed { timed_out: false };
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let headers = Headers::new();
        let _ = headers.set("accept", "text/html,application/xhtml+xml");
        let _ = headers.set("user-agent", "ConfabLinkPreview/1");
        let mut init = RequestInit::new();
        init.with_method(Method::Get)
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual);
        let request = Request::new_with_init(&url, &init).map_err(|_| failed.clone())?;
        let mut res = Fetch::Request(request)
            .send_with_signal(signal)
            .await
            .map_err(|_| failed.clone())?;
        let status = res.status_code();
        if (300..400).contains(&status) {
            let location = res.headers().get("location").ok().flatten();
            let next = location.and_then(|l| preview::resolve(&url, &l));
            let next = next.ok_or_else(|| failed.clone())?;
            refuse(preview::check(&next, &settings.allow))?;
            url = next;
            continue;
        }
        let html = res
            .headers()
            .get("content-type")
            .ok()
            .flatten()
            .is_some_and(|t| t.contains("text/html") || t.contains("application/xhtml+xml"));
        if !(200..300).contains(&status) || !html {
            return Err(failed);
        }
        let page = read_capped(&mut res, settings.max_bytes as usize).await?;
        return Ok(preview::parse(&url, &page));
    }
    Err(failed)
}

/// At most `cap` bytes of the body, as text (a character cut at the cap
/// is dropped); the rest is never read.
async fn read_capped(res: &mut worker::Response, cap: usize) -> Result<String, AppError> {
    let failed = || AppError::PreviewFailed { timed_out: false };
    let mut stream = res.stream().map_err(|_| failed())?;
    let mut bytes: Vec<u8> = Vec::new();
    while bytes.len() < cap {
        match stream.next().await {
            Some(Ok(chunk)) => bytes.extend_from_slice(&chunk),
            Some(Err(_)) => return Err(failed()),
            None => break,
        }
    }
    bytes.truncate(cap);
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
