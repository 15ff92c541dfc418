//! The change stream: every edit, deletion, reaction and vote (and a
//! poll's closing) gets a number,
//! 1, 2, 3, … per session (`change` in its frame), so that a resuming
//! client can be given exactly the changes it missed (`?changes=N`).
//!
//! **What is kept.** One row per *thing that can change*, holding its
//! latest change: a message's text (its latest edit, or its deletion),
//! each (message, emoji, user) reaction, and a poll's tally (its latest
//! vote, or its closing). A later change replaces the row
//! with a higher number, and a deletion drops the message's other rows
//! (the deletion erased its reactions and poll). So the table grows with the things changed,
//! not with every change, and a replay sends each changed thing once, in
//! its current state, in the order of its latest change. Earlier changes
//! to the same thing are folded into it: a client that missed two edits of
//! one message gets one `edited` frame with the text as it is now.
//!
//! **Why current state is safe.** A row's number is the latest change to
//! its thing, so replaying the row never undoes a newer change: a newer
//! one would have replaced the row (and is replayed, or reaches the socket
//! live, instead).
//!
//! **Idempotency keys.** A change that carries a `client_id` records it in
//! `change_keys` with the number it took (none when it changed nothing), in
//! the same block as the change; a resend finds it there and changes
//! nothing again.

use super::{int, s, Log};
use crate::crypto::Keyring;
use crate::error::AppError;
use crate::protocol::{ReactAction, ServerFrame, UserRef};
use crate::store::messages::{MessageRow, COLUMNS};
use serde::Deserialize;

pub(super) const SCHEMA: &str = "
-- One row per changed thing, with its latest change: a message's text
-- (emoji and user_id empty; kind 'edited', 'deleted' or 'moderated': removed
-- by a moderator), a reaction
-- (kind 'added' or 'removed') or a poll's tally (emoji empty, user_id
-- 'poll', kind 'poll': no reaction has an empty emoji).
CREATE TABLE IF NOT EXISTS changes (
  seq INTEGER NOT NULL, emoji TEXT NOT NULL, user_id TEXT NOT NULL,
  n INTEGER NOT NULL, kind TEXT NOT NULL, user_name TEXT NOT NULL, at INTEGER NOT NULL,
  PRIMARY KEY (seq, emoji, user_id));
CREATE UNIQUE INDEX IF NOT EXISTS changes_n ON changes (n);
-- Idempotency keys of changes: n is the change they made (NULL: none).
CREATE TABLE IF NOT EXISTS change_keys (
  user_id TEXT NOT NULL, client_id TEXT NOT NULL, n INTEGER, at INTEGER NOT NULL,
  PRIMARY KEY (user_id, client_id));
";

/// One change, to record.
pub enum Noted<'a> {
    Edited,
    Deleted,
    /// Deleted by a moderator (`moderation.rs`).
    Removed,
    Reaction {
        user: &'a UserRef,
        emoji: &'a str,
        action: ReactAction,
    },
    /// A poll's tally changed: a vote, or its closing.
    Poll,
    /// An assistant reply was answered again.
    Superseded,
}

/// Which changes a resuming socket is owed: those numbered in
/// `(since, until]` to messages up to `upto` (later messages replay whole,
/// in their current state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: u64,
    pub until: u64,
    pub upto: u64,
}

/// A change number read back (one row type for every such read).
#[derive(Deserialize)]
pub(super) struct Number {
    pub n: Option<i64>,
}

impl Log {
    /// The number of the session's latest change (0: none yet).
    pub fn last_change(&self) -> Result<u64, AppError> {
        Ok(self
            .all::<Number>("SELECT max(n) AS n FROM changes", vec![])?
            .first()
            .and_then(|r| r.n)
            .map_or(0, |n| n.max(0) as u64))
    }

    /// Records a change to message `seq` and gives its number. Called in
    /// the same synchronous block as the change itself.
    pub(super) fn note(&self, seq: u64, what: Noted, now: i64) -> Result<u64, AppError> {
        let n = self.last_change()? + 1;
        let (kind, emoji, user_id, user_name) = match what {
            Noted::Edited => ("edited", "", "", ""),
            Noted::Deleted | Noted::Removed => {
                // The deletion erased the reactions and poll; the client
                // drops them with the message.
                self.exec(
                    "DELETE FROM changes WHERE seq = ? AND NOT (emoji = '' AND user_id = '')",
                    vec![int(seq)],
                )?;
                // Not 'removed': that is a reaction taken back.
                let kind = match what {
                    Noted::Removed => "moderated",
                    _ => "deleted",
                };
                (kind, "", "", "")
            }
            Noted::Reaction {
                user,
                emoji,
                action,
            } => {
                let kind = match action {
                    ReactAction::Add => "added",
                    ReactAction::Remove => "removed",
                };
                (kind, emoji, user.id.as_str(), user.name.as_str())
            }
            Noted::Poll => ("poll", "", "poll", ""),
            Noted::Superseded => ("superseded", "", "superseded", ""),
        };
        self.exec(
            "INSERT OR REPLACE INTO changes (seq, emoji, user_id, n, kind, user_name, at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                int(seq),
                s(emoji),
                s(user_id),
                int(n),
                s(kind),
                s(user_name),
                int(now),
            ],
        )?;
        Ok(n)
    }

    /// What an earlier change with this idempotency key did: `Some(n)` (or
    /// `Some(None)`: it changed nothing), or None if the key is new.
    pub fn keyed(&self, user_id: &str, client_id: &str) -> Result<Option<Option<u64>>, AppError> {
        Ok(self
            .all::<Number>(
                "SELECT n FROM change_keys WHERE user_id = ? AND client_id = ?",
                vec![s(user_id), s(client_id)],
            )?
            .first()
            .map(|r| r.n.map(|n| n as u64)))
    }

    /// Keeps an idempotency key with what its change did.
    pub fn remember_key(
        &self,
        user_id: &str,
        client_id: &str,
        change: Option<u64>,
        now: i64,
    ) -> Result<(), AppError> {
        self.exec(
            "INSERT OR IGNORE INTO change_keys (user_id, client_id, n, at) VALUES (?, ?, ?, ?)",
            vec![
                s(user_id),
                s(client_id),
                change.map_or(worker::SqlStorageValue::Null, int),
                int(now),
            ],
        )?;
        Ok(())
    }

    /// Up to `limit` of the changes `window` owes, oldest first, as the
    /// frames that replay them to `reader`, and the window of the rest
    /// when there may be more.
    pub fn changes_page(
        &self,
        keys: &Keyring,
        (window, reader): (Window, &str),
        limit: u32,
    ) -> Result<(Vec<String>, Option<Window>), AppError> {
        #[derive(Deserialize)]
        struct Row {
            seq: i64,
            n: i64,
            kind: String,
            emoji: String,
            user_id: String,
            user_name: String,
            at: i64,
        }
        let rows = self.all::<Row>(
            "SELECT seq, n, kind, emoji, user_id, user_name, at FROM changes
              WHERE n > ? AND n <= ? AND seq <= ? ORDER BY n LIMIT ?",
            vec![
                int(window.since),
                int(window.until),
                int(window.upto),
                int(limit),
            ],
        )?;
        let rest = match rows.last() {
            Some(last) if rows.len() as u32 == limit => Some(Window {
                since: last.n as u64,
                ..window
            }),
            _ => None,
        };
        let session = self.live()?.id;
        let blocks = self.blocks()?;
        let blocked = blocks.get(reader);
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let (seq, change) = (r.seq as u64, r.n as u64);
            let frame = match r.kind.as_str() {
                "edited" => {
                    let q = format!("SELECT {COLUMNS} FROM messages WHERE seq = ?");
                    let Some(row) = self.all::<MessageRow>(&q, vec![int(seq)])?.pop() else {
                        continue;
                    };
                    let view = row.into_view(keys, &session);
                    // An unreadable text is not replayed as empty: history
                    // shows it with its reason. Nor is a text the reader
                    // blocked its author for.
                    let hidden =
                        blocked.is_some_and(|b| crate::moderation::hidden(b, &view.author));
                    if view.unreadable.is_some() || hidden {
                        continue;
                    }
                    ServerFrame::Edited {
                        seq,
                        text: &view.text,
                        edited_at: view.edited_at.unwrap_or(r.at),
                        change,
                    }
                    .to_json()
                }
                "poll" => {
                    let now = crate::store::now_ms();
                    let Some(tally) = self.tally(keys, seq, now, Some(reader))? else {
                        continue;
                    };
                    ServerFrame::Poll {
                        seq,
                        tally: &tally,
                        change,
                    }
                    .to_json()
                }
                "superseded" => ServerFrame::Superseded { seq, change }.to_json(),
                "deleted" | "moderated" => ServerFrame::Deleted {
                    seq,
                    deleted_at: r.at,
                    change,
                    removed: self.removal(seq)?.as_ref(),
                }
                .to_json(),
                // Nor a reaction of someone the reader blocks.
                _ if blocked.is_some_and(|b| b.contains(&r.user_id)) => continue,
                kind => ServerFrame::Reaction {
                    seq,
                    emoji: &r.emoji,
                    user: &UserRef {
                        id: r.user_id,
                        name: r.user_name,
                    },
                    action: if kind == "added" {
                        ReactAction::Add
                    } else {
                        ReactAction::Remove
                    },
                    change,
                }
                .to_json(),
            };
            out.push(frame);
        }
        Ok((out, rest))
    }
}
