//! One DHT node's whole behaviour, without sockets or clocks: what to answer, whom to ask,
//! when to give up, re-announce and refresh. Datagrams and the time go in; datagrams to
//! send and peers found come out as [`Output`]s.
//!
//! Pure state machine owned by the DHT thread (`dht::thread`), which feeds it what its
//! sockets receive and sends what it asks. Owns the routing table, the lookups, the
//! transactions in flight, the write tokens and the store of peers announced to us. Every
//! collection it holds is capped (see `src/limits.rs`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::dht::id::{NodeId, NodeInfo};
use crate::dht::krpc::{self, AnnouncedPort, Kind, Message, Query, Response, Want, ERROR_PROTOCOL};
use crate::dht::lookup::Lookup;
use crate::dht::routing::{Advice, RoutingTable, K};
use crate::dht::store::PeerStore;
use crate::dht::tokens::Tokens;
use crate::rng::Rng;

/// A query unanswered for this long has failed (and is retried once, unless a lookup sent it).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// Queries we wait on at once; more are not sent until some end.
pub const MAX_TRANSACTIONS: usize = 1024;
/// Lookups running at once.
pub const MAX_LOOKUPS: usize = 32;
/// Re-announce a torrent somewhere in this window after the last announce.
pub(crate) const REANNOUNCE: (Duration, Duration) =
    (Duration::from_secs(15 * 60), Duration::from_secs(30 * 60));
/// With fewer good nodes than this, bootstrap again (at most once per [`REBOOTSTRAP`]).
const WANT_NODES: usize = K;
/// How often an underpopulated table asks its bootstrap nodes again.
const REBOOTSTRAP: Duration = Duration::from_secs(30);
/// How often questionable nodes are pinged and the peer store expired.
const MAINTAIN_EVERY: Duration = Duration::from_secs(60);

/// What the node wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    /// Send this datagram.
    Send(SocketAddr, Vec<u8>),
    /// A `get_peers` lookup found these peers (not reported before in that lookup).
    Peers(NodeId, Vec<SocketAddr>),
    /// A `get_peers` lookup ended: how many peers and how many nodes it asked.
    LookupDone {
        /// The info hash sought.
        info_hash: NodeId,
        /// Distinct peers found.
        peers: usize,
        /// Queries sent.
        queried: usize,
    },
}

/// Counters, for logs and the live line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Datagrams that did not decode.
    pub malformed: u64,
    /// Replies matching no query of ours (late, or forged).
    pub unsolicited: u64,
    /// Queries we answered.
    pub answered: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Ping,
    Bootstrap,
    Lookup(u64),
    Announce,
}

#[derive(Debug, Clone)]
struct Transaction {
    to: SocketAddr,
    sent: Instant,
    purpose: Purpose,
    query: Query,
    attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LookupKind {
    FindNode,
    GetPeers { announce: Option<u16> },
}

#[derive(Debug)]
struct Running {
    lookup: Lookup,
    kind: LookupKind,
}

/// What the node is told at start.
#[derive(Debug, Clone)]
pub(crate) struct NodeConfig {
    /// Our id.
    pub id: NodeId,
    /// The UDP port we listen on (`implied_port` is used when announcing this same port).
    pub port: u16,
    /// We can reach IPv4 nodes.
    pub v4: bool,
    /// We can reach IPv6 nodes.
    pub v6: bool,
    /// Addresses to ask for nodes when the table is empty.
    pub bootstrap: Vec<SocketAddr>,
    /// Nodes saved by the last run, pinged first.
    pub saved: Vec<NodeInfo>,
    /// Our own address, when bound to a specific one: the torrents we announce are then also
    /// served from our own store (so a node that joined through us alone finds us).
    pub own_ip: Option<IpAddr>,
}

/// A DHT node.
#[derive(Debug)]
pub(crate) struct Node {
    config: NodeConfig,
    table: RoutingTable,
    tokens: Tokens,
    store: PeerStore,
    rng: Rng,
    transactions: HashMap<u16, Transaction>,
    next_tid: u16,
    lookups: HashMap<u64, Running>,
    next_lookup: u64,
    /// Info hashes sought before we knew any node, and when they were asked for.
    pending: Vec<(NodeId, Instant)>,
    /// Torrents we announce: the port, and when next.
    announces: HashMap<NodeId, (u16, Instant)>,
    last_bootstrap: Option<Instant>,
    last_maintain: Instant,
    stats: Stats,
    out: Vec<Output>,
}

impl Node {
    /// A node that pings its saved nodes and asks its bootstrap nodes for ours at once.
    pub fn new(config: NodeConfig, rng: Rng, now: Instant) -> Node {
        let mut node = Node {
            table: RoutingTable::new(config.id, now),
            tokens: Tokens::new(now),
            store: PeerStore::default(),
            rng,
            transactions: HashMap::new(),
            next_tid: 0,
            lookups: HashMap::new(),
            next_lookup: 0,
            pending: Vec::new(),
            announces: HashMap::new(),
            last_bootstrap: None,
            last_maintain: now,
            stats: Stats::default(),
            out: Vec::new(),
            config,
        };
        for saved in node.config.saved.clone() {
            node.query(saved.addr, Query::Ping, Purpose::Ping, now);
        }
        node.bootstrap(now);
        node
    }

    /// Our id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// Nodes in the routing table.
    pub(crate) fn node_count(&self) -> usize {
        self.table.len()
    }

    /// The good nodes, to save for the next start.
    pub(crate) fn good_nodes(&self, now: Instant) -> Vec<NodeInfo> {
        self.table.good_nodes(now)
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// (info hashes, peers) in the store of peers announced to us.
    pub fn stored(&self) -> (usize, usize) {
        self.store.size()
    }

    /// Takes what the node wants done.
    pub(crate) fn drain(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    fn want(&self) -> Option<Want> {
        (self.config.v4 && self.config.v6).then_some(Want { v4: true, v6: true })
    }

    fn reachable(&self, addr: &SocketAddr) -> bool {
        if addr.is_ipv4() {
            self.config.v4
        } else {
            self.config.v6
        }
    }

    fn query(&mut self, to: SocketAddr, query: Query, purpose: Purpose, now: Instant) -> bool {
        if self.transactions.len() >= MAX_TRANSACTIONS || !self.reachable(&to) {
            return false;
        }
        let mut tid = self.next_tid;
        while self.transactions.contains_key(&tid) {
            tid = tid.wrapping_add(1);
        }
        self.next_tid = tid.wrapping_add(1);
        let message = Message {
            tid: tid.to_be_bytes().to_vec(),
            kind: Kind::Query(self.config.id, query.clone()),
        };
        self.out.push(Output::Send(to, message.encode()));
        self.transactions.insert(
            tid,
            Transaction {
                to,
                sent: now,
                purpose,
                query,
                attempts: 1,
            },
        );
        true
    }

    fn bootstrap(&mut self, now: Instant) {
        self.last_bootstrap = Some(now);
        let target = self.config.id;
        for addr in self.config.bootstrap.clone() {
            let want = self.want();
            self.query(
                addr,
                Query::FindNode { target, want },
                Purpose::Bootstrap,
                now,
            );
        }
    }

    /// Pings `addr` (a peer's BEP 5 `port` message, or a node the user named); it joins the
    /// table if it answers.
    pub(crate) fn add_node(&mut self, addr: SocketAddr, now: Instant) {
        let busy = self.transactions.values().any(|t| t.to == addr);
        if !busy {
            self.query(addr, Query::Ping, Purpose::Ping, now);
        }
    }

    /// Starts a `get_peers` lookup for `info_hash`, unless one is running; peers come out
    /// as [`Output::Peers`], the end as [`Output::LookupDone`].
    pub fn get_peers(&mut self, info_hash: NodeId, now: Instant) {
        self.start_get_peers(info_hash, None, now);
    }

    /// Announces that we download or seed `info_hash` on TCP `port`: a `get_peers` lookup
    /// now, then `announce_peer` to the closest nodes that gave tokens; again every 15–30
    /// minutes.
    pub fn announce(&mut self, info_hash: NodeId, port: u16, now: Instant) {
        self.announces.insert(info_hash, (port, now));
        self.store_self(info_hash, port, now);
        self.start_get_peers(info_hash, Some(port), now);
    }

    fn store_self(&mut self, info_hash: NodeId, port: u16, now: Instant) {
        if let Some(ip) = self.config.own_ip {
            self.store.add(info_hash, SocketAddr::new(ip, port), now);
        }
    }

    fn start_get_peers(&mut self, info_hash: NodeId, announce: Option<u16>, now: Instant) {
        let running = self.lookups.values_mut().find(|r| {
            r.lookup.target() == info_hash && matches!(r.kind, LookupKind::GetPeers { .. })
        });
        if let Some(r) = running {
            if announce.is_some() {
                r.kind = LookupKind::GetPeers { announce };
            }
            return;
        }
        if self.pending.iter().any(|p| p.0 == info_hash) {
            return;
        }
        self.start(info_hash, LookupKind::GetPeers { announce }, now);
    }

    fn start(&mut self, target: NodeId, kind: LookupKind, now: Instant) {
        let seeds = self
            .table
            .closest(&target, K, self.config.v4, self.config.v6, now);
        if seeds.is_empty() {
            if matches!(kind, LookupKind::GetPeers { .. })
                && !self.pending.iter().any(|p| p.0 == target)
            {
                log::debug!("lookup {target:?}: no nodes known yet; waiting for the bootstrap");
                self.pending.push((target, now));
            }
            return;
        }
        if self.lookups.len() >= MAX_LOOKUPS {
            log::debug!("lookup {target:?}: {MAX_LOOKUPS} lookups already running; skipped");
            return;
        }
        let id = self.next_lookup;
        self.next_lookup += 1;
        log::debug!(
            "lookup {target:?} ({}): starting from {} nodes",
            if kind == LookupKind::FindNode {
                "find_node"
            } else {
                "get_peers"
            },
            seeds.len()
        );
        self.lookups.insert(
            id,
            Running {
                lookup: Lookup::new(target, self.config.id, &seeds, now),
                kind,
            },
        );
        self.drive(id, now);
    }

    /// Sends the lookup's next queries, or ends it.
    fn drive(&mut self, id: u64, now: Instant) {
        let Some(running) = self.lookups.get_mut(&id) else {
            return;
        };
        let target = running.lookup.target();
        let kind = running.kind;
        let asks = running.lookup.next_queries(now);
        for node in asks {
            let want = self.want();
            let query = match kind {
                LookupKind::FindNode => Query::FindNode { target, want },
                LookupKind::GetPeers { .. } => Query::GetPeers {
                    info_hash: target,
                    want,
                },
            };
            log::debug!("lookup {target:?}: asking {} ({:?})", node.addr, node.id);
            if !self.query(node.addr, query, Purpose::Lookup(id), now) {
                if let Some(r) = self.lookups.get_mut(&id) {
                    r.lookup.on_failure(node.addr);
                }
            }
        }
        let Some(running) = self.lookups.get(&id) else {
            return;
        };
        if !running.lookup.is_done(now) {
            return;
        }
        let Some(running) = self.lookups.remove(&id) else {
            return;
        };
        let lookup = running.lookup;
        log::debug!(
            "lookup {target:?}: done after {} queries in {} ms, {} peers, {} closest answered",
            lookup.queries_sent(),
            now.saturating_duration_since(lookup.started()).as_millis(),
            lookup.peers_found(),
            lookup.closest_answered().len()
        );
        if let LookupKind::GetPeers { announce } = running.kind {
            if let Some(port) = announce {
                let announced = AnnouncedPort {
                    port,
                    implied: port == self.config.port,
                };
                for (node, token) in lookup.closest_with_tokens() {
                    log::debug!("announce {target:?} on port {port} to {}", node.addr);
                    let query = Query::AnnouncePeer {
                        info_hash: target,
                        port: announced,
                        token,
                    };
                    self.query(node.addr, query, Purpose::Announce, now);
                }
                let (lo, hi) = REANNOUNCE;
                let next = now + lo + Duration::from_secs(self.rng.below((hi - lo).as_secs()));
                self.announces.insert(target, (port, next));
                self.store_self(target, port, now);
            }
            self.out.push(Output::LookupDone {
                info_hash: target,
                peers: lookup.peers_found(),
                queried: lookup.queries_sent(),
            });
        }
    }

    /// Handles one datagram from `from`.
    pub(crate) fn receive(&mut self, from: SocketAddr, packet: &[u8], now: Instant) {
        let from = krpc::unmap(from);
        let message = match krpc::decode(packet) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                log::trace!("dropped a malformed datagram from {from}: {}", e.reason);
                if let Some((tid, code)) = e.reply {
                    let reply = Message {
                        tid,
                        kind: Kind::Error(code, e.reason.to_string()),
                    };
                    self.out.push(Output::Send(from, reply.encode()));
                }
                return;
            }
        };
        match message.kind {
            Kind::Query(id, query) => self.answer(from, message.tid, id, query, now),
            Kind::Response(r) => self.on_response(from, &message.tid, r, now),
            Kind::Error(code, text) => {
                if let Some(tx) = self.take_transaction(from, &message.tid) {
                    log::debug!("{from} answered with error {code}: {text}");
                    if let Purpose::Lookup(id) = tx.purpose {
                        if let Some(r) = self.lookups.get_mut(&id) {
                            r.lookup.on_failure(from);
                        }
                        self.drive(id, now);
                    }
                }
            }
        }
    }

    fn take_transaction(&mut self, from: SocketAddr, tid: &[u8]) -> Option<Transaction> {
        let key = u16::from_be_bytes(tid.try_into().ok()?);
        match self.transactions.get(&key) {
            Some(tx) if tx.to == from => self.transactions.remove(&key),
            _ => {
                self.stats.unsolicited += 1;
                None
            }
        }
    }

    fn answer(&mut self, from: SocketAddr, tid: Vec<u8>, id: NodeId, query: Query, now: Instant) {
        if let Advice::Ping(node) = self
            .table
            .heard_from(NodeInfo { id, addr: from }, false, now)
        {
            self.add_node(node.addr, now);
        }
        let want = |want: Option<Want>| {
            want.unwrap_or(Want {
                v4: from.is_ipv4(),
                v6: from.is_ipv6(),
            })
        };
        let mut reply = Response {
            id: self.config.id,
            ..Response::default()
        };
        let closest = |node: &Self, target: &NodeId, w: Want, reply: &mut Response| {
            let nodes = node.table.closest(target, K * 2, w.v4, w.v6, now);
            let first_k = |v4: bool| {
                nodes
                    .iter()
                    .filter(|n| n.addr.is_ipv4() == v4)
                    .take(K)
                    .copied()
                    .collect()
            };
            reply.nodes = first_k(true);
            reply.nodes6 = first_k(false);
        };
        match query {
            Query::Ping => {}
            Query::FindNode { target, want: w } => closest(self, &target, want(w), &mut reply),
            Query::GetPeers { info_hash, want: w } => {
                closest(self, &info_hash, want(w), &mut reply);
                reply.token = Some(self.tokens.make(from.ip(), now));
                reply.values = self
                    .store
                    .get(&info_hash, from.is_ipv4(), now, &mut self.rng);
                log::debug!(
                    "{from} asked for peers of {info_hash:?}; gave {}",
                    reply.values.len()
                );
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                token,
            } => {
                if !self.tokens.check(from.ip(), &token, now) {
                    let error = Message {
                        tid,
                        kind: Kind::Error(ERROR_PROTOCOL, "bad token".into()),
                    };
                    self.out.push(Output::Send(from, error.encode()));
                    return;
                }
                let port = port.of(from);
                log::debug!("{from} announced {info_hash:?} on port {port}");
                self.store
                    .add(info_hash, SocketAddr::new(from.ip(), port), now);
            }
        }
        self.stats.answered += 1;
        let message = Message {
            tid,
            kind: Kind::Response(reply),
        };
        self.out.push(Output::Send(from, message.encode()));
    }

    fn on_response(&mut self, from: SocketAddr, tid: &[u8], mut r: Response, now: Instant) {
        let Some(tx) = self.take_transaction(from, tid) else {
            return;
        };
        if r.id == self.config.id {
            return;
        }
        if let Advice::Ping(node) = self.table.heard_from(
            NodeInfo {
                id: r.id,
                addr: from,
            },
            true,
            now,
        ) {
            self.add_node(node.addr, now);
        }
        if !self.config.v4 {
            r.nodes.clear();
        }
        if !self.config.v6 {
            r.nodes6.clear();
        }
        match tx.purpose {
            // A node that answers a ping may be the first we know: waiting lookups can start.
            Purpose::Ping | Purpose::Announce => self.start_pending(now),
            Purpose::Bootstrap => {
                log::debug!(
                    "bootstrap node {from} answered with {} nodes",
                    r.nodes.len() + r.nodes6.len()
                );
                let running = self
                    .lookups
                    .values()
                    .any(|l| l.kind == LookupKind::FindNode && l.lookup.target() == self.config.id);
                if !running {
                    self.start(self.config.id, LookupKind::FindNode, now);
                }
                let ids: Vec<u64> = self.lookups.keys().copied().collect();
                for id in ids {
                    if let Some(running) = self.lookups.get_mut(&id) {
                        running.lookup.add_seeds(&r.nodes);
                        running.lookup.add_seeds(&r.nodes6);
                    }
                    self.drive(id, now);
                }
                self.start_pending(now);
            }
            Purpose::Lookup(id) => {
                let Some(running) = self.lookups.get_mut(&id) else {
                    return;
                };
                let fresh = running.lookup.on_reply(from, &r);
                let target = running.lookup.target();
                log::debug!(
                    "lookup {target:?}: {from} answered: {} nodes, {} peers{}",
                    r.nodes.len() + r.nodes6.len(),
                    r.values.len(),
                    if r.token.is_some() { ", a token" } else { "" }
                );
                if !fresh.is_empty() && matches!(running.kind, LookupKind::GetPeers { .. }) {
                    self.out.push(Output::Peers(target, fresh));
                }
                self.drive(id, now);
                self.start_pending(now);
            }
        }
    }

    fn start_pending(&mut self, now: Instant) {
        if self.pending.is_empty() || self.table.is_empty() {
            return;
        }
        for (info_hash, _) in std::mem::take(&mut self.pending) {
            let announce = self.announces.get(&info_hash).map(|a| a.0);
            self.start(info_hash, LookupKind::GetPeers { announce }, now);
        }
    }

    /// Time-driven work: timeouts and retries, re-announces, bucket refresh, pings of
    /// questionable nodes, expiry of stored peers and a new bootstrap when few nodes are
    /// known. Call it a few times a second.
    pub(crate) fn tick(&mut self, now: Instant) {
        let expired: Vec<u16> = self
            .transactions
            .iter()
            .filter(|(_, tx)| now.saturating_duration_since(tx.sent) >= QUERY_TIMEOUT)
            .map(|(tid, _)| *tid)
            .collect();
        for tid in expired {
            let Some(tx) = self.transactions.remove(&tid) else {
                continue;
            };
            let retry = tx.attempts < 2 && !matches!(tx.purpose, Purpose::Lookup(_));
            if retry {
                let message = Message {
                    tid: tid.to_be_bytes().to_vec(),
                    kind: Kind::Query(self.config.id, tx.query.clone()),
                };
                self.out.push(Output::Send(tx.to, message.encode()));
                self.transactions.insert(
                    tid,
                    Transaction {
                        sent: now,
                        attempts: tx.attempts + 1,
                        ..tx
                    },
                );
                continue;
            }
            self.table.failed(&tx.to);
            if let Purpose::Lookup(id) = tx.purpose {
                log::debug!("{} did not answer in time", tx.to);
                if let Some(r) = self.lookups.get_mut(&id) {
                    r.lookup.on_failure(tx.to);
                }
            }
        }
        let ids: Vec<u64> = self.lookups.keys().copied().collect();
        for id in ids {
            self.drive(id, now);
        }
        let due: Vec<(NodeId, u16)> = self
            .announces
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(hash, (port, _))| (*hash, *port))
            .collect();
        for (info_hash, port) in due {
            // Not due again until this lookup ends and sets the real time.
            self.announces.insert(info_hash, (port, now + REANNOUNCE.0));
            self.start_get_peers(info_hash, Some(port), now);
        }
        let timed_out: Vec<NodeId> = self
            .pending
            .iter()
            .filter(|(_, at)| {
                now.saturating_duration_since(*at) >= crate::dht::lookup::LOOKUP_DEADLINE
            })
            .map(|(hash, _)| *hash)
            .collect();
        if !timed_out.is_empty() {
            self.pending.retain(|(hash, _)| !timed_out.contains(hash));
            for info_hash in timed_out {
                log::debug!("lookup {info_hash:?}: no node answered the bootstrap; gave up");
                self.out.push(Output::LookupDone {
                    info_hash,
                    peers: 0,
                    queried: 0,
                });
                if let Some(entry) = self.announces.get_mut(&info_hash) {
                    // Announce as soon as nodes turn up, not a quarter of an hour later.
                    entry.1 = now + REBOOTSTRAP;
                }
            }
        }
        self.start_pending(now);
        let few = self.table.good_nodes(now).len() < WANT_NODES;
        let bootstrap_due = self
            .last_bootstrap
            .is_none_or(|t| now.saturating_duration_since(t) >= REBOOTSTRAP);
        if few && bootstrap_due {
            self.bootstrap(now);
        }
        if now.saturating_duration_since(self.last_maintain) >= MAINTAIN_EVERY {
            self.last_maintain = now;
            self.store.expire(now);
            for node in self.table.questionable(now, K) {
                self.add_node(node.addr, now);
            }
            for target in self.table.stale_targets(now, &mut self.rng) {
                self.start(target, LookupKind::FindNode, now);
            }
        }
    }
}
