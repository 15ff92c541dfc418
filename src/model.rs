//! Session records, HTTP request bodies and their validation, and the keyset
//! cursor. Pure, tested natively.

use crate::error::AppError;
use serde::{Deserialize, Serialize};

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_CONTACT_NAME_CHARS: usize = 100;
pub const MAX_EMAIL_CHARS: usize = 254;
/// Page size bounds for listings and history.
pub const MAX_PAGE: u32 = 100;
pub const DEFAULT_PAGE: u32 = 50;

/// `POST /v1/sessions` body.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "object_only")]
    pub contact: Option<Contact>,
    /// The assistant profile to run under (`crate::llm::profile`); absent:
    /// the default.
    #[serde(default)]
    pub profile: Option<String>,
}

/// Reads a nested struct only from a JSON object: serde would also read one
/// from an array, by position, which no client means.
fn object_only<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        v @ serde_json::Value::Object(_) => serde_json::from_value(v)
            .map(Some)
            .map_err(D::Error::custom),
        _ => Err(D::Error::custom("expected a JSON object")),
    }
}

/// The optional pre-chat contact form: a name, an e-mail address, or
/// both (a product decides which its form asks for; the widget's `fields`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl NewSession {
    /// Trims and checks every field; the error names the field.
    pub fn validate(mut self) -> Result<NewSession, AppError> {
        self.title = match self.title.map(|t| t.trim().to_string()) {
            Some(t) if t.is_empty() => None,
            Some(t) if t.chars().count() > MAX_TITLE_CHARS => {
                return Err(AppError::bad_request(
                    "invalid_title",
                    format!("title is longer than {MAX_TITLE_CHARS} characters"),
                ))
            }
            other => other,
        };
        if let Some(c) = self.contact.as_mut() {
            let trim = |v: &mut Option<String>| *v = v.as_deref().map(|s| s.trim().to_string());
            trim(&mut c.name);
            trim(&mut c.email);
            if let Some(name) = &c.name {
                let n = name.chars().count();
                if n == 0 || n > MAX_CONTACT_NAME_CHARS || name.chars().any(char::is_control) {
                    return Err(AppError::bad_request(
                        "invalid_contact_name",
                        format!("contact.name must be 1-{MAX_CONTACT_NAME_CHARS} characters"),
                    ));
                }
            }
            if c.email.as_deref().is_some_and(|e| !valid_email(e)) {
                return Err(AppError::bad_request(
                    "invalid_contact_email",
                    "contact.email is not a valid email address",
                ));
            }
            if c.name.is_none() && c.email.is_none() {
                return Err(AppError::bad_request(
                    "invalid_contact_name",
                    "contact needs a name, an email, or both",
                ));
            }
        }
        Ok(self)
    }
}

/// A deliberately plain check: one `@`, a non-empty local part, a dotted
/// domain of sane characters, no spaces. Deliverability is not our business.
pub fn valid_email(email: &str) -> bool {
    if email.len() > MAX_EMAIL_CHARS || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

/// `POST /v1/sessions/{id}/members` body.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub user_id: String,
}

/// `POST /v1/dev/token` body.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct DevTokenRequest {
    pub name: String,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Lifetime in seconds (`DEV_TOKEN_TTL_RANGE`); a day when absent.
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
}

/// A session as the API shows it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub id: String,
    pub owner_id: String,
    pub title: Option<String>,
    pub contact: Option<Contact>,
    pub mode: crate::contract::Mode,
    /// The assistant profile its replies are written under
    /// (`crate::llm::profile`).
    pub profile: String,
    /// The support desk's fields (`crate::desk::View`), spelled out here
    /// rather than flattened: serde's flatten links a buffering reader.
    pub status: crate::desk::Status,
    pub assignee: Option<crate::protocol::UserRef>,
    pub waiting_since: Option<i64>,
    pub first_agent_reply_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_seq: u64,
    pub message_count: u64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Fields whose stored ciphertext could not be opened (shown as null).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub unreadable: Vec<Unreadable>,
}

impl SessionView {
    /// Takes the desk state the session object reports (fresher than D1's).
    pub fn set_desk(&mut self, d: crate::desk::View) {
        self.status = d.status;
        self.assignee = d.assignee;
        self.waiting_since = d.waiting_since;
        self.first_agent_reply_at = d.first_agent_reply_at;
        self.resolved_at = d.resolved_at;
    }
}

/// A stored value that could not be decrypted, and why.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub field: String,
    pub code: String,
}

/// The keyset position after the last row of a page of sessions ordered by
/// (updated_at DESC, id DESC). Opaque to clients: `<updated_at>.<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCursor {
    pub updated_at: i64,
    pub id: String,
}

impl SessionCursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.updated_at, self.id)
    }

    pub fn decode(s: &str) -> Result<SessionCursor, AppError> {
        let bad = || AppError::bad_request("invalid_cursor", "cursor is not one this API issued");
        let (t, id) = s.split_once('.').ok_or_else(bad)?;
        let updated_at = t.parse::<i64>().map_err(|_| bad())?;
        if !crate::ids::is_valid_session_id(id) {
            return Err(bad());
        }
        Ok(SessionCursor {
            updated_at,
            id: id.to_string(),
        })
    }
}

/// Parses `limit`: absent → default, otherwise 1..=MAX_PAGE.
pub fn page_limit(raw: Option<&str>) -> Result<u32, AppError> {
    match raw {
        None => Ok(DEFAULT_PAGE),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(AppError::bad_request(
                "invalid_limit",
                format!("limit must be an integer from 1 to {MAX_PAGE}"),
            )),
        },
    }
}

/// Parses a seq query parameter (`before`, `after`): a positive integer.
pub fn seq_param(name: &'static str, raw: Option<&str>) -> Result<Option<u64>, AppError> {
    match raw {
        None => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= crate::protocol::MAX_SEQ)
            .map(Some)
            .ok_or_else(|| {
                AppError::bad_request(
                    "invalid_seq",
                    format!(
                        "{name} must be an integer from 0 to {}",
                        crate::protocol::MAX_SEQ
                    ),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<NewSession, AppError> {
        serde_json::from_str::<NewSession>(json).unwrap().validate()
    }

    #[test]
    fn new_session_validation() {
        let s = parse(
            r#"{"title":"  Billing  ","contact":{"name":" Ann ","email":"ann@example.com"}}"#,
        )
        .unwrap();
        assert_eq!(s.title.as_deref(), Some("Billing"));
        assert_eq!(s.contact.unwrap().name.as_deref(), Some("Ann"));
        // Either field alone will do; neither will not.
        let only_email = parse(r#"{"contact":{"email":"a@b.co"}}"#).unwrap();
        assert_eq!(only_email.contact.unwrap().name, None);
        assert!(parse(r#"{"contact":{"name":"Ann"}}"#).is_ok());
        assert_eq!(
            parse(r#"{"contact":{}}"#).unwrap_err().code(),
            "invalid_contact_name"
        );
        assert!(
            serde_json::from_str::<NewSession>(r#"{"contact":["Ann","ann@example.com"]}"#).is_err()
        );
        assert!(serde_json::from_str::<NewSession>(r#"{"contact":null}"#)
            .unwrap()
            .contact
            .is_none());
        assert!(parse("{}").unwrap().title.is_none());
        assert_eq!(parse(r#"{"title":"   "}"#).unwrap().title, None);
        let long = format!(r#"{{"title":"{}"}}"#, "x".repeat(201));
        assert_eq!(parse(&long).unwrap_err().code(), "invalid_title");
        assert_eq!(
            parse(r#"{"contact":{"name":"","email":"a@b.co"}}"#)
                .unwrap_err()
                .code(),
            "invalid_contact_name"
        );
        assert_eq!(
            parse(r#"{"contact":{"name":"A","email":"nope"}}"#)
                .unwrap_err()
                .code(),
            "invalid_contact_email"
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<NewSession>(r#"{"titel":"x"}"#).is_err());
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@sub.example.org", "ü@exämple.de"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a@.b.co", "a@b.co.", "a b@c.de", "a@b@c.de", "a@b..co",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn cursor_round_trip_and_rejects_garbage() {
        let c = SessionCursor {
            updated_at: 123,
            id: "abc".into(),
        };
        assert_eq!(SessionCursor::decode(&c.encode()), Ok(c));
        for bad in ["", "x.abc", "123", "123.a/b", "123."] {
            assert_eq!(
                SessionCursor::decode(bad).unwrap_err().code(),
                "invalid_cursor",
                "{bad}"
            );
        }
    }

    #[test]
    fn limits_and_seqs() {
        assert_eq!(page_limit(None), Ok(DEFAULT_PAGE));
        assert_eq!(page_limit(Some("100")), Ok(100));
        for bad in ["0", "101", "-1", "x"] {
            assert_eq!(page_limit(Some(bad)).unwrap_err().code(), "invalid_limit");
        }
        assert_eq!(seq_param("before", Some("7")), Ok(Some(7)));
        assert_eq!(
            seq_param("before", Some("x")).unwrap_err().code(),
            "invalid_seq"
        );
    }
}
