//! The admin audit trail in the home shard (`crate::audit`,
//! `migrations/0010_audit.sql`).

use super::{num, opt_text, rows, stmt, text};
use crate::audit::{Cursor, Entry};
use crate::error::AppError;
use worker::D1Database;

/// Adds an entry and, with `keep_before` (unix ms), deletes the entries
/// older than it, in one batch (the `at` index serves the delete).
pub async fn insert(db: &D1Database, e: &Entry, keep_before: Option<i64>) -> Result<(), AppError> {
    let sql = "INSERT INTO audit_log (id, at, actor_id, level, action, method, target, status, request_id) \
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
    let args = [
        text(&e.id),
        num(e.at),
        text(&e.actor_id),
        text(&e.level),
        text(&e.action),
        text(&e.method),
        opt_text(e.target.as_deref()),
        num(e.status),
        text(&e.request_id),
    ];
    let mut batch = vec![stmt(db, sql, &args)?];
    if let Some(t) = keep_before {
        batch.push(stmt(db, "DELETE FROM audit_log WHERE at < ?1", &[num(t)])?);
    }
    db.batch(batch).await.map_err(AppError::internal)?;
    Ok(())
}

/// A page, newest first, after `cursor`; `action` and `actor` narrow it.
pub async fn list(
    db: &D1Database,
    action: Option<&str>,
    actor: Option<&str>,
    cursor: Option<&Cursor>,
    limit: u32,
) -> Result<Vec<Entry>, AppError> {
    // NULL parameters match everything, so one statement serves each
    // combination; the indexes lead with action, actor or at.
    let sql = "SELECT id, at, actor_id, level, action, method, target, status, request_id \
               FROM audit_log \
               WHERE (?1 IS NULL OR action = ?1) AND (?2 IS NULL OR actor_id = ?2) \
                 AND (?3 IS NULL OR at < ?3 OR (at = ?3 AND id < ?4)) \
               ORDER BY at DESC, id DESC LIMIT ?5";
    let args = [
        opt_text(action),
        opt_text(actor),
        cursor.map_or(wasm_bindgen::JsValue::NULL, |c| num(c.at)),
        opt_text(cursor.map(|c| c.id.as_str())),
        num(limit),
    ];
    rows(stmt(db, sql, &args)?).await
}
