//! Webhook endpoints and the delivery log, in the home shard
//! (`migrations/0009_webhooks.sql`). Secrets arrive here sealed.

use super::{changes, num, opt_num, opt_text, results, rows, stmt, text};
use crate::error::AppError;
use crate::webhooks::{Filter, Outcome, MAX_ENDPOINTS};
use serde::{Deserialize, Serialize};
use worker::D1Database;

/// A stored endpoint. `secret` is sealed; `events` the stored filter.
#[derive(Deserialize, Debug, Clone)]
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub events: String,
    pub description: String,
    pub secret: String,
    pub enabled: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl EndpointRow {
    pub fn filter(&self) -> Filter {
        Filter::from_stored(&self.events)
    }
}

const COLUMNS: &str = "id, url, events, description, secret, enabled, created_at, updated_at";

/// An endpoint's settings as `?1`-`?7` of `insert` and `update`: id, url,
/// events, description, secret, enabled, and the time written.
fn settings(e: &EndpointRow, at: i64) -> [wasm_bindgen::JsValue; 7] {
    [
        text(&e.id),
        text(&e.url),
        text(&e.events),
        text(&e.description),
        text(&e.secret),
        num(e.enabled),
        num(at),
    ]
}

/// Adds an endpoint unless there are `MAX_ENDPOINTS` already (one
/// statement, so two racing creations cannot both pass the count). Gives
/// whether it was added.
pub async fn insert(db: &D1Database, e: &EndpointRow) -> Result<bool, AppError> {
    let sql = format!(
        "INSERT INTO webhook_endpoints ({COLUMNS}) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7 \
         WHERE (SELECT count(*) FROM webhook_endpoints) < {MAX_ENDPOINTS}"
    );
    let r = stmt(db, &sql, &settings(e, e.created_at))?
        .run()
        .await
        .map_err(AppError::internal)?;
    Ok(changes(&r) == 1)
}

pub async fn list(db: &D1Database) -> Result<Vec<EndpointRow>, AppError> {
    let sql = format!("SELECT {COLUMNS} FROM webhook_endpoints ORDER BY created_at, id");
    rows(stmt(db, &sql, &[])?).await
}

/// The endpoints events go to.
pub async fn enabled(db: &D1Database) -> Result<Vec<EndpointRow>, AppError> {
    let sql = format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE enabled = 1");
    rows(stmt(db, &sql, &[])?).await
}

/// The stored filters of the enabled endpoints (`gate.rs` reads only
/// these, never the sealed secrets).
pub async fn enabled_filters(db: &D1Database) -> Result<Vec<String>, AppError> {
    #[derive(Deserialize)]
    struct Row {
        events: String,
    }
    let sql = "SELECT events FROM webhook_endpoints WHERE enabled = 1";
    let rows: Vec<Row> = rows(stmt(db, sql, &[])?).await?;
    Ok(rows.into_iter().map(|r| r.events).collect())
}

pub async fn get(db: &D1Database, id: &str) -> Result<Option<EndpointRow>, AppError> {
    let sql = format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE id = ?1");
    Ok(rows(stmt(db, &sql, &[text(id)])?).await?.into_iter().next())
}

/// Writes an endpoint's settings (and its secret, when rotated); gives
/// whether it still existed.
pub async fn update(db: &D1Database, e: &EndpointRow) -> Result<bool, AppError> {
    let sql = "UPDATE webhook_endpoints SET url = ?2, events = ?3, description = ?4, \
               secret = ?5, enabled = ?6, updated_at = ?7 WHERE id = ?1";
    let r = stmt(db, sql, &settings(e, e.updated_at))?
        .run()
        .await
        .map_err(AppError::internal)?;
    Ok(changes(&r) == 1)
}

/// Deletes an endpoint and its log; gives whether it existed.
pub async fn delete(db: &D1Database, id: &str) -> Result<bool, AppError> {
    let r = db
        .batch(vec![
            stmt(
                db,
                "DELETE FROM webhook_endpoints WHERE id = ?1",
                &[text(id)],
            )?,
            stmt(
                db,
                "DELETE FROM webhook_deliveries WHERE endpoint_id = ?1",
                &[text(id)],
            )?,
        ])
        .await
        .map_err(AppError::internal)?;
    Ok(r.first().is_some_and(|r| changes(r) == 1))
}

/// One attempt, as logged and as the API shows it.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Attempt {
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub session_id: String,
    pub attempt: u32,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub latency_ms: Option<u64>,
    pub error: Option<String>,
    pub next_retry_at: Option<i64>,
    pub at: i64,
}

/// Rows of the log older than its retention dropped per batch logged.
const PRUNE_ROWS: u32 = 200;

/// Logs attempts, one statement each in one batch, which also drops up to
/// `PRUNE_ROWS` rows older than `cutoff` (unix ms): the log keeps itself
/// trimmed with no scheduled job.
pub async fn log(db: &D1Database, attempts: &[Attempt], cutoff: i64) -> Result<(), AppError> {
    if attempts.is_empty() {
        return Ok(());
    }
    let sql = "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, session_id, \
               attempt, outcome, http_status, latency_ms, error, next_retry_at, at) \
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    let mut batch = Vec::with_capacity(attempts.len() + 1);
    batch.push(stmt(
        db,
        "DELETE FROM webhook_deliveries WHERE rowid IN \
         (SELECT rowid FROM webhook_deliveries WHERE at < ?1 LIMIT ?2)",
        &[num(cutoff), num(PRUNE_ROWS)],
    )?);
    for a in attempts {
        batch.push(stmt(
            db,
            sql,
            &[
                text(&a.endpoint_id),
                text(&a.event_id),
                text(&a.event_type),
                text(&a.session_id),
                num(a.attempt),
                text(a.outcome.as_str()),
                opt_num(a.http_status.map(u64::from)),
                opt_num(a.latency_ms),
                opt_text(a.error.as_deref()),
                a.next_retry_at
                    .map(num)
                    .unwrap_or(wasm_bindgen::JsValue::NULL),
                num(a.at),
            ],
        )?);
    }
    db.batch(batch).await.map_err(AppError::internal)?;
    Ok(())
}

/// An endpoint's newest attempts, newest first; `before` (unix ms) pages.
pub async fn deliveries(
    db: &D1Database,
    endpoint: &str,
    limit: u32,
    before: Option<i64>,
) -> Result<Vec<Attempt>, AppError> {
    let sql = "SELECT endpoint_id, event_id, event_type, session_id, attempt, outcome, \
               http_status, latency_ms, error, next_retry_at, at FROM webhook_deliveries \
               WHERE endpoint_id = ?1 AND at < ?2 ORDER BY at DESC, rowid DESC LIMIT ?3";
    let before = before.unwrap_or(i64::MAX / 2);
    let r = stmt(db, sql, &[text(endpoint), num(before), num(limit)])?
        .all()
        .await
        .map_err(AppError::internal)?;
    results(&r)
}

/// Re-seals under the active key every endpoint secret still under an
/// older one (key rotation, `POST /v1/admin/maintenance/reencrypt`; a
/// deployment has at most `MAX_ENDPOINTS`, so one call does them all).
/// Gives how many, and the endpoints whose secret no key opens.
pub async fn reseal(
    db: &D1Database,
    keys: &crate::crypto::Keyring,
) -> Result<(usize, Vec<super::maintenance::UnreadableRow>), AppError> {
    let prefix = keys.active_prefix();
    let mut updates = Vec::new();
    let mut unreadable = Vec::new();
    for e in list(db)
        .await?
        .into_iter()
        .filter(|e| !e.secret.starts_with(&prefix))
    {
        match keys.rotate(&crate::webhooks::deliver::secret_aad(&e.id), &e.secret) {
            Ok(sealed) => updates.push(stmt(
                db,
                "UPDATE webhook_endpoints SET secret = ?1 WHERE id = ?2 AND secret = ?3",
                &[text(&sealed), text(&e.id), text(&e.secret)],
            )?),
            Err(err) => unreadable.push(super::maintenance::UnreadableRow {
                table: "webhook_endpoints",
                key: e.id,
                code: err.code(),
            }),
        }
    }
    let n = updates.len();
    if n > 0 {
        db.batch(updates).await.map_err(AppError::internal)?;
    }
    Ok((n, unreadable))
}
