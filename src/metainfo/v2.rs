//! BEP 52 (BitTorrent v2) as far as a v1 client needs it: telling v1, hybrid and v2-only info
//! dicts apart, and checking that a hybrid's v2 `file tree` lists the same files as its v1
//! file list. A hybrid downloads as v1 (its info hash is the SHA-1 of the info dict); `file
//! tree` and `piece layers` are otherwise ignored.
//!
//! Pure functions, run on the main thread by [`super::Metainfo::from_info_bytes`].

use super::files::RawFile;
use super::{invalid, Error};
use crate::bencode::Value;

/// Which versions of the protocol a torrent's info dict serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// A plain v1 torrent.
    V1,
    /// A v1 + v2 hybrid (BEP 52), downloaded as v1.
    Hybrid,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::Hybrid => "hybrid (v1 + v2)",
        })
    }
}

/// Deepest `file tree` walked; the bencode decoder's own nesting limit bounds it too.
const MAX_TREE_DEPTH: usize = 100;

/// The version `info` declares: v1 without `meta version`, hybrid with `meta version` 2 and
/// a v1 file list. A v2-only dict (no v1 `pieces` or file list) and unknown versions are
/// refused with one line.
pub(crate) fn version(info: &Value<'_>) -> Result<Version, Error> {
    let Some(v) = info.get(b"meta version") else {
        return Ok(Version::V1);
    };
    match v.as_int() {
        Some(1) => Ok(Version::V1),
        Some(2) => {
            let v1_files = info.get(b"length").is_some() || info.get(b"files").is_some();
            if v1_files && info.get(b"pieces").is_some() {
                Ok(Version::Hybrid)
            } else {
                invalid(
                    "info",
                    "a v2-only torrent (BEP 52) has no v1 pieces; strand downloads v1 and \
                     hybrid (v1 + v2) torrents",
                )
            }
        }
        Some(n) => invalid("info.meta version", format!("version {n} is not supported")),
        None => invalid("info.meta version", "expected an integer"),
    }
}

/// Refuses a hybrid whose v2 `file tree` does not list the same files (path and length, in
/// order, pad files aside) as its v1 file list `v1`, as libtorrent does: a client of either
/// version would otherwise build a different folder from the same torrent.
pub(crate) fn check_hybrid(info: &Value<'_>, v1: &[RawFile<'_>]) -> Result<(), Error> {
    let Some(tree) = info.get(b"file tree") else {
        return invalid("info", "hybrid torrent (BEP 52) without a file tree");
    };
    let mut v2 = Vec::new();
    walk(tree, &mut Vec::new(), &mut v2)?;
    let show = |f: Option<&RawFile<'_>>| match f {
        None => "nothing".to_string(),
        Some((path, len)) => {
            let parts: Vec<String> = path
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            format!("{} ({len} bytes)", parts.join("/"))
        }
    };
    let count = v1.len().max(v2.len());
    for i in 0..count {
        let (a, b) = (v1.get(i), v2.get(i));
        if a != b {
            return invalid(
                "info",
                format!(
                    "hybrid torrent (BEP 52) whose v1 and v2 file lists disagree: file {} \
                     is {} in v1 but {} in v2",
                    i + 1,
                    show(a),
                    show(b)
                ),
            );
        }
    }
    Ok(())
}

/// Collects the files of a `file tree` node, depth first in key order, as (path below the
/// torrent's name, length). For a single-file torrent the one path is the file's name.
fn walk<'a>(
    node: &Value<'a>,
    path: &mut Vec<&'a [u8]>,
    out: &mut Vec<RawFile<'a>>,
) -> Result<(), Error> {
    let Some(entries) = node.as_dict() else {
        return invalid("info.file tree", "expected a dict");
    };
    if path.len() > MAX_TREE_DEPTH {
        return invalid("info.file tree", "is nested too deeply");
    }
    for (key, child) in entries {
        if key.is_empty() {
            let length = child.get(b"length").and_then(Value::as_int);
            let Some(length) = length.and_then(|n| u64::try_from(n).ok()) else {
                return invalid("info.file tree", "a file has no valid length");
            };
            let attr = child.get(b"attr").and_then(Value::as_bytes).unwrap_or(b"");
            if !attr.contains(&b'p') && !attr.contains(&b'l') {
                out.push((path.clone(), length));
            }
            continue;
        }
        path.push(key);
        walk(child, path, out)?;
        path.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode;

    fn files(tree: &str) -> Vec<(String, u64)> {
        let v = bencode::decode(tree.as_bytes()).expect("bencode");
        let mut out = Vec::new();
        walk(&v, &mut Vec::new(), &mut out).expect("valid tree");
        out.into_iter()
            .map(|(p, l)| {
                let p: Vec<&str> = p
                    .iter()
                    .map(|c| std::str::from_utf8(c).expect("utf8"))
                    .collect();
                (p.join("/"), l)
            })
            .collect()
    }

    #[test]
    fn file_tree_walk_in_key_order() {
        let tree = "d5:a.txtd0:d6:lengthi3eee3:subd5:b.txtd0:d6:lengthi5eeee1:zd0:d6:lengthi0eeee";
        assert_eq!(
            files(tree),
            [
                ("a.txt".to_string(), 3),
                ("sub/b.txt".to_string(), 5),
                ("z".to_string(), 0)
            ]
        );
    }

    #[test]
    fn versions() {
        let v = |s: &str| version(&bencode::decode(s.as_bytes()).expect("bencode"));
        assert_eq!(v("d4:name1:xe").expect("v1"), Version::V1);
        assert_eq!(v("d12:meta versioni1ee").expect("v1"), Version::V1);
        assert_eq!(
            v("d6:lengthi1e12:meta versioni2e6:pieces0:e").expect("hybrid"),
            Version::Hybrid
        );
        let e = v("d9:file treede12:meta versioni2ee").expect_err("v2 only");
        assert!(e.to_string().contains("v2-only torrent (BEP 52)"), "{e}");
        let e = v("d12:meta versioni3ee").expect_err("v3");
        assert_eq!(
            e.to_string(),
            "info.meta version: version 3 is not supported"
        );
    }
}
