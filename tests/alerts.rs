//! The alert rules and the dashboard that ship in `ops/`: valid, each alert
//! unit-tested firing (promtool, from Debian's `prometheus` package), and
//! every Confab series they use present in a real scrape of the worker.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::Command;

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(root().join("ops"))
        .output()
        .expect("promtool runs (scripts/bootstrap.sh installs Debian's prometheus package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

fn ops_file(name: &str) -> String {
    std::fs::read_to_string(root().join("ops").join(name)).unwrap()
}

/// The words of `text` that look like a series name with `prefix`.
fn names(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let before = rest[..i].chars().next_back();
        // (`confab_*` in a comment is not a name.)
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && !tail[..end].ends_with('_')
        {
            out.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    out
}

#[test]
fn the_rules_are_valid_and_every_alert_is_tested_firing() {
    let checked = promtool(&["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert has a test case in which it fires (a non-empty
    // exp_alerts under its name).
    let rules = ops_file("alerts.yml");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 7, "{alerts:?}");
    let tests = ops_file("alerts.test.yml");
    for alert in alerts {
        let fires = tests
            .split("alertname: ")
            .skip(1)
            .any(|case| case.starts_with(alert) && case.contains("- exp_labels:"));
        assert!(fires, "no test where {alert} fires");
    }
}

#[tokio::test]
async fn every_series_the_rules_and_the_dashboard_use_is_in_a_real_scrape() {
    let h = Harness::shared();
    // Some HTTP traffic first, so the Worker's series have samples.
    let (status, _, _) = get_json(&h.url, "/healthz").await;
    assert_eq!(status, 200);
    let admin = token_with_roles("ops-alerts", "Ops", &["admin"]);
    let text = http()
        .get(format!("{}/metrics", h.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let families: BTreeSet<(String, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let kind = |name: &str| {
        families
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
    };
    let dashboard = ops_file("dashboard.json");
    let dashboard_json: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let panels = dashboard_json["panels"].as_array().unwrap();
    assert!(!panels.is_empty());
    let used: BTreeSet<String> = names(&ops_file("alerts.yml"), "confab_")
        .into_iter()
        .chain(names(&dashboard, "confab_"))
        .collect();
    assert!(used.len() >= 10, "{used:?}");
    for name in &used {
        let found = match kind(name) {
            Some(_) => true,
            // A histogram's series: its family must be a histogram.
            None => ["_bucket", "_sum", "_count"].iter().any(|s| {
                name.strip_suffix(s)
                    .is_some_and(|base| kind(base).as_deref() == Some("histogram"))
            }),
        };
        assert!(found, "{name} is used but not in a scrape:\n{text}");
    }
    // The labels the rules and panels group and match on, where the scrape
    // has samples to show them.
    let samples = parse_prometheus(&text);
    let has_label = |series: &str, label: &str| {
        samples
            .iter()
            .any(|(n, labels, _)| n == series && labels.contains_key(label))
    };
    assert!(has_label("confab_http_requests_total", "class"));
    assert!(has_label("confab_http_requests_total", "route"));
    assert!(has_label(
        "confab_http_request_duration_seconds_bucket",
        "le"
    ));
}
