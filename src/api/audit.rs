//! Security events in the log, and the admin audit trail (`crate::audit`):
//! written as a request ends, read through `GET /v1/admin/audit`.

use crate::audit::{Cursor, Entry, SecurityEvent, DEFAULT_PAGE, MAX_PAGE};
use crate::config::LogLevel;
use crate::error::AppError;
use crate::http::{json, query_param, Ctx, HandlerResult};
use crate::router::{Access, Endpoint, Route};
use crate::runtime::log;
use crate::store;
use serde_json::{json, Value};
use worker::{Env, Request};

/// As a request ends: a security event for a refusal or an audited
/// action, and the action's entry in the trail (written after the
/// response, through `wait_until`).
pub fn finished(
    ctx: &Ctx,
    route: Option<&Route>,
    status: u16,
    code: Option<&str>,
    actor: Option<(String, Access)>,
) {
    let refusal = code.and_then(|c| SecurityEvent::of_refusal(status, c));
    let audited = route.zip(actor);
    let event = match (&audited, refusal) {
        (Some((r, _)), _) if r.endpoint() == Endpoint::Reencrypt => {
            Some(SecurityEvent::KeyRotation)
        }
        (Some(_), _) => Some(SecurityEvent::AdminAction),
        (None, refusal) => refusal,
    };
    if let Some(event) = event {
        log(
            LogLevel::Warn,
            "security",
            [
                ("kind", Value::from(event.as_str())),
                ("request_id", Value::from(ctx.request_id.as_str())),
                ("trace_id", Value::from(ctx.trace.trace_id())),
                (
                    "route",
                    route.map_or(Value::Null, |r| Value::from(r.name())),
                ),
                ("status", Value::from(status)),
                ("code", code.map_or(Value::Null, Value::from)),
                (
                    "user",
                    ctx.user_pseudonym().map_or(Value::Null, Value::from),
                ),
            ],
        );
    }
    let Some((route, (actor_id, level))) = audited else {
        return;
    };
    let entry = Entry {
        id: crate::audit::new_entry_id(),
        at: store::now_ms(),
        actor_id,
        level: if level == Access::Service {
            "service"
        } else {
            "admin"
        }
        .into(),
        action: route.name().into(),
        method: ctx.method.clone(),
        target: (route.session_id().or(route.webhook).or(route.profile)).map(str::to_owned),
        status,
        request_id: ctx.request_id.clone(),
    };
    let env = ctx.env.clone();
    ctx.after_response(async move { write(&env, &entry).await });
}

async fn write(env: &Env, entry: &Entry) {
    // Without a configuration `home` fails too, so 0 here never keeps
    // anything by mistake.
    let days = crate::runtime::config(env).map_or(0, |c| i64::from(c.audit_retention_days));
    let written = match store::home(env) {
        Ok(db) => {
            let keep_before = (days > 0).then(|| entry.at - days * 86_400_000);
            store::audit::insert(&db, entry, keep_before).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        // The action happened; losing its entry is logged where operators
        // look, with what the entry held (no raw user id: the pseudonym
        // line above has the caller).
        log(
            LogLevel::Error,
            "audit_write_failed",
            [
                ("request_id", Value::from(entry.request_id.as_str())),
                ("action", Value::from(entry.action.as_str())),
                ("detail", Value::from(e.to_string())),
            ],
        );
    }
}

/// GET /v1/admin/audit?limit=&cursor=&action=&actor=
///
/// The trail, newest first: `{"entries": [...], "next_cursor"}`
/// (`next_cursor` is null on the last page).
pub async fn list(req: Request, ctx: &Ctx) -> HandlerResult {
    let config = ctx.require_config()?;
    let bad =
        |code: &'static str, what: &str| AppError::bad_request(code, format!("invalid {what}"));
    let limit = match query_param(&req, "limit") {
        None => DEFAULT_PAGE,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| bad("invalid_limit", "limit (1 to 200)"))?,
    };
    let cursor = match query_param(&req, "cursor") {
        None => None,
        Some(s) => Some(Cursor::parse(&s).ok_or_else(|| bad("invalid_cursor", "cursor"))?),
    };
    let action = query_param(&req, "action");
    if action
        .as_deref()
        .is_some_and(|a| !crate::audit::is_action(a))
    {
        return Err(bad("invalid_filter", "action"));
    }
    let actor = query_param(&req, "actor");
    if actor
        .as_deref()
        .is_some_and(|a| !crate::ids::is_valid_user_id(a))
    {
        return Err(bad("invalid_filter", "actor"));
    }
    let home = store::db(&ctx.env, config.shards.home())?;
    let mut entries = store::audit::list(
        &home,
        action.as_deref(),
        actor.as_deref(),
        cursor.as_ref(),
        limit + 1,
    )
    .await?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next = more.then(|| entries.last()).flatten().map(|e| {
        Cursor {
            at: e.at,
            id: e.id.clone(),
        }
        .encode()
    });
    json(200, &json!({ "entries": entries, "next_cursor": next }))
}
