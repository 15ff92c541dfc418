//! What the home shard keeps about a person and hands to the objects of
//! their sessions, which enforce it (`crate::moderation`): their blocks
//! (the blocked user's messages hidden from them) and the deployment-wide
//! mutes and bans on them.

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
    let mut told = Vec::new();
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
        told.push(here);
    }
    let who = blocked.to_string();
    let blocked = who.clone();
    let reach = (me.clone(), BLOCK_FANOUT_SESSIONS, told);
    fan_out(ctx, reach, move |session| Call::Block {
        session,
        user_id: me.clone(),
        blocked: blocked.clone(),
        on,
    });
    if status == 204 {
        return Ok(Response::empty()
            .map_err(AppError::internal)?
            .with_status(204));
    }
    json(status, &json!({ "blocked": who }))
}

/// Makes one call (`make(session)`) to the object of each session `user`
/// owns or belongs to (at most `cap`, the most recently active; none of
/// `told`), after the response, ten at a time; a failure is logged
/// (`fanout_failed`) and the rest go on. D1 learns a new member within
/// `REPLICATION_INTERVAL_MS`, so the sessions are listed again after twice
/// that, and those new to the list are called too. For blocks and
/// deployment-wide sanctions, which each session's object keeps for its
/// people.
pub fn fan_out(
    ctx: &Ctx,
    (user, cap, mut told): (String, u32, Vec<String>),
    make: impl Fn(String) -> Call + 'static,
) {
    let (env, trace) = (ctx.env.clone(), ctx.trace.clone());
    let Ok(config) = ctx.require_config() else {
        return;
    };
    let again_ms = 2 * config.replication_interval_ms as u64;
    let shards = config.shards.clone();
    ctx.after_response(async move {
        let Ok(dbs) = store::all(&env, &shards) else {
            return;
        };
        for pass in 0..2 {
            if pass == 1 {
                worker::Delay::from(std::time::Duration::from_millis(again_ms)).await;
            }
            let listed = match store::blocks::sessions_of(&dbs, &user, cap).await {
                Ok(l) => l,
                Err(e) => return log_failure(&e),
            };
            let fresh: Vec<String> = listed.into_iter().filter(|s| !told.contains(s)).collect();
            call_each(&env, &trace, &fresh, &make).await;
            told.extend(fresh);
        }
    });
}

fn log_failure(e: &AppError) {
    crate::runtime::log(
        crate::config::LogLevel::Warn,
        "fanout_failed",
        [("detail", serde_json::Value::from(e.to_string()))],
    );
}

async fn call_each(
    env: &worker::Env,
    trace: &crate::trace::Trace,
    sessions: &[String],
    make: &impl Fn(String) -> Call,
) {
    for chunk in sessions.chunks(10) {
        let calls = chunk.iter().map(|session| {
            let call = make(session.clone());
            let (env, trace) = (env.clone(), trace.clone());
            async move { internal::call_with(&env, &trace, &call).await }
        });
        for r in futures::future::join_all(calls).await {
            match r {
                // A session erased meanwhile has nobody to keep it for.
                Ok(_) | Err(AppError::NotFound) => {}
                Err(e) => log_failure(&e),
            }
        }
    }
}

/// `POST /v1/admin/sanctions`: a mute or ban for the whole deployment,
/// kept in the home shard and handed to every session of the user (the
/// [`SANCTION_FANOUT_SESSIONS`] most recently active). 201 with it.
pub async fn ban(
    ctx: &Ctx,
    grant: &Grant,
    body: crate::moderation::SanctionRequest,
) -> HandlerResult {
    let by = crate::protocol::UserRef {
        id: grant.who.user_id.clone(),
        name: grant.who.name.clone(),
    };
    let sanction = body.into_sanction(by, now_ms())?;
    store::sanctions::put(&store::home(&ctx.env)?, &sanction).await?;
    let x = sanction.clone();
    let reach = (x.user_id.clone(), SANCTION_FANOUT_SESSIONS, Vec::new());
    fan_out(ctx, reach, move |session| Call::Sanction {
        session,
        sanction: x.clone(),
    });
    json(201, &sanction)
}

/// `DELETE /v1/admin/sanctions/{user}`: lifts the user's deployment-wide
/// sanctions, and their sanctions in each of their sessions. 204, or 404
/// when none was in force.
pub async fn unban(ctx: &Ctx, user: &str) -> HandlerResult {
    if !store::sanctions::lift(&store::home(&ctx.env)?, user, now_ms()).await? {
        return Err(AppError::NotFound);
    }
    let reach = (user.to_string(), SANCTION_FANOUT_SESSIONS, Vec::new());
    let user = user.to_string();
    fan_out(ctx, reach, move |session| Call::Lift {
        session,
        user_id: user.clone(),
    });
    Ok(Response::empty()
        .map_err(AppError::internal)?
        .with_status(204))
}

/// The most sessions a deployment-wide sanction is handed to: a user's
/// sessions past these (the least recently active) do not learn it.
pub const SANCTION_FANOUT_SESSIONS: u32 = 5000;
