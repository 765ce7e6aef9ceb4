//! strand talking to strand: a seeder and leechers that trade with each other, and a seeder
//! that refuses hostile requests. Everything runs as library sessions on 127.0.0.1.

mod common;

use std::time::Duration;

use common::strand_peer::{free_port, hung_up, unchoked_peer, StrandPeer};
use common::*;
use strand::bitfield::Bitfield;
use strand::session::SeedPolicy;

const MIB: usize = 1024 * 1024;

/// One strand seeder and three strand leechers started together; each leecher knows the
/// seeder and the other leechers. Every copy must end byte-identical, and the leechers must
/// have served each other part of the data.
#[test]
fn one_seeder_three_leechers() {
    let data = payload(12 * MIB + 777, 11);
    let t = make_torrent(
        &[("big.bin", &data), ("small.txt", b"hello")],
        64 * 1024,
        "swarm",
        None,
        true,
    );
    let seed_dir = TempDir::new("seed");
    let seeder = StrandPeer::seeder(&t, seed_dir.path());
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let dirs: Vec<TempDir> = (0..3).map(|i| TempDir::new(&format!("leech{i}"))).collect();
    let leechers: Vec<StrandPeer> = (0..3)
        .map(|i| {
            let mut peers = vec![seeder.addr];
            peers.extend(
                ports
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| std::net::SocketAddr::from(([127, 0, 0, 1], *p))),
            );
            // Each leecher seeds a little after completing, so slower ones can still fetch
            // from it.
            let seed = SeedPolicy::Until {
                ratio: None,
                time: Some(Duration::from_secs(3)),
            };
            StrandPeer::start_on(&t, dirs[i].path(), peers, None, seed, ports[i])
        })
        .collect();
    let mut leecher_uploads = 0;
    for (i, l) in leechers.iter().enumerate() {
        let summary = l
            .wait(Duration::from_secs(90))
            .unwrap_or_else(|e| panic!("leecher {i}: {e}"));
        assert_eq!(summary.bytes, t.data.len() as u64, "leecher {i} incomplete");
        leecher_uploads += summary.uploaded_bytes;
        assert_output_matches(&t, dirs[i].path());
    }
    let seeded = seeder.stop().expect("seeder summary");
    assert!(seeded.uploaded_bytes > 0, "the seeder served nothing");
    assert!(
        leecher_uploads > 0,
        "the leechers never traded with each other"
    );
}

/// Connects a raw peer to a strand seeder holding only some pieces and checks that each
/// hostile request ends the connection, while the seeder keeps serving honest requests.
#[test]
fn seeder_drops_hostile_requesters() {
    let data = payload(2 * MIB, 12);
    let t = make_torrent(&[("f", &data)], 256 * 1024, "hostile.bin", None, false);
    let dir = TempDir::new("hostile");
    common::strand_peer::write_payload(&t, dir.path());
    // The seeder has every piece but the last.
    let mut have = Bitfield::full(t.piece_count());
    have.clear(t.piece_count() - 1);
    let seeder = StrandPeer::start(&t, dir.path(), vec![], Some(have), SeedPolicy::Forever);
    let last = t.piece_count() - 1;

    let cases: Vec<(&str, Box<Attack>)> = vec![
        (
            "a piece we don't have",
            Box::new(move |p| p.request(last, 0, BLOCK)),
        ),
        (
            "an offset out of range",
            Box::new(|p| p.request(0, 256 * 1024, BLOCK)),
        ),
        ("a 1 MiB block", Box::new(|p| p.request(0, 0, 1 << 20))),
        (
            "a flood of requests",
            Box::new(|p| {
                let mut burst = Vec::new();
                for i in 0..10_000u32 {
                    let mut m = vec![0, 0, 0, 13, 6];
                    m.extend_from_slice(&(i % 7).to_be_bytes());
                    m.extend_from_slice(&((i % 16) * BLOCK).to_be_bytes());
                    m.extend_from_slice(&BLOCK.to_be_bytes());
                    burst.extend_from_slice(&m);
                }
                std::io::Write::write_all(&mut p.stream, &burst)
            }),
        ),
    ];
    for (what, attack) in cases {
        let mut p = unchoked_peer(&seeder, &t);
        // Writes may fail once the seeder hangs up: that is the point.
        let _ = attack(&mut p);
        assert!(hung_up(&mut p), "the seeder kept a peer that sent {what}");
    }
    // An honest peer is still served the right bytes.
    let mut p = unchoked_peer(&seeder, &t);
    p.request(1, BLOCK, BLOCK).expect("send request");
    let piece = p.recv_id(7).expect("a piece message");
    assert_eq!(&piece[8..], t.block(1, BLOCK, BLOCK).expect("in range"));
    seeder.stop().expect("seeder summary");
}

/// Something a hostile peer sends after it is unchoked.
type Attack = dyn Fn(&mut RawPeer) -> std::io::Result<()>;
