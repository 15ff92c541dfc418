//! The session log: the object's own SQLite storage is the system of
//! record for one session's messages, edits, reactions, polls and votes,
//! read positions, members and mode.
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

mod changes;
mod desk;
mod feedback;
mod files;
mod mentions;
mod moderation;
mod page;
mod polls;
mod replica;
mod stream;
pub mod tools;

pub use feedback::{reason_id, Rated, StoredRating};
pub use polls::Voted;
pub use stream::Window;

use super::outbox::{Outbox, Topic};
use crate::contract::Mode;
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use crate::protocol::MessageView;
use crate::store::messages::{Charge, MessageRow, NewMessage};
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
-- The D1 shard the session replicates to (src/shards.rs), set once. No row:
-- a log started before shards, whose session is in the home shard.
CREATE TABLE IF NOT EXISTS shard (one INTEGER PRIMARY KEY CHECK (one = 1), binding TEXT NOT NULL);
-- The assistant's reply in progress (see progress.rs).
CREATE TABLE IF NOT EXISTS turn_progress (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  message_id TEXT NOT NULL, author_name TEXT NOT NULL,
  -- JSON: who asked (UserRef), and whom the turn is charged to (Charge)
  asked_by TEXT NOT NULL, charge TEXT NOT NULL,
  provider TEXT NOT NULL, model TEXT NOT NULL,
  body TEXT NOT NULL, started_at INTEGER NOT NULL, saved_at INTEGER NOT NULL);
-- Users' ratings of the assistant's replies; the reason sealed (AAD: the
-- session, and the seq and user as the id).
CREATE TABLE IF NOT EXISTS ratings (
  seq INTEGER NOT NULL, user_id TEXT NOT NULL, rating TEXT NOT NULL, reason TEXT,
  at INTEGER NOT NULL, PRIMARY KEY (seq, user_id));
-- How many of UPGRADES this log has applied.
CREATE TABLE IF NOT EXISTS log_version (one INTEGER PRIMARY KEY CHECK (one = 1), version INTEGER NOT NULL);
";

/// Columns added after logs existed, in order; a log applies those past its
/// `log_version` when it opens, new logs all of them. Never edit or reorder
/// one: append.
const UPGRADES: [&str; 12] = [
    "ALTER TABLE messages ADD COLUMN tokens_cached INTEGER",
    // Nano-dollars (crate::llm::price::Usd); NULL: the model had no price.
    "ALTER TABLE messages ADD COLUMN cost_nanos INTEGER",
    "ALTER TABLE session ADD COLUMN cost_nanos INTEGER NOT NULL DEFAULT 0",
    // When an assistant reply was answered again (`regenerate`).
    "ALTER TABLE messages ADD COLUMN superseded_at INTEGER",
    // The assistant profile (`crate::llm::profile`) the session runs
    // under (NULL: the default), and each reply was written under.
    "ALTER TABLE session ADD COLUMN profile TEXT",
    "ALTER TABLE messages ADD COLUMN profile TEXT",
    // The assistant's function calls as messages (`tools.rs`): the seqs of
    // a call's message and of its result's, whether users see them, and
    // the assistant's name when it asked.
    "ALTER TABLE tool_calls ADD COLUMN seq INTEGER",
    "ALTER TABLE tool_calls ADD COLUMN result_seq INTEGER",
    "ALTER TABLE tool_calls ADD COLUMN shown INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE tool_calls ADD COLUMN author_name TEXT",
    "CREATE INDEX IF NOT EXISTS tool_calls_seq ON tool_calls (seq)",
    "CREATE INDEX IF NOT EXISTS tool_calls_result_seq ON tool_calls (result_seq)",
];

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
    /// What the assistant's replies cost, in nano-dollars.
    #[serde(default)]
    pub cost_nanos: i64,
    /// The assistant profile the session runs under; None: the default.
    #[serde(default)]
    pub profile: Option<String>,
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
    /// Done, as this change number (`stream.rs`).
    Done(u64),
    NotFound,
    Forbidden,
    Deleted,
}

/// What a reaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reacted {
    /// Changed, as this change number (`stream.rs`).
    Changed(u64),
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
    desk: RefCell<Option<crate::desk::Desk>>,
    /// R2 keys of attachments dropped with their message (`files.rs`).
    unlinked: RefCell<Vec<String>>,
    /// The session's sanctions, read once (`moderation.rs`).
    sanctions: RefCell<Option<std::rc::Rc<Vec<crate::moderation::Sanction>>>>,
    /// Its members' blocks, read once (`moderation.rs`).
    blocks: RefCell<Option<std::rc::Rc<moderation::Blocks>>>,
    /// The names its people were seen by, read once (`mentions.rs`).
    names: RefCell<Option<std::collections::HashMap<String, String>>>,
}

fn int(n: impl TryInto<i64>) -> V {
    V::Integer(n.try_into().unwrap_or(i64::MAX))
}

fn s(text: &str) -> V {
    V::String(text.to_string())
}

/// The session row's columns, and its values for a `Meta` in that order.
const SESSION_COLUMNS: &str =
    "one, id, owner_id, state, mode, human_assisted, last_seq, message_count,
    tokens_in, tokens_out, turns, latency_ms_total, created_at, updated_at, cost_nanos, profile";
const SESSION_VALUES: &str = "1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?";

fn session_values(m: &Meta) -> Vec<V> {
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
        int(m.cost_nanos),
        m.profile.as_deref().map_or(V::Null, s),
    ]
}

fn err(e: worker::Error) -> AppError {
    AppError::internal(e)
}

/// Creates the log's tables, and brings an older log's up to date.
fn create(sql: &SqlStorage) -> Result<(), AppError> {
    for schema in [
        SCHEMA,
        desk::SCHEMA,
        stream::SCHEMA,
        polls::SCHEMA,
        files::SCHEMA,
        moderation::SCHEMA,
        mentions::SCHEMA,
        tools::SCHEMA,
    ] {
        sql.exec(schema, None).map_err(err)?;
    }
    #[derive(Deserialize)]
    struct Version {
        version: usize,
    }
    let done = sql
        .exec("SELECT version FROM log_version", None)
        .and_then(|c| c.to_array::<Version>())
        .map_err(err)?
        .first()
        .map_or(0, |v| v.version);
    if done >= UPGRADES.len() {
        return Ok(());
    }
    for upgrade in &UPGRADES[done..] {
        sql.exec(upgrade, None).map_err(err)?;
    }
    sql.exec(
        "INSERT INTO log_version (one, version) VALUES (1, ?)
         ON CONFLICT (one) DO UPDATE SET version = excluded.version",
        vec![int(UPGRADES.len())],
    )
    .map_err(err)?;
    Ok(())
}

impl Log {
    /// Opens the log, creating its tables on first use. A failure here
    /// shows again, with its reason, on the first query that needs them.
    pub fn open(sql: SqlStorage) -> Log {
        let _ = create(&sql);
        Log {
            sql,
            meta: RefCell::new(None),
            desk: RefCell::new(None),
            unlinked: RefCell::new(Vec::new()),
            sanctions: RefCell::new(None),
            blocks: RefCell::new(None),
            names: RefCell::new(None),
        }
    }

    pub fn sql(&self) -> &SqlStorage {
        &self.sql
    }

    pub(super) fn exec(&self, q: &str, args: Vec<V>) -> Result<worker::SqlCursor, AppError> {
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
        // has the true last seq and activity time, and every seq past the
        // stored one is one more message (the seqs of tool messages, which
        // are not in this table, are saved with the row: `claim_seqs`).
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
    /// The seq of the session's last message (0: none yet).
    pub fn last_seq(&self) -> Result<u64, AppError> {
        Ok(self.live()?.last_seq.max(0) as u64)
    }

    pub fn live(&self) -> Result<Meta, AppError> {
        self.meta()?.filter(Meta::live).ok_or(AppError::NotFound)
    }

    /// Starts the log of a new (or imported) session; a no-op when one exists.
    pub fn init(&self, m: &Meta) -> Result<(), AppError> {
        self.exec(
            &format!("INSERT OR IGNORE INTO session ({SESSION_COLUMNS}) VALUES ({SESSION_VALUES})"),
            session_values(m),
        )?;
        *self.meta.borrow_mut() = None;
        Ok(())
    }

    /// Forgets the cached session row (after storage was wiped).
    pub fn forget(&self) {
        *self.meta.borrow_mut() = None;
        *self.desk.borrow_mut() = None;
        *self.sanctions.borrow_mut() = None;
        *self.blocks.borrow_mut() = None;
        *self.names.borrow_mut() = None;
    }

    fn save_meta(&self, m: Meta, out: &Outbox, now: i64) -> Result<(), AppError> {
        self.exec(
            &format!(
                "INSERT INTO session ({SESSION_COLUMNS}) VALUES ({SESSION_VALUES})
                 ON CONFLICT (one) DO UPDATE SET mode = excluded.mode, human_assisted = excluded.human_assisted,
                   last_seq = excluded.last_seq, message_count = excluded.message_count,
                   tokens_in = excluded.tokens_in, tokens_out = excluded.tokens_out, turns = excluded.turns,
                   latency_ms_total = excluded.latency_ms_total, updated_at = excluded.updated_at,
                   cost_nanos = excluded.cost_nanos, profile = excluded.profile"
            ),
            session_values(&m),
        )?;
        out.touch(&self.sql, Topic::Session, "", now)?;
        *self.meta.borrow_mut() = Some(m);
        Ok(())
    }

    /// Takes `n` seqs for messages kept outside the messages table (the
    /// assistant's function calls, `tools.rs`); gives the first. The
    /// session row is saved with them, so every seq past the stored last
    /// seq is still a message in the table (see `meta`).
    fn claim_seqs(&self, n: usize, out: &Outbox, now: i64) -> Result<i64, AppError> {
        let mut m = self.live()?;
        let first = m.last_seq + 1;
        m.last_seq += n as i64;
        m.updated_at = m.updated_at.max(now);
        self.save_meta(m, out, now)?;
        Ok(first)
    }

    /// Sets the assistant profile the session runs under (None: the
    /// default); it replicates with the session row.
    pub fn set_profile(
        &self,
        profile: Option<String>,
        out: &Outbox,
        now: i64,
    ) -> Result<(), AppError> {
        let mut m = self.live()?;
        m.profile = profile;
        self.save_meta(m, out, now)
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
            // Their blocks are kept for the people of the session only.
            if user_id != self.live()?.owner_id {
                self.set_blocks(user_id, &[])?;
            }
        }
        Ok(removed)
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
            let t = m.turn.as_deref().map(|(t, _)| t);
            let written = self.insert(keys, &session, seq, m, reply_to)?;
            if let (Some(spec), 1..) = (&m.poll, written) {
                self.create_poll(keys, (&session, &m.id), (seq, spec), out, now)?;
            }
            let attachments = match (m.attachments.is_empty(), written) {
                (false, 1..) => {
                    self.claim_files(keys, &session, (seq, &m.author.id), &m.attachments)?
                }
                _ => Vec::new(),
            };
            if written == 0 {
                done.push(Appended {
                    view: self.original(m)?,
                    duplicate: true,
                });
                continue;
            }
            if !m.mentions.is_empty() {
                self.store_mentions(seq, &m.mentions)?;
            }
            meta.last_seq = seq;
            meta.message_count += 1;
            meta.updated_at = meta.updated_at.max(m.created_at);
            if let Some((t, _)) = m.turn.as_deref() {
                meta.tokens_in += t.tokens_in as i64;
                meta.tokens_out += t.tokens_out as i64;
                meta.turns += 1;
                meta.latency_ms_total += t.latency_ms as i64;
                meta.cost_nanos += t.cost_usd.map_or(0, |c| c.nanos() as i64);
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
                    id: m.id.to_string(),
                    client_id: Some(m.client_id.to_string()),
                    author: m.author.clone(),
                    text: m.text.clone(),
                    reply_to,
                    created_at: m.created_at,
                    edited_at: None,
                    deleted: false,
                    superseded: false,
                    removed: None,
                    unreadable: None,
                    turn: t.cloned(),
                    reactions: Vec::new(),
                    poll: m.poll.clone().map(|spec| {
                        let tally = crate::poll::Tally::count(&spec, &[], now, None);
                        crate::poll::PollView::new(spec, tally)
                    }),
                    attachments,
                    mentions: m.mentions.clone(),
                    tool: None,
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

    /// Inserts one new message as `seq`, sealed; 0 rows written when its
    /// client id is already stored (a retry).
    fn insert(
        &self,
        keys: &Keyring,
        session: &str,
        seq: i64,
        m: &NewMessage,
        reply_to: Option<u64>,
    ) -> Result<usize, AppError> {
        let t = m.turn.as_deref().map(|(t, _)| t);
        let charge = m
            .turn
            .as_deref()
            .map(|(_, c)| serde_json::to_string(c).unwrap_or_default());
        let sealed = keys.seal(&aad(Field::MessageBody, session, Some(&m.id)), &m.text);
        Ok(self
            .exec(
                "INSERT OR IGNORE INTO messages (seq, id, client_id, author_id, author_name, author_kind, body,
                   reply_to, created_at, provider, model, tokens_in, tokens_out, ttft_ms, latency_ms,
                   finish_reason, incomplete, charge, tokens_cached, cost_nanos, profile)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    t.map_or(V::Null, |t| int(t.tokens_cached)),
                    t.and_then(|t| t.cost_usd).map_or(V::Null, |c| int(c.nanos())),
                    t.map_or(V::Null, |t| s(&t.profile)),
                ],
            )?
            .rows_written())
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
            client_id: Some(m.client_id.to_string()),
            author: m.author.clone(),
            text: String::new(),
            superseded: false,
            reply_to: None,
            created_at: row.created_at,
            edited_at: None,
            deleted: false,
            removed: None,
            unreadable: None,
            turn: None,
            reactions: Vec::new(),
            poll: None,
            attachments: Vec::new(),
            mentions: Vec::new(),
            tool: None,
        })
    }

    /// Deletes every row and leaves a tombstone, so the session can never
    /// be loaded again (not even from a D1 copy not yet erased).
    pub fn tombstone(&self, m: &Meta) -> Result<(), AppError> {
        create(&self.sql)?;
        let mut t = m.clone();
        t.state = "erased".into();
        self.forget();
        self.init(&t)
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
