//! Webhook endpoints, for admins (`crate::webhooks`): create, list, read,
//! change (URL, events, description, enabled, a new secret), delete, and
//! read the delivery log. A secret is shown once, when it is made; it is
//! stored sealed.

use crate::error::AppError;
use crate::http::{json, query_param, read_json, Ctx, HandlerResult};
use crate::router::WebhookVerb;
use crate::store::webhooks::{self as db, EndpointRow};
use crate::store::{self, now_ms};
use crate::webhooks::deliver::secret_aad;
use crate::webhooks::{
    check_url, gate, new_endpoint_id, new_secret, Filter, Invalid, MAX_DESCRIPTION_CHARS,
    MAX_ENDPOINTS,
};
use serde::{Deserialize, Serialize};
use worker::Request;

/// Log rows per page unless `limit` says otherwise, and the most.
const DEFAULT_LOG_ROWS: u32 = 50;
const MAX_LOG_ROWS: u32 = 200;

/// What a create or update may set; absent fields keep their value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
    enabled: Option<bool>,
    /// Update only: replace the secret (the new one is in the answer).
    #[serde(default)]
    rotate_secret: bool,
}

/// An endpoint as the API shows it.
#[derive(Serialize)]
struct Shown<'a> {
    id: &'a str,
    url: &'a str,
    events: Vec<&'static str>,
    description: &'a str,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
    /// Only when just made.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
}

fn shown<'a>(e: &'a EndpointRow, secret: Option<&'a str>) -> Shown<'a> {
    Shown {
        id: &e.id,
        url: &e.url,
        events: e.filter().names(),
        description: &e.description,
        enabled: e.enabled == 1,
        created_at: e.created_at,
        updated_at: e.updated_at,
        secret,
    }
}

fn refused(i: Invalid) -> AppError {
    AppError::bad_request("invalid_webhook", i.message())
}

/// POST, GET /v1/admin/webhooks; GET, PATCH, DELETE
/// /v1/admin/webhooks/{webhook}; GET /v1/admin/webhooks/{webhook}/deliveries
pub async fn serve(
    mut req: Request,
    ctx: &Ctx,
    verb: WebhookVerb,
    id: Option<&str>,
) -> HandlerResult {
    let config = ctx.require_config()?;
    let home = store::db(&ctx.env, config.shards.home())?;
    // The table gives every verb but these two a `{webhook}`.
    let id = || id.ok_or_else(|| AppError::internal("no webhook in the path"));
    match verb {
        WebhookVerb::List => {
            let all = db::list(&home).await?;
            let shown: Vec<Shown> = all.iter().map(|e| shown(e, None)).collect();
            json(200, &serde_json::json!({ "webhooks": shown }))
        }
        WebhookVerb::Get => {
            let e = db::get(&home, id()?).await?.ok_or(AppError::NotFound)?;
            json(200, &shown(&e, None))
        }
        WebhookVerb::Create => {
            let s: Settings = read_json(&mut req).await?;
            let url = s.url.clone().ok_or_else(|| refused(Invalid::Url))?;
            let now = now_ms();
            let mut e = EndpointRow {
                id: new_endpoint_id(),
                url,
                events: "*".into(),
                description: String::new(),
                secret: String::new(),
                enabled: 1,
                created_at: now,
                updated_at: now,
            };
            apply(&mut e, &s, config.webhooks.allow_http)?;
            let secret = new_secret();
            e.secret = config.keyring.seal(&secret_aad(&e.id), &secret);
            let done = db::insert(&home, &e).await?;
            // After the write, so no reading in between outlives it.
            gate::forget();
            if !done {
                return Err(AppError::bad_request(
                    "too_many_webhooks",
                    format!("a deployment has at most {MAX_ENDPOINTS} webhook endpoints"),
                ));
            }
            json(201, &shown(&e, Some(&secret)))
        }
        WebhookVerb::Update => {
            let s: Settings = read_json(&mut req).await?;
            let mut e = db::get(&home, id()?).await?.ok_or(AppError::NotFound)?;
            apply(&mut e, &s, config.webhooks.allow_http)?;
            let secret = s.rotate_secret.then(new_secret);
            if let Some(secret) = &secret {
                e.secret = config.keyring.seal(&secret_aad(&e.id), secret);
            }
            e.updated_at = now_ms().max(e.updated_at);
            let done = db::update(&home, &e).await?;
            // After the write, so no reading in between outlives it.
            gate::forget();
            if !done {
                return Err(AppError::NotFound);
            }
            json(200, &shown(&e, secret.as_deref()))
        }
        WebhookVerb::Delete => {
            let done = db::delete(&home, id()?).await?;
            // After the write, so no reading in between outlives it.
            gate::forget();
            if !done {
                return Err(AppError::NotFound);
            }
            Ok(worker::Response::empty()
                .map_err(AppError::internal)?
                .with_status(204))
        }
        WebhookVerb::Deliveries => {
            let id = id()?;
            db::get(&home, id).await?.ok_or(AppError::NotFound)?;
            let limit = match query_param(&req, "limit") {
                None => DEFAULT_LOG_ROWS,
                Some(l) => l
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LOG_ROWS).contains(n))
                    .ok_or_else(|| {
                        AppError::bad_request(
                            "invalid_limit",
                            format!("limit must be 1-{MAX_LOG_ROWS}"),
                        )
                    })?,
            };
            let before = match query_param(&req, "before") {
                None => None,
                Some(b) => Some(b.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    AppError::bad_request(
                        "invalid_before",
                        "before must be a positive unix time in ms",
                    )
                })?),
            };
            let rows = db::deliveries(&home, id, limit, before).await?;
            let next_before = (rows.len() == limit as usize)
                .then(|| rows.last().map(|r| r.at))
                .flatten();
            json(
                200,
                &serde_json::json!({ "deliveries": rows, "next_before": next_before }),
            )
        }
    }
}

/// Checks and applies the settings given.
fn apply(e: &mut EndpointRow, s: &Settings, allow_http: bool) -> Result<(), AppError> {
    if let Some(url) = &s.url {
        check_url(url, allow_http).map_err(refused)?;
        e.url = url.clone();
    }
    if let Some(events) = &s.events {
        e.events = Filter::parse(events).map_err(refused)?.stored();
    }
    if let Some(d) = &s.description {
        if d.chars().count() > MAX_DESCRIPTION_CHARS || d.chars().any(char::is_control) {
            return Err(refused(Invalid::Description));
        }
        e.description = d.clone();
    }
    if let Some(on) = s.enabled {
        e.enabled = i64::from(on);
    }
    Ok(())
}
