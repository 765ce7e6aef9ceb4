//! peer::extension: the BEP 10 extension handshake, ut_metadata (BEP 9) and ut_pex (BEP 11)
//! payloads, each parser fed the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strand::peer::extension::{self, MetadataMsg, MAX_PEX_PEERS};

mod common;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

fuzz_target!(|data: &[u8]| {
    common::bounded(data.len(), || {
        if let Some(hs) = extension::parse_handshake(data) {
            assert!(hs.client.as_ref().map_or(0, |c| c.chars().count()) <= 64);
        }
        if let Some(msg) = extension::parse_metadata(data) {
            if let MetadataMsg::Data {
                piece,
                total_size,
                data: bytes,
            } = &msg
            {
                assert!(bytes.len() <= data.len());
                let _ = extension::expected_piece_len(*total_size, *piece);
                let _ = extension::metadata_piece_count(*total_size);
            }
            assert_eq!(
                extension::parse_metadata(&extension::encode_metadata(&msg)),
                Some(msg)
            );
        }
        if let Some(pex) = extension::parse_pex(data) {
            assert!(pex.added.len() <= MAX_PEX_PEERS && pex.dropped.len() <= MAX_PEX_PEERS);
            assert_eq!(
                extension::parse_pex(&extension::encode_pex(&pex)),
                Some(pex)
            );
        }
    });
});
