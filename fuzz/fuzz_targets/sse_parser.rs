//! Any byte stream, cut into chunks at fuzzer-chosen points: the SSE parser
//! never panics, stays within its line bound, and gives the same events
//! however the stream is chunked.
#![no_main]

use confab::llm::sse::Parser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    // The first byte picks the chunk size; the rest is the stream.
    let (size, stream) = (data[0] as usize % 17 + 1, &data[1..]);
    let mut whole = Parser::new(1 << 16);
    let Ok(expected) = whole.feed(stream) else { return };
    let mut chunked = Parser::new(1 << 16);
    let mut got = Vec::new();
    for chunk in stream.chunks(size) {
        got.extend(chunked.feed(chunk).expect("the same bound holds chunked"));
    }
    assert_eq!(got, expected);
});
