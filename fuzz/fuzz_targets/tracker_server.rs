//! tracker_server::parse_request: the request heads a stranger sends to `strand tracker`
//! over HTTP (request line, query string with percent-escapes, announce and scrape
//! parameters), read from an IPv4 and an IPv6 address.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use strand::tracker_server::{self, HttpRequest};

mod common;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

fuzz_target!(|data: &[u8]| {
    common::bounded(data.len(), || {
        for from in ["127.0.0.1:40000", "[::1]:40000"] {
            let from: SocketAddr = from.parse().expect("a literal address");
            if let Ok(HttpRequest::Scrape(hashes)) = tracker_server::parse_request(data, from) {
                // Each hash comes from at least `info_hash=` plus 20 bytes of the head.
                assert!(hashes.len() * 30 <= data.len());
            }
        }
    });
});
