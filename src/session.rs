//! STUB: the main loop (lead engineer writes this).
#![allow(unused)]
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::metainfo::Metainfo;

/// How to run a download.
#[derive(Debug, Clone)]
pub struct Options {
    /// Folder the torrent's files are written under.
    pub output_dir: PathBuf,
    /// Peers to dial besides those the trackers return.
    pub peers: Vec<SocketAddr>,
    /// Most peer connections at once.
    pub max_peers: usize,
    /// Port reported to trackers.
    pub port: u16,
}

/// A snapshot for the progress line, taken about once a second.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub verified_bytes: u64,
    pub total_bytes: u64,
    pub download_rate: f64,
    pub peers_connected: usize,
    pub peers_known: usize,
}

/// What a finished download did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub bytes: u64,
    pub elapsed: Duration,
    pub received_bytes: u64,
    pub failed_pieces: u32,
}

#[derive(Debug)]
pub enum Error {
    Todo,
}

/// Downloads every piece of `meta` into `opts.output_dir`; returns when all are verified and written.
pub fn download(
    meta: Metainfo,
    opts: Options,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Summary, Error> {
    todo!()
}
