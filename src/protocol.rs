//! WebSocket frames. Pure: serde types only, tested natively.
//!
//! The foundation relays client text frames verbatim between the sockets of a
//! session; the only frame the server originates so far is `error`.

use serde::Serialize;

/// Frames the server sends.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Error { code: &'a str, message: &'a str },
}

impl ServerFrame<'_> {
    /// Serialized once, then the same string goes to every recipient.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).expect("server frame serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_frame_shape() {
        let f = ServerFrame::Error {
            code: "binary_not_supported",
            message: "send JSON text frames",
        };
        let v: serde_json::Value = serde_json::from_str(&f.to_json()).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "binary_not_supported");
        assert_eq!(v["message"], "send JSON text frames");
    }
}
