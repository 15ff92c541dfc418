//! Moderation in the session log (`crate::moderation`): removed messages,
//! whose original text stays here sealed for audit, the sanctions on the
//! session's users, and its members' blocks. None is replicated to D1: D1
//! sees a removal as the deletion it also is, sanctions are enforced by
//! this object, and blocks are the home shard's, copied here.

use super::stream::Noted;
use super::{int, s, Change, Log};
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use crate::moderation::{
    Kind, Reason, Record, Removal, RemovedMessage, Sanction, SanctionRow, SANCTION_COLUMNS,
};
use crate::protocol::{MessageView, UserRef};
use crate::session::outbox::Outbox;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use worker::SqlStorageValue as V;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS removals (
  seq INTEGER PRIMARY KEY, author_id TEXT NOT NULL,
  by_id TEXT NOT NULL, by_name TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL,
  -- the text as it was, sealed as the message's body was (same AAD)
  body TEXT NOT NULL);
-- until: unix ms, NULL for no end. One row per user and kind.
CREATE TABLE IF NOT EXISTS sanctions (
  user_id TEXT NOT NULL, kind TEXT NOT NULL, until INTEGER,
  reason TEXT NOT NULL, by_id TEXT NOT NULL, by_name TEXT NOT NULL, at INTEGER NOT NULL,
  PRIMARY KEY (user_id, kind));
-- The pre-send filter's decisions, until a flush writes them to the home
-- shard's filter_log (crate::moderation::filter).
CREATE TABLE IF NOT EXISTS filter_pending (id TEXT PRIMARY KEY, decision TEXT NOT NULL);
-- A copy of the owner's and members' blocks (the home shard has them all).
CREATE TABLE IF NOT EXISTS blocks (
  blocker TEXT NOT NULL, blocked TEXT NOT NULL, PRIMARY KEY (blocker, blocked));
";

/// Who blocks whom in the session: blocker → blocked.
pub type Blocks = HashMap<String, HashSet<String>>;

#[derive(Deserialize)]
struct RemovalRow {
    seq: i64,
    by_id: String,
    by_name: String,
    reason: String,
    at: i64,
}

impl RemovalRow {
    fn removal(self) -> Removal {
        Removal {
            by: UserRef {
                id: self.by_id,
                name: self.by_name,
            },
            reason: Reason::parse(&self.reason).unwrap_or(Reason::Other),
            at: self.at,
        }
    }
}

const REMOVAL_COLUMNS: &str = "seq, by_id, by_name, reason, at";

impl Log {
    /// Removes message `seq` for a moderator: its original text moves to
    /// `removals`, still sealed, and the message becomes a tombstone as a
    /// deletion makes it. Gives the change number and the removal.
    pub fn remove(
        &self,
        seq: u64,
        (by, reason): (&UserRef, Reason),
        now: i64,
        out: &Outbox,
    ) -> Result<Result<(u64, Removal), Change>, AppError> {
        match self.owner_of(seq)? {
            None => return Ok(Err(Change::NotFound)),
            Some((id, _)) if id.starts_with('!') => return Ok(Err(Change::Deleted)),
            Some(_) => {}
        }
        self.exec(
            "INSERT INTO removals (seq, author_id, by_id, by_name, reason, at, body)
             SELECT seq, author_id, ?, ?, ?, ?, body FROM messages WHERE seq = ?",
            vec![
                s(&by.id),
                s(&by.name),
                s(reason.as_str()),
                int(now),
                int(seq),
            ],
        )?;
        let change = self.erase_message(seq, Noted::Removed, now, out)?;
        let removal = Removal {
            by: by.clone(),
            reason,
            at: now,
        };
        Ok(Ok((change, removal)))
    }

    /// The removal of message `seq`, if a moderator removed it.
    pub fn removal(&self, seq: u64) -> Result<Option<Removal>, AppError> {
        let q = format!("SELECT {REMOVAL_COLUMNS} FROM removals WHERE seq = ?");
        Ok(self
            .all::<RemovalRow>(&q, vec![int(seq)])?
            .pop()
            .map(RemovalRow::removal))
    }

    /// Marks the removed messages among `views` (a page in seq order).
    pub(super) fn attach_removals(&self, views: &mut [MessageView]) -> Result<(), AppError> {
        let (Some(first), Some(last)) = (views.first(), views.last()) else {
            return Ok(());
        };
        let q = format!("SELECT {REMOVAL_COLUMNS} FROM removals WHERE seq BETWEEN ? AND ?");
        for r in self.all::<RemovalRow>(&q, vec![int(first.seq), int(last.seq)])? {
            let seq = r.seq as u64;
            if let Some(v) = views.iter_mut().find(|v| v.seq == seq) {
                v.removed = Some(r.removal());
            }
        }
        Ok(())
    }

    /// Every sanction of the session, ended ones included until the next
    /// change prunes them; read once per instance.
    pub fn sanctions(&self) -> Result<Rc<Vec<Sanction>>, AppError> {
        if let Some(all) = self.sanctions.borrow().as_ref() {
            return Ok(Rc::clone(all));
        }
        let q = format!("SELECT {SANCTION_COLUMNS} FROM sanctions");
        let rows = self.all::<SanctionRow>(&q, vec![])?;
        let all: Vec<Sanction> = rows.into_iter().filter_map(SanctionRow::sanction).collect();
        let all = Rc::new(all);
        *self.sanctions.borrow_mut() = Some(Rc::clone(&all));
        Ok(all)
    }

    /// Puts a sanction in force, replacing the user's earlier one of its
    /// kind, and prunes those that ended.
    pub fn sanction(&self, x: &Sanction, now: i64) -> Result<(), AppError> {
        self.exec(
            "DELETE FROM sanctions WHERE until IS NOT NULL AND until <= ?",
            vec![int(now)],
        )?;
        self.exec(
            "INSERT OR REPLACE INTO sanctions (user_id, kind, until, reason, by_id, by_name, at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                s(&x.user_id),
                s(x.kind.as_str()),
                x.until.map_or(V::Null, int),
                s(x.reason.as_str()),
                s(&x.by.id),
                s(&x.by.name),
                int(x.at),
            ],
        )?;
        *self.sanctions.borrow_mut() = None;
        Ok(())
    }

    /// Lifts every sanction on `user_id`; false when there was none in
    /// force.
    pub fn lift(&self, user_id: &str, now: i64) -> Result<bool, AppError> {
        let active =
            crate::moderation::find(&self.sanctions()?, user_id, Kind::Mute, now).is_some();
        self.exec("DELETE FROM sanctions WHERE user_id = ?", vec![s(user_id)])?;
        *self.sanctions.borrow_mut() = None;
        Ok(active)
    }

    /// Keeps a filter decision until a flush writes it to the home shard.
    pub fn note_decision(&self, d: &crate::moderation::filter::Decision) -> Result<(), AppError> {
        let json = serde_json::to_string(d).map_err(AppError::internal)?;
        self.exec(
            "INSERT OR IGNORE INTO filter_pending (id, decision) VALUES (?, ?)",
            vec![s(&d.id), V::String(json)],
        )?;
        Ok(())
    }

    /// Up to `limit` decisions not yet in the home shard.
    pub fn pending_decisions(
        &self,
        limit: u32,
    ) -> Result<Vec<crate::moderation::filter::Decision>, AppError> {
        #[derive(Deserialize)]
        struct Row {
            decision: String,
        }
        let rows = self.all::<Row>(
            "SELECT decision FROM filter_pending ORDER BY id LIMIT ?",
            vec![int(limit)],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(&r.decision).ok())
            .collect())
    }

    /// Forgets decisions the home shard has.
    pub fn drop_decisions(&self, ids: &[String]) -> Result<(), AppError> {
        let list = serde_json::to_string(ids).map_err(AppError::internal)?;
        self.exec(
            "DELETE FROM filter_pending WHERE id IN (SELECT value FROM json_each(?))",
            vec![V::String(list)],
        )?;
        Ok(())
    }

    /// Replaces `blocker`'s blocks with `blocked` (all of them: their list
    /// as the home shard has it).
    pub fn set_blocks(&self, blocker: &str, blocked: &[String]) -> Result<(), AppError> {
        self.exec("DELETE FROM blocks WHERE blocker = ?", vec![s(blocker)])?;
        let list = serde_json::to_string(blocked).map_err(AppError::internal)?;
        self.exec(
            "INSERT OR IGNORE INTO blocks (blocker, blocked) SELECT ?, value FROM json_each(?)",
            vec![s(blocker), V::String(list)],
        )?;
        *self.blocks.borrow_mut() = None;
        Ok(())
    }

    /// Adds (`on`) or removes one block.
    pub fn block(&self, blocker: &str, blocked: &str, on: bool) -> Result<(), AppError> {
        let q = if on {
            "INSERT OR IGNORE INTO blocks (blocker, blocked) VALUES (?, ?)"
        } else {
            "DELETE FROM blocks WHERE blocker = ? AND blocked = ?"
        };
        self.exec(q, vec![s(blocker), s(blocked)])?;
        *self.blocks.borrow_mut() = None;
        Ok(())
    }

    /// Who blocks whom here, read once per instance (and after a change).
    pub fn blocks(&self) -> Result<Rc<Blocks>, AppError> {
        if let Some(b) = self.blocks.borrow().as_ref() {
            return Ok(Rc::clone(b));
        }
        #[derive(Deserialize)]
        struct Row {
            blocker: String,
            blocked: String,
        }
        let mut all = Blocks::new();
        for r in self.all::<Row>("SELECT blocker, blocked FROM blocks", vec![])? {
            all.entry(r.blocker).or_default().insert(r.blocked);
        }
        let all = Rc::new(all);
        *self.blocks.borrow_mut() = Some(Rc::clone(&all));
        Ok(all)
    }

    /// The session's moderation record: every removal with its original
    /// text opened, oldest first, and the sanctions in force at `now`.
    pub fn record(&self, keys: &Keyring, now: i64) -> Result<Record, AppError> {
        #[derive(Deserialize)]
        struct Row {
            seq: i64,
            id: String,
            author_id: String,
            by_id: String,
            by_name: String,
            reason: String,
            at: i64,
            body: String,
        }
        let session = self.live()?.id;
        let rows = self.all::<Row>(
            "SELECT r.seq, m.id, r.author_id, r.by_id, r.by_name, r.reason, r.at, r.body
               FROM removals r JOIN messages m ON m.seq = r.seq ORDER BY r.seq",
            vec![],
        )?;
        let removals = rows
            .into_iter()
            .map(|r| {
                let opened = keys.open(&aad(Field::MessageBody, &session, Some(&r.id)), &r.body);
                let (original, unreadable) = match opened {
                    Ok(t) => (t, None),
                    Err(e) => (String::new(), Some(e.code().to_string())),
                };
                let removal = RemovalRow {
                    seq: r.seq,
                    by_id: r.by_id,
                    by_name: r.by_name,
                    reason: r.reason,
                    at: r.at,
                }
                .removal();
                RemovedMessage {
                    seq: r.seq as u64,
                    author_id: r.author_id,
                    removal,
                    original,
                    unreadable,
                }
            })
            .collect();
        let sanctions = self
            .sanctions()?
            .iter()
            .filter(|x| x.active(now))
            .cloned()
            .collect();
        Ok(Record {
            removals,
            sanctions,
        })
    }
}
