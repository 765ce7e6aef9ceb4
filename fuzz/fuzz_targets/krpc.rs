//! dht::krpc::decode, as the DHT thread runs it on every datagram; a decoded message must
//! survive encode → decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strand::dht::krpc;

mod common;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

fuzz_target!(|data: &[u8]| {
    common::bounded(data.len(), || {
        if let Ok(message) = krpc::decode(data) {
            let encoded = message.encode();
            assert_eq!(krpc::decode(&encoded), Ok(message));
        }
    });
});
