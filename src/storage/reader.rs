//! Reading verified blocks back from disk, for uploading them to peers.
//!
//! Each peer's sender thread owns one [`BlockReader`] with its own read-only file handles, so
//! serving a block never involves the main thread or the writer: verified pieces never change,
//! so reading them with `pread` while the writer fills other pieces is safe. The reader shares
//! only the immutable [`Files`] description.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::layout::Layout;
use super::StorageError;
use crate::geometry::{BlockRef, Geometry};
use crate::metainfo::FileInfo;

/// Where a torrent's bytes live: immutable, shared by every reader.
#[derive(Debug)]
pub struct Files {
    geometry: Geometry,
    layout: Layout,
    paths: Vec<PathBuf>,
}

impl Files {
    /// The files of a torrent laid out under `root`.
    pub fn new(root: &std::path::Path, files: &[FileInfo], geometry: Geometry) -> Files {
        Files {
            geometry,
            layout: Layout::new(files),
            paths: files.iter().map(|f| root.join(&f.path)).collect(),
        }
    }
}

/// One thread's read-only view of the torrent's files; handles open on first use.
#[derive(Debug)]
pub struct BlockReader {
    files: Arc<Files>,
    handles: Vec<Option<File>>,
}

impl BlockReader {
    /// A reader with no file open yet.
    pub fn new(files: Arc<Files>) -> BlockReader {
        let handles = files.paths.iter().map(|_| None).collect();
        BlockReader { files, handles }
    }

    /// Appends the bytes of `block` to `out`. The caller has checked that the block lies
    /// inside a piece we have.
    pub fn read(&mut self, block: BlockRef, out: &mut Vec<u8>) -> Result<(), StorageError> {
        let start = self.files.geometry.piece_offset(block.piece) + u64::from(block.offset);
        let base = out.len();
        out.resize(base + block.len as usize, 0);
        for seg in self.files.layout.segments(start, u64::from(block.len)) {
            let path = &self.files.paths[seg.file];
            let file = match &mut self.handles[seg.file] {
                Some(f) => f,
                slot => slot.insert(File::open(path).map_err(|source| StorageError {
                    op: "open",
                    path: path.clone(),
                    source,
                })?),
            };
            let at = base + seg.buf_offset;
            file.read_exact_at(&mut out[at..at + seg.len as usize], seg.file_offset)
                .map_err(|source| StorageError {
                    op: "read",
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}
