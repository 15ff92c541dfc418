//! The Worker ↔ session object contract: the only place the two meet.
//!
//! Every internal request is `POST https://session.internal/<op>` (a
//! WebSocket upgrade for `connect` is a `GET` with `Upgrade: websocket`)
//! carrying one header, `x-confab-call`, whose value is the [`Call`] as
//! JSON with every non-ASCII character escaped (header values are bytes,
//! and names may be any Unicode). The object parses it once and answers
//! with JSON: the typed response named on each variant, or Confab's error
//! body with its status. The format is pinned by the tests below, so a
//! change on one side that the other does not know about fails natively.
//!
//! Who may ask is decided by the object from its own log (owner, members),
//! using [`Caller::admin`], which the Worker sets from the verified token,
//! against [`Caller::need`], the level the route table gives the route.
//! The object is reachable only through its namespace binding, i.e. from
//! Confab's own Worker, so it trusts the caller the Worker names.

use crate::protocol::{Author, MessageView, UserRef};
use crate::router::Access;
use crate::shards::Shard;
use serde::{Deserialize, Serialize};

pub const CALL_HEADER: &str = "x-confab-call";
pub const ORIGIN: &str = "https://session.internal";

/// Who is asking, as verified by the Worker.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: UserRef,
    /// Holds the admin role: sees every session, connects as an agent.
    #[serde(default)]
    pub admin: bool,
    /// The access level of the route the call serves (from the route
    /// table); the object admits the caller when their role in the session
    /// passes it (`Access::admits`). Absent, it is the strictest session
    /// level, so a caller from an older Worker is never let further.
    #[serde(default = "strictest")]
    pub need: Access,
}

fn strictest() -> Access {
    Access::Owner
}

/// How a caller relates to a session.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Member,
    /// Neither owner nor member, but holds the admin role.
    Admin,
}

impl Role {
    /// The role a caller has, or None when the session must look absent to
    /// them (neither owner, member nor admin).
    pub fn of(caller: &Caller, owner_id: &str, is_member: bool) -> Option<Role> {
        if caller.user.id == owner_id {
            Some(Role::Owner)
        } else if is_member {
            Some(Role::Member)
        } else if caller.admin {
            Some(Role::Admin)
        } else {
            None
        }
    }

    /// Owner-only operations (members, erase) are open to admins too;
    /// a member is told the session does not exist.
    pub fn may_manage(self) -> bool {
        self != Role::Member
    }
}

/// Who answers in a session.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The AI assistant answers.
    Assistant,
    /// An agent has taken over; the assistant stays quiet.
    Human,
}

impl Mode {
    /// Every mode (the JS client's types are checked against this).
    pub const ALL: [Mode; 2] = [Mode::Assistant, Mode::Human];
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Assistant => "assistant",
            Mode::Human => "human",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "assistant" => Some(Mode::Assistant),
            "human" => Some(Mode::Human),
            _ => None,
        }
    }
}

/// A ticket the connecting socket was admitted with; the object admits
/// each ticket id once.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: String,
    pub expires_at: u64,
}

/// One request from the Worker to a session object. On the wire it is
/// internally tagged by `op` (`encode`, `decode`; see `crate::tagged`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// Starts the session's log (sent once, right after the D1 row is
    /// created). Idempotent. Answers 204. An object that never got it
    /// loads the session from D1 on first use instead.
    Init {
        session: String,
        owner_id: String,
        created_at: i64,
        /// The D1 shard the Worker created the session's row in; the
        /// session replicates there for good.
        shard: Shard,
        /// The users the owner blocked (`crate::moderation`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        owner_blocks: Vec<String>,
        /// The deployment-wide sanctions on the owner in force.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        owner_sanctions: Vec<crate::moderation::Sanction>,
        /// The assistant profile it was created with; None: the default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<String>,
    },
    /// Opens a socket (`GET` with `Upgrade: websocket`). Answers 101, or
    /// 404 when the caller may not see the session.
    Connect {
        session: String,
        request_id: String,
        caller: Caller,
        /// Replay every message after this seq before going live.
        after: Option<u64>,
        /// With `after`: replay the changes after this change number to
        /// the messages up to `after` (`?changes=`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        changes: Option<u64>,
        ticket: Option<Ticket>,
        /// When the caller's token stops being accepted (unix ms; 0: never).
        expires_at: u64,
        /// The client asked for `batch` frames (`?batch=1`).
        #[serde(default)]
        batch: bool,
    },
    /// The caller's role. Answers [`AccessReply`] or 404.
    Access { session: String, caller: Caller },
    /// A page of history. Answers [`HistoryReply`] or 404.
    History {
        session: String,
        caller: Caller,
        before: Option<u64>,
        limit: u32,
        /// Only this message and the replies to it (`?thread=`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread: Option<u64>,
    },
    /// The member list (owner or admin). Answers [`MembersReply`] or 404.
    Members { session: String, caller: Caller },
    /// Adds a member (owner or admin); idempotent. Answers 204, 404, or
    /// 400 `too_many_members`.
    AddMember {
        session: String,
        caller: Caller,
        user_id: String,
        /// The users the new member blocked.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blocks: Vec<String>,
        /// The deployment-wide sanctions on the new member in force.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sanctions: Vec<crate::moderation::Sanction>,
    },
    /// Removes a member (owner or admin); their user sockets close with
    /// 4003. Answers 204, or 404 when they were not a member.
    RemoveMember {
        session: String,
        caller: Caller,
        user_id: String,
    },
    /// A support desk action by an agent (`crate::desk`): escalate,
    /// claim, transfer, resolve, release. Answers the state after it
    /// ([`crate::desk::View`]), or 409 `already_assigned` /
    /// `session_closed`.
    Desk {
        session: String,
        action: crate::desk::Action,
        by: UserRef,
    },
    /// A message from the product's backend (the service API), stored and
    /// broadcast like a socket's send, idempotent by `client_id` for the
    /// same author. Answers [`PostReply`], or 409 `session_closed`.
    Post {
        session: String,
        client_id: String,
        author: Author,
        text: String,
    },
    /// Erases the session: every socket closes with 4004 and the object's
    /// storage is deleted, leaving only a tombstone. Answers 204.
    Erase { session: String },
    /// Re-seals up to `limit` stored values under the active key. Answers
    /// [`RotateReply`].
    Rotate { session: String, limit: u32 },
    /// The object's replication state. Answers [`ReplicationReply`].
    Replication { session: String },
    /// Records an upload whose sealed bytes the Worker stored in R2
    /// (`crate::attachment`), for its uploader, admitted as a member now.
    /// Answers the attachment's view with 201, 404, or 409
    /// `already_uploaded` when the id is taken (a replayed upload URL).
    Upload {
        session: String,
        caller: Caller,
        file: crate::attachment::Stored,
    },
    /// An attachment of the session, for a download link; one a deleted
    /// message carried is gone. Answers [`crate::attachment::Stored`] or 404.
    File {
        session: String,
        caller: Caller,
        id: String,
    },
    /// A member reports message `seq` (`crate::moderation`). Answers
    /// [`crate::moderation::Target`], 404, 400 `cannot_report_own`, or 409
    /// `message_deleted`.
    Report {
        session: String,
        caller: Caller,
        seq: u64,
    },
    /// A moderator removes message `seq`. Answers [`RemoveReply`], 404,
    /// or 409 `message_deleted`.
    Remove {
        session: String,
        seq: u64,
        by: UserRef,
        reason: crate::moderation::Reason,
    },
    /// Mutes or bans a user; a banned user's sockets close with 4003.
    /// Answers 204.
    Sanction {
        session: String,
        sanction: crate::moderation::Sanction,
    },
    /// Lifts a user's sanctions. Answers 204, or 404 when none was in force.
    Lift { session: String, user_id: String },
    /// The session's moderation record. Answers [`crate::moderation::Record`].
    Moderation { session: String },
    /// The assistant's newest function calls. Answers a list of
    /// `session::log::tools::ToolRecord`.
    Tools { session: String },
    /// From the user's object (`crate::hub`): send `frame` (a `mention`)
    /// to `user_id`'s sockets here. Answers 204, or 404 when they have
    /// none.
    Notify {
        session: String,
        user_id: String,
        frame: String,
    },
    /// `user_id` blocked (`on`) or unblocked `blocked`; kept only when
    /// they own or belong to the session. Answers 204.
    Block {
        session: String,
        user_id: String,
        blocked: String,
        on: bool,
    },
    /// Development only: the object panics.
    Fault { session: String },
}

impl Call {
    /// The caller the object must admit before it serves the call.
    pub fn caller(&self) -> Option<&Caller> {
        match self {
            Call::Connect { caller, .. }
            | Call::Access { caller, .. }
            | Call::History { caller, .. }
            | Call::Members { caller, .. }
            | Call::AddMember { caller, .. }
            | Call::RemoveMember { caller, .. }
            | Call::Upload { caller, .. }
            | Call::Report { caller, .. }
            | Call::File { caller, .. } => Some(caller),
            _ => None,
        }
    }

    /// The path segment the request is sent to (for logs and routing).
    pub fn op(&self) -> &'static str {
        match self {
            Call::Init { .. } => "init",
            Call::Connect { .. } => "connect",
            Call::Access { .. } => "access",
            Call::History { .. } => "history",
            Call::Members { .. } => "members",
            Call::AddMember { .. } => "add_member",
            Call::RemoveMember { .. } => "remove_member",
            Call::Desk { .. } => "desk",
            Call::Post { .. } => "post",
            Call::Erase { .. } => "erase",
            Call::Rotate { .. } => "rotate",
            Call::Replication { .. } => "replication",
            Call::Upload { .. } => "upload",
            Call::File { .. } => "file",
            Call::Report { .. } => "report",
            Call::Remove { .. } => "remove",
            Call::Sanction { .. } => "sanction",
            Call::Lift { .. } => "lift",
            Call::Moderation { .. } => "moderation",
            Call::Tools { .. } => "tools",
            Call::Block { .. } => "block",
            Call::Notify { .. } => "notify",
            Call::Fault { .. } => "fault",
        }
    }

    /// Every call names its session, so the object learns its id from the
    /// first request it serves.
    pub fn session(&self) -> &str {
        match self {
            Call::Init { session, .. }
            | Call::Connect { session, .. }
            | Call::Access { session, .. }
            | Call::History { session, .. }
            | Call::Members { session, .. }
            | Call::AddMember { session, .. }
            | Call::RemoveMember { session, .. }
            | Call::Desk { session, .. }
            | Call::Post { session, .. }
            | Call::Erase { session }
            | Call::Rotate { session, .. }
            | Call::Replication { session }
            | Call::Upload { session, .. }
            | Call::File { session, .. }
            | Call::Report { session, .. }
            | Call::Remove { session, .. }
            | Call::Sanction { session, .. }
            | Call::Lift { session, .. }
            | Call::Moderation { session }
            | Call::Tools { session }
            | Call::Block { session, .. }
            | Call::Notify { session, .. }
            | Call::Fault { session } => session,
        }
    }

    /// The header value: JSON with non-ASCII escaped.
    pub fn encode(&self) -> String {
        ascii_json(&crate::tagged::to_string(self, "op"))
    }

    pub fn decode(header: &str) -> Option<Call> {
        crate::tagged::from_str(header, "op").ok()
    }
}

/// What a removal came to.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RemoveReply {
    pub seq: u64,
    /// Its place in the session's change stream.
    pub change: u64,
    pub removed: crate::moderation::Removal,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AccessReply {
    pub role: Role,
    /// The session's live state from the log, fresher than D1's copy.
    pub live: LiveState,
    /// The D1 shard holding the session's replicated record.
    pub shard: Shard,
}

/// What the log knows now that D1 may learn only with the next flush.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LiveState {
    pub mode: Mode,
    /// The assistant profile; absent: the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    pub desk: crate::desk::View,
    pub last_seq: u64,
    pub message_count: u64,
    pub updated_at: i64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HistoryReply {
    pub messages: Vec<MessageView>,
    /// The `before` of the next older page, or none at the first message.
    /// Not the first message's seq: the page leaves out the messages of
    /// people the caller blocks, and may hold none.
    pub next_before: Option<u64>,
    pub last_seq: u64,
    /// The latest change number, read with the page (`?changes=`).
    #[serde(default)]
    pub last_change: u64,
}

/// What a posted message became: its seq and id, and whether the
/// `client_id` was seen before (then the original's).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PostReply {
    pub seq: u64,
    pub id: String,
    pub duplicate: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MembersReply {
    pub members: Vec<String>,
}

/// What the object has not replicated to D1 yet.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ReplicationReply {
    /// Changes in the outbox.
    pub pending: u64,
    /// When the oldest of them was made (unix ms), if any.
    pub oldest_at: Option<i64>,
    pub state: ReplicationState,
    /// Failed flushes in a row.
    pub failures: u32,
    /// The seq of the newest message in the log.
    pub last_seq: u64,
    /// The D1 shard the session replicates to.
    pub shard: Shard,
}

/// Where a session's replication to D1 stands.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReplicationState {
    /// Nothing to flush.
    Idle,
    /// A flush is due within `REPLICATION_INTERVAL_MS`.
    Scheduled,
    /// D1 failed; the next flush waits (doubling up to 30 s).
    BackingOff,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct RotateReply {
    pub rotated: usize,
    /// Values no known key opens: left as they are.
    pub unreadable: usize,
    pub done: bool,
}

/// Escapes every non-ASCII character of a JSON text as `\uXXXX`.
pub fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call as the wire carries it (`encode`), read back as JSON.
    fn wire(c: &Call) -> serde_json::Value {
        serde_json::from_str(&c.encode()).unwrap()
    }
    use serde_json::json;

    fn alice() -> Caller {
        Caller {
            user: UserRef {
                id: "alice".into(),
                name: "Älice".into(),
            },
            admin: false,
            need: Access::Member,
        }
    }

    #[test]
    fn the_wire_format_is_pinned() {
        let c = Call::Connect {
            session: "s1".into(),
            request_id: "r1".into(),
            caller: alice(),
            after: Some(7),
            changes: Some(3),
            ticket: Some(Ticket {
                id: "t".into(),
                expires_at: 9,
            }),
            expires_at: 10,
            batch: true,
        };
        assert_eq!(
            c.encode(),
            r#"{"op":"connect","session":"s1","request_id":"r1","caller":{"user":{"id":"alice","name":"\u00c4lice"},"admin":false,"need":"member"},"after":7,"changes":3,"ticket":{"id":"t","expires_at":9},"expires_at":10,"batch":true}"#
        );
        assert_eq!(Call::decode(&c.encode()), Some(c));
        let m = Call::Desk {
            session: "s".into(),
            action: crate::desk::Action::Claim,
            by: alice().user,
        };
        assert_eq!(
            wire(&m),
            json!({"op": "desk", "session": "s", "action": "claim", "by": {"id": "alice", "name": "Älice"}})
        );
        assert_eq!(Call::decode(&m.encode()), Some(m));
        assert_eq!(
            wire(&Call::Erase {
                session: "s".into()
            }),
            json!({"op": "erase", "session": "s"})
        );
        let live = LiveState {
            mode: Mode::Assistant,
            profile: None,
            desk: crate::desk::Desk::new(0).view(),
            last_seq: 3,
            message_count: 3,
            updated_at: 5,
        };
        assert_eq!(
            serde_json::to_value(AccessReply {
                role: Role::Admin,
                live,
                shard: Shard::parse("DB_SHARD_1").unwrap(),
            })
            .unwrap(),
            json!({"role": "admin", "live": {"mode": "assistant", "desk": {"status": "open", "assignee": null, "waiting_since": null, "first_agent_reply_at": null, "resolved_at": null}, "last_seq": 3, "message_count": 3, "updated_at": 5}, "shard": "DB_SHARD_1"})
        );
        assert_eq!(
            wire(&Call::Init {
                session: "s".into(),
                owner_id: "o".into(),
                created_at: 1,
                shard: Shard::parse("DB").unwrap(),
                owner_blocks: Vec::new(),
                owner_sanctions: Vec::new(),
                profile: None,
            }),
            json!({"op": "init", "session": "s", "owner_id": "o", "created_at": 1, "shard": "DB"})
        );
        // An older Worker's init (no blocks) still reads.
        assert_eq!(
            Call::decode(
                r#"{"op":"init","session":"s","owner_id":"o","created_at":1,"shard":"DB"}"#
            ),
            Some(Call::Init {
                session: "s".into(),
                owner_id: "o".into(),
                created_at: 1,
                shard: Shard::parse("DB").unwrap(),
                owner_blocks: Vec::new(),
                owner_sanctions: Vec::new(),
                profile: None,
            })
        );
    }

    #[test]
    fn every_call_names_its_op_and_session() {
        let calls = [
            Call::Init {
                session: "s".into(),
                owner_id: "o".into(),
                created_at: 1,
                shard: Shard::parse("DB").unwrap(),
                owner_blocks: vec!["u-9".into()],
                owner_sanctions: Vec::new(),
                profile: None,
            },
            Call::Access {
                session: "s".into(),
                caller: alice(),
            },
            Call::History {
                session: "s".into(),
                caller: alice(),
                before: None,
                limit: 5,
                thread: Some(2),
            },
            Call::Rotate {
                session: "s".into(),
                limit: 5,
            },
            Call::Fault {
                session: "s".into(),
            },
            Call::Report {
                session: "s".into(),
                caller: alice(),
                seq: 3,
            },
            Call::Remove {
                session: "s".into(),
                seq: 3,
                by: alice().user,
                reason: crate::moderation::Reason::Spam,
            },
            Call::Sanction {
                session: "s".into(),
                sanction: crate::moderation::Sanction {
                    user_id: "u-2".into(),
                    kind: crate::moderation::Kind::Ban,
                    until: None,
                    reason: crate::moderation::Reason::Abuse,
                    by: alice().user,
                    at: 1,
                },
            },
            Call::Lift {
                session: "s".into(),
                user_id: "u-2".into(),
            },
            Call::Moderation {
                session: "s".into(),
            },
            Call::Block {
                session: "s".into(),
                user_id: "u-1".into(),
                blocked: "u-2".into(),
                on: true,
            },
        ];
        for c in calls {
            let v = wire(&c);
            assert_eq!(v["op"], c.op());
            assert_eq!(c.session(), "s");
            // What goes out comes back the same.
            assert_eq!(Call::decode(&c.encode()), Some(c.clone()));
        }
    }

    #[test]
    fn unknown_or_malformed_calls_are_refused() {
        assert_eq!(Call::decode(r#"{"op":"explode","session":"s"}"#), None);
        assert_eq!(Call::decode(r#"{"op":"erase"}"#), None);
        assert_eq!(Call::decode("not json"), None);
    }

    #[test]
    fn roles_follow_ownership_then_membership_then_admin() {
        let mut c = alice();
        assert_eq!(Role::of(&c, "alice", false), Some(Role::Owner));
        assert_eq!(Role::of(&c, "bob", true), Some(Role::Member));
        assert_eq!(Role::of(&c, "bob", false), None);
        c.admin = true;
        assert_eq!(Role::of(&c, "bob", false), Some(Role::Admin));
        assert!(Role::Admin.may_manage() && Role::Owner.may_manage());
        assert!(!Role::Member.may_manage());
    }

    #[test]
    fn the_route_level_decides_who_the_object_admits() {
        use Access::*;
        let (owner, member, admin) = (Some(Role::Owner), Some(Role::Member), Some(Role::Admin));
        for need in [Member, User, Public] {
            assert!(need.admits(owner, false) && need.admits(member, false));
            assert!(need.admits(admin, true));
            assert!(!need.admits(None, false), "{need:?}: no role, no session");
        }
        assert!(Owner.admits(owner, false) && Owner.admits(admin, true));
        assert!(!Owner.admits(member, false) && !Owner.admits(None, false));
        // The admin level is about the flag: an owner without it is refused,
        // an admin who is also a member is admitted.
        assert!(!Admin.admits(owner, false) && Admin.admits(member, true));
        // A caller from a Worker that did not send the level gets the
        // strictest session level.
        let old = r#"{"op":"access","session":"s","caller":{"user":{"id":"a","name":"A"},"admin":false}}"#;
        assert_eq!(Call::decode(old).unwrap().caller().unwrap().need, Owner);
    }

    #[test]
    fn ascii_json_escapes_astral_characters_as_surrogate_pairs() {
        assert_eq!(ascii_json("\"😀\""), "\"\\ud83d\\ude00\"");
        let back: String = serde_json::from_str(&ascii_json("\"😀 ü\"")).unwrap();
        assert_eq!(back, "😀 ü");
    }
}
