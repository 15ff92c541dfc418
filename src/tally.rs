//! The Worker's own figures for `/metrics`: requests by route and status
//! class, their latency, auth failures and per-IP refusals. Pure.
//!
//! Counting each request in D1 would put a write on every request. Instead
//! each isolate adds up what it served in memory and writes the sums to the
//! home shard's `metrics` table (adding to what is there) at most every
//! [`FLUSH_EVERY_MS`], after a response, through `wait_until`; a scrape
//! writes its own isolate's sums first. So every isolate's figures meet in
//! D1 like the triggers' counters, and a scrape is right up to what other
//! isolates have served in their last [`FLUSH_EVERY_MS`]. An isolate that
//! is evicted before it writes loses at most that much; a write that fails
//! is added back and tried with the next.
//!
//! Counting is a few integer additions per request: labels are spelled
//! only when the sums are written.

use crate::metrics::{escape, Metric, Sample, HTTP_BUCKETS};

/// How long an isolate keeps its sums before writing them.
pub const FLUSH_EVERY_MS: u64 = 10_000;

/// Route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// The status classes, in label order.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One route's sums.
#[derive(Debug, Default, Clone)]
struct Figures {
    /// Requests by status class (`CLASSES`).
    classes: [u64; 5],
    /// Requests at or under each bound of `HTTP_BUCKETS` (cumulative).
    buckets: [u64; HTTP_BUCKETS.len()],
    sum_ms: u64,
    count: u64,
}

impl Figures {
    fn merge(&mut self, o: &Figures) {
        for (a, b) in self.classes.iter_mut().zip(o.classes) {
            *a += b;
        }
        for (a, b) in self.buckets.iter_mut().zip(o.buckets) {
            *a += b;
        }
        self.sum_ms += o.sum_ms;
        self.count += o.count;
    }
}

/// Sums since the last write.
#[derive(Debug, Default)]
pub struct Tally {
    /// By route name (the table's `&'static` names, a few dozen).
    routes: Vec<(&'static str, Figures)>,
    /// Auth failures by error code.
    auth: Vec<(&'static str, u64)>,
    /// Per-IP refusals.
    limited: u64,
    /// When the oldest figure not yet written was added (unix ms).
    since: Option<u64>,
}

/// Index into `CLASSES`.
fn class(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

fn bump<K: PartialEq + Copy, V: Default>(list: &mut Vec<(K, V)>, key: K) -> &mut V {
    let i = match list.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None => {
            list.push((key, V::default()));
            list.len() - 1
        }
    };
    &mut list[i].1
}

impl Tally {
    /// One answered request: `route` is the table's name for it (or
    /// [`UNMATCHED`]), `ms` how long it took.
    pub fn request(&mut self, route: &'static str, status: u16, ms: u64, now: u64) {
        let f = bump(&mut self.routes, route);
        f.classes[class(status)] += 1;
        for (n, (_, bound)) in f.buckets.iter_mut().zip(HTTP_BUCKETS) {
            if ms <= bound {
                *n += 1;
            }
        }
        f.sum_ms += ms;
        f.count += 1;
        self.since.get_or_insert(now);
    }

    /// A request refused for its credentials, origin or host.
    pub fn auth_failure(&mut self, code: &'static str, now: u64) {
        *bump(&mut self.auth, code) += 1;
        self.since.get_or_insert(now);
    }

    /// A request refused by the per-IP limit (scope `http`, beside the
    /// session objects' own scopes).
    pub fn rate_limited(&mut self, now: u64) {
        self.limited += 1;
        self.since.get_or_insert(now);
    }

    /// Whether the oldest figure has waited long enough to be written.
    pub fn due(&self, now: u64) -> bool {
        self.since
            .is_some_and(|t| now.saturating_sub(t) >= FLUSH_EVERY_MS)
    }

    /// Everything not yet written, leaving this tally empty.
    pub fn take(&mut self) -> Tally {
        std::mem::take(self)
    }

    /// Figures a write failed to store, back for the next one; they count
    /// as new from `now`.
    pub fn restore(&mut self, o: Tally, now: u64) {
        for (route, f) in &o.routes {
            bump(&mut self.routes, route).merge(f);
        }
        for (code, n) in o.auth {
            *bump(&mut self.auth, code) += n;
        }
        self.limited += o.limited;
        if o.since.is_some() {
            self.since.get_or_insert(now);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.since.is_none()
    }

    /// The sums as series to add to D1 (zeros left out).
    pub fn samples(&self) -> Vec<Sample> {
        let mut out = Vec::new();
        let mut push = |name: String, labels: String, value: f64| {
            if value != 0.0 {
                out.push(Sample {
                    name,
                    labels,
                    value,
                })
            }
        };
        let hist = Metric::HttpDuration.name();
        for (route, f) in &self.routes {
            let route = format!(r#"route="{}""#, escape(route));
            for (class, n) in CLASSES.iter().zip(f.classes) {
                let labels = format!(r#"{route},class="{class}""#);
                push(Metric::HttpRequests.name().into(), labels, n as f64);
            }
            for ((le, _), n) in HTTP_BUCKETS.iter().zip(f.buckets) {
                let labels = format!(r#"{route},le="{le}""#);
                push(format!("{hist}_bucket"), labels, n as f64);
            }
            push(
                format!("{hist}_sum"),
                route.clone(),
                f.sum_ms as f64 / 1000.0,
            );
            push(format!("{hist}_count"), route, f.count as f64);
        }
        for (code, n) in &self.auth {
            let labels = format!(r#"code="{}""#, escape(code));
            push(Metric::AuthFailures.name().into(), labels, *n as f64);
        }
        let scope = r#"scope="http""#.to_string();
        push(
            Metric::RateLimited.name().into(),
            scope,
            self.limited as f64,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(samples: &[Sample], name: &str, labels: &str) -> Option<f64> {
        samples
            .iter()
            .find(|s| s.name == name && s.labels == labels)
            .map(|s| s.value)
    }

    fn series(suffix: &str) -> String {
        format!("{}{suffix}", Metric::HttpDuration.name())
    }

    #[test]
    fn requests_add_up_by_route_class_and_bucket() {
        let mut t = Tally::default();
        t.request("history", 200, 3, 1_000);
        t.request("history", 404, 30, 1_001);
        t.request("history", 503, 7_000, 1_002);
        t.request(UNMATCHED, 101, 0, 1_003);
        let s = t.take().samples();
        let req = Metric::HttpRequests.name();
        assert_eq!(value(&s, req, r#"route="history",class="2xx""#), Some(1.0));
        assert_eq!(value(&s, req, r#"route="history",class="4xx""#), Some(1.0));
        assert_eq!(value(&s, req, r#"route="history",class="5xx""#), Some(1.0));
        assert_eq!(value(&s, req, r#"route="history",class="3xx""#), None);
        assert_eq!(
            value(&s, req, r#"route="unmatched",class="1xx""#),
            Some(1.0)
        );
        let b = |le: &str| {
            value(
                &s,
                &series("_bucket"),
                &format!(r#"route="history",le="{le}""#),
            )
        };
        // Cumulative: 3 ms is in every bucket, 30 ms from 0.05 on, 7 s from 10.
        assert_eq!(b("0.005"), Some(1.0));
        assert_eq!(b("0.025"), Some(1.0));
        assert_eq!(b("0.05"), Some(2.0));
        assert_eq!(b("5"), Some(2.0));
        assert_eq!(b("10"), Some(3.0));
        assert_eq!(b("+Inf"), Some(3.0));
        assert_eq!(
            value(&s, &series("_count"), r#"route="history""#),
            Some(3.0)
        );
        let sum = value(&s, &series("_sum"), r#"route="history""#).unwrap();
        assert!((sum - 7.033).abs() < 1e-9, "{sum}");
        assert!(t.is_empty() && t.samples().is_empty(), "taken once");
    }

    #[test]
    fn due_after_the_interval_from_the_oldest_figure() {
        let mut t = Tally::default();
        assert!(!t.due(u64::MAX), "nothing to write");
        t.auth_failure("token_expired", 5_000);
        t.rate_limited(9_000);
        assert!(!t.due(5_000 + FLUSH_EVERY_MS - 1));
        assert!(t.due(5_000 + FLUSH_EVERY_MS));
        let taken = t.take();
        let s = taken.samples();
        let failures = Metric::AuthFailures.name();
        assert_eq!(value(&s, failures, r#"code="token_expired""#), Some(1.0));
        let limited = Metric::RateLimited.name();
        assert_eq!(value(&s, limited, r#"scope="http""#), Some(1.0));
        assert!(!t.due(u64::MAX));
        // A failed write comes back whole, added to what came meanwhile,
        // and counts from its return.
        t.auth_failure("token_expired", 19_000);
        t.restore(taken, 20_000);
        assert!(!t.due(19_000 + FLUSH_EVERY_MS - 1));
        assert!(t.due(19_000 + FLUSH_EVERY_MS));
        let s = t.samples();
        assert_eq!(value(&s, failures, r#"code="token_expired""#), Some(2.0));
        assert_eq!(value(&s, limited, r#"scope="http""#), Some(1.0));
    }

    #[test]
    fn every_status_has_a_class() {
        for (status, want) in [(101, "1xx"), (204, "2xx"), (304, "3xx"), (429, "4xx")] {
            assert_eq!(CLASSES[class(status)], want);
        }
        assert_eq!(CLASSES[class(500)], "5xx");
        assert_eq!(CLASSES[class(0)], "5xx");
    }
}
