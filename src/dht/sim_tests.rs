//! Whole DHTs of [`Node`]s on a simulated network (no sockets, a manual clock): joins,
//! lookups, announces, expiry. The same nodes run over UDP in `tests/dht.rs`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dht::id::NodeId;
use crate::dht::krpc::{self, AnnouncedPort, Kind, Message, Query};
use crate::dht::node::{Node, NodeConfig, Output};
use crate::dht::store::PEER_TTL;
use crate::dht::tokens::ROTATE_EVERY;
use crate::rng::Rng;

struct Net {
    nodes: Vec<Node>,
    addrs: Vec<SocketAddr>,
    by_addr: HashMap<SocketAddr, usize>,
    down: HashSet<usize>,
    queue: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    now: Instant,
    /// Peers each node has heard of, per info hash.
    found: Vec<HashMap<NodeId, HashSet<SocketAddr>>>,
    done: Vec<HashSet<NodeId>>,
    /// Lookups each node finished.
    lookups: Vec<usize>,
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, (i / 250) as u8, (i % 250 + 1) as u8], 6881))
}

impl Net {
    fn new(n: usize, seed: u64) -> Net {
        let mut rng = Rng::seeded(seed);
        let now = Instant::now();
        let addrs: Vec<SocketAddr> = (0..n).map(addr).collect();
        let nodes = (0..n)
            .map(|i| {
                let config = NodeConfig {
                    id: NodeId::random(&mut rng),
                    port: 6881,
                    v4: true,
                    v6: false,
                    bootstrap: if i == 0 { vec![] } else { vec![addrs[0]] },
                    saved: vec![],
                    own_ip: None,
                };
                Node::new(config, Rng::seeded(seed + i as u64), now)
            })
            .collect();
        let mut net = Net {
            nodes,
            by_addr: addrs.iter().enumerate().map(|(i, a)| (*a, i)).collect(),
            addrs,
            down: HashSet::new(),
            queue: VecDeque::new(),
            now,
            found: vec![HashMap::new(); n],
            done: vec![HashSet::new(); n],
            lookups: vec![0; n],
        };
        net.collect();
        net
    }

    /// Node `announcer` announces port `port` for `hash(k)`; after `settle`, node `asker` looks
    /// the peers up and has `settle` again to hear them.
    fn announce_then_get_peers(
        &mut self,
        announcer: usize,
        asker: usize,
        k: u8,
        port: u16,
        settle: Duration,
    ) {
        self.nodes[announcer].announce(hash(k), port, self.now);
        self.collect();
        self.run(settle);
        self.nodes[asker].get_peers(hash(k), self.now);
        self.collect();
        self.run(settle);
    }

    fn collect(&mut self) {
        for i in 0..self.nodes.len() {
            for out in self.nodes[i].drain() {
                match out {
                    Output::Send(to, bytes) => self.queue.push_back((self.addrs[i], to, bytes)),
                    Output::Peers(hash, peers) => {
                        self.found[i].entry(hash).or_default().extend(peers)
                    }
                    Output::LookupDone { info_hash, .. } => {
                        self.lookups[i] += 1;
                        self.done[i].insert(info_hash);
                    }
                }
            }
        }
    }

    /// Delivers datagrams (each after 1 ms) and ticks every 100 ms, for `span`.
    fn run(&mut self, span: Duration) {
        let end = self.now + span;
        let mut next_tick = self.now;
        while self.now < end {
            let mut budget = self.queue.len();
            while let Some((from, to, bytes)) = self.queue.pop_front() {
                if let Some(&j) = self.by_addr.get(&to) {
                    if !self.down.contains(&j) {
                        self.nodes[j].receive(from, &bytes, self.now);
                    }
                }
                budget -= 1;
                if budget == 0 {
                    break;
                }
            }
            self.now += Duration::from_millis(1);
            if self.now >= next_tick {
                for (i, node) in self.nodes.iter_mut().enumerate() {
                    if !self.down.contains(&i) {
                        node.tick(self.now);
                    }
                }
                next_tick = self.now + Duration::from_millis(100);
            }
            self.collect();
        }
    }
}

/// A node that knows no other, for tests of what it answers.
fn lone_node(now: Instant) -> Node {
    let config = NodeConfig {
        id: NodeId([1; 20]),
        port: 6881,
        v4: true,
        v6: false,
        bootstrap: vec![],
        saved: vec![],
        own_ip: None,
    };
    Node::new(config, Rng::seeded(1), now)
}

fn hash(n: u8) -> NodeId {
    let mut rng = Rng::seeded(1000 + u64::from(n));
    NodeId::random(&mut rng)
}

#[test]
fn fifty_nodes_converge_and_every_node_finds_every_announce() {
    let mut net = Net::new(50, 7);
    net.run(Duration::from_secs(10));
    for node in &net.nodes {
        assert!(
            node.node_count() >= 8,
            "a node knows only {} others",
            node.node_count()
        );
    }
    let announcers = [3usize, 17, 29, 41, 49];
    for (k, &a) in announcers.iter().enumerate() {
        net.nodes[a].announce(hash(k as u8), 7000 + k as u16, net.now);
    }
    net.collect();
    net.run(Duration::from_secs(10));
    for i in 0..net.nodes.len() {
        for k in 0..announcers.len() {
            net.nodes[i].get_peers(hash(k as u8), net.now);
        }
    }
    net.collect();
    net.run(Duration::from_secs(10));
    for i in 0..net.nodes.len() {
        for (k, &a) in announcers.iter().enumerate() {
            let want = SocketAddr::new(net.addrs[a].ip(), 7000 + k as u16);
            let got = net.found[i].get(&hash(k as u8));
            assert!(
                got.is_some_and(|g| g.contains(&want)),
                "node {i} did not find announce {k} of node {a}: {got:?}"
            );
            assert!(net.done[i].contains(&hash(k as u8)));
        }
    }
}

#[test]
fn announced_peers_expire_when_the_announcer_goes_away() {
    let mut net = Net::new(20, 8);
    net.run(Duration::from_secs(5));
    net.announce_then_get_peers(5, 15, 1, 7001, Duration::from_secs(5));
    assert!(net.found[15][&hash(1)].contains(&SocketAddr::new(net.addrs[5].ip(), 7001)));
    net.down.insert(5);
    net.run(PEER_TTL + Duration::from_secs(70));
    net.found[12].clear();
    net.done[12].clear();
    net.nodes[12].get_peers(hash(1), net.now);
    net.collect();
    net.run(Duration::from_secs(10));
    assert!(net.done[12].contains(&hash(1)));
    assert!(
        net.found[12].get(&hash(1)).is_none_or(|f| f.is_empty()),
        "{:?}",
        net.found[12]
    );
}

#[test]
fn an_expired_token_is_refused() {
    let t0 = Instant::now();
    let mut node = lone_node(t0);
    let client = addr(9);
    let ask = |node: &mut Node, query: Query, at: Instant| {
        let m = Message {
            tid: b"t1".to_vec(),
            kind: Kind::Query(NodeId([9; 20]), query),
        };
        node.receive(client, &m.encode(), at);
        let out = node.drain();
        let reply = out.iter().find_map(|o| match o {
            Output::Send(to, bytes) if *to == client => {
                krpc::decode(bytes).ok().filter(|m| m.tid == b"t1")
            }
            _ => None,
        });
        reply.expect("no reply").kind
    };
    let Kind::Response(r) = ask(
        &mut node,
        Query::GetPeers {
            info_hash: hash(2),
            want: None,
        },
        t0,
    ) else {
        panic!("get_peers not answered");
    };
    let token = r.token.expect("no token");
    let announce = |token: Vec<u8>| Query::AnnouncePeer {
        info_hash: hash(2),
        port: AnnouncedPort {
            port: 9000,
            implied: false,
        },
        token,
    };
    assert!(matches!(
        ask(&mut node, announce(token.clone()), t0 + ROTATE_EVERY),
        Kind::Response(_)
    ));
    assert_eq!(node.stored(), (1, 1));
    assert!(matches!(
        ask(&mut node, announce(token), t0 + ROTATE_EVERY * 2),
        Kind::Error(203, _)
    ));
    assert!(matches!(
        ask(&mut node, announce(b"forged".to_vec()), t0),
        Kind::Error(203, _)
    ));
}

/// Sends `query` to `node` from `from` (with node id `[sender; 20]`) and returns the
/// responses among what the node sends back, all of its output drained.
fn responses(
    node: &mut Node,
    from: SocketAddr,
    sender: u8,
    query: Query,
    at: Instant,
) -> Vec<krpc::Response> {
    let m = Message {
        tid: b"q".to_vec(),
        kind: Kind::Query(NodeId([sender; 20]), query),
    };
    node.receive(from, &m.encode(), at);
    node.drain()
        .iter()
        .filter_map(|o| match o {
            Output::Send(_, b) => match krpc::decode(b).ok()?.kind {
                Kind::Response(r) => Some(r),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn implied_port_stores_the_source_port() {
    let t0 = Instant::now();
    let mut node = lone_node(t0);
    let client: SocketAddr = "127.0.0.9:5555".parse().unwrap();
    let get = |info_hash| Query::GetPeers {
        info_hash,
        want: None,
    };
    let token = responses(&mut node, client, 9, get(hash(3)), t0)
        .into_iter()
        .find_map(|r| r.token)
        .unwrap();
    let announce = Query::AnnouncePeer {
        info_hash: hash(3),
        port: AnnouncedPort {
            port: 1,
            implied: true,
        },
        token,
    };
    responses(&mut node, client, 9, announce, t0);
    let asker = "127.0.0.10:1".parse().unwrap();
    let values = responses(&mut node, asker, 8, get(hash(3)), t0)
        .into_iter()
        .map(|r| r.values)
        .next()
        .unwrap();
    assert_eq!(values, vec![client]);
}

#[test]
fn malformed_datagrams_are_counted_and_unknown_methods_get_204() {
    let t0 = Instant::now();
    let mut node = lone_node(t0);
    let from = addr(3);
    node.receive(from, b"garbage", t0);
    node.receive(
        from,
        b"d1:ad2:id20:abcdefghij0123456789e1:q3:foo1:t2:aa1:y1:qe",
        t0,
    );
    assert_eq!(node.stats().malformed, 2);
    let out = node.drain();
    assert_eq!(out.len(), 1);
    let Output::Send(_, bytes) = &out[0] else {
        panic!()
    };
    assert!(matches!(
        krpc::decode(bytes).unwrap().kind,
        Kind::Error(204, _)
    ));
    // A forged reply to a query never sent is counted and ignored.
    let forged = Message {
        tid: vec![0, 9],
        kind: Kind::Response(Default::default()),
    };
    node.receive(from, &forged.encode(), t0);
    assert_eq!(node.stats().unsolicited, 1);
    assert_eq!(node.node_count(), 0);
}

#[test]
fn a_node_that_joined_through_the_announcer_alone_finds_it() {
    let mut net = Net::new(2, 9);
    // Node 0 is bound to its own address, so it serves its own announces.
    let config = NodeConfig {
        id: net.nodes[0].id(),
        port: 6881,
        v4: true,
        v6: false,
        bootstrap: vec![],
        saved: vec![],
        own_ip: Some(net.addrs[0].ip()),
    };
    net.nodes[0] = Node::new(config, Rng::seeded(1), net.now);
    net.announce_then_get_peers(0, 1, 5, 7005, Duration::from_secs(2));
    let want = SocketAddr::new(net.addrs[0].ip(), 7005);
    assert!(net.found[1]
        .get(&hash(5))
        .is_some_and(|f| f.contains(&want)));
    // And once nodes turn up, the announce goes out to them too.
    net.run(Duration::from_secs(40));
    assert!(
        net.nodes[1].stored().1 >= 1,
        "node 0 never announced to node 1"
    );
}

#[test]
fn an_announce_runs_one_lookup_and_then_waits_its_interval() {
    let mut net = Net::new(10, 10);
    // Node 0 (everyone's bootstrap, with none of its own) announces before it knows anyone:
    // the lookup waits until the others' queries make them known.
    net.nodes[0].announce(hash(9), 7009, net.now);
    net.collect();
    net.run(Duration::from_secs(60));
    // One announce round: at most K announce_peer queries reached the others.
    let stored: usize = net.nodes.iter().map(|n| n.stored().1).sum();
    assert!((1..=8).contains(&stored), "{stored} announces stored");
    assert_eq!(net.lookups[0], 1, "more than one lookup ran");
}
