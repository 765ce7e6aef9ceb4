//! Trackerless torrents end to end over a loopback DHT: a strand seeder (the library, its DHT
//! bootstrapped from a router node) announces; the `strand` binary, bootstrapped from the same
//! router, fetches a magnet link with no `tr=` and no `x.pe=`, then a .torrent with no
//! announce. Everything binds 127.0.0.1; the binary runs with `STRAND_DHT_LOOPBACK_ONLY` and
//! a state folder of its own.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::strand_peer::{free_port, write_payload};
use common::{assert_output_matches, make_torrent, payload, wait_until, TempDir};
use strand::bitfield::Bitfield;
use strand::dht::{self, DhtConfig};
use strand::session::{Options, SeedPolicy};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn loopback_dht(port: u16, bootstrap: Vec<String>) -> dht::Dht {
    dht::spawn(DhtConfig {
        bind: Some([127, 0, 0, 1].into()),
        port,
        bootstrap,
        state_file: None,
        id: None,
        loopback_only: true,
    })
    .expect("start a DHT node")
}

/// Runs the binary with `args` (bounded by `limit`), its state folder in `state`; returns
/// (success, stderr).
fn run_strand(args: &[&str], state: &std::path::Path, limit: Duration) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strand"))
        .args(args)
        .env("XDG_STATE_HOME", state)
        .env("HOME", state)
        .env("STRAND_DHT_LOOPBACK_ONLY", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strand");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = reader.join().unwrap_or_default();
    (status.is_some_and(|s| s.success()), stderr)
}

/// `strand download SOURCE -o DIR` on 127.0.0.1 (a free port), joining through `router`.
fn download(
    source: &str,
    dir: &std::path::Path,
    router: &str,
    state: &std::path::Path,
) -> (bool, String) {
    let port = free_port().to_string();
    let args = [
        "download",
        source,
        "-o",
        dir.to_str().unwrap(),
        "--bind",
        "127.0.0.1",
        "--port",
        &port,
        "--dht-bootstrap",
        router,
        "-q",
    ];
    run_strand(&args, state, Duration::from_secs(60))
}

#[test]
fn trackerless_magnet_and_torrent_without_announce_download_over_the_dht() {
    let router = loopback_dht(0, vec![]);
    let router_addr = router.local_addr().to_string();

    let data = payload(3 * 256 * 1024 + 1000, 77);
    let t = make_torrent(&[("f", &data)], 256 * 1024, "dhtfile", None, false);
    let seed_dir = TempDir::new("dht-seed");
    write_payload(&t, seed_dir.path());
    let seed_port = free_port();
    let seeder_dht = loopback_dht(seed_port, vec![router_addr.clone()]);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
    let opts = Options {
        output_dir: seed_dir.path().to_path_buf(),
        peers: vec![],
        max_peers: 20,
        listen: Some(SocketAddr::from(([127, 0, 0, 1], seed_port))),
        encryption: strand::peer::mse::Encryption::Off,
        verified: Some(Bitfield::full(t.piece_count())),
        chosen: None,
        preallocate: false,
        seed: SeedPolicy::Forever,
        stop: Some(stop_rx),
        tracker_timeout: Duration::from_secs(10),
        dht: Some(seeder_dht.link()),
        flow: strand::session::Flow::default(),
    };
    let meta = strand::metainfo::Metainfo::from_bytes(&t.bytes).expect("torrent");
    assert!(meta.trackers.is_empty());
    let seeder = std::thread::spawn(move || strand::session::download(meta, opts, &mut |_| {}));

    // The seeder's announce reaches the router.
    assert!(
        wait_until(Duration::from_secs(20), || router
            .report()
            .is_some_and(|r| r.stored.1 >= 1)),
        "the seeder never announced: {:?}",
        router.report()
    );

    let state = TempDir::new("dht-state");
    let out = TempDir::new("dht-out");
    let magnet = format!("magnet:?xt=urn:btih:{}", hex(&t.info_hash));
    let dir = out.path().join("magnet");
    let started = Instant::now();
    let (ok, stderr) = download(&magnet, &dir, &router_addr, state.path());
    eprintln!("trackerless magnet took {:?}", started.elapsed());
    assert!(ok, "magnet download failed: {stderr}");
    assert!(!stderr.contains("loopback-only"), "{stderr}");
    assert_output_matches(&t, &dir);
    assert!(
        state.path().join("strand").join("dht.dat").exists(),
        "the DHT state was not saved"
    );

    let file = out.path().join("noannounce.torrent");
    std::fs::write(&file, &t.bytes).unwrap();
    let dir = out.path().join("torrent");
    let (ok, stderr) = download(file.to_str().unwrap(), &dir, &router_addr, state.path());
    assert!(ok, ".torrent download failed: {stderr}");
    assert_output_matches(&t, &dir);

    let _ = stop_tx.send(());
    let summary = seeder
        .join()
        .expect("seeder thread")
        .expect("seeder session");
    assert!(summary.uploaded_bytes >= 2 * data.len() as u64);
    assert_eq!(seeder_dht.stop().refused, 0);
    assert_eq!(router.stop().refused, 0);
}

/// A private torrent (BEP 27) never touches the DHT, even when the session is given one.
#[test]
fn a_private_torrent_never_touches_the_dht() {
    let router = loopback_dht(0, vec![]);
    let data = payload(100_000, 5);
    let mut t = make_torrent(&[("f", &data)], 32 * 1024, "private", None, false);
    // Rebuild with private = 1 in the info dict.
    let info_pos = t
        .bytes
        .windows(7)
        .position(|w| w == b"4:infod")
        .map(|p| p + 6)
        .unwrap();
    let mut bytes = t.bytes[..info_pos + 1].to_vec();
    bytes.extend_from_slice(b"7:privatei1e");
    bytes.extend_from_slice(&t.bytes[info_pos + 1..]);
    let meta = strand::metainfo::Metainfo::from_bytes(&bytes).expect("private torrent");
    assert!(meta.private);
    t.info_hash = meta.info_hash;
    let dir = TempDir::new("dht-private");
    write_payload(&t, dir.path());
    let node = loopback_dht(0, vec![router.local_addr().to_string()]);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
    let opts = Options {
        output_dir: dir.path().to_path_buf(),
        peers: vec![],
        max_peers: 5,
        listen: Some(SocketAddr::from(([127, 0, 0, 1], free_port()))),
        encryption: strand::peer::mse::Encryption::Off,
        verified: None,
        chosen: None,
        preallocate: false,
        seed: SeedPolicy::Forever,
        stop: Some(stop_rx),
        tracker_timeout: Duration::from_secs(10),
        dht: Some(node.link()),
        flow: strand::session::Flow::default(),
    };
    let session = std::thread::spawn(move || strand::session::download(meta, opts, &mut |_| {}));
    std::thread::sleep(Duration::from_secs(2));
    let _ = stop_tx.send(());
    let _ = session.join();
    let report = router.stop();
    assert_eq!(report.stored, (0, 0), "a private torrent was announced");
    node.stop();
}
