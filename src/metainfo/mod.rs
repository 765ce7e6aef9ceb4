//! .torrent parsing and validation: turns a metainfo file (or a bare info dict fetched for a
//! magnet link) into a checked [`Metainfo`].
//!
//! Runs on the main thread at start-up or when metadata arrives; the returned [`Metainfo`]
//! owns copies of everything it needs, including the raw info dict bytes whose SHA-1 is the
//! info hash. File paths are validated here so later modules can join them under the
//! download directory without re-checking for `..`, absolute paths or drive prefixes.

mod files;
#[cfg(test)]
mod fixture_tests;
mod v2;

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use files::{FileInfo, FileKind};
pub use v2::Version;

use sha1::{Digest, Sha1};

use crate::bencode::{self, Value};
use crate::geometry::Geometry;

/// Largest .torrent file [`Metainfo::load`] reads.
pub const MAX_TORRENT_FILE_LEN: u64 = 64 * 1024 * 1024;

/// Largest piece length accepted.
pub const MAX_PIECE_LEN: u32 = 256 * 1024 * 1024;

/// A checked .torrent.
#[derive(Debug, Clone)]
pub struct Metainfo {
    /// SHA-1 of the raw info dict bytes, exactly as they appeared in the input.
    pub info_hash: [u8; 20],
    /// The torrent's name: the file name (single-file) or top directory (multi-file).
    pub name: String,
    /// Total length and piece length.
    pub geometry: Geometry,
    /// Expected SHA-1 of each piece, `geometry.piece_count()` of them.
    pub piece_hashes: Vec<[u8; 20]>,
    /// Files in torrent order, pad files (BEP 47) included; their lengths sum to
    /// `geometry.total_len()`. [`Metainfo::listed_files`] leaves the padding out.
    pub files: Vec<FileInfo>,
    /// v1, or a v1 + v2 hybrid downloaded as v1 (BEP 52).
    pub version: Version,
    /// Whether the info dict had a `files` list (as opposed to a single `length`).
    pub multi_file: bool,
    /// Tracker tiers (BEP 12), each a non-empty list of announce URLs; may be empty.
    pub trackers: Vec<Vec<String>>,
    /// Whether `info.private` is 1 (BEP 27).
    pub private: bool,
    /// `creation date`, seconds since the Unix epoch, if present.
    pub creation_date: Option<i64>,
    /// `created by`, if present (lossy UTF-8).
    pub created_by: Option<String>,
    /// `comment`, if present (lossy UTF-8).
    pub comment: Option<String>,
    /// Web seeds (BEP 19 `url-list`), in the torrent's order, without duplicates.
    pub web_seeds: Vec<String>,
    /// One line for each odd but harmless thing in the torrent that was changed to make it
    /// usable (a renamed duplicate, a dropped empty component, …), for the user to see.
    pub warnings: Vec<String>,
    /// The raw bencoded info dict, as hashed into `info_hash` (what `ut_metadata` serves).
    pub info_bytes: Vec<u8>,
}

/// Why a torrent could not be loaded or parsed.
#[derive(Debug)]
pub enum Error {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_TORRENT_FILE_LEN`].
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size, or at least how much was read before giving up.
        len: u64,
    },
    /// The file was read but its contents are not a valid torrent.
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<Error>,
    },
    /// The bytes are not valid bencode.
    Bencode(bencode::Error),
    /// A required field is absent.
    Missing {
        /// Dotted field name, e.g. `info.piece length`.
        field: String,
    },
    /// A field is present but has the wrong type or an unacceptable value.
    Invalid {
        /// Dotted field name, e.g. `info.files[2].path`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::TooLarge { path, len } => write!(
                f,
                "{}: file is {len} bytes, larger than the {MAX_TORRENT_FILE_LEN}-byte limit",
                path.display()
            ),
            Error::InFile { path, source } => {
                write!(f, "{}: not a valid torrent: {source}", path.display())
            }
            Error::Bencode(e) => e.fmt(f),
            Error::Missing { field } => write!(f, "missing field {field}"),
            Error::Invalid { field, reason } => write!(f, "{field}: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { source, .. } => Some(source),
            Error::InFile { source, .. } => Some(source.as_ref()),
            Error::Bencode(e) => Some(e),
            Error::TooLarge { .. } | Error::Missing { .. } | Error::Invalid { .. } => None,
        }
    }
}

impl From<bencode::Error> for Error {
    fn from(e: bencode::Error) -> Error {
        Error::Bencode(e)
    }
}

fn invalid<T>(field: &str, reason: impl Into<String>) -> Result<T, Error> {
    Err(Error::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    })
}

fn missing(field: &str) -> Error {
    Error::Missing {
        field: field.to_string(),
    }
}

impl Metainfo {
    /// Reads and parses a .torrent file, refusing files over [`MAX_TORRENT_FILE_LEN`].
    pub fn load(path: &Path) -> Result<Metainfo, Error> {
        let read_err = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let too_large = |len| Error::TooLarge {
            path: path.to_path_buf(),
            len,
        };
        let file = File::open(path).map_err(read_err)?;
        let len = file.metadata().map_err(read_err)?.len();
        if len > MAX_TORRENT_FILE_LEN {
            return Err(too_large(len));
        }
        let mut data = Vec::new();
        file.take(MAX_TORRENT_FILE_LEN + 1)
            .read_to_end(&mut data)
            .map_err(read_err)?;
        if data.len() as u64 > MAX_TORRENT_FILE_LEN {
            return Err(too_large(data.len() as u64));
        }
        Metainfo::from_bytes(&data).map_err(|e| Error::InFile {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Parses the contents of a .torrent file.
    /// Bytes after the torrent's closing `e` are ignored, with a warning line.
    pub fn from_bytes(data: &[u8]) -> Result<Metainfo, Error> {
        let (top, used) = bencode::decode_prefix(data)?;
        if top.as_dict().is_none() {
            return invalid("torrent", "expected a dict");
        }
        let info = info_span(&data[..used])?.ok_or_else(|| missing("info"))?;
        let mut meta = Metainfo::from_info_bytes(&data[info], trackers(&top))?;
        meta.creation_date = top.get(b"creation date").and_then(Value::as_int);
        meta.created_by = lossy(top.get(b"created by"));
        meta.comment = lossy(top.get(b"comment"));
        meta.web_seeds = web_seeds(&top);
        if used < data.len() {
            let extra = data.len() - used;
            log::debug!("{extra} bytes after the torrent's closing 'e' ignored");
            meta.warnings.push(format!(
                "{extra} bytes after the end of the torrent ignored"
            ));
        }
        Ok(meta)
    }

    /// The files `info` lists and `--only` numbers (from 1): every file but padding, each with
    /// its index in [`Metainfo::files`].
    pub fn listed_files(&self) -> impl Iterator<Item = (usize, &FileInfo)> {
        self.files
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.is_padding())
    }

    /// A choice over [`Metainfo::listed_files`] made into one over [`Metainfo::files`]:
    /// padding is never chosen (its bytes are zeros that live nowhere).
    pub fn choice_over_all_files(&self, listed: &[bool]) -> Vec<bool> {
        let mut all = vec![false; self.files.len()];
        for ((i, _), &c) in self.listed_files().zip(listed) {
            all[i] = c;
        }
        all
    }

    /// A .torrent file for this metainfo: `announce` and `announce-list` from the trackers,
    /// and the info dict as its raw bytes, so the file has the same info hash.
    pub fn to_torrent_bytes(&self) -> Vec<u8> {
        fn str_value(s: &String) -> bencode::Value<'_> {
            bencode::Value::Bytes(s.as_bytes())
        }
        let mut top = Vec::new();
        if let Some(first) = self.trackers.iter().flatten().next() {
            top.extend(bencode::Value::Bytes(b"announce").encode());
            top.extend(str_value(first).encode());
            let tiers = self
                .trackers
                .iter()
                .map(|tier| bencode::Value::List(tier.iter().map(str_value).collect()))
                .collect();
            top.extend(bencode::Value::Bytes(b"announce-list").encode());
            top.extend(bencode::Value::List(tiers).encode());
        }
        let mut out = b"d".to_vec();
        out.extend(top);
        out.extend(bencode::Value::Bytes(b"info").encode());
        out.extend_from_slice(&self.info_bytes);
        out.push(b'e');
        out
    }

    /// Parses a bare bencoded info dict (as fetched for a magnet link) with the given
    /// tracker tiers. `info` is hashed as given; the optional top-level fields stay `None`.
    /// Checking that `info_hash` matches the hash the magnet link asked for is the caller's
    /// job.
    pub fn from_info_bytes(info: &[u8], trackers: Vec<Vec<String>>) -> Result<Metainfo, Error> {
        let dict = bencode::decode(info)?;
        if dict.as_dict().is_none() {
            return invalid("info", "expected a dict");
        }
        let name_bytes = get_bytes(&dict, "name")?;
        let name = match std::str::from_utf8(name_bytes) {
            Ok(s) => s.to_string(),
            Err(_) => return invalid("info.name", "not valid UTF-8"),
        };
        let mut warnings = Vec::new();
        let clean = files::clean_component(&name, "info.name")?;
        if clean != name {
            warnings.push(format!(
                "info.name: backslash in {name:?} replaced, the name is {clean:?}"
            ));
        }
        let name = clean;
        let version = v2::version(&dict)?;

        let piece_len = get_int(&dict, "piece length")?;
        if piece_len <= 0 {
            return invalid("info.piece length", format!("{piece_len} is not positive"));
        }
        let piece_len = match u32::try_from(piece_len) {
            Ok(n) if n <= MAX_PIECE_LEN => n,
            _ => {
                return invalid(
                    "info.piece length",
                    format!("{piece_len} is larger than the {MAX_PIECE_LEN}-byte limit"),
                )
            }
        };

        let (files, raw_files, multi_file) = match (dict.get(b"length"), dict.get(b"files")) {
            (Some(length), None) => {
                let length = non_negative(length, "info.length")?;
                let file = FileInfo::data(&name, length);
                (vec![file], vec![(vec![name_bytes], length)], false)
            }
            (None, Some(list)) => {
                let (files, raw) = files::parse_files(list, &name, &mut warnings)?;
                (files, raw, true)
            }
            (Some(_), Some(_)) => return invalid("info", "has both length and files"),
            (None, None) => return Err(missing("info.length or info.files")),
        };
        let mut total: u64 = 0;
        for file in &files {
            total = match total.checked_add(file.length) {
                Some(t) => t,
                None => return invalid("info.files", "total length overflows"),
            };
        }
        if total == 0 {
            return invalid("info", "torrent has no data");
        }
        if version == Version::Hybrid {
            v2::check_hybrid(&dict, &raw_files)?;
        }

        let pieces = get_bytes(&dict, "pieces")?;
        if pieces.len() % 20 != 0 {
            return invalid(
                "info.pieces",
                format!("length {} is not a multiple of 20", pieces.len()),
            );
        }
        let expected = total.div_ceil(u64::from(piece_len));
        let have = pieces.len() / 20;
        if u64::try_from(have).ok() != Some(expected) {
            return invalid(
                "info.pieces",
                format!(
                    "has {have} hashes, but {total} bytes in pieces of {piece_len} need {expected}"
                ),
            );
        }
        if u32::try_from(expected).is_err() {
            return invalid("info.pieces", format!("{expected} pieces is too many"));
        }
        let piece_hashes = pieces
            .chunks_exact(20)
            .map(|c| {
                let mut h = [0u8; 20];
                h.copy_from_slice(c);
                h
            })
            .collect();

        Ok(Metainfo {
            info_hash: Sha1::digest(info).into(),
            name,
            geometry: Geometry::new(total, piece_len),
            piece_hashes,
            files,
            version,
            multi_file,
            trackers,
            private: dict.get(b"private").and_then(Value::as_int) == Some(1),
            creation_date: None,
            created_by: None,
            comment: None,
            web_seeds: Vec::new(),
            warnings,
            info_bytes: info.to_vec(),
        })
    }

    /// The info hash as 40 lowercase hex digits.
    pub fn info_hash_hex(&self) -> String {
        hex(&self.info_hash)
    }
}

/// Bytes as lowercase hex: how info hashes are shown to users and used in file names.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The byte range of the top-level `info` value in `data`, found by walking the top-level
/// dict entry by entry so the raw bytes (not a re-encoding) can be hashed.
fn info_span(data: &[u8]) -> Result<Option<std::ops::Range<usize>>, Error> {
    let shift = |pos: usize| {
        move |e: bencode::Error| bencode::Error {
            offset: e.offset + pos,
            reason: e.reason,
        }
    };
    let mut pos = 1; // past the top-level 'd'
    while data.get(pos).is_some_and(|&b| b != b'e') {
        let (key, used) = bencode::decode_prefix(&data[pos..]).map_err(shift(pos))?;
        pos += used;
        let (_, used) = bencode::decode_prefix(&data[pos..]).map_err(shift(pos))?;
        if key.as_bytes() == Some(b"info") {
            return Ok(Some(pos..pos + used));
        }
        pos += used;
    }
    Ok(None)
}

/// Tracker tiers from `announce-list`, or else `announce`; empty entries and tiers dropped.
fn trackers(top: &Value<'_>) -> Vec<Vec<String>> {
    let tiers: Vec<Vec<String>> = top
        .get(b"announce-list")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_list)
        .map(|tier| {
            tier.iter()
                .filter_map(Value::as_str)
                .filter(|url| !url.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|tier| !tier.is_empty())
        .collect();
    if !tiers.is_empty() {
        return tiers;
    }
    match top.get(b"announce").and_then(Value::as_str) {
        Some(url) if !url.is_empty() => vec![vec![url.to_string()]],
        _ => Vec::new(),
    }
}

/// Web seeds from `url-list` (BEP 19): one URL or a list; empty entries, non-strings and
/// repeats dropped.
fn web_seeds(top: &Value<'_>) -> Vec<String> {
    let urls: Vec<&str> = match top.get(b"url-list") {
        Some(Value::List(list)) => list.iter().filter_map(Value::as_str).collect(),
        Some(v) => v.as_str().into_iter().collect(),
        None => Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for url in urls {
        if !url.is_empty() && !out.iter().any(|u| u == url) {
            out.push(url.to_string());
        }
    }
    out
}

fn lossy(v: Option<&Value<'_>>) -> Option<String> {
    v.and_then(Value::as_bytes)
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn get_bytes<'a>(dict: &Value<'a>, key: &str) -> Result<&'a [u8], Error> {
    get_field(dict, key, Value::as_bytes, "expected a byte string")
}

fn get_int(dict: &Value<'_>, key: &str) -> Result<i64, Error> {
    get_field(dict, key, Value::as_int, "expected an integer")
}

/// The required `info` field `key` as `read` takes it, or an error naming the field.
fn get_field<'a, T>(
    dict: &Value<'a>,
    key: &str,
    read: impl Fn(&Value<'a>) -> Option<T>,
    expected: &str,
) -> Result<T, Error> {
    let field = format!("info.{key}");
    match dict.get(key.as_bytes()) {
        None => Err(missing(&field)),
        Some(v) => match read(v) {
            Some(x) => Ok(x),
            None => invalid(&field, expected),
        },
    }
}

fn non_negative(v: &Value<'_>, field: &str) -> Result<u64, Error> {
    match v.as_int() {
        None => invalid(field, "expected an integer"),
        Some(n) => match u64::try_from(n) {
            Ok(n) => Ok(n),
            Err(_) => invalid(field, format!("{n} is negative")),
        },
    }
}

/// Test fixtures shared by the modules that need a metainfo without parsing one.
#[cfg(test)]
impl Metainfo {
    /// A multi-file v1 metainfo named `t` with these pieces and files and nothing optional.
    pub(crate) fn for_test(
        info_hash: [u8; 20],
        geometry: Geometry,
        piece_hashes: Vec<[u8; 20]>,
        files: Vec<FileInfo>,
    ) -> Metainfo {
        Metainfo {
            info_hash,
            name: "t".into(),
            geometry,
            piece_hashes,
            files,
            multi_file: true,
            trackers: Vec::new(),
            private: false,
            creation_date: None,
            created_by: None,
            comment: None,
            version: Version::V1,
            web_seeds: Vec::new(),
            warnings: Vec::new(),
            info_bytes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SINGLE: &[u8] = include_bytes!("../../testdata/single.torrent");
    const MULTI: &[u8] = include_bytes!("../../testdata/multi.torrent");
    const UNSORTED: &[u8] = include_bytes!("../../testdata/unsorted.torrent");

    /// A minimal single-file info dict (keys sorted) with the right number of hashes.
    fn info_with(extra: &str, name: &str, length: u64, piece_len: u32) -> Vec<u8> {
        let count = length.div_ceil(u64::from(piece_len)) as usize;
        let head = format!(
            "d{extra}6:lengthi{length}e4:name{}:{name}12:piece lengthi{piece_len}e",
            name.len()
        );
        with_pieces(head, count, 0xab)
    }

    /// `head` (an open dict up to `pieces`) closed by `count` hashes of `byte`s.
    fn with_pieces(head: String, count: usize, byte: u8) -> Vec<u8> {
        let mut v = format!("{head}6:pieces{}:", count * 20).into_bytes();
        v.extend(vec![byte; count * 20]);
        v.push(b'e');
        v
    }

    /// A multi-file info dict whose `files` value is `files` (raw bencode).
    fn multi_info(name: &str, files: &str, total: u64) -> Vec<u8> {
        let count = total.div_ceil(16384) as usize;
        let head = format!(
            "d5:files{files}4:name{}:{name}12:piece lengthi16384e",
            name.len()
        );
        with_pieces(head, count, 0xcd)
    }

    fn file_entry(length: u64, path: &[&str]) -> String {
        let comps: String = path.iter().map(|c| format!("{}:{c}", c.len())).collect();
        format!("d6:lengthi{length}e4:pathl{comps}ee")
    }

    fn error_text(info: &[u8]) -> String {
        Metainfo::from_info_bytes(info, Vec::new())
            .expect_err("info should be rejected")
            .to_string()
    }

    /// A fixture parsed, checked against the info hash an oracle printed for it (`info_hash`)
    /// and against the SHA-1 of the raw info bytes it keeps.
    fn fixture(torrent: &[u8], info_hash: &str) -> Metainfo {
        let m = Metainfo::from_bytes(torrent).expect("valid fixture");
        assert_eq!(m.info_hash_hex(), info_hash);
        assert_eq!(Sha1::digest(&m.info_bytes).as_slice(), m.info_hash);
        m
    }

    #[test]
    fn single_file_fixture() {
        // Oracle: `transmission-show testdata/single.torrent` printed this hash.
        let m = fixture(SINGLE, "fe59fb41e67d5a8c81840c8782344e1b5f9139bc");
        assert_eq!(m.name, "hello.txt");
        assert!(!m.multi_file);
        assert_eq!(
            m.files,
            [FileInfo::data(PathBuf::from("hello.txt"), 108894)]
        );
        assert_eq!(m.geometry.total_len(), 108894);
        assert_eq!(m.geometry.piece_len(), 32768);
        assert_eq!(m.geometry.piece_count(), 4);
        assert_eq!(m.piece_hashes.len(), 4);
        assert_eq!(m.trackers, [["http://127.0.0.1:6969/announce"]]);
        assert!(!m.private);
        assert_eq!(m.comment.as_deref(), Some("strand single-file fixture"));
        assert_eq!(m.created_by.as_deref(), Some("mktorrent 1.1"));
        assert_eq!(m.creation_date, None);
        assert!(m.info_bytes.starts_with(b"d6:length"));
    }

    #[test]
    fn multi_file_fixture() {
        // Oracle: `transmission-show testdata/multi.torrent` printed this hash.
        let m = fixture(MULTI, "7c41003413ac83880c243e5d9b102c9a62265c24");
        assert_eq!(m.name, "album");
        assert!(m.multi_file);
        let files: Vec<(&str, u64)> = m
            .files
            .iter()
            .map(|f| (f.path.to_str().unwrap_or("?"), f.length))
            .collect();
        assert_eq!(
            files,
            [
                ("album/disc1/deep/track01.txt", 23893),
                ("album/disc1/track02.txt", 20000),
                ("album/disc2/empty.dat", 0),
                ("album/notes.txt", 17001),
            ]
        );
        assert_eq!(m.geometry.total_len(), 60894);
        assert_eq!(m.geometry.piece_count(), 2);
        assert!(m.private);
        assert_eq!(
            m.trackers,
            [
                vec![
                    "http://127.0.0.1:6969/announce",
                    "http://127.0.0.1:6970/announce"
                ],
                vec!["http://127.0.0.1:6971/announce"],
            ]
        );
    }

    #[test]
    fn unsorted_info_dict_hashes_raw_bytes() {
        // Unsorted keys are accepted. Oracle: Python's hashlib.sha1 over the raw info slice of
        // testdata/unsorted.torrent.
        let m = fixture(UNSORTED, "f405af22ccb2fd160f17efb385966c04d01e4edd");
        let start = UNSORTED
            .windows(6)
            .position(|w| w == b"4:info")
            .expect("fixture has info")
            + 6;
        let raw = &UNSORTED[start..UNSORTED.len() - 1];
        assert_eq!(m.info_bytes, raw);
        assert_eq!(m.info_hash, <[u8; 20]>::from(Sha1::digest(raw)));
        // transmission-show 3.00 re-encodes with sorted keys and prints single.torrent's hash
        // for this file; the sorted re-encoding must hash differently from ours.
        let mut sorted = bencode::decode(raw).expect("valid");
        if let Value::Dict(entries) = &mut sorted {
            entries.sort_by(|a, b| a.0.cmp(b.0));
        }
        let sorted_hash = hex(&Sha1::digest(sorted.encode()));
        assert_eq!(sorted_hash, "fe59fb41e67d5a8c81840c8782344e1b5f9139bc");
        assert_ne!(m.info_hash_hex(), sorted_hash);
    }

    #[test]
    fn lava_torrent_built_file() {
        let dir = std::env::temp_dir().join(format!("strand-meta-{}", std::process::id()));
        let root = dir.join("payload");
        std::fs::create_dir_all(root.join("sub")).expect("temp dir");
        std::fs::write(root.join("a.bin"), vec![7u8; 40000]).expect("write");
        std::fs::write(root.join("sub").join("b.bin"), vec![9u8; 30000]).expect("write");
        let torrent = lava_torrent::torrent::v1::TorrentBuilder::new(&root, 32768)
            .set_announce(Some("http://127.0.0.1:6969/announce".to_string()))
            .build()
            .expect("lava_torrent builds");
        let bytes = torrent.clone().encode().expect("lava_torrent encodes");
        std::fs::remove_dir_all(&dir).expect("cleanup");

        let m = Metainfo::from_bytes(&bytes).expect("we parse lava_torrent output");
        assert_eq!(m.name, "payload");
        assert_eq!(m.geometry.piece_len(), 32768);
        assert_eq!(m.geometry.total_len(), 70000);
        assert_eq!(m.geometry.piece_count(), 3);
        let mut files: Vec<(PathBuf, u64)> =
            m.files.iter().map(|f| (f.path.clone(), f.length)).collect();
        files.sort();
        assert_eq!(
            files,
            [
                (PathBuf::from("payload/a.bin"), 40000),
                (PathBuf::from("payload/sub/b.bin"), 30000),
            ]
        );
        // lava_torrent writes sorted keys, so its re-encoding hash is comparable here.
        assert_eq!(m.info_hash_hex(), torrent.info_hash());
    }

    #[test]
    fn from_info_bytes_matches_from_bytes() {
        let full = Metainfo::from_bytes(MULTI).expect("valid");
        let tiers = vec![vec!["http://127.0.0.1:1/a".to_string()]];
        let m = Metainfo::from_info_bytes(&full.info_bytes, tiers.clone()).expect("valid");
        assert_eq!(m.info_hash, full.info_hash);
        assert_eq!(m.files, full.files);
        assert_eq!(m.trackers, tiers);
        assert_eq!(m.created_by, None);
    }

    #[test]
    fn unsafe_names_are_refused() {
        let cases = [
            (
                "../evil",
                "info.name: component \"../evil\" contains a path separator",
            ),
            ("..", "info.name: component \"..\" is not allowed"),
            (".", "info.name: component \".\" is not allowed"),
            ("/etc", "info.name: component \"/etc\" is an absolute path"),
            ("C:", "info.name: component \"C:\" has a drive prefix"),
            (
                "c:evil",
                "info.name: component \"c:evil\" has a drive prefix",
            ),
            (
                "..\\b",
                "info.name: component \"..\\\\b\" contains a path separator that forms \"..\" or \".\"",
            ),
            ("a\0b", "info.name: component \"a\\0b\" contains a NUL byte"),
            ("", "info.name: component \"\" is empty"),
        ];
        for (name, want) in cases {
            assert_eq!(error_text(&info_with("", name, 10, 16384)), want);
        }
        let bad_utf8 = info_with("", "\u{7f}", 10, 16384);
        let bad_utf8: Vec<u8> = bad_utf8
            .iter()
            .map(|&b| if b == 0x7f { 0xff } else { b })
            .collect();
        assert_eq!(error_text(&bad_utf8), "info.name: not valid UTF-8");
    }

    #[test]
    fn unsafe_file_paths_are_refused() {
        let cases: [(&[&str], &str); 7] = [
            (&["..", "x"], "component \"..\" is not allowed"),
            (&["/etc/x"], "component \"/etc/x\" is an absolute path"),
            (&["/etc", "x"], "component \"/etc\" is an absolute path"),
            (&["\\etc", "x"], "component \"\\\\etc\" is an absolute path"),
            (&["C:\\x"], "component \"C:\\\\x\" has a drive prefix"),
            (&["D:"], "component \"D:\" has a drive prefix"),
            (&["a/b"], "component \"a/b\" contains a path separator"),
        ];
        for (path, want) in cases {
            let files = format!(
                "l{}{}{}e",
                file_entry(1, &["ok"]),
                file_entry(1, &["ok2"]),
                file_entry(1, path)
            );
            let text = error_text(&multi_info("dir", &files, 3));
            assert_eq!(text, format!("info.files[2].path: {want}"));
        }
        let empty_path = format!("l{}e", file_entry(1, &[]));
        assert_eq!(
            error_text(&multi_info("dir", &empty_path, 1)),
            "info.files[0].path: is empty"
        );
    }

    #[test]
    fn colliding_paths_are_renamed() {
        let twice = format!("l{}{}e", file_entry(1, &["a"]), file_entry(1, &["a"]));
        let m = Metainfo::from_info_bytes(&multi_info("d", &twice, 2), Vec::new()).unwrap();
        assert_eq!(m.files[1].path, Path::new("d/a.1"));
        assert_eq!(
            m.warnings,
            ["info.files[1].path: d/a appears twice; saved as d/a.1"]
        );
        let file_as_dir = format!("l{}{}e", file_entry(1, &["a", "b"]), file_entry(1, &["a"]));
        let m = Metainfo::from_info_bytes(&multi_info("d", &file_as_dir, 2), Vec::new()).unwrap();
        assert_eq!(m.files[1].path, Path::new("d/a.1"));
        assert_eq!(
            m.warnings,
            ["info.files[1].path: d/a is also a folder; saved as d/a.1"]
        );
    }

    #[test]
    fn file_list_rules() {
        assert_eq!(
            error_text(&multi_info("d", "le", 1)),
            "info.files: is empty"
        );
        let zero_and_data = format!("l{}{}e", file_entry(0, &["z"]), file_entry(5, &["x"]));
        let m = Metainfo::from_info_bytes(&multi_info("d", &zero_and_data, 5), Vec::new())
            .expect("zero-length file is fine");
        assert_eq!(m.files[0].length, 0);
        assert_eq!(m.geometry.total_len(), 5);
        let all_zero = format!("l{}e", file_entry(0, &["z"]));
        assert_eq!(
            error_text(&multi_info("d", &all_zero, 0)),
            "info: torrent has no data"
        );
        let negative = "ld6:lengthi-1e4:pathl1:xeee";
        assert_eq!(
            error_text(&multi_info("d", negative, 1)),
            "info.files[0].length: -1 is negative"
        );
        let big = i64::MAX as u64;
        let overflow = format!(
            "l{}{}{}e",
            file_entry(big, &["a"]),
            file_entry(big, &["b"]),
            file_entry(big, &["c"])
        );
        assert_eq!(
            error_text(&multi_info("d", &overflow, 1)),
            "info.files: total length overflows"
        );
        let both = info_with("5:filesle", "x", 10, 16384);
        assert_eq!(error_text(&both), "info: has both length and files");
        let neither = b"d4:name1:x12:piece lengthi16384e6:pieces0:e";
        assert_eq!(
            error_text(neither),
            "missing field info.length or info.files"
        );
    }

    #[test]
    fn piece_rules() {
        assert_eq!(
            error_text(&info_with("", "x", 0, 16384)),
            "info: torrent has no data"
        );
        let zero = b"d6:lengthi5e4:name1:x12:piece lengthi0e6:pieces0:e";
        assert_eq!(error_text(zero), "info.piece length: 0 is not positive");
        let huge = b"d6:lengthi5e4:name1:x12:piece lengthi4294967296e6:pieces0:e";
        assert!(error_text(huge).starts_with("info.piece length: 4294967296 is larger"));
        let over_cap = b"d6:lengthi5e4:name1:x12:piece lengthi536870912e6:pieces0:e";
        assert!(error_text(over_cap).contains("268435456-byte limit"));
        let ragged = b"d6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces3:abce";
        assert_eq!(
            error_text(ragged),
            "info.pieces: length 3 is not a multiple of 20"
        );
        let mut short = info_with("", "x", 40000, 16384);
        let at = short
            .windows(10)
            .position(|w| w == b"6:pieces60")
            .expect("pieces key");
        short.splice(at..at + 11, b"6:pieces40:".iter().copied());
        short.truncate(short.len() - 21);
        short.push(b'e');
        assert_eq!(
            error_text(&short),
            "info.pieces: has 2 hashes, but 40000 bytes in pieces of 16384 need 3"
        );
        let m = Metainfo::from_info_bytes(&info_with("", "x", 40000, 16384), Vec::new())
            .expect("valid");
        assert_eq!(m.geometry.piece_count(), 3);
        assert_eq!(m.piece_hashes, vec![[0xab; 20]; 3]);
    }

    #[test]
    fn private_flag_and_types() {
        let private = info_with("", "x", 5, 16384);
        let private = [&private[..private.len() - 1], b"7:privatei1ee"].concat();
        assert!(
            Metainfo::from_info_bytes(&private, Vec::new())
                .expect("valid")
                .private
        );
        let not_private = [&private[..private.len() - 3], b"2ee"].concat();
        assert!(
            !Metainfo::from_info_bytes(&not_private, Vec::new())
                .expect("valid")
                .private
        );
        assert_eq!(
            error_text(
                b"d6:lengthi5e4:namei1e12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae"
            ),
            "info.name: expected a byte string"
        );
        assert_eq!(error_text(b"le"), "info: expected a dict");
        assert_eq!(
            error_text(b"d4:name"),
            "bencode: at byte 7: unexpected end of input"
        );
    }

    #[test]
    fn top_level_rules_and_trackers() {
        let info = info_with("", "x", 5, 16384);
        let wrap = |prefix: &str, suffix: &str| {
            [prefix.as_bytes(), b"4:info", &info, suffix.as_bytes(), b"e"].concat()
        };
        let tiers = wrap(
            "d8:announce7:http://13:announce-listll0:i1e6:http:aelel6:http:b6:http:cee",
            "",
        );
        let m = Metainfo::from_bytes(&tiers).expect("valid");
        assert_eq!(m.trackers, [vec!["http:a"], vec!["http:b", "http:c"]]);
        let empty_list = wrap("d8:announce7:http://13:announce-listle", "");
        let m = Metainfo::from_bytes(&empty_list).expect("valid");
        assert_eq!(m.trackers, [["http://"]]);
        let none = wrap("d", "13:creation datei1700000000e");
        let m = Metainfo::from_bytes(&none).expect("valid");
        assert!(m.trackers.is_empty());
        assert_eq!(m.creation_date, Some(1_700_000_000));
        let lossy = [b"d7:comment2:\xff!4:info".as_slice(), &info, b"e"].concat();
        let m = Metainfo::from_bytes(&lossy).expect("lossy comment is fine");
        assert_eq!(m.comment.as_deref(), Some("\u{fffd}!"));

        let e = Metainfo::from_bytes(b"d8:announce1:xe").expect_err("no info");
        assert_eq!(e.to_string(), "missing field info");
        let e = Metainfo::from_bytes(b"i1e").expect_err("not a dict");
        assert_eq!(e.to_string(), "torrent: expected a dict");
        let mut trailing = SINGLE.to_vec();
        trailing.extend(b"\n\0junk");
        let m = Metainfo::from_bytes(&trailing).expect("trailing data is ignored");
        assert_eq!(
            m.info_hash_hex(),
            "fe59fb41e67d5a8c81840c8782344e1b5f9139bc"
        );
        assert_eq!(m.warnings, ["6 bytes after the end of the torrent ignored"]);
        let dup = [b"d4:info".as_slice(), &info, b"4:info", &info, b"e"].concat();
        assert!(matches!(
            Metainfo::from_bytes(&dup),
            Err(Error::Bencode(bencode::Error {
                reason: "duplicate dict key",
                ..
            }))
        ));
    }

    #[test]
    fn load_reports_path() {
        let dir = std::env::temp_dir().join(format!("strand-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let good = dir.join("good.torrent");
        std::fs::write(&good, SINGLE).expect("write");
        let m = Metainfo::load(&good).expect("loads");
        assert_eq!(m.name, "hello.txt");

        let bad = dir.join("bad.torrent");
        std::fs::write(&bad, b"d4:infoi1ee").expect("write");
        let e = Metainfo::load(&bad).expect_err("not a torrent");
        assert_eq!(
            e.to_string(),
            format!(
                "{}: not a valid torrent: info: expected a dict",
                bad.display()
            )
        );

        let big = dir.join("big.torrent");
        let f = File::create(&big).expect("create");
        f.set_len(MAX_TORRENT_FILE_LEN + 1).expect("sparse file");
        let e = Metainfo::load(&big).expect_err("too large");
        assert!(matches!(e, Error::TooLarge { len, .. } if len == MAX_TORRENT_FILE_LEN + 1));
        assert!(e
            .to_string()
            .starts_with(&format!("{}: file is", big.display())));

        let absent = dir.join("absent.torrent");
        let e = Metainfo::load(&absent).expect_err("missing file");
        assert!(e
            .to_string()
            .starts_with(&format!("cannot read {}: ", absent.display())));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn to_torrent_bytes_keeps_the_info_hash_and_trackers() {
        let m = Metainfo::from_bytes(include_bytes!("../../testdata/multi.torrent")).unwrap();
        let back = Metainfo::from_bytes(&m.to_torrent_bytes()).unwrap();
        assert_eq!(back.info_hash, m.info_hash);
        assert_eq!(back.trackers, m.trackers);
        assert_eq!(back.files, m.files);
        let bare = Metainfo::from_info_bytes(&m.info_bytes, Vec::new()).unwrap();
        let back = Metainfo::from_bytes(&bare.to_torrent_bytes()).unwrap();
        assert_eq!((back.info_hash, back.trackers.len()), (m.info_hash, 0));
    }
}
