//! bencode::decode and decode_prefix; a decoded value must survive encode → decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strand::bencode;

mod common;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

fuzz_target!(|data: &[u8]| {
    common::bounded(data.len(), || {
        if let Ok((value, used)) = bencode::decode_prefix(data) {
            assert!(used <= data.len());
            assert_eq!(bencode::decode(&data[..used]).as_ref(), Ok(&value));
        }
        if let Ok(value) = bencode::decode(data) {
            let encoded = value.encode();
            assert_eq!(bencode::decode(&encoded), Ok(value));
        }
    });
});
