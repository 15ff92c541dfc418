//! Function calls as the models stream them, put together. Pure.
//!
//! OpenAI streams each call of a turn under an `index`: its id and name
//! first, then its arguments as fragments of one JSON text. Anthropic does
//! the same per content block (`tool_use`, then `input_json_delta`s).
//! Gemini sends each call whole, with its arguments as an object and,
//! before its newer API, no id. Workers AI streams OpenAI-like fragments
//! in a list of its own, or whole calls. `Calls` takes the decoders' `ToolCall`
//! chunks in order and gives every call whole, with an id.
//!
//! Also here: what a function is (`Tool`: its spec, whether it needs a
//! person's approval, what a call does) and `with_exchanges`, which puts
//! earlier turns' calls and results back into a history.

use super::Malformed;
use serde_json::Value;

/// A function call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The vendor's id, or `call_<n>` when it gave none (Gemini, Workers
    /// AI's whole calls).
    pub id: String,
    pub name: String,
    /// A JSON object.
    pub arguments: Value,
}

/// A function the model may call: its name, what it does (for the model),
/// and a JSON Schema of its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// A function the assistant offers: its spec, whether a person must
/// approve each call before it is made, and what a call does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub spec: ToolSpec,
    pub needs_approval: bool,
    pub kind: ToolKind,
}

/// What calling a function does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolKind {
    /// A signed POST to the product's backend, answered within
    /// `timeout_ms` (`crate::llm::profile`, "Tools").
    Http {
        url: String,
        timeout_ms: u32,
    },
    Builtin(Builtin),
}

/// The functions Confab itself provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    /// Asks for a person: the session waits for an agent (`crate::desk`).
    EscalateToHuman,
    /// Ends the conversation: the session is resolved (the user's next
    /// message reopens it).
    EndConversation,
}

impl Builtin {
    pub fn name(self) -> &'static str {
        match self {
            Builtin::EscalateToHuman => "escalate_to_human",
            Builtin::EndConversation => "end_conversation",
        }
    }

    /// The spec the model is offered.
    pub fn spec(self) -> ToolSpec {
        let description = match self {
            Builtin::EscalateToHuman => {
                "Hand the conversation to a human support agent, when the user asks for one or you cannot help."
            }
            Builtin::EndConversation => {
                "End the conversation, once the user's question is settled and they want nothing more."
            }
        };
        ToolSpec {
            name: self.name().to_string(),
            description: description.to_string(),
            parameters: serde_json::json!({"type": "object", "properties": {}}),
        }
    }
}

/// What a call came to, as the model is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    pub call_id: String,
    /// The function's name (Gemini matches results by name).
    pub name: String,
    /// The result as text (JSON, usually), or why it failed.
    pub content: String,
    pub is_error: bool,
}

/// One reply's calls and what they came to, kept for later prompts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The id of the reply that asked (a stored message, when it also
    /// said something).
    pub reply: String,
    /// When the calls were asked for (unix ms).
    pub at: i64,
    pub calls: Vec<ToolCall>,
    pub results: Vec<ToolResult>,
}

/// A turn of the history as stored: when, and its message id.
pub struct Placed {
    pub at: i64,
    pub id: String,
    pub turn: super::Turn,
}

/// The history with earlier turns' calls and results put back where they
/// happened: a reply that said something before asking carries its calls,
/// and one that only asked comes before the first message after it. Each
/// call's result follows its reply, as every vendor wants.
pub fn with_exchanges(placed: Vec<Placed>, exchanges: Vec<Exchange>) -> Vec<super::Turn> {
    use super::{Role, Turn};
    let results = |out: &mut Vec<Turn>, rs: Vec<ToolResult>| {
        out.extend(rs.into_iter().map(|r| Turn {
            role: Role::Tool,
            result: Some(r),
            ..Default::default()
        }))
    };
    let mut out = Vec::new();
    let mut ex = exchanges.into_iter().peekable();
    for p in placed {
        while let Some(e) = ex.next_if(|e| e.reply != p.id && e.at < p.at) {
            out.push(Turn {
                role: Role::Assistant,
                calls: e.calls,
                ..Default::default()
            });
            results(&mut out, e.results);
        }
        match ex.next_if(|e| e.reply == p.id && p.turn.role == Role::Assistant) {
            Some(e) => {
                out.push(Turn {
                    calls: e.calls,
                    ..p.turn
                });
                results(&mut out, e.results);
            }
            None => out.push(p.turn),
        }
    }
    for e in ex {
        out.push(Turn {
            role: Role::Assistant,
            calls: e.calls,
            ..Default::default()
        });
        results(&mut out, e.results);
    }
    out
}

/// Most calls one reply may ask for.
pub const MAX_CALLS: usize = 16;

/// The calls of one reply, as their pieces arrive.
#[derive(Debug, Default)]
pub struct Calls {
    /// (stream index, id, name, arguments so far), in order of arrival.
    parts: Vec<(Option<u64>, Option<String>, String, String)>,
}

impl Calls {
    /// Takes one `ToolCall` chunk.
    pub fn feed(
        &mut self,
        index: Option<u64>,
        id: Option<String>,
        name: Option<String>,
        arguments: &str,
    ) -> Result<(), Malformed> {
        let known = index.and_then(|i| self.parts.iter().position(|p| p.0 == Some(i)));
        let at = match known {
            Some(at) => at,
            None if self.parts.len() >= MAX_CALLS => {
                return Err(Malformed(format!("more than {MAX_CALLS} tool calls")))
            }
            None => {
                self.parts.push((index, None, String::new(), String::new()));
                self.parts.len() - 1
            }
        };
        let p = &mut self.parts[at];
        if let Some(id) = id.filter(|i| !i.is_empty()) {
            p.1 = Some(id);
        }
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            p.2 = name;
        }
        p.3.push_str(arguments);
        Ok(())
    }

    /// Every call whole. A call without a name, or whose arguments are not
    /// a JSON object, makes the reply malformed (no arguments is `{}`).
    pub fn finish(self) -> Result<Vec<ToolCall>, Malformed> {
        self.parts
            .into_iter()
            .enumerate()
            .map(|(n, (_, id, name, args))| {
                if name.is_empty() {
                    return Err(Malformed("a tool call without a name".into()));
                }
                let arguments = if args.trim().is_empty() {
                    Value::Object(Default::default())
                } else {
                    serde_json::from_str::<Value>(&args)
                        .ok()
                        .filter(Value::is_object)
                        .ok_or_else(|| {
                            Malformed(format!("tool call {name}: arguments are not a JSON object"))
                        })?
                };
                Ok(ToolCall {
                    id: id.unwrap_or_else(|| format!("call_{n}")),
                    name,
                    arguments,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn streamed_pieces_make_parallel_calls_whole() {
        let mut c = Calls::default();
        c.feed(
            Some(0),
            Some("call_a".into()),
            Some("lookup_order".into()),
            "",
        )
        .unwrap();
        c.feed(
            Some(1),
            Some("call_b".into()),
            Some("open_ticket".into()),
            "{\"subj",
        )
        .unwrap();
        c.feed(Some(0), None, None, "{\"order\":").unwrap();
        c.feed(Some(0), None, None, " \"A-1\"}").unwrap();
        c.feed(Some(1), None, None, "ect\": \"late\"}").unwrap();
        let calls = c.finish().unwrap();
        assert_eq!(
            calls,
            [
                ToolCall {
                    id: "call_a".into(),
                    name: "lookup_order".into(),
                    arguments: json!({"order": "A-1"})
                },
                ToolCall {
                    id: "call_b".into(),
                    name: "open_ticket".into(),
                    arguments: json!({"subject": "late"})
                },
            ]
        );
    }

    #[test]
    fn whole_calls_without_ids_get_ids_of_their_own() {
        let mut c = Calls::default();
        c.feed(None, None, Some("a".into()), "{}").unwrap();
        c.feed(None, None, Some("b".into()), "").unwrap();
        let calls = c.finish().unwrap();
        assert_eq!(
            calls
                .iter()
                .map(|c| (c.id.as_str(), c.name.as_str()))
                .collect::<Vec<_>>(),
            [("call_0", "a"), ("call_1", "b")]
        );
        assert_eq!(calls[1].arguments, json!({}));
    }

    #[test]
    fn bad_calls_are_malformed() {
        let mut c = Calls::default();
        c.feed(Some(0), None, Some("f".into()), "[1, 2]").unwrap();
        assert!(c.finish().is_err(), "arguments must be an object");
        let mut c = Calls::default();
        c.feed(Some(0), None, None, "{}").unwrap();
        assert!(c.finish().is_err(), "a call needs a name");
        let mut c = Calls::default();
        for i in 0..MAX_CALLS as u64 {
            c.feed(Some(i), None, Some("f".into()), "").unwrap();
        }
        assert!(c.feed(Some(99), None, Some("f".into()), "").is_err());
    }
}

#[cfg(test)]
mod placed_tests {
    use super::*;
    use crate::llm::{Role, Turn};
    use serde_json::json;

    fn said(at: i64, id: &str, role: Role, text: &str) -> Placed {
        Placed {
            at,
            id: id.into(),
            turn: Turn {
                role,
                text: text.into(),
                ..Default::default()
            },
        }
    }

    fn exchange(reply: &str, at: i64, call: &str) -> Exchange {
        Exchange {
            reply: reply.into(),
            at,
            calls: vec![ToolCall {
                id: call.into(),
                name: "lookup".into(),
                arguments: json!({}),
            }],
            results: vec![ToolResult {
                call_id: call.into(),
                name: "lookup".into(),
                content: format!("result of {call}"),
                is_error: false,
            }],
        }
    }

    #[test]
    fn calls_and_results_go_back_where_they_happened() {
        let history = vec![
            said(10, "u1", Role::User, "where is A-1?"),
            // r1 only asked (no message); r2 answered with its result.
            said(30, "r2", Role::Assistant, "It shipped."),
            said(40, "u2", Role::User, "and B-2?"),
            // r3 said something and asked in one reply.
            said(50, "r3", Role::Assistant, "Let me look."),
        ];
        let turns = with_exchanges(
            history,
            vec![
                exchange("r1", 20, "c1"),
                exchange("r3", 49, "c3"),
                exchange("r4", 60, "c4"),
            ],
        );
        let shape: Vec<(Role, &str, usize, Option<&str>)> = turns
            .iter()
            .map(|t| {
                (
                    t.role,
                    t.text.as_str(),
                    t.calls.len(),
                    t.result.as_ref().map(|r| r.call_id.as_str()),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                (Role::User, "where is A-1?", 0, None),
                (Role::Assistant, "", 1, None),
                (Role::Tool, "", 0, Some("c1")),
                (Role::Assistant, "It shipped.", 0, None),
                (Role::User, "and B-2?", 0, None),
                (Role::Assistant, "Let me look.", 1, None),
                (Role::Tool, "", 0, Some("c3")),
                // Asked after the last message: at the end.
                (Role::Assistant, "", 1, None),
                (Role::Tool, "", 0, Some("c4")),
            ]
        );
    }
}
