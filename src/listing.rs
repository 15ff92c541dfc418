//! The admin session listing: query parameters to one SQL statement with
//! keyset pagination. Pure, so every filter and cursor is tested natively.
//!
//! Pages are keyed on `(sort column, id)`, and each sort column has an index
//! ending in `id` (migrations/0004_admin.sql), so a page costs one index
//! range scan however deep it is, and rows inserted or deleted while a
//! client pages neither shift nor repeat the rows it has not seen yet.
//! Every D1 shard runs the same statement; [`ListQuery::order`] merges
//! their pages (`crate::shards::merge`), so pages stay exact across shards.

use crate::contract::Mode;
use crate::desk::Status;
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Updated,
    Created,
    Messages,
    Tokens,
    /// When the session (last) began waiting for an agent.
    Waiting,
}

impl Sort {
    fn parse(s: &str) -> Option<Sort> {
        Some(match s {
            "updated" => Sort::Updated,
            "created" => Sort::Created,
            "messages" => Sort::Messages,
            "tokens" => Sort::Tokens,
            "waiting" => Sort::Waiting,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Sort::Updated => "updated",
            Sort::Created => "created",
            Sort::Messages => "messages",
            Sort::Tokens => "tokens",
            Sort::Waiting => "waiting",
        }
    }

    pub fn column(self) -> &'static str {
        match self {
            Sort::Updated => "updated_at",
            Sort::Created => "created_at",
            Sort::Messages => "message_count",
            Sort::Tokens => "tokens_total",
            Sort::Waiting => "waiting_since",
        }
    }
}

/// A bound parameter of the listing statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(i64),
}

/// Where the previous page ended: the last row's sort value and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub value: i64,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub status: Option<Status>,
    pub mode: Option<Mode>,
    pub owner: Option<String>,
    /// The agent (user id) who has the session.
    pub assignee: Option<String>,
    pub human_assisted: Option<bool>,
    pub created_from: Option<i64>,
    pub created_to: Option<i64>,
    pub updated_from: Option<i64>,
    pub updated_to: Option<i64>,
    pub sort: Sort,
    pub descending: bool,
    pub cursor: Option<Cursor>,
    pub limit: u32,
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

fn bad(code: &'static str, message: impl Into<String>) -> AppError {
    AppError::bad_request(code, message)
}

impl ListQuery {
    /// Reads the query string's pairs. Unknown parameters are refused, so a
    /// typo never silently widens an admin's view. (Long: one arm per
    /// parameter, each with its own check and error.)
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<ListQuery, AppError> {
        let mut q = ListQuery {
            status: None,
            mode: None,
            owner: None,
            assignee: None,
            human_assisted: None,
            created_from: None,
            created_to: None,
            updated_from: None,
            updated_to: None,
            sort: Sort::Updated,
            descending: true,
            cursor: None,
            limit: DEFAULT_LIMIT,
        };
        let mut cursor = None;
        let time = |k: &str, v: &str| {
            v.parse::<i64>()
                .ok()
                .filter(|t| *t >= 0)
                .ok_or_else(|| bad("invalid_filter", format!("{k} must be unix milliseconds")))
        };
        for (k, v) in pairs {
            match k {
                "status" => match Status::parse(v) {
                    Some(s) => q.status = Some(s),
                    None => {
                        return Err(bad(
                            "invalid_filter",
                            "status must be open, waiting, assigned, resolved or closed",
                        ))
                    }
                },
                "mode" => match Mode::parse(v) {
                    Some(m) => q.mode = Some(m),
                    None => return Err(bad("invalid_filter", "mode must be assistant or human")),
                },
                "owner" => {
                    // The one user id rule (`ids`), not a copy of its bound.
                    if !crate::ids::is_valid_user_id(v) {
                        return Err(bad("invalid_filter", "owner must be a user id"));
                    }
                    q.owner = Some(v.into());
                }
                "assignee" => {
                    if !crate::ids::is_valid_user_id(v) {
                        return Err(bad("invalid_filter", "assignee must be a user id"));
                    }
                    q.assignee = Some(v.into());
                }
                "human_assisted" => match v {
                    "true" => q.human_assisted = Some(true),
                    "false" => q.human_assisted = Some(false),
                    _ => {
                        return Err(bad(
                            "invalid_filter",
                            "human_assisted must be true or false",
                        ))
                    }
                },
                "created_from" => q.created_from = Some(time(k, v)?),
                "created_to" => q.created_to = Some(time(k, v)?),
                "updated_from" => q.updated_from = Some(time(k, v)?),
                "updated_to" => q.updated_to = Some(time(k, v)?),
                "sort" => {
                    q.sort = Sort::parse(v).ok_or_else(|| {
                        bad(
                            "invalid_sort",
                            "sort must be updated, created, messages, tokens or waiting",
                        )
                    })?
                }
                "order" => match v {
                    "asc" => q.descending = false,
                    "desc" => q.descending = true,
                    _ => return Err(bad("invalid_sort", "order must be asc or desc")),
                },
                "limit" => {
                    q.limit = v
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            bad(
                                "invalid_limit",
                                format!("limit must be an integer from 1 to {MAX_LIMIT}"),
                            )
                        })?
                }
                "cursor" => cursor = Some(v.to_string()),
                other => {
                    return Err(bad(
                        "invalid_filter",
                        format!(
                            "unknown parameter `{}`",
                            other.chars().take(40).collect::<String>()
                        ),
                    ))
                }
            }
        }
        // Decoded last: a cursor is only valid with the sort it was made for.
        if let Some(c) = cursor {
            q.cursor = Some(q.decode_cursor(&c)?);
        }
        Ok(q)
    }

    /// The page order of two rows, `(sort value, id)`: the statement's
    /// `ORDER BY` (ids compare bytewise in SQLite and in Rust alike).
    pub fn order(&self, a: (i64, &str), b: (i64, &str)) -> std::cmp::Ordering {
        let o = a.cmp(&b);
        if self.descending {
            o.reverse()
        } else {
            o
        }
    }

    fn order_name(&self) -> &'static str {
        if self.descending {
            "desc"
        } else {
            "asc"
        }
    }

    /// The opaque cursor after a row with this sort value and id.
    pub fn encode_cursor(&self, value: i64, id: &str) -> String {
        format!("{}.{}.{value}.{id}", self.sort.name(), self.order_name())
    }

    fn decode_cursor(&self, s: &str) -> Result<Cursor, AppError> {
        let invalid = || {
            bad(
                "invalid_cursor",
                "cursor is not one this API issued for this sort",
            )
        };
        let mut parts = s.splitn(4, '.');
        let (sort, order, value, id) = (parts.next(), parts.next(), parts.next(), parts.next());
        if sort != Some(self.sort.name()) || order != Some(self.order_name()) {
            return Err(invalid());
        }
        let value = value
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(invalid)?;
        let id = id
            .filter(|i| crate::ids::is_valid_session_id(i))
            .ok_or_else(invalid)?;
        Ok(Cursor {
            value,
            id: id.to_string(),
        })
    }

    /// The WHERE/ORDER/LIMIT tail (after `FROM sessions`) and its parameters.
    /// Fetches one row more than the page to tell whether another follows.
    pub fn sql_tail(&self) -> (String, Vec<Param>) {
        let mut clauses: Vec<String> = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        let mut add = |clause: &str, p: Param| {
            params.push(p);
            clauses.push(clause.replace('?', &format!("?{}", params.len())));
        };
        if let Some(s) = self.status {
            add("status = ?", Param::Text(s.as_str().into()));
        }
        if let Some(m) = self.mode {
            add("mode = ?", Param::Text(m.as_str().into()));
        }
        if let Some(o) = &self.owner {
            add("owner_id = ?", Param::Text(o.clone()));
        }
        if let Some(a) = &self.assignee {
            add("assignee_id = ?", Param::Text(a.clone()));
        }
        if let Some(h) = self.human_assisted {
            add("human_assisted = ?", Param::Int(h as i64));
        }
        if let Some(t) = self.created_from {
            add("created_at >= ?", Param::Int(t));
        }
        if let Some(t) = self.created_to {
            add("created_at < ?", Param::Int(t));
        }
        if let Some(t) = self.updated_from {
            add("updated_at >= ?", Param::Int(t));
        }
        if let Some(t) = self.updated_to {
            add("updated_at < ?", Param::Int(t));
        }
        let col = self.sort.column();
        let (cmp, dir) = if self.descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        if let Some(c) = &self.cursor {
            params.push(Param::Int(c.value));
            params.push(Param::Text(c.id.clone()));
            let (v, i) = (params.len() - 1, params.len());
            clauses.push(format!("({col}, id) {cmp} (?{v}, ?{i})"));
        }
        params.push(Param::Int(self.limit as i64 + 1));
        let limit = params.len();
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        (
            format!("{filter} ORDER BY {col} {dir}, id {dir} LIMIT ?{limit}"),
            params,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<ListQuery, AppError> {
        ListQuery::parse(q.iter().copied())
    }

    #[test]
    fn defaults_newest_activity_first() {
        let q = parse(&[]).unwrap();
        let (sql, params) = q.sql_tail();
        assert_eq!(sql, " ORDER BY updated_at DESC, id DESC LIMIT ?1");
        assert_eq!(params, vec![Param::Int(51)]);
    }

    #[test]
    fn filters_and_cursor_bind_in_order() {
        let q = parse(&[
            ("status", "waiting"),
            ("mode", "human"),
            ("owner", "u1"),
            ("human_assisted", "true"),
            ("created_from", "10"),
            ("updated_to", "20"),
            ("sort", "tokens"),
            ("order", "asc"),
            ("limit", "5"),
        ])
        .unwrap();
        let cursor = q.encode_cursor(42, "abc");
        let mut pairs = vec![("sort", "tokens"), ("order", "asc"), ("mode", "human")];
        pairs.push(("cursor", cursor.as_str()));
        let next = parse(&pairs).unwrap();
        assert_eq!(
            next.cursor,
            Some(Cursor {
                value: 42,
                id: "abc".into()
            })
        );
        let (sql, params) = q.sql_tail();
        assert_eq!(sql, " WHERE status = ?1 AND mode = ?2 AND owner_id = ?3 AND human_assisted = ?4 AND created_at >= ?5 AND updated_at < ?6 ORDER BY tokens_total ASC, id ASC LIMIT ?7");
        assert_eq!(params.len(), 7);
        let (sql, params) = next.sql_tail();
        assert_eq!(sql, " WHERE mode = ?1 AND (tokens_total, id) > (?2, ?3) ORDER BY tokens_total ASC, id ASC LIMIT ?4");
        assert_eq!(params[1], Param::Int(42));
        assert_eq!(params[2], Param::Text("abc".into()));
    }

    #[test]
    fn the_waiting_queue_is_a_filter_and_a_sort() {
        let q = parse(&[
            ("status", "waiting"),
            ("assignee", "agent-7"),
            ("sort", "waiting"),
            ("order", "asc"),
        ])
        .unwrap();
        let (sql, params) = q.sql_tail();
        assert_eq!(
            sql,
            " WHERE status = ?1 AND assignee_id = ?2 ORDER BY waiting_since ASC, id ASC LIMIT ?3"
        );
        assert_eq!(params[1], Param::Text("agent-7".into()));
        for bad in [("status", "active"), ("status", "idle"), ("assignee", "")] {
            assert_eq!(
                parse(&[bad]).unwrap_err().code(),
                "invalid_filter",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_cursor_only_works_with_its_own_sort() {
        let q = parse(&[("sort", "created")]).unwrap();
        let c = q.encode_cursor(1, "abc");
        assert!(parse(&[("sort", "created"), ("cursor", &c)]).is_ok());
        let err = parse(&[("sort", "messages"), ("cursor", &c)]).unwrap_err();
        assert_eq!(err.code(), "invalid_cursor");
        let err = parse(&[("sort", "created"), ("order", "asc"), ("cursor", &c)]).unwrap_err();
        assert_eq!(err.code(), "invalid_cursor");
        assert_eq!(
            parse(&[("cursor", "garbage")]).unwrap_err().code(),
            "invalid_cursor"
        );
    }

    #[test]
    fn bad_values_are_named() {
        for (k, v, code) in [
            ("status", "active", "invalid_filter"),
            ("mode", "robot", "invalid_filter"),
            ("human_assisted", "yes", "invalid_filter"),
            ("created_from", "yesterday", "invalid_filter"),
            ("sort", "title", "invalid_sort"),
            ("order", "up", "invalid_sort"),
            ("limit", "0", "invalid_limit"),
            ("limit", "201", "invalid_limit"),
            ("ownr", "x", "invalid_filter"),
            ("owner", "", "invalid_filter"),
            ("owner", " padded", "invalid_filter"),
        ] {
            assert_eq!(parse(&[(k, v)]).unwrap_err().code(), code, "{k}={v}");
        }
    }

    #[test]
    fn an_owner_is_any_user_id() {
        use crate::ids::MAX_USER_ID_CHARS;
        let longest = "x".repeat(MAX_USER_ID_CHARS);
        for ok in ["auth0|123", "ann@example.com", longest.as_str()] {
            assert_eq!(parse(&[("owner", ok)]).unwrap().owner.as_deref(), Some(ok));
        }
        let long = "x".repeat(MAX_USER_ID_CHARS + 1);
        let err = parse(&[("owner", long.as_str())]).unwrap_err();
        assert_eq!(err.code(), "invalid_filter");
    }
}
