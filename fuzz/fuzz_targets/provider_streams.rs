//! Any SSE stream through each vendor's decoder: decoding never panics and
//! an error is a clean `Malformed`, never a crash.
#![no_main]

use confab::llm::providers::decode;
use confab::llm::sse::Parser;
use confab::llm::Kind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parser = Parser::new(1 << 16);
    let Ok(events) = parser.feed(data) else { return };
    for ev in &events {
        for kind in [Kind::Openai, Kind::Anthropic, Kind::Gemini, Kind::WorkersAi] {
            let _ = decode(kind, ev);
        }
    }
});
