//! Self-tests of the test swarm kit in tests/common: they talk to the kit's own seeder and
//! tracker with raw sockets, so they pass without any of the library being written.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

fn small_torrent() -> TestTorrent {
    // 5 pieces of 32 KiB, the last one 1000 bytes: 2 blocks per full piece, 1 short block.
    let data = payload(4 * 32 * 1024 + 1000, 11);
    make_torrent(&[("x", &data)], 32 * 1024, "small.bin", None, false)
}

#[test]
fn payload_is_deterministic() {
    let a = payload(100_003, 1);
    assert_eq!(a.len(), 100_003);
    assert_eq!(a, payload(100_003, 1));
    assert_ne!(a, payload(100_003, 2));
    assert_eq!(&payload(50, 1)[..], &a[..50]);
}

#[test]
fn bencode_encoder_is_canonical() {
    let d = B::dict(vec![
        ("zz", B::Int(-3)),
        ("a", B::List(vec![B::str("hi"), B::Int(0)])),
    ]);
    assert_eq!(d.encode(), b"d1:al2:hii0ee2:zzi-3ee".to_vec());
}

#[test]
fn torrents_parse_with_an_independent_parser() {
    use lava_torrent::torrent::v1::Torrent;
    let t = small_torrent();
    let parsed = Torrent::read_from_bytes(&t.bytes).expect("lava_torrent parses single-file");
    assert_eq!(parsed.info_hash_bytes(), t.info_hash.to_vec());
    assert_eq!(parsed.name, "small.bin");
    assert_eq!(parsed.length as usize, t.data.len());
    assert_eq!(parsed.pieces.len() as u32, t.piece_count());
    assert_eq!(parsed.pieces[4], sha1(&t.data[4 * 32 * 1024..]).to_vec());
    assert_eq!(t.block_count(), 9);

    let (a, b, c) = (payload(40_000, 1), payload(0, 2), payload(5, 3));
    let files: [(&str, &[u8]); 3] = [("a/b/c.bin", &a), ("empty", &b), ("a/d.txt", &c)];
    let m = make_torrent(
        &files,
        16 * 1024,
        "multi",
        Some("http://127.0.0.1:1/announce"),
        true,
    );
    let parsed = Torrent::read_from_bytes(&m.bytes).expect("lava_torrent parses multi-file");
    assert_eq!(parsed.info_hash_bytes(), m.info_hash.to_vec());
    assert_eq!(
        parsed.announce.as_deref(),
        Some("http://127.0.0.1:1/announce")
    );
    let pf = parsed.files.expect("files");
    assert_eq!(pf.len(), 3);
    assert_eq!(pf[0].path, std::path::Path::new("a/b/c.bin"));
    assert_eq!(pf[1].length, 0);
    assert_eq!(m.files[0].0, "multi/a/b/c.bin");
    assert_eq!(m.data.len(), 40_005);
}

#[test]
fn honest_seeder_serves_blocks() {
    let t = small_torrent();
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    let mut p = RawPeer::connect(seeder.addr()).unwrap();
    let hs = p.handshake(&t.info_hash).unwrap();
    assert_eq!(hs[0], 19);
    assert_eq!(&hs[1..20], PSTR);
    assert_eq!(&hs[28..48], &t.info_hash);

    let bits = p.recv_id(5).unwrap();
    assert_eq!(bits, vec![0b1111_1000]);
    p.send(2, &[]).unwrap();
    p.recv_id(1).unwrap();

    // A middle block and the short last block.
    for (index, begin, len) in [(1u32, BLOCK, BLOCK), (4, 0, 1000)] {
        p.request(index, begin, len).unwrap();
        let body = p.recv_id(7).unwrap();
        assert_eq!(u32::from_be_bytes(body[0..4].try_into().unwrap()), index);
        assert_eq!(u32::from_be_bytes(body[4..8].try_into().unwrap()), begin);
        let at = index as usize * 32 * 1024 + begin as usize;
        assert_eq!(&body[8..], &t.data[at..at + len as usize]);
    }
    assert!(wait_until(Duration::from_secs(5), || seeder
        .blocks_served()
        == 2));
    assert_eq!(seeder.handshakes(), 1);
    assert_eq!(seeder.bad_requests(), 0);

    // An out-of-range request gets the connection closed and is counted.
    p.request(4, 0, 2000).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(p.stream.read(&mut buf), Ok(0) | Err(_)));
    assert!(wait_until(Duration::from_secs(5), || seeder.bad_requests() == 1));
}

#[test]
fn seeder_drops_wrong_info_hash() {
    let t = small_torrent();
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    let mut p = RawPeer::connect(seeder.addr()).unwrap();
    assert!(
        p.handshake(&[7u8; 20]).is_err(),
        "no handshake for a wrong hash"
    );
    assert!(wait_until(Duration::from_secs(5), || seeder
        .stats
        .bad_handshakes
        .load(std::sync::atomic::Ordering::SeqCst)
        == 1));
}

#[test]
fn corrupt_seeder_flips_bytes() {
    let t = small_torrent();
    let seeder = TestSeeder::start(&t, Behaviour::CorruptPieces(vec![2]));
    let mut p = RawPeer::connect(seeder.addr()).unwrap();
    p.handshake(&t.info_hash).unwrap();
    p.send(2, &[]).unwrap();
    p.recv_id(1).unwrap();
    p.request(2, 0, BLOCK).unwrap();
    let body = p.recv_id(7).unwrap();
    let at = 2 * 32 * 1024;
    assert_ne!(&body[8..], &t.data[at..at + BLOCK as usize]);
    p.request(3, 0, BLOCK).unwrap();
    let body = p.recv_id(7).unwrap();
    let at = 3 * 32 * 1024;
    assert_eq!(&body[8..], &t.data[at..at + BLOCK as usize]);
}

#[test]
fn disconnecting_seeder_stops_after_n_blocks() {
    let t = small_torrent();
    let seeder = TestSeeder::start(&t, Behaviour::DisconnectAfterBlocks(2));
    let mut p = RawPeer::connect(seeder.addr()).unwrap();
    p.handshake(&t.info_hash).unwrap();
    p.send(2, &[]).unwrap();
    p.recv_id(1).unwrap();
    // One request at a time, so the seeder never closes with unread data (which would RST).
    for i in 0..2 {
        p.request(i, 0, BLOCK).unwrap();
        p.recv_id(7).unwrap();
    }
    assert!(p.recv().is_err(), "closed after 2 blocks");
    assert_eq!(seeder.blocks_served(), 2);
    // Later connections are closed at once.
    let mut q = RawPeer::connect(seeder.addr()).unwrap();
    assert!(q.handshake(&t.info_hash).is_err());
}

#[test]
fn hostile_seeder_sends_huge_length() {
    let t = small_torrent();
    let seeder = TestSeeder::start(&t, Behaviour::HugeLengthPrefix);
    let mut p = RawPeer::connect(seeder.addr()).unwrap();
    p.handshake(&t.info_hash).unwrap();
    let (_, id, _) = p.recv().unwrap();
    assert_eq!(id, Some(5));
    let (_, id, _) = p.recv().unwrap();
    assert_eq!(id, Some(1));
    let (len, _, body) = p.recv().unwrap();
    assert_eq!(len, u32::MAX);
    assert!(body.is_empty());
    drop(p);
    assert!(wait_until(Duration::from_secs(5), || seeder
        .closed_by_peer()
        == 1));
}

#[test]
fn tracker_answers_announces() {
    let seeder_addr: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let tracker = TestTracker::start(vec![seeder_addr]);
    let get = |target: &str| -> Vec<u8> {
        let mut s = TcpStream::connect_timeout(&tracker.addr(), Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut resp = Vec::new();
        s.take(1 << 20).read_to_end(&mut resp).unwrap();
        resp
    };
    let resp = get("/announce?info_hash=%01%ABc&peer_id=x&port=6881&event=started");
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body_at = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = &resp[body_at..];
    let mut want = b"d8:completei1e10:incompletei0e8:intervali1800e5:peers6:".to_vec();
    want.extend_from_slice(&[127, 0, 0, 1, 0x13, 0x88]);
    want.push(b'e');
    assert_eq!(body, &want[..]);
    assert!(tracker.saw_event("started"));
    assert!(!tracker.saw_event("completed"));
    let q = parse_query(&tracker.queries()[0]);
    assert_eq!(q[0], (b"info_hash".to_vec(), vec![1, 0xAB, b'c']));

    let resp = get("/other");
    assert!(String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 404"));
    assert_eq!(tracker.requests(), 2);
    assert_eq!(tracker.queries().len(), 1);
}

#[test]
fn temp_dirs_are_unique_and_removed() {
    let a = TempDir::new("x");
    let b = TempDir::new("x");
    assert_ne!(a.path(), b.path());
    std::fs::create_dir_all(a.path().join("d/e")).unwrap();
    std::fs::write(a.path().join("d/e/f"), b"1").unwrap();
    assert_eq!(list_files(a.path()), vec!["d/e/f".to_string()]);
    let p = a.path().to_path_buf();
    drop(a);
    assert!(!p.exists());
}

/// A whole download by hand: find the seeder through the tracker, pipeline every request, and
/// check each piece against the torrent's own SHA-1 list. Proves torrent builder, tracker and
/// seeder agree on geometry before the library is involved.
#[test]
fn reference_download_through_tracker() {
    let tracker = TestTracker::start(vec![]);
    let (a, b, c) = (payload(100_000, 21), payload(0, 22), payload(70_000, 23));
    let files: [(&str, &[u8]); 3] = [("d/a", &a), ("b", &b), ("c", &c)];
    let url = tracker.announce_url();
    let t = make_torrent(&files, 32 * 1024, "ref", Some(&url), true);
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    tracker.set_peers(vec![seeder.addr()]);

    // Announce by hand and decode the compact peer list (last 6 bytes before the final 'e').
    let mut s = TcpStream::connect_timeout(&tracker.addr(), Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /announce?event=started HTTP/1.0\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    s.take(1 << 20).read_to_end(&mut resp).unwrap();
    assert!(resp.ends_with(b"e"));
    let p = &resp[resp.len() - 7..resp.len() - 1];
    let addr =
        std::net::SocketAddr::from(([p[0], p[1], p[2], p[3]], u16::from_be_bytes([p[4], p[5]])));
    assert_eq!(addr, seeder.addr());

    let mut peer = RawPeer::connect(addr).unwrap();
    peer.handshake(&t.info_hash).unwrap();
    peer.send(2, &[]).unwrap();
    peer.recv_id(1).unwrap();
    let mut got = vec![0u8; t.data.len()];
    let mut wanted = 0;
    for index in 0..t.piece_count() {
        let size = t.piece_size(index);
        let mut begin = 0;
        while begin < size {
            peer.request(index, begin, BLOCK.min(size - begin)).unwrap();
            wanted += 1;
            begin += BLOCK;
        }
    }
    for _ in 0..wanted {
        let body = peer.recv_id(7).unwrap();
        let index = u32::from_be_bytes(body[0..4].try_into().unwrap()) as usize;
        let begin = u32::from_be_bytes(body[4..8].try_into().unwrap()) as usize;
        let at = index * t.piece_len as usize + begin;
        got[at..at + body.len() - 8].copy_from_slice(&body[8..]);
    }
    let parsed = lava_torrent::torrent::v1::Torrent::read_from_bytes(&t.bytes).unwrap();
    for (i, chunk) in got.chunks(t.piece_len as usize).enumerate() {
        assert_eq!(sha1(chunk).to_vec(), parsed.pieces[i], "piece {i}");
    }
    assert_eq!(got, t.data);
    assert_eq!(seeder.blocks_served(), t.block_count());
}
