//! The assistant's function calls as the session keeps them: each call
//! (its arguments), what became of it (a person's decision, if it needed
//! one) and its result, arguments and result sealed. Agents see them live
//! (`session/tools.rs`) and in the admin session view; users only when
//! the profile shows them. Each change to a call queues its row for D1
//! (`Topic::ToolCall`, keyed by row id), which holds them sealed as here.

use super::{int, s, Log};
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use crate::llm::tools::{Exchange, ToolCall, ToolResult};
use crate::session::outbox::{Outbox, Topic};
use serde::{Deserialize, Serialize};
use worker::SqlStorageValue as V;

pub const SCHEMA: &str = "
-- `reply`: the id of the assistant reply that asked; with `call_id`, the
-- AAD id of the sealed `arguments` and `result`.
CREATE TABLE IF NOT EXISTS tool_calls (
  id INTEGER PRIMARY KEY, reply TEXT NOT NULL, call_id TEXT NOT NULL, name TEXT NOT NULL,
  arguments TEXT NOT NULL, result TEXT, is_error INTEGER, decision TEXT, decided_by TEXT,
  at INTEGER NOT NULL, done_at INTEGER);
CREATE INDEX IF NOT EXISTS tool_calls_call ON tool_calls (call_id);
";

/// Most calls the admin view lists (the newest).
pub const SHOWN: u32 = 200;

/// The AAD id of a call's sealed values.
pub fn sealed_id(reply: &str, call_id: &str) -> String {
    format!("{reply}/{call_id}")
}

/// A call as the admin session view shows it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ToolRecord {
    pub call_id: String,
    pub name: String,
    /// Null when it cannot be opened (a retired key).
    pub arguments: Option<serde_json::Value>,
    pub result: Option<String>,
    pub is_error: Option<bool>,
    /// `approved`, `rejected` or `timed_out`, for calls that needed one.
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub at: i64,
    pub done_at: Option<i64>,
}

/// A stored call, opened (a value that cannot be opened is None).
struct Opened {
    reply: String,
    call_id: String,
    name: String,
    arguments: Option<serde_json::Value>,
    result: Option<String>,
    is_error: Option<bool>,
    decision: Option<String>,
    decided_by: Option<String>,
    at: i64,
    done_at: Option<i64>,
}

impl Log {
    /// The calls `filter` (a `WHERE` clause with one `?`: `arg`) picks,
    /// newest `SHOWN` first, opened.
    fn opened(&self, keys: &Keyring, filter: &str, arg: i64) -> Result<Vec<Opened>, AppError> {
        #[derive(Deserialize)]
        struct Row {
            reply: String,
            call_id: String,
            name: String,
            arguments: String,
            result: Option<String>,
            is_error: Option<i64>,
            decision: Option<String>,
            decided_by: Option<String>,
            at: i64,
            done_at: Option<i64>,
        }
        let session = self.live()?.id;
        let rows = self.all::<Row>(
            &format!(
                "SELECT reply, call_id, name, arguments, result, is_error, decision, decided_by, at, done_at
                   FROM tool_calls WHERE {filter} ORDER BY id DESC LIMIT ?"
            ),
            vec![int(arg), int(SHOWN)],
        )?;
        Ok(rows
            .into_iter()
            .rev()
            .map(|r| {
                let id = sealed_id(&r.reply, &r.call_id);
                let open = |f: Field, v: &str| keys.open(&aad(f, &session, Some(&id)), v).ok();
                Opened {
                    arguments: open(Field::ToolCall, &r.arguments)
                        .and_then(|a| serde_json::from_str(&a).ok()),
                    result: r.result.as_deref().and_then(|v| open(Field::ToolResult, v)),
                    reply: r.reply,
                    call_id: r.call_id,
                    name: r.name,
                    is_error: r.is_error.map(|e| e != 0),
                    decision: r.decision,
                    decided_by: r.decided_by,
                    at: r.at,
                    done_at: r.done_at,
                }
            })
            .collect())
    }

    /// The exchanges since `since` (unix ms), oldest first: only those
    /// whose every call has a readable result (a vendor refuses a call
    /// without one).
    pub fn exchanges(&self, keys: &Keyring, since: i64) -> Result<Vec<Exchange>, AppError> {
        let mut out: Vec<(Exchange, bool)> = Vec::new();
        for r in self.opened(keys, "at >= ?", since)? {
            if out.last().is_none_or(|(e, _)| e.reply != r.reply) {
                let e = Exchange {
                    reply: r.reply.clone(),
                    at: r.at,
                    calls: Vec::new(),
                    results: Vec::new(),
                };
                out.push((e, true));
            }
            let (e, whole) = out.last_mut().expect("pushed above");
            match (r.arguments, r.result) {
                (Some(arguments), Some(content)) => {
                    e.results.push(ToolResult {
                        call_id: r.call_id.clone(),
                        name: r.name.clone(),
                        content,
                        is_error: r.is_error.unwrap_or(true),
                    });
                    e.calls.push(ToolCall {
                        id: r.call_id,
                        name: r.name,
                        arguments,
                    });
                }
                _ => *whole = false,
            }
        }
        Ok(out
            .into_iter()
            .filter(|(_, whole)| *whole)
            .map(|(e, _)| e)
            .collect())
    }

    /// Runs `q` (a write ending in `RETURNING id`) and queues each row it
    /// changed for D1.
    fn changed(&self, q: &str, args: Vec<V>, at: i64, out: &Outbox) -> Result<(), AppError> {
        #[derive(Deserialize)]
        struct Id {
            id: i64,
        }
        for r in self.all::<Id>(q, args)? {
            out.touch(&self.sql, Topic::ToolCall, &r.id.to_string(), at)?;
        }
        Ok(())
    }

    /// Keeps the calls reply `reply` asked for.
    pub fn add_tool_calls(
        &self,
        keys: &Keyring,
        reply: &str,
        calls: &[ToolCall],
        at: i64,
        out: &Outbox,
    ) -> Result<(), AppError> {
        let session = self.live()?.id;
        for c in calls {
            let id = sealed_id(reply, &c.id);
            let args = keys.seal(
                &aad(Field::ToolCall, &session, Some(&id)),
                &c.arguments.to_string(),
            );
            self.changed(
                "INSERT INTO tool_calls (reply, call_id, name, arguments, at) VALUES (?, ?, ?, ?, ?)
                 RETURNING id",
                vec![s(reply), s(&c.id), s(&c.name), V::String(args), int(at)],
                at,
                out,
            )?;
        }
        Ok(())
    }

    /// A person's decision on the newest call `call_id`.
    pub fn tool_decided(
        &self,
        call_id: &str,
        decision: &str,
        by: Option<&str>,
        at: i64,
        out: &Outbox,
    ) -> Result<(), AppError> {
        self.changed(
            "UPDATE tool_calls SET decision = ?, decided_by = ?
              WHERE id = (SELECT max(id) FROM tool_calls WHERE call_id = ?) RETURNING id",
            vec![s(decision), by.map_or(V::Null, s), s(call_id)],
            at,
            out,
        )
    }

    /// What the newest calls of `reply` came to.
    pub fn tool_results(
        &self,
        keys: &Keyring,
        reply: &str,
        results: &[ToolResult],
        at: i64,
        out: &Outbox,
    ) -> Result<(), AppError> {
        let session = self.live()?.id;
        for r in results {
            let id = sealed_id(reply, &r.call_id);
            let sealed = keys.seal(&aad(Field::ToolResult, &session, Some(&id)), &r.content);
            self.changed(
                "UPDATE tool_calls SET result = ?, is_error = ?, done_at = ? WHERE reply = ? AND call_id = ?
                 RETURNING id",
                vec![V::String(sealed), int(r.is_error as i64), int(at), s(reply), s(&r.call_id)],
                at,
                out,
            )?;
        }
        Ok(())
    }

    /// Row `id` as D1 keeps it (values sealed as stored): `[reply,
    /// call_id, name, arguments, result, is_error, decision, decided_by,
    /// at, done_at]`; None once it is gone.
    pub fn tool_row(&self, id: i64) -> Result<Option<serde_json::Value>, AppError> {
        #[derive(Deserialize)]
        struct Row {
            row: String,
        }
        let rows = self.all::<Row>(
            "SELECT json_array(reply, call_id, name, arguments, result, is_error, decision, decided_by,
                    at, done_at) AS row
               FROM tool_calls WHERE id = ?",
            vec![int(id)],
        )?;
        rows.into_iter()
            .next()
            .map(|r| serde_json::from_str(&r.row).map_err(AppError::internal))
            .transpose()
    }

    /// The newest `SHOWN` calls, oldest first, opened.
    pub fn tool_records(&self, keys: &Keyring) -> Result<Vec<ToolRecord>, AppError> {
        Ok((self.opened(keys, "id > ?", 0)?.into_iter())
            .map(|r| ToolRecord {
                call_id: r.call_id,
                name: r.name,
                arguments: r.arguments,
                result: r.result,
                is_error: r.is_error,
                decision: r.decision,
                decided_by: r.decided_by,
                at: r.at,
                done_at: r.done_at,
            })
            .collect())
    }
}
