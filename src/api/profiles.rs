//! Assistant profiles, for admins (`crate::llm::profile`): list, read,
//! create or replace (`PUT`, the whole profile), delete. API keys are
//! sealed as they arrive and never shown again: an answer says only
//! whether a provider has a key of its own (`api_key_set`).

use crate::error::AppError;
use crate::http::{json, read_json, Ctx, HandlerResult};
use crate::llm::profile::{key_aad, Deployment, Profile, MAX_PROFILES};
use crate::llm::DEFAULT_PROFILE;
use crate::router::ProfileVerb;
use crate::store::profiles::{self as db, ProfileRow};
use crate::store::{self, now_ms};
use serde_json::{json, Value};
use worker::Request;

fn refused(why: impl Into<String>) -> AppError {
    AppError::bad_request("invalid_profile", why)
}

/// A profile as the API shows it: its keys replaced by whether each
/// provider has one.
fn shown(name: &str, p: &Profile, created_at: i64, updated_at: i64) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or_default();
    if let Some(chain) = v["chain"].as_array_mut() {
        for link in chain {
            let set = link
                .as_object_mut()
                .and_then(|l| l.remove("api_key"))
                .is_some();
            link["api_key_set"] = Value::Bool(set);
        }
    }
    v["name"] = Value::from(name);
    v["created_at"] = Value::from(created_at);
    v["updated_at"] = Value::from(updated_at);
    v
}

fn shown_row(row: &ProfileRow) -> Result<Value, AppError> {
    Ok(shown(
        &row.name,
        &row.profile()?,
        row.created_at,
        row.updated_at,
    ))
}

/// GET /v1/admin/profiles; GET, PUT, DELETE /v1/admin/profiles/{profile}
pub async fn serve(
    mut req: Request,
    ctx: &Ctx,
    verb: ProfileVerb,
    name: Option<&str>,
) -> HandlerResult {
    let config = ctx.require_config()?;
    let home = store::db(&ctx.env, config.shards.home())?;
    // The table gives every verb but List a `{profile}`.
    let name = || name.ok_or_else(|| AppError::internal("no profile in the path"));
    match verb {
        ProfileVerb::List => {
            let rows = db::list(&home).await?;
            let shown = rows.iter().map(shown_row).collect::<Result<Vec<_>, _>>()?;
            json(
                200,
                &json!({ "profiles": shown, "default": DEFAULT_PROFILE }),
            )
        }
        ProfileVerb::Get => {
            let row = db::get(&home, name()?).await?.ok_or(AppError::NotFound)?;
            json(200, &shown_row(&row)?)
        }
        ProfileVerb::Put => {
            let name = name()?;
            if name == DEFAULT_PROFILE {
                return Err(refused(
                    "`default` is the configuration's profile (LLM_*, ASSISTANT_*)",
                ));
            }
            let mut p: Profile = read_json(&mut req).await?;
            let deployment = Deployment {
                priced: (config.assistant.as_ref()).is_some_and(|a| !a.prices.is_empty()),
                allow_http: config.webhooks.allow_http,
                signs_tools: (config.assistant.as_ref()).is_some_and(|a| a.tool_secret.is_some()),
            };
            p.check(deployment).map_err(refused)?;
            for (i, link) in p.chain.iter_mut().enumerate() {
                if let Some(k) = &mut link.api_key {
                    *k = config.keyring.seal(&key_aad(name, i), k);
                }
            }
            let before = db::get(&home, name).await?;
            let now = now_ms();
            if !db::put(&home, name, &p, now).await? {
                return Err(AppError::bad_request(
                    "too_many_profiles",
                    format!("a deployment has at most {MAX_PROFILES} assistant profiles"),
                ));
            }
            let created_at = before.as_ref().map_or(now, |b| b.created_at);
            let status = if before.is_some() { 200 } else { 201 };
            json(status, &shown(name, &p, created_at, now))
        }
        ProfileVerb::Delete => {
            if !db::delete(&home, name()?).await? {
                return Err(AppError::NotFound);
            }
            Ok(worker::Response::empty()
                .map_err(AppError::internal)?
                .with_status(204))
        }
    }
}
