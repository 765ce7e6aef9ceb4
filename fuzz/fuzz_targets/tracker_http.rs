//! tracker::http::parse_response: an HTTP tracker's reply body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strand::tracker::http;

mod common;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

fuzz_target!(|data: &[u8]| {
    common::bounded(data.len(), || {
        if let Ok(reply) = http::parse_response("http://127.0.0.1:6969/announce", data) {
            // Every peer came out of the body: 6 bytes (compact v4), 18 (compact v6) or a dict.
            assert!(reply.peers.len() <= data.len() / 6);
            assert!(reply.peers.iter().all(|p| p.port() != 0));
        }
    });
});
