//! Choosing which files of a torrent to download: `--only 1,3-5` and `--exclude GLOB`.
//!
//! Pure functions, called by the command line before a download starts. Files are numbered
//! from 1 in torrent order, as `strand info` shows them; globs match the path `strand info`
//! shows (`name/dir/file` for a multi-file torrent), where `*` matches any run of characters,
//! `/` included, and `?` matches one character. A pattern may match any whole run of the
//! path's parts, so `name/dir`, `dir`, `dir/*` and `file.txt` all work: a folder takes
//! everything under it.

/// A selection the user wrote that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectError(pub String);

impl std::fmt::Display for SelectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SelectError {}

/// Which of `paths` to download: those named by `only` (all when `None`), minus those matching
/// any of `exclude`. Refuses an empty choice.
pub fn choose(
    paths: &[String],
    only: Option<&str>,
    exclude: &[String],
) -> Result<Vec<bool>, SelectError> {
    let mut chosen = match only {
        None => vec![true; paths.len()],
        Some(list) => parse_only(list, paths.len())?,
    };
    for (c, path) in chosen.iter_mut().zip(paths) {
        if exclude.iter().any(|g| path_matches(g, path)) {
            *c = false;
        }
    }
    if !chosen.contains(&true) {
        return Err(SelectError(
            "the selection leaves no file to download".into(),
        ));
    }
    Ok(chosen)
}

/// The patterns of `exclude` that match none of `paths` (the user probably mistyped them).
pub fn unmatched<'a>(paths: &[String], exclude: &'a [String]) -> Vec<&'a str> {
    exclude
        .iter()
        .filter(|g| !paths.iter().any(|p| path_matches(g, p)))
        .map(String::as_str)
        .collect()
}

/// Whether `pattern` matches `path` (parts separated by `/`) or any whole run of its parts:
/// a folder at any depth, a file name, or a tail such as `dir/*`.
pub(crate) fn path_matches(pattern: &str, path: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    let starts = std::iter::once(0).chain(path.match_indices('/').map(|(i, _)| i + 1));
    starts.into_iter().any(|start| {
        let tail = &path[start..];
        let ends = tail.match_indices('/').map(|(i, _)| i).chain([tail.len()]);
        ends.into_iter()
            .any(|end| glob_match(pattern.as_bytes(), &tail.as_bytes()[..end]))
    })
}

/// Parses `1,3-5` into a mask over `count` files numbered from 1.
pub fn parse_only(list: &str, count: usize) -> Result<Vec<bool>, SelectError> {
    let mut mask = vec![false; count];
    for part in list.split(',').map(str::trim) {
        let bad = || SelectError(format!("--only: '{part}' is not a file number or range"));
        let (from, to) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>(), b.trim().parse::<usize>()),
            None => (part.parse::<usize>(), part.parse::<usize>()),
        };
        let (from, to) = (from.map_err(|_| bad())?, to.map_err(|_| bad())?);
        if from > to {
            return Err(SelectError(format!(
                "--only: '{part}' is a reversed range; write {to}-{from}"
            )));
        }
        if from == 0 || to > count {
            return Err(SelectError(format!(
                "--only: '{part}' is outside the files 1-{count}"
            )));
        }
        for m in &mut mask[from - 1..to] {
            *m = true;
        }
    }
    Ok(mask)
}

/// A magnet link's BEP 53 `so` ranges (0-based indices into the info dict's file list, pad
/// files included) as an `--only` list over the files `strand info` lists, where
/// `listed[k]` is the info-dict index of listed file `k + 1`. Indices past the end and pad
/// files are skipped; a selection that names no listed file is refused.
pub fn only_from_so(ranges: &[(usize, usize)], listed: &[usize]) -> Result<String, SelectError> {
    let numbers: Vec<String> = listed
        .iter()
        .enumerate()
        .filter(|(_, &i)| ranges.iter().any(|&(a, b)| (a..=b).contains(&i)))
        .map(|(k, _)| (k + 1).to_string())
        .collect();
    if numbers.is_empty() {
        return Err(SelectError(
            "the magnet link's so= selection names no file of the torrent".into(),
        ));
    }
    Ok(numbers.join(","))
}

/// Whether `text` matches `pattern`, where `*` is any run of bytes and `?` any one byte.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it is currently standing for.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> Vec<String> {
        [
            "t/a.mkv",
            "t/docs/readme.txt",
            "t/docs/notes.txt",
            "t/b.mkv",
            "t/sample.mkv",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn only_ranges() {
        assert_eq!(
            parse_only("1,3-4", 5).unwrap(),
            vec![true, false, true, true, false]
        );
        assert!(parse_only("0", 5).is_err());
        assert!(parse_only("6", 5).is_err());
        assert!(parse_only("4-2", 5).is_err());
        assert!(parse_only("x", 5).is_err());
        assert!(parse_only("1,,2", 5).is_err());
    }

    #[test]
    fn magnet_so_becomes_only_over_listed_files() {
        // Info-dict files: 0 a, 1 pad, 2 b, 3 pad, 4 c; `info` lists a, b, c as 1, 2, 3.
        let listed = [0, 2, 4];
        assert_eq!(only_from_so(&[(2, 4)], &listed).unwrap(), "2,3");
        assert_eq!(only_from_so(&[(0, 0), (9, 12)], &listed).unwrap(), "1");
        assert!(only_from_so(&[(1, 1), (3, 3)], &listed).is_err());
        assert!(only_from_so(&[(5, 9)], &listed).is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*.txt", b"t/docs/readme.txt"));
        assert!(glob_match(b"t/docs/*", b"t/docs/notes.txt"));
        assert!(glob_match(b"*sample*", b"t/sample.mkv"));
        assert!(glob_match(b"t/?.mkv", b"t/a.mkv"));
        assert!(!glob_match(b"t/?.mkv", b"t/sample.mkv"));
        assert!(!glob_match(b"*.txt", b"t/a.mkv"));
        assert!(glob_match(b"**", b""));
        assert!(!glob_match(b"a", b""));
    }

    #[test]
    fn a_pattern_matches_folders_names_and_tails() {
        let p = "many/dir0/sub/file1.txt";
        for yes in [
            "many/dir0",
            "many/dir0/",
            "dir0",
            "dir0/*",
            "file1.txt",
            "sub/file1.txt",
            "*.txt",
            "many/*",
            p,
        ] {
            assert!(path_matches(yes, p), "{yes}");
        }
        for no in ["dir", "many/dir", "ir0", "file1", "dir1/*", "many/sub"] {
            assert!(!path_matches(no, p), "{no}");
        }
        let chosen = choose(&paths(), None, &["docs".to_string()]).unwrap();
        assert_eq!(chosen, vec![true, false, false, true, true], "a folder");
        let chosen = choose(&paths(), None, &["b.mkv".to_string()]).unwrap();
        assert_eq!(chosen, vec![true, true, true, false, true], "a bare name");
        let exclude = vec!["dir0".to_string(), "nothing".to_string()];
        assert_eq!(unmatched(&[p.to_string()], &exclude), vec!["nothing"]);
    }

    #[test]
    fn choose_combines_only_and_exclude() {
        let exclude = vec!["*.txt".to_string(), "*sample*".to_string()];
        let chosen = choose(&paths(), None, &exclude).unwrap();
        assert_eq!(chosen, vec![true, false, false, true, false]);
        let chosen = choose(&paths(), Some("1-3"), &["*notes*".to_string()]).unwrap();
        assert_eq!(chosen, vec![true, true, false, false, false]);
        assert!(choose(&paths(), Some("2"), &["*.txt".to_string()]).is_err());
    }
}
