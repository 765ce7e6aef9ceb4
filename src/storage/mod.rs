//! Pieces on disk: the piece→file layout (pure), the writer thread, and the readers that
//! peer threads use to serve verified blocks.

pub mod check;
pub mod layout;
pub mod reader;
pub mod writer;

use std::path::PathBuf;

/// A file-system operation that failed, with the path it failed on.
#[derive(Debug)]
pub struct StorageError {
    /// What we were doing: "create", "open", "write", "read".
    pub op: &'static str,
    /// The file or folder concerned.
    pub path: PathBuf,
    /// The OS error.
    pub source: std::io::Error,
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.op,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for StorageError {}
