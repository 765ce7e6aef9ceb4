//! BEP 6, the Fast extension, end to end on loopback: strand downloading from scripted seeders
//! that speak it (`have all`, no bitfield), and a strand seed greeting a Fast peer with
//! `have all` and its allowed-fast set, serving that set while it chokes the peer and
//! rejecting the rest. The hostile cases (a `reject` never asked for, `have all` without the
//! bit or after a bitfield) are in `tests/hostile.rs`.

mod common;

use std::time::Duration;

use common::strand_peer::StrandPeer;
use common::*;

/// 32 KiB pieces: 640 KiB + 100 bytes make 21 pieces, more than an allowed-fast set's ten.
const PIECE_LEN: u32 = 32 * 1024;

fn torrent(seed: u64) -> TestTorrent {
    let data = payload(640 * 1024 + 100, seed);
    let t = make_torrent(&[("f", &data)], PIECE_LEN, "fast.bin", None, false);
    assert_eq!(t.piece_count(), 21);
    t
}

fn get(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn a_download_starts_from_have_all_peers() {
    let t = torrent(61);
    let seeds = [
        TestSeeder::start(&t, Behaviour::FastHaveAll),
        TestSeeder::start(&t, Behaviour::FastHaveAll),
    ];
    let out = TempDir::new("fast-have-all");
    let summary =
        run_download(&t, seeds.iter().map(|s| s.addr()).collect(), out.path()).expect("download");
    assert_output_matches(&t, out.path());
    assert_eq!(summary.bytes, t.data.len() as u64);
    let (mut served, mut have_nones) = (0, 0);
    for s in &seeds {
        let st = &s.stats;
        assert!(get(&st.handshakes) >= 1);
        // strand set the Fast bit, and the seeders said `have all` and never sent a bitfield.
        assert_eq!(get(&st.fast_handshakes), get(&st.handshakes));
        assert_eq!(get(&st.have_alls_sent), get(&st.handshakes));
        assert_eq!(get(&st.bitfields_sent), 0);
        assert!(get(&st.have_nones_received) <= get(&st.handshakes));
        have_nones += get(&st.have_nones_received);
        served += s.blocks_served();
    }
    // strand said `have none` while it had nothing: to the first seeder at least (a seeder
    // whose handshake ends after a piece landed gets a bitfield instead).
    assert!(have_nones >= 1, "no seeder was told `have none`");
    assert!(served >= t.block_count(), "{served} blocks served");
}

/// Reads frames until one that is not a keep-alive.
fn next_frame(p: &mut RawPeer) -> (Option<u8>, Vec<u8>) {
    for _ in 0..20 {
        let (len, id, body) = p.recv().expect("a frame");
        if len > 0 {
            return (id, body);
        }
    }
    panic!("only keep-alives");
}

fn block_payload(piece: u32, offset: u32, len: u32) -> Vec<u8> {
    [piece, offset, len]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

/// A raw connection to `seeder`, once its listener is up.
fn connect_to(seeder: &StrandPeer) -> RawPeer {
    let mut p = None;
    assert!(wait_until(Duration::from_secs(10), || {
        p = RawPeer::connect(seeder.addr).ok();
        p.is_some()
    }));
    p.expect("connected")
}

#[test]
fn a_strand_seed_greets_a_fast_peer_with_have_all_and_allowed_fast() {
    let t = torrent(62);
    let dir = TempDir::new("fast-seed");
    let seeder = StrandPeer::seeder(&t, dir.path());
    let mut p = connect_to(&seeder);
    let hs = p
        .handshake_with(&t.info_hash, [0, 0, 0, 0, 0, 0, 0, FAST_BIT])
        .expect("handshake");
    assert_ne!(hs[27] & FAST_BIT, 0, "strand sets the Fast bit");
    // `have all` in place of a bitfield, then ten `allowed fast`.
    assert_eq!(next_frame(&mut p), (Some(0x0E), Vec::new()));
    let mut allowed = Vec::new();
    for _ in 0..10 {
        let (id, body) = next_frame(&mut p);
        assert_eq!(id, Some(0x11));
        let piece = u32::from_be_bytes(body[..4].try_into().unwrap());
        assert!(piece < t.piece_count() && !allowed.contains(&piece));
        allowed.push(piece);
    }
    // Still choked (we never said interested): an allowed piece is served...
    let fast = allowed[0];
    p.send(6, &block_payload(fast, 0, BLOCK)).unwrap();
    let (id, body) = next_frame(&mut p);
    assert_eq!(id, Some(7));
    assert_eq!(&body[..8], &block_payload(fast, 0, BLOCK)[..8]);
    assert_eq!(&body[8..], t.block(fast, 0, BLOCK).unwrap());
    // ...and any other is rejected, with the request's own fields.
    let slow = (0..t.piece_count()).find(|i| !allowed.contains(i)).unwrap();
    p.send(6, &block_payload(slow, BLOCK, BLOCK)).unwrap();
    assert_eq!(
        next_frame(&mut p),
        (Some(0x10), block_payload(slow, BLOCK, BLOCK))
    );
    seeder.stop().expect("seeder");
}

#[test]
fn a_strand_seed_sends_a_plain_peer_its_bitfield() {
    let t = torrent(63);
    let dir = TempDir::new("plain-seed");
    let seeder = StrandPeer::seeder(&t, dir.path());
    let mut p = connect_to(&seeder);
    p.handshake(&t.info_hash).expect("handshake");
    let (id, body) = next_frame(&mut p);
    assert_eq!(id, Some(5));
    assert_eq!(body.len(), 3);
    // No Fast messages follow: the next thing is the unchoke we ask for.
    p.send(2, &[]).unwrap();
    assert_eq!(next_frame(&mut p), (Some(1), Vec::new()));
    seeder.stop().expect("seeder");
}
