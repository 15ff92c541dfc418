//! Internally tagged JSON (`{"op": "init", "session": …}`) for enums that
//! derive serde's default, externally tagged form. Pure.
//!
//! serde's `#[serde(tag = "…")]` reads such an object by first buffering
//! it whole in serde's private `Content` tree, whose deserializers come to
//! about 60 KB of the worker (serde_json's, serde_wasm_bindgen's, and one
//! visitor per variant). Reading through serde_json's `Value`, which the
//! worker links anyway, costs the same work at run time and none of that
//! code. Writing splices the externally tagged text, so fields keep their
//! declared order and the bytes are those `#[serde(tag)]` would write.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// Why an object is not one of the enum's variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaggedError {
    /// Not a JSON object with a string `tag` member.
    NoTag,
    /// The tag names a variant, but the other members do not fit it (or
    /// the tag names no variant); serde's message says which.
    Invalid(String),
}

/// Reads `text`, an object whose member `tag` names the variant.
pub fn from_str<T: DeserializeOwned>(text: &str, tag: &str) -> Result<T, TaggedError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| TaggedError::Invalid(e.to_string()))?;
    from_value(value, tag)
}

/// `from_str` for an object already parsed.
pub fn from_value<T: DeserializeOwned>(value: Value, tag: &str) -> Result<T, TaggedError> {
    let Value::Object(mut rest) = value else {
        return Err(TaggedError::NoTag);
    };
    let Some(Value::String(variant)) = rest.remove(tag) else {
        return Err(TaggedError::NoTag);
    };
    let mut external = Map::new();
    external.insert(variant.clone(), Value::Object(rest));
    match serde_json::from_value(Value::Object(external)) {
        Ok(v) => Ok(v),
        // A unit variant is written as its bare name; as with
        // `#[serde(tag)]`, members beside the tag are then ignored.
        Err(e) => serde_json::from_value(Value::String(variant))
            .map_err(|_| TaggedError::Invalid(e.to_string())),
    }
}

/// Writes `value` as an object whose first member `tag` names the variant.
/// `T` must be an enum whose variants are structs or units (what
/// `#[serde(tag)]` itself allows).
pub fn to_string<T: Serialize>(value: &T, tag: &str) -> String {
    // Serializing our own enums cannot fail: their fields are plain data.
    let external = serde_json::to_string(value).expect("an enum of plain data serializes");
    let tag_json = Value::from(tag).to_string();
    if external.starts_with('"') {
        // A unit variant: `"name"`.
        return format!("{{{tag_json}:{external}}}");
    }
    // A struct variant: `{"name":{...}}`. Variant names are identifiers,
    // so the key has no escapes and ends at the first `":`.
    let split = external.find("\":").expect("an externally tagged variant");
    let name = &external[1..split + 1];
    let inner = &external[split + 2..external.len() - 1];
    match inner.strip_prefix('{').and_then(|i| i.strip_suffix('}')) {
        Some("") => format!("{{{tag_json}:{name}}}"),
        Some(fields) => format!("{{{tag_json}:{name},{fields}}}"),
        None => unreachable!("a struct variant serializes as an object: {inner}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Plain {
        Send {
            text: String,
            #[serde(default)]
            reply_to: Option<u64>,
        },
        Empty {},
        Ping,
    }

    /// The same enum as serde writes it with `#[serde(tag)]`: the reference.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Reference {
        Send {
            text: String,
            #[serde(default)]
            reply_to: Option<u64>,
        },
        Empty {},
        Ping,
    }

    #[test]
    fn writes_the_bytes_serde_tag_writes() {
        let cases = [
            (
                Plain::Send {
                    text: "hé \"q\"".into(),
                    reply_to: Some(3),
                },
                Reference::Send {
                    text: "hé \"q\"".into(),
                    reply_to: Some(3),
                },
            ),
            (Plain::Empty {}, Reference::Empty {}),
            (Plain::Ping, Reference::Ping),
        ];
        for (plain, reference) in cases {
            let text = to_string(&plain, "type");
            assert_eq!(text, serde_json::to_string(&reference).unwrap());
            assert_eq!(from_str::<Plain>(&text, "type"), Ok(plain));
        }
    }

    #[test]
    fn reads_what_serde_tag_reads_and_refuses_the_rest() {
        for text in [
            r#"{"type":"send","text":"a"}"#,
            r#"{"text":"a","type":"send","extra":1}"#,
            r#"{"type":"ping","extra":1}"#,
            r#"{"type":"empty"}"#,
        ] {
            let reference: Reference = serde_json::from_str(text).unwrap();
            let plain: Plain = from_str(text, "type").unwrap();
            assert_eq!(
                to_string(&plain, "type"),
                serde_json::to_string(&reference).unwrap(),
                "{text}"
            );
        }
        for text in [r#"[1]"#, r#"{"text":"a"}"#, r#"{"type":5}"#, "nope"] {
            assert!(serde_json::from_str::<Reference>(text).is_err());
            let err = from_str::<Plain>(text, "type").unwrap_err();
            assert!(
                matches!(err, TaggedError::NoTag | TaggedError::Invalid(_)),
                "{text}"
            );
        }
        assert_eq!(
            from_str::<Plain>(r#"{"text":"a"}"#, "type"),
            Err(TaggedError::NoTag)
        );
        let Err(TaggedError::Invalid(why)) = from_str::<Plain>(r#"{"type":"send"}"#, "type") else {
            panic!("a missing field is invalid");
        };
        assert!(why.contains("missing field `text`"), "{why}");
        assert!(from_str::<Plain>(r#"{"type":"explode"}"#, "type").is_err());
        assert!(from_str::<Plain>(r#"{"type":"send","text":5}"#, "type").is_err());
    }
}
