//! Webhooks: the product's own systems told of what happens in sessions.
//! Pure: event names, the envelope a queue message carries, the Standard
//! Webhooks signature, the retry schedule and the checks on an endpoint.
//!
//! **Path of an event.** A session object writes each event some enabled
//! endpoint takes ([`gate`]) to its own
//! storage in the same synchronous block as the change it reports, so the
//! two commit together (`session/hooks.rs`). After the commit it sends the
//! events to the `WEBHOOKS` queue, off the path to an ack, and deletes a
//! row only once the queue took it; the alarm retries what failed. The
//! queue's consumer (`deliver.rs`) reads the enabled endpoints whose filter
//! takes the event, tries each once at once, and puts every failed delivery
//! back on the queue as its own message, retried with exponential backoff
//! ([`backoff_seconds`]) for `WEBHOOK_MAX_ATTEMPTS` attempts in all, after
//! which it goes to the dead-letter queue and is logged `dead`. So a receiver that is down for a while misses
//! nothing, and a slow one holds up only its own deliveries, never chat.
//!
//! **Payloads are sealed in transit and at rest**: the event body (which
//! holds message text) travels and waits sealed with the deployment's
//! keyring; only the consumer opens it, just before signing.
//!
//! **Signature** ([`signature`]): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
//! keyed with the endpoint's `whsec_` secret, as Standard Webhooks says.

use crate::desk::{Status, View};
use crate::protocol::{Author, MessageView, TurnMeta, UserRef};
use base64ct::{Base64, Encoding};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

#[cfg(target_arch = "wasm32")]
pub mod deliver;
pub mod gate;

/// The events a webhook can be sent.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    #[serde(rename = "session.created")]
    SessionCreated,
    #[serde(rename = "message.created")]
    MessageCreated,
    #[serde(rename = "session.waiting")]
    SessionWaiting,
    #[serde(rename = "session.assigned")]
    SessionAssigned,
    #[serde(rename = "session.resolved")]
    SessionResolved,
    #[serde(rename = "session.closed")]
    SessionClosed,
    #[serde(rename = "turn.completed")]
    TurnCompleted,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::SessionCreated,
        Kind::MessageCreated,
        Kind::SessionWaiting,
        Kind::SessionAssigned,
        Kind::SessionResolved,
        Kind::SessionClosed,
        Kind::TurnCompleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SessionCreated => "session.created",
            Kind::MessageCreated => "message.created",
            Kind::SessionWaiting => "session.waiting",
            Kind::SessionAssigned => "session.assigned",
            Kind::SessionResolved => "session.resolved",
            Kind::SessionClosed => "session.closed",
            Kind::TurnCompleted => "turn.completed",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The event a new desk status is told as; `open` (handed back to the
    /// assistant, or reopened) has none.
    pub fn of_status(s: Status) -> Option<Kind> {
        match s {
            Status::Open => None,
            Status::Waiting => Some(Kind::SessionWaiting),
            Status::Assigned => Some(Kind::SessionAssigned),
            Status::Resolved => Some(Kind::SessionResolved),
            Status::Closed => Some(Kind::SessionClosed),
        }
    }
}

/// What a queue message carries: one event, and for a retry the one
/// endpoint it is for. The body is sealed (AAD: [`aad`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The `webhook-id`: the same for every endpoint and every attempt,
    /// so receivers can drop repeats.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub session: String,
    /// When it happened (unix ms); the payload's `timestamp`.
    pub at: i64,
    pub sealed: String,
    /// Absent on the first pass (every matching endpoint); a retry names
    /// its endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Which attempt this message is: 1 on the first pass, counted by the
    /// consumer as it puts failed deliveries back on the queue.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// The `traceparent` of what made the event (a traced `send`, the turn
    /// of a reply), when known: deliveries are spans of it
    /// (`crate::trace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

fn first_attempt() -> u32 {
    1
}

/// How long the delivery log keeps an attempt.
pub const LOG_RETENTION_MS: i64 = 30 * 86_400_000;

/// A new event's id: `msg_` and 24 random hex digits.
pub fn new_event_id() -> String {
    format!("msg_{}", crate::ids::random_hex(12))
}

/// Where a sealed event body belongs.
pub fn aad(session: &str, event_id: &str) -> String {
    crate::crypto::aad(crate::crypto::Field::WebhookEvent, session, Some(event_id))
}

/// `data` of the `session.*` events: the session's place in the desk.
#[derive(Serialize, Debug)]
pub struct SessionData<'a> {
    pub session_id: &'a str,
    pub owner_id: &'a str,
    pub status: Status,
    pub assignee: Option<&'a UserRef>,
    pub waiting_since: Option<i64>,
    pub first_agent_reply_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// Who made the change; absent for the system (timers, creation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<&'a UserRef>,
}

impl<'a> SessionData<'a> {
    pub fn new(
        session_id: &'a str,
        owner_id: &'a str,
        v: &'a View,
        by: Option<&'a UserRef>,
    ) -> Self {
        SessionData {
            session_id,
            owner_id,
            status: v.status,
            assignee: v.assignee.as_ref(),
            waiting_since: v.waiting_since,
            first_agent_reply_at: v.first_agent_reply_at,
            resolved_at: v.resolved_at,
            by,
        }
    }
}

/// Longest text a `message.created` event carries, in bytes: a queue
/// message holds 128 KB, and the body travels sealed (base64). A longer
/// text is left out (`text_omitted`); the transcript API has it.
pub const MAX_EVENT_TEXT_BYTES: usize = 32 * 1024;

/// `data` of `message.created`.
#[derive(Serialize, Debug)]
pub struct MessageData<'a> {
    pub session_id: &'a str,
    pub message: MessageOut<'a>,
}

#[derive(Serialize, Debug)]
pub struct MessageOut<'a> {
    pub id: &'a str,
    pub seq: u64,
    pub client_id: Option<&'a str>,
    pub author: &'a Author,
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub text_omitted: bool,
    pub reply_to: Option<u64>,
    pub created_at: i64,
}

impl<'a> MessageData<'a> {
    pub fn new(session_id: &'a str, m: &'a MessageView) -> Self {
        let fits = m.text.len() <= MAX_EVENT_TEXT_BYTES;
        MessageData {
            session_id,
            message: MessageOut {
                id: &m.id,
                seq: m.seq,
                client_id: m.client_id.as_deref(),
                author: &m.author,
                text: fits.then_some(m.text.as_str()),
                text_omitted: !fits,
                reply_to: m.reply_to,
                created_at: m.created_at,
            },
        }
    }
}

/// `data` of `turn.completed`: the assistant's reply was stored.
#[derive(Serialize, Debug)]
pub struct TurnData<'a> {
    pub session_id: &'a str,
    pub message_id: &'a str,
    pub seq: u64,
    pub turn: &'a TurnMeta,
}

/// The JSON a receiver gets: `{"type", "timestamp", "data"}`, the shape
/// Standard Webhooks recommends.
pub fn payload<D: Serialize>(kind: Kind, at_ms: i64, data: &D) -> String {
    #[derive(Serialize)]
    struct Payload<'a, D> {
        #[serde(rename = "type")]
        kind: Kind,
        timestamp: &'a str,
        data: &'a D,
    }
    let timestamp = rfc3339(at_ms);
    serde_json::to_string(&Payload {
        kind,
        timestamp: &timestamp,
        data,
    })
    .unwrap_or_default()
}

/// Unix ms as RFC 3339 UTC with milliseconds (`2026-12-02T00:05:13.042Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::limits::civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// The prefix of an endpoint's signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new secret (Standard Webhooks asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// A new signing secret: `whsec_` and base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    getrandom::getrandom(&mut key).expect("entropy source unavailable");
    format!("{SECRET_PREFIX}{}", Base64::encode_string(&key))
}

/// The HMAC key of a `whsec_` secret; None if it is not one.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    Base64::decode_vec(secret.strip_prefix(SECRET_PREFIX)?).ok()
}

/// The `webhook-signature` header: `v1,` and base64 of HMAC-SHA256 over
/// `{id}.{timestamp}.{body}`.
pub fn signature(key: &[u8], id: &str, timestamp_s: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp_s}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", Base64::encode_string(&mac.finalize().into_bytes()))
}

/// The wait before retry number `attempt` (1 for the first retry):
/// `base` doubled each time, at most `cap`, in seconds.
pub fn backoff_seconds(attempt: u32, base: u32, cap: u32) -> u32 {
    let doublings = attempt.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << doublings).min(cap).max(1)
}

/// How one attempt ended.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Anything else; it will be retried.
    Failed,
    /// The queue gave up: the delivery is in the dead-letter queue.
    Dead,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
            Outcome::Dead => "dead",
        }
    }

    /// A receiver's status: only 2xx counts as delivered (a redirect is
    /// not followed: the endpoint's URL is the one that was configured).
    pub fn of_status(status: u16) -> Outcome {
        if (200..300).contains(&status) {
            Outcome::Delivered
        } else {
            Outcome::Failed
        }
    }
}

/// Why a delivery failed without an HTTP status: a stable code for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    Network,
    /// The endpoint's secret opens with no key of the keyring (a retired
    /// key: see the key rotation runbook).
    SecretUnreadable,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Network => "network_error",
            Failure::SecretUnreadable => "secret_unreadable",
        }
    }
}

/// Longest endpoint URL accepted.
pub const MAX_URL_CHARS: usize = 2048;
/// Endpoints one deployment may have: each event is tried on every one.
pub const MAX_ENDPOINTS: usize = 20;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// Why an endpoint's settings were refused; each is a `400` with its own
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Url,
    HttpNotAllowed,
    /// A private, loopback or link-local host where plain http is off.
    PrivateHost,
    Events,
    Description,
}

impl Invalid {
    pub fn message(self) -> &'static str {
        match self {
            Invalid::Url => {
                "url must be an absolute http(s) URL without credentials, at most 2048 characters"
            }
            Invalid::HttpNotAllowed => "url must use https (WEBHOOK_ALLOW_HTTP is off)",
            Invalid::PrivateHost => {
                "url must name a public host: private, loopback and link-local addresses are refused (WEBHOOK_ALLOW_HTTP is off)"
            }
            Invalid::Events => "events must list one or more known event types, or be [\"*\"]",
            Invalid::Description => "description must be at most 200 characters",
        }
    }
}

/// Checks an endpoint URL: http(s), a host, no credentials, no fragment,
/// no control characters or spaces; plain http only when `allow_http`.
pub fn check_url(url: &str, allow_http: bool) -> Result<(), Invalid> {
    if url.len() > MAX_URL_CHARS || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Invalid::Url);
    }
    let (scheme, rest) = url.split_once("://").ok_or(Invalid::Url)?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.is_empty() || authority.contains('@') || url.contains('#') {
        return Err(Invalid::Url);
    }
    match scheme {
        // Where plain http is off (production), so are private, loopback
        // and link-local hosts: a webhook must not reach inside the
        // network the Worker runs in (the link previews' rule).
        "https" if !allow_http && !crate::preview::names_public_host(url) => {
            Err(Invalid::PrivateHost)
        }
        "https" => Ok(()),
        "http" if allow_http => Ok(()),
        "http" => Err(Invalid::HttpNotAllowed),
        _ => Err(Invalid::Url),
    }
}

/// Which events an endpoint takes: all, or some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    All,
    Only(Vec<Kind>),
}

impl Filter {
    /// From the API's list: `["*"]`, or known event names (no repeats
    /// kept); anything else is refused.
    pub fn parse(events: &[String]) -> Result<Filter, Invalid> {
        if events == ["*"] {
            return Ok(Filter::All);
        }
        let mut kinds = Vec::new();
        for e in events {
            let k = Kind::parse(e).ok_or(Invalid::Events)?;
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        if kinds.is_empty() {
            return Err(Invalid::Events);
        }
        Ok(Filter::Only(kinds))
    }

    /// As stored in D1 and shown by the API.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            Filter::All => vec!["*"],
            Filter::Only(k) => k.iter().map(|k| k.as_str()).collect(),
        }
    }

    /// Back from the stored form (a comma-separated list); unknown names,
    /// from a newer version, are skipped.
    pub fn from_stored(s: &str) -> Filter {
        if s == "*" {
            return Filter::All;
        }
        Filter::Only(s.split(',').filter_map(Kind::parse).collect())
    }

    pub fn stored(&self) -> String {
        self.names().join(",")
    }

    pub fn takes(&self, kind: Kind) -> bool {
        match self {
            Filter::All => true,
            Filter::Only(k) => k.contains(&kind),
        }
    }
}

/// An endpoint id: `wh_` and 24 hex digits.
pub fn new_endpoint_id() -> String {
    format!("wh_{}", crate::ids::random_hex(12))
}

/// Whether `s` has the shape of an endpoint id (the router's check).
pub fn is_endpoint_id(s: &str) -> bool {
    s.strip_prefix("wh_")
        .is_some_and(|h| h.len() == 24 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

#[cfg(test)]
mod tests;
