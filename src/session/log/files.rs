//! Attachments in the session log (`crate::attachment`): one row per
//! upload, with its name sealed like message text. A row without a `seq`
//! is an upload no message carries yet; a send claims it in the same
//! commit as the message, and only its uploader may.

use super::{int, s, Log};
use crate::attachment::{AttachmentView, Kind, Stored};
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use crate::protocol::MessageView;
use serde::Deserialize;
use worker::SqlStorageValue as V;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS attachments (
  id TEXT PRIMARY KEY, author_id TEXT NOT NULL,
  -- sealed (attachment.name)
  name TEXT NOT NULL,
  kind TEXT NOT NULL, size INTEGER NOT NULL, width INTEGER, height INTEGER,
  -- where its sealed bytes are in R2
  object_key TEXT NOT NULL,
  -- the message carrying it; NULL until a send claims it
  seq INTEGER,
  -- its place among the message's attachments
  pos INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS attachments_seq ON attachments (seq) WHERE seq IS NOT NULL;
";

#[derive(Deserialize)]
struct Row {
    id: String,
    name: String,
    kind: String,
    size: i64,
    width: Option<i64>,
    height: Option<i64>,
    object_key: String,
    seq: Option<i64>,
}

const COLUMNS: &str = "id, name, kind, size, width, height, object_key, seq";

impl Row {
    fn into_stored(self, keys: &Keyring, session: &str) -> Stored {
        let name = keys
            .open(
                &aad(Field::AttachmentName, session, Some(&self.id)),
                &self.name,
            )
            // A name that cannot be opened is shown as nothing, as a text is.
            .unwrap_or_default();
        let dim = |d: Option<i64>| d.map(|d| d.clamp(0, u32::MAX as i64) as u32);
        Stored {
            view: AttachmentView {
                id: self.id,
                name,
                // Stored as its MIME type (`store_file`).
                kind: Kind::parse(&self.kind).unwrap_or(Kind::Text),
                size: self.size.max(0) as u64,
                width: dim(self.width),
                height: dim(self.height),
            },
            key: self.object_key,
        }
    }
}

impl Log {
    /// Records an upload by `author`; false when its id is taken (the same
    /// upload URL used twice).
    pub fn store_file(
        &self,
        keys: &Keyring,
        author: &str,
        f: &Stored,
        now: i64,
    ) -> Result<bool, AppError> {
        let session = self.live()?.id;
        let v = &f.view;
        let name = keys.seal(&aad(Field::AttachmentName, &session, Some(&v.id)), &v.name);
        let written = self
            .exec(
                "INSERT OR IGNORE INTO attachments
                   (id, author_id, name, kind, size, width, height, object_key, seq, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                vec![
                    s(&v.id),
                    s(author),
                    V::String(name),
                    s(v.kind.mime()),
                    int(v.size),
                    v.width.map_or(V::Null, int),
                    v.height.map_or(V::Null, int),
                    s(&f.key),
                    int(now),
                ],
            )?
            .rows_written();
        Ok(written > 0)
    }

    /// An attachment of the session that is still there: not carried by a
    /// deleted message.
    pub fn file(&self, keys: &Keyring, id: &str) -> Result<Option<Stored>, AppError> {
        let session = self.live()?.id;
        let rows = self.all::<Row>(
            &format!(
                "SELECT {COLUMNS} FROM attachments a WHERE id = ?
                   AND (seq IS NULL OR NOT EXISTS (SELECT 1 FROM messages m
                        WHERE m.seq = a.seq AND m.deleted_at IS NOT NULL))"
            ),
            vec![s(id)],
        )?;
        Ok(rows
            .into_iter()
            .next()
            .map(|r| r.into_stored(keys, &session)))
    }

    /// Whether every id is an upload of `author`'s that no message carries.
    pub fn claimable(&self, author: &str, ids: &[String]) -> Result<bool, AppError> {
        for id in ids {
            let n = self.all::<Row>(
                &format!(
                    "SELECT {COLUMNS} FROM attachments WHERE id = ? AND author_id = ? AND seq IS NULL"
                ),
                vec![s(id), s(author)],
            )?;
            if n.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Gives message `seq` the attachments among `ids` that are still
    /// `author`'s to claim (checked when the send arrived; a second send
    /// naming the same upload in the meantime loses it), in `ids` order.
    pub(super) fn claim_files(
        &self,
        keys: &Keyring,
        session: &str,
        (seq, author): (i64, &str),
        ids: &[String],
    ) -> Result<Vec<AttachmentView>, AppError> {
        let mut views = Vec::with_capacity(ids.len());
        for (pos, id) in ids.iter().enumerate() {
            let rows = self.all::<Row>(
                &format!(
                    "UPDATE attachments SET seq = ?, pos = ? WHERE id = ? AND author_id = ? AND seq IS NULL
                     RETURNING {COLUMNS}"
                ),
                vec![int(seq), int(pos), s(id), s(author)],
            )?;
            views.extend(rows.into_iter().map(|r| r.into_stored(keys, session).view));
        }
        Ok(views)
    }

    /// Adds each message's attachments to `views` (a page, in seq order);
    /// a deleted message shows none.
    pub(super) fn attach_files(
        &self,
        keys: &Keyring,
        views: &mut [MessageView],
        session: &str,
    ) -> Result<(), AppError> {
        let (Some(first), Some(last)) = (views.first(), views.last()) else {
            return Ok(());
        };
        let rows = self.all::<Row>(
            &format!(
                "SELECT {COLUMNS} FROM attachments WHERE seq BETWEEN ? AND ?
                   ORDER BY seq, pos"
            ),
            vec![int(first.seq), int(last.seq)],
        )?;
        for r in rows {
            let seq = r.seq.unwrap_or(0) as u64;
            if let Some(v) = views.iter_mut().find(|v| v.seq == seq && !v.deleted) {
                v.attachments.push(r.into_stored(keys, session).view);
            }
        }
        Ok(())
    }

    /// Forgets the attachments of message `seq` (deleted); their R2 keys
    /// wait in [`Log::take_unlinked`] for the objects to be deleted.
    pub fn drop_files(&self, seq: u64) -> Result<(), AppError> {
        #[derive(Deserialize)]
        struct K {
            object_key: String,
        }
        let keys = self.all::<K>(
            "DELETE FROM attachments WHERE seq = ? RETURNING object_key",
            vec![int(seq)],
        )?;
        let mut unlinked = self.unlinked.borrow_mut();
        unlinked.extend(keys.into_iter().map(|k| k.object_key));
        Ok(())
    }

    /// The R2 keys of attachments dropped since the last call.
    pub fn take_unlinked(&self) -> Vec<String> {
        std::mem::take(&mut *self.unlinked.borrow_mut())
    }
}
