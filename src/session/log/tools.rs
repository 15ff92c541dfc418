//! The assistant's function calls as the session keeps them: each call
//! (its arguments), what became of it (a person's decision, if it needed
//! one) and its result, arguments and result sealed. Each change to a call
//! queues its row for D1 (`Topic::ToolCall`, keyed by row id), which holds
//! them sealed as here.
//!
//! **Messages of their own kinds.** A call and its result are messages in
//! the session's stream: each takes a seq (`seq`, `result_seq`) when it is
//! kept, and is sent, replayed and listed as a `tool_call` or
//! `tool_result` message (`tool_messages`, merged into pages by
//! `page.rs`). They stay in this table, not in `messages`, so that
//! everything that reads only people's and the assistant's words (the
//! prompt, search, webhooks, edits, reactions, ratings, the transcript)
//! cannot pick them up by mistake: only the readers given a `Sight` see
//! them. Agents see every call; users only calls made under a profile
//! that shows them (`shown`, fixed when the call is made). Calls kept
//! before they were messages have no seq and stay out of the stream.

use super::{int, s, Log};
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use crate::llm::tools::{Exchange, ToolCall, ToolResult};
use crate::protocol::{CallPart, MessageView, ResultPart, ToolMessage};
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

/// Which of the assistant's function calls a reader of the message
/// stream sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sight {
    /// None (the assistant's own prompt gets them as exchanges instead).
    Hidden,
    /// Those made under a profile that shows them: users.
    Shown,
    /// Every one: agents.
    All,
}

impl Sight {
    /// What an agent (an admin's socket or call) or a user sees.
    pub fn of(agent: bool) -> Sight {
        if agent {
            Sight::All
        } else {
            Sight::Shown
        }
    }
}

/// Who wrote a turn's calls, and whether users see them: how its tool
/// messages are kept.
#[derive(Clone, Copy, Debug)]
pub struct Teller<'a> {
    pub assistant: &'a str,
    pub shown: bool,
}

/// The message ids of a call and of its result.
fn message_ids(reply: &str, call_id: &str) -> (String, String) {
    let id = sealed_id(reply, call_id);
    let result = format!("{id}/result");
    (id, result)
}

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

    /// Keeps the calls reply `reply` asked for, each as a `tool_call`
    /// message with its own seq; gives those messages.
    pub fn add_tool_calls(
        &self,
        keys: &Keyring,
        (reply, calls): (&str, &[ToolCall]),
        teller: Teller,
        at: i64,
        out: &Outbox,
    ) -> Result<Vec<MessageView>, AppError> {
        let session = self.live()?.id;
        let first = self.claim_seqs(calls.len(), out, at)?;
        let mut views = Vec::with_capacity(calls.len());
        for (seq, c) in (first..).zip(calls) {
            let (id, _) = message_ids(reply, &c.id);
            let args = keys.seal(
                &aad(Field::ToolCall, &session, Some(&id)),
                &c.arguments.to_string(),
            );
            self.changed(
                "INSERT INTO tool_calls (reply, call_id, name, arguments, at, seq, shown, author_name)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                vec![
                    s(reply),
                    s(&c.id),
                    s(&c.name),
                    V::String(args),
                    int(at),
                    int(seq),
                    int(teller.shown as i64),
                    s(teller.assistant),
                ],
                at,
                out,
            )?;
            let call = CallPart {
                id: c.id.clone(),
                name: c.name.clone(),
                arguments: c.arguments.clone(),
                decision: None,
            };
            let kind = ToolMessage::ToolCall { call };
            views.push(MessageView::tool(
                (seq as u64, id, at),
                teller.assistant,
                kind,
                None,
            ));
        }
        Ok(views)
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

    /// What the calls of `reply` came to, each kept as a `tool_result`
    /// message with its own seq; gives those messages.
    pub fn tool_results(
        &self,
        keys: &Keyring,
        (reply, results): (&str, &[ToolResult]),
        teller: Teller,
        at: i64,
        out: &Outbox,
    ) -> Result<Vec<MessageView>, AppError> {
        let session = self.live()?.id;
        let first = self.claim_seqs(results.len(), out, at)?;
        let mut views = Vec::with_capacity(results.len());
        for (seq, r) in (first..).zip(results) {
            let (id, message) = message_ids(reply, &r.call_id);
            let sealed = keys.seal(&aad(Field::ToolResult, &session, Some(&id)), &r.content);
            self.changed(
                "UPDATE tool_calls SET result = ?, is_error = ?, done_at = ?, result_seq = ?
                  WHERE reply = ? AND call_id = ? RETURNING id",
                vec![
                    V::String(sealed),
                    int(r.is_error as i64),
                    int(at),
                    int(seq),
                    s(reply),
                    s(&r.call_id),
                ],
                at,
                out,
            )?;
            let result = ResultPart {
                call_id: r.call_id.clone(),
                name: r.name.clone(),
                content: r.content.clone(),
                is_error: r.is_error,
            };
            let kind = ToolMessage::ToolResult { result };
            views.push(MessageView::tool(
                (seq as u64, message, at),
                teller.assistant,
                kind,
                None,
            ));
        }
        Ok(views)
    }

    /// The tool messages `sight` shows with seqs in `(after, before)`, at
    /// most `limit`, oldest first: the newest ones when `newest`, else the
    /// oldest ones. A call's message and its result's are read from the
    /// same row.
    pub fn tool_messages(
        &self,
        keys: &Keyring,
        (after, before): (V, V),
        (limit, newest): (u32, bool),
        sight: Sight,
    ) -> Result<Vec<MessageView>, AppError> {
        let least_shown = match sight {
            Sight::Hidden => return Ok(Vec::new()),
            Sight::Shown => 1,
            Sight::All => 0,
        };
        #[derive(Deserialize)]
        struct Row {
            at_seq: i64,
            is_result: i64,
            reply: String,
            call_id: String,
            name: String,
            arguments: String,
            result: Option<String>,
            is_error: Option<i64>,
            decision: Option<String>,
            at: i64,
            done_at: Option<i64>,
            author_name: Option<String>,
        }
        let order = if newest { "DESC" } else { "ASC" };
        let cols =
            "reply, call_id, name, arguments, result, is_error, decision, at, done_at, author_name";
        let q = format!(
            "SELECT seq AS at_seq, 0 AS is_result, {cols} FROM tool_calls
              WHERE seq > ?1 AND seq < ?2 AND shown >= ?4
             UNION ALL
             SELECT result_seq, 1, {cols} FROM tool_calls
              WHERE result_seq > ?1 AND result_seq < ?2 AND shown >= ?4
             ORDER BY at_seq {order} LIMIT ?3"
        );
        let rows = self.all::<Row>(&q, vec![after, before, int(limit), int(least_shown)])?;
        let session = self.live()?.id;
        let mut views: Vec<MessageView> = rows
            .into_iter()
            .map(|r| {
                let (id, message) = message_ids(&r.reply, &r.call_id);
                let assistant = r
                    .author_name
                    .as_deref()
                    .unwrap_or(crate::protocol::ASSISTANT_AUTHOR_ID);
                let opened = |f: Field, v: &str| keys.open(&aad(f, &session, Some(&id)), v);
                if r.is_result == 0 {
                    let (arguments, unreadable) = match opened(Field::ToolCall, &r.arguments) {
                        Ok(a) => (serde_json::from_str(&a).unwrap_or_default(), None),
                        Err(e) => (serde_json::Value::Null, Some(e.code().to_string())),
                    };
                    let call = CallPart {
                        id: r.call_id,
                        name: r.name,
                        arguments,
                        decision: r.decision,
                    };
                    let at = (r.at_seq as u64, id.clone(), r.at);
                    MessageView::tool(at, assistant, ToolMessage::ToolCall { call }, unreadable)
                } else {
                    let sealed = r.result.as_deref().unwrap_or_default();
                    let (content, unreadable) = match opened(Field::ToolResult, sealed) {
                        Ok(c) => (c, None),
                        Err(e) => (String::new(), Some(e.code().to_string())),
                    };
                    let result = ResultPart {
                        call_id: r.call_id,
                        name: r.name,
                        content,
                        is_error: r.is_error.is_none_or(|e| e != 0),
                    };
                    let at = (r.at_seq as u64, message, r.done_at.unwrap_or(r.at));
                    MessageView::tool(
                        at,
                        assistant,
                        ToolMessage::ToolResult { result },
                        unreadable,
                    )
                }
            })
            .collect();
        if newest {
            views.reverse();
        }
        Ok(views)
    }

    /// Row `id` as D1 keeps it (values sealed as stored): `[reply,
    /// call_id, name, arguments, result, is_error, decision, decided_by,
    /// at, done_at, seq, result_seq, shown]`; None once it is gone.
    pub fn tool_row(&self, id: i64) -> Result<Option<serde_json::Value>, AppError> {
        #[derive(Deserialize)]
        struct Row {
            row: String,
        }
        let rows = self.all::<Row>(
            "SELECT json_array(reply, call_id, name, arguments, result, is_error, decision, decided_by,
                    at, done_at, seq, result_seq, shown) AS row
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
