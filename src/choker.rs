//! The choker: which peers we upload to, decided every 10 seconds.
//!
//! Pure logic, called by the main thread (session) on its tick; no I/O, no clock, no threads.
//! It owns only the current optimistic unchoke, a round counter and a small random generator.
//!
//! The rule is BitTorrent's classic tit-for-tat: unchoke the [`REGULAR_SLOTS`] interested
//! peers with the best rate (while downloading, the rate they send to us; while seeding, the
//! rate they take from us), plus one *optimistic* unchoke, rotated every third round (30 s),
//! that gives a chance to a peer we have no reason to favour yet. New peers are three times as
//! likely to be picked for it, so they get their first pieces quickly.

use crate::messages::PeerKey;
use crate::rng::Rng;

/// Peers unchoked for their rate.
pub(crate) const REGULAR_SLOTS: usize = 4;
/// Rechoke rounds between two rotations of the optimistic unchoke (3 × 10 s).
pub(crate) const OPTIMISTIC_ROUNDS: u64 = 3;
/// How much more likely a new peer is to win the optimistic unchoke.
const NEW_PEER_WEIGHT: u64 = 3;

/// What the choker knows of one connected peer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    /// The connection.
    pub key: PeerKey,
    /// The peer told us it is interested in our pieces.
    pub interested: bool,
    /// Bytes per second that count for this peer (see the module comment).
    pub rate: f64,
    /// The peer connected recently and has not had a fair chance yet.
    pub is_new: bool,
}

/// Remembers the optimistic unchoke between rounds.
#[derive(Debug, Clone)]
pub(crate) struct Choker {
    optimistic: Option<PeerKey>,
    round: u64,
    rng: Rng,
}

impl Choker {
    /// A choker whose random choices follow `seed`.
    pub fn new(seed: u64) -> Choker {
        Choker {
            optimistic: None,
            round: 0,
            rng: Rng::seeded(seed),
        }
    }

    /// One rechoke round: returns the peers to unchoke; every other peer is to be choked.
    /// Only interested peers are unchoked (an uninterested peer asks for nothing).
    pub(crate) fn rechoke(&mut self, peers: &[Candidate]) -> Vec<PeerKey> {
        let mut interested: Vec<&Candidate> = peers.iter().filter(|c| c.interested).collect();
        interested.sort_by(|a, b| b.rate.total_cmp(&a.rate).then(a.key.cmp(&b.key)));
        let mut unchoke: Vec<PeerKey> = interested
            .iter()
            .take(REGULAR_SLOTS)
            .map(|c| c.key)
            .collect();

        let still_there = self
            .optimistic
            .filter(|k| interested.iter().any(|c| c.key == *k) && !unchoke.contains(k));
        let rotate = self.round % OPTIMISTIC_ROUNDS == 0 || still_there.is_none();
        self.round += 1;
        self.optimistic = if rotate {
            let rest: Vec<&Candidate> = interested
                .iter()
                .copied()
                .filter(|c| !unchoke.contains(&c.key))
                .collect();
            self.weighted_pick(&rest)
        } else {
            still_there
        };
        unchoke.extend(self.optimistic);
        unchoke
    }

    /// The current optimistic unchoke, if any.
    #[cfg(test)]
    pub(crate) fn optimistic(&self) -> Option<PeerKey> {
        self.optimistic
    }

    fn weighted_pick(&mut self, from: &[&Candidate]) -> Option<PeerKey> {
        let weight = |c: &Candidate| if c.is_new { NEW_PEER_WEIGHT } else { 1 };
        let total: u64 = from.iter().map(|c| weight(c)).sum();
        if total == 0 {
            return None;
        }
        let mut ticket = self.rng.below(total);
        for c in from {
            if ticket < weight(c) {
                return Some(c.key);
            }
            ticket -= weight(c);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(key: PeerKey, rate: f64, interested: bool, is_new: bool) -> Candidate {
        Candidate {
            key,
            interested,
            rate,
            is_new,
        }
    }

    #[test]
    fn best_four_by_rate_plus_one_optimistic() {
        let peers: Vec<Candidate> = (0..8)
            .map(|k| peer(k, k as f64 * 100.0, true, false))
            .collect();
        let mut choker = Choker::new(7);
        let chosen = choker.rechoke(&peers);
        assert_eq!(&chosen[..4], &[7, 6, 5, 4]);
        assert_eq!(chosen.len(), 5);
        assert!(chosen[4] < 4, "optimistic comes from the rest: {chosen:?}");
    }

    #[test]
    fn uninterested_peers_stay_choked() {
        let peers = vec![peer(1, 9e9, false, false), peer(2, 1.0, true, false)];
        let chosen = Choker::new(1).rechoke(&peers);
        assert_eq!(chosen, vec![2]);
    }

    #[test]
    fn optimistic_holds_for_three_rounds_then_rotates() {
        let mut peers: Vec<Candidate> = (0..4)
            .map(|k| peer(k, 1000.0 + k as f64, true, false))
            .collect();
        peers.extend((10..20).map(|k| peer(k, 0.0, true, false)));
        let mut choker = Choker::new(42);
        let first = choker.rechoke(&peers)[4];
        assert_eq!(choker.rechoke(&peers)[4], first);
        assert_eq!(choker.rechoke(&peers)[4], first);
        let mut rotated = false;
        for _ in 0..10 {
            let chosen = choker.rechoke(&peers);
            rotated |= chosen[4] != first;
            for _ in 0..2 {
                choker.rechoke(&peers);
            }
        }
        assert!(rotated, "the optimistic unchoke never moved");
    }

    #[test]
    fn optimistic_replaced_when_it_leaves() {
        let mut peers = vec![peer(1, 0.0, true, false)];
        let mut choker = Choker::new(3);
        assert_eq!(choker.rechoke(&peers), vec![1]);
        assert_eq!(choker.optimistic(), None, "peer 1 took a regular slot");
        peers = (1..7).map(|k| peer(k, k as f64, true, false)).collect();
        choker.rechoke(&peers);
        let opt = choker.optimistic().expect("an optimistic unchoke");
        peers.retain(|c| c.key != opt);
        choker.rechoke(&peers);
        assert_ne!(choker.optimistic(), Some(opt));
        assert!(choker.optimistic().is_some());
    }

    #[test]
    fn new_peers_are_favoured() {
        let mut peers: Vec<Candidate> = (0..4).map(|k| peer(k, 1e6, true, false)).collect();
        peers.push(peer(100, 0.0, true, true));
        peers.extend((200..203).map(|k| peer(k, 0.0, true, false)));
        let mut new_wins = 0;
        for seed in 1..=400 {
            if Choker::new(seed).rechoke(&peers)[4] == 100 {
                new_wins += 1;
            }
        }
        // Weight 3 against three peers of weight 1: expect about half of the rounds.
        assert!(
            (150..=250).contains(&new_wins),
            "new peer won {new_wins} of 400"
        );
    }
}
