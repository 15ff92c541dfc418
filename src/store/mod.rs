//! D1 access: every D1 statement Confab runs lives under this module.
//! D1 is the replicated, queryable record; each session's own log lives in
//! its object (`session/log/`) and reaches D1 through `replica.rs`.
//!
//! D1 is sharded (`crate::shards`): a session's rows live in one shard,
//! named by its object; reads across sessions ask every shard at once.

pub mod audit;
pub mod blocks;
pub mod ledger;
pub mod maintenance;
pub mod messages;
pub mod metrics;
pub mod moderation;
pub mod profiles;
pub mod quota;
pub mod replica;
pub mod sanctions;
pub mod search;
pub mod sessions;
pub mod webhooks;

use crate::error::AppError;
use crate::join::try_join_all;
use crate::shards::{Shard, Shards};
use std::future::Future;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result, Env};

/// One shard's database.
pub fn db(env: &Env, shard: &Shard) -> Result<D1Database, AppError> {
    env.d1(shard.as_str()).map_err(AppError::internal)
}

/// The home shard, from this isolate's configuration: for work outside a
/// handler (flushes, writes after the response, the webhook gate).
pub fn home(env: &Env) -> Result<D1Database, AppError> {
    let config =
        crate::runtime::config(env).map_err(|_| AppError::Unavailable { check: "config" })?;
    db(env, config.shards.home())
}

/// Every shard's database, home first.
pub fn all(env: &Env, shards: &Shards) -> Result<Vec<D1Database>, AppError> {
    shards.all().iter().map(|s| db(env, s)).collect()
}

/// Runs `f` on every shard at once; the answers come back in shard order.
pub async fn each<'a, T, F, Fut>(dbs: &'a [D1Database], f: F) -> Result<Vec<T>, AppError>
where
    F: Fn(&'a D1Database) -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    try_join_all(dbs.iter().map(f)).await
}

/// Integers go to D1 as JS numbers: a BigInt would not bind.
pub fn num(n: impl Into<i64>) -> JsValue {
    JsValue::from_f64(n.into() as f64)
}

pub fn text(s: &str) -> JsValue {
    JsValue::from_str(s)
}

pub fn opt_text(s: Option<&str>) -> JsValue {
    s.map(JsValue::from_str).unwrap_or(JsValue::NULL)
}

pub fn opt_num(n: Option<u64>) -> JsValue {
    n.map(|n| JsValue::from_f64(n as f64))
        .unwrap_or(JsValue::NULL)
}

pub fn stmt(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement, AppError> {
    db.prepare(sql).bind(args).map_err(AppError::internal)
}

pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// Runs a statement and deserializes every row.
pub async fn rows<T: for<'de> serde::Deserialize<'de>>(
    s: D1PreparedStatement,
) -> Result<Vec<T>, AppError> {
    s.all()
        .await
        .map_err(AppError::internal)?
        .results()
        .map_err(AppError::internal)
}

/// Deserializes the rows of a statement already run (e.g. in a batch).
pub fn results<T: for<'de> serde::Deserialize<'de>>(r: &D1Result) -> Result<Vec<T>, AppError> {
    r.results().map_err(AppError::internal)
}

/// Whether a database answers and has Confab's schema: it reads the
/// schema's own table, so an unmigrated database is not ready. The error
/// is the runtime's, for the log.
pub async fn schema_ready(db: &D1Database) -> Result<(), String> {
    db.prepare("SELECT count(*) AS n FROM sessions WHERE 0")
        .first::<serde_json::Value>(None)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// How many rows a statement changed.
pub fn changes(r: &D1Result) -> usize {
    r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0)
}
