//! STUB (helper fills in): .torrent parsing.
#![allow(unused)]
use std::path::{Path, PathBuf};

use crate::geometry::Geometry;

/// One file of the torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Relative path; for a multi-file torrent it starts with the torrent's name.
    pub path: PathBuf,
    pub length: u64,
}

/// A checked .torrent.
#[derive(Debug, Clone)]
pub struct Metainfo {
    pub info_hash: [u8; 20],
    pub name: String,
    pub geometry: Geometry,
    pub piece_hashes: Vec<[u8; 20]>,
    pub files: Vec<FileInfo>,
    pub multi_file: bool,
    pub trackers: Vec<Vec<String>>,
    pub private: bool,
    pub creation_date: Option<i64>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub info_bytes: Vec<u8>,
}

#[derive(Debug)]
pub enum Error {
    Todo,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        todo!()
    }
}
impl std::error::Error for Error {}

impl Metainfo {
    pub fn load(path: &Path) -> Result<Metainfo, Error> {
        todo!()
    }
    pub fn from_bytes(data: &[u8]) -> Result<Metainfo, Error> {
        todo!()
    }
    pub fn info_hash_hex(&self) -> String {
        todo!()
    }
}
