//! Any bytes as a client text frame: decoding never panics, and whatever it
//! accepts satisfies the limits it promises.
#![no_main]

use confab::protocol::{decode, ClientFrame, Limits, MAX_CLIENT_ID_CHARS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = Limits { max_message_chars: 64 };
    match decode(text, limits) {
        Ok(ClientFrame::Send { client_id, text, .. }) => {
            assert!(!client_id.is_empty() && client_id.chars().count() <= MAX_CLIENT_ID_CHARS);
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
