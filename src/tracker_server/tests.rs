//! End-to-end tests of the tracker server over loopback sockets: HTTP and UDP clients talk
//! to a server started on 127.0.0.1 (or ::1) port 0, and every test stops what it started.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use super::parse::head_end;
use super::*;
use crate::bencode::{self, Value};
use crate::messages::Totals;
use crate::tracker::udp_wire::{self as udp, Request};
use crate::tracker::{
    udp as udp_client, AnnounceEvent, AnnounceRequest, Announcer, SwarmCounts, Until,
};

const HASH: [u8; 20] = *b"\x00\x01 +%&=?/\xfe\xffhashbytes";

fn config() -> ServerConfig {
    ServerConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
}

fn peer_id(n: u16) -> [u8; 20] {
    let mut id = *b"-TS0001-000000000000";
    id[18..].copy_from_slice(&n.to_be_bytes());
    id
}

fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// The announce target for peer `n` on port `port`, plus `extra` parameters.
fn target(hash: &[u8], n: u16, port: u16, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}{extra}",
        encode(hash),
        encode(&peer_id(n))
    )
}

/// Sends `request` raw and returns the status code and body of the reply.
fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let end = head_end(&reply).expect("a complete reply head");
    let head = std::str::from_utf8(&reply[..end]).unwrap();
    assert!(head.contains("Connection: close"), "{head}");
    let status = head[9..12].parse().unwrap();
    (status, reply[end..].to_vec())
}

fn get(addr: SocketAddr, target: &str) -> (u16, Vec<u8>) {
    exchange(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
    )
}

/// A successful announce's bencoded reply body.
fn announce_ok(addr: SocketAddr, target: &str) -> Vec<u8> {
    let (status, body) = get(addr, target);
    assert_eq!(status, 200);
    let root = bencode::decode(&body).unwrap();
    assert!(
        root.get(b"failure reason").is_none(),
        "{}",
        String::from_utf8_lossy(&body)
    );
    body
}

/// Announces peer `n` (on port 7000 + n) to the torrent `HASH`, plus `extra` parameters, and
/// returns the successful reply's body.
fn announce_as(addr: SocketAddr, n: u16, extra: &str) -> Vec<u8> {
    announce_ok(addr, &target(&HASH, n, 7000 + n, extra))
}

fn failure_reason(body: &[u8]) -> String {
    let root = bencode::decode(body).unwrap();
    root.get(b"failure reason")
        .and_then(Value::as_str)
        .expect("a failure reason")
        .to_string()
}

/// The ports in a compact `peers` string.
fn compact_ports(body: &[u8]) -> Vec<u16> {
    let root = bencode::decode(body).unwrap();
    let peers = root.get(b"peers").and_then(Value::as_bytes).unwrap();
    assert_eq!(peers.len() % 6, 0);
    let mut ports: Vec<u16> = peers
        .chunks_exact(6)
        .map(|entry| {
            assert_eq!(entry[..4], [127, 0, 0, 1]);
            u16::from_be_bytes([entry[4], entry[5]])
        })
        .collect();
    ports.sort_unstable();
    ports
}

fn count(body: &[u8], key: &[u8]) -> i64 {
    bencode::decode(body)
        .unwrap()
        .get(key)
        .and_then(Value::as_int)
        .unwrap()
}

#[test]
fn compact_reply_lists_the_others_but_not_the_requester() {
    let server = start(config()).unwrap();
    let addr = server.addr();
    announce_as(addr, 1, "&left=0");
    announce_as(addr, 2, "&left=10");
    let body = announce_as(addr, 3, "&left=10&event=started");
    assert_eq!(compact_ports(&body), [7001, 7002]);
    assert_eq!(count(&body, b"complete"), 1);
    assert_eq!(count(&body, b"incomplete"), 2);
    assert_eq!(count(&body, b"interval"), 60);
    assert_eq!(count(&body, b"min interval"), 30);
    // A re-announce by the same peer does not list it either, nor count it twice.
    let again = announce_as(addr, 1, "&left=0");
    assert_eq!(compact_ports(&again), [7002, 7003]);
    assert_eq!(count(&again, b"incomplete"), 2);
    server.stop();
}

#[test]
fn compact_zero_gives_dictionaries() {
    let server = start(config()).unwrap();
    let addr = server.addr();
    announce_as(addr, 1, "");
    let body = announce_as(addr, 2, "&compact=0");
    let root = bencode::decode(&body).unwrap();
    let peers = root.get(b"peers").and_then(Value::as_list).unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(
        peers[0].get(b"ip").and_then(Value::as_str),
        Some("127.0.0.1")
    );
    assert_eq!(peers[0].get(b"port").and_then(Value::as_int), Some(7001));
    assert_eq!(
        peers[0].get(b"peer id").and_then(Value::as_bytes),
        Some(&peer_id(1)[..])
    );
    server.stop();
}

#[test]
fn numwant_limits_the_peers_returned() {
    let server = start(config()).unwrap();
    let addr = server.addr();
    for n in 1..=6 {
        announce_as(addr, n, "");
    }
    let two = announce_as(addr, 1, "&numwant=2");
    assert_eq!(compact_ports(&two).len(), 2);
    assert!(!compact_ports(&two).contains(&7001));
    let none = announce_as(addr, 1, "&numwant=0");
    assert!(compact_ports(&none).is_empty());
    let all = announce_as(addr, 1, "&numwant=1000");
    assert_eq!(compact_ports(&all), [7002, 7003, 7004, 7005, 7006]);
    server.stop();
}

#[test]
fn stopped_removes_the_peer() {
    let server = start(config()).unwrap();
    let addr = server.addr();
    announce_as(addr, 1, "");
    announce_as(addr, 2, "");
    let body = announce_as(addr, 1, "&event=stopped");
    assert_eq!(count(&body, b"incomplete"), 1);
    let body = announce_as(addr, 2, "");
    assert!(compact_ports(&body).is_empty());
    assert_eq!(count(&body, b"incomplete"), 1);
    server.stop();
}

#[test]
fn silent_peers_expire() {
    let server = start(ServerConfig {
        peer_ttl: Duration::from_millis(200),
        ..config()
    })
    .unwrap();
    let addr = server.addr();
    announce_as(addr, 1, "");
    std::thread::sleep(Duration::from_millis(400));
    // Swept by the timer: a scrape (which never expires anything itself) no longer sees it.
    let (_, scrape) = get(addr, "/scrape");
    let root = bencode::decode(&scrape).unwrap();
    let files = root.get(b"files").and_then(Value::as_dict).unwrap();
    assert!(files.is_empty(), "{files:?}");
    let body = announce_as(addr, 2, "");
    assert!(compact_ports(&body).is_empty());
    assert_eq!(count(&body, b"incomplete"), 1);
    server.stop();
}

#[test]
fn scrape_counts_seeders_leechers_and_completions() {
    let server = start(config()).unwrap();
    let addr = server.addr();
    let other = [7u8; 20];
    announce_as(addr, 1, "&left=5");
    announce_as(addr, 1, "&left=0&event=completed");
    announce_as(addr, 2, "&left=5");
    announce_ok(addr, &target(&other, 3, 7003, "&left=0"));
    let unknown = [9u8; 20];
    let (status, body) = get(
        addr,
        &format!(
            "/scrape?info_hash={}&info_hash={}",
            encode(&HASH),
            encode(&unknown)
        ),
    );
    assert_eq!(status, 200);
    let root = bencode::decode(&body).unwrap();
    let files = root.get(b"files").unwrap();
    let ours = files.get(&HASH).unwrap();
    assert_eq!(ours.get(b"complete").and_then(Value::as_int), Some(1));
    assert_eq!(ours.get(b"incomplete").and_then(Value::as_int), Some(1));
    assert_eq!(ours.get(b"downloaded").and_then(Value::as_int), Some(1));
    let none = files.get(&unknown).unwrap();
    assert_eq!(none.get(b"complete").and_then(Value::as_int), Some(0));
    assert!(files.get(&other).is_none());

    let (_, all) = get(addr, "/scrape");
    let root = bencode::decode(&all).unwrap();
    let files = root.get(b"files").and_then(Value::as_dict).unwrap();
    let mut hashes: Vec<&[u8]> = files.iter().map(|(hash, _)| *hash).collect();
    hashes.sort_unstable();
    assert_eq!(hashes, [&HASH[..], &other[..]]);
    server.stop();
}

#[test]
fn malformed_announces_get_a_failure_reason() {
    let server = start(config()).unwrap();
    let addr = server.addr();
    let cases = [
        (
            target(&HASH[..19], 1, 7001, ""),
            "info_hash must be 20 bytes, got 19",
        ),
        (
            format!("/announce?peer_id={}&port=1", encode(&peer_id(1))),
            "missing info_hash",
        ),
        (target(&HASH, 1, 0, ""), "invalid port"),
        (target(&HASH, 1, 7001, "&left=-1"), "invalid left"),
        (target(&HASH, 1, 7001, "&event=bogus"), "invalid event"),
        (
            "/announce?info_hash=%zz".to_string(),
            "malformed percent-encoding in the query",
        ),
    ];
    for (target, expected) in cases {
        let (status, body) = get(addr, &target);
        assert_eq!(status, 200, "{target}");
        assert_eq!(failure_reason(&body), expected, "{target}");
    }
    let (_, scrape) = get(addr, "/scrape?info_hash=short");
    assert_eq!(failure_reason(&scrape), "info_hash must be 20 bytes, got 5");
    server.stop();
}

#[test]
fn garbage_unknown_paths_and_huge_heads_do_not_hurt_the_server() {
    let server = start(config()).unwrap();
    let addr = server.addr();
    assert_eq!(exchange(addr, b"\x00\x16\x03\x01garbage\r\n\r\n").0, 400);
    assert_eq!(exchange(addr, b"GET /announce\r\n\r\n").0, 400);
    assert_eq!(exchange(addr, b"POST /announce HTTP/1.1\r\n\r\n").0, 405);
    assert_eq!(get(addr, "/favicon.ico").0, 404);
    // A head past the cap: a 400 or a reset, never a hang or a crash.
    let mut huge = b"GET /announce?".to_vec();
    huge.extend(vec![b'a'; MAX_REQUEST_HEAD + 100]);
    if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = stream.write_all(&huge);
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        assert!(reply.is_empty() || reply.starts_with(b"HTTP/1.1 400"));
    }
    // A client that connects and leaves without a word gets nothing and harms nothing.
    drop(TcpStream::connect(addr).unwrap());
    announce_as(addr, 1, "");
    server.stop();
}

#[test]
fn our_client_announces_end_to_end() {
    let server = start(config()).unwrap();
    announce_as(server.addr(), 1, "");
    let request = announce_request(2, 7002);
    let url = server.announce_url();
    let response = crate::tracker::http::announce(&url, &request, Duration::from_secs(5)).unwrap();
    assert_eq!(
        response.peers,
        vec![SocketAddr::from(([127, 0, 0, 1], 7001))]
    );
    assert_eq!(response.interval, DEFAULT_INTERVAL);
    assert_eq!(response.counts.incomplete, Some(2));
    let stopped = AnnounceRequest {
        event: Some(AnnounceEvent::Stopped),
        numwant: 0,
        ..request
    };
    let response = crate::tracker::http::announce(&url, &stopped, Duration::from_secs(5)).unwrap();
    assert!(response.peers.is_empty());
    assert_eq!(response.counts.incomplete, Some(1));
    server.stop();
}

#[test]
fn limits_refuse_new_peers_and_torrents() {
    let server = start(ServerConfig {
        max_torrents: 1,
        max_peers_per_torrent: 2,
        ..config()
    })
    .unwrap();
    let addr = server.addr();
    announce_as(addr, 1, "");
    announce_as(addr, 2, "");
    let (_, body) = get(addr, &target(&HASH, 3, 7003, ""));
    assert_eq!(
        failure_reason(&body),
        "this torrent's swarm is full (2 peers)"
    );
    // Known peers may still re-announce.
    announce_as(addr, 2, "");
    let (_, body) = get(addr, &target(&[5u8; 20], 3, 7003, ""));
    assert_eq!(failure_reason(&body), "this tracker is full (1 torrents)");
    server.stop();
}

#[test]
fn stop_returns_promptly_even_with_an_idle_client() {
    let server = start(config()).unwrap();
    let _idle = TcpStream::connect(server.addr()).unwrap();
    let mut partial = TcpStream::connect(server.addr()).unwrap();
    partial.write_all(b"GET /announce?info").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    server.stop();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "stop took {elapsed:?}");
}

#[test]
fn bad_configs_are_refused() {
    let zero_ttl = ServerConfig {
        peer_ttl: Duration::ZERO,
        ..config()
    };
    let error = start(zero_ttl).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
}

fn udp_exchange(socket: &UdpSocket, request: &Request) -> udp::Response {
    socket.send(&request.encode()).unwrap();
    let mut buf = [0u8; 2048];
    let n = socket.recv(&mut buf).unwrap();
    udp::Response::decode(&buf[..n], socket.local_addr().unwrap().is_ipv6()).unwrap()
}

fn udp_socket(server: &TrackerServer) -> UdpSocket {
    let local: SocketAddr = if server.addr().is_ipv6() {
        "[::1]:0".parse().unwrap()
    } else {
        "127.0.0.1:0".parse().unwrap()
    };
    let socket = UdpSocket::bind(local).unwrap();
    socket.connect(server.addr()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket
}

/// A `started` announce of `HASH` by our client, as peer `n` listening on `port`.
fn announce_request(n: u16, port: u16) -> AnnounceRequest {
    AnnounceRequest {
        announcer: Announcer {
            info_hash: HASH,
            peer_id: peer_id(n),
            port,
            local: None,
            encryption: crate::peer::mse::Encryption::Off,
        },
        totals: Totals {
            left: 10,
            ..Totals::default()
        },
        event: Some(AnnounceEvent::Started),
        numwant: 50,
    }
}

#[test]
fn udp_announce_needs_a_valid_connection_id() {
    let server = start(config()).unwrap();
    let socket = udp_socket(&server);
    let refused = udp_exchange(
        &socket,
        &Request::Announce {
            connection_id: 12345,
            transaction_id: 7,
            request: announce_request(1, 7001),
            key: 1,
        },
    );
    assert_eq!(
        refused,
        udp::Response::Error {
            transaction_id: 7,
            message: "invalid or expired connection id".to_string()
        }
    );
    let udp::Response::Connect { connection_id, .. } =
        udp_exchange(&socket, &Request::Connect { transaction_id: 8 })
    else {
        panic!("expected a connect reply");
    };
    let reply = udp_exchange(
        &socket,
        &Request::Announce {
            connection_id,
            transaction_id: 9,
            request: announce_request(1, 7001),
            key: 1,
        },
    );
    assert!(
        matches!(
            reply,
            udp::Response::Announce {
                transaction_id: 9,
                leechers: 1,
                ..
            }
        ),
        "{reply:?}"
    );
    // Garbage gets no reply: the next reply is the one to the connect sent after it.
    let mut garbage = Request::Connect { transaction_id: 10 }.encode();
    garbage[0] ^= 1;
    for datagram in [&[0u8; 16][..], &[1, 2, 3], &garbage, &[0xFF; 98]] {
        socket.send(datagram).unwrap();
    }
    let reply = udp_exchange(&socket, &Request::Connect { transaction_id: 11 });
    assert!(
        matches!(
            reply,
            udp::Response::Connect {
                transaction_id: 11,
                ..
            }
        ),
        "{reply:?}"
    );
    server.stop();
}

#[test]
fn udp_and_http_share_one_swarm_and_scrape_works() {
    let server = start(config()).unwrap();
    announce_as(server.addr(), 1, "&left=0");
    let url = server.udp_announce_url();
    assert_eq!(url, format!("udp://{}/announce", server.addr()));
    let mut client = udp_client::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = client
        .announce(&url, &announce_request(2, 7002), Until::at(deadline))
        .unwrap();
    assert_eq!(reply.peers, vec![SocketAddr::from(([127, 0, 0, 1], 7001))]);
    assert_eq!(
        reply.counts,
        SwarmCounts {
            complete: Some(1),
            incomplete: Some(1)
        }
    );
    let unknown = [3u8; 20];
    let counts = client
        .scrape(&url, &[unknown, HASH], Until::at(deadline))
        .unwrap();
    assert_eq!(counts[0], udp::ScrapeCounts::default());
    assert_eq!((counts[1].seeders, counts[1].leechers), (1, 1));
    // An HTTP announce sees the UDP peer.
    let body = announce_as(server.addr(), 3, "");
    assert_eq!(compact_ports(&body), [7001, 7002]);
    server.stop();
}

#[test]
fn udp_over_ipv6_returns_18_byte_peers() {
    let Ok(server) = start(ServerConfig::new("[::1]:0".parse().unwrap())) else {
        // No IPv6 loopback on this machine: nothing to test.
        return;
    };
    announce_as(server.addr(), 1, "");
    let url = server.udp_announce_url();
    assert!(url.starts_with("udp://[::1]:"), "{url}");
    let reply = udp_client::Client::new()
        .announce(
            &url,
            &announce_request(2, 7002),
            Until::at(Instant::now() + Duration::from_secs(10)),
        )
        .unwrap();
    assert_eq!(
        reply.peers,
        vec!["[::1]:7001".parse::<SocketAddr>().unwrap()]
    );
    server.stop();
}
