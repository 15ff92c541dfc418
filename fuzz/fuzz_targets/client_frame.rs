//! Any bytes as a client text frame: decoding never panics, and whatever it
//! accepts satisfies the limits it promises.
#![no_main]

use confab::ids::{MAX_CLIENT_ID_CHARS, RESERVED_CLIENT_ID_PREFIX};
use confab::protocol::{decode, ClientFrame, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = Limits { max_message_chars: 64 };
    match decode(text, limits) {
        Ok(ClientFrame::Send { client_id, text, .. }) => {
            let id = client_id.as_str();
            assert!(!id.is_empty() && id.len() <= MAX_CLIENT_ID_CHARS && !id.starts_with(RESERVED_CLIENT_ID_PREFIX));
            assert!(!text.trim().is_empty() && text.chars().count() <= 64);
        }
        Ok(ClientFrame::Edit { seq, text }) => {
            assert!(seq > 0 && !text.trim().is_empty() && text.chars().count() <= 64);
        }
        Ok(_) => {}
        Err(e) => {
            // Every refusal carries a stable code and renders as a frame.
            assert!(!e.code.is_empty());
            let frame = confab::error::SocketError::Frame(e).frame(None);
            let frame: serde_json::Value = serde_json::from_str(&frame).unwrap();
            assert_eq!(frame["type"], "error");
        }
    }
});
