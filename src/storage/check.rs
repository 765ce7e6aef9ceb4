//! Verifying data already on disk: hashes every piece from the files and reports which match.
//!
//! Runs on the thread that calls [`check`] (the main thread, before seeding or resuming), which
//! spawns `threads` scoped worker threads. Each worker owns its piece buffer and one open file
//! handle at a time; workers take piece indices from a shared counter (so together they read
//! the files roughly front to back) and send one report per piece over a crossbeam channel.
//! The calling thread owns the result and calls the progress callback. [`hash_pieces`] is the
//! shared engine; `crate::create` uses it too.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use sha1::{Digest, Sha1};

use super::{FileMap, StorageError};
use crate::bitfield::Bitfield;
use crate::metainfo::Metainfo;

/// Hashes every piece of `meta` from the files under `root` and returns the pieces whose
/// SHA-1 matches `meta.piece_hashes`.
///
/// Files live at `root.join(file.path)`, as the writer puts them. A missing file, or one
/// shorter than the torrent says, only makes the pieces touching its missing bytes absent;
/// any other I/O error (permission denied, a folder where a file should be) is returned with
/// its path. `threads` workers (at least one) do the reading and hashing; `progress` is called
/// on the calling thread with (pieces checked, piece count) after each piece.
pub fn check(
    map: &FileMap,
    meta: &Metainfo,
    threads: usize,
    progress: &mut dyn FnMut(u32, u32),
) -> Result<Bitfield, StorageError> {
    let total = meta.geometry.piece_count();
    let mut have = Bitfield::new(total);
    let mut done = 0;
    hash_pieces(map, threads, &mut |piece, data| {
        let good = matches!(data, PieceData::Hash(h)
                if meta.piece_hashes.get(piece as usize) == Some(&h));
        if good {
            have.set(piece);
        }
        done += 1;
        progress(done, total);
        true
    })?;
    Ok(have)
}

/// What reading one piece from disk gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PieceData {
    /// All of the piece's bytes were read; this is their SHA-1.
    Hash([u8; 20]),
    /// File `file` (an index into the file list) is missing or too short for this piece.
    Absent {
        /// Index of the first missing or short file the piece needs.
        file: usize,
    },
}

/// One worker's report to the calling thread.
enum Report {
    Piece(u32, PieceData),
    Failed(StorageError),
}

/// Reads and hashes every piece of a torrent whose files are `files` (their lengths define
/// the layout) stored at `paths`, using `threads` workers (at least one, at most one per
/// piece).
///
/// `on_piece` runs on the calling thread once per piece, in completion order (not piece
/// order); returning false stops the workers early. The first I/O error other than a missing
/// or short file stops everything and is returned.
pub(crate) fn hash_pieces(
    map: &FileMap,
    threads: usize,
    on_piece: &mut dyn FnMut(u32, PieceData) -> bool,
) -> Result<(), StorageError> {
    let geometry = map.geometry();
    let count = geometry.piece_count();
    let workers = threads.clamp(1, (count as usize).max(1));
    let next = AtomicU32::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || {
                let mut worker = Worker {
                    map,
                    buf: vec![0; geometry.piece_len() as usize],
                    open: None,
                };
                while !stop.load(Ordering::Relaxed) {
                    let piece = next.fetch_add(1, Ordering::Relaxed);
                    if piece >= count {
                        break;
                    }
                    let report = match worker.hash(piece) {
                        Ok(data) => Report::Piece(piece, data),
                        Err(e) => Report::Failed(e),
                    };
                    if tx.send(report).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut failure = None;
        let mut running = true;
        for report in rx {
            match report {
                Report::Piece(piece, data) => {
                    if running && failure.is_none() && !on_piece(piece, data) {
                        running = false;
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                Report::Failed(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(e);
                }
            }
        }
        failure.map_or(Ok(()), Err)
    })
}

/// One worker's state: its piece buffer and the one file it has open.
struct Worker<'a> {
    map: &'a FileMap,
    buf: Vec<u8>,
    open: Option<(usize, File)>,
}

impl Worker<'_> {
    /// Reads piece `piece` into the buffer and hashes it.
    fn hash(&mut self, piece: u32) -> Result<PieceData, StorageError> {
        let size = self.map.geometry().piece_size(piece);
        if self.map.has_padding() {
            // Padding has no run: its bytes must read as zeros.
            self.buf.fill(0);
        }
        for run in self.map.runs(piece, 0, size) {
            let path = &self.map.placements()[run.file].path;
            let file = match &mut self.open {
                Some((index, file)) if *index == run.file => file,
                slot => match File::open(path) {
                    Ok(file) => &mut slot.insert((run.file, file)).1,
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        return Ok(PieceData::Absent { file: run.file })
                    }
                    Err(source) => return Err(StorageError::new("open", path, source)),
                },
            };
            let at = run.buf_offset;
            match file.read_exact_at(&mut self.buf[at..at + run.len], run.offset) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    return Ok(PieceData::Absent { file: run.file })
                }
                Err(source) => return Err(StorageError::new("read", path, source)),
            }
        }
        Ok(PieceData::Hash(
            Sha1::digest(&self.buf[..size as usize]).into(),
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::geometry::Geometry;
    use crate::metainfo::FileInfo;
    use std::path::{Path, PathBuf};

    /// A fresh folder under the system temp dir, removed on drop.
    pub(crate) struct Scratch(pub(crate) PathBuf);

    impl Scratch {
        /// A new empty folder whose name includes `tag`, the process id and a counter.
        pub(crate) fn new(tag: &str) -> Scratch {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("strand-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create scratch dir");
            Scratch(dir)
        }

        /// Writes `data` to `rel` under the folder, creating parent folders.
        pub(crate) fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
            let path = self.0.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create parent");
            }
            std::fs::write(&path, data).expect("write test file");
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Deterministic, non-repeating test bytes.
    pub(crate) fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
            .collect()
    }

    /// A multi-file metainfo named `t` whose hashes come from `contents`, the files' bytes.
    fn meta(contents: &[(&str, Vec<u8>)], piece_len: u32) -> Metainfo {
        let all: Vec<u8> = contents.iter().flat_map(|(_, d)| d.clone()).collect();
        let files = contents
            .iter()
            .map(|(name, d)| FileInfo::data(Path::new("t").join(name), d.len() as u64))
            .collect();
        Metainfo::for_test(
            [0; 20],
            Geometry::new(all.len() as u64, piece_len),
            all.chunks(piece_len as usize)
                .map(|c| Sha1::digest(c).into())
                .collect(),
            files,
        )
    }

    /// Writes `contents` under `dir/t`.
    fn put(dir: &Scratch, contents: &[(&str, Vec<u8>)]) {
        for (name, data) in contents {
            dir.write(&format!("t/{name}"), data);
        }
    }

    fn missing(have: &Bitfield) -> Vec<u32> {
        (0..have.len()).filter(|&i| !have.has(i)).collect()
    }

    /// Files of 40000, 0, 30000 and 25000 bytes in 16 KiB pieces: 6 pieces, piece 2 spans
    /// the first and third files (32768..49152), piece 3 the third alone, piece 4 the third
    /// and fourth (65536..81920).
    fn sample() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("a.bin", bytes(40000, 1)),
            ("empty", Vec::new()),
            ("sub/c.bin", bytes(30000, 2)),
            ("d.bin", bytes(25000, 3)),
        ]
    }

    #[test]
    fn all_good_gives_a_full_bitfield_and_progress() {
        let (dir, m) = sample_on_disk("check-good");
        assert_eq!(m.geometry.piece_count(), 6);
        for threads in [1, 2, 4, 100] {
            let mut calls = Vec::new();
            let have = check(&FileMap::plain(&dir.0, &m), &m, threads, &mut |d, t| {
                calls.push((d, t))
            })
            .unwrap();
            assert!(
                have.is_full(),
                "threads {threads}: missing {:?}",
                missing(&have)
            );
            assert_eq!(calls, (1..=6).map(|d| (d, 6)).collect::<Vec<_>>());
        }
    }

    /// The sample written under a new scratch folder `name`, and its metainfo.
    fn sample_on_disk(name: &str) -> (Scratch, Metainfo) {
        let dir = Scratch::new(name);
        let contents = sample();
        put(&dir, &contents);
        (dir, meta(&contents, 16384))
    }

    /// Checks `dir` against `m` on `threads` threads, without progress.
    fn check_quietly(dir: &Path, m: &Metainfo, threads: usize) -> Result<Bitfield, StorageError> {
        check(&FileMap::plain(dir, m), m, threads, &mut |_, _| {})
    }

    /// The pieces a check on `threads` threads finds missing once `spoil` has changed the
    /// sample's files (their bytes, or which are there) after its metainfo was made.
    fn missing_after(
        name: &str,
        threads: usize,
        spoil: impl FnOnce(&mut Vec<(&str, Vec<u8>)>),
    ) -> Vec<u32> {
        let dir = Scratch::new(name);
        let mut contents = sample();
        let m = meta(&contents, 16384);
        spoil(&mut contents);
        put(&dir, &contents);
        missing(&check_quietly(&dir.0, &m, threads).unwrap())
    }

    #[test]
    fn spoiled_files_lose_exactly_their_pieces() {
        type Spoil = fn(&mut Vec<(&str, Vec<u8>)>);
        // (scratch folder, threads, how the files are spoiled, the pieces lost)
        let cases: [(&str, usize, Spoil, &[u32]); 5] = [
            // Byte 20000 of c.bin is torrent byte 60000, in piece 3.
            ("check-corrupt", 2, |c| c[2].1[20000] ^= 0x55, &[3]),
            // c.bin is torrent bytes 40000..70000: pieces 2, 3 and 4.
            ("check-missing", 2, |c| drop(c.remove(2)), &[2, 3, 4]),
            // Nothing on disk at all: nothing good, and still no error.
            ("check-nothing", 1, |c| c.clear(), &[0, 1, 2, 3, 4, 5]),
            // Cut d.bin (torrent bytes 70000..95000) to 20000 bytes: bytes 90000.. are gone,
            // which lie in piece 5 (81920..95000).
            ("check-short", 1, |c| c[3].1.truncate(20000), &[5]),
            // The last byte of a.bin (torrent byte 39999) is in piece 2, which continues into
            // c.bin; corrupting it must lose piece 2 only, while piece 3 (all c.bin) survives.
            ("check-span", 3, |c| c[0].1[39999] ^= 1, &[2]),
        ];
        for (name, threads, spoil, lost) in cases {
            assert_eq!(missing_after(name, threads, spoil), lost, "{name}");
        }
    }

    #[test]
    fn other_io_errors_are_errors_with_the_path() {
        let (dir, m) = sample_on_disk("check-dir");
        // A folder where a.bin should be: opening works, reading fails with EISDIR.
        std::fs::remove_file(dir.0.join("t/a.bin")).unwrap();
        std::fs::create_dir(dir.0.join("t/a.bin")).unwrap();
        let err = check_quietly(&dir.0, &m, 2).unwrap_err();
        assert_eq!(err.path, dir.0.join("t/a.bin"));
        assert!(err.to_string().contains("t/a.bin"), "{err}");
    }

    #[test]
    fn hash_pieces_stops_when_asked() {
        let (dir, m) = sample_on_disk("check-stop");
        let mut seen = 0;
        hash_pieces(&FileMap::plain(&dir.0, &m), 1, &mut |_, _| {
            seen += 1;
            false
        })
        .unwrap();
        assert_eq!(seen, 1, "on_piece ran again after asking to stop");
    }
}
