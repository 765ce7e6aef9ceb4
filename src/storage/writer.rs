//! The writer thread: puts verified pieces into the torrent's files with positional writes.
//!
//! Runs on its own thread ("writer"), fed by the hasher with [`WriteCommand`]s that hold only
//! verified data. It owns the open file handles for writing; nobody else writes to the files.
//! After each piece it reports [`DiskEvent::PieceWritten`] to the main thread, or
//! [`DiskEvent::Failed`] once, and stops, on the first error.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::layout::Layout;
use super::StorageError;
use crate::geometry::Geometry;
use crate::messages::{DiskEvent, Event, WriteCommand};
use crate::metainfo::FileInfo;

/// Creates the folders and files of the torrent under `root`, before any thread starts, so that
/// a missing permission or a bad folder is reported at once. Files that already exist keep
/// their content; every file is set to its final length (sparse where the file system allows).
pub fn prepare(root: &Path, files: &[FileInfo]) -> Result<(), StorageError> {
    for f in files {
        let path = root.join(&f.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StorageError {
                op: "create folder",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let file = open_for_write(&path)?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len != f.length {
            file.set_len(f.length).map_err(|source| StorageError {
                op: "resize",
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

fn open_for_write(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| StorageError {
            op: "open",
            path: path.to_path_buf(),
            source,
        })
}

/// Starts the writer thread. It ends when every sender of `jobs` is dropped, or after the
/// first failed write.
pub fn spawn(
    root: PathBuf,
    files: &[FileInfo],
    geometry: Geometry,
    jobs: Receiver<WriteCommand>,
    events: Sender<Event>,
) -> std::io::Result<JoinHandle<()>> {
    let layout = Layout::new(files);
    let paths: Vec<PathBuf> = files.iter().map(|f| root.join(&f.path)).collect();
    std::thread::Builder::new()
        .name("writer".into())
        .spawn(move || {
            let mut writer = Writer {
                layout,
                geometry,
                handles: paths.iter().map(|_| None).collect(),
                paths,
            };
            for job in jobs {
                let event = match writer.write_piece(job.piece, &job.data) {
                    Ok(()) => DiskEvent::PieceWritten(job.piece),
                    Err(e) => DiskEvent::Failed {
                        path: e.path,
                        error: e.source.to_string(),
                    },
                };
                let failed = matches!(event, DiskEvent::Failed { .. });
                if events.send(Event::Disk(event)).is_err() || failed {
                    return;
                }
            }
        })
}

/// The writer thread's state: the layout and lazily opened handles.
struct Writer {
    layout: Layout,
    geometry: Geometry,
    paths: Vec<PathBuf>,
    handles: Vec<Option<File>>,
}

impl Writer {
    fn write_piece(&mut self, piece: u32, data: &[u8]) -> Result<(), StorageError> {
        let start = self.geometry.piece_offset(piece);
        for seg in self.layout.segments(start, data.len() as u64) {
            let path = &self.paths[seg.file];
            let file = match &mut self.handles[seg.file] {
                Some(f) => f,
                slot => slot.insert(open_for_write(path)?),
            };
            let bytes = &data[seg.buf_offset..seg.buf_offset + seg.len as usize];
            file.write_all_at(bytes, seg.file_offset)
                .map_err(|source| StorageError {
                    op: "write",
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}
