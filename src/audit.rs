//! Security events and the admin audit trail. Pure.
//!
//! **Security events** are log lines of their own (`event: "security"`,
//! with a `kind`), so an operator can alert on them apart from ordinary
//! request lines: every refused credential, refused origin or host,
//! refused ticket, per-IP refusal, admin action and key re-encryption. They
//! carry the user's pseudonym, never a raw id.
//!
//! **The audit trail** keeps every request an admin or the product's
//! backend made on a route of theirs (reads included: an admin reading a
//! transcript is an action) in the home shard's `audit_log`
//! (`migrations/0010_audit.sql`): who, what, on what, when, and how it
//! ended. It is read through `GET /v1/admin/audit`, newest first, filtered
//! by action or actor, paginated by an opaque cursor.

use crate::router::Access;
use serde::{Deserialize, Serialize};

/// The kinds of security event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityEvent {
    /// A credential was missing or refused (401).
    AuthFailed,
    /// The `Origin` or `Host` is not one the deployment serves (403).
    OriginRefused,
    /// A WebSocket ticket was unknown, expired, used or for elsewhere.
    TicketRefused,
    /// The per-IP limit refused a request.
    RateLimited,
    /// An admin or the product's backend acted (also in the audit trail).
    AdminAction,
    /// A re-encryption batch ran (key rotation).
    KeyRotation,
}

impl SecurityEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityEvent::AuthFailed => "auth_failed",
            SecurityEvent::OriginRefused => "origin_refused",
            SecurityEvent::TicketRefused => "ticket_refused",
            SecurityEvent::RateLimited => "rate_limited",
            SecurityEvent::AdminAction => "admin_action",
            SecurityEvent::KeyRotation => "key_rotation",
        }
    }

    /// The event a refusal is, from its status and error code.
    pub fn of_refusal(status: u16, code: &str) -> Option<SecurityEvent> {
        match (status, code) {
            (_, c) if c.starts_with("ticket_") => Some(SecurityEvent::TicketRefused),
            (401, _) => Some(SecurityEvent::AuthFailed),
            (403, "origin_not_allowed" | "host_not_allowed") => Some(SecurityEvent::OriginRefused),
            (429, "rate_limited") => Some(SecurityEvent::RateLimited),
            _ => None,
        }
    }
}

/// Whether requests on a route of this level are audited.
pub fn audited(access: Access) -> bool {
    matches!(access, Access::Admin | Access::Service)
}

/// One audited request, as stored and as the API shows it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: String,
    /// Unix ms.
    pub at: i64,
    /// The caller's user id (`service` for the static service token).
    pub actor_id: String,
    /// `admin` or `service`: the route's level.
    pub level: String,
    /// The route's name in the table (`admin.claim`, …).
    pub action: String,
    pub method: String,
    /// The session, webhook endpoint or assistant profile the path names,
    /// if any.
    pub target: Option<String>,
    pub status: u16,
    pub request_id: String,
}

/// Entries per page unless `limit` says otherwise, and the most.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

/// Where a page starts: after the entry at `at` with `id` (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at: i64,
    pub id: String,
}

impl Cursor {
    /// `<at>.<id>`, as `next_cursor` gives it.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at, self.id)
    }

    pub fn parse(s: &str) -> Option<Cursor> {
        let (at, id) = s.split_once('.')?;
        let at: i64 = at.parse().ok().filter(|n| *n >= 0)?;
        is_entry_id(id).then(|| Cursor {
            at,
            id: id.to_string(),
        })
    }
}

/// An entry id: `au_` and 24 hex digits.
pub fn new_entry_id() -> String {
    format!("au_{}", crate::ids::random_hex(12))
}

pub fn is_entry_id(s: &str) -> bool {
    s.strip_prefix("au_")
        .is_some_and(|h| h.len() == 24 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A valid `action` filter: a route name's shape (the table's names are
/// lower-case words joined by dots and underscores).
pub fn is_action(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart() {
        let of = SecurityEvent::of_refusal;
        assert_eq!(of(401, "token_expired"), Some(SecurityEvent::AuthFailed));
        assert_eq!(of(401, "ticket_used"), Some(SecurityEvent::TicketRefused));
        assert_eq!(
            of(403, "origin_not_allowed"),
            Some(SecurityEvent::OriginRefused)
        );
        assert_eq!(
            of(403, "host_not_allowed"),
            Some(SecurityEvent::OriginRefused)
        );
        assert_eq!(of(429, "rate_limited"), Some(SecurityEvent::RateLimited));
        // A quota is the caller's budget, not an attack; a 404 reveals nothing.
        assert_eq!(of(429, "quota_exceeded"), None);
        assert_eq!(of(404, "not_found"), None);
        assert_eq!(of(403, "forbidden"), None);
    }

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let c = Cursor {
            at: 1_764_633_600_000,
            id: new_entry_id(),
        };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        for bad in [
            "",
            "1",
            "x.au_0",
            "-1.au_000000000000000000000000",
            "1.au_zz",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
        assert!(Cursor::parse("0.au_000000000000000000000000").is_some());
    }

    #[test]
    fn only_admin_and_service_routes_are_audited() {
        assert!(audited(Access::Admin) && audited(Access::Service));
        for a in [
            Access::Public,
            Access::User,
            Access::Member,
            Access::Owner,
            Access::Metrics,
            Access::Dev,
        ] {
            assert!(!audited(a), "{a:?}");
        }
    }

    #[test]
    fn action_filters_are_route_names() {
        assert!(is_action("admin.webhooks.create"));
        assert!(is_action("admin.inbox_tickets"));
        assert!(!is_action(""));
        assert!(!is_action("Admin"));
        assert!(!is_action("a b"));
        assert!(!is_action(&"a".repeat(65)));
    }
}
