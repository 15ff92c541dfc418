//! The moderation queue in the home shard (`crate::moderation`,
//! `migrations/0013_moderation.sql`).

use super::{changes, num, opt_text, rows, stmt, text};
use crate::error::AppError;
use crate::moderation::filter::{Decision, Outcome, Source};
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
        by_filter: i64,
        first_at: i64,
        last_at: i64,
    }
    // Grouped by message; the keyset is (first report, session, seq).
    let sql = "SELECT session_id, seq, max(message_id) AS message_id, max(author_id) AS author_id, \
                      count(*) AS n, group_concat(reason) AS reasons, max(reporter_id = '') AS by_filter, \
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
            by_filter: r.by_filter > 0,
            first_reported_at: r.first_at,
            last_reported_at: r.last_at,
        })
        .collect())
}

/// Writes the filter's decisions, and a report from the filter (reporter
/// `''`, which no user id can be) for each message it flagged, in one
/// batch; both are idempotent, so a batch written twice changes nothing.
pub async fn record(db: &D1Database, decisions: &[Decision]) -> Result<(), AppError> {
    let log = "INSERT OR IGNORE INTO filter_log (id, at, session_id, user_id, source, action, detail, seq) \
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    let report = "INSERT INTO reports (id, session_id, seq, message_id, author_id, reporter_id, reason, status, created_at) \
                  VALUES (?1, ?2, ?3, ?4, ?5, '', 'abuse', 'open', ?6) \
                  ON CONFLICT (session_id, seq, reporter_id) DO NOTHING";
    let mut stmts = Vec::with_capacity(decisions.len() * 2);
    for d in decisions {
        let seq = d.seq.map_or(wasm_bindgen::JsValue::NULL, |s| num(s as i64));
        stmts.push(stmt(
            db,
            log,
            &[
                text(&d.id),
                num(d.at),
                text(&d.session_id),
                text(&d.user_id),
                text(d.source.as_str()),
                text(d.action.as_str()),
                text(&d.detail),
                seq.clone(),
            ],
        )?);
        if let (Some(_), Some(message_id)) = (d.seq, d.message_id.as_deref()) {
            stmts.push(stmt(
                db,
                report,
                &[
                    text(&crate::moderation::new_report_id()),
                    text(&d.session_id),
                    seq,
                    text(message_id),
                    text(&d.user_id),
                    num(d.at),
                ],
            )?);
        }
    }
    db.batch(stmts).await.map_err(AppError::internal)?;
    Ok(())
}

/// A page of the filter's decisions, newest first, before `(at, id)`.
pub async fn decisions(
    db: &D1Database,
    before: Option<(i64, &str)>,
    limit: u32,
) -> Result<Vec<Decision>, AppError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        at: i64,
        session_id: String,
        user_id: String,
        source: String,
        action: String,
        detail: String,
        seq: Option<i64>,
    }
    let sql = "SELECT id, at, session_id, user_id, source, action, detail, seq FROM filter_log \
               WHERE ?1 IS NULL OR at < ?1 OR (at = ?1 AND id < ?2) \
               ORDER BY at DESC, id DESC LIMIT ?3";
    let args = [
        before.map_or(wasm_bindgen::JsValue::NULL, |(at, _)| num(at)),
        opt_text(before.map(|(_, id)| id)),
        num(limit),
    ];
    let found: Vec<Row> = rows(stmt(db, sql, &args)?).await?;
    Ok(found
        .into_iter()
        .map(|r| Decision {
            id: r.id,
            at: r.at,
            session_id: r.session_id,
            user_id: r.user_id,
            source: if r.source == "ai" {
                Source::Ai
            } else {
                Source::Words
            },
            action: if r.action == "blocked" {
                Outcome::Blocked
            } else {
                Outcome::Flagged
            },
            detail: r.detail,
            seq: r.seq.map(|s| s.max(0) as u64),
            message_id: None,
        })
        .collect())
}
