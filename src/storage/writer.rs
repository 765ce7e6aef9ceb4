//! The writer thread: puts verified pieces into the torrent's files with positional writes,
//! and keeps the fast-resume file up to date.
//!
//! Runs on its own thread ("writer"), fed by the hasher with [`WriteCommand`]s that hold only
//! verified data. It owns the open file handles for writing (nobody else writes to the files)
//! and the set of pieces on disk that the resume file records. After each piece it reports
//! [`DiskEvent::PieceWritten`] to the main thread. On the first failed write it saves the
//! resume file (without that piece), reports [`DiskEvent::Failed`] once, and stops.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, warn};

use super::{resume, FileMap, StorageError};
use crate::bitfield::Bitfield;
use crate::blocks::PieceBlocks;
use crate::messages::{DiskEvent, Event, WriteCommand};
use crate::metainfo::FileInfo;

/// The chosen files [`prepare`] opened, by file index, for the writer to keep using (at most
/// [`PREPARED_HANDLES`], or half the open-file limit; the writer opens any other file when it
/// first writes to it).
#[derive(Debug)]
pub(crate) struct Prepared(Vec<Option<File>>);

/// Handles [`prepare`] passes on to the writer at most: enough for the torrents people share
/// with thousands of files. Never more than half the open-file limit, which leaves the rest
/// to sockets and to the files the writer and the uploads open later.
const PREPARED_HANDLES: usize = 4096;

/// How many of its handles [`prepare`] keeps under an open-file limit of `limit`.
fn handles_to_keep(limit: u64) -> usize {
    usize::try_from(limit / 2)
        .unwrap_or(usize::MAX)
        .min(PREPARED_HANDLES)
}

/// Creates the folders and the chosen files of the torrent before any thread starts, so that a
/// missing permission or a bad folder is reported at once. Files that already exist keep their
/// content; every chosen file is set to its final length, sparse unless `preallocate`, which
/// reserves the disk space up front and fails at once when it is not there. Pad files and
/// symlink entries (BEP 47) are never created. The handles stay open for the writer (on 2,000
/// small files, opening each twice and asking for its folder each time cost 6 syscalls a file).
pub(crate) fn prepare(
    map: &FileMap,
    files: &[FileInfo],
    chosen: &[bool],
    preallocate: bool,
) -> Result<Prepared, StorageError> {
    let mut handles: Vec<Option<File>> = map.placements().iter().map(|_| None).collect();
    let keep = handles_to_keep(crate::limits::open_file_limit());
    let mut kept = 0;
    let mut folder: Option<&Path> = None;
    for (i, f) in files.iter().enumerate() {
        if !chosen.get(i).copied().unwrap_or(true) || !map.on_disk(i) {
            continue;
        }
        let path = &map.placements()[i].path;
        // Files of one folder come together in a torrent's list: one check per folder.
        if path.parent() != folder {
            folder = path.parent();
            if let Some(dir) = folder {
                create_folder(dir)?;
            }
        }
        let file = open_file(path)?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len != f.length {
            file.set_len(f.length)
                .map_err(|e| StorageError::new("resize", path, e))?;
        }
        if preallocate && f.length > 0 {
            allocate(&file, f.length)
                .map_err(|e| StorageError::new("allocate space for", path, e))?;
        }
        if kept < keep {
            if let Some(slot) = handles.get_mut(i) {
                *slot = Some(file);
                kept += 1;
            }
        }
    }
    Ok(Prepared(handles))
}

/// Reserves `len` bytes of disk for `file` (posix_fallocate: std has no way to do this).
fn allocate(file: &File, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len).map_err(|_| std::io::Error::other("file too large"))?;
    // SAFETY: the descriptor is open for writing and owned by `file` for the whole call.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

/// Bytes given to one `writev` at most (or one slice, if longer). The kernel may put a larger
/// write into large page-cache folios, and allocating those costs far more when the free
/// memory is cold: on this VM, after the page cache was dropped, `dd` wrote 1 GiB with 1.19 s
/// of system time in 1 MiB writes, 0.79 s in 256 KiB ones and 0.27 s in 64 KiB ones (0.39 s
/// in 16 KiB ones); strand's 1 MiB pieces, written whole, spent 36 % of their CPU there.
const WRITE_CHUNK: usize = 64 * 1024;

/// Writes every byte of `slices` at `offset` of `file`: a seek, then vectored writes of up to
/// [`WRITE_CHUNK`] bytes until all is written. The writer owns its handles, so nothing else
/// moves their position.
fn write_all_vectored_at(
    file: &mut File,
    mut slices: &mut [IoSlice<'_>],
    offset: u64,
) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    while !slices.is_empty() {
        let (mut take, mut bytes) = (1, slices[0].len());
        while take < slices.len() && bytes + slices[take].len() <= WRITE_CHUNK {
            bytes += slices[take].len();
            take += 1;
        }
        match file.write_vectored(&slices[..take]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Bytes written to one file before the writer starts their write-back itself; a file with
/// fewer waits for the next save's flush. Each start is a request of its own to the disk (on
/// this VM a doorbell to the virtual disk, which traps to the host): on 2,000 small files,
/// starting each piece's write-back as it landed took 15 % of the download's CPU, where a
/// save's `syncfs` writes them all in a few large batches. On a 1 GiB file, 4 MiB at a time
/// took 2.5 % less CPU than 1 MiB (1.90 against 1.95 s, 6 interleaved runs each).
const WRITE_BACK_FROM: u64 = 4 << 20;

/// A file written since the last save, and the span of it whose write-back the writer has not
/// started yet.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Unstarted {
    from: u64,
    to: u64,
    bytes: u64,
}

impl Unstarted {
    /// Counts `len` bytes written at `offset`. Once [`WRITE_BACK_FROM`] bytes wait, returns
    /// the span to write back as (offset, length), covering all of them, and starts over.
    fn add(&mut self, offset: u64, len: u64) -> Option<(u64, u64)> {
        let end = offset + len;
        if self.bytes == 0 {
            (self.from, self.to) = (offset, end);
        } else {
            (self.from, self.to) = (self.from.min(offset), self.to.max(end));
        }
        self.bytes += len;
        if self.bytes < WRITE_BACK_FROM {
            return None;
        }
        let span = (self.from, self.to - self.from);
        *self = Unstarted::default();
        Some(span)
    }
}

/// Starts the disk write of a range already written, without waiting for it
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`: std has no way to do this). The disk then works
/// while pieces still arrive, and the fsync before the next resume save finds little left to
/// write. Only a hint: durability is still the fsync's alone, so an error here is ignored.
fn start_write_back(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    // SAFETY: the descriptor is open and owned by `file` for the whole call; the call only
    // reads its arguments.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Most threads that flush files at once before a resume save.
const FLUSH_THREADS: usize = 8;

/// How many files each flushing thread takes when `count` files are dirty: all of them on
/// the writer's own thread when there is one, else spread over at most [`FLUSH_THREADS`].
fn flush_share(count: usize) -> usize {
    count.div_ceil(FLUSH_THREADS).max(1)
}

/// Makes every file of `files` durable and returns the ones that failed: with one `syncfs`
/// per file system when there are at least [`SYNCFS_FROM`] of them and their file systems
/// allow it ([`sync_file_systems`]), else with an `fdatasync` of each, several at once.
///
/// One at a time, each `fdatasync` waits for its own journal commit and disk cache flush:
/// 2,000 small files took 3.8 to 5.9 s on a loaded machine. In parallel the kernel folds
/// them into a few commits and flushes: 0.1 to 0.26 s with 8 threads (bench/RESULTS.md).
/// The threads are scoped to this call and each owns its share of the handles (borrowed),
/// so nothing is shared but the immutable list. A thread that cannot start leaves its
/// share to the writer's thread.
fn flush<'a>(files: &[(&File, &'a Path)]) -> Vec<(&'a Path, std::io::Error)> {
    if files.len() >= SYNCFS_FROM && sync_file_systems(files) {
        return Vec::new();
    }
    let sync = |share: &[(&File, &'a Path)]| -> Vec<(&'a Path, std::io::Error)> {
        share
            .iter()
            .filter_map(|(file, path)| file.sync_data().err().map(|e| (*path, e)))
            .collect()
    };
    let share = flush_share(files.len());
    if files.len() <= share {
        return sync(files);
    }
    std::thread::scope(|scope| {
        let mut failed = Vec::new();
        let mut started = Vec::new();
        for chunk in files.chunks(share) {
            let spawned = std::thread::Builder::new()
                .name("flush".into())
                .stack_size(FLUSH_STACK)
                .spawn_scoped(scope, move || sync(chunk));
            match spawned {
                Ok(handle) => started.push((chunk, handle)),
                Err(_) => failed.extend(sync(chunk)),
            }
        }
        for (chunk, handle) in started {
            match handle.join() {
                Ok(errors) => failed.extend(errors),
                // A flush thread only calls fdatasync; should it panic anyway, none of its
                // files counts as flushed.
                Err(_) => failed.extend(
                    chunk
                        .iter()
                        .map(|(_, path)| (*path, std::io::Error::other("flush thread failed"))),
                ),
            }
        }
        failed
    })
}

/// Stack of a flushing thread: it only calls `fdatasync` on borrowed handles.
const FLUSH_STACK: usize = 64 * 1024;

/// From this many dirty files on, a save syncs the file systems they are on instead of each
/// file. Each `fdatasync` of a new file also writes its folder's entry and its inode block and
/// flushes the disk's cache, one file at a time; one `syncfs` writes all of that in one pass
/// and flushes the cache once. On 2,000 small files the flushes took 9 % of the download's CPU
/// file by file (bench/RESULTS.md has the figures). The cost: `syncfs` also writes back what
/// other programs left pending on that file system, which the kernel would have written
/// within half a minute anyway.
const SYNCFS_FROM: usize = 64;

/// File systems (by `statfs` magic number) whose `syncfs` makes every file's data and
/// metadata durable, as `fdatasync` of each would: ext2/3/4, XFS, Btrfs and F2FS. On others
/// (FUSE, network file systems) the files are flushed one by one.
const SYNCFS_MAGIC: [i64; 4] = [0xEF53, 0x5846_5342, 0x9123_683E, 0xF2F5_2010];

/// Makes `files` durable with one `syncfs` per file system they are on. False, having done
/// nothing trustworthy, when a file system is not one of [`SYNCFS_MAGIC`] or a call fails:
/// then the caller flushes file by file, which also names each file that fails.
fn sync_file_systems(files: &[(&File, &Path)]) -> bool {
    use std::os::unix::fs::MetadataExt;
    let mut synced: Vec<u64> = Vec::new();
    for (file, _) in files {
        let Ok(meta) = file.metadata() else {
            return false;
        };
        if synced.contains(&meta.dev()) {
            continue;
        }
        if !syncfs_is_enough(file) || syncfs(file).is_err() {
            return false;
        }
        synced.push(meta.dev());
    }
    true
}

/// Whether `file` is on a file system of [`SYNCFS_MAGIC`] (`fstatfs`: std has no way to ask).
fn syncfs_is_enough(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: the descriptor is open and owned by `file` for the whole call; `stat` is a
    // properly sized buffer the call fills, and is read only when it succeeded.
    let stat = unsafe {
        if libc::fstatfs(file.as_raw_fd(), stat.as_mut_ptr()) != 0 {
            return false;
        }
        stat.assume_init()
    };
    // `f_type`'s width differs between C libraries and targets; i64 holds each.
    #[allow(clippy::useless_conversion)]
    let magic = i64::from(stat.f_type);
    SYNCFS_MAGIC.contains(&magic)
}

/// Writes back and makes durable the whole file system `file` is on (`syncfs`: std has no
/// way to do this). Since Linux 5.8 it reports a write-back error of any file on it.
fn syncfs(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open and owned by `file` for the whole call.
    if unsafe { libc::syncfs(file.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn create_folder(dir: &Path) -> Result<(), StorageError> {
    std::fs::create_dir_all(dir).map_err(|e| StorageError::new("create folder", dir, e))
}

fn open_file(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StorageError::new("open", path, e))
}

fn open_for_write(path: &Path) -> Result<File, StorageError> {
    if let Some(dir) = path.parent() {
        create_folder(dir)?;
    }
    open_file(path)
}

/// Where the writer keeps the resume file, and what it records at start.
#[derive(Debug, Clone)]
pub struct ResumeSetup {
    /// The resume file.
    pub path: PathBuf,
    /// The torrent's info hash, recorded in the file.
    pub info_hash: [u8; 20],
    /// Pieces already verified on disk when the session starts.
    pub have: Bitfield,
}

/// Starts the writer thread with the handles `prepare` opened. It ends, saving the resume
/// file, when every sender of `jobs` is dropped, or after the first failed write.
pub(crate) fn spawn(
    map: Arc<FileMap>,
    prepared: Prepared,
    resume: ResumeSetup,
    jobs: Receiver<WriteCommand>,
    events: Sender<Event>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("writer".into())
        .spawn(move || {
            let mut handles = prepared.0;
            handles.resize_with(map.placements().len(), || None);
            let mut writer = Writer {
                handles,
                dirty: HashMap::new(),
                map,
                resume,
                saved_at: Instant::now(),
                unsaved: false,
            };
            writer.run(&jobs, &events);
        })
}

/// The writer thread's state: the map, lazily opened handles, and what the resume file says.
struct Writer {
    map: Arc<FileMap>,
    handles: Vec<Option<File>>,
    /// Files written since the last save (to flush before the next save), by file index.
    dirty: HashMap<usize, Unstarted>,
    resume: ResumeSetup,
    saved_at: Instant,
    /// Pieces were written since the last save.
    unsaved: bool,
}

impl Writer {
    fn run(&mut self, jobs: &Receiver<WriteCommand>, events: &Sender<Event>) {
        // A first save at once reserves the resume file's space: on a disk that fills up
        // later it can still be rewritten in place.
        self.save(true);
        loop {
            match jobs.recv_timeout(resume::SAVE_INTERVAL) {
                Ok(job) => {
                    if let Err(e) = self.write_piece(job.piece, &job.blocks) {
                        // The write error is what the user needs to see; whether the resume
                        // file could be saved too only goes to the debug log.
                        self.save(false);
                        let failed = DiskEvent::Failed {
                            path: e.path,
                            error: e.source.to_string(),
                        };
                        let _ = events.send(Event::Disk(failed));
                        return;
                    }
                    self.resume.have.set(job.piece);
                    self.unsaved = true;
                    drop(job.blocks);
                    if events
                        .send(Event::Disk(DiskEvent::PieceWritten(job.piece)))
                        .is_err()
                    {
                        break;
                    }
                    if self.saved_at.elapsed() >= resume::SAVE_INTERVAL {
                        self.save(true);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.unsaved {
                        self.save(true);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.save(true);
    }

    /// Writes a verified piece: vectored writes into each file it spans, straight from the
    /// buffers its blocks arrived in.
    fn write_piece(&mut self, piece: u32, blocks: &PieceBlocks) -> Result<(), StorageError> {
        let size = blocks.len() as u32;
        for run in self.map.runs(piece, 0, size) {
            let path = &self.map.placements()[run.file].path;
            let file = match &mut self.handles[run.file] {
                Some(f) => f,
                slot => slot.insert(open_for_write(path)?),
            };
            let mut slices = blocks.slices(run.buf_offset..run.buf_offset + run.len);
            write_all_vectored_at(file, &mut slices, run.offset)
                .map_err(|e| StorageError::new("write", path, e))?;
            let written = self.dirty.entry(run.file).or_default();
            if let Some((offset, len)) = written.add(run.offset, run.len as u64) {
                start_write_back(file, offset, len);
            }
        }
        Ok(())
    }

    /// Flushes the data written so far, then records it in the resume file. The data goes to
    /// disk first, so the file never names a piece that a power cut could still lose: when a
    /// flush fails, the resume file is left as it was (naming only data flushed before), and
    /// the next save tries those files again. A failure is a warning when `loud`, else only a
    /// debug message.
    fn save(&mut self, loud: bool) {
        let dirty: Vec<(&File, &Path)> = self
            .dirty
            .keys()
            .filter_map(|&i| {
                let file = self.handles[i].as_ref()?;
                Some((file, self.map.placements()[i].path.as_path()))
            })
            .collect();
        let failed = flush(&dirty);
        self.saved_at = Instant::now();
        if !failed.is_empty() {
            for (path, e) in failed {
                warn!(
                    "cannot flush {}: {e}; the resume file keeps its older state",
                    path.display()
                );
            }
            return;
        }
        self.dirty.clear();
        let paths = self.map.paths();
        let bytes = resume::encode(
            &self.resume.info_hash,
            &self.resume.have,
            &resume::stamps(&paths),
        );
        match resume::save(&self.resume.path, &bytes) {
            Ok(()) => self.unsaved = false,
            Err(e) if loud => warn!("{e}"),
            Err(e) => debug!("{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Geometry;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    #[test]
    fn flush_shares_spread_many_files_over_at_most_eight_threads() {
        // (files, how many one thread flushes)
        for (count, share) in [(0, 1), (1, 1), (8, 1), (9, 2), (2000, 250)] {
            assert_eq!(flush_share(count), share, "{count} files");
        }
        for count in [1usize, 2, 7, 9, 100, 2000, 2001] {
            assert!(
                count.div_ceil(flush_share(count)) <= FLUSH_THREADS,
                "{count} files"
            );
        }
    }

    #[test]
    fn flush_syncs_every_file_once_and_names_each_failure() {
        // Few files are flushed one by one; many are tried with syncfs first, which a pipe's
        // file system does not qualify for, so they too are flushed one by one.
        for count in [20, SYNCFS_FROM + 6] {
            flush_names_the_pipes_among(count);
        }
    }

    /// Flushes `count` files, of which every seventh from the fourth is a pipe: fdatasync
    /// fails on a pipe (EINVAL), so each pipe must come back as a failure, whichever thread
    /// took it, and nothing else.
    fn flush_names_the_pipes_among(count: usize) {
        use std::os::fd::FromRawFd;
        let dir = std::env::temp_dir().join(format!("strand-flush-{}-{count}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut files = Vec::new();
        let mut paths = Vec::new();
        for i in 0..count {
            let path = dir.join(format!("f{i}"));
            let file = if i % 7 == 3 {
                let mut fds = [0; 2];
                // SAFETY: `fds` has room for the two descriptors pipe() writes.
                assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
                // SAFETY: pipe() just opened both; each is owned once, here.
                unsafe { drop(File::from_raw_fd(fds[0])) };
                unsafe { File::from_raw_fd(fds[1]) }
            } else {
                open_for_write(&path).unwrap()
            };
            files.push(file);
            paths.push(path);
        }
        let list: Vec<(&File, &Path)> = files
            .iter()
            .zip(paths.iter().map(PathBuf::as_path))
            .collect();
        let mut failed: Vec<&Path> = flush(&list).into_iter().map(|(p, _)| p).collect();
        failed.sort();
        let mut expected: Vec<PathBuf> = (3..count)
            .step_by(7)
            .map(|i| dir.join(format!("f{i}")))
            .collect();
        expected.sort();
        assert_eq!(failed, expected, "{count} files");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn many_regular_files_flush_without_failure() {
        let dir = std::env::temp_dir().join(format!("strand-syncfs-{}", std::process::id()));
        let files: Vec<(File, PathBuf)> = (0..SYNCFS_FROM + 1)
            .map(|i| {
                let path = dir.join(format!("d{}/f{i}", i % 3));
                let mut file = open_for_write(&path).unwrap();
                file.write_all(b"data").unwrap();
                (file, path)
            })
            .collect();
        let list: Vec<(&File, &Path)> = files.iter().map(|(f, p)| (f, p.as_path())).collect();
        assert!(flush(&list).is_empty());
        // Where the temp folder's file system qualifies (ext4 on the CI machine), the one
        // syncfs must have succeeded for all of them.
        assert_eq!(sync_file_systems(&list), syncfs_is_enough(list[0].0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn write_back_starts_once_a_file_has_enough_waiting_and_covers_all_of_it() {
        let quarter = WRITE_BACK_FROM / 4;
        let mut file = Unstarted::default();
        // Pieces land out of order; nothing starts until a whole WRITE_BACK_FROM waits.
        assert_eq!(file.add(5 * quarter, quarter), None);
        assert_eq!(file.add(2 * quarter, quarter), None);
        assert_eq!(file.add(9 * quarter, quarter), None);
        assert_eq!(
            file.add(7 * quarter, quarter),
            Some((2 * quarter, 8 * quarter)),
            "the span from the lowest to the highest byte waiting"
        );
        assert_eq!(file, Unstarted::default(), "counting starts over");
        assert_eq!(file.add(0, WRITE_BACK_FROM), Some((0, WRITE_BACK_FROM)));
        assert_eq!(file.add(0, WRITE_BACK_FROM - 1), None);
    }

    #[test]
    fn a_failed_flush_leaves_the_resume_file_as_it_was() {
        use std::os::fd::FromRawFd;
        let dir = std::env::temp_dir().join(format!("strand-unflushed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = vec![FileInfo::data(PathBuf::from("one.bin"), 1 << 20)];
        let placements = vec![super::super::Placement {
            path: dir.join("one.bin"),
            base: 0,
        }];
        let map = FileMap::new(Geometry::new(1 << 20, 1 << 20), &files, placements);
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe() writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: pipe() just opened both; each is owned once, here. fdatasync fails on the
        // write end of a pipe (EINVAL), standing in for a disk that reports an error.
        unsafe { drop(File::from_raw_fd(fds[0])) };
        let unflushable = unsafe { File::from_raw_fd(fds[1]) };
        let resume_path = dir.join("one.resume");
        let mut have = Bitfield::new(1);
        have.set(0);
        let mut writer = Writer {
            map: Arc::new(map),
            handles: vec![Some(unflushable)],
            dirty: HashMap::from([(0, Unstarted::default())]),
            resume: ResumeSetup {
                path: resume_path.clone(),
                info_hash: [3; 20],
                have,
            },
            saved_at: Instant::now(),
            unsaved: true,
        };
        writer.save(false);
        assert!(
            !resume_path.exists(),
            "a resume file naming unflushed data was written"
        );
        assert!(
            writer.dirty.contains_key(&0),
            "the next save must flush it again"
        );
        assert!(writer.unsaved);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn prepare_makes_sparse_files_unless_asked_to_preallocate() {
        let dir = std::env::temp_dir().join(format!("strand-prepare-{}", std::process::id()));
        let files = vec![
            FileInfo::data(PathBuf::from("t/sparse.bin"), 4 << 20),
            FileInfo::data(PathBuf::from("t/empty"), 0),
        ];
        // Prepares the files under `dir/SUB`; the sparse file's metadata.
        let prepared = |sub: &str, preallocate: bool| {
            let placements = files
                .iter()
                .map(|f| super::super::Placement {
                    path: dir.join(sub).join(&f.path),
                    base: 0,
                })
                .collect();
            let map = FileMap::new(Geometry::new(4 << 20, 1 << 20), &files, placements);
            let handles = prepare(&map, &files, &[true, true], preallocate).unwrap();
            // Both files stay open for the writer.
            assert!(handles.0.iter().all(Option::is_some));
            std::fs::metadata(dir.join(sub).join("t/sparse.bin")).unwrap()
        };
        let sparse = prepared("a", false);
        assert_eq!(sparse.len(), 4 << 20);
        assert!(
            dir.join("a/t/empty").is_file(),
            "zero-length files are created"
        );
        let full = prepared("b", true);
        assert_eq!(full.len(), 4 << 20);
        assert!(
            full.blocks() * 512 >= 4 << 20 && full.blocks() > sparse.blocks(),
            "preallocated {} blocks, sparse {}",
            full.blocks(),
            sparse.blocks()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn prepare_keeps_at_most_half_the_open_file_limit_in_handles() {
        assert_eq!(handles_to_keep(1024), 512);
        assert_eq!(handles_to_keep(3), 1);
        assert_eq!(handles_to_keep(0), 0);
        assert_eq!(handles_to_keep(20_000), PREPARED_HANDLES);
        assert_eq!(handles_to_keep(u64::MAX), PREPARED_HANDLES);
    }

    #[test]
    fn vectored_writes_put_every_slice_in_place_in_chunks() {
        let dir = std::env::temp_dir().join(format!("strand-writev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let mut file = open_file(&path).unwrap();
        // Slices smaller than, equal to and larger than a chunk, in one call.
        let parts: Vec<Vec<u8>> = [7, 16_384, WRITE_CHUNK, 3 * WRITE_CHUNK + 5, 1, 40_000]
            .iter()
            .enumerate()
            .map(|(i, &len)| (0..len).map(|n| (n * 7 + i) as u8).collect())
            .collect();
        let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        write_all_vectored_at(&mut file, &mut slices, 1000).unwrap();
        let want: Vec<u8> = parts.concat();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(got.len(), 1000 + want.len());
        assert!(got[..1000].iter().all(|&b| b == 0));
        assert_eq!(got[1000..], want[..]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_writer_writes_through_the_handles_prepare_opened() {
        let dir = std::env::temp_dir().join(format!("strand-handles-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files = vec![
            FileInfo::data(PathBuf::from("f/a.bin"), 20_000),
            FileInfo::data(PathBuf::from("f/b.bin"), 12_768),
        ];
        let placements = files
            .iter()
            .map(|f| super::super::Placement {
                path: dir.join(&f.path),
                base: 0,
            })
            .collect();
        let g = Geometry::new(32_768, 32_768);
        let map = Arc::new(FileMap::new(g, &files, placements));
        // Only the first file is chosen: only it is opened.
        let prepared = prepare(&map, &files, &[true, false], false).unwrap();
        assert!(prepared.0[0].is_some() && prepared.0[1].is_none());
        // The prepared file is renamed away: writes through its handle land in it, under
        // the new name, and the writer opens the other file at its path when it first
        // writes there.
        let moved = dir.join("moved.bin");
        std::fs::rename(dir.join("f/a.bin"), &moved).unwrap();
        let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded();
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let resume = ResumeSetup {
            path: dir.join("resume"),
            info_hash: [0; 20],
            have: Bitfield::new(1),
        };
        let thread = spawn(Arc::clone(&map), prepared, resume, jobs_rx, events_tx).unwrap();
        let data: Vec<u8> = (0..32_768u32).map(|n| (n % 251) as u8).collect();
        let blocks = PieceBlocks::from_bytes(&data);
        jobs_tx.send(WriteCommand { piece: 0, blocks }).unwrap();
        drop(jobs_tx);
        thread.join().unwrap();
        assert!(matches!(
            events_rx.try_recv(),
            Ok(Event::Disk(DiskEvent::PieceWritten(0)))
        ));
        assert_eq!(std::fs::read(&moved).unwrap(), data[..20_000]);
        assert!(!dir.join("f/a.bin").exists(), "a.bin was opened again");
        assert_eq!(std::fs::read(dir.join("f/b.bin")).unwrap(), data[20_000..]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
