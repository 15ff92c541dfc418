//! Development conveniences. Every handler here answers 404 unless
//! ENVIRONMENT=development.

use crate::auth::{mint_hs256, Identity};
use crate::error::AppError;
use crate::http::{json, read_json, Ctx, HandlerResult};
use crate::ids::random_hex;
use crate::model::DevTokenRequest;
use crate::protocol::valid_client_id;
use serde_json::json;
use worker::Request;

/// GET /v1/client-config
///
/// What the bundled web pages need to know before signing in:
/// `{"dev_sign_in": bool, "assistant": bool}`. Public; reveals no secret.
pub fn client_config(ctx: &Ctx) -> HandlerResult {
    let config = ctx.require_config()?;
    json(
        200,
        &json!({
            "dev_sign_in": config.is_development() && config.jwt.hs256_secret.is_some(),
            "assistant": config.assistant.is_some(),
        }),
    )
}

/// Dev tokens last a day: long enough for a working session.
const DEV_TOKEN_TTL_S: i64 = 24 * 3600;

/// POST /v1/dev/token
///
/// Body `{"name": "...", "sub"?: "...", "roles"?: [...]}`; returns
/// `{"token", "user_id", "expires_in"}` signed with the configured secret.
pub async fn token(mut req: Request, ctx: &Ctx) -> HandlerResult {
    let config = ctx.require_config()?;
    if !config.is_development() {
        return Err(AppError::NotFound);
    }
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
    if !valid_client_id(&sub) {
        return Err(AppError::bad_request(
            "invalid_user_id",
            "sub must be 1-64 characters of A-Z a-z 0-9 - _ : .",
        ));
    }
    let identity = Identity {
        user_id: sub,
        name,
        roles: input.roles,
    };
    let now = worker::Date::now().as_millis() as i64;
    // Development signs with the HS256 secret; without one (JWKS-only
    // development) there is nothing to sign with.
    let secret = config.jwt.hs256_secret.as_ref().ok_or(AppError::NotFound)?;
    let token = mint_hs256(&identity, secret.expose().as_bytes(), now, DEV_TOKEN_TTL_S);
    json(
        200,
        &json!({ "token": token, "user_id": identity.user_id, "name": identity.name, "expires_in": DEV_TOKEN_TTL_S }),
    )
}
