//! peer::wire::decode, one frame (id byte + payload, no length prefix). A decoded message
//! must encode back to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strand::peer::wire;

mod common;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

fuzz_target!(|data: &[u8]| {
    common::bounded(data.len(), || {
        if let Ok(msg) = wire::decode(data) {
            let _ = msg.to_string();
            let mut out = Vec::new();
            wire::encode(&msg, &mut out);
            assert_eq!(&out[4..], data);
            assert_eq!(
                u32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize,
                data.len()
            );
        }
    });
});
