//! Metainfo::from_bytes (a whole .torrent, file paths included) and from_info_bytes (a bare
//! info dict, as fetched for a magnet link). A parsed torrent must survive to_torrent_bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strand::metainfo::Metainfo;

mod common;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

fuzz_target!(|data: &[u8]| {
    common::bounded(data.len(), || {
        if let Ok(meta) = Metainfo::from_bytes(data) {
            let again = Metainfo::from_bytes(&meta.to_torrent_bytes())
                .expect("to_torrent_bytes of a parsed torrent parses");
            assert_eq!(again.info_hash, meta.info_hash);
            assert_eq!(again.files, meta.files);
            assert_eq!(again.trackers, meta.trackers);
            assert_eq!(again.piece_hashes, meta.piece_hashes);
            let _ = meta.info_hash_hex();
        }
        if let Ok(meta) = Metainfo::from_info_bytes(data, vec![vec!["http://t/announce".into()]]) {
            assert_eq!(meta.info_bytes, data);
            assert_eq!(
                meta.piece_hashes.len() as u64,
                meta.geometry.piece_count() as u64
            );
        }
    });
});
