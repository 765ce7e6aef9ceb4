//! An iterative lookup (BEP 5): ask the closest nodes we know about `target`, [`ALPHA`] at a
//! time, learn closer ones from their answers, and stop when the [`K`] closest that still
//! answer have all answered. A `get_peers` lookup also gathers peers and write tokens.
//!
//! Pure state machine, driven by the DHT thread: it says whom to ask next, and hears of
//! answers and failures. Bounded in size ([`MAX_CANDIDATES`], [`MAX_LOOKUP_PEERS`]), in
//! queries ([`MAX_LOOKUP_QUERIES`]) and in time ([`LOOKUP_DEADLINE`]).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dht::id::{NodeId, NodeInfo};
use crate::dht::krpc::Response;
use crate::dht::routing::K;

/// Queries in flight at once in one lookup.
pub(crate) const ALPHA: usize = 3;
/// Nodes a lookup keeps in mind (the closest ones; farther ones are forgotten).
pub const MAX_CANDIDATES: usize = 64;
/// Queries one lookup may send in all.
pub const MAX_LOOKUP_QUERIES: usize = 128;
/// A lookup ends after this long, converged or not.
pub const LOOKUP_DEADLINE: Duration = Duration::from_secs(30);
/// Distinct peers one lookup collects.
pub const MAX_LOOKUP_PEERS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Fresh,
    Asked,
    Answered(Option<Vec<u8>>),
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    info: NodeInfo,
    state: State,
}

/// One lookup in progress.
#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    target: NodeId,
    own: NodeId,
    /// Closest first.
    candidates: Vec<Candidate>,
    started: Instant,
    sent: usize,
    peers: HashSet<SocketAddr>,
}

impl Lookup {
    /// A lookup for `target` starting from `seeds` (the closest nodes we know); `own` is our
    /// id, never asked.
    pub fn new(target: NodeId, own: NodeId, seeds: &[NodeInfo], now: Instant) -> Lookup {
        let mut lookup = Lookup {
            target,
            own,
            candidates: Vec::new(),
            started: now,
            sent: 0,
            peers: HashSet::new(),
        };
        lookup.add_seeds(seeds);
        lookup
    }

    /// The id sought.
    pub fn target(&self) -> NodeId {
        self.target
    }

    /// When the lookup started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Queries sent so far.
    pub(crate) fn queries_sent(&self) -> usize {
        self.sent
    }

    /// Adds nodes to consider (closest kept, at most [`MAX_CANDIDATES`]).
    pub(crate) fn add_seeds(&mut self, nodes: &[NodeInfo]) {
        for node in nodes {
            if node.id == self.own
                || self
                    .candidates
                    .iter()
                    .any(|c| c.info.addr == node.addr || c.info.id == node.id)
            {
                continue;
            }
            let target = self.target;
            let at = self
                .candidates
                .partition_point(|c| target.distance(&c.info.id) < target.distance(&node.id));
            if at >= MAX_CANDIDATES {
                continue;
            }
            self.candidates.insert(
                at,
                Candidate {
                    info: *node,
                    state: State::Fresh,
                },
            );
            self.candidates.truncate(MAX_CANDIDATES);
        }
    }

    /// The candidates that count: the [`K`] closest that have not failed.
    fn front(&self) -> impl Iterator<Item = &Candidate> {
        self.candidates
            .iter()
            .filter(|c| c.state != State::Failed)
            .take(K)
    }

    fn in_flight(&self) -> usize {
        self.candidates
            .iter()
            .filter(|c| c.state == State::Asked)
            .count()
    }

    /// The nodes to ask now (each is then counted as asked): fresh ones among the front,
    /// closest first, keeping at most [`ALPHA`] in flight.
    pub(crate) fn next_queries(&mut self, now: Instant) -> Vec<NodeInfo> {
        if self.timed_out(now) {
            return Vec::new();
        }
        let room = ALPHA.saturating_sub(self.in_flight());
        let budget = MAX_LOOKUP_QUERIES - self.sent;
        let picks: Vec<SocketAddr> = self
            .front()
            .filter(|c| c.state == State::Fresh)
            .take(room.min(budget))
            .map(|c| c.info.addr)
            .collect();
        let mut asked = Vec::new();
        for c in &mut self.candidates {
            if picks.contains(&c.info.addr) {
                c.state = State::Asked;
                asked.push(c.info);
            }
        }
        self.sent += asked.len();
        asked
    }

    /// The node at `addr` answered. Returns the peers not seen before in this lookup.
    pub(crate) fn on_reply(&mut self, addr: SocketAddr, response: &Response) -> Vec<SocketAddr> {
        if let Some(c) = self.candidates.iter_mut().find(|c| c.info.addr == addr) {
            if c.info.id == response.id {
                c.state = State::Answered(response.token.clone());
            } else {
                // It answered under another id than the one we were told: trust neither.
                c.state = State::Failed;
            }
        }
        self.add_seeds(&response.nodes);
        self.add_seeds(&response.nodes6);
        let mut fresh = Vec::new();
        for peer in &response.values {
            if self.peers.len() >= MAX_LOOKUP_PEERS {
                break;
            }
            if self.peers.insert(*peer) {
                fresh.push(*peer);
            }
        }
        fresh
    }

    /// The node at `addr` did not answer in time (or answered with an error).
    pub(crate) fn on_failure(&mut self, addr: SocketAddr) {
        if let Some(c) = self.candidates.iter_mut().find(|c| c.info.addr == addr) {
            if c.state == State::Asked {
                c.state = State::Failed;
            }
        }
    }

    fn timed_out(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.started) >= LOOKUP_DEADLINE
    }

    /// Whether the lookup is over: out of time, or nothing in flight and nothing left worth
    /// asking (the front has all answered, or the query budget is spent).
    pub(crate) fn is_done(&self, now: Instant) -> bool {
        if self.timed_out(now) {
            return true;
        }
        if self.in_flight() > 0 {
            return false;
        }
        self.sent >= MAX_LOOKUP_QUERIES || !self.front().any(|c| c.state == State::Fresh)
    }

    /// The closest nodes that answered with a write token, at most [`K`], closest first.
    pub(crate) fn closest_with_tokens(&self) -> Vec<(NodeInfo, Vec<u8>)> {
        self.candidates
            .iter()
            .filter_map(|c| match &c.state {
                State::Answered(Some(token)) => Some((c.info, token.clone())),
                _ => None,
            })
            .take(K)
            .collect()
    }

    /// The closest nodes that answered, at most [`K`].
    pub(crate) fn closest_answered(&self) -> Vec<NodeInfo> {
        self.candidates
            .iter()
            .filter(|c| matches!(c.state, State::Answered(_)))
            .map(|c| c.info)
            .take(K)
            .collect()
    }

    /// Distinct peers found so far.
    pub(crate) fn peers_found(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn node(id: NodeId, n: u16) -> NodeInfo {
        NodeInfo {
            id,
            addr: SocketAddr::from(([127, 0, 0, 1], n)),
        }
    }

    /// A toy network of `n` nodes where everyone knows everyone: a node answers with the
    /// K closest it knows.
    fn network(n: u16, rng: &mut Rng) -> Vec<NodeInfo> {
        (1..=n).map(|i| node(NodeId::random(rng), i)).collect()
    }

    /// A lookup for a random target over `network(n)`, seeded by `seed`, that starts from the
    /// network's first `known` nodes.
    fn lookup_over(seed: u64, n: u16, known: usize) -> (Vec<NodeInfo>, NodeId, Lookup, Instant) {
        let mut rng = Rng::seeded(seed);
        let net = network(n, &mut rng);
        let target = NodeId::random(&mut rng);
        let now = Instant::now();
        let lookup = Lookup::new(target, NodeId::random(&mut rng), &net[..known], now);
        (net, target, lookup, now)
    }

    fn answer(net: &[NodeInfo], from: &NodeInfo, target: &NodeId) -> Response {
        let mut sorted = net.to_vec();
        sorted.sort_by(|a, b| target.cmp_distance(&a.id, &b.id));
        Response {
            id: from.id,
            nodes: sorted.into_iter().take(K).collect(),
            token: Some(vec![from.addr.port() as u8]),
            ..Response::default()
        }
    }

    #[test]
    fn converges_on_the_k_closest_with_alpha_in_flight() {
        let (net, target, mut lookup, now) = lookup_over(11, 500, 3);
        let mut rounds = 0;
        while !lookup.is_done(now) {
            let asked = lookup.next_queries(now);
            assert!(asked.len() <= ALPHA);
            assert!(!asked.is_empty());
            for a in asked {
                lookup.on_reply(a.addr, &answer(&net, &a, &target));
            }
            rounds += 1;
            assert!(rounds < 200);
        }
        let mut truth = net.clone();
        truth.sort_by(|a, b| target.cmp_distance(&a.id, &b.id));
        let got: Vec<NodeId> = lookup
            .closest_with_tokens()
            .iter()
            .map(|(n, _)| n.id)
            .collect();
        let want: Vec<NodeId> = truth.iter().take(K).map(|n| n.id).collect();
        assert_eq!(got, want);
        assert!(lookup.queries_sent() < 60, "{}", lookup.queries_sent());
    }

    #[test]
    fn failures_are_skipped_and_the_lookup_ends() {
        let (_, _, mut lookup, now) = lookup_over(12, 30, 30);
        let mut guard = 0;
        while !lookup.is_done(now) {
            for a in lookup.next_queries(now) {
                lookup.on_failure(a.addr);
            }
            guard += 1;
            assert!(guard < 100);
        }
        assert_eq!(lookup.queries_sent(), 30);
        assert!(lookup.closest_with_tokens().is_empty());
    }

    #[test]
    fn bounded_in_time_and_size() {
        let (_, _, mut lookup, now) = lookup_over(13, 300, 300);
        assert_eq!(lookup.candidates.len(), MAX_CANDIDATES);
        let asked = lookup.next_queries(now);
        assert_eq!(asked.len(), ALPHA);
        assert!(!lookup.is_done(now));
        assert!(lookup.is_done(now + LOOKUP_DEADLINE));
        assert!(lookup.next_queries(now + LOOKUP_DEADLINE).is_empty());
    }

    /// A lookup started from one node, which has been asked.
    fn one_node_asked(rng: &mut Rng) -> (NodeInfo, Lookup, Instant) {
        let a = node(NodeId::random(rng), 1);
        let now = Instant::now();
        let mut lookup = Lookup::new(NodeId::random(rng), NodeId::random(rng), &[a], now);
        lookup.next_queries(now);
        (a, lookup, now)
    }

    #[test]
    fn peers_are_collected_once_and_capped() {
        let mut rng = Rng::seeded(14);
        let (a, mut lookup, _) = one_node_asked(&mut rng);
        let values: Vec<SocketAddr> = (0..1500u16)
            .map(|p| SocketAddr::from(([10, 0, (p >> 8) as u8, p as u8], 1000 + p)))
            .collect();
        let r = Response {
            id: a.id,
            values: values.clone(),
            ..Response::default()
        };
        assert_eq!(lookup.on_reply(a.addr, &r).len(), MAX_LOOKUP_PEERS);
        assert!(lookup.on_reply(a.addr, &r).is_empty());
        assert_eq!(lookup.peers_found(), MAX_LOOKUP_PEERS);
    }

    #[test]
    fn a_reply_under_another_id_is_not_trusted() {
        let mut rng = Rng::seeded(15);
        let (a, mut lookup, now) = one_node_asked(&mut rng);
        let r = Response {
            id: NodeId::random(&mut rng),
            token: Some(vec![1]),
            ..Response::default()
        };
        lookup.on_reply(a.addr, &r);
        assert!(lookup.closest_with_tokens().is_empty());
        assert!(lookup.is_done(now));
    }
}
