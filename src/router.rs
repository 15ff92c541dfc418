//! The route table: the only file that knows URLs.
//!
//! Resolution is pure (tested natively); dispatch calls one handler per route.

use crate::error::AppError;
use crate::ids::is_valid_session_id;

/// Every route Confab serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Healthz,
    Readyz,
    SessionSocket { session_id: &'a str },
}

/// Maps a method and path to a route: 404 for unknown paths (and malformed
/// ids, which are indistinguishable from unknown ones), 405 for a known path
/// with the wrong method.
pub fn resolve<'a>(method: &str, path: &'a str) -> Result<Route<'a>, AppError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (route, allowed): (Route, &[&str]) = match segments.as_slice() {
        ["healthz"] => (Route::Healthz, &["GET", "HEAD"]),
        ["readyz"] => (Route::Readyz, &["GET", "HEAD"]),
        ["v1", "sessions", id, "ws"] if is_valid_session_id(id) => {
            (Route::SessionSocket { session_id: id }, &["GET"])
        }
        _ => return Err(AppError::NotFound),
    };
    if allowed.contains(&method) {
        Ok(route)
    } else {
        Err(AppError::MethodNotAllowed)
    }
}

#[cfg(target_arch = "wasm32")]
pub use dispatch::handle;

#[cfg(target_arch = "wasm32")]
mod dispatch {
    use super::{resolve, Route};
    use crate::api;
    use crate::http::Ctx;
    use worker::{Env, Request, Response, Result};

    pub async fn handle(req: Request, env: Env) -> Result<Response> {
        let ctx = Ctx::new(&req, env);
        let method = req.method().to_string();
        let path = req.path();
        let result = match resolve(&method, &path) {
            Ok(Route::Healthz) => api::health::healthz(&ctx).await,
            Ok(Route::Readyz) => api::health::readyz(&ctx).await,
            Ok(Route::SessionSocket { session_id }) => {
                api::sessions::connect(req, &ctx, session_id).await
            }
            Err(e) => Err(e),
        };
        ctx.finish(&method, &path, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_routes() {
        assert_eq!(resolve("GET", "/healthz"), Ok(Route::Healthz));
        assert_eq!(resolve("HEAD", "/readyz"), Ok(Route::Readyz));
        assert_eq!(
            resolve("GET", "/v1/sessions/abc_1/ws"),
            Ok(Route::SessionSocket {
                session_id: "abc_1"
            })
        );
    }

    #[test]
    fn wrong_method_is_405_unknown_path_is_404() {
        assert_eq!(resolve("POST", "/healthz"), Err(AppError::MethodNotAllowed));
        assert_eq!(resolve("GET", "/nope"), Err(AppError::NotFound));
        assert_eq!(resolve("GET", "/healthz/extra"), Err(AppError::NotFound));
        assert_eq!(
            resolve("GET", "/v1/sessions/a%20b/ws"),
            Err(AppError::NotFound)
        );
        assert_eq!(resolve("GET", "/v1/sessions//ws"), Err(AppError::NotFound));
    }
}
