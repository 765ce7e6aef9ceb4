//! What `download` checks on disk around a session: a user's own file in the way (refused
//! unless `--overwrite`), and the files and folders a failed start created (removed again,
//! so that a download that got nothing leaves nothing behind).
//!
//! Runs on the main thread, before and after the session.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use strand::bitfield::Bitfield;
use strand::metainfo::Metainfo;
use strand::storage::resume;
use strand::storage::FileMap;

use super::errors::Failure;

/// Refuses to start when the torrent's files would replace a user's own: no resume file, no
/// piece of the data verifies, and a file in the way holds something other than zeros.
pub(crate) fn refuse_foreign(
    output_dir: &Path,
    meta: &Metainfo,
    map: &FileMap,
    have: &Bitfield,
) -> Result<(), Failure> {
    if have.count() > 0 || resume::path(output_dir, &meta.info_hash).exists() {
        return Ok(());
    }
    for placement in map.placements() {
        if placement.base == 0 && holds_data(&placement.path) {
            return Err(Failure::error(format!(
                "{} holds none of the torrent's data; give --overwrite to replace it, or \
                 choose another folder with -o",
                placement.path.display()
            )));
        }
    }
    Ok(())
}

/// Whether `path` is a file with a byte other than zero in it (a sparse or zero-filled file
/// is what an earlier start of strand leaves).
fn holds_data(path: &Path) -> bool {
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) if buf[..n].iter().any(|&b| b != 0) => return true,
            Ok(_) => {}
        }
    }
}

/// The files and folders a session is about to create, recorded before it starts.
pub(crate) struct Created {
    resume: PathBuf,
    info_hash: [u8; 20],
    pieces: u32,
    paths: Vec<PathBuf>,
    /// Folders, deepest first.
    dirs: Vec<PathBuf>,
}

impl Created {
    /// Records which of `map`'s files, their folders under `output_dir` and strand's state
    /// folder do not exist yet.
    pub(crate) fn before(output_dir: &Path, meta: &Metainfo, map: &FileMap) -> Created {
        let paths: Vec<PathBuf> = map
            .paths()
            .into_iter()
            .filter(|p| p.symlink_metadata().is_err())
            .map(Path::to_path_buf)
            .collect();
        let mut dirs: Vec<PathBuf> = Vec::new();
        // Folders already looked at (and so their ancestors too): each is asked about once,
        // not once per file in it.
        let mut seen: HashSet<&Path> = HashSet::new();
        for p in &paths {
            for dir in p.ancestors().skip(1) {
                if dir == output_dir || !dir.starts_with(output_dir) || !seen.insert(dir) {
                    break;
                }
                if dir.exists() {
                    break;
                }
                dirs.push(dir.to_path_buf());
            }
        }
        let state = output_dir.join(strand::storage::STATE_DIR);
        if !state.exists() && !dirs.contains(&state) {
            dirs.push(state);
        }
        if !output_dir.exists() {
            dirs.push(output_dir.to_path_buf());
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        Created {
            resume: resume::path(output_dir, &meta.info_hash),
            info_hash: meta.info_hash,
            pieces: meta.geometry.piece_count(),
            paths,
            dirs,
        }
    }

    /// After a session that ended with no piece on disk: removes what it created (its
    /// resume file included), keeping any folder that holds something else.
    pub(crate) fn remove_if_empty(&self) {
        let saved = std::fs::read(&self.resume)
            .ok()
            .and_then(|b| resume::decode(&b, &self.info_hash, self.pieces).ok());
        if saved.is_some_and(|(have, _)| have.count() > 0) {
            return;
        }
        if self.dirs.iter().any(|d| self.resume.starts_with(d)) {
            let _ = std::fs::remove_file(&self.resume);
        }
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}
