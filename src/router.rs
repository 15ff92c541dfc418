//! The route table: the only file that knows URLs.
//!
//! Resolution is pure (tested natively); dispatch calls one handler per route.

use crate::error::AppError;
use crate::ids::{is_valid_session_id, is_valid_user_id, percent_decode};

/// The bundled pages whose headers the Worker sets (see `api::pages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Chat,
    Admin,
}

/// Every route Confab serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// A CORS preflight (`OPTIONS`) for any known path.
    Preflight,
    Page(Page),
    Healthz,
    Readyz,
    Metrics,
    ClientConfig,
    DevToken,
    /// Development only: make a handler panic (see `api::dev::fault`).
    DevFault,
    CreateSession,
    ListSessions,
    GetSession {
        id: &'a str,
    },
    DeleteSession {
        id: &'a str,
    },
    History {
        id: &'a str,
    },
    Members {
        id: &'a str,
    },
    AddMember {
        id: &'a str,
    },
    RemoveMember {
        id: &'a str,
        /// As it stands in the path: percent-encoded.
        user_id: &'a str,
    },
    SessionSocket {
        id: &'a str,
    },
    CreateTicket {
        id: &'a str,
    },
    Reencrypt,
    AdminSessions,
    AdminSession {
        id: &'a str,
    },
    Takeover {
        id: &'a str,
    },
    Release {
        id: &'a str,
    },
    Replication {
        id: &'a str,
    },
}

impl Route<'_> {
    /// The route's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Route::Preflight => "preflight",
            Route::Page(Page::Chat) => "page.chat",
            Route::Page(Page::Admin) => "page.admin",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::ClientConfig => "client_config",
            Route::DevToken => "dev.token",
            Route::DevFault => "dev.fault",
            Route::CreateSession => "sessions.create",
            Route::ListSessions => "sessions.list",
            Route::GetSession { .. } => "sessions.get",
            Route::DeleteSession { .. } => "sessions.delete",
            Route::History { .. } => "messages.history",
            Route::Members { .. } => "members.list",
            Route::AddMember { .. } => "members.add",
            Route::RemoveMember { .. } => "members.remove",
            Route::SessionSocket { .. } => "sessions.ws",
            Route::CreateTicket { .. } => "tickets.create",
            Route::AdminSessions => "admin.sessions",
            Route::Reencrypt => "admin.reencrypt",
            Route::AdminSession { .. } => "admin.session",
            Route::Takeover { .. } => "admin.takeover",
            Route::Release { .. } => "admin.release",
            Route::Replication { .. } => "admin.replication",
        }
    }

    /// Whether the per-IP HTTP rate limit applies: everything but the
    /// probes and the scrape, which infrastructure calls on a schedule.
    pub fn rate_limited(&self) -> bool {
        !matches!(
            self,
            Route::Healthz | Route::Readyz | Route::Metrics | Route::Preflight | Route::Page(_)
        )
    }

    /// The session the route is about, if any.
    pub fn session_id(&self) -> Option<&str> {
        match *self {
            Route::GetSession { id }
            | Route::DeleteSession { id }
            | Route::History { id }
            | Route::Members { id }
            | Route::AddMember { id }
            | Route::RemoveMember { id, .. }
            | Route::SessionSocket { id }
            | Route::CreateTicket { id }
            | Route::AdminSession { id }
            | Route::Takeover { id }
            | Route::Release { id }
            | Route::Replication { id } => Some(id),
            _ => None,
        }
    }
}

/// Words that may stand in a logged path. Anything else in a path nobody
/// serves may be a user id, an e-mail address or a token, so it is logged
/// as `*`.
const PATH_WORDS: &[&str] = &[
    "healthz",
    "readyz",
    "metrics",
    "v1",
    "client-config",
    "dev",
    "token",
    "fault",
    "sessions",
    "messages",
    "members",
    "ws",
    "tickets",
    "admin",
    "maintenance",
    "reencrypt",
    "takeover",
    "release",
    "replication",
];

/// The shape of a path for the log: known words kept, every other segment
/// replaced by `*`, at most 12 segments.
pub fn redacted_path(path: &str) -> String {
    let mut out = String::new();
    for (i, seg) in path.trim_start_matches('/').split('/').enumerate() {
        if i == 12 {
            out.push_str("/…");
            break;
        }
        out.push('/');
        if seg.is_empty() || PATH_WORDS.contains(&seg) {
            out.push_str(seg);
        } else {
            out.push('*');
        }
    }
    out
}

/// Maps a method and path to a route: 404 for unknown paths (and malformed
/// ids, which are indistinguishable from unknown ones), 405 for a known path
/// with the wrong method.
pub fn resolve<'a>(method: &str, path: &'a str) -> Result<Route<'a>, AppError> {
    use Route::*;
    if method == "OPTIONS" {
        // Any path some method serves may be preflighted.
        return match resolve("GET", path) {
            Err(AppError::NotFound) => Err(AppError::NotFound),
            _ => Ok(Preflight),
        };
    }
    match matched(method, path)? {
        GetSession { id }
        | DeleteSession { id }
        | History { id }
        | Members { id }
        | AddMember { id }
        | RemoveMember { id, .. }
        | SessionSocket { id }
        | CreateTicket { id }
        | AdminSession { id }
        | Takeover { id }
        | Release { id }
        | Replication { id }
            if !is_valid_session_id(id) =>
        {
            Err(AppError::NotFound)
        }
        RemoveMember { user_id, .. }
            if !percent_decode(user_id).is_some_and(|u| is_valid_user_id(&u)) =>
        {
            Err(AppError::NotFound)
        }
        r => Ok(r),
    }
}

/// The methods a path answers, for a 405's `Allow` header: those the
/// route table matches it with (ids unchecked: a 405 is about the shape).
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let mut allowed: Vec<&'static str> = ["GET", "HEAD", "POST", "DELETE"]
        .into_iter()
        .filter(|m| matched(m, path).is_ok())
        .collect();
    if !allowed.is_empty() {
        allowed.push("OPTIONS");
    }
    allowed
}

/// The route table: a method and path to a route by their shape alone.
fn matched<'a>(method: &str, path: &'a str) -> Result<Route<'a>, AppError> {
    use Route::*;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let read = matches!(method, "GET" | "HEAD");
    let route = match (segments.as_slice(), method) {
        ([""] | ["index.html"], _) if read => Route::Page(self::Page::Chat),
        (["admin"] | ["admin.html"], _) if read => Route::Page(self::Page::Admin),
        (["healthz"], _) if read => Healthz,
        (["readyz"], _) if read => Readyz,
        (["metrics"], _) if read => Metrics,
        (["v1", "client-config"], _) if read => ClientConfig,
        (["v1", "dev", "token"], "POST") => DevToken,
        (["v1", "dev", "fault"], "POST") => DevFault,
        (["v1", "sessions"], "POST") => CreateSession,
        (["v1", "sessions"], _) if read => ListSessions,
        (["v1", "sessions", id], _) if read => GetSession { id },
        (["v1", "sessions", id], "DELETE") => DeleteSession { id },
        (["v1", "sessions", id, "messages"], _) if read => History { id },
        (["v1", "sessions", id, "members"], _) if read => Members { id },
        (["v1", "sessions", id, "members"], "POST") => AddMember { id },
        (["v1", "sessions", id, "members", user_id], "DELETE") => RemoveMember { id, user_id },
        (["v1", "sessions", id, "ws"], "GET") => SessionSocket { id },
        (["v1", "sessions", id, "tickets"], "POST") => CreateTicket { id },
        (["v1", "admin", "maintenance", "reencrypt"], "POST") => Reencrypt,
        (["v1", "admin", "sessions"], _) if read => AdminSessions,
        (["v1", "admin", "sessions", id], _) if read => AdminSession { id },
        (["v1", "admin", "sessions", id, "takeover"], "POST") => Takeover { id },
        (["v1", "admin", "sessions", id, "release"], "POST") => Release { id },
        (["v1", "admin", "sessions", id, "replication"], _) if read => Replication { id },
        (
            [""]
            | ["index.html"]
            | ["admin"]
            | ["admin.html"]
            | ["healthz"]
            | ["readyz"]
            | ["metrics"]
            | ["v1", "client-config"]
            | ["v1", "dev", "token" | "fault"]
            | ["v1", "sessions"]
            | ["v1", "sessions", _]
            | ["v1", "sessions", _, "messages" | "members" | "ws" | "tickets"]
            | ["v1", "sessions", _, "members", _]
            | ["v1", "admin", "maintenance", "reencrypt"]
            | ["v1", "admin", "sessions"]
            | ["v1", "admin", "sessions", _]
            | ["v1", "admin", "sessions", _, "takeover" | "release" | "replication"],
            _,
        ) => return Err(AppError::MethodNotAllowed),
        _ => return Err(AppError::NotFound),
    };
    Ok(route)
}

#[cfg(target_arch = "wasm32")]
pub use dispatch::handle;

#[cfg(target_arch = "wasm32")]
mod dispatch {
    use super::{resolve, Route};
    use crate::api;
    use crate::error::AppError;
    use crate::http::{Ctx, HandlerResult};
    use worker::{Env, Request, Response, Result};

    pub async fn handle(req: Request, env: Env) -> Result<Response> {
        let ctx = Ctx::new(&req, env);
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

    /// Calls the route's handler: one line per route.
    async fn serve(req: Request, ctx: &Ctx, route: Route<'_>) -> HandlerResult {
        match route {
            Route::Preflight => ctx.preflight(),
            Route::Page(page) => api::pages::serve(req, ctx, page).await,
            Route::Healthz => api::health::healthz(ctx).await,
            Route::Readyz => api::health::readyz(ctx).await,
            Route::Metrics => api::metrics::metrics(req, ctx).await,
            Route::DevToken => api::dev::token(req, ctx).await,
            Route::DevFault => api::dev::fault(req, ctx).await,
            Route::ClientConfig => api::dev::client_config(ctx),
            Route::CreateSession => api::sessions::create(req, ctx).await,
            Route::ListSessions => api::sessions::list(req, ctx).await,
            Route::GetSession { id } => api::sessions::get(req, ctx, id).await,
            Route::DeleteSession { id } => api::sessions::delete(req, ctx, id).await,
            Route::History { id } => api::messages::history(req, ctx, id).await,
            Route::Members { id } => api::members::list(req, ctx, id).await,
            Route::AddMember { id } => api::members::add(req, ctx, id).await,
            Route::RemoveMember { id, user_id } => {
                // resolve() has checked that it decodes to a valid user id.
                let user_id = crate::ids::percent_decode(user_id).unwrap_or_default();
                api::members::remove(req, ctx, id, &user_id).await
            }
            Route::SessionSocket { id } => api::sessions::connect(req, ctx, id).await,
            Route::CreateTicket { id } => api::tickets::create(req, ctx, id).await,
            Route::AdminSessions => api::admin::sessions(req, ctx).await,
            Route::Reencrypt => api::admin::reencrypt(req, ctx).await,
            Route::AdminSession { id } => api::admin::session(req, ctx, id).await,
            Route::Takeover { id } => api::admin::takeover(req, ctx, id).await,
            Route::Release { id } => api::admin::release(req, ctx, id).await,
            Route::Replication { id } => api::admin::replication(req, ctx, id).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_routes() {
        assert_eq!(resolve("GET", "/healthz"), Ok(Route::Healthz));
        assert_eq!(resolve("GET", "/"), Ok(Route::Page(Page::Chat)));
        assert_eq!(resolve("GET", "/admin"), Ok(Route::Page(Page::Admin)));
        assert_eq!(resolve("POST", "/admin"), Err(AppError::MethodNotAllowed));
        for m in ["PURGE", "PROPFIND", "MKCOL", "LOCK", "SEARCH"] {
            assert_eq!(
                resolve(m, "/v1/admin/sessions"),
                Err(AppError::MethodNotAllowed),
                "{m}"
            );
        }
        assert_eq!(resolve("HEAD", "/readyz"), Ok(Route::Readyz));
        assert_eq!(resolve("POST", "/v1/dev/token"), Ok(Route::DevToken));
        assert_eq!(resolve("POST", "/v1/sessions"), Ok(Route::CreateSession));
        assert_eq!(resolve("GET", "/v1/sessions"), Ok(Route::ListSessions));
        assert_eq!(
            resolve("GET", "/v1/sessions/abc"),
            Ok(Route::GetSession { id: "abc" })
        );
        assert_eq!(
            resolve("DELETE", "/v1/sessions/abc"),
            Ok(Route::DeleteSession { id: "abc" })
        );
        assert_eq!(
            resolve("GET", "/v1/sessions/abc/messages"),
            Ok(Route::History { id: "abc" })
        );
        assert_eq!(
            resolve("GET", "/v1/sessions/abc/members"),
            Ok(Route::Members { id: "abc" })
        );
        assert_eq!(
            resolve("POST", "/v1/sessions/abc/members"),
            Ok(Route::AddMember { id: "abc" })
        );
        assert_eq!(
            resolve("DELETE", "/v1/sessions/abc/members/u1"),
            Ok(Route::RemoveMember {
                id: "abc",
                user_id: "u1"
            })
        );
        assert_eq!(
            resolve("GET", "/v1/sessions/abc_1/ws"),
            Ok(Route::SessionSocket { id: "abc_1" })
        );
    }

    #[test]
    fn resolves_identity_admin_and_preflight_routes() {
        assert_eq!(
            resolve("POST", "/v1/sessions/abc/tickets"),
            Ok(Route::CreateTicket { id: "abc" })
        );
        assert_eq!(
            resolve("GET", "/v1/admin/sessions"),
            Ok(Route::AdminSessions)
        );
        assert_eq!(resolve("GET", "/v1/client-config"), Ok(Route::ClientConfig));
        assert_eq!(resolve("OPTIONS", "/v1/sessions"), Ok(Route::Preflight));
        assert_eq!(
            resolve("OPTIONS", "/v1/sessions/abc/tickets"),
            Ok(Route::Preflight)
        );
        assert_eq!(resolve("OPTIONS", "/nope"), Err(AppError::NotFound));
        assert_eq!(
            resolve("GET", "/v1/sessions/abc/tickets"),
            Err(AppError::MethodNotAllowed)
        );
        assert!(!Route::Healthz.rate_limited());
        assert!(Route::CreateSession.rate_limited());
    }

    #[test]
    fn logged_paths_keep_only_known_words() {
        assert_eq!(
            redacted_path("/v1/sessions/abc/members/ann@example.com"),
            "/v1/sessions/*/members/*"
        );
        assert_eq!(
            redacted_path("/v1/sessions/s1/members/auth0%7C1/x"),
            "/v1/sessions/*/members/*/*"
        );
        assert_eq!(redacted_path("/"), "/");
        assert_eq!(redacted_path("/secret-token-value"), "/*");
        assert_eq!(redacted_path(&"/a".repeat(40)).matches('*').count(), 12);
    }

    #[test]
    fn a_405_names_the_methods_the_path_answers() {
        assert_eq!(allowed_methods("/healthz"), ["GET", "HEAD", "OPTIONS"]);
        assert_eq!(
            allowed_methods("/v1/sessions"),
            ["GET", "HEAD", "POST", "OPTIONS"]
        );
        assert_eq!(
            allowed_methods("/v1/sessions/abc"),
            ["GET", "HEAD", "DELETE", "OPTIONS"]
        );
        assert_eq!(allowed_methods("/v1/sessions/abc/ws"), ["GET", "OPTIONS"]);
        assert_eq!(allowed_methods("/v1/dev/token"), ["POST", "OPTIONS"]);
        assert!(allowed_methods("/nope").is_empty());
        // Every method Allow names is one the route table takes there.
        for path in [
            "/healthz",
            "/v1/sessions",
            "/v1/sessions/abc",
            "/v1/admin/sessions/abc/takeover",
        ] {
            for m in allowed_methods(path) {
                assert_ne!(
                    resolve(m, path).err(),
                    Some(AppError::MethodNotAllowed),
                    "{m} {path}"
                );
            }
        }
    }

    #[test]
    fn wrong_method_is_405_unknown_path_is_404() {
        assert_eq!(resolve("POST", "/healthz"), Err(AppError::MethodNotAllowed));
        assert_eq!(
            resolve("PUT", "/v1/sessions/abc"),
            Err(AppError::MethodNotAllowed)
        );
        assert_eq!(
            resolve("GET", "/v1/dev/token"),
            Err(AppError::MethodNotAllowed)
        );
        assert_eq!(resolve("GET", "/nope"), Err(AppError::NotFound));
        assert_eq!(resolve("GET", "/healthz/extra"), Err(AppError::NotFound));
        assert_eq!(
            resolve("GET", "/v1/sessions/a%20b/ws"),
            Err(AppError::NotFound)
        );
        assert_eq!(resolve("GET", "/v1/sessions//ws"), Err(AppError::NotFound));
        assert_eq!(
            resolve("DELETE", "/v1/sessions/abc/members/%20a"),
            Err(AppError::NotFound)
        );
        assert_eq!(
            resolve("DELETE", "/v1/sessions/abc/members/a%0Ab"),
            Err(AppError::NotFound)
        );
        assert_eq!(
            resolve("DELETE", "/v1/sessions/abc/members/bad%zz"),
            Err(AppError::NotFound)
        );
        // Identity-provider subjects, percent-encoded, are user ids.
        assert_eq!(
            resolve("DELETE", "/v1/sessions/abc/members/auth0%7C123"),
            Ok(Route::RemoveMember {
                id: "abc",
                user_id: "auth0%7C123"
            })
        );
    }
}
