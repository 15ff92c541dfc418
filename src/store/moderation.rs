//! The moderation queue in the home shard (`crate::moderation`,
//! `migrations/0013_moderation.sql`).

use super::{changes, num, opt_text, rows, stmt, text};
use crate::error::AppError;
use crate::moderation::{count_reasons, Cursor, QueueItem, Reason, Status, Target};
use serde::Deserialize;
use worker::D1Database;

/// Files a member's report of a message; a second report of the same
/// message by the same member changes nothing. Gives the report's id and
/// status (the first report's, for a repeat).
pub async fn file(
    db: &D1Database,
    (session, seq): (&str, u64),
    target: &Target,
    (reporter, reason): (&str, Reason),
    now: i64,
) -> Result<(String, Status, bool), AppError> {
    let id = crate::moderation::new_report_id();
    let insert = "INSERT INTO reports (id, session_id, seq, message_id, author_id, reporter_id, reason, status, created_at) \
                  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8) \
                  ON CONFLICT (session_id, seq, reporter_id) DO NOTHING";
    let args = [
        text(&id),
        text(session),
        num(seq as i64),
        text(&target.message_id),
        text(&target.author_id),
        text(reporter),
        text(reason.as_str()),
        num(now),
    ];
    let read =
        "SELECT id, status FROM reports WHERE session_id = ?1 AND seq = ?2 AND reporter_id = ?3";
    let results = db
        .batch(vec![
            stmt(db, insert, &args)?,
            stmt(db, read, &[text(session), num(seq as i64), text(reporter)])?,
        ])
        .await
        .map_err(AppError::internal)?;
    #[derive(Deserialize)]
    struct Row {
        id: String,
        status: String,
    }
    let created = results.first().map_or(0, changes) > 0;
    let row = results
        .get(1)
        .map(super::results::<Row>)
        .transpose()?
        .and_then(|mut r| r.pop())
        .ok_or_else(|| AppError::internal("report not read back"))?;
    let status = Status::parse(&row.status).unwrap_or(Status::Open);
    Ok((row.id, status, created))
}

/// Closes the open reports on a message as `status`; gives how many.
pub async fn resolve(
    db: &D1Database,
    (session, seq): (&str, u64),
    status: Status,
    by: &str,
    now: i64,
) -> Result<usize, AppError> {
    let sql = "UPDATE reports SET status = ?3, resolved_at = ?4, resolved_by = ?5 \
               WHERE session_id = ?1 AND seq = ?2 AND status = 'open'";
    let args = [
        text(session),
        num(seq as i64),
        text(status.as_str()),
        num(now),
        text(by),
    ];
    let r = stmt(db, sql, &args)?
        .run()
        .await
        .map_err(AppError::internal)?;
    Ok(changes(&r))
}

/// A page of the queue: messages with open reports, oldest first report
/// first, after `cursor`.
pub async fn queue(
    db: &D1Database,
    cursor: Option<&Cursor>,
    limit: u32,
) -> Result<Vec<QueueItem>, AppError> {
    #[derive(Deserialize)]
    struct Row {
        session_id: String,
        seq: i64,
        message_id: String,
        author_id: String,
        n: i64,
        reasons: String,
        first_at: i64,
        last_at: i64,
    }
    // Grouped by message; the keyset is (first report, session, seq).
    let sql = "SELECT session_id, seq, max(message_id) AS message_id, max(author_id) AS author_id, \
                      count(*) AS n, group_concat(reason) AS reasons, \
                      min(created_at) AS first_at, max(created_at) AS last_at \
               FROM reports WHERE status = 'open' GROUP BY session_id, seq \
               HAVING ?1 IS NULL OR first_at > ?1 OR (first_at = ?1 AND (session_id > ?2 OR (session_id = ?2 AND seq > ?3))) \
               ORDER BY first_at, session_id, seq LIMIT ?4";
    let args = [
        cursor.map_or(wasm_bindgen::JsValue::NULL, |c| num(c.at)),
        opt_text(cursor.map(|c| c.session.as_str())),
        num(cursor.map_or(0, |c| c.seq as i64)),
        num(limit),
    ];
    let found: Vec<Row> = rows(stmt(db, sql, &args)?).await?;
    Ok(found
        .into_iter()
        .map(|r| QueueItem {
            session_id: r.session_id,
            seq: r.seq.max(0) as u64,
            message_id: r.message_id,
            author_id: r.author_id,
            reports: r.n.max(0) as u32,
            reasons: count_reasons(&r.reasons),
            first_reported_at: r.first_at,
            last_reported_at: r.last_at,
        })
        .collect())
}
