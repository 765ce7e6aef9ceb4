//! The piece → file layout: which byte runs of which files make up a range of the torrent.
//!
//! Pure arithmetic over the file list. Built once from the metainfo and owned by the writer
//! thread (and by whoever reads pieces back, e.g. for resume checks); it does no I/O.

use std::ops::Range;

use crate::geometry::{Geometry, PieceIndex};
use crate::metainfo::FileInfo;

/// One contiguous run of bytes inside one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Index of the file in the metainfo's file list.
    pub file: usize,
    /// Where the run starts inside that file.
    pub file_offset: u64,
    /// Length of the run in bytes (never zero).
    pub len: u64,
    /// Where the run starts inside a buffer holding the whole requested range.
    pub buf_offset: usize,
}

/// The torrent's files laid end to end, in metainfo order.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Each file's byte range within the torrent, indexed like the file list.
    ranges: Vec<Range<u64>>,
}

impl Layout {
    /// The layout of `files`, laid end to end in order.
    ///
    /// The metainfo parser checks that the total length fits in `u64`; were it not to, the
    /// layout would saturate rather than wrap.
    pub fn new(files: &[FileInfo]) -> Layout {
        let mut start = 0u64;
        let ranges = files
            .iter()
            .map(|f| {
                let end = start.saturating_add(f.length);
                let r = start..end;
                start = end;
                r
            })
            .collect();
        Layout { ranges }
    }

    /// Total bytes of all files.
    pub fn total_len(&self) -> u64 {
        self.ranges.last().map_or(0, |r| r.end)
    }

    /// Number of files, zero-length ones included.
    #[cfg(test)]
    pub(crate) fn file_count(&self) -> usize {
        self.ranges.len()
    }

    /// The byte range of file `file` within the torrent (empty for a zero-length file).
    ///
    /// Panics if `file >= self.file_count()`.
    pub fn file_range(&self, file: usize) -> Range<u64> {
        self.ranges[file].clone()
    }

    /// The pieces that hold at least one byte of file `file`: empty for a zero-length file.
    ///
    /// Panics if `file >= self.file_count()`.
    pub fn file_pieces(&self, file: usize, geometry: &Geometry) -> Range<PieceIndex> {
        let r = &self.ranges[file];
        if r.is_empty() {
            return 0..0;
        }
        let piece_len = u64::from(geometry.piece_len());
        // Both quotients are below the piece count, a u32.
        let first = (r.start / piece_len) as PieceIndex;
        let last = ((r.end - 1) / piece_len) as PieceIndex;
        first..last + 1
    }

    /// The runs of the torrent's bytes `[torrent_offset, torrent_offset + len)` inside each
    /// file, in order; zero-length files never appear.
    ///
    /// Bytes past [`Layout::total_len`] are in no file and get no segment, so for a range
    /// inside the torrent the segment lengths sum to `len`, and less otherwise.
    pub(crate) fn segments(&self, torrent_offset: u64, len: u64) -> Vec<Segment> {
        let end = torrent_offset.saturating_add(len).min(self.total_len());
        if torrent_offset >= end {
            return Vec::new();
        }
        let first = self.ranges.partition_point(|r| r.end <= torrent_offset);
        self.ranges[first..]
            .iter()
            .enumerate()
            .take_while(|(_, r)| r.start < end)
            .filter(|(_, r)| !r.is_empty())
            .map(|(i, r)| {
                let start = r.start.max(torrent_offset);
                Segment {
                    file: first + i,
                    file_offset: start - r.start,
                    len: r.end.min(end) - start,
                    // The range is one piece held in memory, so its offsets fit usize.
                    buf_offset: (start - torrent_offset) as usize,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn layout(lengths: &[u64]) -> Layout {
        let files: Vec<FileInfo> = lengths
            .iter()
            .enumerate()
            .map(|(i, &length)| FileInfo::data(PathBuf::from(format!("f{i}")), length))
            .collect();
        Layout::new(&files)
    }

    fn seg(file: usize, file_offset: u64, len: u64, buf_offset: usize) -> Segment {
        Segment {
            file,
            file_offset,
            len,
            buf_offset,
        }
    }

    #[test]
    fn file_pieces_cover_every_byte_of_the_file() {
        // Pieces of 10 bytes; files of 25, 0, 5, 10 and 1 bytes.
        let l = layout(&[25, 0, 5, 10, 1]);
        let g = Geometry::new(l.total_len(), 10);
        let got: Vec<Range<PieceIndex>> = (0..5).map(|f| l.file_pieces(f, &g)).collect();
        assert_eq!(got, vec![0..3, 0..0, 2..3, 3..4, 4..5]);
        for f in 0..l.file_count() {
            let r = l.file_range(f);
            let pieces = l.file_pieces(f, &g);
            for pos in r.clone() {
                assert!(pieces.contains(&((pos / 10) as PieceIndex)));
            }
            // No piece outside the file's bytes.
            for p in pieces {
                let start = g.piece_offset(p);
                assert!(start < r.end && start + u64::from(g.piece_size(p)) > r.start);
            }
        }
    }

    /// Checks the segments of a range against a byte-by-byte reference and returns them.
    fn checked(l: &Layout, offset: u64, len: u64) -> Vec<Segment> {
        let segs = l.segments(offset, len);
        let mut expected_bytes = Vec::new();
        for pos in offset..offset + len {
            let file = (0..l.file_count())
                .find(|&f| l.file_range(f).contains(&pos))
                .expect("test range lies inside the torrent");
            expected_bytes.push((file, pos - l.file_range(file).start));
        }
        let mut got_bytes = Vec::new();
        let mut next_buf = 0usize;
        for s in &segs {
            assert!(s.len > 0, "zero-length segment {s:?}");
            assert_eq!(s.buf_offset, next_buf, "segments not contiguous: {segs:?}");
            next_buf += s.len as usize;
            got_bytes.extend((0..s.len).map(|k| (s.file, s.file_offset + k)));
        }
        assert_eq!(got_bytes, expected_bytes, "range {offset}+{len}");
        assert_eq!(segs.iter().map(|s| s.len).sum::<u64>(), len);
        segs
    }

    #[test]
    fn sizes_and_file_ranges() {
        let l = layout(&[0, 10, 0, 5, 0]);
        assert_eq!(l.total_len(), 15);
        assert_eq!(l.file_count(), 5);
        assert_eq!(l.file_range(0), 0..0);
        assert_eq!(l.file_range(1), 0..10);
        assert_eq!(l.file_range(2), 10..10);
        assert_eq!(l.file_range(3), 10..15);
        assert_eq!(l.file_range(4), 15..15);
        assert_eq!(layout(&[]).total_len(), 0);
    }

    #[test]
    fn empty_files_at_start_middle_and_end_never_appear() {
        let l = layout(&[0, 0, 10, 0, 5, 0]);
        assert_eq!(checked(&l, 0, 15), vec![seg(2, 0, 10, 0), seg(4, 0, 5, 10)]);
        assert_eq!(checked(&l, 10, 5), vec![seg(4, 0, 5, 0)]);
        assert_eq!(checked(&l, 9, 2), vec![seg(2, 9, 1, 0), seg(4, 0, 1, 1)]);
    }

    #[test]
    fn piece_spanning_many_small_files() {
        // Files smaller than a block, inside one 32 KiB piece.
        let l = layout(&[100, 1, 0, 16000, 300, 20000]);
        let segs = checked(&l, 0, 32768);
        assert_eq!(
            segs,
            vec![
                seg(0, 0, 100, 0),
                seg(1, 0, 1, 100),
                seg(3, 0, 16000, 101),
                seg(4, 0, 300, 16101),
                seg(5, 0, 16367, 16401),
            ]
        );
    }

    #[test]
    fn boundaries_inside_a_piece_and_short_last_piece() {
        // Three files, piece length 16, total 40: pieces 0..16, 16..32, 32..40 (short).
        let l = layout(&[10, 20, 10]);
        assert_eq!(checked(&l, 0, 16), vec![seg(0, 0, 10, 0), seg(1, 0, 6, 10)]);
        assert_eq!(
            checked(&l, 16, 16),
            vec![seg(1, 6, 14, 0), seg(2, 0, 2, 14)]
        );
        assert_eq!(checked(&l, 32, 8), vec![seg(2, 2, 8, 0)]);
    }

    #[test]
    fn ranges_exactly_on_file_boundaries() {
        let l = layout(&[8, 0, 8, 8]);
        assert_eq!(checked(&l, 8, 8), vec![seg(2, 0, 8, 0)]);
        assert_eq!(checked(&l, 0, 8), vec![seg(0, 0, 8, 0)]);
        assert_eq!(checked(&l, 16, 8), vec![seg(3, 0, 8, 0)]);
        assert_eq!(checked(&l, 8, 16), vec![seg(2, 0, 8, 0), seg(3, 0, 8, 8)]);
    }

    #[test]
    fn whole_torrent_and_single_file() {
        let l = layout(&[3, 0, 7, 11]);
        assert_eq!(
            checked(&l, 0, 21),
            vec![seg(0, 0, 3, 0), seg(2, 0, 7, 3), seg(3, 0, 11, 10)]
        );
        let one = layout(&[100]);
        assert_eq!(checked(&one, 37, 50), vec![seg(0, 37, 50, 0)]);
    }

    #[test]
    fn every_range_of_a_mixed_layout_matches_the_reference() {
        let l = layout(&[0, 3, 1, 0, 0, 5, 2, 0]);
        let total = l.total_len();
        for offset in 0..=total {
            for len in 0..=total - offset {
                checked(&l, offset, len);
            }
        }
    }

    #[test]
    fn empty_and_out_of_range_requests() {
        let l = layout(&[10, 10]);
        assert!(l.segments(5, 0).is_empty());
        assert!(l.segments(20, 4).is_empty());
        assert!(l.segments(u64::MAX, u64::MAX).is_empty());
        assert_eq!(l.segments(15, 10), vec![seg(1, 5, 5, 0)]);
        assert!(layout(&[0, 0]).segments(0, 1).is_empty());
    }
}
