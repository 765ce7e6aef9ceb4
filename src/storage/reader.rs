//! Reading verified blocks back from disk, for uploading them to peers.
//!
//! Each peer's sender thread owns one [`BlockReader`] with its own read-only file handles, so
//! serving a block never involves the main thread or the writer: verified pieces never change,
//! so reading them with `pread` while the writer fills other pieces is safe. The reader shares
//! only the immutable [`FileMap`].

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::{FileMap, StorageError};
use crate::geometry::BlockRef;

/// One thread's read-only view of the torrent's files; handles open on first use.
#[derive(Debug)]
pub(crate) struct BlockReader {
    map: Arc<FileMap>,
    handles: Vec<Option<File>>,
}

impl BlockReader {
    /// A reader with no file open yet.
    pub fn new(map: Arc<FileMap>) -> BlockReader {
        let handles = map.placements().iter().map(|_| None).collect();
        BlockReader { map, handles }
    }

    /// Appends the bytes of `block` to `out`. The caller has checked that the block lies
    /// inside a piece we have.
    pub fn read(&mut self, block: BlockRef, out: &mut Vec<u8>) -> Result<(), StorageError> {
        let base = out.len();
        out.resize(base + block.len as usize, 0);
        for run in self.map.runs(block.piece, block.offset, block.len) {
            let path = &self.map.placements()[run.file].path;
            let file = match &mut self.handles[run.file] {
                Some(f) => f,
                slot => {
                    slot.insert(File::open(path).map_err(|e| StorageError::new("open", path, e))?)
                }
            };
            let at = base + run.buf_offset;
            file.read_exact_at(&mut out[at..at + run.len], run.offset)
                .map_err(|e| StorageError::new("read", path, e))?;
        }
        Ok(())
    }
}
