//! Where a torrent's padding (BEP 47 pad files) lies, piece by piece and block by block.
//!
//! Pure arithmetic over the file list, built once at start-up. The hasher thread owns a copy
//! (it zeroes padding before hashing, so whatever a buffer held there never matters) and the
//! main thread hands [`Padding::blocks`] to the picker once (so no peer is ever asked for a
//! block that lies wholly in padding).

use std::ops::Range;

use crate::blocks::PieceBlocks;
use crate::geometry::{BlockRef, Geometry};
use crate::metainfo::FileInfo;

/// The byte ranges of a torrent that are padding: merged, in order, never empty.
#[derive(Debug, Clone)]
pub struct Padding {
    geometry: Geometry,
    ranges: Vec<Range<u64>>,
}

impl Padding {
    /// The padding of a torrent with these files and sizes.
    pub fn new(geometry: Geometry, files: &[FileInfo]) -> Padding {
        let mut ranges: Vec<Range<u64>> = Vec::new();
        let mut start = 0u64;
        for f in files {
            let end = start.saturating_add(f.length);
            if f.is_padding() && end > start {
                match ranges.last_mut() {
                    Some(last) if last.end == start => last.end = end,
                    _ => ranges.push(start..end),
                }
            }
            start = end;
        }
        Padding { geometry, ranges }
    }

    /// Whether the torrent has no padding at all.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The parts of piece `piece` that are padding, as offsets inside the piece.
    pub(crate) fn in_piece(&self, piece: u32) -> Vec<Range<usize>> {
        let start = self.geometry.piece_offset(piece);
        let end = start + u64::from(self.geometry.piece_size(piece));
        let first = self.ranges.partition_point(|r| r.end <= start);
        self.ranges[first..]
            .iter()
            .take_while(|r| r.start < end)
            .map(|r| {
                // Both ends lie inside one piece, so they fit usize.
                (r.start.max(start) - start) as usize..(r.end.min(end) - start) as usize
            })
            .collect()
    }

    /// Sets the padding of piece `piece`, held in `blocks`, to zeros.
    pub(crate) fn zero(&self, piece: u32, blocks: &mut PieceBlocks) {
        for r in self.in_piece(piece) {
            blocks.zero(r);
        }
    }

    /// The blocks that lie wholly in padding, in order. A piece that is padding from end to
    /// end is left out: it holds no data anyone wants, and a piece with nothing to request
    /// could never complete.
    pub fn blocks(&self) -> Vec<BlockRef> {
        let g = self.geometry;
        let mut out = Vec::new();
        let mut last_piece = None;
        for r in &self.ranges {
            let first = (r.start / u64::from(g.piece_len())) as u32;
            let last = ((r.end - 1) / u64::from(g.piece_len())) as u32;
            for piece in first..=last {
                if last_piece == Some(piece) {
                    continue;
                }
                last_piece = Some(piece);
                let inside = self.in_piece(piece);
                let blocks: Vec<BlockRef> = (0..g.block_count(piece))
                    .map(|b| g.block(piece, b))
                    .filter(|b| {
                        let span = b.offset as usize..(b.offset + b.len) as usize;
                        inside
                            .iter()
                            .any(|p| p.start <= span.start && span.end <= p.end)
                    })
                    .collect();
                if blocks.len() < g.block_count(piece) as usize {
                    out.extend(blocks);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BLOCK_LEN;
    use crate::metainfo::FileKind;

    fn files(spec: &[(u64, bool)]) -> (Geometry, Vec<FileInfo>) {
        let files: Vec<FileInfo> = spec
            .iter()
            .enumerate()
            .map(|(i, &(length, pad))| FileInfo {
                path: format!("t/{i}").into(),
                length,
                kind: if pad {
                    FileKind::Padding
                } else {
                    FileKind::Data
                },
            })
            .collect();
        let total = spec.iter().map(|s| s.0).sum();
        (Geometry::new(total, 4 * BLOCK_LEN), files)
    }

    #[test]
    fn ranges_per_piece_and_blocks_wholly_in_padding() {
        // Piece 64 KiB = 4 blocks. File 0: 20000 bytes; pad to 65536; file 2: 100 bytes.
        let (g, f) = files(&[(20000, false), (45536, true), (100, false)]);
        let pad = Padding::new(g, &f);
        assert!(!pad.is_empty());
        assert_eq!(
            pad.in_piece(0),
            [Range {
                start: 20000,
                end: 65536
            }]
        );
        assert!(pad.in_piece(1).is_empty());
        let blocks = pad.blocks();
        assert_eq!(
            blocks.iter().map(|b| b.offset).collect::<Vec<_>>(),
            [2 * BLOCK_LEN, 3 * BLOCK_LEN]
        );
        let mut piece = PieceBlocks::from_bytes(&[9u8; 65536]);
        pad.zero(0, &mut piece);
        let data = piece.to_vec();
        assert!(data[..20000].iter().all(|&b| b == 9));
        assert!(data[20000..].iter().all(|&b| b == 0));
    }

    #[test]
    fn adjacent_pads_merge_and_all_padding_pieces_are_left_out() {
        // Two pads back to back cover piece 1 entirely; piece 2 has data again.
        let (g, f) = files(&[
            (65536, false),
            (30000, true),
            (35536, true),
            (10, false),
            (5, true),
        ]);
        let pad = Padding::new(g, &f);
        assert_eq!(
            pad.in_piece(1),
            [Range {
                start: 0,
                end: 65536
            }]
        );
        assert_eq!(pad.in_piece(2), [Range { start: 10, end: 15 }]);
        assert!(pad.blocks().is_empty(), "{:?}", pad.blocks());
        let (g, f) = files(&[(100, false)]);
        assert!(Padding::new(g, &f).is_empty());
    }
}
