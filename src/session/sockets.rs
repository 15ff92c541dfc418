//! Socket fan-out.

use wasm_bindgen::{prelude::wasm_bindgen, JsCast, JsValue};
use worker::WebSocket;

#[wasm_bindgen]
extern "C" {
    /// The JS WebSocket, bound so that `send` takes an existing JS string:
    /// worker's `send_with_str` would copy the frame across the wasm boundary
    /// once per recipient.
    type RawSocket;

    #[wasm_bindgen(method, catch, js_name = send)]
    fn send_value(this: &RawSocket, data: &JsValue) -> Result<(), JsValue>;
}

/// Sends one frame to every socket except `sender`. The frame crosses into JS
/// once; each socket then gets the same JS string.
pub fn broadcast_except(sockets: &[WebSocket], sender: &WebSocket, frame: &str) {
    let frame = JsValue::from_str(frame);
    for ws in sockets.iter().filter(|ws| *ws != sender) {
        let raw: &worker::web_sys::WebSocket = ws.as_ref();
        // A socket that is closing refuses sends; the others still get theirs.
        let _ = raw.unchecked_ref::<RawSocket>().send_value(&frame);
    }
}
