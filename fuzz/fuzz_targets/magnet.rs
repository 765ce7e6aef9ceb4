//! magnet::parse, on valid UTF-8 and on lossily converted bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strand::magnet;

mod common;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

fuzz_target!(|data: &[u8]| {
    common::bounded(data.len(), || {
        let text = String::from_utf8_lossy(data);
        if let Ok(m) = magnet::parse(&text) {
            assert!(m.trackers.len() + m.peers.len() <= text.len());
        }
    });
});
