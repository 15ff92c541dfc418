//! Sessions and their members.

use super::{changes, num, opt_text, stmt, text};
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use crate::model::{Contact, SessionCursor, SessionView, Unreadable};
use serde::Deserialize;
use worker::D1Database;

use crate::contract::Mode;
use crate::desk::Status;
use crate::protocol::UserRef;

#[derive(Deserialize)]
struct SessionRow {
    id: String,
    owner_id: String,
    title: Option<String>,
    contact_name: Option<String>,
    contact_email: Option<String>,
    // Read as text and parsed (`into_view`): serde's enum reader for D1
    // rows cost 0.8 KiB of the bundle.
    mode: String,
    profile: Option<String>,
    status: String,
    assignee_id: Option<String>,
    assignee_name: Option<String>,
    waiting_since: i64,
    first_agent_reply_at: Option<i64>,
    resolved_at: Option<i64>,
    last_seq: i64,
    message_count: i64,
    created_at: i64,
    updated_at: i64,
}

impl SessionRow {
    /// Opens the sealed fields; one that fails is null and listed as unreadable.
    fn into_view(self, keys: &Keyring) -> SessionView {
        let mut unreadable = Vec::new();
        let mut open = |field: Field, name: &str, value: Option<String>| -> Option<String> {
            let sealed = value?;
            match keys.open(&aad(field, &self.id, None), &sealed) {
                Ok(v) => Some(v),
                Err(e) => {
                    unreadable.push(Unreadable {
                        field: name.into(),
                        code: e.code().into(),
                    });
                    None
                }
            }
        };
        let title = open(Field::SessionTitle, "title", self.title);
        let name = open(Field::ContactName, "contact.name", self.contact_name);
        let email = open(Field::ContactEmail, "contact.email", self.contact_email);
        let contact = (name.is_some() || email.is_some()).then_some(Contact { name, email });
        SessionView {
            id: self.id,
            owner_id: self.owner_id,
            title,
            contact,
            // The columns' CHECK constraints allow only these values; the
            // fallbacks are the columns' defaults.
            mode: Mode::parse(&self.mode).unwrap_or(Mode::Assistant),
            profile: (self.profile).unwrap_or_else(|| crate::llm::DEFAULT_PROFILE.into()),
            status: Status::parse(&self.status).unwrap_or(Status::Open),
            assignee: match (self.assignee_id, self.assignee_name) {
                (Some(id), Some(name)) => Some(UserRef { id, name }),
                _ => None,
            },
            // 0 in D1 is "never waited" (it keys the listing's pages).
            waiting_since: Some(self.waiting_since).filter(|t| *t > 0),
            first_agent_reply_at: self.first_agent_reply_at,
            resolved_at: self.resolved_at,
            last_seq: self.last_seq.max(0) as u64,
            message_count: self.message_count.max(0) as u64,
            created_at: self.created_at,
            updated_at: self.updated_at,
            unreadable,
        }
    }
}

const COLUMNS: &str = "id, owner_id, title, contact_name, contact_email, mode, profile, status, assignee_id,
  assignee_name, waiting_since, first_agent_reply_at, resolved_at, last_seq, message_count, created_at, updated_at";

/// Creates a session's row in `db`, its shard (after `quota::take`).
pub async fn create(
    db: &D1Database,
    keys: &Keyring,
    id: &str,
    owner_id: &str,
    input: &crate::model::NewSession,
    now: i64,
) -> Result<(), AppError> {
    let (title, contact) = (input.title.as_deref(), input.contact.as_ref());
    stmt(
        db,
        "INSERT INTO sessions (id, owner_id, title, contact_name, contact_email, created_at, updated_at, profile)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
        &[
            text(id),
            text(owner_id),
            opt_text(title.map(|t| keys.seal(&aad(Field::SessionTitle, id, None), t)).as_deref()),
            opt_text(contact.and_then(|c| c.name.as_deref()).map(|n| keys.seal(&aad(Field::ContactName, id, None), n)).as_deref()),
            opt_text(contact.and_then(|c| c.email.as_deref()).map(|e| keys.seal(&aad(Field::ContactEmail, id, None), e)).as_deref()),
            num(now),
            opt_text(input.profile.as_deref()),
        ],
    )?
    .run()
    .await
    .map_err(AppError::internal)?;
    Ok(())
}

/// The sessions a user owns or belongs to, newest activity first: each
/// shard's first `limit`, merged.
pub async fn list_for_user(
    dbs: &[D1Database],
    keys: &Keyring,
    user_id: &str,
    after: Option<&SessionCursor>,
    limit: u32,
) -> Result<Vec<SessionView>, AppError> {
    let pages = super::each(dbs, |db| list_for_user_in(db, user_id, after, limit)).await?;
    // Sealed fields are opened only for the rows the merge keeps.
    let rows = crate::shards::merge(pages, limit as usize, |a, b| {
        (b.updated_at, &b.id).cmp(&(a.updated_at, &a.id))
    });
    Ok(rows.into_iter().map(|r| r.into_view(keys)).collect())
}

async fn list_for_user_in(
    db: &D1Database,
    user_id: &str,
    after: Option<&SessionCursor>,
    limit: u32,
) -> Result<Vec<SessionRow>, AppError> {
    // Two index range scans (owned, member of) merged by the keyset order.
    let sql = format!(
        "SELECT {COLUMNS} FROM sessions s
          WHERE (s.owner_id = ?1 OR s.id IN (SELECT session_id FROM session_members WHERE user_id = ?1))
            AND (?2 IS NULL OR s.updated_at < ?2 OR (s.updated_at = ?2 AND s.id < ?3))
          ORDER BY s.updated_at DESC, s.id DESC
          LIMIT ?4"
    );
    let (t, id) = match after {
        Some(c) => (num(c.updated_at), text(&c.id)),
        None => (wasm_bindgen::JsValue::NULL, wasm_bindgen::JsValue::NULL),
    };
    super::rows(stmt(db, &sql, &[text(user_id), t, id, num(limit)])?).await
}

/// The ids of the sessions `owner` owns, newest first, at most `limit`
/// (every shard asked).
pub async fn owned_by(
    dbs: &[D1Database],
    owner: &str,
    limit: u32,
) -> Result<Vec<String>, AppError> {
    #[derive(serde::Deserialize)]
    struct Row {
        id: String,
        created_at: i64,
    }
    let pages = super::each(dbs, |db| async move {
        let sql = "SELECT id, created_at FROM sessions WHERE owner_id = ?1
                    ORDER BY created_at DESC, id DESC LIMIT ?2";
        super::rows::<Row>(stmt(db, sql, &[text(owner), num(limit)])?).await
    })
    .await?;
    let rows = crate::shards::merge(pages, limit as usize, |a, b| {
        (b.created_at, &b.id).cmp(&(a.created_at, &a.id))
    });
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// A session in the admin listing: its view plus the figures it sorts by.
#[derive(serde::Serialize)]
pub struct AdminRow {
    #[serde(flatten)]
    pub session: SessionView,
    pub human_assisted: bool,
    pub tokens: i64,
    /// The value of the sort column, for the next page's cursor.
    #[serde(skip)]
    pub sort_value: i64,
}

/// Every session matching an admin's filters, one page (plus one row):
/// each shard's page, merged.
pub async fn list_all(
    dbs: &[D1Database],
    keys: &Keyring,
    query: &crate::listing::ListQuery,
) -> Result<Vec<AdminRow>, AppError> {
    let pages = super::each(dbs, |db| list_all_in(db, query)).await?;
    // `sql_tail` asks each shard for one row past the page. Sealed fields
    // are opened only for the rows the merge keeps.
    let rows = crate::shards::merge(pages, query.limit as usize + 1, |a, b| {
        query.order((a.sort_value, &a.session.id), (b.sort_value, &b.session.id))
    });
    Ok(rows
        .into_iter()
        .map(|r| AdminRow {
            session: r.session.into_view(keys),
            human_assisted: r.human_assisted != 0,
            tokens: r.tokens_total,
            sort_value: r.sort_value,
        })
        .collect())
}

/// A row of the admin listing as stored (sealed).
struct AdminListed {
    session: SessionRow,
    human_assisted: i64,
    tokens_total: i64,
    sort_value: i64,
}

/// The admin listing's columns beyond the session's own. Each row is read
/// twice, as a `SessionRow` and as this, rather than through
/// `#[serde(flatten)]`, which links serde's buffering deserializer.
#[derive(Deserialize)]
struct AdminFigures {
    human_assisted: i64,
    tokens_total: i64,
    sort_value: i64,
}

async fn list_all_in(
    db: &D1Database,
    query: &crate::listing::ListQuery,
) -> Result<Vec<AdminListed>, AppError> {
    use crate::listing::Param;
    let (tail, params) = query.sql_tail();
    let sql = format!(
        "SELECT {COLUMNS}, human_assisted, tokens_total, {} AS sort_value FROM sessions{tail}",
        query.sort.column()
    );
    let args: Vec<wasm_bindgen::JsValue> = params
        .iter()
        .map(|p| match p {
            Param::Text(t) => text(t),
            Param::Int(n) => num(*n),
        })
        .collect();
    let result = stmt(db, &sql, &args)?
        .all()
        .await
        .map_err(AppError::internal)?;
    let sessions: Vec<SessionRow> = super::results(&result)?;
    let figures: Vec<AdminFigures> = super::results(&result)?;
    Ok(sessions
        .into_iter()
        .zip(figures)
        .map(|(session, f)| AdminListed {
            session,
            human_assisted: f.human_assisted,
            tokens_total: f.tokens_total,
            sort_value: f.sort_value,
        })
        .collect())
}

/// Messages (with their edits, reactions and polls) deleted per D1 batch when a
/// session is erased, so a large session never makes one huge transaction.
const ERASE_CHUNK: i64 = 500;

/// Erases D1's copy of a session. Messages go in chunks of `ERASE_CHUNK`
/// seqs; the sessions row goes last, in one batch with the rest, so an
/// interrupted erase can be run again and a late replication flush (which
/// is guarded by the sessions row) writes nothing after it. The session's
/// counters are folded into the global ones first, so no counter goes back.
/// The home shard's record of the session's settled replies goes last.
pub async fn delete(db: &D1Database, home: &D1Database, id: &str) -> Result<(), AppError> {
    loop {
        let chunk = "seq IN (SELECT seq FROM messages WHERE session_id = ?1 ORDER BY seq LIMIT ?2)";
        let args = [text(id), num(ERASE_CHUNK)];
        let results = db
            .batch(vec![
                stmt(
                    db,
                    &format!("DELETE FROM reactions WHERE session_id = ?1 AND {chunk}"),
                    &args,
                )?,
                stmt(
                    db,
                    &format!("DELETE FROM poll_votes WHERE session_id = ?1 AND {chunk}"),
                    &args,
                )?,
                stmt(
                    db,
                    &format!("DELETE FROM message_ratings WHERE session_id = ?1 AND {chunk}"),
                    &args,
                )?,
                stmt(
                    db,
                    &format!("DELETE FROM polls WHERE session_id = ?1 AND {chunk}"),
                    &args,
                )?,
                stmt(
                    db,
                    &format!("DELETE FROM message_edits WHERE session_id = ?1 AND {chunk}"),
                    &args,
                )?,
                stmt(
                    db,
                    &format!("DELETE FROM search_terms WHERE session_id = ?1 AND {chunk}"),
                    &args,
                )?,
                stmt(
                    db,
                    &format!("DELETE FROM messages WHERE session_id = ?1 AND {chunk}"),
                    &args,
                )?,
            ])
            .await
            .map_err(AppError::internal)?;
        // The last statement deletes the messages themselves.
        if results.last().map_or(0, changes) < ERASE_CHUNK as usize {
            break;
        }
    }
    let tables = [
        "INSERT INTO metrics (name, labels, value) SELECT name, labels, value FROM session_metrics WHERE session_id = ?1
         ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value",
        "DELETE FROM session_metrics WHERE session_id = ?1",
        "DELETE FROM replication WHERE session_id = ?1",
        "DELETE FROM read_positions WHERE session_id = ?1",
        "DELETE FROM session_members WHERE session_id = ?1",
        "DELETE FROM tool_calls WHERE session_id = ?1",
        "DELETE FROM sessions WHERE id = ?1",
    ];
    let stmts = tables
        .iter()
        .map(|sql| stmt(db, sql, &[text(id)]))
        .collect::<Result<Vec<_>, _>>()?;
    db.batch(stmts).await.map_err(AppError::internal)?;
    let home_tables = [
        "DELETE FROM usage_settled WHERE session_id = ?1",
        // Reports and the filter's decisions name its messages and people.
        "DELETE FROM reports WHERE session_id = ?1",
        "DELETE FROM filter_log WHERE session_id = ?1",
    ];
    let stmts = home_tables
        .iter()
        .map(|sql| stmt(home, sql, &[text(id)]))
        .collect::<Result<Vec<_>, _>>()?;
    home.batch(stmts).await.map_err(AppError::internal)?;
    Ok(())
}

/// Assistant usage and response times of a session, for the admin view.
pub async fn usage(db: &D1Database, id: &str) -> Result<serde_json::Value, AppError> {
    #[derive(Deserialize)]
    struct Row {
        tokens_in: Option<i64>,
        tokens_out: Option<i64>,
        turns: Option<i64>,
        cost_nanos: Option<i64>,
        priced: Option<i64>,
        avg_latency_ms: Option<f64>,
        max_latency_ms: Option<i64>,
        avg_ttft_ms: Option<f64>,
        max_ttft_ms: Option<i64>,
        incomplete: Option<i64>,
    }
    let row: Option<Row> = stmt(
        db,
        "SELECT s.tokens_in, s.tokens_out, s.turns, s.cost_nanos, count(m.cost_nanos) AS priced,
                avg(m.latency_ms) AS avg_latency_ms, max(m.latency_ms) AS max_latency_ms,
                avg(m.ttft_ms) AS avg_ttft_ms, max(m.ttft_ms) AS max_ttft_ms,
                sum(m.incomplete) AS incomplete
           FROM sessions s LEFT JOIN messages m ON m.session_id = s.id AND m.provider IS NOT NULL
          WHERE s.id = ?1 GROUP BY s.id",
        &[text(id)],
    )?
    .first(None)
    .await
    .map_err(AppError::internal)?;
    let r = row.ok_or(AppError::NotFound)?;
    Ok(serde_json::json!({
        "tokens_in": r.tokens_in.unwrap_or(0),
        "tokens_out": r.tokens_out.unwrap_or(0),
        "turns": r.turns.unwrap_or(0),
        // Replies of models without a price add nothing: counted apart.
        "cost_usd": crate::llm::price::Usd(r.cost_nanos.unwrap_or(0).max(0) as u64),
        "unpriced_turns": (r.turns.unwrap_or(0) - r.priced.unwrap_or(0)).max(0),
        "incomplete_turns": r.incomplete.unwrap_or(0),
        "latency_ms": {"avg": r.avg_latency_ms.map(f64::round), "max": r.max_latency_ms},
        "ttft_ms": {"avg": r.avg_ttft_ms.map(f64::round), "max": r.max_ttft_ms},
    }))
}

/// Users' ratings of the session's replies, oldest reply first, reasons
/// opened (one that does not open is left out, its rating kept).
pub async fn feedback(
    db: &D1Database,
    keys: &crate::crypto::Keyring,
    id: &str,
) -> Result<Vec<serde_json::Value>, AppError> {
    use crate::crypto::{aad, Field};
    let rows: Vec<serde_json::Value> = super::rows(stmt(
        db,
        "SELECT seq, user_id, rating, reason, at FROM message_ratings WHERE session_id = ?1
          ORDER BY seq, at LIMIT 1000",
        &[text(id)],
    )?)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let seq = r["seq"].as_f64().unwrap_or(0.0) as u64;
            let user = r["user_id"].as_str().unwrap_or_default();
            let reason = r["reason"].as_str().and_then(|sealed| {
                let id_of = crate::session::log::reason_id(seq, user);
                keys.open(&aad(Field::RatingReason, id, Some(&id_of)), sealed)
                    .ok()
            });
            serde_json::json!({
                "seq": seq, "user_id": user, "rating": r["rating"],
                "reason": reason, "at": r["at"],
            })
        })
        .collect())
}

/// A session by id, whoever owns it (admins only).
pub async fn get_any(
    db: &D1Database,
    keys: &Keyring,
    id: &str,
) -> Result<Option<SessionView>, AppError> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1");
    let row: Option<SessionRow> = stmt(db, &sql, &[text(id)])?
        .first(None)
        .await
        .map_err(AppError::internal)?;
    Ok(row.map(|r| r.into_view(keys)))
}
