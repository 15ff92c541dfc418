//! Identifier formats, and the types made only from ids that pass them
//! (`SessionId`, `UserId`). Pure.

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
