//! What the bundled pages ask before signing in (`/v1/client-config`,
//! public in every environment), and development conveniences
//! (`/v1/dev/token`, `/v1/dev/fault`), which answer 404 unless
//! ENVIRONMENT=development (their level in the route table, `Access::Dev`).

use crate::auth::{mint_hs256, Identity};
use crate::error::AppError;
use crate::http::{json, read_json, Ctx, HandlerResult};
use crate::ids::random_hex;
use crate::ids::UserId;
use crate::model::DevTokenRequest;
use serde_json::json;
use worker::Request;

/// GET /v1/client-config
///
/// What the bundled web pages need to know before signing in:
/// `{"dev_sign_in": bool, "assistant": bool, "embed_origins": [...],
/// "visitors": bool, "turnstile_site_key": string|null}`.
/// `embed_origins` is the allowlist (`ALLOWED_ORIGINS`, exact origins and
/// `https://*.x` wildcards): the pages accept a token message only from a
/// parent frame at one of them. Public; reveals no secret.
pub fn client_config(ctx: &Ctx) -> HandlerResult {
    let config = ctx.require_config()?;
    json(
        200,
        &json!({
            "dev_sign_in": config.is_development() && config.jwt.hs256_secret.is_some(),
            "assistant": config.assistant.is_some(),
            "embed_origins": config.origins.csp_sources(),
            "visitors": config.visitors.is_some(),
            "turnstile_site_key": config.visitors.as_ref()
                .and_then(|v| v.turnstile.as_ref())
                .map(|t| t.site_key.as_str()),
        }),
    )
}

/// POST /v1/dev/fault
///
/// Development only: `{"in": "worker"}` panics in this request's handler;
/// `{"in": "session", "session": ID}` makes that session's object panic.
/// It shows what a panic costs (README, "What a panic costs"): the request
/// fails, the runtime resets the wasm state, and the next request is served.
pub async fn fault(mut req: Request, ctx: &Ctx) -> HandlerResult {
    #[derive(serde::Deserialize)]
    struct Fault {
        #[serde(rename = "in")]
        place: String,
        #[serde(default)]
        session: Option<String>,
    }
    let f = read_json::<Fault>(&mut req).await?;
    match (f.place.as_str(), f.session) {
        ("worker", _) => panic!("development fault injected in the worker"),
        ("session", Some(id)) if crate::ids::is_valid_session_id(&id) => {
            let fault = crate::contract::Call::Fault { session: id };
            crate::session::internal::call(ctx, &fault).await?;
            Err(AppError::internal("the session object survived its fault"))
        }
        _ => Err(AppError::bad_request(
            "invalid_fault",
            r#"{"in": "worker"} or {"in": "session", "session": ID}"#,
        )),
    }
}

/// Dev tokens last a day unless asked otherwise: long enough for a working
/// session. Shorter ones let a developer watch a socket outlive its token.
const DEV_TOKEN_TTL_S: i64 = 24 * 3600;
const DEV_TOKEN_TTL_RANGE: std::ops::RangeInclusive<i64> = 5..=DEV_TOKEN_TTL_S;

/// POST /v1/dev/token
///
/// Body `{"name": "...", "sub"?: "...", "roles"?: [...]}`; returns
/// `{"token", "user_id", "expires_in"}` signed with the configured secret.
pub async fn token(mut req: Request, ctx: &Ctx) -> HandlerResult {
    let config = ctx.require_config()?;
    let input = read_json::<DevTokenRequest>(&mut req).await?;
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_request(
            "invalid_name",
            "name must be 1-100 characters",
        ));
    }
    let sub = input
        .sub
        .unwrap_or_else(|| format!("dev-{}", random_hex(6)));
    let sub = UserId::parse(sub).ok_or_else(UserId::refused)?;
    let ttl = input.ttl_seconds.unwrap_or(DEV_TOKEN_TTL_S);
    if !DEV_TOKEN_TTL_RANGE.contains(&ttl) {
        return Err(AppError::bad_request(
            "invalid_ttl",
            format!(
                "ttl_seconds must be {}-{DEV_TOKEN_TTL_S}",
                DEV_TOKEN_TTL_RANGE.start()
            ),
        ));
    }
    let identity = Identity {
        user_id: sub.into_string(),
        name,
        roles: input.roles,
        expires_at: 0,
    };
    let now = worker::Date::now().as_millis() as i64;
    // Development signs with the HS256 secret; without one (JWKS-only
    // development) there is nothing to sign with.
    let secret = config.jwt.hs256_secret.as_ref().ok_or(AppError::NotFound)?;
    let token = mint_hs256(&identity, secret.expose().as_bytes(), now, ttl);
    json(
        200,
        &json!({ "token": token, "user_id": identity.user_id, "name": identity.name, "expires_in": ttl }),
    )
}
