//! Torrents as other tools make them, from `testdata/` (see `make-content-fixtures.py`):
//! pad files, libtorrent 2.0's hybrid and v2-only torrents, and one file per harmless oddity.

use std::path::Path;

use super::*;

fn load(name: &str) -> Result<Metainfo, Error> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    Metainfo::load(&path)
}

fn listed(m: &Metainfo) -> Vec<(String, u64)> {
    m.listed_files()
        .map(|(_, f)| (f.path.to_string_lossy().into_owned(), f.length))
        .collect()
}

#[test]
fn pad_files_are_kept_in_the_layout_but_not_listed() {
    let m = load("pad.torrent").expect("valid");
    assert_eq!(m.version, Version::V1);
    assert_eq!(m.files.len(), 5);
    let pads: Vec<bool> = m.files.iter().map(FileInfo::is_padding).collect();
    assert_eq!(pads, [false, true, false, true, false]);
    assert_eq!(m.geometry.total_len(), 40000 + 25536 + 5000 + 27768 + 100);
    assert_eq!(
        listed(&m),
        [
            ("padded/a.bin".to_string(), 40000),
            ("padded/b.bin".to_string(), 5000),
            ("padded/c.bin".to_string(), 100)
        ]
    );
    // `--only 2` (b.bin) over the listed files, made into a choice over all five.
    assert_eq!(
        m.choice_over_all_files(&[false, true, false]),
        [false, false, true, false, false]
    );
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn libtorrent_hybrid_downloads_as_v1() {
    let m = load("hybrid.torrent").expect("valid");
    assert_eq!(m.version, Version::Hybrid);
    assert_eq!(m.version.to_string(), "hybrid (v1 + v2)");
    // Oracle: libtorrent 2.0.8's torrent_info(...).info_hashes().v1 for this file.
    assert_eq!(
        m.info_hash_hex(),
        "df4abf85b31b5cdcd83892fa13516acb0ad9e1c0"
    );
    assert_eq!(Sha1::digest(&m.info_bytes).as_slice(), m.info_hash);
    assert_eq!(
        listed(&m),
        [
            ("hybrid/a.txt".to_string(), 20000),
            ("hybrid/sub/b.txt".to_string(), 5000)
        ]
    );
    assert_eq!(m.files.iter().filter(|f| f.is_padding()).count(), 2);
    assert_eq!(m.geometry.piece_count(), 3);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn v2_only_and_inconsistent_hybrids_are_refused() {
    let e = load("v2only.torrent").expect_err("v2 only");
    assert!(e.to_string().ends_with(
        "not a valid torrent: info: a v2-only torrent (BEP 52) has no v1 pieces; strand \
         downloads v1 and hybrid (v1 + v2) torrents"
    ));
    let e = load("hybrid-mismatch.torrent").expect_err("disagreeing lists");
    assert!(e.to_string().ends_with(
        "info: hybrid torrent (BEP 52) whose v1 and v2 file lists disagree: file 2 is \
         sub/b.txt (5000 bytes) in v1 but sub/c.txt (5000 bytes) in v2"
    ));
}

#[test]
fn each_oddity_opens_with_one_warning() {
    let cases = [
        (
            "odd-empty-component.torrent",
            "info.files[0].path: empty component dropped, the path is odd/a/b.bin",
            vec!["odd/a/b.bin"],
        ),
        (
            "odd-duplicate.torrent",
            "info.files[1].path: odd/x.txt appears twice; saved as odd/x.1.txt",
            vec!["odd/x.txt", "odd/x.1.txt"],
        ),
        (
            "odd-backslash.torrent",
            "info.files[0].path: backslash in \"back\\\\slash.txt\" replaced, the name is \
             \"back_slash.txt\"",
            vec!["odd/back_slash.txt"],
        ),
        (
            "odd-symlink.torrent",
            "info.files[1]: odd/link is a symbolic link; it is not created",
            vec!["odd/target.bin", "odd/link"],
        ),
        (
            "odd-pad-no-path.torrent",
            "info.files[1]: pad file without a path, called odd/.pad/15384",
            vec!["odd/a.bin", "odd/b.bin"],
        ),
        (
            "odd-trailing.torrent",
            "10 bytes after the end of the torrent ignored",
            vec!["odd/a.bin"],
        ),
    ];
    for (file, warning, paths) in cases {
        let m = load(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(m.warnings, [warning], "{file}");
        let got: Vec<String> = listed(&m).into_iter().map(|(p, _)| p).collect();
        assert_eq!(got, paths, "{file}");
    }
}
