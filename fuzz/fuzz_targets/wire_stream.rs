//! A peer's byte stream: an optional 68-byte handshake (peer::handshake::read_handshake),
//! then peer::wire::read_message in a loop until the stream ends or is refused.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use strand::peer::{handshake, wire};

mod common;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

fuzz_target!(|data: &[u8]| {
    common::bounded(data.len(), || {
        let mut r = Cursor::new(data);
        if let Ok(hs) = handshake::read_handshake(&mut r) {
            let _ = hs.supports_extensions();
            let _ = hs.supports_fast();
            assert_eq!(&hs.to_bytes()[..], &data[..68]);
        } else {
            r.set_position(0);
        }
        loop {
            let before = r.position();
            match wire::read_message(&mut r) {
                Ok(msg) => {
                    assert!(r.position() > before, "a message consumed no bytes");
                    let mut out = Vec::new();
                    wire::encode(&msg, &mut out);
                    assert_eq!(&out[..], &data[before as usize..r.position() as usize]);
                }
                Err(_) => break,
            }
        }
    });
});
