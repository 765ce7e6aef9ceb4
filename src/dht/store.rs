//! The peers others announced to us (BEP 5 `announce_peer`), per info hash, for answering
//! `get_peers`.
//!
//! Pure: the DHT thread owns one [`PeerStore`]. Entries expire after [`PEER_TTL`]; at most
//! [`MAX_STORED_INFO_HASHES`] info hashes with at most [`MAX_PEERS_PER_INFO_HASH`] peers
//! each, so announces from strangers cannot grow it without end.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dht::id::NodeId;
use crate::rng::Rng;

/// An announced peer is forgotten after this long unless it announces again.
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);
/// Info hashes we store peers for.
pub const MAX_STORED_INFO_HASHES: usize = 500;
/// Peers stored per info hash.
pub const MAX_PEERS_PER_INFO_HASH: usize = 100;
/// Peers sent in one `get_peers` reply (50 IPv6 peers keep the reply under 1,280 bytes).
pub const MAX_PEERS_PER_REPLY: usize = 50;

/// Announced peers by info hash.
#[derive(Debug, Default)]
pub(crate) struct PeerStore {
    swarms: HashMap<NodeId, Vec<(SocketAddr, Instant)>>,
}

impl PeerStore {
    /// Records that `peer` announced `info_hash`. When the store is full, the smallest
    /// swarm makes room for a new info hash; a full swarm drops its oldest peer.
    pub fn add(&mut self, info_hash: NodeId, peer: SocketAddr, now: Instant) {
        if !self.swarms.contains_key(&info_hash) && self.swarms.len() >= MAX_STORED_INFO_HASHES {
            self.expire(now);
            if self.swarms.len() >= MAX_STORED_INFO_HASHES {
                let smallest = self
                    .swarms
                    .iter()
                    .min_by_key(|(_, peers)| (peers.len(), peers.iter().map(|p| p.1).max()))
                    .map(|(hash, _)| *hash);
                if let Some(hash) = smallest {
                    self.swarms.remove(&hash);
                }
            }
        }
        let peers = self.swarms.entry(info_hash).or_default();
        if let Some(entry) = peers.iter_mut().find(|(p, _)| *p == peer) {
            entry.1 = now;
            return;
        }
        if peers.len() >= MAX_PEERS_PER_INFO_HASH {
            if let Some(oldest) = peers
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.1)
                .map(|(i, _)| i)
            {
                peers.swap_remove(oldest);
            }
        }
        peers.push((peer, now));
    }

    /// Up to [`MAX_PEERS_PER_REPLY`] live peers for `info_hash` of one address family (a
    /// random sample when there are more).
    pub fn get(
        &self,
        info_hash: &NodeId,
        v4: bool,
        now: Instant,
        rng: &mut Rng,
    ) -> Vec<SocketAddr> {
        let Some(peers) = self.swarms.get(info_hash) else {
            return Vec::new();
        };
        let mut live: Vec<SocketAddr> = peers
            .iter()
            .filter(|(p, at)| p.is_ipv4() == v4 && now.saturating_duration_since(*at) < PEER_TTL)
            .map(|(p, _)| *p)
            .collect();
        if live.len() > MAX_PEERS_PER_REPLY {
            rng.shuffle(&mut live);
            live.truncate(MAX_PEERS_PER_REPLY);
        }
        live
    }

    /// Forgets peers older than [`PEER_TTL`], and swarms left empty.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.swarms.retain(|_, peers| {
            peers.retain(|(_, at)| now.saturating_duration_since(*at) < PEER_TTL);
            !peers.is_empty()
        });
    }

    /// (info hashes, peers) stored.
    pub fn size(&self) -> (usize, usize) {
        (self.swarms.len(), self.swarms.values().map(Vec::len).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u32) -> NodeId {
        let mut id = [0u8; 20];
        id[..4].copy_from_slice(&n.to_be_bytes());
        NodeId(id)
    }

    fn peer(n: u32) -> SocketAddr {
        SocketAddr::from(((n | 0x0a00_0000).to_be_bytes(), 6881))
    }

    #[test]
    fn peers_expire_after_the_ttl() {
        let t0 = Instant::now();
        let mut store = PeerStore::default();
        let mut rng = Rng::seeded(1);
        store.add(hash(1), peer(1), t0);
        store.add(hash(1), peer(2), t0 + PEER_TTL / 2);
        assert_eq!(store.get(&hash(1), true, t0, &mut rng).len(), 2);
        assert_eq!(
            store.get(&hash(1), true, t0 + PEER_TTL, &mut rng),
            vec![peer(2)]
        );
        assert!(store.get(&hash(1), false, t0, &mut rng).is_empty());
        store.expire(t0 + PEER_TTL * 2);
        assert_eq!(store.size(), (0, 0));
    }

    #[test]
    fn caps_hold_under_a_flood_of_announces() {
        let t0 = Instant::now();
        let mut store = PeerStore::default();
        let mut rng = Rng::seeded(2);
        for n in 0..20_000u32 {
            store.add(hash(n % 1000), peer(n), t0);
        }
        for n in 0..5_000u32 {
            store.add(hash(7), peer(100_000 + n), t0);
        }
        let (hashes, peers) = store.size();
        assert!(hashes <= MAX_STORED_INFO_HASHES);
        assert!(peers <= MAX_STORED_INFO_HASHES * MAX_PEERS_PER_INFO_HASH);
        assert_eq!(
            store.get(&hash(7), true, t0, &mut rng).len(),
            MAX_PEERS_PER_REPLY
        );
        // A re-announce refreshes rather than duplicates.
        let before = store.size();
        store.add(hash(7), peer(100_000 + 4_999), t0);
        assert_eq!(store.size(), before);
    }
}
