//! The usage report (`GET /v1/admin/usage`): the cost ledger summed by
//! day, user, profile or model over a range of UTC days, a page at a time.
//! Pure: the query's parsing, its SQL and its cursors are tested natively;
//! `store::ledger` runs it.
//!
//! Pages are keyset pages in ascending key order (days oldest first, so a
//! chart reads left to right). The cursor is the last key, hex-encoded: it
//! is opaque to clients and never needs escaping.

use crate::error::AppError;
use serde::Serialize;

/// What the report is summed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Day,
    User,
    Profile,
    Model,
}

impl Group {
    pub fn parse(s: &str) -> Option<Group> {
        Some(match s {
            "day" => Group::Day,
            "user" => Group::User,
            "profile" => Group::Profile,
            "model" => Group::Model,
            _ => return None,
        })
    }

    /// The key's SQL. A model is keyed by provider and model, joined by a
    /// character no provider name has, so keys sort and page as one string.
    fn key(self) -> &'static str {
        match self {
            Group::Day => "day",
            Group::User => "user_id",
            Group::Profile => "profile",
            Group::Model => "provider || ':' || model",
        }
    }
}

pub const DEFAULT_LIMIT: u32 = 31;
pub const MAX_LIMIT: u32 = 366;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub group: Group,
    /// Inclusive UTC days, `YYYY-MM-DD`.
    pub from: Option<String>,
    pub to: Option<String>,
    pub user: Option<String>,
    pub profile: Option<String>,
    /// The last key of the previous page.
    pub after: Option<String>,
    pub limit: u32,
}

fn bad(code: &'static str, message: impl Into<String>) -> AppError {
    AppError::bad_request(code, message)
}

/// Whether `s` is a calendar day as `YYYY-MM-DD`.
pub fn is_day(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) || s.len() > 1024 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

impl Query {
    /// Reads `by`, `from`, `to`, `user`, `profile`, `limit` and `cursor`;
    /// anything else is refused, as each bad value is, with its own code.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Query, AppError> {
        let mut q = Query {
            group: Group::Day,
            from: None,
            to: None,
            user: None,
            profile: None,
            after: None,
            limit: DEFAULT_LIMIT,
        };
        for (k, v) in pairs {
            match k {
                "by" => {
                    q.group = Group::parse(v).ok_or_else(|| {
                        bad("invalid_filter", "by must be day, user, profile or model")
                    })?
                }
                "from" | "to" => {
                    if !is_day(v) {
                        return Err(bad(
                            "invalid_filter",
                            format!("{k} must be a day, YYYY-MM-DD"),
                        ));
                    }
                    *(if k == "from" { &mut q.from } else { &mut q.to }) = Some(v.to_string());
                }
                "user" if crate::ids::is_valid_user_id(v) => q.user = Some(v.to_string()),
                "user" => return Err(bad("invalid_filter", "user must be a user id")),
                "profile" if !v.is_empty() && v.len() <= 64 => q.profile = Some(v.to_string()),
                "profile" => return Err(bad("invalid_filter", "profile must be a profile name")),
                "limit" => {
                    q.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            bad("invalid_limit", format!("limit must be 1 to {MAX_LIMIT}"))
                        })?
                }
                "cursor" => {
                    q.after = Some(unhex(v).ok_or_else(|| {
                        bad("invalid_cursor", "cursor is not one this API issued")
                    })?)
                }
                _ => return Err(bad("invalid_filter", format!("unknown parameter {k}"))),
            }
        }
        if let (Some(f), Some(t)) = (&q.from, &q.to) {
            if f > t {
                return Err(bad("invalid_filter", "from must not be after to"));
            }
        }
        Ok(q)
    }

    /// The statement and its arguments, in order. It asks for one row more
    /// than the page, to tell whether another page follows.
    pub fn sql(&self) -> (String, Vec<String>) {
        let key = self.group.key();
        let mut filters = Vec::new();
        let mut args = Vec::new();
        let mut filter = |sql: &str, v: &Option<String>| {
            if let Some(v) = v {
                args.push(v.clone());
                filters.push(format!("{sql} ?{}", args.len()));
            }
        };
        filter("day >=", &self.from);
        filter("day <=", &self.to);
        filter("user_id =", &self.user);
        filter("profile =", &self.profile);
        filter(&format!("{key} >"), &self.after);
        let filters = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        let sql = format!(
            "SELECT {key} AS key, sum(turns) AS turns, sum(tokens_in) AS tokens_in,
                    sum(tokens_out) AS tokens_out, sum(tokens_cached) AS tokens_cached,
                    sum(cost_nanos) AS cost_nanos, sum(unpriced) AS unpriced
               FROM usage_ledger {filters} GROUP BY {key} ORDER BY key LIMIT {}",
            self.limit + 1
        );
        (sql, args)
    }

    /// The cursor after a page whose last key is `key`.
    pub fn cursor_after(key: &str) -> String {
        hex(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_calendar_days() {
        for ok in ["2026-12-03", "2024-02-29", "2000-02-29", "1999-12-31"] {
            assert!(is_day(ok), "{ok}");
        }
        for bad in [
            "2026-13-01",
            "2026-02-29",
            "1900-02-29",
            "2026-1-01",
            "2026-12-3",
            "26-12-003",
            "２０２６-12-03",
            "",
        ] {
            assert!(!is_day(bad), "{bad}");
        }
    }

    #[test]
    fn filters_and_the_cursor_bind_in_order() {
        let cursor = Query::cursor_after("openai:gpt-4o-mini");
        let q = Query::parse([
            ("by", "model"),
            ("from", "2026-11-01"),
            ("to", "2026-11-30"),
            ("user", "alice"),
            ("cursor", cursor.as_str()),
            ("limit", "10"),
        ])
        .unwrap();
        let (sql, args) = q.sql();
        assert_eq!(
            args,
            ["2026-11-01", "2026-11-30", "alice", "openai:gpt-4o-mini"]
        );
        assert!(
            sql.contains(
                "WHERE day >= ?1 AND day <= ?2 AND user_id = ?3 AND provider || ':' || model > ?4"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("GROUP BY provider || ':' || model ORDER BY key LIMIT 11"),
            "{sql}"
        );
    }

    #[test]
    fn by_day_without_filters_is_every_day() {
        let (sql, args) = Query::parse([]).unwrap().sql();
        assert!(args.is_empty());
        assert!(sql.contains("FROM usage_ledger  GROUP BY day"), "{sql}");
    }

    #[test]
    fn bad_queries_get_their_codes() {
        for (pairs, code) in [
            (vec![("by", "week")], "invalid_filter"),
            (vec![("from", "yesterday")], "invalid_filter"),
            (
                vec![("from", "2026-12-02"), ("to", "2026-12-01")],
                "invalid_filter",
            ),
            (vec![("limit", "0")], "invalid_limit"),
            (vec![("limit", "367")], "invalid_limit"),
            (vec![("cursor", "zz")], "invalid_cursor"),
            (vec![("cursor", "ff")], "invalid_cursor"),
            (vec![("user", "")], "invalid_filter"),
            (vec![("sort", "cost")], "invalid_filter"),
        ] {
            match Query::parse(pairs.clone()) {
                Err(AppError::BadRequest { code: c, .. }) => assert_eq!(c, code, "{pairs:?}"),
                other => panic!("{pairs:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn cursors_round_trip_any_key() {
        for key in [
            "2026-12-03",
            "workers_ai:@cf/meta/llama-3.1-8b-instruct",
            "ünïcode user",
        ] {
            let q = Query::parse([("cursor", Query::cursor_after(key).as_str())]).unwrap();
            assert_eq!(q.after.as_deref(), Some(key));
        }
    }
}
