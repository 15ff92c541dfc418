//! Metric counters in D1 (see migrations/0003_metrics.sql).

use super::{stmt, text};
use crate::error::AppError;
use crate::metrics::Sample;
use serde::Deserialize;
use worker::D1Database;

/// Adds `by` to a counter series.
pub async fn incr(db: &D1Database, name: &str, labels: &str, by: f64) -> Result<(), AppError> {
    stmt(
        db,
        "INSERT INTO metrics (name, labels, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value",
        &[
            text(name),
            text(labels),
            wasm_bindgen::JsValue::from_f64(by),
        ],
    )?
    .run()
    .await
    .map_err(AppError::internal)?;
    Ok(())
}

/// Every stored series plus the sessions gauge, in one round trip.
pub async fn scrape(db: &D1Database) -> Result<Vec<Sample>, AppError> {
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
            stmt(db, "SELECT name, labels, value FROM metrics", &[])?,
            stmt(
                db,
                "SELECT mode, status, count(*) AS n FROM sessions GROUP BY mode, status",
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
            name: "confab_sessions".into(),
            labels: format!("mode=\"{}\",status=\"{}\"", r.mode, r.status),
            value: r.n as f64,
        });
    }
    Ok(out)
}
