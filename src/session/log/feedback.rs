//! The assistant's replies as people judge them: ratings (private to the
//! rater and admins) and regeneration (the reply kept, marked superseded).
//! Each write touches the outbox in the same synchronous block.

use super::stream::Noted;
use super::{int, s, Log};
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use crate::protocol::{AuthorKind, Rating};
use crate::session::outbox::{Outbox, Topic};
use serde::Deserialize;
use worker::SqlStorageValue as V;

/// What a rating came to.
pub enum Rated {
    Done,
    /// Already so.
    Unchanged,
    /// Only the assistant's live replies are rated.
    NotRateable,
    Missing,
}

/// A rating as stored: the reason sealed.
#[derive(Deserialize)]
pub struct StoredRating {
    pub user_id: String,
    pub rating: String,
    pub reason: Option<String>,
    pub at: i64,
}

/// The AAD id of a rating's reason: one per message and rater.
pub fn reason_id(seq: u64, user_id: &str) -> String {
    format!("{seq}:{user_id}")
}

impl Log {
    /// Sets (or with `Rating::None`, takes back) `user_id`'s rating of the
    /// assistant's reply `seq`.
    #[allow(clippy::too_many_arguments)]
    pub fn rate(
        &self,
        keys: &Keyring,
        seq: u64,
        user_id: &str,
        (rating, reason): (Rating, Option<&str>),
        now: i64,
        out: &Outbox,
    ) -> Result<Rated, AppError> {
        match self.owner_of(seq)? {
            None => return Ok(Rated::Missing),
            Some((id, a)) if a.kind != AuthorKind::Assistant || id.starts_with('!') => {
                return Ok(Rated::NotRateable)
            }
            Some(_) => {}
        }
        #[derive(Deserialize)]
        struct Had {
            rating: String,
        }
        let had = self
            .all::<Had>(
                "SELECT rating FROM ratings WHERE seq = ? AND user_id = ?",
                vec![int(seq), s(user_id)],
            )?
            .pop()
            .map(|h| h.rating);
        if rating == Rating::None {
            if had.is_none() {
                return Ok(Rated::Unchanged);
            }
            self.exec(
                "DELETE FROM ratings WHERE seq = ? AND user_id = ?",
                vec![int(seq), s(user_id)],
            )?;
        } else {
            let session = self.live()?.id;
            let id = reason_id(seq, user_id);
            let sealed = reason
                .filter(|r| !r.trim().is_empty())
                .map(|r| keys.seal(&aad(Field::RatingReason, &session, Some(&id)), r));
            self.exec(
                "INSERT INTO ratings (seq, user_id, rating, reason, at) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (seq, user_id) DO UPDATE SET rating = excluded.rating,
                   reason = excluded.reason, at = excluded.at",
                vec![
                    int(seq),
                    s(user_id),
                    s(rating.as_str()),
                    sealed.map_or(V::Null, V::String),
                    int(now),
                ],
            )?;
        }
        out.touch(&self.sql, Topic::Ratings, &seq.to_string(), now)?;
        Ok(Rated::Done)
    }

    /// Every rating of reply `seq`, for replication.
    pub fn ratings(&self, seq: u64) -> Result<Vec<StoredRating>, AppError> {
        self.all::<StoredRating>(
            "SELECT user_id, rating, reason, at FROM ratings WHERE seq = ?",
            vec![int(seq)],
        )
    }

    /// The newest message when it is the assistant's live, current reply:
    /// what `regenerate` answers again.
    pub fn regenerable(&self) -> Result<Option<u64>, AppError> {
        #[derive(Deserialize)]
        struct Last {
            seq: i64,
            author_kind: String,
            deleted_at: Option<i64>,
            superseded_at: Option<i64>,
        }
        let last = self
            .all::<Last>(
                "SELECT seq, author_kind, deleted_at, superseded_at FROM messages ORDER BY seq DESC LIMIT 1",
                vec![],
            )?
            .pop();
        Ok(last
            .filter(|l| {
                l.author_kind == AuthorKind::Assistant.as_str()
                    && l.deleted_at.is_none()
                    && l.superseded_at.is_none()
            })
            .map(|l| l.seq as u64))
    }

    /// Marks reply `seq` superseded; gives the change number.
    pub fn supersede(&self, seq: u64, now: i64, out: &Outbox) -> Result<u64, AppError> {
        self.exec(
            "UPDATE messages SET superseded_at = ? WHERE seq = ?",
            vec![int(now), int(seq)],
        )?;
        out.touch(&self.sql, Topic::Message, &seq.to_string(), now)?;
        self.note(seq, Noted::Superseded, now)
    }
}
