//! Making a .torrent from a file or folder (`strand create`).
//!
//! Runs on the thread that calls [`create`] (the main thread of the `create` command), which
//! walks the input, then hashes it with worker threads through
//! [`crate::storage::check::hash_pieces`]. It owns nothing beyond the call: the file list, the
//! piece hashes and the encoded torrent it returns.
//!
//! Symbolic links and special files inside a folder are refused, not skipped: skipping would
//! silently share less than the user asked for. The path given itself may be a link (it is
//! followed, like `find -H`). Empty files are included; empty folders cannot be expressed in
//! a torrent and are left out.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::bencode::Value;
use crate::geometry::Geometry;
use crate::metainfo::{self, FileInfo, Metainfo};
use crate::storage::check::{hash_pieces, PieceData};
use crate::storage::StorageError;
use crate::storage::{FileMap, Placement};

/// Smallest piece length [`create`] uses or accepts: 16 KiB.
pub(crate) const MIN_PIECE_LEN: u32 = 16 * 1024;

/// Largest piece length [`create`] uses or accepts: 16 MiB.
pub const MAX_PIECE_LEN: u32 = 16 * 1024 * 1024;

/// Most pieces [`auto_piece_length`] aims for (unless the 16 MiB ceiling forces more).
pub(crate) const TARGET_MAX_PIECES: u64 = 2000;

/// What to put in the torrent besides the data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Announce URLs, each its own tier in `announce-list`; the first is also `announce`.
    /// May be empty (a trackerless torrent); each URL must be non-empty.
    pub trackers: Vec<String>,
    /// Piece length in bytes: a power of two from [`MIN_PIECE_LEN`] to [`MAX_PIECE_LEN`], or
    /// `None` for [`auto_piece_length`].
    pub piece_length: Option<u32>,
    /// Sets `info.private` (BEP 27): peers only from the trackers.
    pub private: bool,
    /// The top-level `comment`.
    pub comment: Option<String>,
    /// The top-level `creation date`, seconds since the Unix epoch; `None` for none (the
    /// output then depends on the input alone).
    pub creation_date: Option<i64>,
    /// Hashing threads; 0 counts as 1.
    pub threads: usize,
}

/// Why a torrent could not be made.
#[derive(Debug)]
pub enum CreateError {
    /// Listing, inspecting or reading the input failed.
    Io(StorageError),
    /// The input has no bytes to share: an empty folder, or only empty files.
    NothingToShare {
        /// The path given.
        path: PathBuf,
    },
    /// The path given has no name to call the torrent (such as `/`).
    NoName {
        /// The path given.
        path: PathBuf,
    },
    /// A file or folder name is not valid UTF-8.
    NotUtf8 {
        /// The offending file or folder.
        path: PathBuf,
    },
    /// A symbolic link or special file (device, socket, FIFO) inside the folder.
    Unsupported {
        /// The offending entry.
        path: PathBuf,
        /// What it is, e.g. "a symbolic link".
        kind: &'static str,
    },
    /// The piece length asked for is not a power of two in the allowed range.
    PieceLength(u32),
    /// A tracker URL is empty.
    EmptyTracker {
        /// Its position in [`CreateOptions::trackers`].
        index: usize,
    },
    /// The input is larger than a bencode integer can describe.
    TooLarge {
        /// The path given.
        path: PathBuf,
    },
    /// A file became shorter or disappeared while it was being hashed.
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// The result does not parse as a valid torrent, typically because a name is one
    /// `metainfo` refuses (a backslash, a drive prefix like `c:`).
    Invalid {
        /// The path given.
        path: PathBuf,
        /// What the parser objected to; it names the field and component.
        source: metainfo::Error,
    },
    /// The result parses, but only after the parser changed it (a backslash in a name):
    /// strand makes no torrent that readers must repair.
    Odd {
        /// The path given.
        path: PathBuf,
        /// The parser's warning line.
        warning: String,
    },
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateError::Io(e) => e.fmt(f),
            CreateError::NothingToShare { path } => write!(
                f,
                "{}: nothing to share (no files, or only empty ones)",
                path.display()
            ),
            CreateError::NoName { path } => {
                write!(f, "{}: has no name to give the torrent", path.display())
            }
            CreateError::NotUtf8 { path } => {
                write!(f, "{}: name is not valid UTF-8", path.display())
            }
            CreateError::Unsupported { path, kind } => write!(
                f,
                "{}: is {kind}; only regular files and folders can be shared",
                path.display()
            ),
            CreateError::PieceLength(len) => write!(
                f,
                "piece length {len} must be a power of two from {MIN_PIECE_LEN} to {MAX_PIECE_LEN}"
            ),
            CreateError::EmptyTracker { index } => {
                write!(f, "tracker URL number {} is empty", index + 1)
            }
            CreateError::TooLarge { path } => {
                write!(f, "{}: too large for a torrent", path.display())
            }
            CreateError::Changed { path } => write!(
                f,
                "{}: file shrank or disappeared while being hashed",
                path.display()
            ),
            CreateError::Invalid { path, source } => {
                write!(
                    f,
                    "{}: cannot make a valid torrent: {source}",
                    path.display()
                )
            }
            CreateError::Odd { path, warning } => write!(
                f,
                "{}: cannot make a clean torrent, readers would change it: {warning}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for CreateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CreateError::Io(e) => Some(e),
            CreateError::Invalid { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<StorageError> for CreateError {
    fn from(e: StorageError) -> CreateError {
        CreateError::Io(e)
    }
}

/// The piece length for `total` bytes: the smallest power of two from [`MIN_PIECE_LEN`] to
/// [`MAX_PIECE_LEN`] that cuts `total` into at most [`TARGET_MAX_PIECES`] pieces, or
/// [`MAX_PIECE_LEN`] when even that gives more.
pub(crate) fn auto_piece_length(total: u64) -> u32 {
    let mut len = MIN_PIECE_LEN;
    while len < MAX_PIECE_LEN && total.div_ceil(u64::from(len)) > TARGET_MAX_PIECES {
        len *= 2;
    }
    len
}

/// Makes a .torrent of the file or folder at `path` and returns its bytes.
///
/// A file gives a single-file torrent named after it; a folder gives a multi-file torrent
/// named after it, its files walked recursively and listed in byte order of their relative
/// paths (`/`-separated). Output is deterministic: the creation date is the one given (if
/// any), `created by` is "strand VERSION", dict keys sorted. `progress` is called on the calling thread with
/// (bytes hashed, total bytes) after each piece. The result is parsed back with
/// [`Metainfo::from_bytes`] before it is returned.
pub fn create(
    path: &Path,
    opts: &CreateOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<u8>, CreateError> {
    if let Some(len) = opts.piece_length {
        if !len.is_power_of_two() || !(MIN_PIECE_LEN..=MAX_PIECE_LEN).contains(&len) {
            return Err(CreateError::PieceLength(len));
        }
    }
    if let Some(index) = opts.trackers.iter().position(String::is_empty) {
        return Err(CreateError::EmptyTracker { index });
    }
    let name = torrent_name(path)?;
    let meta = std::fs::metadata(path).map_err(|e| StorageError::new("inspect", path, e))?;
    let entries = if meta.is_dir() {
        walk(path)?
    } else if meta.is_file() {
        vec![Entry {
            components: Vec::new(),
            length: meta.len(),
            disk: path.to_path_buf(),
        }]
    } else {
        return Err(CreateError::Unsupported {
            path: path.to_path_buf(),
            kind: "a special file",
        });
    };
    let too_large = || CreateError::TooLarge {
        path: path.to_path_buf(),
    };
    let total = entries
        .iter()
        .try_fold(0u64, |sum, e| sum.checked_add(e.length))
        .ok_or_else(too_large)?;
    if total == 0 {
        return Err(CreateError::NothingToShare {
            path: path.to_path_buf(),
        });
    }
    let piece_len = opts
        .piece_length
        .unwrap_or_else(|| auto_piece_length(total));
    let files: Vec<FileInfo> = entries
        .iter()
        .map(|e| {
            let path = e
                .components
                .iter()
                .fold(PathBuf::from(&name), |p, c| p.join(c));
            FileInfo::data(path, e.length)
        })
        .collect();
    let placements = entries
        .iter()
        .map(|e| Placement {
            path: e.disk.clone(),
            base: 0,
        })
        .collect();
    let map = FileMap::new(Geometry::new(total, piece_len), &files, placements);
    let pieces = hash(&map, opts.threads, progress)?;

    let multi_file = meta.is_dir();
    let bytes =
        encode(opts, &name, &entries, multi_file, piece_len, &pieces).ok_or_else(too_large)?;
    let meta = Metainfo::from_bytes(&bytes).map_err(|source| CreateError::Invalid {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(warning) = meta.warnings.into_iter().next() {
        return Err(CreateError::Odd {
            path: path.to_path_buf(),
            warning,
        });
    }
    Ok(bytes)
}

/// One file to share.
struct Entry {
    /// Path components below the shared folder; empty for a single-file torrent.
    components: Vec<String>,
    /// Length in bytes when the folder was walked.
    length: u64,
    /// Where it is on disk.
    disk: PathBuf,
}

/// The last component of `path` (after resolving `.` or `..` if that is what it is), as
/// UTF-8.
fn torrent_name(path: &Path) -> Result<String, CreateError> {
    let resolved;
    let last = match path.file_name() {
        Some(n) => n,
        None => {
            resolved = path
                .canonicalize()
                .map_err(|e| StorageError::new("resolve", path, e))?;
            resolved.file_name().ok_or_else(|| CreateError::NoName {
                path: path.to_path_buf(),
            })?
        }
    };
    last.to_str()
        .map(str::to_string)
        .ok_or_else(|| CreateError::NotUtf8 {
            path: path.to_path_buf(),
        })
}

/// The regular files under `root`, at any depth, sorted by their `/`-joined relative paths
/// as byte strings.
fn walk(root: &Path) -> Result<Vec<Entry>, CreateError> {
    let mut found: Vec<(String, Entry)> = Vec::new();
    let mut folders = vec![(Vec::<String>::new(), root.to_path_buf())];
    while let Some((prefix, dir)) = folders.pop() {
        let listing = std::fs::read_dir(&dir).map_err(|e| StorageError::new("list", &dir, e))?;
        for item in listing {
            let item = item.map_err(|e| StorageError::new("list", &dir, e))?;
            let disk = item.path();
            let Some(component) = item.file_name().to_str().map(str::to_string) else {
                return Err(CreateError::NotUtf8 { path: disk });
            };
            let mut components = prefix.clone();
            components.push(component);
            // `DirEntry::metadata` does not follow symbolic links.
            let meta = item
                .metadata()
                .map_err(|e| StorageError::new("inspect", &disk, e))?;
            let kind = meta.file_type();
            if kind.is_dir() {
                folders.push((components, disk));
            } else if kind.is_file() {
                let entry = Entry {
                    components,
                    length: meta.len(),
                    disk,
                };
                found.push((entry.components.join("/"), entry));
            } else {
                let kind = if kind.is_symlink() {
                    "a symbolic link"
                } else {
                    "a special file"
                };
                return Err(CreateError::Unsupported { path: disk, kind });
            }
        }
    }
    if found.is_empty() {
        return Err(CreateError::NothingToShare {
            path: root.to_path_buf(),
        });
    }
    // `String` orders by bytes.
    found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(found.into_iter().map(|(_, entry)| entry).collect())
}

/// The SHA-1 of every piece, concatenated in piece order.
fn hash(
    map: &FileMap,
    threads: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<u8>, CreateError> {
    let geometry = map.geometry();
    let mut pieces = vec![0u8; geometry.piece_count() as usize * 20];
    let mut hashed = 0u64;
    let mut changed = None;
    hash_pieces(map, threads, &mut |piece, data| match data {
        PieceData::Hash(h) => {
            let at = piece as usize * 20;
            pieces[at..at + 20].copy_from_slice(&h);
            hashed += u64::from(geometry.piece_size(piece));
            progress(hashed, geometry.total_len());
            true
        }
        PieceData::Absent { file } => {
            changed = Some(file);
            false
        }
    })?;
    match changed {
        Some(file) => Err(CreateError::Changed {
            path: map.placements()[file].path.clone(),
        }),
        None => Ok(pieces),
    }
}

/// The bencoded torrent, every dict's keys inserted in sorted order; `None` if a length
/// does not fit a bencode integer.
fn encode(
    opts: &CreateOptions,
    name: &str,
    entries: &[Entry],
    multi_file: bool,
    piece_len: u32,
    pieces: &[u8],
) -> Option<Vec<u8>> {
    let int = |n: u64| i64::try_from(n).ok().map(Value::Int);
    let mut info = Vec::new();
    if multi_file {
        let mut list = Vec::with_capacity(entries.len());
        for e in entries {
            let path = e.components.iter().map(|c| Value::Bytes(c.as_bytes()));
            list.push(Value::Dict(vec![
                (&b"length"[..], int(e.length)?),
                (&b"path"[..], Value::List(path.collect())),
            ]));
        }
        info.push((&b"files"[..], Value::List(list)));
    } else {
        info.push((&b"length"[..], int(entries.iter().map(|e| e.length).sum())?));
    }
    info.push((&b"name"[..], Value::Bytes(name.as_bytes())));
    info.push((&b"piece length"[..], int(u64::from(piece_len))?));
    info.push((&b"pieces"[..], Value::Bytes(pieces)));
    if opts.private {
        info.push((&b"private"[..], Value::Int(1)));
    }

    let created_by = format!("strand {}", env!("CARGO_PKG_VERSION"));
    let mut top = Vec::new();
    if let Some(first) = opts.trackers.first() {
        top.push((&b"announce"[..], Value::Bytes(first.as_bytes())));
        let tiers = opts
            .trackers
            .iter()
            .map(|url| Value::List(vec![Value::Bytes(url.as_bytes())]))
            .collect();
        top.push((&b"announce-list"[..], Value::List(tiers)));
    }
    if let Some(comment) = &opts.comment {
        top.push((&b"comment"[..], Value::Bytes(comment.as_bytes())));
    }
    top.push((&b"created by"[..], Value::Bytes(created_by.as_bytes())));
    if let Some(date) = opts.creation_date {
        top.push((&b"creation date"[..], Value::Int(date)));
    }
    top.push((&b"info"[..], Value::Dict(info)));
    Some(Value::Dict(top).encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::check::tests::{bytes, Scratch};
    use sha1::{Digest, Sha1};

    fn opts(trackers: &[&str]) -> CreateOptions {
        CreateOptions {
            trackers: trackers.iter().map(|t| t.to_string()).collect(),
            threads: 2,
            ..CreateOptions::default()
        }
    }

    fn make(path: &Path, o: &CreateOptions) -> Result<Vec<u8>, CreateError> {
        create(path, o, &mut |_, _| {})
    }

    /// The piece hashes of `data` computed the plain way.
    fn expected_hashes(data: &[u8], piece_len: u32) -> Vec<[u8; 20]> {
        data.chunks(piece_len as usize)
            .map(|c| Sha1::digest(c).into())
            .collect()
    }

    #[test]
    fn auto_piece_length_table() {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * KIB;
        const GIB: u64 = 1024 * MIB;
        let table: &[(u64, u32)] = &[
            (1, 16 * 1024),
            (2000 * 16 * KIB, 16 * 1024),
            (2000 * 16 * KIB + 1, 32 * 1024),
            (100 * MIB, 64 * 1024),
            (256 * MIB, 256 * 1024),
            (700 * MIB, 512 * 1024),
            (4 * GIB, 4 * 1024 * 1024),
            (2000 * 16 * MIB, MAX_PIECE_LEN),
            (u64::MAX, MAX_PIECE_LEN),
        ];
        for &(total, want) in table {
            assert_eq!(auto_piece_length(total), want, "total {total}");
        }
        // Between the bounds, the piece count lands in (1000, 2000].
        for total in [100 * MIB, 3 * GIB + 5, 20 * GIB] {
            let pieces = total.div_ceil(u64::from(auto_piece_length(total)));
            assert!((1001..=2000).contains(&pieces), "{total}: {pieces} pieces");
        }
    }

    #[test]
    fn single_file_round_trip() {
        let dir = Scratch::new("create-single");
        let data = bytes(100_000, 7);
        let file = dir.write("movie.bin", &data);
        let out = make(&file, &opts(&["http://t.example/announce"])).unwrap();
        let m = Metainfo::from_bytes(&out).unwrap();
        assert_eq!(m.name, "movie.bin");
        assert!(!m.multi_file);
        assert_eq!(m.files, [FileInfo::data("movie.bin", 100_000)]);
        assert_eq!(m.geometry.piece_len(), MIN_PIECE_LEN);
        assert_eq!(m.piece_hashes, expected_hashes(&data, MIN_PIECE_LEN));
        assert_eq!(m.trackers, [["http://t.example/announce"]]);
        assert!(!m.private);
        assert_eq!(m.comment, None);
        assert_eq!(m.creation_date, None);
        assert_eq!(
            m.created_by,
            Some(format!("strand {}", env!("CARGO_PKG_VERSION")))
        );
    }

    #[test]
    fn nested_folder_with_an_empty_file() {
        let dir = Scratch::new("create-nested");
        let root = dir.0.join("share");
        let a = bytes(30_000, 1);
        let b = bytes(5_000, 2);
        let c = bytes(50_000, 3);
        // Written out of order; the torrent must list them by relative path bytes, where
        // "a.txt" < "a/..." because '.' (0x2e) < '/' (0x2f), and "Z" < "a".
        dir.write("share/a/deep/c.bin", &c);
        dir.write("share/a.txt", &a);
        dir.write("share/a/empty", b"");
        dir.write("share/Z.bin", &b);
        std::fs::create_dir_all(root.join("empty-folder")).unwrap();
        let o = CreateOptions {
            piece_length: Some(32 * 1024),
            ..opts(&[])
        };
        let out = make(&root, &o).unwrap();
        let m = Metainfo::from_bytes(&out).unwrap();
        assert_eq!(m.name, "share");
        assert!(m.multi_file);
        let listed: Vec<(String, u64)> = m
            .files
            .iter()
            .map(|f| (f.path.to_string_lossy().into_owned(), f.length))
            .collect();
        assert_eq!(
            listed,
            [
                ("share/Z.bin".to_string(), 5_000),
                ("share/a.txt".to_string(), 30_000),
                ("share/a/deep/c.bin".to_string(), 50_000),
                ("share/a/empty".to_string(), 0),
            ]
        );
        let all = [b, a, c].concat();
        assert_eq!(m.geometry.total_len(), all.len() as u64);
        assert_eq!(m.piece_hashes, expected_hashes(&all, 32 * 1024));
        assert!(m.trackers.is_empty());

        // An independent reader agrees on the info hash, which it computes from a sorted
        // re-encoding: so our info dict is canonical bencode.
        let lava = lava_torrent::torrent::v1::Torrent::read_from_bytes(&out).unwrap();
        assert_eq!(lava.info_hash_bytes(), m.info_hash);
        assert_eq!(lava.files.map(|f| f.len()), Some(4));
    }

    #[test]
    fn output_is_deterministic_across_runs_and_thread_counts() {
        let dir = Scratch::new("create-determinism");
        dir.write("d/x/1", &bytes(70_000, 4));
        dir.write("d/y", &bytes(1, 5));
        dir.write("d/0", &bytes(40_000, 6));
        let root = dir.0.join("d");
        let mut o = opts(&["http://a/announce", "udp://b:80"]);
        o.threads = 1;
        let first = make(&root, &o).unwrap();
        for threads in [1, 2, 8] {
            o.threads = threads;
            assert_eq!(make(&root, &o).unwrap(), first, "threads {threads}");
        }
        let lava = lava_torrent::torrent::v1::Torrent::read_from_bytes(&first).unwrap();
        // lava_torrent writes every dict sorted; equal bytes mean ours were sorted too.
        assert_eq!(lava.encode().unwrap(), first);
    }

    #[test]
    fn trackers_private_flag_and_comment() {
        let dir = Scratch::new("create-private");
        let file = dir.write("f", &bytes(10, 9));
        let o = CreateOptions {
            private: true,
            comment: Some("hello, peers".into()),
            ..opts(&["http://one/announce", "http://two/announce"])
        };
        let out = make(&file, &o).unwrap();
        let m = Metainfo::from_bytes(&out).unwrap();
        assert!(m.private);
        assert_eq!(m.comment.as_deref(), Some("hello, peers"));
        assert_eq!(
            m.trackers,
            [["http://one/announce"], ["http://two/announce"]]
        );
        let top = crate::bencode::decode(&out).unwrap();
        assert_eq!(
            top.get(b"announce").and_then(Value::as_str),
            Some("http://one/announce")
        );
    }

    #[test]
    fn piece_length_must_be_a_power_of_two_in_range() {
        let dir = Scratch::new("create-piecelen");
        let file = dir.write("f", &bytes(100, 1));
        for bad in [0, 1, 8192, 16383, 3 * 16384, 32 * 1024 * 1024] {
            let o = CreateOptions {
                piece_length: Some(bad),
                ..opts(&[])
            };
            let err = make(&file, &o).unwrap_err();
            assert!(
                matches!(err, CreateError::PieceLength(n) if n == bad),
                "{err}"
            );
        }
        for good in [MIN_PIECE_LEN, 1 << 20, MAX_PIECE_LEN] {
            let o = CreateOptions {
                piece_length: Some(good),
                ..opts(&[])
            };
            let m = Metainfo::from_bytes(&make(&file, &o).unwrap()).unwrap();
            assert_eq!(m.geometry.piece_len(), good);
        }
    }

    #[test]
    fn progress_reaches_the_total() {
        let dir = Scratch::new("create-progress");
        let file = dir.write("f", &bytes(100_000, 3));
        let mut calls = Vec::new();
        create(&file, &opts(&[]), &mut |done, total| {
            calls.push((done, total))
        })
        .unwrap();
        assert_eq!(calls.len(), 7);
        assert!(calls.windows(2).all(|w| w[0].0 < w[1].0), "{calls:?}");
        assert_eq!(calls.last(), Some(&(100_000, 100_000)));
    }

    #[test]
    fn nothing_to_share() {
        let dir = Scratch::new("create-empty");
        std::fs::create_dir_all(dir.0.join("e/sub")).unwrap();
        let err = make(&dir.0.join("e"), &opts(&[])).unwrap_err();
        assert!(matches!(err, CreateError::NothingToShare { .. }), "{err}");
        assert!(err.to_string().contains("nothing to share"), "{err}");
        dir.write("e/sub/zero", b"");
        let err = make(&dir.0.join("e"), &opts(&[])).unwrap_err();
        assert!(matches!(err, CreateError::NothingToShare { .. }), "{err}");
    }

    #[test]
    fn links_bad_names_and_empty_trackers_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let dir = Scratch::new("create-refuse");
        dir.write("s/real", &bytes(10, 1));
        let link = dir.0.join("s/link");
        std::os::unix::fs::symlink(dir.0.join("s/real"), &link).unwrap();
        let err = make(&dir.0.join("s"), &opts(&[])).unwrap_err();
        assert!(
            matches!(&err, CreateError::Unsupported { path, .. } if *path == link),
            "{err}"
        );
        assert!(err.to_string().contains("symbolic link"), "{err}");

        let bad = dir
            .0
            .join("n")
            .join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
        std::fs::create_dir_all(dir.0.join("n")).unwrap();
        std::fs::write(&bad, b"x").unwrap();
        let err = make(&dir.0.join("n"), &opts(&[])).unwrap_err();
        assert!(
            matches!(&err, CreateError::NotUtf8 { path } if *path == bad),
            "{err}"
        );

        // Legal on Linux, but readers replace it; caught by the self-check.
        let file = dir.write("w/back\\slash", b"x");
        let err = make(&file, &opts(&[])).unwrap_err();
        assert!(matches!(err, CreateError::Odd { .. }), "{err}");
        assert!(err.to_string().contains("backslash"), "{err}");

        let err = make(&file, &opts(&["http://ok", ""])).unwrap_err();
        assert!(
            matches!(err, CreateError::EmptyTracker { index: 1 }),
            "{err}"
        );
    }
}
