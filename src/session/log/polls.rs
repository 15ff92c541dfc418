//! Polls in the log (`crate::poll` holds the rules): the poll beside its
//! message, and one row per (user, choice).
//!
//! The options are the poll's content, so they are sealed like the
//! message text, under their own AAD field (`poll.options`) bound to the
//! session and message ids; the shape (multiple, anonymous, closing time)
//! is plain, for the alarm's query. A vote replaces the user's ballot
//! whole and takes a number in the change stream (`stream.rs`), as does
//! the poll's closing, so a resuming socket gets the tally as it is now.

use super::stream::{Noted, Number};
use super::{int, s, Log};
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use crate::poll::{PollSpec, PollView, Refusal, Tally};
use crate::protocol::{MessageView, UserRef};
use crate::session::outbox::{Outbox, Topic};
use serde::Deserialize;
use worker::SqlStorageValue as V;

pub(super) const SCHEMA: &str = "
-- A poll beside its message: options sealed (JSON array), the rest plain.
-- closed: the alarm has announced its closing (a change of its own).
CREATE TABLE IF NOT EXISTS polls (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL, options TEXT NOT NULL,
  multiple INTEGER NOT NULL, anonymous INTEGER NOT NULL, closes_at INTEGER,
  closed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS votes (
  seq INTEGER NOT NULL, user_id TEXT NOT NULL, choice INTEGER NOT NULL, at INTEGER NOT NULL,
  PRIMARY KEY (seq, user_id, choice));
";

/// What a vote came to.
pub enum Voted {
    /// Stored as change `.0`; `.1` is the poll, `.2` its votes now.
    Changed(u64, PollSpec, Vec<(String, u32)>),
    /// The user's ballot was already this.
    Unchanged,
    Refused(Refusal),
    /// No such message, or it was deleted.
    Missing,
}

/// A poll row as stored (options sealed).
#[derive(Deserialize)]
pub struct PollRow {
    pub seq: i64,
    pub id: String,
    pub options: String,
    pub multiple: i64,
    pub anonymous: i64,
    pub closes_at: Option<i64>,
    pub closed: i64,
}

impl PollRow {
    /// The poll, if its options open.
    fn open(&self, keys: &Keyring, session: &str) -> Option<PollSpec> {
        let json = keys
            .open(
                &aad(Field::PollOptions, session, Some(&self.id)),
                &self.options,
            )
            .ok()?;
        Some(PollSpec {
            options: serde_json::from_str(&json).ok()?,
            multiple: self.multiple != 0,
            anonymous: self.anonymous != 0,
            closes_at: self.closes_at,
        })
    }
}

const POLL_COLUMNS: &str = "seq, id, options, multiple, anonymous, closes_at, closed";

impl Log {
    /// Stores the poll of new message `seq` (same block as the message).
    /// Appends replicate by seq, without an outbox row; a poll takes one,
    /// so D1 gets it with the message's flush.
    pub(super) fn create_poll(
        &self,
        keys: &Keyring,
        (session, id): (&str, &str),
        (seq, spec): (i64, &PollSpec),
        out: &Outbox,
        now: i64,
    ) -> Result<(), AppError> {
        let options = serde_json::to_string(&spec.options).map_err(AppError::internal)?;
        let sealed = keys.seal(&aad(Field::PollOptions, session, Some(id)), &options);
        self.exec(
            "INSERT INTO polls (seq, id, options, multiple, anonymous, closes_at) VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                int(seq),
                s(id),
                V::String(sealed),
                int(spec.multiple as i64),
                int(spec.anonymous as i64),
                spec.closes_at.map_or(V::Null, int),
            ],
        )?;
        out.touch(&self.sql, Topic::Poll, &seq.to_string(), now)
    }

    /// The stored poll rows with seqs in `[from, to]`.
    pub fn poll_rows(&self, from: u64, to: u64) -> Result<Vec<PollRow>, AppError> {
        self.all::<PollRow>(
            &format!("SELECT {POLL_COLUMNS} FROM polls WHERE seq BETWEEN ? AND ? ORDER BY seq"),
            vec![int(from), int(to)],
        )
    }

    fn poll(&self, keys: &Keyring, seq: u64) -> Result<Option<PollSpec>, AppError> {
        let session = self.live()?.id;
        Ok(self
            .poll_rows(seq, seq)?
            .pop()
            .and_then(|r| r.open(keys, &session)))
    }

    /// Poll `seq`'s votes as `(user id, choice)`, in user order, with
    /// when each was cast.
    pub fn votes(&self, seq: u64) -> Result<Vec<(String, u32, i64)>, AppError> {
        #[derive(Deserialize)]
        struct Row {
            user_id: String,
            choice: i64,
            at: i64,
        }
        Ok(self
            .all::<Row>(
                "SELECT user_id, choice, at FROM votes WHERE seq = ? ORDER BY user_id, choice",
                vec![int(seq)],
            )?
            .into_iter()
            .map(|r| (r.user_id, r.choice.max(0) as u32, r.at))
            .collect())
    }

    fn ballots(&self, seq: u64) -> Result<Vec<(String, u32)>, AppError> {
        Ok(self
            .votes(seq)?
            .into_iter()
            .map(|(u, c, _)| (u, c))
            .collect())
    }

    /// Replaces `user`'s ballot on poll `seq` with `choices`.
    pub fn vote(
        &self,
        keys: &Keyring,
        (seq, user): (u64, &UserRef),
        choices: &[u32],
        now: i64,
        out: &Outbox,
    ) -> Result<Voted, AppError> {
        match self.owner_of(seq)? {
            Some((id, _)) if !id.starts_with('!') => {}
            _ => return Ok(Voted::Missing),
        }
        let Some(spec) = self.poll(keys, seq)? else {
            return Ok(Voted::Refused(Refusal::NotAPoll));
        };
        if let Err(r) = spec.check_ballot(choices, now) {
            return Ok(Voted::Refused(r));
        }
        let mut wanted = choices.to_vec();
        crate::sort::sort_by_key(&mut wanted, |c| *c);
        let votes = self.ballots(seq)?;
        let had: Vec<u32> = votes
            .iter()
            .filter(|(u, _)| *u == user.id)
            .map(|(_, c)| *c)
            .collect();
        if had == wanted {
            return Ok(Voted::Unchanged);
        }
        self.exec(
            "DELETE FROM votes WHERE seq = ? AND user_id = ?",
            vec![int(seq), s(&user.id)],
        )?;
        for c in &wanted {
            self.exec(
                "INSERT INTO votes (seq, user_id, choice, at) VALUES (?, ?, ?, ?)",
                vec![int(seq), s(&user.id), int(*c), int(now)],
            )?;
        }
        out.touch(&self.sql, Topic::Poll, &seq.to_string(), now)?;
        let n = self.note(seq, Noted::Poll, now)?;
        Ok(Voted::Changed(n, spec, self.ballots(seq)?))
    }

    /// Poll `seq`'s tally as `reader` sees it (None: for everyone), or
    /// None when it is not a poll (any more).
    pub fn tally(
        &self,
        keys: &Keyring,
        seq: u64,
        now: i64,
        reader: Option<&str>,
    ) -> Result<Option<Tally>, AppError> {
        let Some(spec) = self.poll(keys, seq)? else {
            return Ok(None);
        };
        Ok(Some(Tally::count(&spec, &self.ballots(seq)?, now, reader)))
    }

    /// Marks every poll whose closing time has come as closed, each as a
    /// change of its own; gives `(seq, change)` of each.
    pub fn close_due(&self, now: i64, out: &Outbox) -> Result<Vec<(u64, u64)>, AppError> {
        let due = self.all::<Number>(
            "SELECT seq AS n FROM polls WHERE closed = 0 AND closes_at <= ? ORDER BY seq",
            vec![int(now)],
        )?;
        let mut closed = Vec::with_capacity(due.len());
        for seq in due.into_iter().filter_map(|r| r.n) {
            self.exec("UPDATE polls SET closed = 1 WHERE seq = ?", vec![int(seq)])?;
            out.touch(&self.sql, Topic::Poll, &seq.to_string(), now)?;
            closed.push((seq as u64, self.note(seq as u64, Noted::Poll, now)?));
        }
        Ok(closed)
    }

    /// When the next open poll closes, if any does.
    pub fn next_close(&self) -> Result<Option<i64>, AppError> {
        let q = "SELECT min(closes_at) AS n FROM polls WHERE closed = 0";
        Ok(self.all::<Number>(q, vec![])?.first().and_then(|r| r.n))
    }

    /// Drops a deleted message's poll and votes (same block as the delete).
    pub(super) fn drop_poll(&self, seq: u64, now: i64, out: &Outbox) -> Result<(), AppError> {
        let gone = self
            .exec("DELETE FROM polls WHERE seq = ?", vec![int(seq)])?
            .rows_written();
        if gone > 0 {
            self.exec("DELETE FROM votes WHERE seq = ?", vec![int(seq)])?;
            out.touch(&self.sql, Topic::Poll, &seq.to_string(), now)?;
        }
        Ok(())
    }

    /// Sets the poll (options and tally, as `reader` sees it) of every
    /// poll among `views`, one page of history.
    pub(super) fn attach_polls(
        &self,
        keys: &Keyring,
        views: &mut [MessageView],
        (session, now, reader): (&str, i64, Option<&str>),
    ) -> Result<(), AppError> {
        let (Some(first), Some(last)) = (views.first(), views.last()) else {
            return Ok(());
        };
        for row in self.poll_rows(first.seq, last.seq)? {
            let Some(v) = views.iter_mut().find(|v| v.seq == row.seq as u64) else {
                continue;
            };
            // Options that do not open leave the message a plain one; its
            // text says why (`unreadable`) when it is sealed alike.
            let Some(spec) = row.open(keys, session) else {
                continue;
            };
            let tally = Tally::count(&spec, &self.ballots(v.seq)?, now, reader);
            v.poll = Some(PollView::new(spec, tally));
        }
        Ok(())
    }
}
