//! `--encryption` between strand sessions (MSE/PE): RC4 both ways when both require it,
//! `prefer` falls back to plaintext against a peer that does not speak MSE, and `require`
//! never does. Payloads are small: RC4 runs at about 1 MB/s in debug builds.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::strand_peer::StrandPeer;
use common::*;
use strand::peer::mse::Encryption;

const LIMIT: Duration = Duration::from_secs(30);

fn torrent(seed: u64) -> TestTorrent {
    let data = payload(300_000 + seed as usize, seed);
    make_torrent(&[("f", &data)], 32 * 1024, "enc.bin", None, false)
}

/// Runs a leecher with `leech` against a seeder with `seed`; the leecher's result.
fn download(t: &TestTorrent, seed: Encryption, leech: Encryption) -> Result<u64, String> {
    let seed_dir = TempDir::new("enc-seed");
    let seeder = StrandPeer::seeder_encrypted(t, seed_dir.path(), seed);
    assert!(
        wait_until(Duration::from_secs(10), || TcpStream::connect(seeder.addr)
            .is_ok()),
        "the seeder never listened"
    );
    let leech_dir = TempDir::new("enc-leech");
    let leecher = StrandPeer::leecher_encrypted(t, leech_dir.path(), vec![seeder.addr], leech);
    let result = leecher.wait(LIMIT).map(|s| s.bytes);
    if result.is_ok() {
        assert_output_matches(t, leech_dir.path());
    }
    let _ = seeder.stop();
    result
}

#[test]
fn require_downloads_from_require_over_rc4() {
    let t = torrent(1);
    assert_eq!(
        download(&t, Encryption::Require, Encryption::Require),
        Ok(t.data.len() as u64)
    );
}

#[test]
fn prefer_downloads_from_prefer() {
    let t = torrent(2);
    assert_eq!(
        download(&t, Encryption::Prefer, Encryption::Prefer),
        Ok(t.data.len() as u64)
    );
}

#[test]
fn prefer_falls_back_to_plaintext_against_a_peer_without_mse() {
    let t = torrent(3);
    assert_eq!(
        download(&t, Encryption::Off, Encryption::Prefer),
        Ok(t.data.len() as u64)
    );
}

/// A leecher that requires encryption never completes against a plaintext-only seeder (it
/// has no other peer, so it gives up once its tracker timeout passes or is stopped here).
#[test]
fn require_never_falls_back_to_plaintext() {
    let t = torrent(4);
    let seed_dir = TempDir::new("enc-seed-off");
    let seeder = StrandPeer::seeder_encrypted(&t, seed_dir.path(), Encryption::Off);
    assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(
        seeder.addr
    )
    .is_ok()));
    let leech_dir = TempDir::new("enc-leech-req");
    let leecher =
        StrandPeer::leecher_encrypted(&t, leech_dir.path(), vec![seeder.addr], Encryption::Require);
    assert!(
        leecher.wait(Duration::from_secs(3)).is_err(),
        "a --encryption require leecher finished against a plaintext-only seeder"
    );
    let summary = leecher.stop().expect("leecher summary");
    assert_eq!(summary.bytes, 0);
    let _ = seeder.stop();
}

/// A seeder that requires encryption hangs up on a plaintext handshake without answering it.
#[test]
fn require_refuses_a_plaintext_handshake() {
    let t = torrent(5);
    let seed_dir = TempDir::new("enc-seed-req");
    let seeder = StrandPeer::seeder_encrypted(&t, seed_dir.path(), Encryption::Require);
    let mut s = None;
    assert!(wait_until(Duration::from_secs(10), || {
        s = TcpStream::connect(seeder.addr).ok();
        s.is_some()
    }));
    let mut s = s.expect("connected");
    let hs = handshake_bytes(&t.info_hash, b"-PLAIN0-000000000000");
    s.write_all(&hs).expect("send handshake");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 68];
    assert!(
        matches!(s.read(&mut buf), Ok(0) | Err(_)),
        "the seeder answered a plaintext handshake"
    );
    let _ = seeder.stop();
}

/// A `prefer` leecher whose MSE exchange a peer refused, and which then reached it in
/// plaintext, dials it in plaintext directly from then on: the plaintext-only seeder, which
/// hangs up after six blocks on each connection, sees one unreadable handshake (our DH key),
/// however many times strand comes back.
#[test]
fn prefer_redials_a_peer_that_needed_plaintext_in_plaintext() {
    let t = torrent(6);
    let seeder = TestSeeder::start(&t, Behaviour::CloseEachAfterBlocks(6));
    let dir = TempDir::new("enc-memory");
    let leecher =
        StrandPeer::leecher_encrypted(&t, dir.path(), vec![seeder.addr()], Encryption::Prefer);
    let summary = leecher.wait(LIMIT).expect("the leecher finished");
    assert_eq!(summary.bytes, t.data.len() as u64);
    assert_output_matches(&t, dir.path());
    let unreadable = seeder.stats.bad_handshakes.load(Ordering::SeqCst);
    eprintln!(
        "{} connections, {} handshakes, {unreadable} unreadable",
        seeder.connections(),
        seeder.handshakes()
    );
    assert!(
        seeder.handshakes() >= 3,
        "strand came back only {} times",
        seeder.handshakes()
    );
    assert_eq!(unreadable, 1, "strand tried MSE on the peer again");
}
