//! Web seeds (BEP 19) end to end against `common::web_seed`'s Range-honouring HTTP server on
//! 127.0.0.1: alone, beside a peer, a lying mirror beside an honest peer, a server without
//! Range support, and one that fails before it works. Every download is bounded by
//! `common::DOWNLOAD_TIMEOUT` and must be byte-identical.

mod common;

use std::time::Duration;

use common::web_seed::{WebMode, WebServer};
use common::*;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// `t` with a `url-list` (one URL, or a list).
fn with_web_seeds(mut t: TestTorrent, urls: &[String]) -> TestTorrent {
    let value = match urls {
        [one] => B::str(one),
        many => B::List(many.iter().map(|u| B::str(u)).collect()),
    };
    // Every key of the kit's top-level dict sorts before "url-list".
    t.bytes.pop();
    t.bytes.extend(B::str("url-list").encode());
    t.bytes.extend(value.encode());
    t.bytes.push(b'e');
    t
}

fn single(len: usize, seed: u64) -> TestTorrent {
    let data = payload(len, seed);
    make_torrent(&[("f", &data)], 256 * KIB as u32, "movie.bin", None, false)
}

fn multi() -> TestTorrent {
    let a = payload(700 * KIB + 3, 21);
    let b = payload(5, 22);
    let c = payload(MIB + 77, 23);
    make_torrent(
        &[("a.bin", &a), ("sub/b.txt", &b), ("sub/c.bin", &c)],
        64 * KIB as u32,
        "album",
        None,
        true,
    )
}

#[test]
fn single_file_from_a_web_seed_alone() {
    let t = single(3 * MIB + 5, 1);
    let server = WebServer::start(vec![("movie.bin".into(), t.data.clone())], WebMode::Honest);
    let t = with_web_seeds(t, &[server.url("movie.bin")]);
    let out = TempDir::new("ws-single");
    run_download(&t, vec![], out.path()).expect("download");
    assert_output_matches(&t, out.path());
    assert!(server.requests() >= 1);
}

#[test]
fn multi_file_from_a_web_seed_whose_url_ends_in_a_slash() {
    let t = multi();
    let files = t
        .files
        .iter()
        .map(|(p, d)| (format!("pub/{p}"), d.clone()))
        .collect();
    let server = WebServer::start(files, WebMode::Honest);
    let t = with_web_seeds(t, &[server.url("pub/")]);
    let out = TempDir::new("ws-multi");
    run_download(&t, vec![], out.path()).expect("download");
    assert_output_matches(&t, out.path());
    // Ranges spanning files became one request per file: at least one per file.
    assert!(server.requests() >= 3, "{}", server.requests());
}

#[test]
fn web_seed_beside_a_peer() {
    let t = single(4 * MIB, 2);
    let server = WebServer::start(vec![("movie.bin".into(), t.data.clone())], WebMode::Honest);
    let t = with_web_seeds(t, &[server.url("movie.bin")]);
    let seeder = TestSeeder::start(&t, Behaviour::Throttled(Duration::from_millis(5)));
    let out = TempDir::new("ws-beside");
    run_download(&t, vec![seeder.addr()], out.path()).expect("download");
    assert_output_matches(&t, out.path());
    assert!(server.requests() >= 1, "the web seed was used");
    assert!(seeder.blocks_served() >= 1, "the peer was used");
}

#[test]
fn a_lying_mirror_is_dropped_and_the_honest_peer_finishes() {
    let t = single(4 * MIB, 3);
    let liar = WebServer::start(vec![("movie.bin".into(), t.data.clone())], WebMode::Flip);
    let t = with_web_seeds(t, &[liar.url("movie.bin")]);
    let seeder = TestSeeder::start(&t, Behaviour::Throttled(Duration::from_millis(10)));
    let out = TempDir::new("ws-liar");
    run_download(&t, vec![seeder.addr()], out.path()).expect("download");
    assert_output_matches(&t, out.path());
    let asked = liar.requests();
    assert!(asked >= 1, "the mirror was tried");
    // Three bad pieces drop it (the log says "0.0.0.0:0: dropped (bad piece N)"); left in
    // use beside a slow peer, the fast mirror would be asked for most of the 256 blocks, a
    // few at a time.
    assert!(
        asked < t.block_count() / 4,
        "the lying mirror was asked {asked} times"
    );
    assert!(
        seeder.blocks_served() >= t.block_count(),
        "every good block came from the honest peer"
    );
}

#[test]
fn a_server_without_range_support() {
    let t = single(MIB + 9, 4);
    let server = WebServer::start(vec![("movie.bin".into(), t.data.clone())], WebMode::NoRange);
    let t = with_web_seeds(t, &[server.url("movie.bin")]);
    let out = TempDir::new("ws-norange");
    run_download(&t, vec![], out.path()).expect("download");
    assert_output_matches(&t, out.path());
}

#[test]
fn failures_are_retried_with_backoff() {
    let t = single(MIB, 5);
    let server = WebServer::start(
        vec![("movie.bin".into(), t.data.clone())],
        WebMode::FailFirst(2),
    );
    let t = with_web_seeds(t, &[server.url("movie.bin")]);
    let out = TempDir::new("ws-retry");
    let started = std::time::Instant::now();
    run_download(&t, vec![], out.path()).expect("download");
    assert_output_matches(&t, out.path());
    assert!(server.requests() >= 3);
    // Two failures: waits of 1 s and 2 s before the third try.
    assert!(started.elapsed() >= Duration::from_secs(3));
}
