//! The DHT over real UDP on loopback, on distinct 127.x.y.z addresses with fixed ids: 50
//! nodes that converge (every node finds every announce), 20 nodes (announce on one node,
//! find from another, expiry by advancing the nodes' clocks), a flood from one address,
//! malformed datagrams, the saved state, and the guard that keeps every test on loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use strand::dht::{self, Dht, DhtCommand, DhtConfig, DhtEvent};

/// A /24 of loopback addresses of our own, so parallel runs and other tests do not meet.
fn base() -> [u8; 3] {
    let pid = std::process::id();
    [127, 100 + (pid % 100) as u8, (pid / 100 % 250) as u8]
}

fn ip(n: u8) -> IpAddr {
    let [a, b, c] = base();
    IpAddr::V4(Ipv4Addr::new(a, b, c, n))
}

fn fixed_id(n: u8) -> [u8; 20] {
    let mut id = [0u8; 20];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = n.wrapping_mul(37).wrapping_add(i as u8 * 11) ^ (n << 3);
    }
    id
}

fn start(n: u8, bootstrap: Option<SocketAddr>, state_file: Option<PathBuf>) -> Dht {
    dht::spawn(DhtConfig {
        bind: Some(ip(n)),
        port: 0,
        bootstrap: bootstrap.map(|a| a.to_string()).into_iter().collect(),
        state_file,
        id: Some(fixed_id(n)),
        loopback_only: true,
    })
    .expect("start a DHT node")
}

/// Waits (at most `limit`) for peers of `hash` on `node`; returns them, or what the lookup
/// ended with.
fn wait_for_peers(node: &Dht, hash: [u8; 20], limit: Duration) -> (Vec<SocketAddr>, bool) {
    let end = Instant::now() + limit;
    let mut peers = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match node.events.recv_timeout(left) {
            Ok(DhtEvent::Peers(h, p)) if h == hash => peers.extend(p),
            Ok(DhtEvent::LookupDone(h, _)) if h == hash => return (peers, true),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    (peers, false)
}

fn stop_all(nodes: Vec<Dht>) {
    for node in nodes {
        let report = node.stop();
        assert_eq!(report.refused, 0, "a node tried to leave loopback");
    }
}

/// Nodes 1..=`count`, every one bootstrapped off node 1; returns once every routing table
/// holds at least 8 nodes (asserted, within `settle`).
fn settled_dht(count: u8, settle: Duration) -> Vec<Dht> {
    let first = start(1, None, None);
    let router = first.local_addr();
    let mut nodes = vec![first];
    for n in 2..=count {
        nodes.push(start(n, Some(router), None));
    }
    // Let the tables fill: every node bootstraps off the first and looks itself up.
    let end = Instant::now() + settle;
    while Instant::now() < end {
        if nodes
            .iter()
            .all(|n| n.report().is_some_and(|r| r.nodes >= 8))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (i, node) in nodes.iter().enumerate() {
        let r = node.report().unwrap();
        assert!(r.nodes >= 8, "node {} knows {} nodes", i + 1, r.nodes);
    }
    nodes
}

#[test]
fn twenty_nodes_announce_find_and_expire() {
    let mut nodes = settled_dht(20, Duration::from_secs(20));
    let hash = [0xab; 20];
    nodes[4]
        .commands
        .send(DhtCommand::Announce(hash, 6000))
        .unwrap();
    let (_, done) = wait_for_peers(&nodes[4], hash, Duration::from_secs(20));
    assert!(done, "the announcing lookup did not end");
    // Announces go out when the lookup ends; give them a moment to land.
    std::thread::sleep(Duration::from_millis(300));
    nodes[14].get_peers(hash);
    let (peers, _) = wait_for_peers(&nodes[14], hash, Duration::from_secs(20));
    assert!(peers.contains(&SocketAddr::new(ip(5), 6000)), "{peers:?}");

    // The announcer goes away; 31 minutes later its entry has expired everywhere.
    let announcer = nodes.remove(4);
    assert_eq!(announcer.stop().refused, 0);
    for node in &nodes {
        node.commands
            .send(DhtCommand::AdvanceClock(Duration::from_secs(31 * 60)))
            .unwrap();
    }
    let finder = &nodes[10];
    while finder.events.try_recv().is_ok() {}
    finder.get_peers(hash);
    let (peers, done) = wait_for_peers(finder, hash, Duration::from_secs(20));
    assert!(done);
    assert!(peers.is_empty(), "expired peers still served: {peers:?}");
    stop_all(nodes);
}

/// Fifty nodes over real UDP, five of them announcing an info hash each: every node then
/// finds every announcer.
#[test]
fn fifty_nodes_converge_every_node_finds_every_announce() {
    let nodes = settled_dht(50, Duration::from_secs(30));
    let announcers: Vec<usize> = vec![3, 12, 24, 37, 49];
    let hash = |a: usize| [a as u8; 20];
    for &a in &announcers {
        nodes[a]
            .commands
            .send(DhtCommand::Announce(hash(a), 7000 + a as u16))
            .unwrap();
    }
    for &a in &announcers {
        let (_, done) = wait_for_peers(&nodes[a], hash(a), Duration::from_secs(20));
        assert!(done, "the announce lookup of node {} did not end", a + 1);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut missing = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        while node.events.try_recv().is_ok() {}
        for &a in &announcers {
            if a == i {
                continue;
            }
            node.get_peers(hash(a));
            let want = SocketAddr::new(ip(a as u8 + 1), 7000 + a as u16);
            let (peers, _) = wait_for_peers(node, hash(a), Duration::from_secs(20));
            if !peers.contains(&want) {
                missing.push((i + 1, a + 1));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "(finder, announcer) pairs not found: {missing:?}"
    );
    stop_all(nodes);
}

#[test]
fn a_flood_from_one_address_neither_grows_nor_starves() {
    let node = start(30, None, None);
    let target = node.local_addr();
    let flooder = UdpSocket::bind((ip(31), 0)).unwrap();
    let honest = UdpSocket::bind((ip(32), 0)).unwrap();
    honest
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let ping = |tid: &str, id: u8| {
        let id = String::from_utf8(vec![b'a' + id; 20]).unwrap();
        format!("d1:ad2:id20:{id}e1:q4:ping1:t2:{tid}1:y1:qe")
    };
    // Four seconds of pings from one address, as fast as one thread can send them.
    let flood = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(4);
        let mut sent = 0u64;
        while Instant::now() < end {
            for _ in 0..100 {
                let _ = flooder.send_to(ping("ff", 1).as_bytes(), target);
            }
            let _ = flooder.send_to(b"not bencode at all", target);
            sent += 101;
        }
        sent
    });
    std::thread::sleep(Duration::from_millis(200));
    // Meanwhile another node pings ten times, retrying as a real node would (3 tries each).
    let mut answered = 0;
    for round in 0..10 {
        let tid = format!("{round:02}");
        let mut buf = [0u8; 1500];
        'tries: for _ in 0..3 {
            honest.send_to(ping(&tid, 2).as_bytes(), target).unwrap();
            while let Ok((len, _)) = honest.recv_from(&mut buf) {
                let reply = &buf[..len];
                let want = format!("1:t2:{tid}1:y1:r");
                if reply.windows(want.len()).any(|w| w == want.as_bytes()) {
                    answered += 1;
                    break 'tries;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let sent = flood.join().unwrap();
    let report = node.stop();
    assert!(
        answered >= 9,
        "the honest node got {answered} of 10 answers"
    );
    // At most 100 queries a second from the flooder were answered.
    assert!(report.answered <= 5 * 100 + 10, "{report:?} of {sent} sent");
    assert!(report.dropped > 1000, "{report:?} of {sent} sent");
    assert!(report.malformed >= 1, "{report:?}");
    assert_eq!(report.refused, 0);
}

#[test]
fn id_and_nodes_are_saved_and_tried_first_next_time() {
    let dir = std::env::temp_dir().join(format!("strand-dht-test-{}", std::process::id()));
    let state = dir.join("dht.dat");
    let a = start(40, None, None);
    // No fixed id: the id must come from the state file the second time.
    let start_saving = |bootstrap: Vec<String>| {
        dht::spawn(DhtConfig {
            bind: Some(ip(41)),
            port: 0,
            bootstrap,
            state_file: Some(state.clone()),
            id: None,
            loopback_only: true,
        })
        .unwrap()
    };
    let wait_for_a_node = |node: &Dht| {
        let end = Instant::now() + Duration::from_secs(10);
        while node.report().is_some_and(|r| r.nodes == 0) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let b = start_saving(vec![a.local_addr().to_string()]);
    wait_for_a_node(&b);
    assert_eq!(b.stop().nodes, 1);
    let saved = dht::state::load(&state).expect("state saved");
    assert_eq!(saved.nodes.len(), 1);
    assert_eq!(saved.nodes[0].addr, a.local_addr());
    // No bootstrap this time: the saved node alone brings the table back.
    let again = start_saving(vec![]);
    wait_for_a_node(&again);
    assert_eq!(again.stop().nodes, 1);
    assert_eq!(dht::state::load(&state).unwrap().id, saved.id);
    a.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The guard every DHT test relies on: with `loopback_only`, a name is never resolved and a
/// non-loopback address never receives a datagram; both are counted. If this fails, a test
/// run could reach the internet.
#[test]
fn loopback_only_refuses_names_and_other_hosts() {
    let node = dht::spawn(DhtConfig {
        bind: Some(ip(50)),
        port: 0,
        bootstrap: vec!["dht.example.invalid:6881".into(), "192.0.2.1:6881".into()],
        state_file: None,
        id: None,
        loopback_only: true,
    })
    .unwrap();
    node.commands
        .send(DhtCommand::AddNode("198.51.100.7:6881".parse().unwrap()))
        .unwrap();
    let report = node.stop();
    assert_eq!(report.refused, 3, "{report:?}");
    // And the library knows no routers of its own.
    assert!(DhtConfig::default().bootstrap.is_empty());
    assert!(!DhtConfig::default().loopback_only || DhtConfig::default().bootstrap.is_empty());
}

/// Reads a field (kB) of /proc/self/status.
fn status_kb(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The figure for "memory of a node holding its caps": one DHT thread is sent announces until
/// its store holds 500 info hashes × 100 peers (from 1,000 source addresses, each under the
/// per-source query rate), and the process's RssAnon is read before and after.
/// Run: `cargo test --release --test dht -- --ignored --nocapture figures_memory`.
#[test]
#[ignore = "a figure, not a check"]
fn figures_memory_of_a_node_holding_its_caps() {
    use strand::dht::krpc::{AnnouncedPort, Kind, Message, Query};
    use strand::limits as caps;
    let before = status_kb("RssAnon:");
    let node = start(120, None, None);
    let target = node.local_addr();
    let [a, b, _] = base();
    let sources: Vec<UdpSocket> = (0..1000u32)
        .map(|i| {
            let ip = Ipv4Addr::new(
                a,
                b.wrapping_add(1 + (i / 250) as u8),
                0,
                (i % 250 + 1) as u8,
            );
            let s = UdpSocket::bind((ip, 0)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s
        })
        .collect();
    let query = |tid: u16, q: Query| {
        Message {
            tid: tid.to_be_bytes().to_vec(),
            kind: Kind::Query(dht::NodeId([9; 20]), q),
        }
        .encode()
    };
    let hash = |h: u32| {
        let mut id = [0u8; 20];
        id[..4].copy_from_slice(&h.to_be_bytes());
        dht::NodeId(id)
    };
    let started = Instant::now();
    for (i, s) in sources.iter().enumerate() {
        s.send_to(
            &query(
                0,
                Query::GetPeers {
                    info_hash: hash(0),
                    want: None,
                },
            ),
            target,
        )
        .unwrap();
        let mut buf = [0u8; 1500];
        // The node also pings us (a stranger that queried it); skip that to the reply.
        let token = (0..4)
            .find_map(|_| {
                let (n, _) = s.recv_from(&mut buf).ok()?;
                match dht::krpc::decode(&buf[..n]).ok()?.kind {
                    Kind::Response(r) => r.token,
                    _ => None,
                }
            })
            .expect("a token");
        for k in 0..50u32 {
            let h = (i as u32 % 10) * 50 + k;
            let q = Query::AnnouncePeer {
                info_hash: hash(h),
                port: AnnouncedPort {
                    port: 6000 + i as u16,
                    implied: false,
                },
                token: token.clone(),
            };
            s.send_to(&query(k as u16 + 1, q), target).unwrap();
        }
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let end = Instant::now() + Duration::from_secs(30);
    let mut report = node.report().unwrap();
    while report.stored.1 < caps::MAX_STORED_INFO_HASHES * caps::MAX_PEERS_PER_INFO_HASH
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(200));
        report = node.report().unwrap();
    }
    let after = status_kb("RssAnon:");
    println!(
        "DHT node holding {} info hashes / {} peers (caps {} × {}), filled in {:.1} s: RssAnon {} kB before, {} kB after ({} kB more); dropped {}",
        report.stored.0,
        report.stored.1,
        caps::MAX_STORED_INFO_HASHES,
        caps::MAX_PEERS_PER_INFO_HASH,
        started.elapsed().as_secs_f64(),
        before,
        after,
        after.saturating_sub(before),
        report.dropped
    );
    node.stop();
}

/// The figure for "time to the first peer for a trackerless magnet": a 30-node loopback DHT
/// where one node announces; `strand dht HASH` (the binary) looks it up, first from nothing
/// but a router (cold), then from its saved state with the router unreachable (warm).
/// Run: `cargo test --release --test dht -- --ignored --nocapture figures_time`.
#[test]
#[ignore = "a figure, not a check"]
fn figures_time_to_first_peer_cold_and_warm() {
    let first = start(60, None, None);
    let router = first.local_addr();
    let mut nodes = vec![first];
    for n in 61..90 {
        nodes.push(start(n, Some(router), None));
    }
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end
        && !nodes
            .iter()
            .all(|n| n.report().is_some_and(|r| r.nodes >= 8))
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let hash = [0x5a; 20];
    nodes[17]
        .commands
        .send(DhtCommand::Announce(hash, 6500))
        .unwrap();
    let (_, done) = wait_for_peers(&nodes[17], hash, Duration::from_secs(20));
    assert!(done);
    std::thread::sleep(Duration::from_millis(300));
    let state = std::env::temp_dir().join(format!("strand-dht-figure-{}", std::process::id()));
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let run = |bootstrap: String| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_strand"))
            .args([
                "dht",
                &hex,
                "--bind",
                &ip(100).to_string(),
                "--port",
                "0",
                "--timeout",
                "20",
            ])
            .args(["--dht-bootstrap", &bootstrap])
            .env("XDG_STATE_HOME", &state)
            .env("STRAND_DHT_LOOPBACK_ONLY", "1")
            .output()
            .expect("run strand dht");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let first = stderr
            .lines()
            .find_map(|l| l.strip_prefix("first peer after "))
            .map(|s| s.trim_end_matches(" s").to_string());
        (first, stderr)
    };
    let (cold, log) = run(router.to_string());
    println!("cold start (router only): first peer after {cold:?} s\n{log}");
    let (warm, log) = run("127.0.0.1:9".to_string());
    println!("warm start (saved nodes, router unreachable): first peer after {warm:?} s\n{log}");
    assert!(cold.is_some() && warm.is_some());
    let _ = std::fs::remove_dir_all(&state);
    stop_all(nodes);
}

/// BEP 32 over a real IPv6 socket: three nodes on ::1 join, announce and find each other
/// (their replies carry `nodes6`, and the peer comes back as an 18-byte compact peer).
#[test]
fn nodes_on_ipv6_loopback_announce_and_find() {
    let v6 = |n: u8| {
        dht::spawn(DhtConfig {
            bind: Some("::1".parse().unwrap()),
            port: 0,
            bootstrap: vec![],
            state_file: None,
            id: Some(fixed_id(n)),
            loopback_only: true,
        })
    };
    let Ok(first) = v6(200) else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    let router = first.local_addr();
    let join = |n: u8| {
        dht::spawn(DhtConfig {
            bind: Some("::1".parse().unwrap()),
            port: 0,
            bootstrap: vec![router.to_string()],
            state_file: None,
            id: Some(fixed_id(n)),
            loopback_only: true,
        })
        .unwrap()
    };
    let (a, b) = (join(201), join(202));
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end
        && ![&a, &b]
            .iter()
            .all(|n| n.report().is_some_and(|r| r.nodes >= 2))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let hash = [0x66; 20];
    a.commands.send(DhtCommand::Announce(hash, 6006)).unwrap();
    let (_, done) = wait_for_peers(&a, hash, Duration::from_secs(10));
    assert!(done);
    std::thread::sleep(Duration::from_millis(200));
    b.get_peers(hash);
    let (peers, _) = wait_for_peers(&b, hash, Duration::from_secs(10));
    assert!(peers.contains(&"[::1]:6006".parse().unwrap()), "{peers:?}");
    stop_all(vec![first, a, b]);
}
