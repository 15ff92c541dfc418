//! WebSocket frames: one JSON object per text frame, tagged by `type`.
//! Pure: serde types, decoding with stable error codes, and input limits.
//! docs/protocol.md is the contract; keep the two in step.

use crate::ids::{is_valid_client_id, ClientId};
use serde::{Deserialize, Serialize};

/// Largest seq accepted anywhere (frames and query parameters): 2^53 − 1,
/// JavaScript's largest safe integer. Larger values would round in clients
/// and wrap to negative numbers in SQLite's signed integers.
pub const MAX_SEQ: u64 = (1 << 53) - 1;
/// The assistant's author id. Its replies are told apart from any user's
/// by author kind (`assistant`), which no token can claim.
pub const ASSISTANT_AUTHOR_ID: &str = "assistant";
/// Longest reaction accepted (one emoji can be several code points).
pub const MAX_EMOJI_CHARS: usize = 16;
/// Longest function call id an `approve` or `reject` names.
pub const MAX_CALL_ID_CHARS: usize = 128;
/// Longest reason a rating of a reply may give.
pub const MAX_RATING_REASON_CHARS: usize = 500;

/// Frames a client sends: objects tagged by `type` (read by `decode`
/// through `crate::tagged`).
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientFrame {
    Send {
        client_id: ClientId,
        text: String,
        #[serde(default)]
        reply_to: Option<u64>,
        /// W3C `traceparent` the reply's turn joins (`crate::trace`); an
        /// invalid one is ignored and a new trace started.
        #[serde(default)]
        traceparent: Option<String>,
        /// Makes the message a poll asking `text` (`crate::poll`).
        #[serde(default)]
        poll: Option<crate::poll::PollSpec>,
        /// Uploads of the sender's in this session that no message carries
        /// yet (`crate::attachment`); with any, `text` may be empty.
        #[serde(default)]
        attachments: Vec<String>,
    },
    /// `client_id` (optional on `edit`, `delete` and `react`) is the
    /// change's idempotency key: a resend changes nothing again and is
    /// answered `applied` with `duplicate: true`.
    Edit {
        seq: u64,
        text: String,
        #[serde(default)]
        client_id: Option<ClientId>,
    },
    Delete {
        seq: u64,
        #[serde(default)]
        client_id: Option<ClientId>,
    },
    React {
        seq: u64,
        emoji: String,
        action: ReactAction,
        #[serde(default)]
        client_id: Option<ClientId>,
    },
    /// A user's rating of the assistant's reply `seq`, replacing their
    /// earlier one (`none` takes it back), with an optional reason.
    /// `client_id` as for `react`.
    Rate {
        seq: u64,
        rating: Rating,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        client_id: Option<ClientId>,
    },
    /// Answers the last question again: the assistant's last reply is kept,
    /// marked superseded, and a new one streams.
    Regenerate,
    /// A ballot on poll `seq`: it replaces the user's earlier one (an
    /// empty `choices` withdraws the vote). `client_id` as for `react`.
    Vote {
        seq: u64,
        choices: Vec<u32>,
        #[serde(default)]
        client_id: Option<ClientId>,
    },
    Typing,
    Read {
        seq: u64,
    },
    /// Stops the assistant's reply in progress.
    Stop,
    /// A user (or an agent) asks for a person: the session waits for an
    /// agent (`crate::desk`).
    Escalate,
    /// An agent takes the session for themselves.
    Claim,
    /// The older name of `claim`, kept for clients that use it.
    Takeover,
    /// An agent gives the session to another agent (by user id).
    Transfer {
        to: String,
    },
    /// An agent ends the conversation; the user's next message reopens it.
    Resolve,
    /// An agent hands the session back to the assistant.
    Release,
    /// An agent switches the assistant profile (`crate::llm::profile`);
    /// `default` is the configuration's.
    SetProfile {
        profile: String,
    },
    /// An agent approves the assistant's call `call_id` (one marked
    /// `needs_approval`), or rejects it.
    Approve {
        call_id: String,
    },
    Reject {
        call_id: String,
    },
    Ping,
}

impl ClientFrame {
    /// Whether the frame says something others see: what a muted user
    /// may not do (`crate::moderation`). Reading, stopping the assistant
    /// and asking for a human stay open to them.
    pub fn speaks(&self) -> bool {
        matches!(
            self,
            ClientFrame::Send { .. }
                | ClientFrame::Edit { .. }
                | ClientFrame::Delete { .. }
                | ClientFrame::React { .. }
                | ClientFrame::Vote { .. }
                | ClientFrame::Rate { .. }
                | ClientFrame::Regenerate
                | ClientFrame::Typing
        )
    }

    /// The idempotency key of a `send`, `edit`, `delete` or `react`.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            ClientFrame::Send { client_id, .. } => Some(client_id.as_str()),
            ClientFrame::Edit { client_id, .. }
            | ClientFrame::Delete { client_id, .. }
            | ClientFrame::React { client_id, .. }
            | ClientFrame::Rate { client_id, .. }
            | ClientFrame::Vote { client_id, .. } => client_id.as_deref(),
            _ => None,
        }
    }

    /// The frame's `type`, for metrics.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientFrame::Send { .. } => "send",
            ClientFrame::Edit { .. } => "edit",
            ClientFrame::Delete { .. } => "delete",
            ClientFrame::React { .. } => "react",
            ClientFrame::Vote { .. } => "vote",
            ClientFrame::Rate { .. } => "rate",
            ClientFrame::Regenerate => "regenerate",
            ClientFrame::Typing => "typing",
            ClientFrame::Read { .. } => "read",
            ClientFrame::Stop => "stop",
            ClientFrame::Escalate => "escalate",
            ClientFrame::Claim => "claim",
            ClientFrame::Takeover => "takeover",
            ClientFrame::Transfer { .. } => "transfer",
            ClientFrame::Resolve => "resolve",
            ClientFrame::Release => "release",
            ClientFrame::SetProfile { .. } => "set_profile",
            ClientFrame::Approve { .. } => "approve",
            ClientFrame::Reject { .. } => "reject",
            ClientFrame::Ping => "ping",
        }
    }
}

const CLIENT_TYPES: &[&str] = &[
    "send",
    "edit",
    "delete",
    "react",
    "vote",
    "rate",
    "regenerate",
    "typing",
    "read",
    "stop",
    "escalate",
    "claim",
    "takeover",
    "transfer",
    "resolve",
    "release",
    "set_profile",
    "approve",
    "reject",
    "ping",
];

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReactAction {
    Add,
    Remove,
}

impl ReactAction {
    /// Both actions (the JS client's types are checked against this).
    pub const ALL: [ReactAction; 2] = [ReactAction::Add, ReactAction::Remove];
}

/// A user's verdict on an assistant reply.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    Up,
    Down,
    /// Takes a rating back.
    None,
}

impl Rating {
    pub const ALL: [Rating; 3] = [Rating::Up, Rating::Down, Rating::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Up => "up",
            Rating::Down => "down",
            Rating::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Rating> {
        Rating::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Who wrote a message.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthorKind {
    User,
    Assistant,
    Agent,
    System,
}

impl AuthorKind {
    /// Every kind (the JS client's types are checked against this).
    pub const ALL: [AuthorKind; 4] = [
        AuthorKind::User,
        AuthorKind::Assistant,
        AuthorKind::Agent,
        AuthorKind::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthorKind::User => "user",
            AuthorKind::Assistant => "assistant",
            AuthorKind::Agent => "agent",
            AuthorKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => AuthorKind::User,
            "assistant" => AuthorKind::Assistant,
            "agent" => AuthorKind::Agent,
            "system" => AuthorKind::System,
            _ => return None,
        })
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub id: String,
    pub name: String,
    pub kind: AuthorKind,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    pub id: String,
    pub name: String,
}

/// A message as clients see it, live and in history.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    pub seq: u64,
    pub id: String,
    pub client_id: Option<String>,
    pub author: Author,
    /// Empty for a deleted message.
    pub text: String,
    pub reply_to: Option<u64>,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub deleted: bool,
    /// An assistant reply answered again (`regenerate`); kept, and left
    /// out of the assistant's prompts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub superseded: bool,
    /// Set when a moderator removed the message (it is then `deleted`
    /// too): who, why and when.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub removed: Option<crate::moderation::Removal>,
    /// Set when the stored text could not be decrypted (text is then
    /// empty): `ciphertext_tampered`, `ciphertext_unknown_key`, …
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unreadable: Option<String>,
    /// For assistant messages: provider, usage and how the reply ended.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub turn: Option<TurnMeta>,
    /// Emoji → user ids, in history and resume replay.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub reactions: Vec<ReactionSummary>,
    /// Set when the message is a poll: its options and tally.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub poll: Option<crate::poll::PollView>,
    /// Files the message carries (`crate::attachment`), in the order sent.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attachments: Vec<crate::attachment::AttachmentView>,
    /// The people it mentions (`crate::mention`), resolved when sent.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub mentions: Vec<UserRef>,
    /// Set on the messages of the assistant's function calls: `kind`
    /// (`tool_call` or `tool_result`) and what the message carries. Absent
    /// on everything else, whose `kind` is then `message`. Agents see
    /// these; users only when the profile shows them.
    #[serde(flatten)]
    pub tool: Option<ToolMessage>,
}

/// What a message of the assistant's function calls carries, by `kind`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToolMessage {
    /// The assistant asked for a call.
    ToolCall { call: CallPart },
    /// What a call came to.
    ToolResult { result: ResultPart },
}

/// A function call the assistant asked for, as its message shows it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CallPart {
    pub id: String,
    pub name: String,
    /// Null when they cannot be opened (the message's `unreadable` says
    /// why).
    pub arguments: serde_json::Value,
    /// `approved`, `rejected` or `timed_out`, once a call that needed a
    /// person's approval is decided (live, the `approval` frame says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
}

/// A call's result, as its message shows it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ResultPart {
    pub call_id: String,
    pub name: String,
    /// Empty when it cannot be opened (the message's `unreadable` says why).
    pub content: String,
    pub is_error: bool,
}

impl ToolMessage {
    /// The kind's name (`kind` in the message).
    pub fn kind(&self) -> &'static str {
        match self {
            ToolMessage::ToolCall { .. } => "tool_call",
            ToolMessage::ToolResult { .. } => "tool_result",
        }
    }

    /// In words, for text transcripts: `lookup_order {"order":"A-1"}
    /// (approved)`, `lookup_order answered: …` or `… failed: …`.
    pub fn describe(&self) -> String {
        match self {
            ToolMessage::ToolCall { call } => {
                let decided = call.decision.as_deref().map(|d| format!(" ({d})"));
                format!(
                    "{} {}{}",
                    call.name,
                    call.arguments,
                    decided.unwrap_or_default()
                )
            }
            ToolMessage::ToolResult { result } => {
                let how = if result.is_error {
                    "failed"
                } else {
                    "answered"
                };
                format!("{} {how}: {}", result.name, result.content)
            }
        }
    }
}

impl MessageView {
    /// A message of the assistant's function calls: the assistant's, with
    /// no text.
    pub fn tool(
        (seq, id, created_at): (u64, String, i64),
        assistant: &str,
        tool: ToolMessage,
        unreadable: Option<String>,
    ) -> MessageView {
        MessageView {
            seq,
            id,
            client_id: None,
            author: Author {
                id: ASSISTANT_AUTHOR_ID.to_string(),
                name: assistant.to_string(),
                kind: AuthorKind::Assistant,
            },
            text: String::new(),
            reply_to: None,
            created_at,
            edited_at: None,
            deleted: false,
            superseded: false,
            removed: None,
            unreadable,
            turn: None,
            reactions: Vec::new(),
            poll: None,
            attachments: Vec::new(),
            mentions: Vec::new(),
            tool: Some(tool),
        }
    }
}

fn default_profile() -> String {
    crate::llm::DEFAULT_PROFILE.to_string()
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What an assistant reply cost and how it ended.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TurnMeta {
    /// The assistant profile the reply was written under.
    #[serde(default = "default_profile")]
    pub profile: String,
    pub provider: String,
    pub model: String,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// Prompt tokens the provider read from its cache (part of `tokens_in`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tokens_cached: u64,
    /// What the reply cost, in US dollars, when `LLM_PRICES` prices its
    /// model (absent otherwise: unknown, not free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<crate::llm::price::Usd>,
    /// Time to first token, from the start of the turn.
    pub ttft_ms: u64,
    pub latency_ms: u64,
    pub finish_reason: String,
    /// True when the reply was cut short (stopped, or failed midway).
    pub incomplete: bool,
}

/// A function call as agents are shown it.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct ToolCallView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub arguments: &'a serde_json::Value,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ReactionSummary {
    pub emoji: String,
    pub users: Vec<String>,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct PresenceEntry {
    pub user: UserRef,
    pub devices: usize,
}

/// A user's read position.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ReadPosition {
    pub user_id: String,
    pub seq: u64,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Joined,
    Left,
}

/// Frames the server sends. Each is serialized once and the same string goes
/// to every recipient.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Hello {
        you: &'a UserRef,
        session: &'a str,
        last_seq: u64,
        present: Vec<PresenceEntry>,
        reads: Vec<ReadPosition>,
        /// Where the session stands on the desk, and who has it.
        status: crate::desk::Status,
        assignee: Option<&'a UserRef>,
        /// The session's latest change (edit, deletion, reaction, vote)
        /// number.
        last_change: u64,
        /// The assistant profile its replies are written under.
        profile: &'a str,
    },
    Message(&'a MessageView),
    Ack {
        client_id: &'a str,
        seq: u64,
        id: &'a str,
        /// True when this `client_id` was already stored: a retry.
        duplicate: bool,
    },
    /// Sent once after a resume replay: every message up to `last_seq`
    /// and every change up to `last_change` has been delivered, and live
    /// traffic follows.
    Synced {
        last_seq: u64,
        last_change: u64,
    },
    /// `change` (in `edited`, `deleted`, `reaction`, `poll`) is the change's place
    /// in the session's change stream: 1, 2, 3, … (`?changes=` resumes
    /// after it).
    Edited {
        seq: u64,
        text: &'a str,
        edited_at: i64,
        change: u64,
    },
    Deleted {
        seq: u64,
        deleted_at: i64,
        change: u64,
        /// Set when a moderator removed it rather than its author.
        #[serde(skip_serializing_if = "Option::is_none")]
        removed: Option<&'a crate::moderation::Removal>,
    },
    Reaction {
        seq: u64,
        emoji: &'a str,
        user: &'a UserRef,
        action: ReactAction,
        change: u64,
    },
    /// The rater's own sockets: their rating of reply `seq` is now
    /// `rating` (ratings are private to the rater and to admins).
    Rated {
        seq: u64,
        rating: Rating,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
    },
    /// An agent switched the assistant profile: the next reply is written
    /// under it.
    Profile {
        profile: &'a str,
        by: &'a UserRef,
    },
    /// To agents: call `call_id` waits for an agent's `approve` or
    /// `reject` until `expires_at`.
    ApprovalRequest {
        call: ToolCallView<'a>,
        expires_at: i64,
    },
    /// To users: the assistant waits for a person to approve a call
    /// (until `expires_at`); what the call is, they are not shown.
    AwaitingApproval {
        call_id: &'a str,
        expires_at: i64,
    },
    /// To everyone: call `call_id` was approved, rejected (by `by`), or
    /// nobody decided in time (`timed_out`).
    Approval {
        call_id: &'a str,
        decision: &'a str,
        by: Option<&'a UserRef>,
    },
    /// The assistant's reply `seq` was superseded by a regenerated one.
    Superseded {
        seq: u64,
        change: u64,
    },
    /// Poll `seq`'s tally changed (a vote, or the poll closed): the
    /// tally as it is now. `mine` only in frames to the voter's sockets
    /// and in replays.
    Poll {
        seq: u64,
        tally: &'a crate::poll::Tally,
        change: u64,
    },
    /// To the sender of an `edit`, `delete`, `react` or `vote` that carried a
    /// `client_id`: it took effect as `change` (null: it changed nothing,
    /// e.g. a reaction already there), or it had already (`duplicate`).
    Applied {
        client_id: &'a str,
        change: Option<u64>,
        duplicate: bool,
    },
    /// Someone mentioned you in another of your sessions
    /// (`crate::mention`): where, who, and the start of the message.
    Mention {
        session: &'a str,
        seq: u64,
        message_id: &'a str,
        by: &'a UserRef,
        text: &'a str,
    },
    Typing {
        user: &'a UserRef,
    },
    Presence {
        user: &'a UserRef,
        status: PresenceStatus,
        devices: usize,
    },
    Receipt {
        user: &'a UserRef,
        seq: u64,
    },
    /// The assistant started a reply (`text` empty), or, for a socket that
    /// joins mid-reply, the reply so far; `delta`s continue from `index`.
    Turn {
        message_id: &'a str,
        author: &'a Author,
        text: &'a str,
        index: u64,
    },
    /// Who answers: `assistant`, or `human` after an agent took over.
    Mode {
        mode: &'a str,
        by: &'a UserRef,
    },
    /// The session's desk state changed (`crate::desk`); `by` is who
    /// changed it (null: Confab itself, e.g. the idle close). Named `desk`
    /// because clients already use `status` for their connection state.
    Desk {
        status: crate::desk::Status,
        assignee: Option<&'a UserRef>,
        waiting_since: Option<i64>,
        first_agent_reply_at: Option<i64>,
        resolved_at: Option<i64>,
        by: Option<&'a UserRef>,
    },
    /// The next piece of the assistant's reply.
    Delta {
        message_id: &'a str,
        index: u64,
        text: &'a str,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
        /// For `rate_limited`: when to try again.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Pong,
}

impl ServerFrame<'_> {
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).expect("server frame serializes")
    }
}

/// The connection parameter (`?batch=1`) with which a client asks for
/// `batch` frames.
pub const BATCH_PARAM: &str = "batch";

/// A `batch` frame: `{"type":"batch","frames":[…]}`, carrying frames
/// already serialized (the `message` frames of messages committed
/// together, in seq order), so each is serialized once whoever gets it.
/// Sent only to sockets that asked for it; others get the frames one by one.
pub fn batch_frame(frames: &[String]) -> String {
    let len = frames.iter().map(|f| f.len() + 1).sum::<usize>();
    let mut out = String::with_capacity(len + 32);
    out.push_str(r#"{"type":"batch","frames":["#);
    out.push_str(&frames.join(","));
    out.push_str("]}");
    out
}

/// The connection parameter (`?changes=N`, with `after`) with which a
/// resuming client asks for the changes after change `N` to messages it
/// already has.
pub const CHANGES_PARAM: &str = "changes";

/// The exact ping frame clients send for keep-alive; the runtime answers it
/// with `PONG_FRAME` without waking the session object.
pub const PING_FRAME: &str = r#"{"type":"ping"}"#;
pub const PONG_FRAME: &str = r#"{"type":"pong"}"#;

mod decode;
pub use decode::{decode, validate_text, FrameError, Limits};

#[cfg(test)]
mod tests;
