//! STUB (helper fills in): piece → file layout.
#![allow(unused)]
use crate::metainfo::FileInfo;

/// One contiguous run of bytes inside one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub file: usize,
    pub file_offset: u64,
    pub len: u64,
    pub buf_offset: usize,
}

#[derive(Debug, Clone)]
pub struct Layout {}

impl Layout {
    pub fn new(files: &[FileInfo]) -> Layout {
        todo!()
    }
    pub fn segments(&self, torrent_offset: u64, len: u64) -> Vec<Segment> {
        todo!()
    }
}
