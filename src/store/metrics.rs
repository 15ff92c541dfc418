//! Metric counters in D1 (see migrations/0003_metrics.sql and
//! 0006_session_log.sql): the global `metrics` table (triggers on
//! replicated rows), each session object's own counters
//! (`session_metrics`), and the replication state of every session.

use super::{num, stmt};
use crate::error::AppError;
use crate::metrics::Sample;
use serde::Deserialize;
use std::collections::hash_map::Entry;
use worker::D1Database;

/// Every stored series plus the sessions and replication gauges: one round
/// trip to each shard, at once. Counters and session counts add up across
/// shards; the lag is the largest, the outbox depth the sum. `now` (unix
/// ms) measures the replication lag.
pub async fn scrape(dbs: &[D1Database], now: i64) -> Result<Vec<Sample>, AppError> {
    let shards = super::each(dbs, |db| scrape_one(db, now)).await?;
    let mut out: Vec<Sample> = Vec::new();
    let mut index: std::collections::HashMap<(String, String), usize> = Default::default();
    let mut replication = Replication::default();
    for (samples, r) in shards {
        replication = replication.and(r);
        for s in samples {
            match index.entry((s.name.clone(), s.labels.clone())) {
                Entry::Occupied(i) => out[*i.get()].value += s.value,
                Entry::Vacant(v) => {
                    v.insert(out.len());
                    out.push(s);
                }
            }
        }
    }
    out.push(Sample {
        name: crate::metrics::Metric::ReplicationLag.name().into(),
        labels: String::new(),
        value: replication.lag_ms.max(0) as f64 / 1000.0,
    });
    out.push(Sample {
        name: crate::metrics::Metric::OutboxDepth.name().into(),
        labels: String::new(),
        value: replication.depth as f64,
    });
    Ok(out)
}

/// One shard's series and its replication state.
async fn scrape_one(db: &D1Database, now: i64) -> Result<(Vec<Sample>, Replication), AppError> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
        labels: String,
        value: f64,
    }
    #[derive(Deserialize)]
    struct Sessions {
        mode: String,
        status: String,
        n: i64,
    }
    let results = db
        .batch(vec![
            stmt(
                db,
                "SELECT name, labels, sum(value) AS value FROM
                   (SELECT name, labels, value FROM metrics
                    UNION ALL SELECT name, labels, value FROM session_metrics)
                 GROUP BY name, labels",
                &[],
            )?,
            stmt(
                db,
                "SELECT mode, status, count(*) AS n FROM sessions GROUP BY mode, status",
                &[],
            )?,
            stmt(db, REPLICATION, &[num(now)])?,
            // Ratings as they stand (a changed rating moves, a withdrawn
            // one goes), by the rated reply's provider and model.
            stmt(
                db,
                &format!(
                    r#"SELECT '{}' AS name, 'provider="' || m.provider || '",model="' ||
                              replace(replace(m.model, '\', '\\'), '"', '\"') || '",rating="' || r.rating || '"'
                              AS labels, count(*) AS value
                         FROM message_ratings r JOIN messages m ON m.session_id = r.session_id AND m.seq = r.seq
                        GROUP BY labels"#,
                    crate::metrics::Metric::LlmFeedback.name()
                ),
                &[],
            )?,
        ])
        .await
        .map_err(AppError::internal)?;
    let mut out: Vec<Sample> = super::results::<Row>(&results[0])?
        .into_iter()
        .map(|r| Sample {
            name: r.name,
            labels: r.labels,
            value: r.value,
        })
        .collect();
    for r in super::results::<Sessions>(&results[1])? {
        out.push(Sample {
            name: crate::metrics::Metric::Sessions.name().into(),
            labels: format!("mode=\"{}\",status=\"{}\"", r.mode, r.status),
            value: r.n as f64,
        });
    }
    out.extend(
        super::results::<Row>(&results[3])?
            .into_iter()
            .map(|r| Sample {
                name: r.name,
                labels: r.labels,
                value: r.value,
            }),
    );
    let r = super::results::<Replication>(&results[2])?
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok((out, r))
}

/// The replication lag (ms) and the outbox depth across every session, as
/// of each session's last successful flush.
const REPLICATION: &str =
    "SELECT coalesce(max(CASE WHEN pending > 0 THEN ?1 - oldest_at END), 0) AS lag_ms,
        coalesce(sum(pending), 0) AS depth FROM replication";

#[derive(Deserialize, Default)]
pub struct Replication {
    pub lag_ms: i64,
    pub depth: i64,
}

impl Replication {
    /// Two shards' states as one: the larger lag, the whole depth.
    fn and(self, other: Replication) -> Replication {
        Replication {
            lag_ms: self.lag_ms.max(other.lag_ms),
            depth: self.depth + other.depth,
        }
    }
}

/// The replication state alone, for `/readyz`: the largest lag and the
/// whole depth across shards.
pub async fn replication(dbs: &[D1Database], now: i64) -> Result<Replication, AppError> {
    let shards = super::each(dbs, |db| async move {
        let r: Option<Replication> = stmt(db, REPLICATION, &[num(now)])?
            .first(None)
            .await
            .map_err(AppError::internal)?;
        Ok(r.unwrap_or_default())
    })
    .await?;
    Ok(shards
        .into_iter()
        .fold(Replication::default(), Replication::and))
}

/// Adds an isolate's sums (`crate::tally`) to the `metrics` table, in one
/// statement whatever their number.
pub async fn add(db: &D1Database, samples: &[Sample]) -> Result<(), AppError> {
    if samples.is_empty() {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = samples
        .iter()
        .map(|s| serde_json::json!([s.name, s.labels, s.value]))
        .collect();
    let json = serde_json::Value::Array(rows).to_string();
    // `WHERE true`: SQLite's upsert after a SELECT needs a WHERE to parse.
    let sql = "INSERT INTO metrics (name, labels, value)
               SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1) WHERE true
               ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value";
    stmt(db, sql, &[super::text(&json)])?
        .run()
        .await
        .map_err(AppError::internal)?;
    Ok(())
}
