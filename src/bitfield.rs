//! A fixed-length set of piece indices, stored as the wire protocol's big-endian bit string.
//!
//! Pure data: used by the main thread (which pieces we have, which each peer has), by the
//! picker and by the wire codec. No thread owns it; each owner keeps its own copy.

use crate::geometry::PieceIndex;

/// Why a bitfield received from a peer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BitfieldError {
    /// The byte length does not match the torrent's piece count.
    WrongLength { expected: usize, got: usize },
    /// Bits past the last piece are set; the spec says they must be zero.
    SpareBitsSet,
}

impl std::fmt::Display for BitfieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BitfieldError::WrongLength { expected, got } => {
                write!(f, "bitfield is {got} bytes, expected {expected}")
            }
            BitfieldError::SpareBitsSet => write!(f, "bitfield has spare bits set"),
        }
    }
}

impl std::error::Error for BitfieldError {}

/// A set of piece indices `0..len`, bit 7 of byte 0 being piece 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    ones: u32,
}

impl Bitfield {
    /// An empty set for a torrent of `len` pieces.
    pub fn new(len: u32) -> Bitfield {
        Bitfield {
            bytes: vec![0; len.div_ceil(8) as usize],
            len,
            ones: 0,
        }
    }

    /// A set holding every piece of a torrent of `len` pieces.
    pub fn full(len: u32) -> Bitfield {
        let mut b = Bitfield::new(len);
        for i in 0..len {
            b.set(i);
        }
        b
    }

    /// Checks a bitfield received from a peer: exact length and zero spare bits.
    pub(crate) fn from_wire(bytes: &[u8], len: u32) -> Result<Bitfield, BitfieldError> {
        let expected = len.div_ceil(8) as usize;
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                expected,
                got: bytes.len(),
            });
        }
        let spare = expected * 8 - len as usize;
        if spare > 0 && bytes[expected - 1] & ((1u8 << spare) - 1) != 0 {
            return Err(BitfieldError::SpareBitsSet);
        }
        let ones = bytes.iter().map(|b| b.count_ones()).sum();
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            len,
            ones,
        })
    }

    /// The bytes to send in a `bitfield` message.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of pieces the set ranges over.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True when the set ranges over no pieces at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of pieces in the set.
    pub fn count(&self) -> u32 {
        self.ones
    }

    /// True when every piece is in the set.
    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    /// Whether piece `i` is in the set; false for out-of-range indices.
    pub fn has(&self, i: PieceIndex) -> bool {
        i < self.len && self.bytes[i as usize / 8] & (0x80 >> (i % 8)) != 0
    }

    /// Adds piece `i`; returns false if it was already present or is out of range.
    pub fn set(&mut self, i: PieceIndex) -> bool {
        if i >= self.len || self.has(i) {
            return false;
        }
        self.bytes[i as usize / 8] |= 0x80 >> (i % 8);
        self.ones += 1;
        true
    }

    /// Removes piece `i`; returns false if it was absent or out of range.
    pub fn clear(&mut self, i: PieceIndex) -> bool {
        if !self.has(i) {
            return false;
        }
        self.bytes[i as usize / 8] &= !(0x80 >> (i % 8));
        self.ones -= 1;
        true
    }

    /// Indices of the pieces in the set, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        (0..self.len).filter(|&i| self.has(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_has_clear_and_count() {
        let mut b = Bitfield::new(10);
        assert!(b.set(0));
        assert!(b.set(9));
        assert!(!b.set(9));
        assert!(!b.set(10));
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert_eq!(b.count(), 2);
        assert!(b.clear(0));
        assert!(!b.has(0));
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![9]);
    }

    #[test]
    fn wire_checks_length_and_spare_bits() {
        assert_eq!(
            Bitfield::from_wire(&[0xff], 10),
            Err(BitfieldError::WrongLength {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            Bitfield::from_wire(&[0xff, 0xc1], 10),
            Err(BitfieldError::SpareBitsSet)
        );
        let b = Bitfield::from_wire(&[0xff, 0xc0], 10).unwrap();
        assert!(b.is_full());
        assert_eq!(Bitfield::full(10), b);
        assert!(Bitfield::from_wire(&[0xff], 8).unwrap().is_full());
    }
}
