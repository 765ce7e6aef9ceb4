//! Magnet links and peer exchange between strand peers on 127.0.0.1: a strand seeder serves
//! its metadata to a magnet download (BEP 9); a leecher that knows one peer learns of a second
//! through peer exchange (BEP 11) and needs it to finish.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::strand_peer::{free_port, StrandPeer};
use common::*;
use strand::metainfo::hex;
use strand::session::SeedPolicy;

const KIB: usize = 1024;

/// `strand download 'magnet:?xt=…&x.pe=SEEDER'`: the binary fetches the metadata from the
/// strand seeder, then the files; `--save-torrent` writes a .torrent with the same info hash.
#[test]
fn magnet_download_from_a_strand_seeder() {
    let data = payload(2 * 1024 * KIB + 77, 31);
    let t = make_torrent(
        &[("a.bin", &data), ("b/c.txt", b"small file")],
        64 * KIB as u32,
        "mag",
        None,
        true,
    );
    let seed_dir = TempDir::new("mag-seed");
    let seeder = StrandPeer::seeder(&t, seed_dir.path());
    let out = TempDir::new("mag-out");
    let saved = out.path().join("saved.torrent");
    let link = format!(
        "magnet:?xt=urn:btih:{}&dn=mag&x.pe={}",
        hex(&t.info_hash),
        seeder.addr
    );
    let port = free_port().to_string();
    let dir = out.path().join("files");
    let started = Instant::now();
    let (ok, code, _stdout, stderr) = run_bin(
        &[
            "download".as_ref(),
            "--no-dht".as_ref(),
            link.as_ref(),
            "-o".as_ref(),
            dir.as_os_str(),
            "--save-torrent".as_ref(),
            saved.as_os_str(),
            "--bind".as_ref(),
            "127.0.0.1".as_ref(),
            "--port".as_ref(),
            port.as_ref(),
            "--tracker-timeout".as_ref(),
            "20".as_ref(),
        ],
        Duration::from_secs(60),
    );
    eprintln!("magnet download took {:?}", started.elapsed());
    assert!(ok, "exit {code:?}: {stderr}");
    assert!(stderr.contains("metadata: mag"), "{stderr}");
    assert_output_matches(&t, &dir);
    let meta = strand::metainfo::Metainfo::load(&saved).expect("the saved torrent parses");
    assert_eq!(meta.info_hash, t.info_hash);
    seeder.stop().expect("seeder summary");
}

/// S holds only the first file (a selective download that seeds on); T, a test seeder with
/// everything, is known to S alone. L knows only S: it can finish only by learning of T
/// through S's peer exchange message and dialing it.
#[test]
fn peer_exchange_introduces_a_second_peer() {
    let first = payload(512 * KIB, 32);
    let second = payload(1024 * KIB + 5, 33);
    let t = make_torrent(
        &[("one.bin", &first), ("two.bin", &second)],
        64 * KIB as u32,
        "pex",
        None,
        true,
    );
    let full = TestSeeder::start(&t, Behaviour::Honest);
    let s_dir = TempDir::new("pex-s");
    let s_port = free_port();
    let s_addr = SocketAddr::from(([127, 0, 0, 1], s_port));
    let s = start_selective(&t, s_dir.path(), vec![full.addr()], s_port);
    // S fetches the first file from T and keeps its connection to T (it still lacks pieces).
    assert!(wait_until(Duration::from_secs(20), || {
        std::fs::read(s_dir.path().join("pex/one.bin"))
            .ok()
            .as_deref()
            == Some(&first[..])
    }));
    let l_dir = TempDir::new("pex-l");
    let l = StrandPeer::start(&t, l_dir.path(), vec![s_addr], None, SeedPolicy::No);
    let summary = l.wait(Duration::from_secs(60)).expect("L completes");
    assert_eq!(summary.bytes, t.data.len() as u64);
    assert_output_matches(&t, l_dir.path());
    assert!(full.connections() >= 2, "T was dialed by S and by L");
    s.stop().expect("S summary");
}

/// A strand session downloading only the torrent's first file, then seeding, on `port`.
fn start_selective(
    t: &TestTorrent,
    dir: &std::path::Path,
    peers: Vec<SocketAddr>,
    port: u16,
) -> StrandPeer {
    StrandPeer::start_with(
        t,
        dir,
        peers,
        Some(vec![true, false]),
        SeedPolicy::Forever,
        port,
    )
}
