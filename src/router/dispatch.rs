//! Dispatch: one handler per endpoint, after the route's access level was
//! checked once (`api::access::admit`). The runtime half of the route
//! table (wasm32 only).

use super::{resolve, Endpoint as E, Route};
use crate::api::{self, access::admit};
use crate::error::AppError;
use crate::http::{Ctx, HandlerResult};
use futures::future::{FutureExt, LocalBoxFuture};
use worker::{Env, Request, Response, Result};

pub async fn handle(req: Request, env: Env, exec: worker::Context) -> Result<Response> {
    let ctx = Ctx::new(&req, env, exec);
    let resolved = resolve(&ctx.method, &ctx.path);
    // Route is Copy: keep it for the log line while dispatching on it.
    let route = resolved.as_ref().ok().copied();
    let result = match resolved {
        Ok(_) if !ctx.host_allowed() => Err(AppError::HostNotAllowed),
        Ok(_) if !ctx.origin_allowed() => Err(AppError::OriginNotAllowed),
        Ok(route) => match ctx.rate_limit(&req, route.rate_limited()).await {
            Err(e) => Err(e),
            Ok(()) => serve(req, &ctx, route).await,
        },
        Err(e) => Err(e),
    };
    ctx.finish(route.as_ref(), result)
}

/// Checks the route's access level, then calls its handler: one line
/// per endpoint.
async fn serve(req: Request, ctx: &Ctx, route: Route<'_>) -> HandlerResult {
    let granted = admit(&req, ctx, &route).await?;
    // The table gives these endpoints a `{session}`; resolve() checked it.
    let id = || {
        route
            .session
            .ok_or_else(|| AppError::internal("no session in the path"))
    };
    // resolve() has checked that it decodes to a valid user id.
    let removed = route
        .user
        .and_then(crate::ids::percent_decode)
        .unwrap_or_default();
    // Each handler's future is boxed: the dispatcher's own state
    // machine then holds a pointer, not the largest handler's state,
    // and no handler's code is inlined into it.
    let handler: LocalBoxFuture<'_, HandlerResult> = match route.endpoint() {
        E::Preflight => return ctx.preflight(),
        E::Page(page) => api::pages::serve(req, ctx, page).boxed_local(),
        E::Healthz => api::health::healthz(ctx).boxed_local(),
        E::Readyz => api::health::readyz(ctx).boxed_local(),
        E::Metrics => api::metrics::metrics(ctx).boxed_local(),
        E::DevToken => api::dev::token(req, ctx).boxed_local(),
        E::DevFault => api::dev::fault(req, ctx).boxed_local(),
        E::Visitors => api::visitors::create(req, ctx).boxed_local(),
        E::LinkVisitor => api::visitors::link(req, ctx, &removed, granted.who()?).boxed_local(),
        E::ClientConfig => return api::dev::client_config(ctx),
        E::CreateSession => api::sessions::create(req, ctx, granted.who()?).boxed_local(),
        E::ListSessions => api::sessions::list(req, ctx, granted.who()?).boxed_local(),
        E::GetSession => api::sessions::get(ctx, id()?, granted.who()?).boxed_local(),
        E::DeleteSession => api::sessions::delete(ctx, id()?, granted.who()?).boxed_local(),
        E::History => api::messages::history(req, ctx, id()?, granted.who()?).boxed_local(),
        E::Members => api::members::list(ctx, id()?, granted.who()?).boxed_local(),
        E::AddMember => api::members::add(req, ctx, id()?, granted.who()?).boxed_local(),
        E::RemoveMember => api::members::remove(ctx, id()?, &removed, granted.who()?).boxed_local(),
        E::SessionSocket => api::sessions::connect(req, ctx, id()?, granted.who()?).boxed_local(),
        E::CreateTicket => api::tickets::create(ctx, id()?, granted.who()?).boxed_local(),
        E::LinkPreview => api::previews::get(req, ctx).boxed_local(),
        E::Search => api::search::get(req, ctx, granted.who()?).boxed_local(),
        E::AttachmentSlot => api::attachments::slot(req, ctx, id()?, granted.who()?).boxed_local(),
        E::AttachmentLink => {
            let att = route.attachment.unwrap_or_default();
            api::attachments::link(ctx, id()?, att, granted.who()?).boxed_local()
        }
        E::Upload => {
            api::attachments::upload(req, ctx, route.token.unwrap_or_default()).boxed_local()
        }
        E::Download => {
            api::attachments::download(ctx, route.token.unwrap_or_default()).boxed_local()
        }
        E::AdminSessions => api::admin::sessions(req, ctx).boxed_local(),
        E::Audit => api::audit::list(req, ctx).boxed_local(),
        E::Usage => api::usage::report(req, ctx).boxed_local(),
        E::Profiles(verb) => api::profiles::serve(req, ctx, verb, route.profile).boxed_local(),
        E::Reencrypt => api::admin::reencrypt(req, ctx).boxed_local(),
        E::AdminSession => api::admin::session(ctx, id()?, granted.who()?).boxed_local(),
        E::Desk(verb) => api::admin::desk(req, ctx, id()?, verb, granted.who()?).boxed_local(),
        E::Replication => api::admin::replication(ctx, id()?).boxed_local(),
        E::InboxTicket => api::tickets::create_for_inbox(ctx, granted.who()?).boxed_local(),
        E::InboxSocket => api::admin::inbox(ctx, granted.who()?).boxed_local(),
        E::Webhooks(verb) => api::webhooks::serve(req, ctx, verb, route.webhook).boxed_local(),
        E::Service(verb) => {
            api::service::serve(req, ctx, id()?, verb, granted.who()?).boxed_local()
        }
        E::Moderation(verb) => {
            let on = (route.session, removed.as_str());
            api::moderation::serve(req, ctx, on, verb, granted.who()?).boxed_local()
        }
    };
    handler.await
}
