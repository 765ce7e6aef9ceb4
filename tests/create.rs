//! `strand::create` and `strand::storage::check` against the test kit's independent torrent
//! builder: same files, same piece length → same info hash; and a kit torrent checks out
//! against the files it describes.

mod common;

use strand::create::{create, CreateOptions};
use strand::metainfo::Metainfo;
use strand::storage::check::check;
use strand::storage::FileMap;

use common::*;

const KIB: u32 = 1024;

fn options(piece_len: u32) -> CreateOptions {
    CreateOptions {
        piece_length: Some(piece_len),
        threads: 2,
        ..CreateOptions::default()
    }
}

/// Writes the kit torrent's files under `root`.
fn write_files(t: &TestTorrent, root: &std::path::Path) {
    for (rel, data) in &t.files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(&path, data).expect("write");
    }
}

#[test]
fn multi_file_info_hash_matches_the_kit() {
    let (a, b, c) = (payload(100_000, 1), payload(0, 2), payload(70_001, 3));
    // Listed in the byte order create uses.
    let t = make_torrent(
        &[("a.bin", &a), ("dir/b.empty", &b), ("dir/sub/c.bin", &c)],
        32 * KIB,
        "pack",
        None,
        true,
    );
    let dir = TempDir::new("create-kit-multi");
    write_files(&t, dir.path());
    let out = create(&dir.path().join("pack"), &options(32 * KIB), &mut |_, _| {}).expect("create");
    let ours = Metainfo::from_bytes(&out).expect("parse");
    assert_eq!(ours.info_hash, t.info_hash);

    let kit = Metainfo::from_bytes(&t.bytes).expect("kit torrent parses");
    let have = check(&FileMap::plain(dir.path(), &kit), &kit, 2, &mut |_, _| {}).expect("check");
    assert!(have.is_full(), "{} of {} pieces", have.count(), have.len());
}

#[test]
fn single_file_info_hash_matches_the_kit_and_check_finds_damage() {
    let data = payload(1_000_000, 9);
    let t = make_torrent(&[("", &data)], 64 * KIB, "one.bin", None, false);
    let dir = TempDir::new("create-kit-single");
    write_files(&t, dir.path());
    let file = dir.path().join("one.bin");
    let out = create(&file, &options(64 * KIB), &mut |_, _| {}).expect("create");
    assert_eq!(
        Metainfo::from_bytes(&out).expect("parse").info_hash,
        t.info_hash
    );

    // Flip one byte in piece 7 (bytes 458752..524288).
    let mut damaged = data.clone();
    damaged[500_000] ^= 0xff;
    std::fs::write(&file, &damaged).expect("write");
    let kit = Metainfo::from_bytes(&t.bytes).expect("kit torrent parses");
    let have = check(&FileMap::plain(dir.path(), &kit), &kit, 1, &mut |_, _| {}).expect("check");
    let missing: Vec<u32> = (0..have.len()).filter(|&i| !have.has(i)).collect();
    assert_eq!(missing, [7]);
}
