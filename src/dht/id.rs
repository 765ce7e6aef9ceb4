//! Node ids and the XOR metric (BEP 5): 160-bit ids, distances, and node contact info.
//!
//! Pure values, used by every part of the DHT on the DHT thread.

use std::cmp::Ordering;
use std::fmt;
use std::net::SocketAddr;

use crate::rng::Rng;

/// A 160-bit DHT node id (or an info hash, which lives in the same space).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; 20]);

impl NodeId {
    /// A random id.
    pub fn random(rng: &mut Rng) -> NodeId {
        let mut id = [0u8; 20];
        rng.fill(&mut id);
        NodeId(id)
    }

    /// The XOR distance to `other`, as a big-endian 160-bit number.
    pub(crate) fn distance(&self, other: &NodeId) -> [u8; 20] {
        let mut d = [0u8; 20];
        for (i, byte) in d.iter_mut().enumerate() {
            *byte = self.0[i] ^ other.0[i];
        }
        d
    }

    /// How many leading bits `self` and `other` share (160 when equal).
    pub(crate) fn common_prefix(&self, other: &NodeId) -> usize {
        for (i, byte) in self.distance(other).iter().enumerate() {
            if *byte != 0 {
                return i * 8 + byte.leading_zeros() as usize;
            }
        }
        160
    }

    /// Whether `a` is closer to `self` than `b` is (by XOR).
    pub(crate) fn cmp_distance(&self, a: &NodeId, b: &NodeId) -> Ordering {
        self.distance(a).cmp(&self.distance(b))
    }

    /// A random id that shares exactly `prefix` leading bits with `self` (for `prefix < 160`):
    /// a target inside the routing-table bucket of that depth.
    pub(crate) fn random_at_depth(&self, prefix: usize, rng: &mut Rng) -> NodeId {
        let mut id = NodeId::random(rng).0;
        for bit in 0..=prefix.min(159) {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let ours = self.0[byte] & mask;
            let value = if bit == prefix { ours ^ mask } else { ours };
            id[byte] = (id[byte] & !mask) | value;
        }
        NodeId(id)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0[..4] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…")
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// A node's id and the UDP address it answers on (compact node info).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// The node's id.
    pub id: NodeId,
    /// Where it listens.
    pub addr: SocketAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_and_prefix() {
        let a = NodeId([0; 20]);
        let mut b = [0; 20];
        b[1] = 0x10;
        let b = NodeId(b);
        assert_eq!(a.common_prefix(&b), 11);
        assert_eq!(a.common_prefix(&a), 160);
        assert_eq!(a.distance(&b)[1], 0x10);
    }

    #[test]
    fn closer_by_xor() {
        let target = NodeId([0; 20]);
        let mut near = [0; 20];
        near[19] = 1;
        let mut far = [0; 20];
        far[0] = 1;
        assert_eq!(
            target.cmp_distance(&NodeId(near), &NodeId(far)),
            Ordering::Less
        );
    }

    #[test]
    fn random_at_depth_lands_in_that_bucket() {
        let mut rng = Rng::seeded(5);
        let ours = NodeId::random(&mut rng);
        for depth in [0, 1, 7, 8, 9, 63, 100, 159] {
            for _ in 0..20 {
                let id = ours.random_at_depth(depth, &mut rng);
                assert_eq!(ours.common_prefix(&id), depth, "depth {depth}");
            }
        }
    }
}
