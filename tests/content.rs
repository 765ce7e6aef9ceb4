//! Torrents as other tools make them, downloaded end to end on 127.0.0.1: pad files (BEP 47)
//! and libtorrent 2.0's hybrid torrent (BEP 52, `testdata/hybrid.torrent`). Every download is
//! bounded by `common::DOWNLOAD_TIMEOUT`.

mod common;

use std::collections::BTreeMap;

use common::*;

/// Byte i of a fixture file made with seed k (as `testdata/make-content-fixtures.py`).
fn fixture_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((7 * i + seed as usize) % 251) as u8)
        .collect()
}

/// A multi-file torrent `name` of `entries` (path, bytes, is padding), with pad files marked
/// `attr` `p` under `.pad/N` as libtorrent writes them.
fn padded_torrent(name: &str, entries: &[(&str, Vec<u8>, bool)], piece_len: u32) -> TestTorrent {
    let data: Vec<u8> = entries.iter().flat_map(|e| e.1.clone()).collect();
    let pieces: Vec<u8> = data.chunks(piece_len as usize).flat_map(sha1).collect();
    let files = entries
        .iter()
        .map(|(path, d, pad)| {
            let mut f = vec![
                ("length", B::Int(d.len() as i64)),
                ("path", B::List(path.split('/').map(B::str).collect())),
            ];
            if *pad {
                f.push(("attr", B::str("p")));
            }
            B::dict(f)
        })
        .collect();
    let info = B::dict(vec![
        ("name", B::str(name)),
        ("piece length", B::Int(i64::from(piece_len))),
        ("pieces", B::Bytes(pieces)),
        ("files", B::List(files)),
    ]);
    let info_hash = sha1(&info.encode());
    TestTorrent {
        bytes: B::dict(vec![("info", info)]).encode(),
        info_hash,
        piece_len,
        data,
        files: entries
            .iter()
            .filter(|e| !e.2)
            .map(|(p, d, _)| (format!("{name}/{p}"), d.clone()))
            .collect(),
        name: name.to_string(),
    }
}

/// Blocks of `t` that hold at least one byte outside the padding ranges `pads`.
fn data_blocks(t: &TestTorrent, pads: &[std::ops::Range<usize>]) -> u64 {
    let mut n = 0;
    for piece in 0..t.piece_count() {
        let size = t.piece_size(piece);
        for begin in (0..size).step_by(BLOCK as usize) {
            let start = piece as usize * t.piece_len as usize + begin as usize;
            let end = start + (size - begin).min(BLOCK) as usize;
            if !pads.iter().any(|p| p.start <= start && end <= p.end) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn pad_files_are_never_created_nor_requested() {
    // Piece 64 KiB: a.bin ends 20000 bytes into piece 0, padding fills it (two blocks wholly
    // in padding), b.bin fills piece 1 and some, then more padding.
    let entries = [
        ("a.bin", fixture_bytes(20000, 1), false),
        (".pad/45536", vec![0; 45536], true),
        ("sub/b.bin", fixture_bytes(70000, 2), false),
        (".pad/61072", vec![0; 61072], true),
        ("c.bin", fixture_bytes(5, 3), false),
    ];
    let t = padded_torrent("padded", &entries, 65536);
    let pads = [20000..65536, 135536..196608];
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    let out = TempDir::new("pad");
    run_download(&t, vec![seeder.addr()], out.path()).expect("download");
    assert_output_matches(&t, out.path());
    assert!(
        !out.path().join("padded/.pad").exists(),
        "{:?}",
        list_files(out.path())
    );
    assert_eq!(
        seeder.blocks_served(),
        data_blocks(&t, &pads),
        "asked for a block wholly in padding"
    );
    assert_eq!(seeder.bad_requests(), 0);
}

#[test]
fn libtorrent_hybrid_with_pad_files_downloads_as_v1() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/hybrid.torrent"
    ))
    .expect("fixture");
    let meta = strand::metainfo::Metainfo::from_bytes(&bytes).expect("hybrid parses");
    // The fixture's files, its pad files as zeros (see make-content-fixtures.py).
    let mut contents: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    contents.insert("hybrid/a.txt", fixture_bytes(20000, 1));
    contents.insert("hybrid/sub/b.txt", fixture_bytes(5000, 2));
    let mut data = Vec::new();
    for f in &meta.files {
        match contents.get(f.path.to_str().expect("utf-8")) {
            Some(d) => data.extend_from_slice(d),
            None => data.extend(vec![0; f.length as usize]),
        }
    }
    let t = TestTorrent {
        bytes: bytes.clone(),
        info_hash: meta.info_hash,
        piece_len: meta.geometry.piece_len(),
        data,
        files: contents
            .iter()
            .map(|(p, d)| (p.to_string(), d.clone()))
            .collect(),
        name: meta.name.clone(),
    };
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    let out = TempDir::new("hybrid");
    run_download(&t, vec![seeder.addr()], out.path()).expect("download");
    assert_output_matches(&t, out.path());
    assert!(!out.path().join("hybrid/.pad").exists());
}

#[test]
fn a_download_limit_slows_the_download_and_it_still_completes() {
    let data = payload(2 << 20, 9);
    let t = make_torrent(&[("f", &data)], 256 * 1024, "limited.bin", None, false);
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    let out = TempDir::new("limited");
    let flow = strand::session::Flow {
        download_limit: Some(1 << 20),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    run_download_with_flow(&t, vec![seeder.addr()], out.path(), flow).expect("download");
    assert_output_matches(&t, out.path());
    // 2 MiB at 1 MiB/s with bursts of a tenth of a second cannot take under 1.9 s; without
    // the limit this takes a few milliseconds on loopback.
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn sequential_download_completes_in_order() {
    let data = payload(3 << 20, 10);
    let t = make_torrent(&[("f", &data)], 64 * 1024, "seq.bin", None, false);
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    let out = TempDir::new("seq");
    let flow = strand::session::Flow {
        sequential: true,
        ..Default::default()
    };
    run_download_with_flow(&t, vec![seeder.addr()], out.path(), flow).expect("download");
    assert_output_matches(&t, out.path());
}
