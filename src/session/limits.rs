//! Per-user budgets for mutating frames, kept in the object's own storage.
//!
//! Every `send` draws from the user's `messages` bucket and every `edit`,
//! `delete`, `react` and `read` from their `actions` bucket (typing has its
//! own throttle). A bucket's state is written to the object's SQLite
//! storage on every take, so hibernation, eviction or a restart cannot hand
//! a user a fresh burst: a woken object reads the bucket back. The memory
//! copy only saves that read while the object stays awake.

use crate::config::Config;
use crate::limits::{Scope, TokenBucket};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use worker::{SqlStorage, SqlStorageValue as V};

#[derive(Default)]
pub struct Buckets {
    awake: RefCell<HashMap<(Scope, String), TokenBucket>>,
    table_ready: Cell<bool>,
}

#[derive(serde::Deserialize)]
struct Saved {
    tokens: f64,
    last_ms: i64,
}

impl Buckets {
    /// Takes one token of `scope` for `user_id`, or says how many ms to wait.
    /// Storage errors fail open (and are returned for the log): a broken
    /// limiter must not stop the chat.
    pub fn take(
        &self,
        sql: &SqlStorage,
        config: &Config,
        scope: Scope,
        user_id: &str,
        now: i64,
    ) -> Result<Result<(), u64>, worker::Error> {
        let (capacity, per_minute) = match scope {
            Scope::Messages => (config.rate_messages_burst, config.rate_messages_per_minute),
            Scope::Actions => (config.rate_actions_burst, config.rate_actions_per_minute),
        };
        if per_minute == 0 {
            return Ok(Ok(()));
        }
        self.ensure_table(sql)?;
        let key = (scope, user_id.to_string());
        let mut awake = self.awake.borrow_mut();
        if !awake.contains_key(&key) {
            let saved: Option<Saved> = sql
                .exec(
                    "SELECT tokens, last_ms FROM rate_buckets WHERE scope = ? AND user_id = ?",
                    vec![V::from(scope.as_str()), V::from(user_id)],
                )?
                .to_array::<Saved>()?
                .into_iter()
                .next();
            let bucket = match saved {
                Some(s) => TokenBucket::restore(capacity, per_minute, s.tokens, s.last_ms),
                None => TokenBucket::new(capacity, per_minute, now),
            };
            awake.insert(key.clone(), bucket);
        }
        let bucket = awake.get_mut(&key).expect("inserted above");
        let outcome = bucket.take(now);
        let (tokens, last_ms) = bucket.state();
        sql.exec(
            "INSERT INTO rate_buckets (scope, user_id, tokens, last_ms) VALUES (?, ?, ?, ?)
             ON CONFLICT (scope, user_id) DO UPDATE SET tokens = excluded.tokens, last_ms = excluded.last_ms",
            vec![
                V::from(scope.as_str()),
                V::from(user_id),
                V::Float(tokens),
                V::Integer(last_ms),
            ],
        )?;
        Ok(outcome)
    }

    /// After the storage was wiped.
    pub fn reset(&self) {
        self.awake.borrow_mut().clear();
        self.table_ready.set(false);
    }

    fn ensure_table(&self, sql: &SqlStorage) -> Result<(), worker::Error> {
        if !self.table_ready.get() {
            sql.exec(
                "CREATE TABLE IF NOT EXISTS rate_buckets (scope TEXT NOT NULL, user_id TEXT NOT NULL,
                   tokens REAL NOT NULL, last_ms INTEGER NOT NULL, PRIMARY KEY (scope, user_id))",
                None,
            )?;
            self.table_ready.set(true);
        }
        Ok(())
    }
}

impl super::Core {
    /// Takes one token of `scope` for `user_id`, or says how long to wait.
    pub(super) fn take_token(
        &self,
        scope: Scope,
        user_id: &str,
        config: &Config,
    ) -> std::result::Result<(), u64> {
        let sql = self.state.storage().sql();
        match self
            .buckets
            .take(&sql, config, scope, user_id, crate::store::now_ms())
        {
            Ok(outcome) => outcome,
            Err(e) => {
                self.log_error(
                    "rate_limit_storage_failed",
                    &crate::error::AppError::internal(e),
                );
                Ok(())
            }
        }
    }
}
