//! Widening a selective download: bytes of a file that was not chosen, kept in the parts file
//! because a chosen piece brought them, move to the file's own path once the file is chosen.
//!
//! Runs on the main thread before a session starts (no other thread touches the files yet).

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::layout::Layout;
use super::{parts_path, StorageError};
use crate::metainfo::Metainfo;

/// Bytes copied at a time; runs of zeros this long stay holes in the new file.
const CHUNK: usize = 64 * 1024;

/// For each chosen file that is not at its own path under `root` but has bytes in the parts
/// file, creates the file from those bytes (holes where the parts file has zeros), so that
/// the pieces it shares with files chosen before verify again instead of being fetched.
/// Returns the number of files created.
pub fn adopt(root: &Path, meta: &Metainfo, chosen: &[bool]) -> Result<usize, StorageError> {
    let parts = parts_path(root, &meta.info_hash);
    let parts_file = match File::open(&parts) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(StorageError::new("open", &parts, e)),
    };
    let parts_len = parts_file
        .metadata()
        .map_err(|e| StorageError::new("read", &parts, e))?
        .len();
    let layout = Layout::new(&meta.files);
    let mut adopted = 0;
    for (i, f) in meta.files.iter().enumerate() {
        let range = layout.file_range(i);
        let path = root.join(&f.path);
        if !chosen.get(i).copied().unwrap_or(true)
            || range.start >= parts_len
            || path.symlink_metadata().is_ok()
        {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::new("create folder", dir, e))?;
        }
        let out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StorageError::new("create", &path, e))?;
        let mut buf = vec![0; CHUNK];
        let mut at = range.start;
        while at < range.end.min(parts_len) {
            let len = (range.end.min(parts_len) - at).min(CHUNK as u64) as usize;
            parts_file
                .read_exact_at(&mut buf[..len], at)
                .map_err(|e| StorageError::new("read", &parts, e))?;
            if buf[..len].iter().any(|&b| b != 0) {
                out.write_all_at(&buf[..len], at - range.start)
                    .map_err(|e| StorageError::new("write", &path, e))?;
            }
            at += len as u64;
        }
        out.set_len(f.length)
            .map_err(|e| StorageError::new("write", &path, e))?;
        adopted += 1;
    }
    Ok(adopted)
}
