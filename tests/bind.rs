//! `--bind ADDR` is the source of every socket strand opens: a leecher listening on
//! 127.0.0.77 announces from it (the tracker lists it there) and dials its peers from it.

mod common;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::strand_peer::StrandPeer;
use common::*;
use strand::tracker::{http, AnnounceEvent, AnnounceRequest, Announcer, Totals};
use strand::tracker_server::{self, ServerConfig};

#[test]
fn announces_and_peer_connections_come_from_the_bound_address() {
    let bound: IpAddr = [127, 0, 0, 77].into();
    let server = tracker_server::start(ServerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0))))
        .expect("tracker");
    let data = payload(100_000, 77);
    let t = make_torrent(
        &[("f", &data)],
        16384,
        "bind.bin",
        Some(&server.announce_url()),
        false,
    );
    // A peer that only records where the connection came from.
    let peer = TcpListener::bind("127.0.0.1:0").expect("peer");
    peer.set_nonblocking(true).expect("nonblocking");
    let dir = TempDir::new("bind");
    let leecher = StrandPeer::leecher_at(
        &t,
        dir.path(),
        vec![peer.local_addr().expect("addr")],
        bound,
    );
    let mut from = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            from = peer.accept().ok().map(|(_, a)| a);
            from.is_some()
        }),
        "the leecher never dialed its peer"
    );
    assert_eq!(from.expect("accepted").ip(), bound);

    let listed = SocketAddr::new(bound, leecher.addr.port());
    let ask = AnnounceRequest {
        announcer: Announcer {
            info_hash: t.info_hash,
            peer_id: *b"-XX0001-bindwatcher0",
            port: 9,
            local: None,
            encryption: strand::peer::mse::Encryption::Off,
        },
        totals: Totals {
            left: 1,
            ..Totals::default()
        },
        event: Some(AnnounceEvent::Started),
        numwant: 50,
    };
    let started = Instant::now();
    let mut seen = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            seen = http::announce(&server.announce_url(), &ask, Duration::from_secs(2))
                .map(|r| r.peers)
                .unwrap_or_default();
            seen.contains(&listed)
        }),
        "the tracker lists {seen:?}, not {listed}, after {:?}",
        started.elapsed()
    );
    let _ = leecher.stop();
    server.stop();
}
