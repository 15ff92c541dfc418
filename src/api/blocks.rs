//! A user's blocks (`crate::moderation`): kept in the home shard, and
//! handed to the objects of the sessions the blocker is in, which hide
//! the blocked user's messages from them.

use super::access::Grant;
use crate::contract::Call;
use crate::error::AppError;
use crate::http::{json, Ctx, HandlerResult};
use crate::moderation::{BLOCK_FANOUT_SESSIONS, MAX_BLOCKS};
use crate::session::internal;
use crate::store::{self, blocks::Added, now_ms};
use serde_json::json;
use worker::Response;

/// `PUT /v1/me/blocks/{user}` (`on`): 201, or 200 when already blocked;
/// `DELETE` (not `on`): 204 whether or not there was a block. Either is
/// then handed to the blocker's sessions after the response; `?session=`
/// names one (the one the user is looking at) that has it before.
pub async fn change(
    ctx: &Ctx,
    grant: &Grant,
    (blocked, on): (&str, bool),
    here: Option<String>,
) -> HandlerResult {
    let me = grant.who.user_id.clone();
    if on && blocked == me {
        return Err(AppError::bad_request(
            "cannot_block_self",
            "you cannot block yourself",
        ));
    }
    let home = store::home(&ctx.env)?;
    let status = if on {
        match store::blocks::add(&home, (&me, blocked), now_ms(), MAX_BLOCKS).await? {
            Added::New => 201,
            Added::Already => 200,
            Added::Full => {
                return Err(AppError::bad_request(
                    "too_many_blocks",
                    format!("you can block at most {MAX_BLOCKS} people; unblock someone first"),
                ))
            }
        }
    } else {
        store::blocks::remove(&home, (&me, blocked)).await?;
        204
    };
    let dbs = store::all(&ctx.env, &ctx.require_config()?.shards)?;
    let mut sessions = store::blocks::sessions_of(&dbs, &me, BLOCK_FANOUT_SESSIONS).await?;
    // Only a session of theirs: the object keeps blocks of its people only.
    if let Some(here) = here.filter(|h| crate::ids::SessionId::parse(h).is_some()) {
        let call = Call::Block {
            session: here.clone(),
            user_id: me.clone(),
            blocked: blocked.to_string(),
            on,
        };
        // A session that does not exist is nobody's: nothing to say.
        match internal::call(ctx, &call).await {
            Ok(_) | Err(AppError::NotFound) => {}
            Err(e) => return Err(e),
        }
        sessions.retain(|s| *s != here);
    }
    let (env, trace) = (ctx.env.clone(), ctx.trace.clone());
    let who = blocked.to_string();
    let blocked = who.clone();
    ctx.after_response(async move {
        // Ten at a time: each is one small call to a session's object.
        for chunk in sessions.chunks(10) {
            let calls = chunk.iter().map(|session| {
                let call = Call::Block {
                    session: session.clone(),
                    user_id: me.clone(),
                    blocked: blocked.clone(),
                    on,
                };
                let (env, trace) = (env.clone(), trace.clone());
                async move { internal::call_with(&env, &trace, &call).await }
            });
            for r in futures::future::join_all(calls).await {
                if let Err(e) = r {
                    crate::runtime::log(
                        crate::config::LogLevel::Warn,
                        "block_fanout_failed",
                        [("detail", serde_json::Value::from(e.to_string()))],
                    );
                }
            }
        }
    });
    if status == 204 {
        return Ok(Response::empty()
            .map_err(AppError::internal)?
            .with_status(204));
    }
    json(status, &json!({ "blocked": who }))
}
