//! Fast resume: which pieces are verified on disk, kept in `DIR/.strand/<infohash>.resume`.
//!
//! The writer thread saves it (it is the only thread that knows what is on disk): every
//! [`SAVE_INTERVAL`] while pieces arrive, after a failed write and on exit, each time after
//! flushing the data it names to disk, atomically (temp file, fsync, rename). Once more after
//! the writer has ended, the main thread saves it when a finished selective download drops
//! its parts file ([`super::parts::drop_parts`]). The command line
//! reads it once at start ([`startup`]), before the session begins, and trusts it only when
//! every data file still has the size and modification time recorded beside the pieces;
//! otherwise the data is hashed again. A half-written piece is therefore never trusted: it was
//! not in the file when the file was saved, or the data changed after the save and everything
//! is re-checked.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use super::{check, FileMap, StorageError, STATE_DIR};
use crate::bencode::{self, Value};
use crate::bitfield::Bitfield;
use crate::metainfo::{hex, Metainfo};

/// How often the writer saves the resume file while pieces arrive.
pub(crate) const SAVE_INTERVAL: Duration = Duration::from_secs(5);
/// The format version written and accepted.
const VERSION: i64 = 1;

/// The size and modification time of a data file when the resume file was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Length in bytes.
    pub len: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

/// `DIR/.strand/<infohash>.resume`.
pub fn path(root: &Path, info_hash: &[u8; 20]) -> PathBuf {
    root.join(STATE_DIR)
        .join(format!("{}.resume", hex(info_hash)))
}

/// The stamp of each path; `None` for a path that does not exist.
pub fn stamps(paths: &[&Path]) -> Vec<Option<Stamp>> {
    paths
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok()?;
            let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
            Some(Stamp {
                len: meta.len(),
                mtime_ns: i64::try_from(mtime.as_nanos()).ok()?,
            })
        })
        .collect()
}

/// The resume file's bytes: a bencoded dict with sorted keys.
pub fn encode(info_hash: &[u8; 20], have: &Bitfield, stamps: &[Option<Stamp>]) -> Vec<u8> {
    let files = stamps
        .iter()
        .map(|s| match s {
            Some(s) => Value::List(vec![
                Value::Int(i64::try_from(s.len).unwrap_or(i64::MAX)),
                Value::Int(s.mtime_ns),
            ]),
            None => Value::List(Vec::new()),
        })
        .collect();
    Value::Dict(vec![
        (b"files".as_slice(), Value::List(files)),
        (b"info hash".as_slice(), Value::Bytes(info_hash)),
        (b"piece count".as_slice(), Value::Int(have.len() as i64)),
        (b"pieces".as_slice(), Value::Bytes(have.as_bytes())),
        (b"version".as_slice(), Value::Int(VERSION)),
    ])
    .encode()
}

/// Reads a resume file for this torrent; an error says why it cannot be used.
pub fn decode(
    bytes: &[u8],
    info_hash: &[u8; 20],
    piece_count: u32,
) -> Result<(Bitfield, Vec<Option<Stamp>>), String> {
    let root = bencode::decode(bytes).map_err(|e| e.to_string())?;
    let field = |k: &str| root.get(k.as_bytes()).ok_or(format!("no `{k}`"));
    if field("version")?.as_int() != Some(VERSION) {
        return Err("unknown version".into());
    }
    if field("info hash")?.as_bytes() != Some(info_hash.as_slice()) {
        return Err("it belongs to another torrent".into());
    }
    if field("piece count")?.as_int() != Some(i64::from(piece_count)) {
        return Err("wrong piece count".into());
    }
    let bits = field("pieces")?.as_bytes().ok_or("`pieces` is not bytes")?;
    let have = Bitfield::from_wire(bits, piece_count).map_err(|e| e.to_string())?;
    let mut stamps = Vec::new();
    for f in field("files")?.as_list().ok_or("`files` is not a list")? {
        let entry = f.as_list().ok_or("a file entry is not a list")?;
        stamps.push(match entry {
            [] => None,
            [len, mtime] => Some(Stamp {
                len: len
                    .as_int()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or("bad length")?,
                mtime_ns: mtime.as_int().ok_or("bad mtime")?,
            }),
            _ => return Err("a file entry has the wrong shape".into()),
        });
    }
    Ok((have, stamps))
}

/// Writes `bytes` to `path`: atomically when the disk has room (a temp file beside it, fsync,
/// rename, fsync the folder); on a full disk, by overwriting the existing file in place, which
/// needs no new space. An in-place write cut short by a crash leaves a file that either fails
/// to decode or names only pieces that were on disk at one of the two saves (pieces are only
/// ever added), so it is never trusted wrongly.
pub fn save(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    match save_atomically(path, bytes) {
        Err(e) if path.exists() => overwrite(path, bytes).map_err(|_| e),
        other => other,
    }
}

fn overwrite(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let f = OpenOptions::new().write(true).open(path)?;
    f.write_all_at(bytes, 0)?;
    f.set_len(bytes.len() as u64)?;
    f.sync_data()
}

fn save_atomically(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| StorageError::new("create folder", dir, e))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| StorageError::new("create", &tmp, e))?;
    if let Err(e) = f.write_all(bytes).and_then(|()| f.sync_all()) {
        let _ = std::fs::remove_file(&tmp);
        return Err(StorageError::new("write", &tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| StorageError::new("rename", path, e))?;
    // Makes the rename itself durable; a failure here loses nothing already written.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// How [`startup`] found the pieces already on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Nothing on disk yet.
    Fresh,
    /// Taken from a resume file whose stamps match the data.
    Resumed,
    /// Hashed from the data (the reason says why the resume file was not used).
    Checked(String),
}

/// The pieces already verified on disk: from the resume file when it can be trusted, else by
/// hashing the data with `threads` threads (`progress` gets pieces done and total), else none.
/// `recheck` forces the hashing.
pub fn startup(
    root: &Path,
    meta: &Metainfo,
    map: &FileMap,
    recheck: bool,
    threads: usize,
    progress: &mut dyn FnMut(u32, u32),
) -> Result<(Bitfield, Found), StorageError> {
    let pieces = meta.geometry.piece_count();
    let paths = map.paths();
    let now = stamps(&paths);
    if now.iter().all(Option::is_none) {
        return Ok((Bitfield::new(pieces), Found::Fresh));
    }
    let why = if recheck {
        "--recheck".to_string()
    } else {
        match std::fs::read(path(root, &meta.info_hash)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "no resume file".into(),
            Err(e) => format!("cannot read the resume file: {e}"),
            Ok(bytes) => match decode(&bytes, &meta.info_hash, pieces) {
                Err(e) => format!("resume file unusable: {e}"),
                Ok((_, saved)) if saved != now => "files changed since the resume file".into(),
                Ok((have, _)) => return Ok((have, Found::Resumed)),
            },
        }
    };
    let have = check::check(map, meta, threads, progress)?;
    Ok((have, Found::Checked(why)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(len: u64, mtime_ns: i64) -> Option<Stamp> {
        Some(Stamp { len, mtime_ns })
    }

    #[test]
    fn round_trip() {
        let mut have = Bitfield::new(11);
        have.set(0);
        have.set(10);
        let stamps = vec![stamp(5, 1_700_000_000_123_456_789), None];
        let bytes = encode(&[3; 20], &have, &stamps);
        let (back, st) = decode(&bytes, &[3; 20], 11).unwrap();
        assert_eq!(back, have);
        assert_eq!(st, stamps);
    }

    #[test]
    fn refuses_other_torrents_and_damage() {
        let have = Bitfield::full(9);
        let bytes = encode(&[3; 20], &have, &[stamp(1, 2)]);
        assert!(decode(&bytes, &[4; 20], 9).is_err(), "another info hash");
        assert!(decode(&bytes, &[3; 20], 10).is_err(), "another piece count");
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut], &[3; 20], 9).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let at = flipped.len() - 3;
        flipped[at] ^= 0xff;
        assert!(decode(&flipped, &[3; 20], 9).is_err());
    }

    #[test]
    fn save_is_atomic_and_replaces() {
        let dir = std::env::temp_dir().join(format!("strand-resume-{}", std::process::id()));
        let p = dir.join(".strand").join("x.resume");
        save(&p, b"first").unwrap();
        save(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert!(!p.with_extension("resume.tmp").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
