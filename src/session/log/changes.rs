//! Changes to stored messages: edits, deletions, reactions, read
//! positions and re-sealing. Each touches the outbox in the same
//! synchronous block, so D1 learns of it with the next flush.

use super::stream::Noted;
use super::{int, s, Change, Log, Reacted};
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use crate::protocol::{Author, AuthorKind, ReactAction, ReadPosition, UserRef};
use crate::session::outbox::{Outbox, Topic};
use serde::Deserialize;
use worker::SqlStorageValue as V;

impl Log {
    /// Message `seq`'s id (`!` before it when deleted) and author.
    pub fn owner_of(&self, seq: u64) -> Result<Option<(String, Author)>, AppError> {
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
        Ok(Change::Done(self.note(seq, Noted::Edited, now)?))
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
        Ok(Change::Done(self.erase_message(
            seq,
            Noted::Deleted,
            now,
            out,
        )?))
    }

    /// Makes message `seq` a tombstone (a deletion, or a moderator's
    /// removal, as `what` says) and gives the change number.
    pub(super) fn erase_message(
        &self,
        seq: u64,
        what: Noted,
        now: i64,
        out: &Outbox,
    ) -> Result<u64, AppError> {
        self.exec("DELETE FROM message_edits WHERE seq = ?", vec![int(seq)])?;
        self.exec("DELETE FROM reactions WHERE seq = ?", vec![int(seq)])?;
        self.exec("DELETE FROM mentions WHERE seq = ?", vec![int(seq)])?;
        self.exec("DELETE FROM ratings WHERE seq = ?", vec![int(seq)])?;
        self.drop_poll(seq, now, out)?;
        self.exec(
            "UPDATE messages SET body = '', deleted_at = ? WHERE seq = ?",
            vec![int(now), int(seq)],
        )?;
        out.touch(&self.sql, Topic::Message, &seq.to_string(), now)?;
        out.touch(&self.sql, Topic::Reactions, &seq.to_string(), now)?;
        out.touch(&self.sql, Topic::Ratings, &seq.to_string(), now)?;
        self.note(seq, what, now)
    }

    /// Adds or removes a reaction; a user holds at most `cap` distinct
    /// reactions on one message.
    #[allow(clippy::too_many_arguments)]
    pub fn react(
        &self,
        seq: u64,
        user: &UserRef,
        emoji: &str,
        action: ReactAction,
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
        let (user_id, add) = (user.id.as_str(), action == ReactAction::Add);
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
        let noted = Noted::Reaction {
            user,
            emoji,
            action,
        };
        Ok(Reacted::Changed(self.note(seq, noted, now)?))
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
        let last = self.last_seq()?;
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

    /// Every user's read position.
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

    /// Re-seals up to `limit` bodies (messages, edit history, poll options,
    /// attachment names, ratings' reasons, then function calls' arguments
    /// and results) that are not under the active key, and
    /// queues those D1 holds for replication. (Attachments' bytes in R2
    /// stay sealed as they were: any key of the keyring opens them.)
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
        for (field, topic, select, update) in [
            (
                Field::MessageBody,
                Some(Topic::Message),
                "SELECT seq AS key, seq, id, body FROM messages
                  WHERE body != '' AND substr(body, 1, ?1) != ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
                "UPDATE messages SET body = ? WHERE seq = ?",
            ),
            (
                Field::MessageBody,
                Some(Topic::Message),
                "SELECT e.id AS key, e.seq, m.id, e.body FROM message_edits e JOIN messages m ON m.seq = e.seq
                  WHERE substr(e.body, 1, ?1) != ?2 AND e.id > ?3 ORDER BY e.id LIMIT ?4",
                "UPDATE message_edits SET body = ? WHERE id = ?",
            ),
            (
                // Removed messages' originals, kept for audit.
                Field::MessageBody,
                None,
                "SELECT r.seq AS key, r.seq, m.id, r.body FROM removals r JOIN messages m ON m.seq = r.seq
                  WHERE substr(r.body, 1, ?1) != ?2 AND r.seq > ?3 ORDER BY r.seq LIMIT ?4",
                "UPDATE removals SET body = ? WHERE seq = ?",
            ),
            (
                Field::PollOptions,
                Some(Topic::Poll),
                "SELECT seq AS key, seq, id, options AS body FROM polls
                  WHERE substr(options, 1, ?1) != ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
                "UPDATE polls SET options = ? WHERE seq = ?",
            ),
            (
                Field::AttachmentName,
                None,
                "SELECT rowid AS key, 0 AS seq, id, name AS body FROM attachments
                  WHERE substr(name, 1, ?1) != ?2 AND rowid > ?3 ORDER BY rowid LIMIT ?4",
                "UPDATE attachments SET name = ? WHERE rowid = ?",
            ),
            (
                // The id in a reason's AAD is `feedback::reason_id`.
                Field::RatingReason,
                Some(Topic::Ratings),
                "SELECT rowid AS key, seq, seq || ':' || user_id AS id, reason AS body FROM ratings
                  WHERE reason IS NOT NULL AND substr(reason, 1, ?1) != ?2 AND rowid > ?3 ORDER BY rowid LIMIT ?4",
                "UPDATE ratings SET reason = ? WHERE rowid = ?",
            ),
            (
                // Function calls' arguments and results (`tools.rs`); a
                // call's topic key is its row id.
                Field::ToolCall,
                Some(Topic::ToolCall),
                "SELECT id AS key, id AS seq, reply || '/' || call_id AS id, arguments AS body FROM tool_calls
                  WHERE substr(arguments, 1, ?1) != ?2 AND id > ?3 ORDER BY id LIMIT ?4",
                "UPDATE tool_calls SET arguments = ? WHERE id = ?",
            ),
            (
                Field::ToolResult,
                Some(Topic::ToolCall),
                "SELECT id AS key, id AS seq, reply || '/' || call_id AS id, result AS body FROM tool_calls
                  WHERE result IS NOT NULL AND substr(result, 1, ?1) != ?2 AND id > ?3 ORDER BY id LIMIT ?4",
                "UPDATE tool_calls SET result = ? WHERE id = ?",
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
                    match keys.rotate(&aad(field, &session, Some(&r.id)), &r.body) {
                        Ok(b) => {
                            self.exec(update, vec![V::String(b), int(r.key)])?;
                            if let Some(topic) = topic {
                                out.touch(&self.sql, topic, &r.seq.to_string(), now)?;
                            }
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
}
