//! The route table's access levels ([`Access`]), checked once per request
//! before the handler runs.
//!
//! Dispatch calls [`admit`] with the route; a handler that needs a caller
//! gets the [`Grant`] it returns. For the session levels (member, owner)
//! the Worker authenticates and the session object decides, from its own
//! log, whether the caller's role passes the level the grant carries in
//! [`Caller::need`]: membership is the object's to know, and asking it in
//! the call that does the work costs no extra round trip.

use crate::auth::{bearer, Identity};
use crate::contract::{Caller, Ticket};
use crate::error::AppError;
use crate::http::{is_websocket_upgrade, query_param, Ctx};
use crate::protocol::UserRef;
use crate::router::{Access, Endpoint, Route};
use worker::Request;

/// A caller the route's level admitted.
pub struct Grant {
    pub who: Identity,
    /// The route's level, which the session object checks for the
    /// session levels.
    pub access: Access,
    /// The ticket the socket was opened with, if any (verified, not yet
    /// spent: the session object spends it).
    pub ticket: Option<Ticket>,
}

impl Grant {
    /// The caller as the session object's contract names them.
    pub fn caller(&self, ctx: &Ctx) -> Caller {
        Caller {
            user: UserRef {
                id: self.who.user_id.clone(),
                name: self.who.name.clone(),
            },
            admin: ctx.is_admin(&self.who),
            need: self.access,
        }
    }
}

/// What [`admit`] lets through.
pub enum Granted {
    /// A public route, a development route in development, or the scrape
    /// with the metrics token: no caller to hand on.
    Anyone,
    Caller(Grant),
}

impl Granted {
    /// The caller, for a handler that acts as one. A route whose level
    /// admits anyone has none: that is a mistake in the table, and
    /// `tests/access.rs` would see it as a 500.
    pub fn who(self) -> Result<Grant, AppError> {
        match self {
            Granted::Caller(g) => Ok(g),
            Granted::Anyone => Err(AppError::internal(
                "the route table admits anyone to a handler that needs a caller",
            )),
        }
    }
}

/// Checks the route's access level: 401 without a credential where one is
/// needed, 404 where the level is not met (admin and development routes
/// do not reveal themselves).
pub async fn admit(req: &Request, ctx: &Ctx, route: &Route<'_>) -> Result<Granted, AppError> {
    let access = route.access();
    let grant = |who| {
        Ok(Granted::Caller(Grant {
            who,
            access,
            ticket: None,
        }))
    };
    match access {
        // The handler verifies the URL's signature.
        Access::Public | Access::Signed => Ok(Granted::Anyone),
        Access::Dev if ctx.require_config()?.is_development() => Ok(Granted::Anyone),
        Access::Dev => Err(AppError::NotFound),
        Access::Metrics if holds_metrics_token(req, ctx)? => Ok(Granted::Anyone),
        Access::Admin if route.endpoint() == Endpoint::InboxSocket => {
            // A ticket is checked like a token: only an admin's opens it.
            let g = socket(req, ctx, route).await?;
            if !ctx.is_admin(&g.who) {
                return Err(AppError::NotFound);
            }
            ctx.acting(&g.who, access);
            Ok(Granted::Caller(g))
        }
        Access::Metrics | Access::Admin | Access::Service => {
            let who = match access {
                Access::Service => service(req, ctx).await?,
                _ => ctx.require_admin(req).await?,
            };
            ctx.acting(&who, access);
            grant(who)
        }
        Access::User | Access::Member | Access::Owner => {
            if route.endpoint() == Endpoint::SessionSocket {
                return socket(req, ctx, route).await.map(Granted::Caller);
            }
            grant(ctx.authenticate(req).await?)
        }
    }
}

/// The socket routes answer upgrades only (426 before any credential is
/// looked at), and take a `?ticket=` as well as a bearer token. A ticket
/// works only for the socket it was issued for: its session's, or the
/// inbox's.
async fn socket(req: &Request, ctx: &Ctx, route: &Route<'_>) -> Result<Grant, AppError> {
    ctx.require_config()?;
    if !is_websocket_upgrade(req.headers()) {
        return Err(AppError::UpgradeRequired);
    }
    let scope = route.session_id().unwrap_or(super::tickets::INBOX_SCOPE);
    let (who, ticket) = match query_param(req, "ticket") {
        Some(id) => {
            let (who, expires_at) = super::tickets::verify(ctx, &id, scope).await?;
            (who, Some(Ticket { id, expires_at }))
        }
        None => (ctx.authenticate(req).await?, None),
    };
    Ok(Grant {
        who,
        access: route.access(),
        ticket,
    })
}

/// The product's backend: `SERVICE_TOKEN` as the bearer (then the caller
/// is `service`), or a token with `SERVICE_ROLE`. Any other valid token
/// gets 404, as on admin routes.
async fn service(req: &Request, ctx: &Ctx) -> Result<Identity, AppError> {
    let config = ctx.require_config()?;
    let header = req.headers().get("authorization").ok().flatten();
    if let (Some(t), Ok(given)) = (&config.service_token, bearer(header.as_deref())) {
        if constant_time_eq(t.expose().as_bytes(), given.as_bytes()) {
            return Ok(Identity {
                user_id: SERVICE.into(),
                name: SERVICE.into(),
                roles: Vec::new(),
                expires_at: 0,
            });
        }
    }
    let who = ctx.authenticate(req).await?;
    if who.has_role(&config.service_role) {
        Ok(who)
    } else {
        Err(AppError::NotFound)
    }
}

/// Who the static service credential acts as.
pub const SERVICE: &str = "service";

/// Whether the request carries `METRICS_TOKEN` as its bearer.
fn holds_metrics_token(req: &Request, ctx: &Ctx) -> Result<bool, AppError> {
    let config = ctx.require_config()?;
    let header = req.headers().get("authorization").ok().flatten();
    Ok(match (&config.metrics_token, bearer(header.as_deref())) {
        (Some(t), Ok(given)) => constant_time_eq(t.expose().as_bytes(), given.as_bytes()),
        _ => false,
    })
}

/// Compares secrets without leaking where they differ through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
