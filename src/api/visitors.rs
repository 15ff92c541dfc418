//! `POST /v1/visitors`: an identity for someone without an account
//! (`crate::auth::visitor`), as the embeddable widget asks for one.
//!
//! A new visitor is counted against its client address's daily cap (in
//! D1, by a keyed hash of the address) and, with Turnstile configured,
//! must bring an answer that Turnstile's siteverify accepts. A returning
//! visitor brings the credential it was given instead, and gets a fresh
//! token for the same id: no challenge, no count.

use crate::auth::visitor::{self, Visitors};
use crate::error::AppError;
use crate::http::{json, read_json, Ctx, HandlerResult};
use crate::ids::random_hex;
use crate::runtime::{log, timeout};
use crate::store::{self, now_ms, quota::Daily};
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Fetch, Headers, Method, Request, RequestInit};

/// The most conversations of one visitor a link reaches.
const MAX_LINKED_SESSIONS: u32 = 100;

/// How long siteverify may take before the visitor is told to retry.
const TURNSTILE_TIMEOUT_MS: u64 = 5_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewVisitor {
    /// The name the visitor gives (the widget's pre-chat form).
    #[serde(default)]
    name: Option<String>,
    /// A returning visitor's credential.
    #[serde(default)]
    visitor: Option<String>,
    /// The Turnstile widget's answer (`cf-turnstile-response`).
    #[serde(default)]
    turnstile_token: Option<String>,
}

/// POST /v1/visitors
///
/// `{"name"?, "visitor"?, "turnstile_token"?}` → `{token, user_id, name,
/// expires_in, visitor, visitor_expires_at}`: 201 for a new visitor, 200
/// for a returning one. 404 unless `ALLOW_VISITORS=on`.
pub async fn create(mut req: Request, ctx: &Ctx) -> HandlerResult {
    let config = ctx.require_config()?;
    let settings = config.visitors.as_ref().ok_or(AppError::NotFound)?;
    let input = read_json::<NewVisitor>(&mut req).await?;
    let name = visitor::name(input.name.as_deref())
        .map_err(|m| AppError::bad_request("invalid_name", m))?;
    let key = settings.key.expose().as_bytes();
    let now = now_ms();
    let (id, status) = match input.visitor.as_deref() {
        Some(credential) => {
            let id = visitor::redeem(key, credential, now)
                .ok_or(AppError::Unauthorized("invalid_visitor"))?;
            (id, 200)
        }
        None => {
            let ip = req.headers().get("cf-connecting-ip").ok().flatten();
            let ip = ip.unwrap_or_else(|| "unknown".into());
            if let Some(turnstile) = &settings.turnstile {
                let answer = input.turnstile_token.as_deref().unwrap_or("");
                challenge(turnstile, answer, &ip).await?;
            }
            let home = store::db(&ctx.env, config.shards.home())?;
            let ip_hash = crate::auth::user_hash(config.pseudonym_key.expose().as_bytes(), &ip);
            store::quota::take(
                &home,
                Daily::Visitors,
                &ip_hash,
                now,
                settings.per_ip_per_day,
            )
            .await?;
            (visitor::new_id(random_hex), 201)
        }
    };
    json(status, &answer(settings, &id, &name, now))
}

/// POST /v1/service/visitors/{visitor_id}/link
///
/// The product's backend, once a visitor has signed in: `{"user_id": …}`
/// (their account) becomes a member of each of the visitor's conversations
/// (the newest 100), so the account sees and continues them. The visitor
/// keeps them too. Idempotent: `200 {"visitor_id", "user_id", "sessions"}`.
pub async fn link(
    mut req: Request,
    ctx: &Ctx,
    visitor_id: &str,
    grant: super::access::Grant,
) -> HandlerResult {
    if !visitor::is_visitor_id(visitor_id) {
        return Err(AppError::bad_request(
            "invalid_visitor_id",
            "the path names no visitor (visitor- and 32 hex digits)",
        ));
    }
    let input = read_json::<crate::model::NewMember>(&mut req).await?;
    let user = crate::ids::UserId::parse(input.user_id).ok_or_else(crate::ids::UserId::refused)?;
    if visitor::is_visitor_id(user.as_str()) {
        return Err(AppError::bad_request(
            "invalid_user_id",
            "user_id must be an account's, not another visitor's",
        ));
    }
    let config = ctx.require_config()?;
    let dbs = store::all(&ctx.env, &config.shards)?;
    let sessions = store::sessions::owned_by(&dbs, visitor_id, MAX_LINKED_SESSIONS).await?;
    // The service acts as an admin in the sessions it reaches (as for its
    // other routes), so the owner-level member change is allowed.
    let caller = crate::contract::Caller {
        user: crate::protocol::UserRef {
            id: grant.who.user_id.clone(),
            name: grant.who.name.clone(),
        },
        admin: true,
        need: crate::router::Access::Service,
    };
    for id in &sessions {
        super::members::add_to(ctx, id, caller.clone(), &user).await?;
    }
    json(
        200,
        &json!({ "visitor_id": visitor_id, "user_id": user.as_str(), "sessions": sessions }),
    )
}

fn answer(settings: &Visitors, id: &str, name: &str, now: i64) -> Value {
    let key = settings.key.expose().as_bytes();
    let ttl = settings.token_ttl_s as i64;
    // A returning visitor's credential is renewed too, so one who keeps
    // coming back stays recognised.
    let (credential, ends) = visitor::credential(key, id, now, settings.remember_days);
    json!({
        "token": visitor::mint(key, id, name, now, ttl),
        "user_id": id,
        "name": name,
        "expires_in": ttl,
        "visitor": credential,
        "visitor_expires_at": ends,
    })
}

/// Checks a Turnstile answer with siteverify: 400 `turnstile_required`
/// without one, 403 `turnstile_failed` when refused, 503 when siteverify
/// cannot be reached in time.
async fn challenge(turnstile: &visitor::Turnstile, answer: &str, ip: &str) -> Result<(), AppError> {
    // Turnstile's answers are at most 2048 characters (its documentation).
    if answer.is_empty() || answer.len() > 2048 {
        return Err(AppError::bad_request(
            "turnstile_required",
            "a Turnstile answer (turnstile_token, at most 2048 characters) is required",
        ));
    }
    let body = format!(
        "secret={}&response={}&remoteip={}",
        form_encode(turnstile.secret.expose()),
        form_encode(answer),
        form_encode(ip)
    );
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/x-www-form-urlencoded");
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let unavailable = AppError::Unavailable { check: "turnstile" };
    let request =
        Request::new_with_init(&turnstile.verify_url, &init).map_err(|_| unavailable.clone())?;
    // A siteverify that does not answer in time is cut off, as a link
    // preview's fetch is, not left running after the response.
    let controller = worker::AbortController::default();
    let signal = controller.signal();
    let verified = timeout(TURNSTILE_TIMEOUT_MS, async {
        let mut res = Fetch::Request(request)
            .send_with_signal(&signal)
            .await
            .ok()?;
        if res.status_code() != 200 {
            return None;
        }
        res.json::<Value>().await.ok()
    })
    .await
    .flatten();
    let Some(outcome) = verified else {
        controller.abort();
        log(crate::config::LogLevel::Warn, "turnstile_unavailable", []);
        return Err(unavailable);
    };
    if !visitor::turnstile_passed(&outcome) {
        log(
            crate::config::LogLevel::Info,
            "turnstile_failed",
            [(
                "errors",
                outcome.get("error-codes").cloned().unwrap_or(Value::Null),
            )],
        );
        return Err(AppError::ChallengeFailed);
    }
    Ok(())
}

/// `encodeURIComponent`, for the form body.
fn form_encode(s: &str) -> String {
    String::from(worker::js_sys::encode_uri_component(s))
}
