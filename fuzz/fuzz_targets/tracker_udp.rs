//! tracker::udp and udp_wire: reply datagrams (connect, announce over IPv4 and IPv6, scrape, error) as the
//! client reads them, through Response::decode and check_reply, and request datagrams as the
//! built-in tracker's UDP side reads them (Request::decode).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strand::tracker::udp;
use strand::tracker::udp_wire::{Request, Response};

mod common;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

fuzz_target!(|data: &[u8]| {
    common::bounded(data.len(), || {
        for ipv6 in [false, true] {
            if let Ok(reply) = Response::decode(data, ipv6) {
                let _ = reply.encode();
                let tid = reply.transaction_id();
                let _ = udp::check_reply("udp://127.0.0.1:6969", data, tid, ipv6);
            }
        }
        if let Ok(request) = Request::decode(data) {
            let encoded = request.encode();
            assert_eq!(
                Request::decode(&encoded).map(|r| r.transaction_id()),
                Ok(request.transaction_id())
            );
        }
    });
});
