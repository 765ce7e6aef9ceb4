//! The file list of a v1 info dict (`info.files`), turned into safe relative paths.
//!
//! Pure functions, run on the main thread by [`super::Metainfo::from_info_bytes`]. What they
//! own is what they return: the checked [`FileInfo`] list and one warning line for each odd
//! but harmless thing they changed. Components that would leave the download folder (`..`,
//! absolute paths, drive prefixes, separators that form them) are refused; everything else
//! that libtorrent accepts is accepted: an empty component is dropped, a backslash inside a
//! name becomes `_`, a second file with the same path is renamed `name.1.ext`, a symlink entry
//! (BEP 47 `attr` `l`) is listed but not created, and a pad file (BEP 47 `attr` `p`, or
//! libtorrent's `.pad/N` and BitComet's `_____padding_file_` names) never touches the disk.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{invalid, missing, non_negative, Error};
use crate::bencode::Value;

/// What kind of entry a file of the torrent is (BEP 47 `attr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// An ordinary file, created on disk.
    Data,
    /// Padding (`attr` `p`): its bytes are zeros when hashing and serving, never on disk,
    /// never asked of peers, and `info` does not list it.
    Padding,
    /// A symbolic link (`attr` `l`): zero bytes of the torrent, not created on disk.
    Symlink,
}

/// One file of the torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Relative path; for a multi-file torrent it starts with the torrent's name. Every
    /// component is a normal, non-empty name (no `..`, `.`, root, drive prefix or separator).
    pub path: PathBuf,
    /// Length in bytes; may be zero.
    pub length: u64,
    /// Data, padding or symlink.
    pub kind: FileKind,
}

impl FileInfo {
    /// An ordinary file.
    pub fn data(path: impl Into<PathBuf>, length: u64) -> FileInfo {
        FileInfo {
            path: path.into(),
            length,
            kind: FileKind::Data,
        }
    }

    /// Whether the file is padding (BEP 47).
    pub fn is_padding(&self) -> bool {
        self.kind == FileKind::Padding
    }

    /// Whether the file exists on disk (padding and symlinks do not).
    pub fn on_disk(&self) -> bool {
        self.kind == FileKind::Data
    }
}

/// A v1 file as the info dict spelled it: the raw path components below the torrent's name
/// and the length, for comparing with a hybrid torrent's v2 file tree.
pub(crate) type RawFile<'a> = (Vec<&'a [u8]>, u64);

/// Parses `info.files` into paths under `name`. Returns the files and, for every data file in
/// order, its raw path and length (for the hybrid check). Odd but harmless entries are fixed
/// with a line in `warnings`.
pub(crate) fn parse_files<'a>(
    list: &Value<'a>,
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<(Vec<FileInfo>, Vec<RawFile<'a>>), Error> {
    let Some(entries) = list.as_list() else {
        return invalid("info.files", "expected a list");
    };
    if entries.is_empty() {
        return invalid("info.files", "is empty");
    }
    let mut files = Vec::with_capacity(entries.len());
    let mut raw = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("info.files[{i}]");
        if entry.as_dict().is_none() {
            return invalid(&field, "expected a dict");
        }
        let attr = entry.get(b"attr").and_then(Value::as_bytes).unwrap_or(b"");
        let mut kind = if attr.contains(&b'p') {
            FileKind::Padding
        } else if attr.contains(&b'l') {
            FileKind::Symlink
        } else {
            FileKind::Data
        };
        let length_field = format!("{field}.length");
        // Symlinks take no bytes of the torrent, whatever `length` says (as in libtorrent).
        let length = match (kind, entry.get(b"length")) {
            (FileKind::Symlink, _) => 0,
            (_, Some(v)) => non_negative(v, &length_field)?,
            (_, None) => return Err(missing(&length_field)),
        };
        let path_field = format!("{field}.path");
        let components = match entry.get(b"path") {
            None if kind == FileKind::Padding => Vec::new(),
            None => return Err(missing(&path_field)),
            Some(v) => match v.as_list() {
                Some(c) if !c.is_empty() || kind == FileKind::Padding => c.to_vec(),
                Some(_) => return invalid(&path_field, "is empty"),
                None => return invalid(&path_field, "expected a list"),
            },
        };
        let mut raw_path = Vec::with_capacity(components.len());
        for c in &components {
            let Some(bytes) = c.as_bytes() else {
                return invalid(&path_field, "component is not a byte string");
            };
            raw_path.push(bytes);
        }
        if is_pad_name(&raw_path, length) {
            kind = FileKind::Padding;
        }
        let mut path = PathBuf::from(name);
        if raw_path.is_empty() {
            // Only a pad file gets here: it needs no path, since it is never on disk.
            path.push(".pad");
            path.push(length.to_string());
            warnings.push(format!(
                "{field}: pad file without a path, called {}",
                path.display()
            ));
        }
        let mut dropped_empty = false;
        for bytes in &raw_path {
            let Ok(s) = std::str::from_utf8(bytes) else {
                return invalid(
                    &path_field,
                    format!(
                        "component {:?} is not valid UTF-8",
                        String::from_utf8_lossy(bytes)
                    ),
                );
            };
            if s.is_empty() {
                dropped_empty = true;
                continue;
            }
            let clean = clean_component(s, &path_field)?;
            if clean != s {
                warnings.push(format!(
                    "{path_field}: backslash in {s:?} replaced, the name is {clean:?}"
                ));
            }
            path.push(clean);
        }
        if dropped_empty {
            if path.as_os_str().len() == name.len() {
                path.push("_");
            }
            warnings.push(format!(
                "{path_field}: empty component dropped, the path is {}",
                path.display()
            ));
        }
        if kind == FileKind::Symlink {
            warnings.push(format!(
                "{field}: {} is a symbolic link; it is not created",
                path.display()
            ));
        }
        if kind == FileKind::Data {
            raw.push((raw_path, length));
        }
        files.push(FileInfo { path, length, kind });
    }
    rename_collisions(&mut files, warnings);
    Ok((files, raw))
}

/// libtorrent's `.pad/N` (N being the length) and BitComet's `_____padding_file_…` entries
/// are padding even without `attr` `p`.
fn is_pad_name(raw_path: &[&[u8]], length: u64) -> bool {
    let pad_dir = raw_path.len() == 2
        && raw_path[0] == b".pad"
        && raw_path[1] == length.to_string().as_bytes();
    let bitcomet = raw_path
        .last()
        .is_some_and(|c| c.windows(18).any(|w| w == b"_____padding_file_"));
    pad_dir || bitcomet
}

/// A plain file or folder name from `c`, or an error if `c` could leave the download folder.
/// A backslash is a legal character on Unix but a separator on Windows: one that forms no
/// `..`, root or drive becomes `_`, so the file is portable and is never taken for a path.
pub(crate) fn clean_component(c: &str, field: &str) -> Result<String, Error> {
    let problem = if c.is_empty() {
        "is empty"
    } else if c.contains('\0') {
        "contains a NUL byte"
    } else if c.starts_with('/') || c.starts_with('\\') {
        "is an absolute path"
    } else if c.contains('/') {
        "contains a path separator"
    } else if c == "." || c == ".." {
        "is not allowed"
    } else if c.len() >= 2 && c.as_bytes()[0].is_ascii_alphabetic() && c.as_bytes()[1] == b':' {
        "has a drive prefix"
    } else if c.split('\\').any(|part| part == ".." || part == ".") {
        "contains a path separator that forms \"..\" or \".\""
    } else {
        return Ok(c.replace('\\', "_"));
    };
    invalid(field, format!("component {c:?} {problem}"))
}

/// Renames data files whose path is already taken, by an earlier file or by a folder of any
/// file, to `stem.N.ext` with the smallest free N, as libtorrent does. Padding and symlinks
/// are never on disk, so they take no path.
fn rename_collisions(files: &mut [FileInfo], warnings: &mut Vec<String>) {
    let mut folders: HashSet<PathBuf> = HashSet::new();
    for f in files.iter().filter(|f| f.on_disk()) {
        for dir in f.path.ancestors().skip(1) {
            if !dir.as_os_str().is_empty() {
                folders.insert(dir.to_path_buf());
            }
        }
    }
    // A new name must not take the path of a later file either.
    let originals: HashSet<PathBuf> = files
        .iter()
        .filter(|f| f.on_disk())
        .map(|f| f.path.clone())
        .collect();
    let mut taken: HashSet<PathBuf> = HashSet::new();
    for (i, f) in files.iter_mut().enumerate() {
        if !f.on_disk() {
            continue;
        }
        if !taken.contains(&f.path) && !folders.contains(&f.path) {
            taken.insert(f.path.clone());
            continue;
        }
        let why = if taken.contains(&f.path) {
            "appears twice"
        } else {
            "is also a folder"
        };
        let renamed = (1u64..)
            .map(|n| numbered(&f.path, n))
            .find(|p| !taken.contains(p) && !folders.contains(p) && !originals.contains(p))
            .unwrap_or_else(|| f.path.clone());
        warnings.push(format!(
            "info.files[{i}].path: {} {why}; saved as {}",
            f.path.display(),
            renamed.display()
        ));
        taken.insert(renamed.clone());
        f.path = renamed;
    }
}

/// `dir/stem.N.ext` for `dir/stem.ext` (`dir/name.N` when there is no extension).
fn numbered(path: &Path, n: u64) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let name = match (stem, path.extension()) {
        (Some(stem), Some(ext)) => format!("{stem}.{n}.{}", ext.to_string_lossy()),
        (Some(stem), None) => format!("{stem}.{n}"),
        (None, _) => format!("_.{n}"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode;

    fn parse(list: &str) -> Result<(Vec<FileInfo>, Vec<String>), String> {
        let value = bencode::decode(list.as_bytes()).expect("test list is bencode");
        let mut warnings = Vec::new();
        parse_files(&value, "t", &mut warnings)
            .map(|(files, _)| (files, warnings))
            .map_err(|e| e.to_string())
    }

    fn paths(files: &[FileInfo]) -> Vec<String> {
        files
            .iter()
            .map(|f| f.path.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn pad_files_by_attr_and_by_name() {
        let (files, warnings) = parse(
            "ld6:lengthi3e4:pathl1:aeed4:attr1:p6:lengthi5e4:pathl4:.pad1:5eed6:lengthi2e4:pathl4:.pad1:2eed6:lengthi1e4:pathl24:_____padding_file_0_____eed6:lengthi4e4:pathl4:.pad1:xeed6:lengthi4e4:pathl4:.pad1:5eee",
        )
        .expect("valid");
        let kinds: Vec<FileKind> = files.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                FileKind::Data,
                FileKind::Padding,
                FileKind::Padding,
                FileKind::Padding,
                FileKind::Data,
                FileKind::Data
            ]
        );
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn pad_files_may_share_a_path_or_have_none() {
        let (files, warnings) =
            parse("ld4:attr1:p6:lengthi5eed6:lengthi1e4:pathl1:aeed4:attr1:p6:lengthi5e4:pathl4:.pad1:5eed4:attr1:p6:lengthi5e4:pathl4:.pad1:5eee")
                .expect("valid");
        assert_eq!(paths(&files), ["t/.pad/5", "t/a", "t/.pad/5", "t/.pad/5"]);
        assert_eq!(
            warnings,
            ["info.files[0]: pad file without a path, called t/.pad/5"]
        );
    }

    #[test]
    fn symlinks_take_no_bytes_and_are_not_created() {
        let (files, warnings) =
            parse("ld4:attr1:l4:pathl4:linke12:symlink pathl1:aeed6:lengthi1e4:pathl1:aeee")
                .expect("valid");
        assert_eq!(files[0].kind, FileKind::Symlink);
        assert_eq!(files[0].length, 0);
        assert!(!files[0].on_disk());
        assert_eq!(
            warnings,
            ["info.files[0]: t/link is a symbolic link; it is not created"]
        );
    }

    #[test]
    fn empty_components_are_dropped() {
        let (files, warnings) =
            parse("ld6:lengthi1e4:pathl1:a0:1:beed6:lengthi1e4:pathl0:eee").expect("valid");
        assert_eq!(paths(&files), ["t/a/b", "t/_"]);
        assert_eq!(
            warnings,
            [
                "info.files[0].path: empty component dropped, the path is t/a/b",
                "info.files[1].path: empty component dropped, the path is t/_"
            ]
        );
    }

    #[test]
    fn duplicates_and_folder_clashes_are_renamed() {
        let (files, warnings) = parse(
            "ld6:lengthi1e4:pathl5:a.txteed6:lengthi1e4:pathl5:a.txteed6:lengthi1e4:pathl7:a.1.txteed6:lengthi1e4:pathl1:deed6:lengthi1e4:pathl1:d1:xeee",
        )
        .expect("valid");
        assert_eq!(
            paths(&files),
            ["t/a.txt", "t/a.2.txt", "t/a.1.txt", "t/d.1", "t/d/x"]
        );
        assert_eq!(
            warnings,
            [
                "info.files[1].path: t/a.txt appears twice; saved as t/a.2.txt",
                "info.files[3].path: t/d is also a folder; saved as t/d.1",
            ]
        );
    }

    #[test]
    fn backslashes_are_replaced_unless_they_leave_the_folder() {
        let (files, warnings) = parse("ld6:lengthi1e4:pathl5:a\\b.ceee").expect("valid");
        assert_eq!(paths(&files), ["t/a_b.c"]);
        assert_eq!(
            warnings,
            ["info.files[0].path: backslash in \"a\\\\b.c\" replaced, the name is \"a_b.c\""]
        );
        for (bad, why) in [
            ("4:..\\x", "contains a path separator that forms"),
            ("4:x\\..", "contains a path separator that forms"),
            ("3:\\ab", "is an absolute path"),
            ("4:C:\\x", "has a drive prefix"),
        ] {
            let e = parse(&format!("ld6:lengthi1e4:pathl{bad}eee")).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
