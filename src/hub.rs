//! The per-user object: where a user's mentions find them.
//!
//! **Keying.** One object per user id, `idFromName(user id)` on the
//! `USERS` namespace. It holds no sockets; it keeps the sessions in which
//! the user has open sockets (`present`), which the session objects tell
//! it as the user's first socket opens and their last one closes there.
//!
//! **Mentions.** When a message mentions the user (`crate::mention`), its
//! session's object hands the rendered `mention` frame to this object,
//! after the commit and off the path to the ack. This object passes it to
//! every other session the user is present in (`Call::Notify`), whose
//! object sends it to the user's sockets there. A session that answers
//! that the user has no socket there (a missed close, a restart) is
//! forgotten. Best effort throughout: a lost mention leaves the message,
//! with its `mentions`, in the session's history.
//!
//! **What it keeps.** Session ids only, never a message or its excerpt.

use crate::bindings::USERS;
use crate::contract::Call;
use crate::error::AppError;
use serde::{Deserialize, Serialize};
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, Result, State,
};

const ORIGIN: &str = "https://hub.internal";
/// The longest a session object waits for a user's object.
const CALL_TIMEOUT_MS: u64 = 5_000;
/// The most sessions one user is tracked as present in; the oldest go.
const MAX_PRESENT: i64 = 200;

/// `present`: the user's first socket opened (`here`) or last closed in
/// `session`.
#[derive(Serialize, Deserialize)]
struct Present {
    user: String,
    session: String,
    here: bool,
}

/// `mention`: a `mention` frame for the user, from session `from`.
#[derive(Serialize, Deserialize)]
struct Mention {
    user: String,
    from: String,
    frame: String,
}

#[durable_object]
pub struct UserHub {
    state: State,
    env: Env,
}

impl DurableObject for UserHub {
    fn new(state: State, env: Env) -> Self {
        let _ = state.storage().sql().exec(
            "CREATE TABLE IF NOT EXISTS present (session TEXT PRIMARY KEY, at INTEGER NOT NULL)",
            None,
        );
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let body = req.text().await.unwrap_or_default();
        let done = match req.path().as_str() {
            "/present" => match serde_json::from_str::<Present>(&body) {
                Ok(p) => self.present(&p),
                Err(e) => Err(AppError::internal(e)),
            },
            "/mention" => match serde_json::from_str::<Mention>(&body) {
                Ok(m) => self.mention(m).await,
                Err(e) => Err(AppError::internal(e)),
            },
            _ => Err(AppError::NotFound),
        };
        match done {
            Ok(()) => Ok(Response::empty()?.with_status(204)),
            Err(e) => crate::http::json(e.status(), &e.body(""))
                .map_err(|e| worker::Error::RustError(e.to_string())),
        }
    }
}

impl UserHub {
    fn present(&self, p: &Present) -> std::result::Result<(), AppError> {
        let sql = self.state.storage().sql();
        let now = worker::Date::now().as_millis() as i64;
        let run = |q: &str, args: Vec<worker::SqlStorageValue>| {
            sql.exec(q, args).map(|_| ()).map_err(AppError::internal)
        };
        let session = worker::SqlStorageValue::String(p.session.clone());
        if !p.here {
            return run("DELETE FROM present WHERE session = ?", vec![session]);
        }
        run(
            "INSERT OR REPLACE INTO present (session, at) VALUES (?, ?)",
            vec![session, worker::SqlStorageValue::Integer(now)],
        )?;
        run(
            "DELETE FROM present WHERE session NOT IN
               (SELECT session FROM present ORDER BY at DESC LIMIT ?)",
            vec![worker::SqlStorageValue::Integer(MAX_PRESENT)],
        )
    }

    async fn mention(&self, m: Mention) -> std::result::Result<(), AppError> {
        #[derive(Deserialize)]
        struct Row {
            session: String,
        }
        let sql = self.state.storage().sql();
        let rows: Vec<Row> = sql
            .exec(
                "SELECT session FROM present WHERE session != ?",
                vec![worker::SqlStorageValue::String(m.from.clone())],
            )
            .and_then(|c| c.to_array())
            .map_err(AppError::internal)?;
        let calls = rows.iter().map(|r| {
            let call = Call::Notify {
                session: r.session.clone(),
                user_id: m.user.clone(),
                frame: m.frame.clone(),
            };
            async move {
                let trace = crate::trace::Trace::continued(None);
                let told = crate::session::internal::call_with(&self.env, &trace, &call).await;
                (r.session.as_str(), told)
            }
        });
        for (session, told) in futures::future::join_all(calls).await {
            // Not there after all: forget it. Other failures may pass.
            if let Err(AppError::NotFound) = told {
                let _ = sql.exec(
                    "DELETE FROM present WHERE session = ?",
                    vec![worker::SqlStorageValue::String(session.to_string())],
                );
            }
        }
        Ok(())
    }
}

/// One call to a user's object, within `CALL_TIMEOUT_MS`.
async fn call(
    env: &Env,
    user: &str,
    path: &str,
    body: String,
) -> std::result::Result<(), AppError> {
    let stub = env
        .durable_object(USERS)
        .and_then(|ns| ns.id_from_name(user)?.get_stub())
        .map_err(AppError::internal)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(wasm_bindgen::JsValue::from_str(&body)));
    let req =
        Request::new_with_init(&format!("{ORIGIN}{path}"), &init).map_err(AppError::internal)?;
    let resp = crate::runtime::timeout(CALL_TIMEOUT_MS, stub.fetch_with_request(req))
        .await
        .ok_or(AppError::Unavailable { check: "hub" })?
        .map_err(AppError::internal)?;
    match resp.status_code() {
        204 => Ok(()),
        s => Err(AppError::internal(format!("user object answered {s}"))),
    }
}

/// A session object's side: `user`'s first socket in `session` opened
/// (`here`) or their last one closed.
pub async fn present(
    env: &Env,
    user: &str,
    session: &str,
    here: bool,
) -> std::result::Result<(), AppError> {
    let body = serde_json::to_string(&Present {
        user: user.to_string(),
        session: session.to_string(),
        here,
    })
    .map_err(AppError::internal)?;
    call(env, user, "/present", body).await
}

/// A session object's side: hands `user` a `mention` frame from `from`.
pub async fn mention(
    env: &Env,
    user: &str,
    from: &str,
    frame: String,
) -> std::result::Result<(), AppError> {
    let body = serde_json::to_string(&Mention {
        user: user.to_string(),
        from: from.to_string(),
        frame,
    })
    .map_err(AppError::internal)?;
    call(env, user, "/mention", body).await
}
