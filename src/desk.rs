//! The support desk's session lifecycle, pure: who handles a session
//! (the assistant, a waiting queue, an agent), the moves between those
//! stages and who may make them, and the times an inbox shows.
//!
//! ```text
//!            escalate              claim / transfer
//!   open ─────────────▶ waiting ─────────────────▶ assigned
//!    ▲ ▲  release        │  │ release               │ │
//!    │ └─────────────────┘  └── (to open) ◀─────────┘ │ resolve
//!    │ a user's message                                ▼
//!    └──────────────────────────────────────────── resolved
//!   any stage but closed ── idle for SESSION_IDLE_CLOSE_MINUTES ──▶ closed
//! ```
//!
//! `closed` is final: the transcript stays readable, and every write is
//! refused with `session_closed`. A resolved session reopens on the
//! user's next message; a closed one does not (the user starts a new
//! one). The mode (`assistant` or `human`) follows from the stage: a
//! session is `human` exactly while an agent has it.
//!
//! The session object stores a [`Desk`] in its log and carries out what
//! [`Desk::apply`] decides (`session/desk.rs`); D1 gets a copy with the
//! next flush, for the listing and `/metrics`.

use crate::contract::Mode;
use crate::protocol::UserRef;
use serde::{Deserialize, Serialize};

pub mod feed;

/// A session's status, as the API, frames and D1 show it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The assistant handles it.
    Open,
    /// The user (or an operator) asked for a person; no agent has it yet.
    Waiting,
    /// An agent has it; the assistant is quiet.
    Assigned,
    /// An agent ended it; the user's next message reopens it.
    Resolved,
    /// Ended for good (idle too long): read-only.
    Closed,
}

impl Status {
    /// Every status (the JS client's types and D1's CHECK are checked
    /// against this).
    pub const ALL: [Status; 5] = [
        Status::Open,
        Status::Waiting,
        Status::Assigned,
        Status::Resolved,
        Status::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Waiting => "waiting",
            Status::Assigned => "assigned",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Where a session stands. The data each stage needs lives in it, so no
/// combination of fields can contradict the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    Open,
    /// `told`: the user has been told that no agent claimed it in time.
    Waiting {
        told: bool,
    },
    /// `None` only for a session taken over before assignees were
    /// recorded; any agent may claim it.
    Assigned(Option<UserRef>),
    Resolved,
    Closed,
}

impl Stage {
    pub fn status(&self) -> Status {
        match self {
            Stage::Open => Status::Open,
            Stage::Waiting { .. } => Status::Waiting,
            Stage::Assigned(_) => Status::Assigned,
            Stage::Resolved => Status::Resolved,
            Stage::Closed => Status::Closed,
        }
    }
}

/// The times an inbox shows (unix ms). `waiting_since` is when the current
/// or last wait began; `first_agent_reply_at` the first message an agent
/// posted in the session; `resolved_at` the last resolution (cleared when
/// the session reopens).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Times {
    pub waiting_since: Option<i64>,
    pub first_agent_reply_at: Option<i64>,
    pub resolved_at: Option<i64>,
}

/// The desk state as the API and the object's replies show it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub status: Status,
    pub assignee: Option<UserRef>,
    pub waiting_since: Option<i64>,
    pub first_agent_reply_at: Option<i64>,
    pub resolved_at: Option<i64>,
}

impl View {
    /// Who answers: an agent while the session is assigned.
    pub fn mode(&self) -> Mode {
        match self.status {
            Status::Assigned => Mode::Human,
            _ => Mode::Assistant,
        }
    }
}

/// A session's desk state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desk {
    pub stage: Stage,
    pub times: Times,
    /// When the stage last changed.
    pub changed_at: i64,
}

/// What someone asks of the desk. On the Worker-to-object contract it is
/// serde's external tagging: `"claim"`, `{"transfer":{"to":{…}}}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Ask for a person.
    Escalate,
    /// Take the session for oneself.
    Claim,
    /// Give it to another agent.
    Transfer { to: UserRef },
    /// End it.
    Resolve,
    /// Hand it back to the assistant.
    Release,
    /// End it for good (the idle alarm).
    Close,
}

impl Action {
    /// A transfer to the agent with user id `id`. Their name is not known
    /// yet: the session object takes it from a socket of theirs, if any
    /// (names come from tokens), else it stays their id.
    pub fn transfer_to(id: String) -> Action {
        Action::Transfer {
            to: UserRef {
                name: id.clone(),
                id,
            },
        }
    }
}

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// The session's owner or a member, from their socket.
    User(&'a UserRef),
    /// An agent (the admin role), from a socket or the admin API.
    Agent(&'a UserRef),
    /// Confab itself: the idle alarm.
    System,
    /// The assistant, through its built-in functions
    /// (`escalate_to_human`, `end_conversation`).
    Assistant(&'a UserRef),
}

/// Why an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Another agent has the session (a claim lost the race).
    AlreadyAssigned,
    /// The session is closed: nothing changes it any more.
    Closed,
    /// Only agents claim, transfer, resolve or release.
    NotAnAgent,
}

/// An action's result: the new state, or None when it was already so (an
/// idempotent repeat: nothing to store or announce).
pub type Applied = Result<Option<Desk>, Refused>;

impl Desk {
    pub fn new(now: i64) -> Desk {
        Desk {
            stage: Stage::Open,
            times: Times::default(),
            changed_at: now,
        }
    }

    pub fn status(&self) -> Status {
        self.stage.status()
    }

    pub fn view(&self) -> View {
        View {
            status: self.status(),
            assignee: self.assignee().cloned(),
            waiting_since: self.times.waiting_since,
            first_agent_reply_at: self.times.first_agent_reply_at,
            resolved_at: self.times.resolved_at,
        }
    }

    /// Who answers: an agent while the session is assigned, else the
    /// assistant.
    pub fn mode(&self) -> Mode {
        self.view().mode()
    }

    /// The agent who has the session, if known.
    pub fn assignee(&self) -> Option<&UserRef> {
        match &self.stage {
            Stage::Assigned(a) => a.as_ref(),
            _ => None,
        }
    }

    /// Whether the assistant answers a user's message now. While waiting it
    /// answers when `while_waiting` says so, and again once the user was
    /// told that nobody claimed the session in time.
    pub fn assistant_answers(&self, while_waiting: bool) -> bool {
        match self.stage {
            Stage::Open | Stage::Resolved => true,
            Stage::Waiting { told } => while_waiting || told,
            Stage::Assigned(_) | Stage::Closed => false,
        }
    }

    fn to(&self, stage: Stage, now: i64) -> Desk {
        Desk {
            stage,
            times: self.times,
            changed_at: now,
        }
    }

    /// Decides `action` by `actor` at `now`. Users may only escalate, the
    /// system only closes, the assistant escalates or resolves; agents may
    /// do anything.
    pub fn apply(&self, action: &Action, actor: Actor, now: i64) -> Applied {
        if self.stage == Stage::Closed {
            return Err(Refused::Closed);
        }
        let allowed = match actor {
            Actor::Agent(_) => true,
            Actor::User(_) => *action == Action::Escalate,
            Actor::System => *action == Action::Close,
            Actor::Assistant(_) => matches!(action, Action::Escalate | Action::Resolve),
        };
        if !allowed {
            return Err(Refused::NotAnAgent);
        }
        let next = match action {
            Action::Close => self.to(Stage::Closed, now),
            Action::Escalate => match self.stage {
                Stage::Open | Stage::Resolved => {
                    let mut d = self.to(Stage::Waiting { told: false }, now);
                    d.times.waiting_since = Some(now);
                    d.times.resolved_at = None;
                    d
                }
                // Already waiting, or a person already has it.
                _ => return Ok(None),
            },
            Action::Claim => {
                let Actor::Agent(me) = actor else {
                    return Err(Refused::NotAnAgent);
                };
                match &self.stage {
                    Stage::Assigned(Some(a)) if a.id == me.id => return Ok(None),
                    Stage::Assigned(Some(_)) => return Err(Refused::AlreadyAssigned),
                    _ => self.assigned(me, now),
                }
            }
            Action::Transfer { to } => match &self.stage {
                Stage::Assigned(Some(a)) if a.id == to.id => return Ok(None),
                _ => self.assigned(to, now),
            },
            Action::Resolve => match self.stage {
                Stage::Resolved => return Ok(None),
                _ => {
                    let mut d = self.to(Stage::Resolved, now);
                    d.times.resolved_at = Some(now);
                    d
                }
            },
            Action::Release => match self.stage {
                Stage::Waiting { .. } | Stage::Assigned(_) => self.to(Stage::Open, now),
                _ => return Ok(None),
            },
        };
        Ok(Some(next))
    }

    fn assigned(&self, agent: &UserRef, now: i64) -> Desk {
        let mut d = self.to(Stage::Assigned(Some(agent.clone())), now);
        d.times.resolved_at = None;
        d
    }

    /// What a new message by an author of `kind` changes: a user's message
    /// reopens a resolved session; an agent's first message sets the first
    /// reply time. Err when the session is closed (the message is refused).
    pub fn on_message(&self, kind: crate::protocol::AuthorKind, now: i64) -> Applied {
        use crate::protocol::AuthorKind as K;
        match (&self.stage, kind) {
            (Stage::Closed, _) => Err(Refused::Closed),
            (Stage::Resolved, K::User) => {
                let mut d = self.to(Stage::Open, now);
                d.times.resolved_at = None;
                Ok(Some(d))
            }
            (_, K::Agent) if self.times.first_agent_reply_at.is_none() => {
                let mut d = self.clone();
                d.times.first_agent_reply_at = Some(now);
                Ok(Some(d))
            }
            _ => Ok(None),
        }
    }

    /// When the user must be told that nobody claimed the session, if it
    /// is waiting and they have not been told.
    pub fn escalation_due(&self, timeout_ms: i64) -> Option<i64> {
        match self.stage {
            Stage::Waiting { told: false } => {
                Some(self.times.waiting_since.unwrap_or(self.changed_at) + timeout_ms)
            }
            _ => None,
        }
    }

    /// The session was told that nobody came: it stays waiting (agents
    /// still see it in the queue), with the assistant back on.
    pub fn told(&self) -> Option<Desk> {
        match self.stage {
            Stage::Waiting { told: false } => Some(Desk {
                stage: Stage::Waiting { told: true },
                ..self.clone()
            }),
            _ => None,
        }
    }

    /// When a session last active at `last_activity` closes for being idle
    /// (`idle_ms` 0: never).
    pub fn idle_close_due(&self, last_activity: i64, idle_ms: i64) -> Option<i64> {
        (idle_ms > 0 && self.stage != Stage::Closed).then_some(last_activity + idle_ms)
    }
}

#[cfg(test)]
mod tests;
