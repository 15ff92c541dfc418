//! Pages of messages as clients see them: each with its reactions, poll,
//! attachments, removal and mentions, and without the messages of people
//! the reader blocks; with the tool messages the reader sees
//! (`tools.rs`), in seq order among the rest.

use super::tools::Sight;
use super::{int, Log};
use crate::crypto::Keyring;
use crate::error::AppError;
use crate::protocol::{MessageView, ReactionSummary};
use crate::store::messages::{MessageRow, COLUMNS};
use serde::Deserialize;
use worker::SqlStorageValue as V;

/// A page, and how far it reached: the messages the reader blocks are left
/// out after the range was read, so `messages` alone cannot say where the
/// next page starts or whether there is one.
pub struct Page {
    pub messages: Vec<MessageView>,
    /// The first and last seq the page read, shown or not.
    pub read: Option<(u64, u64)>,
    /// The range held `limit` messages or more: another page may follow.
    pub full: bool,
}

impl Page {
    /// The `before` of the next older page (of a `newest` page), if any.
    pub fn next_before(&self) -> Option<u64> {
        let (first, _) = self.read.filter(|_| self.full)?;
        Some(first).filter(|&s| s > 1)
    }
}

impl Log {
    /// Messages in `(after, before)`, oldest first, at most `limit`, with
    /// their reactions: the newest ones below `before` when `newest`, else
    /// the oldest ones above `after`. With `thread`, only that message and
    /// the replies to it (no tool messages). Polls show their tally as
    /// `reader` sees it; `sight` says which tool messages are theirs.
    pub fn page(
        &self,
        keys: &Keyring,
        (after, before): (u64, u64),
        limit: u32,
        (newest, thread, sight): (bool, Option<u64>, Sight),
        reader: Option<&str>,
    ) -> Result<Page, AppError> {
        let session = self.live()?.id;
        let order = if newest { "DESC" } else { "ASC" };
        // (A thread reads the range without an index on reply_to: one scan
        // of at most the session's messages, in the object's own storage.)
        let q = format!(
            "SELECT {COLUMNS} FROM messages WHERE seq > ?1 AND seq < ?2
               AND (?4 = 0 OR seq = ?4 OR reply_to = ?4) ORDER BY seq {order} LIMIT ?3"
        );
        // One past the largest seq is 2^53, not a safe JS integer: passed
        // as a float, which SQLite compares with integers exactly.
        let clamp = |n: u64| V::Float(n.min(crate::protocol::MAX_SEQ + 1) as f64);
        let args = vec![
            clamp(after),
            clamp(before),
            int(limit),
            int(thread.unwrap_or(0)),
        ];
        let mut rows = self.all::<MessageRow>(&q, args)?;
        if newest {
            rows.reverse();
        }
        let mut views: Vec<MessageView> = rows
            .into_iter()
            .map(|r| r.into_view(keys, &session))
            .collect();
        if thread.is_none() {
            let tools =
                self.tool_messages(keys, (clamp(after), clamp(before)), (limit, newest), sight)?;
            views = merged(views, tools, limit as usize, newest);
        }
        let read = views.first().zip(views.last()).map(|(a, b)| (a.seq, b.seq));
        let full = views.len() >= limit as usize;
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
        let now = crate::store::now_ms();
        self.attach_polls(keys, &mut views, (&session, now, reader))?;
        self.attach_files(keys, &mut views, &session)?;
        self.attach_removals(&mut views)?;
        self.attach_mentions(&mut views)?;
        // The reader's blocked users' messages are not theirs to see.
        if let Some(blocked) = reader.and_then(|r| self.blocks().ok()?.get(r).cloned()) {
            views.retain(|v| !crate::moderation::hidden(&blocked, &v.author));
        }
        Ok(Page {
            messages: views,
            read,
            full,
        })
    }
}

/// Two pages of the same range, each oldest first and each the `limit`
/// newest (`newest`) or oldest of its kind, as one such page.
fn merged(
    a: Vec<MessageView>,
    b: Vec<MessageView>,
    limit: usize,
    newest: bool,
) -> Vec<MessageView> {
    if b.is_empty() {
        return a;
    }
    // Both are in seq order and no seq is in both: a merge, not a sort.
    let mut all = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        let next = if x.seq < y.seq { a.next() } else { b.next() };
        all.extend(next);
    }
    all.extend(a.chain(b));
    if all.len() > limit {
        if newest {
            all.drain(..all.len() - limit);
        } else {
            all.truncate(limit);
        }
    }
    all
}
