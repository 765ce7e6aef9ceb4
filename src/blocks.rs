//! A piece held in memory as its 16 KiB blocks, each in the buffer it arrived in.
//!
//! Plain data that moves between threads, never shared: the main thread fills a
//! [`PieceBlocks`] as a piece's blocks arrive (each block is the `Vec` a peer's reading
//! thread or a web seed's thread read it into), the hasher thread hashes it block by block,
//! and the writer thread writes it with vectored writes, file run by file run. No byte is copied
//! on the way, and memory holds only the blocks that have arrived (not a whole piece per
//! piece started). A block that never arrives (it lies wholly in BEP 47 padding, so nobody
//! is asked for it) reads as zeros.

use std::io::IoSlice;
use std::ops::Range;

use sha1::{Digest, Sha1};

use crate::geometry::BLOCK_LEN;

/// Zeros standing in for a block that was never fetched.
static ZEROS: [u8; BLOCK_LEN as usize] = [0; BLOCK_LEN as usize];

/// One piece's blocks, by block index; see the module documentation.
#[derive(Debug)]
pub(crate) struct PieceBlocks {
    /// The piece's length in bytes.
    len: usize,
    /// Block `i` covers bytes `i * BLOCK_LEN ..` of the piece; `None` until it arrives.
    blocks: Vec<Option<Vec<u8>>>,
}

impl PieceBlocks {
    /// An empty piece of `len` bytes: no block has arrived.
    pub(crate) fn new(len: u32) -> PieceBlocks {
        let count = len.div_ceil(BLOCK_LEN) as usize;
        PieceBlocks {
            len: len as usize,
            blocks: std::iter::repeat_with(|| None).take(count).collect(),
        }
    }

    /// A piece whose blocks are cut from `bytes` (tests and fixtures).
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: &[u8]) -> PieceBlocks {
        let mut piece = PieceBlocks::new(bytes.len() as u32);
        for (i, chunk) in bytes.chunks(BLOCK_LEN as usize).enumerate() {
            piece.put(i as u32 * BLOCK_LEN, chunk.to_vec());
        }
        piece
    }

    /// Stores the block at `offset`, replacing any earlier copy. False, storing nothing,
    /// unless `offset` starts a block and `data` is exactly that block's length.
    pub(crate) fn put(&mut self, offset: u32, data: Vec<u8>) -> bool {
        let index = (offset / BLOCK_LEN) as usize;
        if offset % BLOCK_LEN != 0 || data.len() != self.block_len(index) {
            return false;
        }
        match self.blocks.get_mut(index) {
            Some(slot) => {
                *slot = Some(data);
                true
            }
            None => false,
        }
    }

    /// How many blocks the piece has.
    #[cfg(test)]
    pub(crate) fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// The piece's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Length of block `index` (the last one may be short); 0 past the end.
    fn block_len(&self, index: usize) -> usize {
        let start = index * BLOCK_LEN as usize;
        self.len.saturating_sub(start).min(BLOCK_LEN as usize)
    }

    /// Block `index`'s bytes, zeros if it never arrived.
    fn block(&self, index: usize) -> &[u8] {
        match &self.blocks[index] {
            Some(data) => data,
            None => &ZEROS[..self.block_len(index)],
        }
    }

    /// The parts of `range` (offsets inside a piece of `len` bytes, clamped to it) that each
    /// block holds, in order: the block's index and the offsets inside that block.
    fn spans(len: usize, range: Range<usize>) -> impl Iterator<Item = (usize, Range<usize>)> {
        let block = BLOCK_LEN as usize;
        let end = range.end.min(len);
        let first = range.start / block;
        // An empty (or reversed, or out-of-piece) range covers no block.
        let last = if range.start < end {
            end.div_ceil(block)
        } else {
            first
        };
        (first..last).map(move |index| {
            let start = index * block;
            (
                index,
                range.start.max(start) - start..end.min(start + block) - start,
            )
        })
    }

    /// Sets the bytes in `range` (offsets inside the piece) to zeros, in the blocks that hold
    /// them; absent blocks read as zeros already.
    pub(crate) fn zero(&mut self, range: Range<usize>) {
        for (index, part) in Self::spans(self.len, range) {
            if let Some(data) = &mut self.blocks[index] {
                data[part].fill(0);
            }
        }
    }

    /// The piece's SHA-1, hashed block by block.
    pub(crate) fn sha1(&self) -> [u8; 20] {
        let mut hasher = Sha1::new();
        for index in 0..self.blocks.len() {
            hasher.update(self.block(index));
        }
        hasher.finalize().into()
    }

    /// The SHA-1 of each block, in order.
    pub(crate) fn block_digests(&self) -> Vec<[u8; 20]> {
        (0..self.blocks.len())
            .map(|index| Sha1::digest(self.block(index)).into())
            .collect()
    }

    /// The bytes in `range` (offsets inside the piece, clamped to it) as slices of the
    /// blocks, in order, for vectored writes.
    pub(crate) fn slices(&self, range: Range<usize>) -> Vec<IoSlice<'_>> {
        Self::spans(self.len, range)
            .map(|(index, part)| IoSlice::new(&self.block(index)[part]))
            .collect()
    }

    /// The whole piece in one buffer (tests).
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        self.slices(0..self.len)
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut out = vec![0; len];
        Rng::seeded(seed).fill(&mut out);
        out
    }

    #[test]
    fn blocks_put_in_any_order_read_back_as_the_piece() {
        let data = bytes(3 * BLOCK_LEN as usize + 100, 1);
        let mut piece = PieceBlocks::new(data.len() as u32);
        assert_eq!(piece.block_count(), 4);
        for index in [3usize, 0, 2, 1] {
            let start = index * BLOCK_LEN as usize;
            let end = (start + BLOCK_LEN as usize).min(data.len());
            assert!(piece.put(start as u32, data[start..end].to_vec()));
        }
        assert_eq!(piece.to_vec(), data);
        assert_eq!(piece.sha1(), <[u8; 20]>::from(Sha1::digest(&data)));
    }

    #[test]
    fn a_block_of_the_wrong_place_or_length_is_refused() {
        let mut piece = PieceBlocks::new(2 * BLOCK_LEN + 10);
        assert!(
            !piece.put(1, vec![0; BLOCK_LEN as usize]),
            "not on a block boundary"
        );
        assert!(!piece.put(0, vec![0; 100]), "short block");
        assert!(
            !piece.put(2 * BLOCK_LEN, vec![0; BLOCK_LEN as usize]),
            "last block is 10 bytes"
        );
        assert!(!piece.put(3 * BLOCK_LEN, vec![0; 10]), "past the end");
        assert!(piece.put(2 * BLOCK_LEN, vec![7; 10]));
        assert_eq!(piece.to_vec()[2 * BLOCK_LEN as usize..], [7; 10]);
    }

    #[test]
    fn absent_blocks_and_zeroed_ranges_read_as_zeros() {
        let len = 3 * BLOCK_LEN as usize;
        let data = bytes(len, 2);
        let mut piece = PieceBlocks::new(len as u32);
        piece.put(0, data[..BLOCK_LEN as usize].to_vec());
        piece.put(2 * BLOCK_LEN, data[2 * BLOCK_LEN as usize..].to_vec());
        // Zero across the end of block 0, all of absent block 1 and into block 2.
        let zeroed = 1000..2 * BLOCK_LEN as usize + 500;
        piece.zero(zeroed.clone());
        let mut want = data.clone();
        want[zeroed].fill(0);
        assert_eq!(piece.to_vec(), want);
        assert_eq!(piece.sha1(), <[u8; 20]>::from(Sha1::digest(&want)));
        let digests = piece.block_digests();
        for (i, chunk) in want.chunks(BLOCK_LEN as usize).enumerate() {
            assert_eq!(
                digests[i],
                <[u8; 20]>::from(Sha1::digest(chunk)),
                "block {i}"
            );
        }
    }

    #[test]
    fn slices_cover_exactly_the_range_asked() {
        let data = bytes(4 * BLOCK_LEN as usize - 7, 3);
        let piece = PieceBlocks::from_bytes(&data);
        let mut rng = Rng::seeded(4);
        for _ in 0..200 {
            let a = rng.index(data.len() + 1);
            let b = rng.index(data.len() + 1);
            let range = a.min(b)..a.max(b);
            let got: Vec<u8> = piece
                .slices(range.clone())
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            assert_eq!(got, data[range.clone()], "{range:?}");
            assert!(piece.slices(range).iter().all(|s| !s.is_empty()));
        }
        assert_eq!(
            piece.slices(0..data.len() + 50).len(),
            4,
            "clamped to the piece"
        );
        for empty in [
            1000..1000,
            0..0,
            20_000..20_000,
            data.len() + 1..data.len() + 9,
        ] {
            assert!(piece.slices(empty.clone()).is_empty(), "{empty:?}");
        }
    }
}
