//! Replication to D1: what D1 has not confirmed yet, and the flush.
//!
//! A new message needs no outbox row: messages past the *replica mark*
//! (the highest seq D1 has confirmed) are appended to D1 by seq, many in
//! one statement, so the hot path writes the message alone. Every other
//! change to the log touches one outbox row in the same synchronous block
//! (so the same transaction): `(topic, key)` names what changed (an edited
//! or deleted message, its reactions, a read position, a member, the
//! session row, the counters), never a copy of it. A flush reads the current state of
//! each named thing and writes it to D1 with idempotent upserts keyed by
//! session and seq/user, so a retried or repeated flush never duplicates,
//! and many changes to one thing between flushes cost one write.
//!
//! An outbox row is deleted, and the mark moved, only after D1 confirmed
//! the batch holding them, and a row only if it was not touched again
//! meanwhile (`ver`), so nothing is dropped. The alarm runs a flush at most `REPLICATION_INTERVAL_MS` after
//! the first unflushed change; while D1 fails it backs off (doubling up to
//! `MAX_BACKOFF_MS`) and chat carries on. Each flush also records this
//! session's remaining depth and oldest change in D1's `replication`
//! table, from which `/metrics` and `/readyz` report the lag.
//!
//! Everything goes to the session's own D1 shard, except the usage of
//! assistant replies, which is settled in the home shard where budgets
//! are kept (`crate::shards`), before the shard's batch.

use super::log::{Log, StoredMessage};
use crate::error::AppError;
use crate::store::replica;
use serde::Deserialize;
use std::cell::Cell;
use worker::{D1Database, D1PreparedStatement, SqlStorage, SqlStorageValue as V};

/// Outbox rows per flush: one D1 batch of at most a few statements each,
/// well inside D1's per-invocation query limits.
pub const FLUSH_ROWS: usize = 40;
/// Appended messages per flush, written by one statement (a JSON array
/// parameter, well inside D1's 100 KB statement limit for chat-sized
/// messages).
pub const FLUSH_APPENDS: usize = 100;
/// The longest wait between attempts while D1 fails.
pub const MAX_BACKOFF_MS: i64 = 30_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
  topic TEXT NOT NULL, key TEXT NOT NULL, ver INTEGER NOT NULL, since INTEGER NOT NULL,
  PRIMARY KEY (topic, key));
CREATE INDEX IF NOT EXISTS outbox_since ON outbox (since);
CREATE TABLE IF NOT EXISTS counters (
  name TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (name, labels));
";

/// What an outbox row names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// A message row (new, edited, deleted, re-sealed) and its edit history.
    Message,
    /// The reactions on one message.
    Reactions,
    /// The poll on one message and its votes.
    Poll,
    /// Users' ratings of one assistant reply.
    Ratings,
    /// One function call of the assistant's (by its row in `tool_calls`).
    ToolCall,
    /// One user's read position.
    Read,
    /// One user's membership (added or removed).
    Member,
    /// The session row: mode, counts, usage totals.
    Session,
    /// This session's metric counters.
    Counters,
}

impl Topic {
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Message => "message",
            Topic::Reactions => "reactions",
            Topic::Poll => "poll",
            Topic::Ratings => "ratings",
            Topic::ToolCall => "tool_call",
            Topic::Read => "read",
            Topic::Member => "member",
            Topic::Session => "session",
            Topic::Counters => "counters",
        }
    }

    fn parse(s: &str) -> Option<Topic> {
        [
            Topic::Message,
            Topic::Reactions,
            Topic::Poll,
            Topic::Ratings,
            Topic::ToolCall,
            Topic::Read,
            Topic::Member,
            Topic::Session,
            Topic::Counters,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    /// Within one batch: rows before what refers to them (a message before
    /// its reactions), the session row's absolute totals last.
    fn rank(self) -> u8 {
        match self {
            Topic::Message => 0,
            Topic::Reactions
            | Topic::Poll
            | Topic::Ratings
            | Topic::ToolCall
            | Topic::Read
            | Topic::Member => 1,
            Topic::Counters => 2,
            Topic::Session => 3,
        }
    }
}

/// The replication state machine (in memory; the outbox itself is stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// Nothing scheduled (as far as this instance knows).
    Idle,
    /// The alarm will flush at this time (unix ms).
    Scheduled(i64),
    /// D1 failed `failures` times in a row; the next try is at `retry_at`.
    BackingOff { failures: u32, retry_at: i64 },
}

/// How a flush went.
pub enum Flushed {
    /// The outbox is empty.
    Drained,
    /// More rows wait; flush again at once.
    More,
}

pub struct Outbox {
    state: Cell<Replication>,
    /// Counts too frequent to write one by one (client frames by type):
    /// added up in memory and written to `counters` when a flush begins,
    /// so a frame costs no storage write. A reset loses at most what came
    /// since the last flush.
    pending: std::cell::RefCell<Vec<(&'static str, String, f64)>>,
}

#[derive(Deserialize)]
struct Row {
    topic: String,
    key: String,
    ver: i64,
}

impl Outbox {
    pub fn open(sql: &SqlStorage) -> Outbox {
        let _ = sql.exec(SCHEMA, None);
        Outbox {
            state: Cell::new(Replication::Idle),
            pending: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// After the storage was wiped: the tables again, nothing scheduled.
    pub fn reset(&self, sql: &SqlStorage) {
        let _ = sql.exec(SCHEMA, None);
        self.state.set(Replication::Idle);
    }

    pub fn state(&self) -> Replication {
        self.state.get()
    }

    pub fn set_state(&self, s: Replication) {
        self.state.set(s);
    }

    /// Records that `(topic, key)` changed at `now`; the oldest unflushed
    /// change time is kept (it measures the lag).
    pub fn touch(
        &self,
        sql: &SqlStorage,
        topic: Topic,
        key: &str,
        now: i64,
    ) -> Result<(), AppError> {
        sql.exec(
            "INSERT INTO outbox (topic, key, ver, since) VALUES (?, ?, 1, ?)
             ON CONFLICT (topic, key) DO UPDATE SET ver = ver + 1",
            vec![V::from(topic.as_str()), V::from(key), V::Integer(now)],
        )
        .map_err(AppError::internal)?;
        Ok(())
    }

    /// Adds one to a counter in memory, for `fold` to write.
    pub fn count_later(&self, name: &'static str, labels: &str) {
        let mut p = self.pending.borrow_mut();
        match p.iter_mut().find(|(n, l, _)| *n == name && l == labels) {
            Some(entry) => entry.2 += 1.0,
            None => p.push((name, labels.to_string(), 1.0)),
        }
    }

    /// Writes the counts kept in memory to `counters`.
    pub fn fold(&self, sql: &SqlStorage, now: i64) -> Result<(), AppError> {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for (name, labels, by) in &pending {
            self.count(sql, name, labels, *by, now)?;
        }
        Ok(())
    }

    /// Adds `by` to a counter of this session (flushed with the rest).
    pub fn count(
        &self,
        sql: &SqlStorage,
        name: &str,
        labels: &str,
        by: f64,
        now: i64,
    ) -> Result<(), AppError> {
        sql.exec(
            "INSERT INTO counters (name, labels, value) VALUES (?, ?, ?)
             ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value",
            vec![V::from(name), V::from(labels), V::Float(by)],
        )
        .map_err(AppError::internal)?;
        self.touch(sql, Topic::Counters, "", now)
    }

    /// How many changes wait (appended messages past the mark, and outbox
    /// rows), and since when the oldest.
    pub fn depth(&self, log: &Log) -> Result<(usize, Option<i64>), AppError> {
        #[derive(Deserialize)]
        struct D {
            n: i64,
            oldest: Option<i64>,
        }
        let d = log
            .sql()
            .exec(
                "SELECT count(*) AS n, min(since) AS oldest FROM outbox",
                None,
            )
            .and_then(|c| c.one::<D>())
            .map_err(AppError::internal)?;
        let (appended, first) = self.appended(log)?;
        let oldest = [d.oldest, first].into_iter().flatten().min();
        Ok((d.n.max(0) as usize + appended, oldest))
    }

    /// Messages appended past the mark, and when the first of them was.
    fn appended(&self, log: &Log) -> Result<(usize, Option<i64>), AppError> {
        let Some(meta) = log.meta()? else {
            return Ok((0, None));
        };
        let mark = log.replica_mark()?;
        if meta.last_seq <= mark {
            return Ok((0, None));
        }
        Ok(((meta.last_seq - mark) as usize, log.created_at(mark + 1)?))
    }

    /// Writes to D1, in one batch, up to `FLUSH_APPENDS` appended messages
    /// (one statement for all of them) and up to `FLUSH_ROWS` outbox rows,
    /// then the session row; afterwards moves the mark and forgets the
    /// outbox rows that were not touched again meanwhile. `db` is the
    /// session's shard; assistant replies' usage is settled first, in the
    /// `home` shard, where budgets are kept (idempotent, so a flush that
    /// fails after it repeats it harmlessly).
    pub async fn flush(
        &self,
        log: &Log,
        (db, home): (&D1Database, &D1Database),
        session: &str,
        now: i64,
        index: Option<replica::Indexer<'_>>,
    ) -> Result<Flushed, AppError> {
        let sql = log.sql();
        let (depth, oldest) = self.depth(log)?;
        let mark = log.replica_mark()?;
        let appended = log.rows_after(mark, FLUSH_APPENDS + 1)?;
        let mut rows: Vec<Row> = sql
            .exec(
                "SELECT topic, key, ver FROM outbox ORDER BY since, topic, key LIMIT ?",
                vec![V::Integer(FLUSH_ROWS as i64 + 1)],
            )
            .and_then(|c| c.to_array())
            .map_err(AppError::internal)?;
        let more = rows.len() > FLUSH_ROWS || appended.len() > FLUSH_APPENDS;
        rows.truncate(FLUSH_ROWS);
        let appended = &appended[..appended.len().min(FLUSH_APPENDS)];
        let new_mark = appended.last().map_or(mark, |m| m.row.seq);
        crate::sort::sort_by_key(&mut rows, |r| Topic::parse(&r.topic).map_or(9, Topic::rank));
        // A message's reactions or poll are written to D1 only where D1
        // has the message (their statements are guarded by its row), so
        // those of a message past this flush's appends wait for a later
        // flush rather than be written as nothing and dropped. (Only a
        // backlog of more than FLUSH_APPENDS leaves such messages, so
        // `more` is already set.)
        rows.retain(|r| {
            let waits = matches!(Topic::parse(&r.topic), Some(Topic::Reactions | Topic::Poll));
            !(waits && r.key.parse::<i64>().is_ok_and(|seq| seq > new_mark))
        });

        if let Err(e) = settle(home, session, appended).await {
            let alone = replica::status(db, session, depth, oldest, now)?;
            let _ = db.batch(vec![alone]).await;
            return Err(e);
        }
        // Appends first: what the other statements refer to.
        let mut stmts: Vec<D1PreparedStatement> =
            replica::appends(db, log, session, appended, index)?;
        for r in &rows {
            let Some(topic) = Topic::parse(&r.topic) else {
                continue;
            };
            stmts.extend(replica::statements(
                db,
                log,
                session,
                (topic, &r.key),
                index,
            )?);
        }
        if !appended.is_empty() && !rows.iter().any(|r| r.topic == Topic::Session.as_str()) {
            stmts.extend(replica::statements(
                db,
                log,
                session,
                (Topic::Session, ""),
                index,
            )?);
        }
        let pending = depth.saturating_sub(rows.len() + appended.len());
        let left_oldest = if pending > 0 {
            left_oldest(log, rows.len(), new_mark)?
        } else {
            None
        };
        stmts.push(replica::status(db, session, pending, left_oldest, now)?);
        if let Err(e) = db.batch(stmts).await {
            // The batch is one transaction, so its status row is gone too.
            // Record the backlog on its own where D1 still takes writes (a
            // failing statement rather than D1 down), so the lag shows.
            let alone = replica::status(db, session, depth, oldest, now)?;
            let _ = db.batch(vec![alone]).await;
            return Err(AppError::internal(e));
        }
        // Both in one synchronous block: one local commit.
        log.set_replica_mark(new_mark)?;
        let done: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| serde_json::json!([r.topic, r.key, r.ver]))
            .collect();
        if !done.is_empty() {
            sql.exec(
                "DELETE FROM outbox WHERE (topic, key, ver) IN
                   (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
                      FROM json_each(?))",
                vec![V::String(serde_json::Value::from(done).to_string())],
            )
            .map_err(AppError::internal)?;
        }
        Ok(if more {
            Flushed::More
        } else {
            Flushed::Drained
        })
    }
}

#[derive(Deserialize)]
struct Since {
    since: i64,
}

/// When the oldest change this flush leaves behind was made: the first
/// message past the new mark, or the first outbox row past this flush's.
fn left_oldest(log: &Log, flushed_rows: usize, new_mark: i64) -> Result<Option<i64>, AppError> {
    let next = log.created_at(new_mark + 1)?;
    let outbox_next: Option<i64> = if flushed_rows == FLUSH_ROWS {
        log.sql()
            .exec(
                "SELECT since FROM outbox ORDER BY since, topic, key LIMIT 1 OFFSET ?",
                vec![V::Integer(FLUSH_ROWS as i64)],
            )
            .and_then(|c| c.to_array::<Since>())
            .map_err(AppError::internal)?
            .first()
            .map(|s| s.since)
    } else {
        None
    };
    Ok([next, outbox_next].into_iter().flatten().min())
}

/// Settles the usage of the assistant replies among `appended` in the home
/// shard, in one batch (idempotent: see `replica::usage`).
async fn settle(
    home: &D1Database,
    session: &str,
    appended: &[StoredMessage],
) -> Result<(), AppError> {
    let mut stmts = Vec::new();
    for m in appended {
        stmts.extend(replica::usage(home, session, m)?.into_iter().flatten());
    }
    if !stmts.is_empty() {
        home.batch(stmts).await.map_err(AppError::internal)?;
    }
    Ok(())
}

/// The wait before the next try after `failures` failed flushes.
pub fn backoff_ms(interval_ms: i64, failures: u32) -> i64 {
    let doubled = interval_ms.saturating_mul(1i64 << failures.min(16));
    doubled.clamp(interval_ms, MAX_BACKOFF_MS.max(interval_ms))
}
