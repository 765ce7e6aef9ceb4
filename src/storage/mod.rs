//! Pieces on disk: where each byte lives ([`FileMap`]), the piece→file layout (pure), the
//! writer thread, the readers that peer threads use to serve verified blocks, the check of
//! data already on disk, the fast-resume file, and widening a selective download ([`parts`]).
//!
//! [`FileMap`] is immutable once built and shared (behind an `Arc`) by every thread that
//! touches the files; each of those threads opens its own handles.

pub mod check;
pub mod layout;
pub mod padding;
pub mod parts;
pub mod reader;
pub mod resume;
pub mod writer;

use std::path::{Path, PathBuf};

use layout::Layout;

use crate::geometry::Geometry;
use crate::metainfo::{hex, FileInfo, Metainfo};

/// The folder, under the output folder, where strand keeps its own files for a torrent.
pub const STATE_DIR: &str = ".strand";

/// A file-system operation that failed, with the path it failed on.
#[derive(Debug)]
pub struct StorageError {
    /// What we were doing: "create", "open", "write", "read".
    pub op: &'static str,
    /// The file or folder concerned.
    pub path: PathBuf,
    /// The OS error.
    pub source: std::io::Error,
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.op,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for StorageError {}

impl StorageError {
    /// An error from `op` on `path`.
    pub fn new(op: &'static str, path: &Path, source: std::io::Error) -> StorageError {
        StorageError {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where one torrent file's bytes are kept: byte `x` of the file is at offset `base + x` of
/// `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The file on disk.
    pub path: PathBuf,
    /// Offset of the torrent file's first byte inside `path`.
    pub base: u64,
}

/// One contiguous run of a piece (or block) on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Index of the torrent file (and of its [`Placement`]).
    pub file: usize,
    /// Offset inside the placement's path.
    pub offset: u64,
    /// Length in bytes.
    pub len: usize,
    /// Where the run starts inside the piece's (or block's) buffer.
    pub buf_offset: usize,
}

/// Where every byte of a torrent lives on disk.
///
/// Pad files (BEP 47) and symlink entries live nowhere: they are never created, and the
/// runs of a range leave padding out, so whoever reads or hashes a piece treats those bytes
/// as zeros and the writer never writes them.
#[derive(Debug, Clone)]
pub struct FileMap {
    geometry: Geometry,
    layout: Layout,
    placements: Vec<Placement>,
    /// Per file: whether it exists on disk (false for padding and symlinks).
    on_disk: Vec<bool>,
}

impl FileMap {
    /// A map from explicit placements, one per file of `files`.
    pub fn new(geometry: Geometry, files: &[FileInfo], placements: Vec<Placement>) -> FileMap {
        FileMap {
            geometry,
            layout: Layout::new(files),
            placements,
            on_disk: files.iter().map(FileInfo::on_disk).collect(),
        }
    }

    /// Every file at `root` joined with its path, as a plain download lays them out.
    pub fn plain(root: &Path, meta: &Metainfo) -> FileMap {
        let placements = meta
            .files
            .iter()
            .map(|f| Placement {
                path: root.join(&f.path),
                base: 0,
            })
            .collect();
        FileMap::new(meta.geometry, &meta.files, placements)
    }

    /// Chosen files at their own paths; the bytes of files not chosen (which pieces that
    /// straddle a chosen file still bring) go to one sparse parts file under
    /// [`STATE_DIR`], at their offset in the torrent, as libtorrent does.
    pub fn selective(root: &Path, meta: &Metainfo, chosen: &[bool]) -> FileMap {
        let parts = parts_path(root, &meta.info_hash);
        let layout = Layout::new(&meta.files);
        let placements = meta
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if chosen.get(i).copied().unwrap_or(true) {
                    Placement {
                        path: root.join(&f.path),
                        base: 0,
                    }
                } else {
                    Placement {
                        path: parts.clone(),
                        base: layout.file_range(i).start,
                    }
                }
            })
            .collect();
        FileMap {
            geometry: meta.geometry,
            layout,
            placements,
            on_disk: meta.files.iter().map(FileInfo::on_disk).collect(),
        }
    }

    /// The torrent's sizes.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Where each file's bytes are kept, in torrent order.
    pub fn placements(&self) -> &[Placement] {
        &self.placements
    }

    /// Whether file `file` (an index into the file list) exists on disk; false for padding
    /// and symlinks, and for indices past the end.
    pub fn on_disk(&self, file: usize) -> bool {
        self.on_disk.get(file).copied().unwrap_or(false)
    }

    /// Whether any byte of the torrent is padding (whose bytes are zeros, on no disk).
    pub(crate) fn has_padding(&self) -> bool {
        self.on_disk.contains(&false)
    }

    /// The runs on disk of `len` bytes starting `offset` bytes into piece `piece`. Padding
    /// has no run: those bytes of the buffer are zeros.
    pub fn runs(&self, piece: u32, offset: u32, len: u32) -> Vec<Run> {
        let start = self.geometry.piece_offset(piece) + u64::from(offset);
        self.layout
            .segments(start, u64::from(len))
            .into_iter()
            .filter(|seg| self.on_disk(seg.file))
            .map(|seg| Run {
                file: seg.file,
                offset: self.placements[seg.file].base + seg.file_offset,
                len: seg.len as usize,
                buf_offset: seg.buf_offset,
            })
            .collect()
    }

    /// The distinct paths data is kept in, in first-use order (padding and symlinks have
    /// none). Linear in the number of files: the writer asks at every resume save, and a
    /// quadratic search over 2,000 paths cost a fifth of a second each time.
    pub fn paths(&self) -> Vec<&Path> {
        let mut seen = std::collections::HashSet::new();
        self.placements
            .iter()
            .enumerate()
            .filter(|&(i, p)| self.on_disk(i) && seen.insert(p.path.as_path()))
            .map(|(_, p)| p.path.as_path())
            .collect()
    }
}

/// `DIR/.strand/<infohash>.parts`: bytes of unchosen files that chosen pieces bring.
pub(crate) fn parts_path(root: &Path, info_hash: &[u8; 20]) -> PathBuf {
    root.join(STATE_DIR)
        .join(format!("{}.parts", hex(info_hash)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn meta(lengths: &[u64], piece_len: u32) -> Metainfo {
        let files: Vec<FileInfo> = lengths
            .iter()
            .enumerate()
            .map(|(i, &length)| FileInfo::data(PathBuf::from(format!("t/f{i}")), length))
            .collect();
        let total = lengths.iter().sum();
        let geometry = Geometry::new(total, piece_len);
        Metainfo::for_test(
            [7; 20],
            geometry,
            vec![[0; 20]; geometry.piece_count() as usize],
            files,
        )
    }

    #[test]
    fn selective_map_sends_unchosen_bytes_to_the_parts_file() {
        // Files of 10, 20 and 10 bytes; piece 16 bytes: piece 0 straddles f0 and f1.
        let m = meta(&[10, 20, 10], 16);
        let root = Path::new("/out");
        let map = FileMap::selective(root, &m, &[false, true, false]);
        let runs = map.runs(0, 0, 16);
        assert_eq!(runs.len(), 2);
        assert_eq!(
            map.placements()[runs[0].file].path,
            parts_path(root, &[7; 20])
        );
        assert_eq!(
            (runs[0].offset, runs[0].len, runs[0].buf_offset),
            (0, 10, 0)
        );
        assert_eq!(map.placements()[runs[1].file].path, root.join("t/f1"));
        assert_eq!(
            (runs[1].offset, runs[1].len, runs[1].buf_offset),
            (0, 6, 10)
        );
        // The last file's bytes sit at its torrent offset (30) inside the parts file.
        let last = map.runs(1, 14, 2);
        assert_eq!((last[0].file, last[0].offset), (2, 30));
        assert_eq!(map.paths().len(), 2);
    }

    #[test]
    fn plain_map_uses_each_files_own_path() {
        let m = meta(&[5, 0, 5], 4);
        let map = FileMap::plain(Path::new("/d"), &m);
        let runs = map.runs(1, 0, 4);
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert_eq!((runs[0].file, runs[0].offset, runs[0].len), (0, 4, 1));
        assert_eq!((runs[1].file, runs[1].offset, runs[1].len), (2, 0, 3));
        assert_eq!(map.paths().len(), 3);
    }

    /// Byte i of a fixture file made with seed k (as `testdata/make-content-fixtures.py`).
    fn fixture_bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| ((7 * i + seed as usize) % 251) as u8)
            .collect()
    }

    #[test]
    fn pad_files_live_nowhere_and_read_as_zeros() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/pad.torrent");
        let meta = Metainfo::load(&path).expect("fixture");
        let dir = std::env::temp_dir().join(format!("strand-pad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut torrent = fixture_bytes(40000, 1);
        torrent.extend(vec![0; 25536]);
        torrent.extend(fixture_bytes(5000, 2));
        torrent.extend(vec![0; 27768]);
        torrent.extend(fixture_bytes(100, 3));

        // Prepare and write every piece as the writer thread does: no `.pad` appears.
        let map = Arc::new(FileMap::plain(&dir, &meta));
        let prepared = writer::prepare(&map, &meta.files, &[true; 5], false).expect("prepare");
        let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded();
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let g = meta.geometry;
        let resume = writer::ResumeSetup {
            path: resume::path(&dir, &meta.info_hash),
            info_hash: meta.info_hash,
            have: crate::bitfield::Bitfield::new(g.piece_count()),
        };
        let thread =
            writer::spawn(Arc::clone(&map), prepared, resume, jobs_rx, events_tx).expect("spawn");
        for piece in 0..g.piece_count() {
            let start = g.piece_offset(piece) as usize;
            let mut data = torrent[start..start + g.piece_size(piece) as usize].to_vec();
            // Whatever a pad region holds in memory, nothing of it reaches the disk.
            if piece == 1 {
                data[20000..].fill(0xee);
            }
            let blocks = crate::blocks::PieceBlocks::from_bytes(&data);
            jobs_tx
                .send(crate::messages::WriteCommand { piece, blocks })
                .expect("writer runs");
        }
        drop(jobs_tx);
        thread.join().expect("writer ends");
        assert_eq!(events_rx.try_iter().count(), g.piece_count() as usize);
        assert!(!dir.join("padded/.pad").exists(), "a .pad folder was made");
        assert_eq!(
            std::fs::read(dir.join("padded/b.bin")).expect("b.bin"),
            fixture_bytes(5000, 2)
        );
        assert_eq!(map.paths().len(), 3);

        // `verify` hashes padding as zeros: every piece is good.
        let have = check::check(&map, &meta, 2, &mut |_, _| {}).expect("check");
        assert_eq!(have.count(), g.piece_count());

        // Serving: a block wholly in padding (piece 1's second) is zeros, read from nowhere.
        let mut reader = reader::BlockReader::new(Arc::clone(&map));
        let mut out = vec![1, 2, 3];
        let block = crate::geometry::BlockRef {
            piece: 1,
            offset: 16384,
            len: 16384,
        };
        reader.read(block, &mut out).expect("read");
        assert_eq!(&out[..3], [1, 2, 3]);
        assert!(out[3..].iter().all(|&b| b == 0));
        assert!(map.runs(1, 16384, 16384).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
