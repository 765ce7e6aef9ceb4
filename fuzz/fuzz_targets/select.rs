//! select::parse_only (`--only 1,3-5`) and select::glob_match (`--exclude GLOB`).
//! The first two bytes give the file count; the rest, split at the first NUL, is the
//! --only list / the glob, and the text the glob is matched against.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strand::select;

mod common;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

fuzz_target!(|data: &[u8]| {
    common::bounded(data.len(), || {
        if data.len() < 2 {
            return;
        }
        let count = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let (pattern, text) = match rest.iter().position(|&b| b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &b""[..]),
        };
        if let Ok(mask) = select::parse_only(&String::from_utf8_lossy(pattern), count) {
            assert_eq!(mask.len(), count);
        }
        let matched = select::glob_match(pattern, text);
        if !pattern.contains(&b'*') && !pattern.contains(&b'?') {
            assert_eq!(matched, pattern == text);
        }
        assert!(select::glob_match(b"*", text));
    });
});
