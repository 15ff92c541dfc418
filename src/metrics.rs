//! Prometheus text exposition (format 0.0.4) of Confab's metrics. Pure.
//!
//! The figures live in D1 (see migrations/0003_metrics.sql and
//! 0006_session_log.sql), so a scrape gives the same answer whichever
//! isolate serves it; this module only renders rows into the exposition
//! format.

use std::collections::BTreeMap;

/// One stored series: metric name, canonical label set, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: String,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric family Confab exposes: the one place their names are
/// spelled in code. (D1 triggers in `migrations/0003_metrics.sql` count
/// some of them too; a test checks that they use these names.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Sessions,
    Messages,
    LlmTurns,
    LlmTokens,
    /// What replies cost, in US dollars (`LLM_PRICES`).
    LlmCost,
    /// Users' ratings of replies as they stand.
    LlmFeedback,
    LlmTtft,
    LlmTurnDuration,
    WsConnections,
    RateLimited,
    /// How long the oldest change not yet in D1 has waited, across sessions.
    ReplicationLag,
    /// Changes waiting in session outboxes for D1.
    OutboxDepth,
    /// HTTP requests the Worker answered, by route and status class
    /// (`crate::tally`).
    HttpRequests,
    /// How long the Worker took to answer, by route.
    HttpDuration,
    /// Requests refused for their credentials, origin or host, by code.
    AuthFailures,
    /// Frames received from clients, by type.
    WsFrames,
    /// Sockets closed, by close code.
    WsCloses,
}

impl Metric {
    /// Every family, in output order.
    pub const ALL: [Metric; 17] = [
        Metric::Sessions,
        Metric::Messages,
        Metric::LlmTurns,
        Metric::LlmTokens,
        Metric::LlmCost,
        Metric::LlmFeedback,
        Metric::LlmTtft,
        Metric::LlmTurnDuration,
        Metric::WsConnections,
        Metric::RateLimited,
        Metric::ReplicationLag,
        Metric::OutboxDepth,
        Metric::HttpRequests,
        Metric::HttpDuration,
        Metric::AuthFailures,
        Metric::WsFrames,
        Metric::WsCloses,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Sessions => "confab_sessions",
            Metric::Messages => "confab_messages_total",
            Metric::LlmTurns => "confab_llm_turns_total",
            Metric::LlmTokens => "confab_llm_tokens_total",
            Metric::LlmCost => "confab_llm_cost_total",
            Metric::LlmFeedback => "confab_llm_feedback",
            Metric::LlmTtft => "confab_llm_ttft_seconds",
            Metric::LlmTurnDuration => "confab_llm_turn_duration_seconds",
            Metric::WsConnections => "confab_ws_connections_total",
            Metric::RateLimited => "confab_rate_limited_total",
            Metric::ReplicationLag => "confab_replication_lag_seconds",
            Metric::OutboxDepth => "confab_replication_outbox_depth",
            Metric::HttpRequests => "confab_http_requests_total",
            Metric::HttpDuration => "confab_http_request_duration_seconds",
            Metric::AuthFailures => "confab_auth_failures_total",
            Metric::WsFrames => "confab_ws_frames_total",
            Metric::WsCloses => "confab_ws_closes_total",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Metric::Sessions
            | Metric::ReplicationLag
            | Metric::OutboxDepth
            | Metric::LlmFeedback => Kind::Gauge,
            Metric::LlmTtft | Metric::LlmTurnDuration | Metric::HttpDuration => Kind::Histogram,
            _ => Kind::Counter,
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Metric::Sessions => "Sessions by mode and status.",
            Metric::Messages => "Messages stored, by author kind.",
            Metric::LlmTurns => "Assistant turns by provider, model and outcome (ok, stopped, error, interrupted, failed, quota_exceeded).",
            Metric::LlmTokens => "Tokens used by the assistant, by provider, model and direction.",
            Metric::LlmFeedback => "Users' ratings of the assistant's replies as they stand, by provider, model and rating (up, down).",
            Metric::LlmCost => "What the assistant's replies cost in US dollars, at the prices of LLM_PRICES, by provider and model (replies of unpriced models add nothing).",
            Metric::LlmTtft => "Time from the start of a turn to its first token.",
            Metric::LlmTurnDuration => "Duration of assistant turns.",
            Metric::WsConnections => "WebSocket connections opened and closed.",
            Metric::RateLimited => "Requests and messages refused by rate limits, by scope.",
            Metric::ReplicationLag => "Age of the oldest change not yet replicated to D1, as of each session's last successful flush.",
            Metric::OutboxDepth => "Changes waiting in session outboxes for D1, as of each session's last successful flush.",
            Metric::HttpRequests => "HTTP requests answered by the Worker, by route and status class (a WebSocket upgrade is 1xx).",
            Metric::HttpDuration => "Time the Worker took to answer HTTP requests, by route (to the 101 for an upgrade).",
            Metric::AuthFailures => "Requests refused for their credentials, origin or host, by code.",
            Metric::WsFrames => "WebSocket frames received from clients, by type (invalid: refused by the decoder; binary: not supported).",
            Metric::WsCloses => "WebSocket connections closed, by close code (the client's, or the one the server closed with).",
        }
    }

    /// A histogram's bucket bounds (`le`).
    pub fn buckets(self) -> Vec<&'static str> {
        match self {
            Metric::HttpDuration => HTTP_BUCKETS.iter().map(|b| b.0).collect(),
            _ => BUCKETS.to_vec(),
        }
    }
}

/// Histogram bucket bounds, as written by the triggers.
pub const BUCKETS: &[&str] = &[
    "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf",
];

/// The HTTP latency histogram's bounds (seconds), finer than the
/// assistant's: most answers take milliseconds. Kept by the Worker
/// (`crate::tally`), not by a trigger.
/// Each bound as `le` and in milliseconds.
pub const HTTP_BUCKETS: [(&str, u64); 12] = [
    ("0.005", 5),
    ("0.01", 10),
    ("0.025", 25),
    ("0.05", 50),
    ("0.1", 100),
    ("0.25", 250),
    ("0.5", 500),
    ("1", 1_000),
    ("2.5", 2_500),
    ("5", 5_000),
    ("10", 10_000),
    ("+Inf", u64::MAX),
];

/// Escapes a label value for the exposition format.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value as the text format writes it: integers plainly, other
/// finite values as Rust prints them (shortest round-trip, never in
/// exponent form), and `NaN`, `+Inf`, `-Inf` (Rust's `inf` is not valid).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        (v as i64).to_string()
    } else {
        format!("{v}")
    }
}

fn series(name: &str, labels: &str, value: f64) -> String {
    if labels.is_empty() {
        format!("{name} {}\n", number(value))
    } else {
        format!("{name}{{{labels}}} {}\n", number(value))
    }
}

/// Renders every family. Histograms get every bucket for each label set
/// that has observations (a bucket with no row has count 0).
pub fn render(samples: &[Sample]) -> String {
    let mut by_name: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by_name.entry(s.name.as_str()).or_default().push(s);
    }
    let mut out = String::new();
    for metric in Metric::ALL {
        let (name, kind, help) = (metric.name(), metric.kind(), metric.help());
        let ty = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {ty}\n"));
        if kind != Kind::Histogram {
            let mut rows: Vec<&&Sample> = by_name
                .get(name)
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            crate::sort::sort_by(&mut rows, |a, b| a.labels.cmp(&b.labels));
            for s in rows {
                out.push_str(&series(name, &s.labels, s.value));
            }
            continue;
        }
        let get = |suffix: &str, labels: &str| -> f64 {
            by_name
                .get(format!("{name}{suffix}").as_str())
                .and_then(|v| v.iter().find(|s| s.labels == labels))
                .map_or(0.0, |s| s.value)
        };
        let mut label_sets: Vec<&str> = by_name
            .get(format!("{name}_count").as_str())
            .map(|v| v.iter().map(|s| s.labels.as_str()).collect())
            .unwrap_or_default();
        crate::sort::sort_by(&mut label_sets, |a, b| a.cmp(b));
        for labels in label_sets {
            for le in metric.buckets() {
                let bucket_labels = format!("{labels},le=\"{le}\"");
                out.push_str(&series(
                    &format!("{name}_bucket"),
                    &bucket_labels,
                    get("_bucket", &bucket_labels),
                ));
            }
            out.push_str(&series(&format!("{name}_sum"), labels, get("_sum", labels)));
            out.push_str(&series(
                &format!("{name}_count"),
                labels,
                get("_count", labels),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, labels: &str, value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: labels.into(),
            value,
        }
    }

    /// The D1 triggers that count messages, tokens and turns name their
    /// series in SQL; each must be a family here (or a histogram's part).
    #[test]
    fn the_migrations_count_only_known_families() {
        let mut found = 0;
        for sql in [include_str!("../migrations/0003_metrics.sql")] {
            for piece in sql.split('\'').skip(1).step_by(2) {
                let Some(series) = piece.strip_prefix("confab_") else {
                    continue;
                };
                let series = format!("confab_{series}");
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| series.strip_suffix(s))
                    .unwrap_or(&series);
                assert!(
                    Metric::ALL
                        .iter()
                        .any(|m| m.name() == family || m.name() == series),
                    "{series} is not a metric family"
                );
                found += 1;
            }
        }
        assert!(found >= 5, "the triggers name their series in quotes");
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len());
    }

    #[test]
    fn numbers_as_the_text_format_writes_them() {
        for (v, text) in [
            (0.0, "0"),
            (42.0, "42"),
            (-3.0, "-3"),
            (0.25, "0.25"),
            (1.5e-7, "0.00000015"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(number(v), text);
            if v.is_finite() {
                assert_eq!(text.parse::<f64>().unwrap(), v, "round trip");
            }
        }
        assert_eq!(number(1e20).parse::<f64>().unwrap(), 1e20);
    }

    #[test]
    fn renders_counters_gauges_and_complete_histograms() {
        let pm = r#"provider="openai",model="m""#;
        let text = render(&[
            s("confab_messages_total", r#"kind="user""#, 3.0),
            s(
                "confab_sessions",
                r#"mode="assistant",status="active""#,
                2.0,
            ),
            s(
                "confab_llm_ttft_seconds_bucket",
                &format!(r#"{pm},le="0.5""#),
                1.0,
            ),
            s(
                "confab_llm_ttft_seconds_bucket",
                &format!(r#"{pm},le="+Inf""#),
                1.0,
            ),
            s("confab_llm_ttft_seconds_sum", pm, 0.42),
            s("confab_llm_ttft_seconds_count", pm, 1.0),
        ]);
        assert!(text.contains(
            "# TYPE confab_messages_total counter\nconfab_messages_total{kind=\"user\"} 3\n"
        ));
        assert!(text.contains("confab_sessions{mode=\"assistant\",status=\"active\"} 2\n"));
        assert!(text.contains(&format!(
            "confab_llm_ttft_seconds_bucket{{{pm},le=\"0.1\"}} 0\n"
        )));
        assert!(text.contains(&format!(
            "confab_llm_ttft_seconds_bucket{{{pm},le=\"0.5\"}} 1\n"
        )));
        assert!(text.contains(&format!("confab_llm_ttft_seconds_sum{{{pm}}} 0.42\n")));
        assert_eq!(
            text.matches("confab_llm_ttft_seconds_bucket").count(),
            BUCKETS.len()
        );
        assert!(text.contains("# TYPE confab_ws_connections_total counter\n"));
    }

    #[test]
    fn buckets_match_the_migration() {
        let sql = include_str!("../migrations/0003_metrics.sql");
        let in_sql: Vec<&str> = sql
            .lines()
            .filter_map(|l| l.strip_prefix("INSERT INTO metric_buckets (le, ms) VALUES ('"))
            .map(|l| l.split('\'').next().unwrap())
            .collect();
        assert_eq!(in_sql, BUCKETS);
    }

    #[test]
    fn http_bounds_are_their_labels_in_ms() {
        for (le, ms) in HTTP_BUCKETS {
            match le.parse::<f64>() {
                Ok(s) => assert_eq!((s * 1000.0).round() as u64, ms, "{le}"),
                Err(_) => assert_eq!((le, ms), ("+Inf", u64::MAX)),
            }
        }
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
