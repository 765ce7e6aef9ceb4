//! storage::resume::decode: the resume file strand reads back at start, which a crash, a full
//! disk or another program may have left in any state. The first two bytes give the torrent's
//! piece count; the rest is the file. The info hash is the one make-seeds.sh writes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strand::storage::resume;

mod common;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

const INFO_HASH: &[u8; 20] = b"strand fuzz: resume!";

fuzz_target!(|data: &[u8]| {
    common::bounded(data.len(), || {
        if data.len() < 2 {
            return;
        }
        let pieces = usize::from(u16::from_be_bytes([data[0], data[1]]));
        if let Ok((have, stamps)) = resume::decode(&data[2..], INFO_HASH, pieces) {
            assert_eq!(have.len(), pieces);
            let again = resume::encode(INFO_HASH, &have, &stamps);
            assert_eq!(resume::decode(&again, INFO_HASH, pieces), Ok((have, stamps)));
        }
    });
});
