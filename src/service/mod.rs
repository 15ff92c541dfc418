//! The server-side API for the product's backend (`/v1/service/*`): what
//! its requests may say, checked here, and the transcript as text. Pure.
//!
//! The caller holds the service credential (`SERVICE_TOKEN`, or a token
//! with `SERVICE_ROLE`), which reaches every session; the session object
//! treats it as it treats an admin.

use crate::desk::{Action, Status};
use crate::error::AppError;
use crate::ids::{is_valid_user_id, ClientId};
use crate::protocol::{Author, AuthorKind, MessageView};
use serde::Deserialize;

/// Who a posted message is from.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum As {
    /// The system (author id `system`); `name` is optional.
    System,
    /// A named bot: author kind `system`, id `bot:<id>`. It neither
    /// starts an assistant turn nor counts as an agent's reply.
    Bot,
    /// A person on the product's side (author kind `agent`): times the
    /// first agent reply as a socket's message would.
    Agent,
}

/// The id prefix of a bot's messages.
pub const BOT_PREFIX: &str = "bot:";
/// Longest author name.
pub const MAX_NAME_CHARS: usize = 100;

/// `POST /v1/service/sessions/{id}/messages`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Post {
    pub client_id: String,
    pub text: String,
    #[serde(rename = "as")]
    pub author: As,
    /// The bot's or agent's id (not for `system`).
    pub id: Option<String>,
    pub name: Option<String>,
}

impl Post {
    /// The checked message: its client id, author and text.
    pub fn checked(self, max_chars: usize) -> Result<(ClientId, Author, String), AppError> {
        let client_id = ClientId::parse(self.client_id)
            .map_err(|r| AppError::bad_request("invalid_client_id", r.message()))?;
        let chars = self.text.chars().count();
        if self.text.trim().is_empty() || chars > max_chars {
            return Err(AppError::bad_request(
                "invalid_text",
                format!("text must be 1-{max_chars} characters, not only spaces"),
            ));
        }
        let name =
            match self.name {
                None => None,
                Some(n) if is_valid_name(&n) => Some(n),
                Some(_) => return Err(AppError::bad_request(
                    "invalid_name",
                    "name must be 1-100 characters, no control characters or surrounding spaces",
                )),
            };
        let id_needed = || {
            AppError::bad_request(
                "invalid_user_id",
                "a bot or agent needs an id: 1-128 characters, no control characters or surrounding spaces",
            )
        };
        let author = match self.author {
            As::System if self.id.is_some() => {
                return Err(AppError::bad_request(
                    "invalid_user_id",
                    "a system message has no id",
                ))
            }
            As::System => Author {
                id: "system".into(),
                name: name.unwrap_or_else(|| "system".into()),
                kind: AuthorKind::System,
            },
            As::Bot | As::Agent => {
                let id = self
                    .id
                    .filter(|i| is_valid_user_id(i))
                    .ok_or_else(id_needed)?;
                let (id, kind) = match self.author {
                    As::Bot => (format!("{BOT_PREFIX}{id}"), AuthorKind::System),
                    _ => (id, AuthorKind::Agent),
                };
                Author {
                    name: name.unwrap_or_else(|| id.clone()),
                    id,
                    kind,
                }
            }
        };
        Ok((client_id, author, self.text))
    }
}

fn is_valid_name(n: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&n.chars().count())
        && n.trim() == n
        && !n.chars().any(char::is_control)
}

/// `POST /v1/service/sessions/{id}/status`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SetStatus {
    pub status: Status,
    /// With `assigned`: the agent's user id.
    pub assignee: Option<String>,
}

impl SetStatus {
    /// The desk action that reaches the status.
    pub fn action(self) -> Result<Action, AppError> {
        let stray = || {
            AppError::bad_request(
                "invalid_assignee",
                "assignee goes with status assigned only",
            )
        };
        match (self.status, self.assignee) {
            (Status::Assigned, Some(a)) if is_valid_user_id(&a) => Ok(Action::transfer_to(a)),
            (Status::Assigned, _) => Err(AppError::bad_request(
                "invalid_assignee",
                "status assigned needs the agent's user id as assignee",
            )),
            (_, Some(_)) => Err(stray()),
            (Status::Open, None) => Ok(Action::Release),
            (Status::Waiting, None) => Ok(Action::Escalate),
            (Status::Resolved, None) => Ok(Action::Resolve),
            (Status::Closed, None) => Ok(Action::Close),
        }
    }
}

/// The transcript as plain text: a line per message,
/// `[timestamp] name (kind): text`, in order. Deleted messages show as
/// such; a text's own line breaks are kept, indented, so each message
/// still starts a line with `[`.
pub fn transcript_text(messages: &[MessageView]) -> String {
    let mut out = String::new();
    for m in messages {
        // A function call's message says which kind it is, not its author's.
        let kind = m.tool.as_ref().map_or(m.author.kind.as_str(), |t| t.kind());
        let ts = crate::webhooks::rfc3339(m.created_at);
        let text = if m.deleted {
            "(deleted)".to_string()
        } else if let Some(code) = &m.unreadable {
            format!("(unreadable: {code})")
        } else {
            // A poll shows its options and counts after its question.
            let text = match (&m.poll, &m.tool) {
                (Some(p), _) => p.describe(&m.text),
                (None, Some(t)) => t.describe(),
                (None, None) => m.text.clone(),
            };
            text.replace("\r\n", "\n").replace('\n', "\n    ")
        };
        out.push_str(&format!("[{ts}] {} ({kind}): {text}\n", m.author.name));
    }
    out
}

#[cfg(test)]
mod tests;
