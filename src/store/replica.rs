//! D1 as the replicated record of every session: the statements a session
//! object's flush sends (see `session/outbox.rs`): appended messages in
//! bulk, and each other change by what it names; and the load of a session
//! that D1 holds from before session logs existed.
//!
//! Every statement is idempotent: rows are upserted by (session, seq) or
//! (session, user) with the object's current values, and collections (a
//! message's edits, its reactions) are replaced whole. The one addition,
//! an assistant reply's usage, is applied only when its message row is
//! inserted, which happens once. Each is guarded by the sessions row, so a
//! flush that lands after an erase writes nothing.

use super::messages::{MessageRow, COLUMNS, COLUMN_COUNT};
pub use super::search::Indexer;
use super::{num, opt_num, opt_text, stmt, text};
use crate::error::AppError;
use crate::session::log::{Imported, Log, Meta, StoredMessage};
use crate::session::outbox::Topic;
use serde::Deserialize;
use serde_json::json;
use worker::{D1Database, D1PreparedStatement};

const LIVE: &str = "EXISTS (SELECT 1 FROM sessions WHERE id = ?1)";

/// A message row D1 already holds takes the log's current values.
const UPSERT: &str = "ON CONFLICT (session_id, seq) DO UPDATE SET body = excluded.body,
    edited_at = excluded.edited_at, deleted_at = excluded.deleted_at, provider = excluded.provider,
    model = excluded.model, tokens_in = excluded.tokens_in, tokens_out = excluded.tokens_out,
    ttft_ms = excluded.ttft_ms, latency_ms = excluded.latency_ms, finish_reason = excluded.finish_reason,
    incomplete = excluded.incomplete, tokens_cached = excluded.tokens_cached, cost_nanos = excluded.cost_nanos,
    superseded_at = excluded.superseded_at, profile = excluded.profile";

/// The statements that bring D1's copy of `(topic, key)` up to date.
pub fn statements(
    db: &D1Database,
    log: &Log,
    session: &str,
    (topic, key): (Topic, &str),
    index: Option<Indexer>,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let seq = || key.parse::<i64>().map_err(AppError::internal);
    match topic {
        Topic::Message => message(db, log, session, seq()?, index),
        Topic::Reactions => reactions(db, log, session, seq()?),
        Topic::Poll => poll(db, log, session, seq()?),
        Topic::Ratings => ratings(db, log, session, seq()?),
        Topic::ToolCall => tool_call(db, log, session, seq()?),
        Topic::Read => Ok(vec![match log.read_position(key)? {
            Some((seq, at)) => stmt(
                db,
                &format!(
                    "INSERT INTO read_positions (session_id, user_id, seq, updated_at) SELECT ?1, ?2, ?3, ?4 WHERE {LIVE}
                     ON CONFLICT (session_id, user_id) DO UPDATE SET seq = max(seq, excluded.seq), updated_at = excluded.updated_at"
                ),
                &[text(session), text(key), num(seq), num(at)],
            )?,
            None => stmt(
                db,
                "DELETE FROM read_positions WHERE session_id = ?1 AND user_id = ?2",
                &[text(session), text(key)],
            )?,
        }]),
        Topic::Member => Ok(vec![match log.member_since(key)? {
            Some(at) => stmt(
                db,
                &format!(
                    "INSERT INTO session_members (session_id, user_id, added_at) SELECT ?1, ?2, ?3 WHERE {LIVE}
                     ON CONFLICT DO NOTHING"
                ),
                &[text(session), text(key), num(at)],
            )?,
            None => stmt(
                db,
                "DELETE FROM session_members WHERE session_id = ?1 AND user_id = ?2",
                &[text(session), text(key)],
            )?,
        }]),
        Topic::Session => session_row(db, log, session),
        Topic::Counters => counters(db, log, session),
    }
}

/// Largest JSON parameter of one bulk append (D1 takes values up to
/// 2 MB; this leaves room and keeps each statement modest).
const APPEND_JSON_BYTES: usize = 512 * 1024;

/// Messages appended past the replica mark, as few statements as their
/// size allows: their usage first (added only while the row is not yet in
/// D1), then the rows, then the edit history of any edited meanwhile.
pub fn appends(
    db: &D1Database,
    log: &Log,
    session: &str,
    rows: &[StoredMessage],
    index: Option<Indexer>,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let mut out = Vec::new();
    let columns: Vec<String> = (0..COLUMN_COUNT)
        .map(|i| format!("json_extract(value, '$[{i}]')"))
        .collect();
    let insert = format!(
        "INSERT INTO messages (session_id, {COLUMNS}) SELECT ?1, {} FROM json_each(?2) WHERE {LIVE} {UPSERT}",
        columns.join(", ")
    );
    let mut chunk: Vec<serde_json::Value> = Vec::new();
    let mut bytes = 0;
    let flush = |chunk: &mut Vec<serde_json::Value>, out: &mut Vec<D1PreparedStatement>| {
        if chunk.is_empty() {
            return Ok::<(), AppError>(());
        }
        let list = serde_json::Value::from(std::mem::take(chunk)).to_string();
        out.push(stmt(db, &insert, &[text(session), text(&list)])?);
        Ok(())
    };
    for m in rows {
        let r = &m.row;
        let row = json!([
            r.seq,
            r.id,
            r.client_id,
            r.author_id,
            r.author_name,
            r.author_kind,
            r.body,
            r.reply_to,
            r.created_at,
            r.edited_at,
            r.deleted_at,
            r.provider,
            r.model,
            r.tokens_in,
            r.tokens_out,
            r.ttft_ms,
            r.latency_ms,
            r.finish_reason,
            r.incomplete,
            r.tokens_cached,
            r.cost_nanos,
            r.superseded_at,
            r.profile
        ]);
        let size = r.body.len() + 256;
        if bytes + size > APPEND_JSON_BYTES {
            flush(&mut chunk, &mut out)?;
            bytes = 0;
        }
        bytes += size;
        chunk.push(row);
    }
    flush(&mut chunk, &mut out)?;
    for m in rows {
        if m.row.edited_at.is_some() || m.row.deleted_at.is_some() {
            out.extend(history(db, log, session, m.row.seq)?);
        }
    }
    if let Some(ix) = index {
        out.extend(super::search::terms(
            db,
            ix,
            session,
            rows.iter().map(|m| &m.row),
        )?);
    }
    Ok(out)
}

/// An assistant reply's usage, added to its user's day in the home shard
/// (where budgets are reserved, `store::messages::reserve`) in place of
/// the turn's reservation, and to the usage ledger (by day, user, profile,
/// provider and model: `GET /v1/admin/usage`) and to its profile's day
/// (in place of the profile's reservation, if it held one): once, as the
/// `usage_settled` row written last in the same batch records. None for
/// any other message.
pub fn usage(
    home: &D1Database,
    session: &str,
    m: &StoredMessage,
) -> Result<Option<[D1PreparedStatement; 4]>, AppError> {
    let r = &m.row;
    let (Some(c), Some(i), Some(o)) = (&m.charge, r.tokens_in, r.tokens_out) else {
        return Ok(None);
    };
    // Settled by this path, or by the one before shards (which settled a
    // reply as its message reached D1, then always the home shard).
    let settled = "SELECT 1 FROM usage_settled WHERE session_id = ?1 AND seq = ?7
                   UNION ALL SELECT 1 FROM messages WHERE session_id = ?1 AND seq = ?7";
    let cost = r.cost_nanos.unwrap_or(0);
    Ok(Some([
        stmt(
            home,
            &format!(
                "INSERT INTO usage_daily (user_id, day, tokens_in, tokens_out, turns, cost_nanos)
                 SELECT ?2, ?3, ?4, ?5, 1, ?8 WHERE NOT EXISTS ({settled})
                 ON CONFLICT (user_id, day) DO UPDATE SET tokens_in = tokens_in + excluded.tokens_in,
                        tokens_out = tokens_out + excluded.tokens_out, turns = turns + 1,
                        reserved = max(0, reserved - ?6), cost_nanos = cost_nanos + excluded.cost_nanos,
                        reserved_nanos = max(0, reserved_nanos - ?9)"
            ),
            &[
                text(session),
                text(&c.user),
                text(&c.day),
                num(i),
                num(o),
                num(c.reserved as i64),
                num(r.seq),
                num(cost),
                num(c.reserved_nanos as i64),
            ],
        )?,
        stmt(
            home,
            &format!(
                "INSERT INTO usage_ledger (day, user_id, profile, provider, model, turns, tokens_in, tokens_out,
                        tokens_cached, cost_nanos, unpriced)
                 SELECT ?3, ?2, ?4, ?5, ?6, 1, ?8, ?9, ?10, ?11, ?12 WHERE NOT EXISTS ({settled})
                 ON CONFLICT (day, user_id, profile, provider, model) DO UPDATE SET turns = turns + 1,
                        tokens_in = tokens_in + excluded.tokens_in, tokens_out = tokens_out + excluded.tokens_out,
                        tokens_cached = tokens_cached + excluded.tokens_cached,
                        cost_nanos = cost_nanos + excluded.cost_nanos, unpriced = unpriced + excluded.unpriced"
            ),
            &[
                text(session),
                text(&c.user),
                text(&c.day),
                text(&c.profile),
                text(r.provider.as_deref().unwrap_or_default()),
                text(r.model.as_deref().unwrap_or_default()),
                num(r.seq),
                num(i),
                num(o),
                num(r.tokens_cached.unwrap_or(0)),
                num(cost),
                num(r.cost_nanos.is_none() as i64),
            ],
        )?,
        stmt(
            home,
            &format!(
                "INSERT INTO profile_daily (profile, day, tokens, cost_nanos)
                 SELECT ?2, ?3, ?4, ?5 WHERE NOT EXISTS ({settled})
                 ON CONFLICT (profile, day) DO UPDATE SET tokens = tokens + excluded.tokens,
                        cost_nanos = cost_nanos + excluded.cost_nanos,
                        reserved = max(0, reserved - ?6), reserved_nanos = max(0, reserved_nanos - ?8)"
            ),
            &[
                text(session),
                text(&c.profile),
                text(&c.day),
                num(i + o),
                num(cost),
                num(if c.profile_held { c.reserved as i64 } else { 0 }),
                num(r.seq),
                num(if c.profile_held { c.reserved_nanos as i64 } else { 0 }),
            ],
        )?,
        stmt(
            home,
            "INSERT OR IGNORE INTO usage_settled (session_id, seq, settled_at) VALUES (?1, ?2, ?3)",
            &[text(session), num(r.seq), num(super::now_ms())],
        )?,
    ]))
}

/// Replaces a message's edit history in D1 with the log's.
fn history(
    db: &D1Database,
    log: &Log,
    session: &str,
    seq: i64,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let edits: Vec<_> = log
        .edits(seq)?
        .into_iter()
        .map(|(at, body)| json!([at, body]))
        .collect();
    replace(
        db,
        session,
        seq,
        "DELETE FROM message_edits WHERE session_id = ?1 AND seq = ?2",
        "INSERT INTO message_edits (session_id, seq, edited_at, body)
         SELECT ?1, ?2, json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?3)",
        edits,
    )
}

/// The sessions row, with the log's absolute values.
fn session_row(
    db: &D1Database,
    log: &Log,
    session: &str,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let Some(m) = log.meta()?.filter(Meta::live) else {
        return Ok(vec![]);
    };
    let d = log.desk(&m)?.view();
    let a = d.assignee.as_ref();
    Ok(vec![stmt(
        db,
        "UPDATE sessions SET mode = ?2, human_assisted = ?3, last_seq = max(last_seq, ?4), message_count = ?5,
                tokens_in = ?6, tokens_out = ?7, turns = ?8, latency_ms_total = ?9, cost_nanos = ?17,
                updated_at = max(updated_at, ?10), status = ?11, assignee_id = ?12, assignee_name = ?13,
                waiting_since = ?14, first_agent_reply_at = ?15, resolved_at = ?16, profile = ?18
          WHERE id = ?1",
        &[
            text(session),
            text(&m.mode),
            num(m.human_assisted),
            num(m.last_seq),
            num(m.message_count),
            num(m.tokens_in),
            num(m.tokens_out),
            num(m.turns),
            num(m.latency_ms_total),
            num(m.updated_at),
            text(d.status.as_str()),
            opt_text(a.map(|a| a.id.as_str())),
            opt_text(a.map(|a| a.name.as_str())),
            num(d.waiting_since.unwrap_or(0)),
            opt_num(d.first_agent_reply_at.map(|t| t.max(0) as u64)),
            opt_num(d.resolved_at.map(|t| t.max(0) as u64)),
            num(m.cost_nanos),
            opt_text(m.profile.as_deref()),
        ],
    )?])
}

/// This session's counters, as absolute values (so a repeat counts nothing).
fn counters(
    db: &D1Database,
    log: &Log,
    session: &str,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    #[derive(Deserialize)]
    struct C {
        name: String,
        labels: String,
        value: f64,
    }
    let all: Vec<C> = log
        .sql()
        .exec("SELECT name, labels, value FROM counters", None)
        .and_then(|c| c.to_array())
        .map_err(AppError::internal)?;
    let list: Vec<_> = all
        .iter()
        .map(|c| json!([c.name, c.labels, c.value]))
        .collect();
    Ok(vec![stmt(
        db,
        &format!(
            "INSERT INTO session_metrics (session_id, name, labels, value)
             SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
               FROM json_each(?2) WHERE {LIVE}
             ON CONFLICT (session_id, name, labels) DO UPDATE SET value = excluded.value"
        ),
        &[text(session), text(&serde_json::Value::from(list).to_string())],
    )?])
}

fn message(
    db: &D1Database,
    log: &Log,
    session: &str,
    seq: i64,
    index: Option<Indexer>,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let Some(stored) = log.row(seq)? else {
        return Ok(vec![]);
    };
    let mut out: Vec<D1PreparedStatement> = Vec::new();
    let placeholders: Vec<String> = (2..COLUMN_COUNT + 2).map(|i| format!("?{i}")).collect();
    let mut args = vec![text(session)];
    args.extend(stored.row.js_values());
    out.push(stmt(
        db,
        &format!(
            "INSERT INTO messages (session_id, {COLUMNS}) SELECT ?1, {} WHERE {LIVE} {UPSERT}",
            placeholders.join(", ")
        ),
        &args,
    )?);
    // A message that was never edited or deleted has no history to copy.
    if stored.row.edited_at.is_some() || stored.row.deleted_at.is_some() {
        out.extend(history(db, log, session, seq)?);
    }
    if let Some(ix) = index {
        out.extend(super::search::terms(
            db,
            ix,
            session,
            std::iter::once(&stored.row),
        )?);
    }
    Ok(out)
}

fn reactions(
    db: &D1Database,
    log: &Log,
    session: &str,
    seq: i64,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let list: Vec<_> = log
        .reactions(seq)?
        .into_iter()
        .map(|(user, emoji, at)| json!([user, emoji, at]))
        .collect();
    replace(
        db,
        session,
        seq,
        "DELETE FROM reactions WHERE session_id = ?1 AND seq = ?2",
        "INSERT OR IGNORE INTO reactions (session_id, seq, user_id, emoji, created_at)
         SELECT ?1, ?2, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
           FROM json_each(?3)",
        list,
    )
}

/// A reply's ratings (reasons sealed, as stored), replaced whole.
fn ratings(
    db: &D1Database,
    log: &Log,
    session: &str,
    seq: i64,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let list: Vec<_> = log
        .ratings(seq.max(0) as u64)?
        .into_iter()
        .map(|r| json!([r.user_id, r.rating, r.reason, r.at]))
        .collect();
    replace(
        db,
        session,
        seq,
        "DELETE FROM message_ratings WHERE session_id = ?1 AND seq = ?2",
        "INSERT OR IGNORE INTO message_ratings (session_id, seq, user_id, rating, reason, at)
         SELECT ?1, ?2, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
                json_extract(value, '$[3]')
           FROM json_each(?3)",
        list,
    )
}

/// One of the assistant's function calls (arguments and result sealed, as
/// stored), upserted whole.
fn tool_call(
    db: &D1Database,
    log: &Log,
    session: &str,
    id: i64,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let Some(row) = log.tool_row(id)? else {
        return Ok(Vec::new());
    };
    let col = |i: usize| format!("json_extract(?2, '$[{i}]')");
    let values: Vec<String> = (0..13).map(col).collect();
    Ok(vec![stmt(
        db,
        &format!(
            "INSERT INTO tool_calls (session_id, reply, call_id, name, arguments, result, is_error, decision,
                                     decided_by, at, done_at, seq, result_seq, shown)
             SELECT ?1, {} WHERE {LIVE}
             ON CONFLICT (session_id, reply, call_id) DO UPDATE SET name = excluded.name,
               arguments = excluded.arguments, result = excluded.result, is_error = excluded.is_error,
               decision = excluded.decision, decided_by = excluded.decided_by, at = excluded.at,
               done_at = excluded.done_at, seq = excluded.seq, result_seq = excluded.result_seq,
               shown = excluded.shown",
            values.join(", ")
        ),
        &[text(session), text(&row.to_string())],
    )?])
}

/// A message's poll (sealed, as stored) and its votes, replaced whole; a
/// poll gone with its deleted message is deleted.
fn poll(
    db: &D1Database,
    log: &Log,
    session: &str,
    seq: i64,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let Some(p) = log.poll_rows(seq as u64, seq as u64)?.pop() else {
        return Ok(vec![
            stmt(
                db,
                "DELETE FROM poll_votes WHERE session_id = ?1 AND seq = ?2",
                &[text(session), num(seq)],
            )?,
            stmt(
                db,
                "DELETE FROM polls WHERE session_id = ?1 AND seq = ?2",
                &[text(session), num(seq)],
            )?,
        ]);
    };
    let mut out = vec![stmt(
        db,
        "INSERT INTO polls (session_id, seq, options, multiple, anonymous, closes_at, closed)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
          WHERE EXISTS (SELECT 1 FROM messages WHERE session_id = ?1 AND seq = ?2)
         ON CONFLICT (session_id, seq) DO UPDATE SET options = excluded.options, closed = excluded.closed",
        &[
            text(session),
            num(seq),
            text(&p.options),
            num(p.multiple),
            num(p.anonymous),
            opt_num(p.closes_at.map(|c| c.max(0) as u64)),
            num(p.closed),
        ],
    )?];
    let votes: Vec<_> = log
        .votes(seq as u64)?
        .into_iter()
        .map(|(user, choice, at)| json!([user, choice, at]))
        .collect();
    out.extend(replace(
        db,
        session,
        seq,
        "DELETE FROM poll_votes WHERE session_id = ?1 AND seq = ?2",
        "INSERT OR IGNORE INTO poll_votes (session_id, seq, user_id, choice, created_at)
         SELECT ?1, ?2, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
           FROM json_each(?3)",
        votes,
    )?);
    Ok(out)
}

/// Replaces a message's collection in D1 with `items`, if the message row
/// is there (it is upserted earlier in the same batch when new).
fn replace(
    db: &D1Database,
    session: &str,
    seq: i64,
    delete: &str,
    insert: &str,
    items: Vec<serde_json::Value>,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let mut out = vec![stmt(db, delete, &[text(session), num(seq)])?];
    if !items.is_empty() {
        out.push(stmt(
            db,
            &format!(
                "{insert} WHERE EXISTS (SELECT 1 FROM messages WHERE session_id = ?1 AND seq = ?2)"
            ),
            &[
                text(session),
                num(seq),
                text(&serde_json::Value::from(items).to_string()),
            ],
        )?);
    }
    Ok(out)
}

/// This session's replication state after a flush: how many changes are
/// left, and since when the oldest of them waits.
pub fn status(
    db: &D1Database,
    session: &str,
    pending: usize,
    oldest: Option<i64>,
    now: i64,
) -> Result<D1PreparedStatement, AppError> {
    stmt(
        db,
        &format!(
            "INSERT INTO replication (session_id, pending, oldest_at, flushed_at) SELECT ?1, ?2, ?3, ?4 WHERE {LIVE}
             ON CONFLICT (session_id) DO UPDATE SET pending = excluded.pending, oldest_at = excluded.oldest_at,
                    flushed_at = excluded.flushed_at"
        ),
        &[
            text(session),
            num(pending as i64),
            opt_num(oldest.map(|o| o.max(0) as u64)),
            num(now),
        ],
    )
}

/// Whether this shard holds the session's row.
pub async fn exists(db: &D1Database, session: &str) -> Result<bool, AppError> {
    let row: Option<serde_json::Value> = stmt(
        db,
        "SELECT 1 AS one FROM sessions WHERE id = ?1",
        &[text(session)],
    )?
    .first(None)
    .await
    .map_err(AppError::internal)?;
    Ok(row.is_some())
}

/// Rows of a session's messages read per query while loading.
const LOAD_PAGE: i64 = 500;

/// A session as D1 holds it, for an object that has no log of it yet
/// (created before session logs existed, or whose `init` never arrived),
/// all but its messages (`load_messages`). None when D1 has no such session.
/// (Long: the row types of one batch of five reads.)
pub async fn load(db: &D1Database, session: &str) -> Result<Option<Imported>, AppError> {
    #[derive(Deserialize)]
    struct S {
        owner_id: String,
        mode: String,
        human_assisted: i64,
        last_seq: i64,
        message_count: i64,
        tokens_in: i64,
        tokens_out: i64,
        turns: i64,
        latency_ms_total: i64,
        created_at: i64,
        updated_at: i64,
        profile: Option<String>,
    }
    let id = [text(session)];
    let first = db
        .batch(vec![
            stmt(
                db,
                "SELECT owner_id, mode, human_assisted, last_seq, message_count, tokens_in, tokens_out, turns,
                        latency_ms_total, created_at, updated_at, profile FROM sessions WHERE id = ?1",
                &id,
            )?,
            stmt(
                db,
                "SELECT user_id, added_at FROM session_members WHERE session_id = ?1",
                &id,
            )?,
            stmt(
                db,
                "SELECT seq, edited_at, body FROM message_edits WHERE session_id = ?1 ORDER BY id",
                &id,
            )?,
            stmt(
                db,
                "SELECT seq, user_id, emoji, created_at FROM reactions WHERE session_id = ?1",
                &id,
            )?,
            stmt(
                db,
                "SELECT user_id, seq, updated_at FROM read_positions WHERE session_id = ?1",
                &id,
            )?,
        ])
        .await
        .map_err(AppError::internal)?;
    let Some(s) = super::results::<S>(&first[0])?.into_iter().next() else {
        return Ok(None);
    };
    #[derive(Deserialize)]
    struct Member {
        user_id: String,
        added_at: i64,
    }
    #[derive(Deserialize)]
    struct Edit {
        seq: i64,
        edited_at: i64,
        body: String,
    }
    #[derive(Deserialize)]
    struct Reaction {
        seq: i64,
        user_id: String,
        emoji: String,
        created_at: i64,
    }
    #[derive(Deserialize)]
    struct Read {
        user_id: String,
        seq: i64,
        updated_at: i64,
    }
    Ok(Some(Imported {
        meta: Meta {
            id: session.to_string(),
            owner_id: s.owner_id,
            state: "live".into(),
            mode: s.mode,
            human_assisted: s.human_assisted,
            last_seq: s.last_seq,
            message_count: s.message_count,
            tokens_in: s.tokens_in,
            tokens_out: s.tokens_out,
            turns: s.turns,
            latency_ms_total: s.latency_ms_total,
            created_at: s.created_at,
            updated_at: s.updated_at,
            cost_nanos: 0,
            profile: s.profile,
        },
        members: super::results::<Member>(&first[1])?
            .into_iter()
            .map(|m| (m.user_id, m.added_at))
            .collect(),
        edits: super::results::<Edit>(&first[2])?
            .into_iter()
            .map(|e| (e.seq, e.edited_at, e.body))
            .collect(),
        reactions: super::results::<Reaction>(&first[3])?
            .into_iter()
            .map(|r| (r.seq, r.user_id, r.emoji, r.created_at))
            .collect(),
        reads: super::results::<Read>(&first[4])?
            .into_iter()
            .map(|r| (r.user_id, r.seq, r.updated_at))
            .collect(),
    }))
}

/// One page of a session's messages as D1 holds them: the `LOAD_PAGE`
/// after seq `after`, and whether more may follow. Loading goes page by
/// page into the log, so a long history never sits in memory whole.
pub async fn load_messages(
    db: &D1Database,
    session: &str,
    after: i64,
) -> Result<(Vec<MessageRow>, bool), AppError> {
    let page: Vec<MessageRow> = super::rows(stmt(
        db,
        &format!("SELECT {COLUMNS} FROM messages WHERE session_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"),
        &[text(session), num(after), num(LOAD_PAGE)],
    )?)
    .await?;
    let more = page.len() as i64 == LOAD_PAGE;
    Ok((page, more))
}
