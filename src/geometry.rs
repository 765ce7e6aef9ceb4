//! Piece and block arithmetic: how a torrent's bytes split into pieces and 16 KiB blocks.
//!
//! Pure data, shared by every thread that needs sizes. This is the one place that knows the
//! last piece and the last block of each piece may be shorter.

/// The block size every client requests: 16 KiB.
pub(crate) const BLOCK_LEN: u32 = 16 * 1024;

/// A piece's number within the torrent, from 0: the wire's `u32`, used for every piece index
/// in the program (bitfields, picker, piece store, messages).
pub(crate) type PieceIndex = u32;

/// One block of one piece: what a `request`, `piece` or `cancel` message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRef {
    /// Piece index.
    pub piece: u32,
    /// Byte offset inside the piece.
    pub offset: u32,
    /// Length in bytes (≤ [`BLOCK_LEN`]).
    pub len: u32,
}

/// The sizes of a torrent: total length and nominal piece length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    total_len: u64,
    piece_len: u32,
    piece_count: u32,
}

impl Geometry {
    /// The geometry of a torrent of `total_len` bytes cut into pieces of `piece_len` bytes.
    ///
    /// Callers (the metainfo parser) have checked that `piece_len > 0` and that the piece
    /// count fits in `u32`.
    pub fn new(total_len: u64, piece_len: u32) -> Geometry {
        let piece_count = total_len.div_ceil(u64::from(piece_len.max(1))) as u32;
        Geometry {
            total_len,
            piece_len,
            piece_count,
        }
    }

    /// Total bytes of the torrent.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// Nominal piece length (every piece but the last has exactly this size).
    pub fn piece_len(&self) -> u32 {
        self.piece_len
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Byte offset of piece `piece` from the start of the torrent.
    pub fn piece_offset(&self, piece: u32) -> u64 {
        u64::from(piece) * u64::from(self.piece_len)
    }

    /// Size of piece `piece`: the last one may be shorter. Zero for out-of-range indices.
    pub fn piece_size(&self, piece: u32) -> u32 {
        if piece >= self.piece_count {
            return 0;
        }
        let rest = self.total_len - self.piece_offset(piece);
        rest.min(u64::from(self.piece_len)) as u32
    }

    /// Number of blocks in piece `piece`.
    pub fn block_count(&self, piece: u32) -> u32 {
        self.piece_size(piece).div_ceil(BLOCK_LEN)
    }

    /// Block number `block` of piece `piece`; the last block of a piece may be shorter.
    pub fn block(&self, piece: u32, block: u32) -> BlockRef {
        let offset = block * BLOCK_LEN;
        let len = self.piece_size(piece).saturating_sub(offset).min(BLOCK_LEN);
        BlockRef { piece, offset, len }
    }

    /// Whether `b` names exactly one of this torrent's blocks (aligned, right length).
    pub(crate) fn is_valid_block(&self, b: BlockRef) -> bool {
        b.piece < self.piece_count
            && b.offset % BLOCK_LEN == 0
            && b.offset < self.piece_size(b.piece)
            && self.block(b.piece, b.offset / BLOCK_LEN) == b
    }

    /// Whether a request for `len` bytes at `offset` of `piece` lies inside the piece and is
    /// at most one block long (the checks a seeder makes on incoming requests).
    pub(crate) fn is_valid_request(&self, piece: u32, offset: u32, len: u32) -> bool {
        piece < self.piece_count
            && len > 0
            && len <= BLOCK_LEN
            && u64::from(offset) + u64::from(len) <= u64::from(self.piece_size(piece))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_last_piece_and_block() {
        let g = Geometry::new(2 * 32768 + 20000, 32768);
        assert_eq!(g.piece_count(), 3);
        assert_eq!(g.piece_size(0), 32768);
        assert_eq!(g.piece_size(2), 20000);
        assert_eq!(g.piece_size(3), 0);
        assert_eq!(g.block_count(2), 2);
        assert_eq!(
            g.block(2, 1),
            BlockRef {
                piece: 2,
                offset: BLOCK_LEN,
                len: 20000 - BLOCK_LEN
            }
        );
        assert!(g.is_valid_block(g.block(2, 1)));
        assert!(!g.is_valid_block(BlockRef {
            piece: 2,
            offset: BLOCK_LEN,
            len: BLOCK_LEN
        }));
    }

    #[test]
    fn tiny_torrent_and_exact_multiple() {
        let g = Geometry::new(5, 16384);
        assert_eq!(
            (g.piece_count(), g.piece_size(0), g.block_count(0)),
            (1, 5, 1)
        );
        let g = Geometry::new(65536, 32768);
        assert_eq!((g.piece_count(), g.piece_size(1)), (2, 32768));
        assert_eq!(Geometry::new(0, 16384).piece_count(), 0);
    }

    #[test]
    fn request_validation() {
        let g = Geometry::new(40000, 32768);
        assert!(g.is_valid_request(1, 0, 7232));
        assert!(!g.is_valid_request(1, 0, 7233));
        assert!(!g.is_valid_request(0, 0, BLOCK_LEN + 1));
        assert!(!g.is_valid_request(2, 0, 1));
        assert!(!g.is_valid_request(0, u32::MAX, 16));
    }
}
