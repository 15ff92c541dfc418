//! Daily caps counted in the home shard: sessions a user creates, and new
//! visitors a client address makes. One conditional upsert each, so
//! concurrent requests cannot pass a cap, whichever isolate or shard they
//! come through; earlier days' counts of the same key go in the same batch.

use super::{num, stmt, text};
use crate::error::AppError;
use worker::D1Database;

/// A UTC day in unix ms.
pub const DAY_MS: i64 = 86_400_000;

/// What is counted, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daily {
    /// Sessions per owner (`session_quota`, keyed by user id).
    Sessions,
    /// New visitors per client address (`visitor_quota`, keyed by the
    /// address's keyed hash: no address is stored).
    Visitors,
}

impl Daily {
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Daily::Sessions => ("session_quota", "owner_id"),
            Daily::Visitors => ("visitor_quota", "ip_hash"),
        }
    }

    /// The code of the 429 when the cap is reached.
    pub fn refused(self) -> &'static str {
        match self {
            Daily::Sessions => "session_quota_exceeded",
            Daily::Visitors => "visitor_quota",
        }
    }
}

/// Counts one more for `key` today (the UTC day of `now`), if fewer than
/// `cap` were counted; otherwise the 429 saying when the day ends.
pub async fn take(
    home: &D1Database,
    what: Daily,
    key: &str,
    now: i64,
    cap: u32,
) -> Result<(), AppError> {
    let day_start = now - now.rem_euclid(DAY_MS);
    let (table, column) = what.table();
    let results = home
        .batch(vec![
            stmt(
                home,
                &format!(
                    "INSERT INTO {table} ({column}, day_start, created) VALUES (?1, ?2, 1)
                     ON CONFLICT ({column}, day_start) DO UPDATE SET created = created + 1
                      WHERE {table}.created < ?3
                     RETURNING created"
                ),
                &[text(key), num(day_start), num(cap as i64)],
            )?,
            stmt(
                home,
                &format!("DELETE FROM {table} WHERE {column} = ?1 AND day_start < ?2"),
                &[text(key), num(day_start)],
            )?,
        ])
        .await
        .map_err(AppError::internal)?;
    if super::results::<serde_json::Value>(&results[0])?.is_empty() {
        return Err(AppError::Quota {
            code: what.refused(),
            retry_after_s: ((day_start + DAY_MS - now) / 1000).max(1) as u64,
        });
    }
    Ok(())
}
