//! Moderation: reports, removals and sanctions. Pure.
//!
//! - **Reports.** A member reports a message of someone else's with a
//!   [`Reason`] (`POST /v1/sessions/{id}/reports`). Reports wait in the
//!   home shard's `reports` table (`migrations/0013_moderation.sql`), one
//!   per message and reporter, until a moderator removes the message or
//!   dismisses them. The admin API lists them grouped by message, oldest
//!   first: the moderation queue (`GET /v1/admin/reports`).
//! - **Removals.** A moderator (an admin) removes a message: it becomes a
//!   tombstone like a deletion, except that everyone sees who removed it
//!   and why ([`Removal`]), and the original text is kept, sealed as it
//!   was, in the session log's `removals` table for audit (read back
//!   through `GET /v1/admin/sessions/{id}/moderation`, itself audited).
//! - **Sanctions.** A moderator mutes or bans a user from a session, for a
//!   duration or until lifted ([`Sanction`]). A muted user's writes (send,
//!   edit, delete, react, vote) are refused with `muted`; a banned user's
//!   sockets close with 4003 and every route of the session answers 403
//!   `banned` to them. Both end by themselves when their time is up.
//!
//! - **Blocks.** A user blocks another (`PUT /v1/me/blocks/{user}`): in
//!   every session the blocker owns or belongs to, the blocked user's
//!   messages (and edits of them) are hidden from the blocker, live, in
//!   history and in resume. The home shard keeps the list (`blocks`); each
//!   session's object keeps its members' lists, handed to it when a block
//!   changes (to the [`BLOCK_FANOUT_SESSIONS`] sessions the blocker was
//!   most recently active in), when the session is created and when a
//!   member is added, so no D1 read lies on the way to a socket or a page.
//!
//! Every moderation route but the report is an admin route, so each call
//! is in the audit trail (`crate::audit`) with who made it, when and on
//! which session.

use crate::error::AppError;
use crate::protocol::UserRef;
use serde::{Deserialize, Serialize};

/// What the moderation routes do, one route each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// A member reports a message.
    Report,
    /// The queue: messages with open reports.
    Queue,
    /// Remove a message, closing its reports.
    Remove,
    /// Close a message's reports, keeping it.
    Dismiss,
    /// A session's removals (with their originals) and sanctions.
    Record,
    Sanction,
    /// Lift a user's sanctions in a session.
    Lift,
    /// The pre-send filter's decisions.
    FilterLog,
    /// Deployment-wide sanctions: put one in force, list, lift.
    Ban,
    Bans,
    Unban,
    /// The caller's blocks: list, add, remove.
    Blocks,
    Block,
    Unblock,
}

/// Why a message is reported or removed: a closed set, so clients can
/// show it in their own words.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Spam,
    Harassment,
    /// Hateful, violent or sexual content.
    Abuse,
    Other,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::Spam,
        Reason::Harassment,
        Reason::Abuse,
        Reason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Spam => "spam",
            Reason::Harassment => "harassment",
            Reason::Abuse => "abuse",
            Reason::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A removed message's tombstone: who removed it, why and when. Shown
/// with the message (`removed`) in history, live and in replay.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub by: UserRef,
    pub reason: Reason,
    pub at: i64,
}

/// What a sanction stops.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// May read, not write.
    Mute,
    /// May not reach the session at all.
    Ban,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mute => "mute",
            Kind::Ban => "ban",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Mute, Kind::Ban]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// The error code a sanctioned user meets.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Mute => "muted",
            Kind::Ban => "banned",
        }
    }
}

/// A sanction on a user in a session.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Sanction {
    pub user_id: String,
    pub kind: Kind,
    /// When it ends (unix ms); None: until a moderator lifts it.
    pub until: Option<i64>,
    pub reason: Reason,
    pub by: UserRef,
    pub at: i64,
}

impl Sanction {
    pub fn active(&self, now: i64) -> bool {
        self.until.is_none_or(|u| now < u)
    }

    /// The refusal the sanctioned user gets at `now`.
    pub fn refusal(&self, now: i64) -> AppError {
        AppError::Sanctioned {
            kind: self.kind,
            retry_after_ms: self.until.map(|u| u.saturating_sub(now).max(0) as u64),
        }
    }
}

/// A sanction as both stores keep it (the session log's `sanctions` and
/// the home shard's): text columns, read back here.
#[derive(Deserialize)]
pub struct SanctionRow {
    pub user_id: String,
    pub kind: String,
    pub until: Option<i64>,
    pub reason: String,
    pub by_id: String,
    pub by_name: String,
    pub at: i64,
}

/// Its columns, in the order both stores' queries name them.
pub const SANCTION_COLUMNS: &str = "user_id, kind, until, reason, by_id, by_name, at";

impl SanctionRow {
    /// None for a kind this build does not know.
    pub fn sanction(self) -> Option<Sanction> {
        Some(Sanction {
            user_id: self.user_id,
            kind: Kind::parse(&self.kind)?,
            until: self.until,
            reason: Reason::parse(&self.reason).unwrap_or(Reason::Other),
            by: UserRef {
                id: self.by_id,
                name: self.by_name,
            },
            at: self.at,
        })
    }
}

/// The strongest sanction of `kind` on `user_id` active at `now`, if any
/// (a ban also stops writing).
pub fn find<'a>(all: &'a [Sanction], user_id: &str, kind: Kind, now: i64) -> Option<&'a Sanction> {
    all.iter()
        .filter(|s| s.user_id == user_id && s.active(now))
        .filter(|s| s.kind == kind || s.kind == Kind::Ban)
        // The one that lasts longest speaks for them all.
        .max_by_key(|s| s.until.unwrap_or(i64::MAX))
}

/// The most users one user may block: each session object is handed a
/// member's whole list in one call.
pub const MAX_BLOCKS: u32 = 100;

/// The most sessions a change of someone's blocks is handed to at once.
pub const BLOCK_FANOUT_SESSIONS: u32 = 500;

/// Whether a message by `author` is hidden from a reader blocking
/// `blocked`: only people (users and agents) can be blocked, never the
/// assistant or the system.
pub fn hidden(
    blocked: &std::collections::HashSet<String>,
    author: &crate::protocol::Author,
) -> bool {
    use crate::protocol::AuthorKind;
    matches!(author.kind, AuthorKind::User | AuthorKind::Agent) && blocked.contains(&author.id)
}

/// The longest timed sanction: a year. Longer ones are indefinite.
pub const MAX_DURATION_SECS: u64 = 365 * 24 * 3600;

/// `POST /v1/sessions/{id}/reports` body.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    pub seq: u64,
    pub reason: Reason,
}

/// `POST /v1/admin/sessions/{id}/remove` body; `dismiss` takes `seq` alone.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RemoveRequest {
    pub seq: u64,
    pub reason: Reason,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct DismissRequest {
    pub seq: u64,
}

/// `POST /v1/admin/sessions/{id}/sanctions` body.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SanctionRequest {
    pub user_id: String,
    pub kind: Kind,
    /// Seconds from now, 1 to [`MAX_DURATION_SECS`]; absent: until lifted.
    #[serde(default)]
    pub duration_secs: Option<u64>,
    pub reason: Reason,
}

impl SanctionRequest {
    /// Checks the request and gives the sanction it makes at `now`.
    pub fn into_sanction(self, by: UserRef, now: i64) -> Result<Sanction, AppError> {
        if !crate::ids::is_valid_user_id(&self.user_id) {
            return Err(crate::ids::UserId::refused());
        }
        if by.id == self.user_id {
            return Err(AppError::bad_request(
                "cannot_sanction_self",
                "a moderator cannot mute or ban themselves",
            ));
        }
        let until = match self.duration_secs {
            None => None,
            Some(s) if (1..=MAX_DURATION_SECS).contains(&s) => Some(now + s as i64 * 1000),
            Some(_) => {
                return Err(AppError::bad_request(
                    "invalid_duration",
                    format!("duration_secs must be 1-{MAX_DURATION_SECS}, or absent for no end"),
                ))
            }
        };
        Ok(Sanction {
            user_id: self.user_id,
            kind: self.kind,
            until,
            reason: self.reason,
            by,
            at: now,
        })
    }
}

/// Where a report stands.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    /// The message was removed.
    Removed,
    Dismissed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Removed => "removed",
            Status::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [Status::Open, Status::Removed, Status::Dismissed]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A report id: `rp_` and 24 hex digits.
pub fn new_report_id() -> String {
    format!("rp_{}", crate::ids::random_hex(12))
}

/// What the session object says about a reported message.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub message_id: String,
    pub author_id: String,
}

/// One message in the moderation queue: its open reports, counted by
/// reason.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct QueueItem {
    pub session_id: String,
    pub seq: u64,
    pub message_id: String,
    pub author_id: String,
    pub reports: u32,
    pub reasons: Vec<ReasonCount>,
    /// Whether the pre-send filter flagged it (one of the reports is its).
    pub by_filter: bool,
    pub first_reported_at: i64,
    pub last_reported_at: i64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ReasonCount {
    pub reason: Reason,
    pub count: u32,
}

/// Counts `reasons` (as stored, comma-separated) in [`Reason::ALL`]
/// order, leaving out those with none.
pub fn count_reasons(reasons: &str) -> Vec<ReasonCount> {
    let parsed: Vec<Reason> = reasons.split(',').filter_map(Reason::parse).collect();
    Reason::ALL
        .into_iter()
        .map(|reason| ReasonCount {
            reason,
            count: parsed.iter().filter(|r| **r == reason).count() as u32,
        })
        .filter(|c| c.count > 0)
        .collect()
}

/// Items per queue page unless `limit` says otherwise, and the most.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

/// Where a queue page starts: after the item first reported at `at`, in
/// session `session`, at `seq` (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at: i64,
    pub session: String,
    pub seq: u64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.at, self.seq, self.session)
    }

    pub fn parse(s: &str) -> Option<Cursor> {
        let mut parts = s.splitn(3, '.');
        let at = parts.next()?.parse::<i64>().ok().filter(|n| *n >= 0)?;
        let seq = parts.next()?.parse::<u64>().ok()?;
        let session = crate::ids::SessionId::parse(parts.next()?)?;
        Some(Cursor {
            at,
            session: session.as_str().to_string(),
            seq,
        })
    }
}

/// What the moderation record of a session shows an admin: every removal
/// with its original text, and every sanction still in force.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Record {
    pub removals: Vec<RemovedMessage>,
    pub sanctions: Vec<Sanction>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RemovedMessage {
    pub seq: u64,
    pub author_id: String,
    #[serde(flatten)]
    pub removal: Removal,
    /// The text as it was when removed; empty with `unreadable` set when
    /// it cannot be opened.
    pub original: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unreadable: Option<String>,
}

pub mod filter;

#[cfg(test)]
mod tests;
