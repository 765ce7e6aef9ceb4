//! The parts file of a selective download (`DIR/.strand/<infohash>.parts`: bytes of files not
//! chosen that the pieces shared with chosen files bring), over its life:
//! - while the chosen files download, the writer keeps those bytes there (see [`FileMap`]);
//! - widening the selection ([`adopt`]) moves a newly chosen file's bytes to its own path;
//! - once every chosen file is complete, [`drop_parts`] removes the file. The pieces it held
//!   part of are then no longer whole on disk, so before it goes each chosen file's bytes of
//!   each such piece are hashed and recorded in `DIR/.strand/<infohash>.kept` ("verified,
//!   partial on disk"); [`confirmed`] and [`kept`] hash those bytes again later, so that a
//!   rerun, `verify` and `seed` count a chosen file complete from its own bytes, and never
//!   fetch such a piece again for it. A newly chosen file has no record: its shared pieces
//!   are fetched again;
//! - once every file is chosen and complete, [`forget`] removes what is left of both.
//!
//! Runs on the main thread, before a session starts and after it ends (no other thread
//! touches the files then).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use super::layout::Layout;
use super::{parts_path, resume, FileMap, StorageError, STATE_DIR};
use crate::bencode::{self, Value};
use crate::bitfield::Bitfield;
use crate::metainfo::{hex, Metainfo};

/// The format version of the `.kept` file written and accepted.
const KEPT_VERSION: i64 = 1;

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

/// One chosen file's bytes of a piece that is no longer whole on disk, as they were when the
/// piece had been verified: the SHA-1 of those bytes alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeptPart {
    piece: u32,
    file: usize,
    digest: [u8; 20],
}

/// `DIR/.strand/<infohash>.kept`.
fn kept_path(root: &Path, info_hash: &[u8; 20]) -> PathBuf {
    root.join(STATE_DIR)
        .join(format!("{}.kept", hex(info_hash)))
}

fn encode_kept(info_hash: &[u8; 20], parts: &[KeptPart]) -> Vec<u8> {
    let list = parts
        .iter()
        .map(|k| {
            Value::List(vec![
                Value::Int(i64::from(k.piece)),
                Value::Int(k.file as i64),
                Value::Bytes(&k.digest),
            ])
        })
        .collect();
    Value::Dict(vec![
        (b"info hash".as_slice(), Value::Bytes(info_hash)),
        (b"parts".as_slice(), Value::List(list)),
        (b"version".as_slice(), Value::Int(KEPT_VERSION)),
    ])
    .encode()
}

/// The records of `meta`'s `.kept` file under `root`; none when it is missing or unusable
/// (the pieces are then fetched again: nothing is trusted that cannot be read).
fn load_kept(root: &Path, meta: &Metainfo) -> Vec<KeptPart> {
    let Ok(bytes) = std::fs::read(kept_path(root, &meta.info_hash)) else {
        return Vec::new();
    };
    let Ok(top) = bencode::decode(&bytes) else {
        return Vec::new();
    };
    let ours = top.get(b"version").and_then(Value::as_int) == Some(KEPT_VERSION)
        && top.get(b"info hash").and_then(Value::as_bytes) == Some(meta.info_hash.as_slice());
    let list = top
        .get(b"parts")
        .and_then(Value::as_list)
        .unwrap_or_default();
    let record = |v: &Value| -> Option<KeptPart> {
        let [piece, file, digest] = v.as_list()? else {
            return None;
        };
        Some(KeptPart {
            piece: u32::try_from(piece.as_int()?).ok()?,
            file: usize::try_from(file.as_int()?).ok()?,
            digest: digest.as_bytes()?.try_into().ok()?,
        })
    };
    let pieces = meta.geometry.piece_count();
    list.iter()
        .filter(|_| ours)
        .filter_map(record)
        .filter(|k| k.piece < pieces && k.file < meta.files.len())
        .collect()
}

/// The SHA-1 of file `file`'s bytes of piece `piece`, read where `map` keeps them; `None`
/// when the piece has no byte of that file or they cannot all be read.
fn part_digest(map: &FileMap, piece: u32, file: usize) -> Option<[u8; 20]> {
    let size = map.geometry().piece_size(piece);
    let run = map
        .runs(piece, 0, size)
        .into_iter()
        .find(|r| r.file == file)?;
    let f = File::open(&map.placements()[file].path).ok()?;
    let mut buf = vec![0; run.len];
    f.read_exact_at(&mut buf, run.offset).ok()?;
    Some(Sha1::digest(&buf).into())
}

/// The (piece, file) pairs of the `.kept` records whose bytes, read where `map` keeps
/// them, still hash as recorded: that file's bytes of that piece are verified.
pub fn confirmed(root: &Path, meta: &Metainfo, map: &FileMap) -> HashSet<(u32, usize)> {
    load_kept(root, meta)
        .into_iter()
        .filter(|k| part_digest(map, k.piece, k.file) == Some(k.digest))
        .map(|k| (k.piece, k.file))
        .collect()
}

/// The pieces not in `on_disk` that are done for the `chosen` files all the same: each
/// chosen file's bytes of them are [`confirmed`].
pub fn kept(
    root: &Path,
    meta: &Metainfo,
    map: &FileMap,
    chosen: &[bool],
    on_disk: &Bitfield,
) -> Bitfield {
    let good = confirmed(root, meta, map);
    let mut kept = Bitfield::new(meta.geometry.piece_count());
    let candidates: HashSet<u32> = good.iter().map(|&(p, _)| p).collect();
    for piece in candidates.into_iter().filter(|&p| !on_disk.has(p)) {
        let size = meta.geometry.piece_size(piece);
        let files: Vec<usize> = map
            .runs(piece, 0, size)
            .iter()
            .map(|r| r.file)
            .filter(|&f| chosen.get(f).copied().unwrap_or(true))
            .collect();
        if !files.is_empty() && files.iter().all(|&f| good.contains(&(piece, f))) {
            kept.set(piece);
        }
    }
    kept
}

/// Once every chosen file of a selective download is complete: records each chosen file's
/// bytes of the pieces that share the parts file (see the module documentation), removes the
/// parts file, and saves the resume file without those pieces. `map` is the download's
/// (chosen files at their paths, the rest in the parts file) and `on_disk` its pieces.
/// Returns the pieces still whole on disk; `None` (nothing done) without a parts file.
///
/// A crash at any step loses nothing verified: before the removal the resume file still
/// holds the pieces whole; after it, it no longer matches the files, so the next start
/// hashes the data and finds those pieces through the `.kept` records.
pub fn drop_parts(
    root: &Path,
    meta: &Metainfo,
    map: &FileMap,
    on_disk: &Bitfield,
) -> Result<Option<Bitfield>, StorageError> {
    let parts = parts_path(root, &meta.info_hash);
    if !parts.exists() {
        return Ok(None);
    }
    let in_parts = |file: usize| map.on_disk(file) && map.placements()[file].path == parts;
    let mut records = load_kept(root, meta);
    let mut whole = on_disk.clone();
    for piece in on_disk.iter() {
        let runs = map.runs(piece, 0, meta.geometry.piece_size(piece));
        if !runs.iter().any(|r| in_parts(r.file)) {
            continue;
        }
        whole.clear(piece);
        for run in runs.iter().filter(|r| !in_parts(r.file)) {
            let path = &map.placements()[run.file].path;
            let digest = part_digest(map, piece, run.file).ok_or_else(|| {
                StorageError::new("read", path, std::io::Error::from(ErrorKind::UnexpectedEof))
            })?;
            records.retain(|k| (k.piece, k.file) != (piece, run.file));
            records.push(KeptPart {
                piece,
                file: run.file,
                digest,
            });
        }
    }
    let kept = kept_path(root, &meta.info_hash);
    resume::save(&kept, &encode_kept(&meta.info_hash, &records))?;
    std::fs::remove_file(&parts).map_err(|e| StorageError::new("remove", &parts, e))?;
    let stamps = resume::stamps(&map.paths());
    let bytes = resume::encode(&meta.info_hash, &whole, &stamps);
    resume::save(&resume::path(root, &meta.info_hash), &bytes)?;
    Ok(Some(whole))
}

/// Once every file of the torrent is chosen and complete, each at its own path: the parts
/// file and the `.kept` records have nothing left to say, and go (missing ones are fine).
pub fn forget(root: &Path, info_hash: &[u8; 20]) -> Result<(), StorageError> {
    for path in [parts_path(root, info_hash), kept_path(root, info_hash)] {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(StorageError::new("remove", &path, e));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Geometry;
    use crate::metainfo::FileInfo;

    /// Files of 10, 26 and 4 bytes over 16-byte pieces: f1 (the chosen one) shares piece 0
    /// with f0 and piece 2 with f2; piece 1 is f1's alone.
    fn meta() -> Metainfo {
        let files = [10, 26, 4]
            .iter()
            .enumerate()
            .map(|(i, &len)| FileInfo::data(PathBuf::from(format!("t/f{i}")), len))
            .collect();
        let g = Geometry::new(40, 16);
        Metainfo::for_test([9; 20], g, vec![[0; 20]; 3], files)
    }

    fn bits(n: u32, set: &[u32]) -> Bitfield {
        let mut b = Bitfield::new(n);
        for &i in set {
            b.set(i);
        }
        b
    }

    #[test]
    fn dropping_the_parts_file_keeps_the_chosen_files_pieces_by_their_own_bytes() {
        let root = std::env::temp_dir().join(format!("strand-parts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let m = meta();
        let chosen = [false, true, false];
        let map = FileMap::selective(&root, &m, &chosen);
        let torrent: Vec<u8> = (0..40).collect();
        std::fs::create_dir_all(root.join("t")).unwrap();
        std::fs::create_dir_all(root.join(STATE_DIR)).unwrap();
        std::fs::write(root.join("t/f1"), &torrent[10..36]).unwrap();
        let mut parts = torrent.clone();
        parts[10..36].fill(0);
        std::fs::write(parts_path(&root, &m.info_hash), &parts).unwrap();
        let on_disk = bits(3, &[0, 1, 2]);
        assert!(kept(&root, &m, &map, &chosen, &bits(3, &[])).count() == 0);

        let whole = drop_parts(&root, &m, &map, &on_disk)
            .unwrap()
            .expect("dropped");
        assert_eq!(whole, bits(3, &[1]));
        assert!(!parts_path(&root, &m.info_hash).exists());
        let saved = std::fs::read(resume::path(&root, &m.info_hash)).unwrap();
        let (have, stamps) = resume::decode(&saved, &m.info_hash, 3).unwrap();
        assert_eq!(have, whole);
        assert_eq!(
            stamps,
            resume::stamps(&map.paths()),
            "the resume file is trusted"
        );
        assert_eq!(drop_parts(&root, &m, &map, &whole).unwrap(), None, "once");

        // The same selection: pieces 0 and 2 are done; a wider one needs them again.
        assert_eq!(kept(&root, &m, &map, &chosen, &whole), bits(3, &[0, 2]));
        let wider = [true, true, false];
        let wide_map = FileMap::selective(&root, &m, &wider);
        assert_eq!(kept(&root, &m, &wide_map, &wider, &whole), bits(3, &[2]));
        let good = confirmed(&root, &m, &map);
        assert_eq!(good, HashSet::from([(0, 1), (2, 1)]));

        // A changed byte of f1 in piece 0 is found: that piece is no longer kept.
        let mut f1 = torrent[10..36].to_vec();
        f1[0] ^= 1;
        std::fs::write(root.join("t/f1"), &f1).unwrap();
        assert_eq!(kept(&root, &m, &map, &chosen, &whole), bits(3, &[2]));
        let _ = std::fs::remove_dir_all(&root);
    }
}
