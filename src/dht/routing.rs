//! The routing table (BEP 5): buckets of at most [`K`] nodes by XOR distance from our id,
//! splitting the bucket that holds our id when it overflows; good, questionable and bad
//! nodes; refresh targets for buckets that have been quiet for [`GOOD_FOR`].
//!
//! Pure: the DHT thread owns one table and passes the time in. At most 160 × [`K`] nodes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dht::id::{NodeId, NodeInfo};
use crate::rng::Rng;

/// Nodes per bucket, and how many closest nodes a lookup converges on.
pub const K: usize = 8;
/// A node that answered within this long (or answered once and queried us within this long)
/// is good; a bucket unchanged for this long is refreshed.
pub(crate) const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// Unanswered queries in a row after which a node is bad.
pub(crate) const MAX_FAILS: u32 = 2;

/// A node's standing in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Answered recently.
    Good,
    /// Quiet for [`GOOD_FOR`], or never answered: ping before trusting it.
    Questionable,
    /// Failed [`MAX_FAILS`] queries in a row: replaced by the next node that fits.
    Bad,
}

#[derive(Debug, Clone)]
struct Entry {
    info: NodeInfo,
    last_reply: Option<Instant>,
    last_query: Option<Instant>,
    fails: u32,
}

impl Entry {
    /// A node that has just answered us.
    fn answered(info: NodeInfo, now: Instant) -> Entry {
        Entry {
            info,
            last_reply: Some(now),
            last_query: None,
            fails: 0,
        }
    }

    fn status(&self, now: Instant) -> Status {
        if self.fails >= MAX_FAILS {
            return Status::Bad;
        }
        let recent =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < GOOD_FOR);
        if recent(self.last_reply) || (self.last_reply.is_some() && recent(self.last_query)) {
            Status::Good
        } else {
            Status::Questionable
        }
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    entries: Vec<Entry>,
    last_changed: Instant,
}

/// What [`RoutingTable::heard_from`] advises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Advice {
    /// Nothing to do.
    Nothing,
    /// Ping this node: a questionable one in the way of a newcomer, or a newcomer that has
    /// only queried us (it joins once it answers).
    Ping(NodeInfo),
}

/// The routing table.
#[derive(Debug, Clone)]
pub(crate) struct RoutingTable {
    own: NodeId,
    /// Bucket `i` holds nodes sharing exactly `i` leading bits with `own`; the last one holds
    /// every node sharing at least its index (it contains our id and is the one that splits).
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    /// An empty table around our id.
    pub fn new(own: NodeId, now: Instant) -> RoutingTable {
        RoutingTable {
            own,
            buckets: vec![Bucket {
                entries: Vec::new(),
                last_changed: now,
            }],
        }
    }

    fn index(&self, id: &NodeId) -> usize {
        self.own.common_prefix(id).min(self.buckets.len() - 1)
    }

    fn find_mut(&mut self, addr: &SocketAddr) -> Option<&mut Entry> {
        self.buckets
            .iter_mut()
            .flat_map(|b| b.entries.iter_mut())
            .find(|e| e.info.addr == *addr)
    }

    /// Records a message from `node`: a reply to our query (`replied`) or a query of its own.
    /// A node that replied joins the table if its bucket has room (splitting ours if need
    /// be) or holds a bad node; a node that only queried us is worth a ping first.
    pub(crate) fn heard_from(&mut self, node: NodeInfo, replied: bool, now: Instant) -> Advice {
        if node.id == self.own {
            return Advice::Nothing;
        }
        if let Some(entry) = self.find_mut(&node.addr) {
            if entry.info.id == node.id {
                if replied {
                    entry.last_reply = Some(now);
                    entry.fails = 0;
                } else {
                    entry.last_query = Some(now);
                }
                let i = self.index(&node.id);
                if replied {
                    self.buckets[i].last_changed = now;
                }
                return Advice::Nothing;
            }
            // The address now answers with another id: forget the old one.
            self.remove(&node.addr);
        }
        if !replied {
            return Advice::Ping(node);
        }
        loop {
            let i = self.index(&node.id);
            let last = self.buckets.len() - 1;
            let bucket = &mut self.buckets[i];
            if bucket.entries.len() < K {
                bucket.entries.push(Entry::answered(node, now));
                bucket.last_changed = now;
                return Advice::Nothing;
            }
            if i == last && last < 159 {
                self.split();
                continue;
            }
            if let Some(bad) = bucket
                .entries
                .iter()
                .position(|e| e.status(now) == Status::Bad)
            {
                bucket.entries[bad] = Entry::answered(node, now);
                bucket.last_changed = now;
                return Advice::Nothing;
            }
            return match bucket
                .entries
                .iter()
                .find(|e| e.status(now) == Status::Questionable)
            {
                Some(q) => Advice::Ping(q.info),
                None => Advice::Nothing,
            };
        }
    }

    /// Splits the last bucket (the one holding our id) in two.
    fn split(&mut self) {
        let depth = self.buckets.len() - 1;
        let own = self.own;
        let last = &mut self.buckets[depth];
        let (near, far): (Vec<Entry>, Vec<Entry>) = last
            .entries
            .drain(..)
            .partition(|e| own.common_prefix(&e.info.id) > depth);
        last.entries = far;
        let last_changed = last.last_changed;
        self.buckets.push(Bucket {
            entries: near,
            last_changed,
        });
    }

    /// A query to the node at `addr` went unanswered.
    pub fn failed(&mut self, addr: &SocketAddr) {
        if let Some(entry) = self.find_mut(addr) {
            entry.fails += 1;
        }
    }

    /// Removes the node at `addr`.
    pub fn remove(&mut self, addr: &SocketAddr) {
        for bucket in &mut self.buckets {
            bucket.entries.retain(|e| e.info.addr != *addr);
        }
    }

    /// Up to `n` nodes that are not bad, closest to `target` first, of the families asked.
    pub(crate) fn closest(
        &self,
        target: &NodeId,
        n: usize,
        v4: bool,
        v6: bool,
        now: Instant,
    ) -> Vec<NodeInfo> {
        let mut all: Vec<NodeInfo> = self
            .buckets
            .iter()
            .flat_map(|b| b.entries.iter())
            .filter(|e| e.status(now) != Status::Bad)
            .filter(|e| if e.info.addr.is_ipv4() { v4 } else { v6 })
            .map(|e| e.info)
            .collect();
        all.sort_by(|a, b| target.cmp_distance(&a.id, &b.id));
        all.truncate(n);
        all
    }

    /// How many nodes the table holds.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.entries.len()).sum()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The good nodes (what is saved for the next start).
    pub(crate) fn good_nodes(&self, now: Instant) -> Vec<NodeInfo> {
        self.buckets
            .iter()
            .flat_map(|b| b.entries.iter())
            .filter(|e| e.status(now) == Status::Good)
            .map(|e| e.info)
            .collect()
    }

    /// Questionable nodes to ping, at most `n`.
    pub(crate) fn questionable(&self, now: Instant, n: usize) -> Vec<NodeInfo> {
        self.buckets
            .iter()
            .flat_map(|b| b.entries.iter())
            .filter(|e| e.status(now) == Status::Questionable)
            .map(|e| e.info)
            .take(n)
            .collect()
    }

    /// Random targets inside the buckets unchanged for [`GOOD_FOR`]; each such bucket counts
    /// as refreshed from now on.
    pub(crate) fn stale_targets(&mut self, now: Instant, rng: &mut Rng) -> Vec<NodeId> {
        let own = self.own;
        let last = self.buckets.len() - 1;
        let mut targets = Vec::new();
        for (i, bucket) in self.buckets.iter_mut().enumerate() {
            if now.saturating_duration_since(bucket.last_changed) >= GOOD_FOR {
                bucket.last_changed = now;
                let target = if i == last {
                    // Anywhere in the last bucket: our prefix of length `i`, the rest random.
                    let mut t = own.random_at_depth(i, rng);
                    let (byte, mask) = (i / 8, 0x80u8 >> (i % 8));
                    if rng.below(2) == 0 {
                        t.0[byte] ^= mask;
                    }
                    t
                } else {
                    own.random_at_depth(i, rng)
                };
                targets.push(target);
            }
        }
        targets
    }

    /// The status of the node at `addr`, if it is in the table.
    #[cfg(test)]
    pub fn status(&self, addr: &SocketAddr, now: Instant) -> Option<Status> {
        self.buckets
            .iter()
            .flat_map(|b| b.entries.iter())
            .find(|e| e.info.addr == *addr)
            .map(|e| e.status(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(rng: &mut Rng, n: u32) -> NodeInfo {
        NodeInfo {
            id: NodeId::random(rng),
            addr: SocketAddr::from(([10, (n >> 16) as u8, (n >> 8) as u8, n as u8], 6881)),
        }
    }

    /// A table with a random own id, seeded by `seed`, that has heard from `count` nodes
    /// answering queries.
    fn filled_table(seed: u64, count: u32) -> (Rng, Instant, RoutingTable) {
        let mut rng = Rng::seeded(seed);
        let now = Instant::now();
        let mut table = RoutingTable::new(NodeId::random(&mut rng), now);
        for n in 0..count {
            table.heard_from(node(&mut rng, n), true, now);
        }
        (rng, now, table)
    }

    #[test]
    fn fills_splits_and_stays_bounded() {
        let (_, _, table) = filled_table(1, 5000);
        assert!(table.buckets.len() > 5);
        assert!(table.len() <= 160 * K);
        for (i, b) in table.buckets.iter().enumerate() {
            assert!(b.entries.len() <= K);
            for e in &b.entries {
                let prefix = table.own.common_prefix(&e.info.id);
                if i + 1 < table.buckets.len() {
                    assert_eq!(prefix, i);
                } else {
                    assert!(prefix >= i);
                }
            }
        }
        // The far buckets are full; the one holding our id has room only near it.
        assert_eq!(table.buckets[0].entries.len(), K);
    }

    #[test]
    fn queriers_are_pinged_before_they_join() {
        let (mut rng, now, mut table) = filled_table(2, 0);
        let n = node(&mut rng, 1);
        assert_eq!(table.heard_from(n, false, now), Advice::Ping(n));
        assert!(table.is_empty());
        table.heard_from(n, true, now);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn good_questionable_bad_and_replacement() {
        let mut rng = Rng::seeded(3);
        let t0 = Instant::now();
        let own = NodeId([0; 20]);
        let mut table = RoutingTable::new(own, t0);
        // Eight nodes in bucket 0 (first bit set), and we are at depth 160 for no split:
        // fill the far half so that it cannot split.
        let far = |rng: &mut Rng, n| {
            let mut info = node(rng, n);
            info.id.0[0] |= 0x80;
            info
        };
        let first: Vec<NodeInfo> = (0..K as u32).map(|n| far(&mut rng, n)).collect();
        for n in &first {
            table.heard_from(*n, true, t0);
        }
        // A node near us splits the table, so bucket 0 is now fixed.
        let mut near = node(&mut rng, 100);
        near.id.0[0] = 0;
        table.heard_from(near, true, t0);
        assert_eq!(table.status(&first[0].addr, t0), Some(Status::Good));
        let later = t0 + GOOD_FOR;
        assert_eq!(
            table.status(&first[0].addr, later),
            Some(Status::Questionable)
        );
        let newcomer = far(&mut rng, 200);
        assert!(matches!(
            table.heard_from(newcomer, true, later),
            Advice::Ping(_)
        ));
        assert_eq!(table.status(&newcomer.addr, later), None);
        table.failed(&first[3].addr);
        table.failed(&first[3].addr);
        assert_eq!(table.status(&first[3].addr, later), Some(Status::Bad));
        assert_eq!(table.heard_from(newcomer, true, later), Advice::Nothing);
        assert_eq!(table.status(&newcomer.addr, later), Some(Status::Good));
        assert_eq!(table.status(&first[3].addr, later), None);
    }

    #[test]
    fn closest_is_sorted_and_skips_bad() {
        let (mut rng, now, mut table) = filled_table(4, 0);
        let nodes: Vec<NodeInfo> = (0..40).map(|n| node(&mut rng, n)).collect();
        for n in &nodes {
            table.heard_from(*n, true, now);
        }
        let target = NodeId::random(&mut rng);
        let got = table.closest(&target, K, true, true, now);
        assert_eq!(got.len(), K);
        for pair in got.windows(2) {
            assert!(target.distance(&pair[0].id) < target.distance(&pair[1].id));
        }
        table.failed(&got[0].addr);
        table.failed(&got[0].addr);
        assert!(!table.closest(&target, K, true, true, now).contains(&got[0]));
        assert!(table.closest(&target, K, false, true, now).is_empty());
    }

    #[test]
    fn quiet_buckets_get_refresh_targets_once() {
        let (mut rng, t0, mut table) = filled_table(6, 100);
        assert!(table.stale_targets(t0, &mut rng).is_empty());
        let later = t0 + GOOD_FOR;
        let targets = table.stale_targets(later, &mut rng);
        assert_eq!(targets.len(), table.buckets.len());
        for (i, t) in targets.iter().enumerate().take(table.buckets.len() - 1) {
            assert_eq!(table.own.common_prefix(t), i);
        }
        assert!(table.stale_targets(later, &mut rng).is_empty());
    }

    #[test]
    fn an_address_with_a_new_id_replaces_the_old_entry() {
        let (mut rng, now, mut table) = filled_table(7, 0);
        let a = node(&mut rng, 1);
        table.heard_from(a, true, now);
        let b = NodeInfo {
            id: NodeId::random(&mut rng),
            addr: a.addr,
        };
        table.heard_from(b, true, now);
        assert_eq!(table.len(), 1);
        assert_eq!(table.good_nodes(now), vec![b]);
    }
}
