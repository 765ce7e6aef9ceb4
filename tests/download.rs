//! End-to-end downloads against the kit's tracker and seeders on 127.0.0.1. Every test
//! asserts the output is byte-identical to the payload. Each download is bounded by
//! `common::DOWNLOAD_TIMEOUT`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Case 1: Single file from one honest seeder found through the tracker; the tracker hears
/// `started` and `completed`.
#[test]
fn single_file_from_tracker_peer() {
    let tracker = TestTracker::start(vec![]);
    let data = payload(3 * MIB + 1234, 1);
    let url = tracker.announce_url();
    let t = make_torrent(
        &[("f", &data)],
        256 * KIB as u32,
        "single.bin",
        Some(&url),
        false,
    );
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    tracker.set_peers(vec![seeder.addr()]);
    let out = TempDir::new("single");

    let summary = run_download(&t, vec![], out.path()).expect("download");

    assert_output_matches(&t, out.path());
    assert_eq!(
        list_files(out.path()),
        vec![resume_file(&t), "single.bin".to_string()],
        "the payload plus strand's resume file, nothing else"
    );
    assert_eq!(summary.bytes, t.data.len() as u64);
    assert!(seeder.handshakes() >= 1, "the peer came from the tracker");
    assert!(seeder.blocks_served() >= t.block_count());
    assert_eq!(
        seeder.bad_requests(),
        0,
        "every request was in range and unchoked"
    );
    assert!(
        tracker.saw_event("started"),
        "queries: {:?}",
        tracker.queries()
    );
    assert!(
        wait_until(Duration::from_secs(10), || tracker.saw_event("completed")),
        "no event=completed; queries: {:?}",
        tracker.queries()
    );

    // The first announce names our torrent, a 20-byte peer id and the port we listened on.
    let first = parse_query(&tracker.queries()[0]);
    let field = |k: &str| {
        first
            .iter()
            .find(|(key, _)| key == k.as_bytes())
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("announce lacks {k}: {first:?}"))
    };
    assert_eq!(field("info_hash"), t.info_hash.to_vec());
    assert_eq!(field("peer_id").len(), 20);
    let port: u16 = String::from_utf8_lossy(&field("port"))
        .parse()
        .expect("port is a number");
    assert_ne!(port, 0, "the announce must carry our real listening port");
    assert_eq!(field("left"), t.data.len().to_string().into_bytes());
}

/// Case 2: Multi-file torrent with nested folders, a zero-length file, a file smaller than a
/// block, and files spanning piece boundaries.
#[test]
fn multi_file_nested_tree() {
    let tracker = TestTracker::start(vec![]); // announces return no peers
    let url = tracker.announce_url();
    let c = payload(700_001, 2); // spans many 64 KiB pieces, ends mid-piece
    let d = payload(1000, 3); // smaller than a block
    let empty: Vec<u8> = Vec::new();
    let span = payload(65_536 + 17, 4); // straddles piece boundaries on both ends
    let tail = payload(300, 5);
    let files: [(&str, &[u8]); 6] = [
        ("a/b/c.bin", &c),
        ("a/d.txt", &d),
        ("empty.dat", &empty),
        ("x/y/z/span.bin", &span),
        ("a/b/empty2", &empty),
        ("tail.bin", &tail),
    ];
    let t = make_torrent(&files, 64 * KIB as u32, "multi", Some(&url), true);
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    let out = TempDir::new("multi");

    let summary = run_download(&t, vec![seeder.addr()], out.path()).expect("download");

    assert_output_matches(&t, out.path());
    assert_eq!(summary.bytes, t.data.len() as u64);
    let mut want: BTreeSet<String> = t.files.iter().map(|(p, _)| p.clone()).collect();
    want.insert(resume_file(&t));
    let got: BTreeSet<String> = list_files(out.path()).into_iter().collect();
    assert_eq!(got, want, "output tree");
    assert!(out.path().join("multi/empty.dat").is_file());
    assert_eq!(
        std::fs::metadata(out.path().join("multi/a/b/empty2"))
            .unwrap()
            .len(),
        0
    );
    assert_eq!(seeder.bad_requests(), 0);
}

/// Case 3: One honest seeder, one that disconnects part-way, one that corrupts some pieces.
#[test]
fn survives_disconnecting_and_corrupt_peers() {
    let data = payload(4 * MIB + 5000, 6);
    let tracker = TestTracker::start(vec![]);
    let url = tracker.announce_url();
    let t = make_torrent(
        &[("f", &data)],
        256 * KIB as u32,
        "mixed.bin",
        Some(&url),
        false,
    );
    let last = t.piece_count() - 1;
    let honest = TestSeeder::start(&t, Behaviour::Honest);
    // A third of the blocks: likely to be reached when requests spread over three peers.
    let flaky = TestSeeder::start(&t, Behaviour::DisconnectAfterBlocks(t.block_count() / 3));
    let corrupt = TestSeeder::start(&t, Behaviour::CorruptPieces(vec![0, 5, 9, last]));
    tracker.set_peers(vec![corrupt.addr(), flaky.addr(), honest.addr()]);
    let out = TempDir::new("mixed");

    let summary = run_download(&t, vec![], out.path()).expect("download");

    assert_output_matches(&t, out.path());
    assert_eq!(summary.bytes, t.data.len() as u64);
    eprintln!(
        "served: honest {} flaky {} corrupt {}; failed pieces {}",
        honest.blocks_served(),
        flaky.blocks_served(),
        corrupt.blocks_served(),
        summary.failed_pieces
    );
    assert!(honest.handshakes() >= 1 && flaky.connections() >= 1 && corrupt.connections() >= 1);
}

/// Case 4: A peer that sends a 4 GiB length prefix is dropped; the honest one finishes the job.
#[test]
fn hostile_length_prefix_peer_is_dropped() {
    let tracker = TestTracker::start(vec![]);
    let url = tracker.announce_url();
    let data = payload(MIB + 777, 7);
    let t = make_torrent(
        &[("f", &data)],
        128 * KIB as u32,
        "hostile.bin",
        Some(&url),
        false,
    );
    let hostile = TestSeeder::start(&t, Behaviour::HugeLengthPrefix);
    let honest = TestSeeder::start(&t, Behaviour::Honest);
    let out = TempDir::new("hostile");

    let summary =
        run_download(&t, vec![hostile.addr(), honest.addr()], out.path()).expect("download");

    assert_output_matches(&t, out.path());
    assert_eq!(summary.bytes, t.data.len() as u64);
    assert!(hostile.handshakes() >= 1, "the hostile peer was dialled");
    assert!(
        wait_until(Duration::from_secs(10), || hostile.closed_by_peer()
            >= hostile.handshakes()),
        "the client kept a hostile connection open: {} closed of {}",
        hostile.closed_by_peer(),
        hostile.handshakes()
    );
}

fn evil_torrents() -> Vec<(&'static str, TestTorrent)> {
    let data = payload(40_000, 8);
    let url = "http://127.0.0.1:9/announce";
    vec![
        (
            "single-file name ../evil",
            make_torrent(
                &[("f", &data)],
                16 * KIB as u32,
                "../evil",
                Some(url),
                false,
            ),
        ),
        (
            "multi-file name ../evil",
            make_torrent(&[("f", &data)], 16 * KIB as u32, "../evil", Some(url), true),
        ),
        (
            "multi-file path component ..",
            make_torrent(
                &[("../../evil", &data)],
                16 * KIB as u32,
                "ok",
                Some(url),
                true,
            ),
        ),
    ]
}

/// Case 5a: Path traversal in a .torrent is refused by the parser.
#[test]
fn bad_path_torrent_is_refused_by_parser() {
    for (what, t) in evil_torrents() {
        let bytes = t.bytes.clone();
        let r = with_timeout(Duration::from_secs(10), move || {
            strand::metainfo::Metainfo::from_bytes(&bytes).map(|m| m.name)
        })
        .unwrap_or_else(|e| panic!("{what}: from_bytes {e}"));
        assert!(r.is_err(), "{what}: accepted, name {:?}", r.ok());
    }
}

/// Case 5b: The binary refuses it too: non-zero exit, one line on stderr, nothing created.
#[test]
fn bad_path_torrent_is_refused_by_cli() {
    for (what, t) in evil_torrents() {
        let src = TempDir::new("evil-src");
        let file = src.path().join("evil.torrent");
        std::fs::write(&file, &t.bytes).unwrap();
        let root = TempDir::new("evil-root");
        let dir = root.path().join("out");
        std::fs::create_dir(&dir).unwrap();

        let (ok, code, _stdout, stderr) = run_bin(
            &[
                "download".as_ref(),
                "--no-dht".as_ref(),
                file.as_os_str(),
                "-o".as_ref(),
                dir.as_os_str(),
            ],
            Duration::from_secs(30),
        );

        assert!(!ok, "{what}: exited successfully (code {code:?})");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "{what}: stderr should be one line: {stderr:?}"
        );
        assert!(
            !stderr.contains("panicked"),
            "{what}: the binary panicked: {stderr}"
        );
        assert_eq!(
            list_files(&dir),
            Vec::<String>::new(),
            "{what}: files in DIR"
        );
        let in_root: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(in_root, vec!["out".to_string()], "{what}: DIR's parent");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "{what}: DIR not empty"
        );
        assert_eq!(list_files(src.path()), vec!["evil.torrent".to_string()]);
    }
}

/// The last piece fails its hash once (a transient fault at the only peer): the download asks
/// for it again from the same peer and completes. This also exercises the path where interest
/// is re-evaluated after a hash failure; the stall that once hid there needed a writer event
/// between the last block and the failed hash, which this test makes likely, not certain.
#[test]
fn refetches_a_last_piece_that_failed_once() {
    let data = payload(2 * MIB + 100, 9);
    let t = make_torrent(&[("f", &data)], 256 * KIB as u32, "once.bin", None, false);
    let seeder = TestSeeder::start(&t, Behaviour::CorruptOnce(t.piece_count() - 1));
    let out = TempDir::new("once");
    let summary =
        run_download_with_timeout(&t, vec![seeder.addr()], out.path(), Duration::from_secs(20))
            .expect("download");
    assert_output_matches(&t, out.path());
    assert_eq!(
        summary.failed_pieces, 1,
        "the corrupt piece was noticed once"
    );
}

/// No peer and no tracker that answers: the session gives up after the tracker timeout with
/// an error naming every tracker, instead of waiting forever.
#[test]
fn gives_up_with_no_peers_and_dead_trackers() {
    // A port nothing listens on: bind, read the port, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port");
    let url = format!("http://{dead}/announce");
    let t = make_torrent(
        &[("f", b"hello")],
        16 * 1024,
        "lonely.bin",
        Some(&url),
        false,
    );
    let out = TempDir::new("lonely");
    let meta = strand::metainfo::Metainfo::from_bytes(&t.bytes).expect("valid");
    let opts = strand::session::Options {
        output_dir: out.path().to_path_buf(),
        peers: vec![],
        max_peers: 10,
        listen: None,
        encryption: strand::peer::mse::Encryption::Off,
        verified: None,
        chosen: None,
        preallocate: false,
        seed: strand::session::SeedPolicy::No,
        stop: None,
        tracker_timeout: Duration::from_secs(2),
        dht: None,
        flow: strand::session::Flow::default(),
    };
    let started = std::time::Instant::now();
    let result = with_timeout(Duration::from_secs(30), move || {
        strand::session::download(meta, opts, &mut |_| {}).map(|_| ())
    })
    .expect("the session ends on its own");
    let err = result
        .expect_err("no peers can only end in an error")
        .to_string();
    assert!(err.starts_with("no peers"), "{err}");
    assert!(err.contains(&url), "the error names the tracker: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}
