//! Identifier formats, each with its one validator, and the types made
//! only from ids that pass them: [`SessionId`], [`UserId`], [`ClientId`];
//! and [`MessageId`], which only the session object makes. Pure.

/// Session ids travel in URLs and Durable Object names, so they are kept to a
/// URL-safe alphabet and a bounded length. Anything else is treated as an id
/// that does not exist.
pub fn is_valid_session_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A session id that passed [`is_valid_session_id`]: the only way to make
/// one is [`SessionId::parse`], so a handler that takes one cannot be given
/// an unchecked id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionId<'a>(&'a str);

impl<'a> SessionId<'a> {
    pub fn parse(id: &'a str) -> Option<SessionId<'a>> {
        is_valid_session_id(id).then_some(SessionId(id))
    }

    pub fn as_str(self) -> &'a str {
        self.0
    }
}

/// A user id that passed [`is_valid_user_id`], made only by
/// [`UserId::parse`]: what a token's `sub`, a dev token's `sub`, a member
/// to add and a member in a path all become.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserId(String);

impl UserId {
    pub fn parse(id: String) -> Option<UserId> {
        is_valid_user_id(&id).then_some(UserId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The 400 for a user id that breaks the rule.
    pub fn refused() -> crate::error::AppError {
        crate::error::AppError::bad_request("invalid_user_id", USER_ID_RULE)
    }
}

/// The rule in words, for the 400 that refuses a user id.
pub const USER_ID_RULE: &str =
    "a user id is 1-128 characters without control characters or surrounding spaces";

/// Longest user id, in characters: identity providers' subjects
/// (`auth0|123`, `google-oauth2|1098…`, e-mail addresses) fit.
pub const MAX_USER_ID_CHARS: usize = 128;

/// The one rule for user ids, wherever one is accepted: a token's `sub`, a
/// dev token, a member to add, a member in a path (percent-decoded first).
/// 1-128 characters, no surrounding white space and no control characters;
/// anything else an identity provider issues is allowed.
pub fn is_valid_user_id(id: &str) -> bool {
    (1..=MAX_USER_ID_CHARS).contains(&id.chars().count())
        && id.trim() == id
        && !id.chars().any(char::is_control)
}

/// Random bytes in a message id (hex encoded: 32 characters).
const MESSAGE_ID_BYTES: usize = 16;

/// A message's id, made by the session object when it stores the message
/// ([`MessageId::new`]) or read back from its log ([`MessageId::stored`]).
/// Clients refer to messages by seq; the id keys the message's sealed body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageId(String);

impl MessageId {
    pub fn new() -> MessageId {
        MessageId(random_hex(MESSAGE_ID_BYTES))
    }

    /// An id read back from the session log, which holds only ids made by
    /// [`MessageId::new`]. Not checked again: what a log row says is
    /// trusted as the log's own, as the rest of the row is.
    pub fn stored(id: String) -> MessageId {
        debug_assert!(is_valid_message_id(&id), "{id}");
        MessageId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Read as the string it is (ids are written to storage and frames as is).
impl std::ops::Deref for MessageId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Default for MessageId {
    fn default() -> Self {
        MessageId::new()
    }
}

/// A message id is [`MESSAGE_ID_BYTES`] random bytes in lower-case hex.
pub fn is_valid_message_id(id: &str) -> bool {
    id.len() == 2 * MESSAGE_ID_BYTES && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Longest `client_id` accepted.
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// Client ids starting with this are the server's own (an assistant reply
/// is stored as `turn:<message id>`); clients may not use them.
pub const RESERVED_CLIENT_ID_PREFIX: &str = "turn:";

/// The id a client gives a send, so a retry is recognised as the same
/// message; or the server's own for an assistant reply. Made only by
/// [`ClientId::parse`] (a client's) and [`ClientId::of_reply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientId(String);

/// Why a client's id was refused, in words a client may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientIdRefused {
    Format,
    Reserved,
}

impl ClientIdRefused {
    pub fn message(self) -> &'static str {
        match self {
            ClientIdRefused::Format => "client_id must be 1-64 characters of A-Z a-z 0-9 - _ : .",
            ClientIdRefused::Reserved => "client ids starting with \"turn:\" are reserved",
        }
    }
}

impl ClientId {
    /// A client's id for a send: the format, and not the server's prefix.
    pub fn parse(id: String) -> Result<ClientId, ClientIdRefused> {
        ClientId::check(&id).map(|()| ClientId(id))
    }

    /// What [`ClientId::parse`] would say of `id`, without taking it.
    pub fn check(id: &str) -> Result<(), ClientIdRefused> {
        if !is_valid_client_id(id) {
            Err(ClientIdRefused::Format)
        } else if id.starts_with(RESERVED_CLIENT_ID_PREFIX) {
            Err(ClientIdRefused::Reserved)
        } else {
            Ok(())
        }
    }

    /// The client id of the assistant reply `message`, which no client can
    /// take.
    pub fn of_reply(message: &MessageId) -> ClientId {
        ClientId(RESERVED_CLIENT_ID_PREFIX.to_string() + message.as_str())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for ClientId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Read from a frame: a client's id, checked as [`ClientId::parse`] checks.
impl<'de> serde::Deserialize<'de> for ClientId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ClientId::parse(String::deserialize(d)?)
            .map_err(|why| serde::de::Error::custom(why.message()))
    }
}

/// The client id format: 1-64 characters of `A-Z a-z 0-9 - _ : .` (the
/// echo of a refused frame uses it too).
pub fn is_valid_client_id(id: &str) -> bool {
    (1..=MAX_CLIENT_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
}

/// Decodes one percent-encoded path segment (`auth0%7C123` → `auth0|123`).
/// `None` for a malformed escape or bytes that are not UTF-8.
pub fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A random identifier of `bytes` random bytes, hex encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // getrandom only fails when the platform has no entropy source at all,
    // which neither workerd nor any supported host is.
    getrandom::getrandom(&mut buf).expect("entropy source unavailable");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A uniform random number in [0, 1), for jitter.
pub fn random_unit() -> f64 {
    let mut buf = [0u8; 4];
    getrandom::getrandom(&mut buf).expect("entropy source unavailable");
    u32::from_le_bytes(buf) as f64 / (u32::MAX as f64 + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids() {
        assert!(is_valid_session_id("abc-DEF_123"));
        assert!(is_valid_session_id(&"a".repeat(64)));
        assert!(!is_valid_session_id(""));
        assert!(!is_valid_session_id(&"a".repeat(65)));
        assert!(!is_valid_session_id("a/b"));
        assert!(!is_valid_session_id("a b"));
        assert!(!is_valid_session_id("é"));
    }

    #[test]
    fn user_ids_accept_identity_provider_subjects() {
        for ok in [
            "u1",
            "auth0|123",
            "google-oauth2|1098",
            "ann@example.com",
            "a b",
            "ü",
        ] {
            assert!(is_valid_user_id(ok), "{ok}");
        }
        assert!(is_valid_user_id(&"x".repeat(MAX_USER_ID_CHARS)));
        for bad in ["", " a", "a ", "a\nb", "a\u{0}b"] {
            assert!(!is_valid_user_id(bad), "{bad:?}");
        }
        assert!(!is_valid_user_id(&"x".repeat(MAX_USER_ID_CHARS + 1)));
    }

    #[test]
    fn id_types_are_made_only_from_valid_ids() {
        assert_eq!(
            SessionId::parse("abc_1").map(SessionId::as_str),
            Some("abc_1")
        );
        assert_eq!(SessionId::parse("a b"), None);
        let u = UserId::parse("auth0|123".into()).unwrap();
        assert_eq!(u.as_str(), "auth0|123");
        assert_eq!(UserId::parse(" padded".into()), None);
        assert_eq!(UserId::parse(String::new()), None);
        assert!(USER_ID_RULE.contains(&format!("1-{MAX_USER_ID_CHARS} ")));
    }

    #[test]
    fn message_ids_are_random_hex() {
        let (a, b) = (MessageId::new(), MessageId::new());
        assert_ne!(a, b);
        assert!(is_valid_message_id(a.as_str()), "{a:?}");
        assert_eq!(MessageId::stored(a.to_string()), a);
        for bad in ["", "abc", &"A".repeat(32), &"0".repeat(33), &"g".repeat(32)] {
            assert!(!is_valid_message_id(bad), "{bad}");
        }
    }

    #[test]
    fn client_ids_a_client_may_choose_and_the_servers_own() {
        for ok in ["c1", "a-b_c:d.e", &"x".repeat(MAX_CLIENT_ID_CHARS)] {
            assert_eq!(ClientId::parse(ok.to_string()).unwrap().as_str(), ok);
        }
        for bad in ["", "a b", "é", &"x".repeat(MAX_CLIENT_ID_CHARS + 1)] {
            assert_eq!(
                ClientId::parse(bad.to_string()),
                Err(ClientIdRefused::Format),
                "{bad}"
            );
        }
        assert_eq!(
            ClientId::parse("turn:abc".into()),
            Err(ClientIdRefused::Reserved)
        );
        // The server's id for a reply has the prefix no client may use.
        let m = MessageId::new();
        let reply = ClientId::of_reply(&m);
        assert_eq!(reply.as_str(), format!("turn:{}", m.as_str()));
        assert_eq!(
            ClientId::parse(reply.as_str().to_string()),
            Err(ClientIdRefused::Reserved)
        );
        // Deserializing checks as parse does.
        let read = |j: &str| serde_json::from_str::<ClientId>(j).map_err(|e| e.to_string());
        assert_eq!(read("\"c1\"").unwrap().as_str(), "c1");
        assert!(read("\"turn:x\"").unwrap_err().contains("reserved"));
        // The messages are literals (no formatting code in the worker); they
        // state the same facts as the constants.
        let reserved = format!("{RESERVED_CLIENT_ID_PREFIX:?}");
        assert!(ClientIdRefused::Reserved.message().contains(&reserved));
        assert!(read("\"a b\"")
            .unwrap_err()
            .contains(&format!("1-{MAX_CLIENT_ID_CHARS} ")));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("auth0%7C123").as_deref(), Some("auth0|123"));
        assert_eq!(
            percent_decode("ann%40example.com").as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(percent_decode("%C3%BC").as_deref(), Some("ü"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("bad%7"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn random_hex_is_hex_and_varies() {
        let a = random_hex(16);
        let b = random_hex(16);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        let u = random_unit();
        assert!((0.0..1.0).contains(&u));
    }
}
