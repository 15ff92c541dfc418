//! The one error type. Every failure maps to an HTTP status plus a stable JSON
//! `code`, and to a WebSocket error frame or close code. Internal detail is
//! kept for the log and never rendered to a client. HTTP error bodies are
//! built by `AppError::body` alone, socket `error` frames by
//! `SocketError::frame` alone (refusals only a socket can meet are
//! `SocketError`'s own variants; the rest carry an `AppError`).

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError {
    /// Malformed input the client can fix; `code` names what was wrong.
    BadRequest {
        code: &'static str,
        message: String,
    },
    /// Missing or invalid credentials; the code says which (`token_expired`, …).
    Unauthorized(&'static str),
    /// Authenticated, but not allowed to do this (e.g. edit another's message).
    Forbidden,
    /// Also used for resources the caller may not see, so that their
    /// existence is not revealed.
    NotFound,
    MethodNotAllowed,
    /// The route expects a WebSocket upgrade.
    UpgradeRequired,
    PayloadTooLarge,
    /// The session already holds its configured maximum of sockets.
    SessionFull,
    /// The user already holds their maximum of sockets in this session.
    TooManySockets,
    /// The request's `Origin` is not on the allowlist.
    OriginNotAllowed,
    /// The request's Host is not one of the deployment's own origins
    /// (`PUBLIC_ORIGINS`): a DNS-rebinding page, or a misrouted request.
    HostNotAllowed,
    /// Over a rate limit; retry after this many seconds.
    RateLimited {
        retry_after_s: u64,
    },
    /// Over a per-user quota (`code` says which); it frees up after this
    /// many seconds.
    Quota {
        code: &'static str,
        retry_after_s: u64,
    },
    /// Another agent has the session (a claim lost).
    AlreadyAssigned,
    /// The session is closed: it is read-only for good.
    SessionClosed,
    /// A dependency (D1, KV, configuration) is not usable; `check` names it.
    Unavailable {
        check: &'static str,
    },
    /// A site a link preview fetched failed it: an error status, not an
    /// HTML page, too many redirects, or no answer (`timed_out`).
    PreviewFailed {
        timed_out: bool,
    },
    /// An upload or download refused (`crate::attachment::Refusal` has
    /// the status and code).
    Attachment(crate::attachment::Refusal),
    /// A moderator muted or banned the caller in this session
    /// (`crate::moderation`); it ends by itself after `retry_after_ms`
    /// when it has an end.
    Sanctioned {
        kind: crate::moderation::Kind,
        retry_after_ms: Option<u64>,
    },
    /// The message was deleted or removed already.
    MessageGone,
    /// A new visitor's Turnstile answer did not pass siteverify.
    ChallengeFailed,
    /// Anything unexpected. The detail is logged, the client sees a generic
    /// message and the request id.
    Internal(String),
}

/// WebSocket close codes Confab uses. 1000-range codes are the protocol's own;
/// 4000-range codes are Confab's and are documented in docs/protocol.md.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// The token (or the ticket's token) that opened the socket expired;
    /// reconnect at once with a fresh ticket and `after=`.
    pub const TOKEN_EXPIRED: u16 = 4001;
    /// The user lost access to the session (removed as a member, or
    /// banned by a moderator); do not reconnect.
    pub const ACCESS_REVOKED: u16 = 4003;
    /// The session was deleted; do not reconnect.
    pub const SESSION_DELETED: u16 = 4004;
    /// The user holds too many sockets in this session; close one first.
    pub const TOO_MANY_SOCKETS: u16 = 4029;
}

impl AppError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn internal(detail: impl fmt::Display) -> Self {
        AppError::Internal(detail.to_string())
    }

    pub fn status(&self) -> u16 {
        match self {
            AppError::BadRequest { .. } => 400,
            AppError::Unauthorized(_) => 401,
            AppError::Forbidden => 403,
            AppError::NotFound => 404,
            AppError::MethodNotAllowed => 405,
            AppError::UpgradeRequired => 426,
            AppError::PayloadTooLarge => 413,
            AppError::SessionFull => 503,
            AppError::TooManySockets => 429,
            AppError::OriginNotAllowed => 403,
            AppError::HostNotAllowed => 421,
            AppError::RateLimited { .. } | AppError::Quota { .. } => 429,
            AppError::AlreadyAssigned | AppError::SessionClosed => 409,
            AppError::Unavailable { .. } => 503,
            AppError::PreviewFailed { timed_out: false } => 502,
            AppError::PreviewFailed { timed_out: true } => 504,
            AppError::Attachment(r) => r.status(),
            AppError::Sanctioned { .. } => 403,
            AppError::MessageGone => 409,
            AppError::ChallengeFailed => 403,
            AppError::Internal(_) => 500,
        }
    }

    /// The stable machine-readable code; listed in docs/api.md.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. } => code,
            AppError::Unauthorized(code) => code,
            AppError::Forbidden => "forbidden",
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::UpgradeRequired => "upgrade_required",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::SessionFull => "session_full",
            AppError::TooManySockets => "too_many_sockets",
            AppError::OriginNotAllowed => "origin_not_allowed",
            AppError::HostNotAllowed => "host_not_allowed",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Quota { code, .. } => code,
            AppError::AlreadyAssigned => "already_assigned",
            AppError::SessionClosed => "session_closed",
            AppError::Unavailable { .. } => "unavailable",
            AppError::PreviewFailed { timed_out: false } => "preview_unavailable",
            AppError::PreviewFailed { timed_out: true } => "preview_timeout",
            AppError::Attachment(r) => r.code(),
            AppError::Sanctioned { kind, .. } => kind.code(),
            AppError::MessageGone => "message_deleted",
            AppError::ChallengeFailed => "turnstile_failed",
            AppError::Internal(_) => "internal",
        }
    }

    /// What a client may read. Never includes internal detail.
    pub fn public_message(&self) -> String {
        match self {
            AppError::BadRequest { message, .. } => message.clone(),
            AppError::Unauthorized(_) => "missing or invalid credentials".into(),
            AppError::Forbidden => "not allowed".into(),
            AppError::NotFound => "not found".into(),
            AppError::MethodNotAllowed => "method not allowed".into(),
            AppError::UpgradeRequired => "this endpoint requires a WebSocket upgrade".into(),
            AppError::PayloadTooLarge => "payload too large".into(),
            AppError::SessionFull => "this session has too many open connections".into(),
            AppError::TooManySockets => "you have too many open connections to this session".into(),
            AppError::OriginNotAllowed => "this origin is not allowed".into(),
            AppError::HostNotAllowed => "this host is not served here".into(),
            AppError::RateLimited { .. } => "too many requests; slow down".into(),
            AppError::Quota { .. } => "over your quota; try again later".into(),
            AppError::AlreadyAssigned => "another agent has this session".into(),
            AppError::SessionClosed => "this session is closed".into(),
            AppError::Unavailable { check } => format!("dependency unavailable: {check}"),
            AppError::PreviewFailed { timed_out: false } => {
                "the page gave no preview (an error, not HTML, or too many redirects)".into()
            }
            AppError::PreviewFailed { timed_out: true } => "the page took too long".into(),
            AppError::Attachment(r) => r.message(),
            AppError::Sanctioned { kind, .. } => match kind {
                crate::moderation::Kind::Mute => "a moderator muted you in this session".into(),
                crate::moderation::Kind::Ban => "a moderator banned you from this session".into(),
            },
            AppError::MessageGone => "that message was deleted".into(),
            AppError::ChallengeFailed => "the challenge was not passed; try it again".into(),
            AppError::Internal(_) => "internal error; quote the request id when reporting".into(),
        }
    }

    /// The detail worth logging, if any beyond the public message.
    pub fn log_detail(&self) -> Option<&str> {
        match self {
            AppError::Internal(d) => Some(d),
            _ => None,
        }
    }

    /// The HTTP body `{"error": {"code", "message", "request_id"}}`.
    pub fn body(&self, request_id: &str) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.public_message(),
                request_id: request_id.to_string(),
            },
        }
    }

    /// The close code to use when this error ends a socket.
    pub fn close_code(&self) -> u16 {
        match self {
            AppError::PayloadTooLarge => close::TOO_BIG,
            AppError::SessionFull => close::TRY_AGAIN_LATER,
            AppError::TooManySockets => close::TOO_MANY_SOCKETS,
            AppError::Unauthorized(_) | AppError::NotFound | AppError::Forbidden => close::POLICY,
            AppError::Unavailable { .. } => close::TRY_AGAIN_LATER,
            AppError::Sanctioned {
                kind: crate::moderation::Kind::Ban,
                ..
            } => close::ACCESS_REVOKED,
            AppError::Internal(_) => close::INTERNAL,
            _ => close::POLICY,
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.public_message())?;
        if let Some(d) = self.log_detail() {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

#[derive(Serialize, Debug)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, Debug)]
pub struct ErrorDetail {
    pub code: &'static str,
    pub message: String,
    pub request_id: String,
}

/// What a WebSocket is told when the server refuses a frame or ends
/// something: the socket side of the one error type. `frame` is the one
/// place an `error` frame is built; docs/protocol.md lists the codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketError {
    /// A frame refused while decoding; it carries its own client id.
    Frame(crate::protocol::FrameError),
    /// An error of the HTTP API's kind, as it reaches a socket.
    App(AppError),
    BinaryNotSupported,
    /// The token that opened the socket expired (close 4001 follows).
    TokenExpired,
    /// The user lost access to the session (close 4003 follows).
    AccessRevoked,
    RateLimited {
        scope: crate::limits::Scope,
        retry_after_ms: u64,
    },
    /// Only agents claim, transfer, resolve or release a session.
    NotAnAgent,
    NotAuthor,
    MessageDeleted,
    MessageNotFound,
    /// A send named an attachment that is not the sender's unsent upload
    /// in this session (another session's, another user's, already sent).
    AttachmentNotFound,
    TooManyReactions {
        cap: u32,
    },
    /// A vote the poll does not take.
    Poll(crate::poll::Refusal),
    /// An edit, delete, reaction or read could not be stored; retry it.
    ChangeNotApplied,
    /// A send could not be stored; retry it with the same client id.
    NotStored,
    /// The session was erased while a send waited.
    SessionGone,
    AssistantFailed,
    AssistantQuota,
    /// The provider's reply stopped early; `code` says how.
    ReplyCutShort {
        code: &'static str,
    },
    /// Every provider failed before a first token; `code` is the last
    /// failure's.
    AssistantUnavailable {
        code: &'static str,
    },
    /// A reply cut off by a restart; the assistant answers again.
    ReplyInterrupted,
    /// The pre-send filter refused the message (`crate::moderation::filter`).
    MessageBlocked,
    /// A rating of something other than the assistant's live reply, or by
    /// someone other than a user.
    NotRateable,
    /// `regenerate` with no assistant reply last to answer again.
    NothingToRegenerate,
    /// `regenerate` while the assistant is answering.
    AssistantBusy,
    /// `set_profile` named no assistant profile there is.
    UnknownProfile,
    /// `approve` or `reject` named no call waiting for approval.
    UnknownCall,
}

impl SocketError {
    pub fn code(&self) -> &str {
        match self {
            SocketError::Frame(e) => e.code,
            SocketError::App(e) => e.code(),
            SocketError::BinaryNotSupported => "binary_not_supported",
            SocketError::TokenExpired => "token_expired",
            SocketError::AccessRevoked => "access_revoked",
            SocketError::RateLimited { .. } => "rate_limited",
            SocketError::NotAnAgent | SocketError::NotAuthor => "forbidden",
            SocketError::MessageDeleted => "message_deleted",
            SocketError::MessageNotFound => "not_found",
            SocketError::AttachmentNotFound => "attachment_not_found",
            SocketError::TooManyReactions { .. } => "too_many_reactions",
            SocketError::Poll(r) => r.code(),
            SocketError::ChangeNotApplied | SocketError::AssistantFailed => "internal",
            SocketError::NotStored => "persist_failed",
            SocketError::SessionGone => "session_gone",
            SocketError::AssistantQuota => "quota_exceeded",
            SocketError::ReplyCutShort { code } | SocketError::AssistantUnavailable { code } => {
                code
            }
            SocketError::ReplyInterrupted => "reply_interrupted",
            SocketError::MessageBlocked => "message_blocked",
            SocketError::NotRateable => "not_rateable",
            SocketError::NothingToRegenerate => "nothing_to_regenerate",
            SocketError::AssistantBusy => "assistant_busy",
            SocketError::UnknownProfile => "unknown_profile",
            SocketError::UnknownCall => "unknown_call",
        }
    }

    /// What the client may read; never internal detail.
    pub fn message(&self) -> String {
        use crate::limits::Scope;
        match self {
            SocketError::Frame(e) => e.message.clone(),
            SocketError::App(e) => e.public_message(),
            SocketError::BinaryNotSupported => "frames must be JSON text".into(),
            SocketError::TokenExpired => "your token expired; reconnect with a fresh ticket".into(),
            SocketError::AccessRevoked => "you no longer have access to this session".into(),
            SocketError::RateLimited {
                scope: Scope::Messages,
                ..
            } => "too many messages; slow down".into(),
            SocketError::RateLimited {
                scope: Scope::Actions,
                ..
            } => "too many changes; slow down".into(),
            SocketError::NotAnAgent => "only agents may do this".into(),
            SocketError::NotAuthor => "only the author may change this message".into(),
            SocketError::MessageDeleted => "that message was deleted".into(),
            SocketError::MessageNotFound => "no such message".into(),
            SocketError::AttachmentNotFound => {
                "no such attachment of yours in this session, or it was sent already".into()
            }
            SocketError::TooManyReactions { cap } => {
                format!("at most {cap} different reactions per message")
            }
            SocketError::Poll(r) => r.message(),
            SocketError::ChangeNotApplied => "the change was not applied; retry".into(),
            SocketError::NotStored => "message not stored; retry".into(),
            SocketError::SessionGone => "this session no longer exists".into(),
            SocketError::AssistantFailed => "the assistant could not answer; try again".into(),
            SocketError::AssistantQuota => {
                "the daily assistant budget (this user's or this assistant profile's) is used up"
                    .into()
            }
            SocketError::ReplyCutShort { .. } => "the assistant's reply was cut short".into(),
            SocketError::AssistantUnavailable { .. } => {
                "the assistant is unavailable right now; try again".into()
            }
            SocketError::ReplyInterrupted => {
                "the assistant's reply was interrupted; it will answer again".into()
            }
            SocketError::MessageBlocked => {
                "this message was not sent: it breaks this chat's rules".into()
            }
            SocketError::NotRateable => "users rate the assistant's replies only".into(),
            SocketError::NothingToRegenerate => {
                "the last message is not an assistant reply to answer again".into()
            }
            SocketError::AssistantBusy => {
                "the assistant is answering; wait for it, or stop it".into()
            }
            SocketError::UnknownProfile => "no assistant profile of that name".into(),
            SocketError::UnknownCall => "no call of that id waits for approval".into(),
        }
    }

    /// The `error` frame. `client_id` names the send it answers, if any (a
    /// refused frame carries its own).
    pub fn frame(&self, client_id: Option<&str>) -> String {
        let (client_id, retry_after_ms) = match self {
            SocketError::Frame(e) => (e.client_id.as_deref(), None),
            SocketError::RateLimited { retry_after_ms, .. } => (client_id, Some(*retry_after_ms)),
            SocketError::App(AppError::Sanctioned { retry_after_ms, .. }) => {
                (client_id, *retry_after_ms)
            }
            _ => (client_id, None),
        };
        crate::protocol::ServerFrame::Error {
            code: self.code(),
            message: &self.message(),
            client_id,
            retry_after_ms,
        }
        .to_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal a socket can meet renders as one `error` frame with
    /// its documented code, and nothing internal.
    #[test]
    fn socket_errors_render_one_frame_each_with_a_documented_code() {
        use crate::limits::Scope;
        let doc = include_str!("../docs/protocol.md");
        let refused = crate::protocol::decode(
            "{",
            crate::protocol::Limits {
                max_message_chars: 10,
            },
        )
        .unwrap_err();
        let all = [
            SocketError::Frame(refused),
            SocketError::App(AppError::SessionFull),
            SocketError::App(AppError::internal("D1_ERROR: secret detail")),
            SocketError::BinaryNotSupported,
            SocketError::TokenExpired,
            SocketError::AccessRevoked,
            SocketError::RateLimited {
                scope: Scope::Messages,
                retry_after_ms: 1500,
            },
            SocketError::RateLimited {
                scope: Scope::Actions,
                retry_after_ms: 1,
            },
            SocketError::NotAnAgent,
            SocketError::NotAuthor,
            SocketError::MessageDeleted,
            SocketError::MessageNotFound,
            SocketError::AttachmentNotFound,
            SocketError::TooManyReactions { cap: 8 },
            SocketError::ChangeNotApplied,
            SocketError::NotStored,
            SocketError::SessionGone,
            SocketError::AssistantFailed,
            SocketError::AssistantQuota,
            SocketError::ReplyCutShort {
                code: "provider_stream_broken",
            },
            SocketError::AssistantUnavailable {
                code: "provider_unavailable",
            },
            SocketError::ReplyInterrupted,
            SocketError::MessageBlocked,
            SocketError::NotRateable,
            SocketError::NothingToRegenerate,
            SocketError::AssistantBusy,
            SocketError::App(AppError::Sanctioned {
                kind: crate::moderation::Kind::Mute,
                retry_after_ms: Some(900),
            }),
            SocketError::App(AppError::Sanctioned {
                kind: crate::moderation::Kind::Ban,
                retry_after_ms: None,
            }),
        ];
        for e in &all {
            let frame: serde_json::Value = serde_json::from_str(&e.frame(Some("c1"))).unwrap();
            assert_eq!(frame["type"], "error");
            assert_eq!(frame["code"], e.code());
            assert_eq!(frame["message"], e.message());
            assert!(!frame.to_string().contains("D1_ERROR"), "{frame}");
            assert!(
                doc.contains(&format!("`{}`", e.code())),
                "{} is not in docs/protocol.md",
                e.code()
            );
            match e {
                SocketError::Frame(_) => assert!(frame.get("client_id").is_none()),
                _ => assert_eq!(frame["client_id"], "c1"),
            }
            match e {
                SocketError::RateLimited { retry_after_ms, .. }
                | SocketError::App(AppError::Sanctioned {
                    retry_after_ms: Some(retry_after_ms),
                    ..
                }) => assert_eq!(frame["retry_after_ms"], *retry_after_ms),
                _ => assert!(frame.get("retry_after_ms").is_none()),
            }
        }
        assert_eq!(
            SocketError::TooManyReactions { cap: 8 }.message(),
            "at most 8 different reactions per message"
        );
    }

    #[test]
    fn internal_detail_never_reaches_the_body() {
        let e = AppError::internal("D1_ERROR: no such table: secrets at line 3");
        let body = serde_json::to_string(&e.body("req-1")).unwrap();
        assert!(!body.contains("D1_ERROR"), "{body}");
        assert!(!body.contains("secrets"), "{body}");
        assert!(body.contains("\"request_id\":\"req-1\""));
        assert!(body.contains("\"code\":\"internal\""));
        assert_eq!(e.status(), 500);
        assert_eq!(
            e.log_detail(),
            Some("D1_ERROR: no such table: secrets at line 3")
        );
    }

    #[test]
    fn statuses_and_codes_are_stable() {
        let cases = [
            (
                AppError::bad_request("invalid_json", "x"),
                400,
                "invalid_json",
            ),
            (
                AppError::Unauthorized("token_expired"),
                401,
                "token_expired",
            ),
            (AppError::Forbidden, 403, "forbidden"),
            (AppError::SessionFull, 503, "session_full"),
            (AppError::TooManySockets, 429, "too_many_sockets"),
            (AppError::OriginNotAllowed, 403, "origin_not_allowed"),
            (AppError::HostNotAllowed, 421, "host_not_allowed"),
            (
                AppError::RateLimited { retry_after_s: 5 },
                429,
                "rate_limited",
            ),
            (
                AppError::Quota {
                    code: "session_quota_exceeded",
                    retry_after_s: 9,
                },
                429,
                "session_quota_exceeded",
            ),
            (AppError::NotFound, 404, "not_found"),
            (AppError::MethodNotAllowed, 405, "method_not_allowed"),
            (AppError::PayloadTooLarge, 413, "payload_too_large"),
            (AppError::UpgradeRequired, 426, "upgrade_required"),
            (AppError::Unavailable { check: "d1" }, 503, "unavailable"),
            (AppError::AlreadyAssigned, 409, "already_assigned"),
            (AppError::SessionClosed, 409, "session_closed"),
            (
                AppError::PreviewFailed { timed_out: false },
                502,
                "preview_unavailable",
            ),
            (
                AppError::PreviewFailed { timed_out: true },
                504,
                "preview_timeout",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status(), status);
            assert_eq!(e.code(), code);
        }
    }

    #[test]
    fn close_codes() {
        assert_eq!(AppError::PayloadTooLarge.close_code(), 1009);
        assert_eq!(AppError::internal("x").close_code(), 1011);
    }
}
