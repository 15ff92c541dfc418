//! What replication and loading need from the log: the session's shard,
//! the replica mark, stored rows as they are (sealed), and loading a
//! session from D1.

use super::{int, s, Imported, Log, StoredMessage};
use crate::error::AppError;
use crate::shards::Shard;
use crate::store::messages::{MessageRow, COLUMNS, COLUMN_COUNT};
use serde::Deserialize;

impl Log {
    /// Records the session's D1 shard; the first one recorded stays.
    pub fn set_shard(&self, shard: &Shard) -> Result<(), AppError> {
        self.exec(
            "INSERT OR IGNORE INTO shard (one, binding) VALUES (1, ?)",
            vec![s(shard.as_str())],
        )?;
        Ok(())
    }

    /// The session's D1 shard, or None when the log predates shards.
    pub fn shard(&self) -> Result<Option<Shard>, AppError> {
        #[derive(Deserialize)]
        struct Row {
            binding: String,
        }
        let row = self
            .all::<Row>("SELECT binding FROM shard WHERE one = 1", vec![])?
            .into_iter()
            .next();
        row.map(|r| Shard::parse(&r.binding).map_err(AppError::internal))
            .transpose()
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

    /// Stored rows (sealed, with their pending charge) of a query over
    /// `messages` whose WHERE/ORDER/LIMIT tail is `tail`.
    fn stored(
        &self,
        tail: &str,
        args: Vec<worker::SqlStorageValue>,
    ) -> Result<Vec<StoredMessage>, AppError> {
        // Each row is read twice, as a `MessageRow` and for its charge,
        // rather than through `#[serde(flatten)]`, which links serde's
        // buffering deserializer.
        #[derive(Deserialize)]
        struct Charged {
            charge: Option<String>,
        }
        let q = format!("SELECT {COLUMNS}, charge FROM messages {tail}");
        self.exec(&q, args)?
            .map(|r| r.map_err(AppError::internal))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|row| {
                let (row, c) = (from_row::<MessageRow>(&row)?, from_row::<Charged>(&row)?);
                Ok(StoredMessage {
                    charge: c.charge.and_then(|c| serde_json::from_str(&c).ok()),
                    row,
                })
            })
            .collect()
    }

    /// For replication: up to `limit` messages past `after`, as stored.
    pub fn rows_after(&self, after: i64, limit: usize) -> Result<Vec<StoredMessage>, AppError> {
        self.stored(
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            vec![int(after), int(limit)],
        )
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

    /// For replication: a message's stored row.
    pub fn row(&self, seq: i64) -> Result<Option<StoredMessage>, AppError> {
        Ok(self
            .stored("WHERE seq = ?", vec![int(seq)])?
            .into_iter()
            .next())
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
            "INSERT OR IGNORE INTO messages ({COLUMNS}) VALUES ({})",
            ["?"; COLUMN_COUNT].join(", ")
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

/// One row of a query as `T` (columns `T` does not name are skipped), so
/// that a row can be read as more than one type.
fn from_row<T: for<'de> Deserialize<'de>>(row: &wasm_bindgen::JsValue) -> Result<T, AppError> {
    serde_wasm_bindgen::from_value(row.clone()).map_err(AppError::internal)
}
