//! Runs the usage report (`crate::ledger`) against the home shard, where
//! every reply's usage is settled (`replica::usage`).

use super::{stmt, text};
use crate::error::AppError;
use crate::ledger::Query;
use serde_json::Value;
use worker::D1Database;

/// One group's sums.
#[derive(Debug)]
pub struct Row {
    pub key: String,
    pub turns: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub tokens_cached: i64,
    pub cost_nanos: i64,
    pub unpriced: i64,
}

/// One more row than the page when another page follows. (Rows are read
/// as JSON values, whose decoder is linked already, rather than through a
/// derived row type of their own: 2 KiB of bundle.)
pub async fn report(home: &D1Database, q: &Query) -> Result<Vec<Row>, AppError> {
    let (sql, args) = q.sql();
    let args: Vec<_> = args.iter().map(|a| text(a)).collect();
    let result = stmt(home, &sql, &args)?
        .all()
        .await
        .map_err(AppError::internal)?;
    Ok(super::results::<Value>(&result)?
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_f64().unwrap_or(0.0) as i64;
            Row {
                key: r["key"].as_str().unwrap_or_default().to_string(),
                turns: n("turns"),
                tokens_in: n("tokens_in"),
                tokens_out: n("tokens_out"),
                tokens_cached: n("tokens_cached"),
                cost_nanos: n("cost_nanos"),
                unpriced: n("unpriced"),
            }
        })
        .collect())
}
