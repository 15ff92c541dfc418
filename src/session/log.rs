//! The session log: the object's own SQLite storage is the system of
//! record for one session's messages, edits, reactions, read positions,
//! members and mode.
//!
//! Every write here is synchronous and touches the outbox (`outbox.rs`) in
//! the same synchronous block. The runtime commits all writes made between
//! two awaits as one transaction, and its output gate holds every frame the
//! object sends until that transaction is durable. So a group of sends and
//! their outbox rows commit together (group commit), and an ack or
//! broadcast never leaves before the message it announces is on disk.
//!
//! Bodies are sealed exactly as they are in D1 (same AAD: session id and
//! message id), so replication copies them as they are and either store
//! can be read with the same keyring.

use super::outbox::{Outbox, Topic};
use crate::contract::Mode;
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use crate::protocol::{Author, AuthorKind, MessageView, ReactionSummary, ReadPosition};
use crate::store::messages::{Charge, MessageRow, NewMessage, COLUMNS};
use serde::Deserialize;
use std::cell::RefCell;
use worker::{SqlStorage, SqlStorageValue as V};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS session (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  id TEXT NOT NULL,
  owner_id TEXT NOT NULL,
  -- 'live', or 'erased' (a tombstone: the session never comes back)
  state TEXT NOT NULL,
  mode TEXT NOT NULL,
  human_assisted INTEGER NOT NULL DEFAULT 0,
  last_seq INTEGER NOT NULL DEFAULT 0,
  message_count INTEGER NOT NULL DEFAULT 0,
  tokens_in INTEGER NOT NULL DEFAULT 0,
  tokens_out INTEGER NOT NULL DEFAULT 0,
  turns INTEGER NOT NULL DEFAULT 0,
  latency_ms_total INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS members (user_id TEXT PRIMARY KEY, added_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL, client_id TEXT,
  author_id TEXT NOT NULL, author_name TEXT NOT NULL, author_kind TEXT NOT NULL,
  body TEXT NOT NULL, reply_to INTEGER, created_at INTEGER NOT NULL,
  edited_at INTEGER, deleted_at INTEGER,
  provider TEXT, model TEXT, tokens_in INTEGER, tokens_out INTEGER, ttft_ms INTEGER,
  latency_ms INTEGER, finish_reason TEXT, incomplete INTEGER NOT NULL DEFAULT 0,
  -- JSON {user, day, reserved}: whom an assistant reply is charged to, until
  -- replication has settled it in D1's usage_daily.
  charge TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS messages_client ON messages (client_id, author_kind, author_id)
  WHERE client_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS message_edits (
  id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, edited_at INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS message_edits_seq ON message_edits (seq);
CREATE TABLE IF NOT EXISTS reactions (
  seq INTEGER NOT NULL, user_id TEXT NOT NULL, emoji TEXT NOT NULL, created_at INTEGER NOT NULL,
  PRIMARY KEY (seq, emoji, user_id));
CREATE TABLE IF NOT EXISTS read_positions (
  user_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, updated_at INTEGER NOT NULL);
-- The highest seq D1 has confirmed as appended (see outbox.rs): messages
-- above it are replicated by seq, without an outbox row each.
CREATE TABLE IF NOT EXISTS replica_mark (one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL);
-- The assistant's reply in progress (see progress.rs).
CREATE TABLE IF NOT EXISTS turn_progress (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  message_id TEXT NOT NULL, author_name TEXT NOT NULL,
  -- JSON: who asked (UserRef), and whom the turn is charged to (Charge)
  asked_by TEXT NOT NULL, charge TEXT NOT NULL,
  provider TEXT NOT NULL, model TEXT NOT NULL,
  body TEXT NOT NULL, started_at INTEGER NOT NULL, saved_at INTEGER NOT NULL);
";

/// The session row, kept in memory while the object is awake.
#[derive(Deserialize, Debug, Clone)]
pub struct Meta {
    pub id: String,
    pub owner_id: String,
    pub state: String,
    pub mode: String,
    pub human_assisted: i64,
    pub last_seq: i64,
    pub message_count: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub turns: i64,
    pub latency_ms_total: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Meta {
    pub fn live(&self) -> bool {
        self.state == "live"
    }

    pub fn mode(&self) -> Mode {
        Mode::parse(&self.mode).unwrap_or(Mode::Assistant)
    }
}

/// What a send became.
pub struct Appended {
    pub view: MessageView,
    /// Its client id was already stored (a retry): `view` holds the
    /// original's seq and id, and nothing new was stored.
    pub duplicate: bool,
}

/// What an author-only change found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Done,
    NotFound,
    Forbidden,
    Deleted,
}

/// What a reaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reacted {
    Changed,
    /// Already so: nothing to tell anyone.
    Unchanged,
    /// No such message, or it was deleted.
    Missing,
    /// The user already has `cap` distinct reactions on the message.
    TooMany,
}

pub struct Log {
    sql: SqlStorage,
    meta: RefCell<Option<Meta>>,
}

fn int(n: impl TryInto<i64>) -> V {
    V::Integer(n.try_into().unwrap_or(i64::MAX))
}

fn s(text: &str) -> V {
    V::String(text.to_string())
}

fn err(e: worker::Error) -> AppError {
    AppError::internal(e)
}

impl Log {
    /// Opens the log, creating its tables on first use. A failure here
    /// shows again, with its reason, on the first query that needs them.
    pub fn open(sql: SqlStorage) -> Log {
        let _ = sql.exec(SCHEMA, None);
        Log {
            sql,
            meta: RefCell::new(None),
        }
    }

    pub fn sql(&self) -> &SqlStorage {
        &self.sql
    }

    fn exec(&self, q: &str, args: Vec<V>) -> Result<worker::SqlCursor, AppError> {
        self.sql.exec(q, args).map_err(err)
    }

    fn all<T: for<'de> Deserialize<'de>>(&self, q: &str, args: Vec<V>) -> Result<Vec<T>, AppError> {
        self.exec(q, args)?.to_array::<T>().map_err(err)
    }

    /// The session row, or None when this object holds no session (yet).
    pub fn meta(&self) -> Result<Option<Meta>, AppError> {
        if let Some(m) = self.meta.borrow().as_ref() {
            return Ok(Some(m.clone()));
        }
        let Some(mut m) = self
            .all::<Meta>("SELECT * FROM session WHERE one = 1", vec![])?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        // Appending a user's message writes only the message (the hot
        // path), so the stored row may trail the messages: the newest one
        // has the true last seq and activity time, and seqs are gap-free,
        // so every seq past the stored one is one more message.
        #[derive(Deserialize)]
        struct Top {
            seq: i64,
            created_at: i64,
        }
        let top = self
            .all::<Top>(
                "SELECT seq, created_at FROM messages ORDER BY seq DESC LIMIT 1",
                vec![],
            )?
            .into_iter()
            .next();
        if let Some(t) = top.filter(|t| t.seq > m.last_seq) {
            m.message_count += t.seq - m.last_seq;
            m.last_seq = t.seq;
            m.updated_at = m.updated_at.max(t.created_at);
        }
        *self.meta.borrow_mut() = Some(m.clone());
        Ok(Some(m))
    }

    /// The live session, or NotFound (never created, or erased).
    pub fn live(&self) -> Result<Meta, AppError> {
        self.meta()?.filter(Meta::live).ok_or(AppError::NotFound)
    }

    /// Starts the log of a new (or imported) session; a no-op when one exists.
    pub fn init(&self, m: &Meta) -> Result<(), AppError> {
        self.exec(
            "INSERT OR IGNORE INTO session (one, id, owner_id, state, mode, human_assisted, last_seq, message_count,
               tokens_in, tokens_out, turns, latency_ms_total, created_at, updated_at)
             VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                s(&m.id),
                s(&m.owner_id),
                s(&m.state),
                s(&m.mode),
                int(m.human_assisted),
                int(m.last_seq),
                int(m.message_count),
                int(m.tokens_in),
                int(m.tokens_out),
                int(m.turns),
                int(m.latency_ms_total),
                int(m.created_at),
                int(m.updated_at),
            ],
        )?;
        *self.meta.borrow_mut() = None;
        Ok(())
    }

    /// Forgets the cached session row (after storage was wiped).
    pub fn forget(&self) {
        *self.meta.borrow_mut() = None;
    }

    fn save_meta(&self, m: Meta, out: &Outbox, now: i64) -> Result<(), AppError> {
        self.exec(
            "UPDATE session SET mode = ?, human_assisted = ?, last_seq = ?, message_count = ?, tokens_in = ?,
               tokens_out = ?, turns = ?, latency_ms_total = ?, updated_at = ? WHERE one = 1",
            vec![
                s(&m.mode),
                int(m.human_assisted),
                int(m.last_seq),
                int(m.message_count),
                int(m.tokens_in),
                int(m.tokens_out),
                int(m.turns),
                int(m.latency_ms_total),
                int(m.updated_at),
            ],
        )?;
        out.touch(&self.sql, Topic::Session, "", now)?;
        *self.meta.borrow_mut() = Some(m);
        Ok(())
    }

    pub fn is_member(&self, user_id: &str) -> Result<bool, AppError> {
        #[derive(Deserialize)]
        struct N {
            n: i64,
        }
        let n = self.all::<N>(
            "SELECT count(*) AS n FROM members WHERE user_id = ?",
            vec![s(user_id)],
        )?;
        Ok(n.first().is_some_and(|r| r.n > 0))
    }

    pub fn members(&self) -> Result<Vec<String>, AppError> {
        #[derive(Deserialize)]
        struct Row {
            user_id: String,
        }
        Ok(self
            .all::<Row>(
                "SELECT user_id FROM members ORDER BY added_at, user_id",
                vec![],
            )?
            .into_iter()
            .map(|r| r.user_id)
            .collect())
    }

    /// Adds a member unless there are `cap` already. Idempotent; returns
    /// whether the user is a member afterwards.
    pub fn add_member(
        &self,
        user_id: &str,
        now: i64,
        cap: u32,
        out: &Outbox,
    ) -> Result<bool, AppError> {
        if self.is_member(user_id)? {
            return Ok(true);
        }
        if self.members()?.len() >= cap as usize {
            return Ok(false);
        }
        self.exec(
            "INSERT INTO members (user_id, added_at) VALUES (?, ?)",
            vec![s(user_id), int(now)],
        )?;
        out.touch(&self.sql, Topic::Member, user_id, now)?;
        Ok(true)
    }

    /// True when a membership was removed.
    pub fn remove_member(&self, user_id: &str, now: i64, out: &Outbox) -> Result<bool, AppError> {
        let removed = self
            .exec("DELETE FROM members WHERE user_id = ?", vec![s(user_id)])?
            .rows_written()
            > 0;
        if removed {
            out.touch(&self.sql, Topic::Member, user_id, now)?;
        }
        Ok(removed)
    }

    pub fn set_mode(&self, mode: Mode, now: i64, out: &Outbox) -> Result<(), AppError> {
        let mut m = self.live()?;
        m.mode = mode.as_str().to_string();
        if mode == Mode::Human {
            m.human_assisted = 1;
        }
        m.updated_at = now;
        self.save_meta(m, out, now)
    }

    /// Stores a group of sends: each gets the next seq, or is found to be a
    /// retry of a stored client id. One synchronous block, so one commit.
    pub fn append(
        &self,
        keys: &Keyring,
        batch: &[NewMessage],
        now: i64,
        out: &Outbox,
    ) -> Result<Vec<Appended>, AppError> {
        let mut meta = self.live()?;
        let session = meta.id.clone();
        let mut done = Vec::with_capacity(batch.len());
        for m in batch {
            let seq = meta.last_seq + 1;
            // Every seq up to last_seq exists (gap-free), so a reply_to in
            // that range needs no lookup.
            let reply_to = m.reply_to.filter(|&r| r >= 1 && r as i64 <= meta.last_seq);
            let t = m.turn.as_ref().map(|(t, _)| t);
            let charge = m.turn.as_ref().map(|(_, c)| {
                serde_json::json!({"user": c.user, "day": c.day, "reserved": c.reserved})
                    .to_string()
            });
            let sealed = keys.seal(&aad(Field::MessageBody, &session, Some(&m.id)), &m.text);
            let written = self
                .exec(
                    "INSERT OR IGNORE INTO messages (seq, id, client_id, author_id, author_name, author_kind, body,
                       reply_to, created_at, provider, model, tokens_in, tokens_out, ttft_ms, latency_ms,
                       finish_reason, incomplete, charge)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    vec![
                        int(seq),
                        s(&m.id),
                        s(&m.client_id),
                        s(&m.author.id),
                        s(&m.author.name),
                        s(m.author.kind.as_str()),
                        V::String(sealed),
                        reply_to.map_or(V::Null, int),
                        int(m.created_at),
                        t.map_or(V::Null, |t| s(&t.provider)),
                        t.map_or(V::Null, |t| s(&t.model)),
                        t.map_or(V::Null, |t| int(t.tokens_in)),
                        t.map_or(V::Null, |t| int(t.tokens_out)),
                        t.map_or(V::Null, |t| int(t.ttft_ms)),
                        t.map_or(V::Null, |t| int(t.latency_ms)),
                        t.map_or(V::Null, |t| s(&t.finish_reason)),
                        int(t.is_some_and(|t| t.incomplete) as i64),
                        charge.map_or(V::Null, V::String),
                    ],
                )?
                .rows_written();
            if written == 0 {
                done.push(Appended {
                    view: self.original(m)?,
                    duplicate: true,
                });
                continue;
            }
            meta.last_seq = seq;
            meta.message_count += 1;
            meta.updated_at = meta.updated_at.max(m.created_at);
            if let Some((t, _)) = &m.turn {
                meta.tokens_in += t.tokens_in as i64;
                meta.tokens_out += t.tokens_out as i64;
                meta.turns += 1;
                meta.latency_ms_total += t.latency_ms as i64;
            }
            // No outbox row: appends are replicated by seq (`outbox.rs`).
            if m.turn.is_some() {
                // The finished reply replaces its progress in one commit.
                self.exec(
                    "DELETE FROM turn_progress WHERE message_id = ?",
                    vec![s(&m.id)],
                )?;
            }
            done.push(Appended {
                view: MessageView {
                    seq: seq as u64,
                    id: m.id.clone(),
                    client_id: Some(m.client_id.clone()),
                    author: m.author.clone(),
                    text: m.text.clone(),
                    reply_to,
                    created_at: m.created_at,
                    edited_at: None,
                    deleted: false,
                    unreadable: None,
                    turn: t.cloned(),
                    reactions: Vec::new(),
                },
                duplicate: false,
            });
        }
        // Usage totals must be stored with the reply that spent them; for
        // users' messages the row is rebuilt from the messages on load, so
        // the hot path writes the message alone.
        if batch.iter().any(|m| m.turn.is_some()) {
            self.save_meta(meta, out, now)?;
        } else {
            *self.meta.borrow_mut() = Some(meta);
        }
        Ok(done)
    }

    /// The stored message a retried send names (its seq and id are what the
    /// ack needs; the text is not opened).
    fn original(&self, m: &NewMessage) -> Result<MessageView, AppError> {
        #[derive(Deserialize)]
        struct Row {
            seq: i64,
            id: String,
            created_at: i64,
        }
        let row = self
            .all::<Row>(
                "SELECT seq, id, created_at FROM messages WHERE client_id = ? AND author_kind = ? AND author_id = ?",
                vec![s(&m.client_id), s(m.author.kind.as_str()), s(&m.author.id)],
            )?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::internal("ignored insert without an original"))?;
        Ok(MessageView {
            seq: row.seq as u64,
            id: row.id,
            client_id: Some(m.client_id.clone()),
            author: m.author.clone(),
            text: String::new(),
            reply_to: None,
            created_at: row.created_at,
            edited_at: None,
            deleted: false,
            unreadable: None,
            turn: None,
            reactions: Vec::new(),
        })
    }

    /// Messages in `(after, before)`, oldest first, at most `limit`, with
    /// their reactions: the newest ones below `before` when `newest`, else
    /// the oldest ones above `after`.
    pub fn page(
        &self,
        keys: &Keyring,
        after: u64,
        before: u64,
        limit: u32,
        newest: bool,
    ) -> Result<Vec<MessageView>, AppError> {
        let session = self.live()?.id;
        let order = if newest { "DESC" } else { "ASC" };
        let q = format!(
            "SELECT {COLUMNS} FROM messages WHERE seq > ? AND seq < ? ORDER BY seq {order} LIMIT ?"
        );
        let clamp = |n: u64| int(n.min(crate::protocol::MAX_SEQ + 1));
        let mut rows = self.all::<MessageRow>(&q, vec![clamp(after), clamp(before), int(limit)])?;
        if newest {
            rows.reverse();
        }
        let mut views: Vec<MessageView> = rows
            .into_iter()
            .map(|r| r.into_view(keys, &session))
            .collect();
        if let (Some(first), Some(last)) = (views.first(), views.last()) {
            #[derive(Deserialize)]
            struct R {
                seq: i64,
                emoji: String,
                user_id: String,
            }
            let reactions = self.all::<R>(
                "SELECT seq, emoji, user_id FROM reactions WHERE seq BETWEEN ? AND ?
                  ORDER BY seq, emoji, created_at, user_id",
                vec![int(first.seq), int(last.seq)],
            )?;
            for r in reactions {
                if let Some(v) = views.iter_mut().find(|v| v.seq == r.seq as u64) {
                    match v.reactions.iter_mut().find(|s| s.emoji == r.emoji) {
                        Some(s) => s.users.push(r.user_id),
                        None => v.reactions.push(ReactionSummary {
                            emoji: r.emoji,
                            users: vec![r.user_id],
                        }),
                    }
                }
            }
        }
        Ok(views)
    }

    pub fn read_positions(&self) -> Result<Vec<ReadPosition>, AppError> {
        #[derive(Deserialize)]
        struct Row {
            user_id: String,
            seq: i64,
        }
        Ok(self
            .all::<Row>(
                "SELECT user_id, seq FROM read_positions ORDER BY user_id",
                vec![],
            )?
            .into_iter()
            .map(|r| ReadPosition {
                user_id: r.user_id,
                seq: r.seq as u64,
            })
            .collect())
    }

    fn owner_of(&self, seq: u64) -> Result<Option<(String, Author)>, AppError> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            author_id: String,
            author_name: String,
            author_kind: String,
            deleted_at: Option<i64>,
        }
        Ok(self
            .all::<Row>(
                "SELECT id, author_id, author_name, author_kind, deleted_at FROM messages WHERE seq = ?",
                vec![int(seq)],
            )?
            .into_iter()
            .next()
            .map(|r| {
                let deleted = if r.deleted_at.is_some() { "!" } else { "" };
                (
                    format!("{deleted}{}", r.id),
                    Author {
                        id: r.author_id,
                        name: r.author_name,
                        kind: AuthorKind::parse(&r.author_kind).unwrap_or(AuthorKind::System),
                    },
                )
            }))
    }

    /// Checks that `who` (matched by kind as well as id, so no token subject
    /// passes for the assistant) may change the live message `seq`; gives
    /// its id.
    fn own(&self, seq: u64, who: (&str, AuthorKind)) -> Result<Result<String, Change>, AppError> {
        Ok(match self.owner_of(seq)? {
            None => Err(Change::NotFound),
            Some((_, a)) if a.id != who.0 || a.kind != who.1 => Err(Change::Forbidden),
            Some((id, _)) if id.starts_with('!') => Err(Change::Deleted),
            Some((id, _)) => Ok(id),
        })
    }

    /// Replaces the text of the author's own message, keeping the old text
    /// in the edit history, of which only the newest `keep` stay.
    #[allow(clippy::too_many_arguments)]
    pub fn edit(
        &self,
        keys: &Keyring,
        seq: u64,
        who: (&str, AuthorKind),
        text: &str,
        now: i64,
        keep: u32,
        out: &Outbox,
    ) -> Result<Change, AppError> {
        let id = match self.own(seq, who)? {
            Ok(id) => id,
            Err(c) => return Ok(c),
        };
        let session = self.live()?.id;
        let sealed = keys.seal(&aad(Field::MessageBody, &session, Some(&id)), text);
        self.exec(
            "INSERT INTO message_edits (seq, edited_at, body) SELECT seq, ?, body FROM messages WHERE seq = ?",
            vec![int(now), int(seq)],
        )?;
        self.exec(
            "UPDATE messages SET body = ?, edited_at = ? WHERE seq = ?",
            vec![V::String(sealed), int(now), int(seq)],
        )?;
        self.exec(
            "DELETE FROM message_edits WHERE seq = ?1 AND id NOT IN
               (SELECT id FROM message_edits WHERE seq = ?1 ORDER BY id DESC LIMIT ?2)",
            vec![int(seq), int(keep)],
        )?;
        out.touch(&self.sql, Topic::Message, &seq.to_string(), now)?;
        Ok(Change::Done)
    }

    /// Tombstones the author's own message: its text, edit history and
    /// reactions are erased; the seq stays so history has no holes.
    pub fn delete(
        &self,
        seq: u64,
        who: (&str, AuthorKind),
        now: i64,
        out: &Outbox,
    ) -> Result<Change, AppError> {
        if let Err(c) = self.own(seq, who)? {
            return Ok(c);
        }
        self.exec("DELETE FROM message_edits WHERE seq = ?", vec![int(seq)])?;
        self.exec("DELETE FROM reactions WHERE seq = ?", vec![int(seq)])?;
        self.exec(
            "UPDATE messages SET body = '', deleted_at = ? WHERE seq = ?",
            vec![int(now), int(seq)],
        )?;
        out.touch(&self.sql, Topic::Message, &seq.to_string(), now)?;
        out.touch(&self.sql, Topic::Reactions, &seq.to_string(), now)?;
        Ok(Change::Done)
    }

    /// Adds or removes a reaction; a user holds at most `cap` distinct
    /// reactions on one message.
    #[allow(clippy::too_many_arguments)]
    pub fn react(
        &self,
        seq: u64,
        user_id: &str,
        emoji: &str,
        add: bool,
        now: i64,
        cap: u32,
        out: &Outbox,
    ) -> Result<Reacted, AppError> {
        match self.owner_of(seq)? {
            Some((id, _)) if !id.starts_with('!') => {}
            _ => return Ok(Reacted::Missing),
        }
        #[derive(Deserialize)]
        struct Mine {
            n: i64,
            has: Option<i64>,
        }
        let mine = self
            .all::<Mine>(
                "SELECT count(*) AS n, sum(emoji = ?) AS has FROM reactions WHERE seq = ? AND user_id = ?",
                vec![s(emoji), int(seq), s(user_id)],
            )?
            .into_iter()
            .next();
        let (n, has) = mine.map_or((0, false), |m| (m.n, m.has.unwrap_or(0) > 0));
        let changed = match (add, has) {
            (true, true) | (false, false) => return Ok(Reacted::Unchanged),
            (true, false) if n >= cap as i64 => return Ok(Reacted::TooMany),
            (true, false) => self.exec(
                "INSERT INTO reactions (seq, user_id, emoji, created_at) VALUES (?, ?, ?, ?)",
                vec![int(seq), s(user_id), s(emoji), int(now)],
            )?,
            (false, true) => self.exec(
                "DELETE FROM reactions WHERE seq = ? AND user_id = ? AND emoji = ?",
                vec![int(seq), s(user_id), s(emoji)],
            )?,
        };
        drop(changed);
        out.touch(&self.sql, Topic::Reactions, &seq.to_string(), now)?;
        Ok(Reacted::Changed)
    }

    /// Moves the user's read position forward (never back, never past the
    /// last message). Returns the new position when it moved.
    pub fn mark_read(
        &self,
        user_id: &str,
        seq: u64,
        now: i64,
        out: &Outbox,
    ) -> Result<Option<u64>, AppError> {
        let last = self.live()?.last_seq.max(0) as u64;
        let seq = seq.min(last);
        if seq == 0 {
            return Ok(None);
        }
        let moved = self
            .exec(
                "INSERT INTO read_positions (user_id, seq, updated_at) VALUES (?, ?, ?)
                 ON CONFLICT (user_id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at
                  WHERE excluded.seq > read_positions.seq",
                vec![s(user_id), int(seq), int(now)],
            )?
            .rows_written()
            > 0;
        if !moved {
            return Ok(None);
        }
        out.touch(&self.sql, Topic::Read, user_id, now)?;
        Ok(Some(seq))
    }

    /// Re-seals up to `limit` bodies (messages, then edit history) that are
    /// not under the active key, and queues them for replication.
    pub fn rotate(
        &self,
        keys: &Keyring,
        limit: u32,
        now: i64,
        out: &Outbox,
    ) -> Result<crate::contract::RotateReply, AppError> {
        let session = self.live()?.id;
        let prefix = keys.active_prefix();
        let mut reply = crate::contract::RotateReply::default();
        #[derive(Deserialize)]
        struct Row {
            key: i64,
            seq: i64,
            id: String,
            body: String,
        }
        for (select, update) in [
            (
                "SELECT seq AS key, seq, id, body FROM messages
                  WHERE body != '' AND substr(body, 1, ?1) != ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
                "UPDATE messages SET body = ? WHERE seq = ?",
            ),
            (
                "SELECT e.id AS key, e.seq, m.id, e.body FROM message_edits e JOIN messages m ON m.seq = e.seq
                  WHERE substr(e.body, 1, ?1) != ?2 AND e.id > ?3 ORDER BY e.id LIMIT ?4",
                "UPDATE message_edits SET body = ? WHERE id = ?",
            ),
        ] {
            // Unreadable rows stay as they are; the cursor steps past them.
            let mut after = 0i64;
            loop {
                let budget = limit as usize - reply.rotated.min(limit as usize);
                if budget == 0 {
                    return Ok(reply);
                }
                let rows = self.all::<Row>(
                    select,
                    vec![int(prefix.len()), s(&prefix), int(after), int(budget)],
                )?;
                let Some(last) = rows.last() else { break };
                after = last.key;
                for r in rows {
                    match keys.rotate(&aad(Field::MessageBody, &session, Some(&r.id)), &r.body) {
                        Ok(b) => {
                            self.exec(update, vec![V::String(b), int(r.key)])?;
                            out.touch(&self.sql, Topic::Message, &r.seq.to_string(), now)?;
                            reply.rotated += 1;
                        }
                        Err(_) => reply.unreadable += 1,
                    }
                }
            }
        }
        reply.done = true;
        Ok(reply)
    }

    /// Deletes every row and leaves a tombstone, so the session can never
    /// be loaded again (not even from a D1 copy not yet erased).
    pub fn tombstone(&self, m: &Meta) -> Result<(), AppError> {
        self.sql.exec(SCHEMA, None).map_err(err)?;
        let mut t = m.clone();
        t.state = "erased".into();
        self.forget();
        self.init(&t)
    }

    /// For replication: the highest seq D1 has confirmed as appended.
    pub fn replica_mark(&self) -> Result<i64, AppError> {
        #[derive(Deserialize)]
        struct M {
            seq: i64,
        }
        Ok(self
            .all::<M>("SELECT seq FROM replica_mark WHERE one = 1", vec![])?
            .first()
            .map_or(0, |m| m.seq))
    }

    pub fn set_replica_mark(&self, seq: i64) -> Result<(), AppError> {
        self.exec(
            "INSERT INTO replica_mark (one, seq) VALUES (1, ?) ON CONFLICT (one) DO UPDATE SET seq = max(seq, excluded.seq)",
            vec![int(seq)],
        )?;
        Ok(())
    }

    /// For replication: up to `limit` messages past `after`, as stored.
    pub fn rows_after(&self, after: i64, limit: usize) -> Result<Vec<StoredMessage>, AppError> {
        let q =
            format!("SELECT {COLUMNS}, charge FROM messages WHERE seq > ? ORDER BY seq LIMIT ?");
        #[derive(Deserialize)]
        struct Row {
            #[serde(flatten)]
            row: MessageRow,
            charge: Option<String>,
        }
        Ok(self
            .all::<Row>(&q, vec![int(after), int(limit)])?
            .into_iter()
            .map(|r| StoredMessage {
                charge: r.charge.and_then(|c| serde_json::from_str(&c).ok()),
                row: r.row,
            })
            .collect())
    }

    /// The creation time of the message `seq` (the lag of an append).
    pub fn created_at(&self, seq: i64) -> Result<Option<i64>, AppError> {
        #[derive(Deserialize)]
        struct C {
            created_at: i64,
        }
        Ok(self
            .all::<C>(
                "SELECT created_at FROM messages WHERE seq = ?",
                vec![int(seq)],
            )?
            .first()
            .map(|c| c.created_at))
    }

    /// For replication: a message's stored row, edits and reactions.
    pub fn row(&self, seq: i64) -> Result<Option<StoredMessage>, AppError> {
        let q = format!("SELECT {COLUMNS}, charge FROM messages WHERE seq = ?");
        #[derive(Deserialize)]
        struct Row {
            #[serde(flatten)]
            row: MessageRow,
            charge: Option<String>,
        }
        let Some(r) = self.all::<Row>(&q, vec![int(seq)])?.into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(StoredMessage {
            charge: r.charge.and_then(|c| serde_json::from_str(&c).ok()),
            row: r.row,
        }))
    }

    /// For replication: `(edited_at, body)` of a message's edit history.
    pub fn edits(&self, seq: i64) -> Result<Vec<(i64, String)>, AppError> {
        #[derive(Deserialize)]
        struct Row {
            edited_at: i64,
            body: String,
        }
        Ok(self
            .all::<Row>(
                "SELECT edited_at, body FROM message_edits WHERE seq = ? ORDER BY id",
                vec![int(seq)],
            )?
            .into_iter()
            .map(|r| (r.edited_at, r.body))
            .collect())
    }

    /// For replication: `(user_id, emoji, created_at)` on a message.
    pub fn reactions(&self, seq: i64) -> Result<Vec<(String, String, i64)>, AppError> {
        #[derive(Deserialize)]
        struct Row {
            user_id: String,
            emoji: String,
            created_at: i64,
        }
        Ok(self
            .all::<Row>(
                "SELECT user_id, emoji, created_at FROM reactions WHERE seq = ?",
                vec![int(seq)],
            )?
            .into_iter()
            .map(|r| (r.user_id, r.emoji, r.created_at))
            .collect())
    }

    /// For replication: a user's read position (None once gone).
    pub fn read_position(&self, user_id: &str) -> Result<Option<(i64, i64)>, AppError> {
        #[derive(Deserialize)]
        struct Row {
            seq: i64,
            updated_at: i64,
        }
        Ok(self
            .all::<Row>(
                "SELECT seq, updated_at FROM read_positions WHERE user_id = ?",
                vec![s(user_id)],
            )?
            .into_iter()
            .next()
            .map(|r| (r.seq, r.updated_at)))
    }

    /// For replication: when a user became a member (None: not one).
    pub fn member_since(&self, user_id: &str) -> Result<Option<i64>, AppError> {
        #[derive(Deserialize)]
        struct Row {
            added_at: i64,
        }
        Ok(self
            .all::<Row>(
                "SELECT added_at FROM members WHERE user_id = ?",
                vec![s(user_id)],
            )?
            .into_iter()
            .next()
            .map(|r| r.added_at))
    }

    /// Loads a page of a session's messages as D1 held them; nothing is
    /// queued for replication, since D1 has them already. Idempotent, so
    /// two loads that race only repeat work.
    pub fn load_messages(&self, rows: &[MessageRow]) -> Result<(), AppError> {
        let q = format!(
            "INSERT OR IGNORE INTO messages ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        for r in rows {
            self.exec(&q, r.values())?;
        }
        Ok(())
    }

    /// Loads the rest of a session as D1 held it, after its messages, and
    /// last the session row, which makes the log live (`replica::load`).
    pub fn load(&self, imported: &Imported) -> Result<(), AppError> {
        for m in &imported.members {
            self.exec(
                "INSERT OR IGNORE INTO members (user_id, added_at) VALUES (?, ?)",
                vec![s(&m.0), int(m.1)],
            )?;
        }
        for e in &imported.edits {
            self.exec(
                "INSERT INTO message_edits (seq, edited_at, body) VALUES (?, ?, ?)",
                vec![int(e.0), int(e.1), s(&e.2)],
            )?;
        }
        for r in &imported.reactions {
            self.exec(
                "INSERT OR IGNORE INTO reactions (seq, user_id, emoji, created_at) VALUES (?, ?, ?, ?)",
                vec![int(r.0), s(&r.1), s(&r.2), int(r.3)],
            )?;
        }
        for p in &imported.reads {
            self.exec(
                "INSERT OR IGNORE INTO read_positions (user_id, seq, updated_at) VALUES (?, ?, ?)",
                vec![s(&p.0), int(p.1), int(p.2)],
            )?;
        }
        // The loaded messages decide last_seq, whatever D1's counter said.
        #[derive(Deserialize)]
        struct Last {
            last: Option<i64>,
        }
        let last = self
            .all::<Last>("SELECT max(seq) AS last FROM messages", vec![])?
            .into_iter()
            .next()
            .and_then(|l| l.last)
            .unwrap_or(0);
        let mut meta = imported.meta.clone();
        meta.last_seq = meta.last_seq.max(last);
        // Everything loaded is in D1 already.
        self.set_replica_mark(meta.last_seq)?;
        self.init(&meta)
    }
}

/// A message row as stored, with its pending charge.
pub struct StoredMessage {
    pub row: MessageRow,
    pub charge: Option<Charge>,
}

/// A session read from D1 in the layout before the session log existed.
pub struct Imported {
    pub meta: Meta,
    pub members: Vec<(String, i64)>,
    /// `(seq, edited_at, body)`
    pub edits: Vec<(i64, i64, String)>,
    /// `(seq, user_id, emoji, created_at)`
    pub reactions: Vec<(i64, String, String, i64)>,
    /// `(user_id, seq, updated_at)`
    pub reads: Vec<(String, i64, i64)>,
}
