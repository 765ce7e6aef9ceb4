//! What callers of the session see: how to run it, what it reports, why it fails.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::bitfield::Bitfield;
use crate::dht::DhtLink;
use crate::peer::mse::Encryption;
use crate::storage::StorageError;

/// When to stop once every piece is on disk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeedPolicy {
    /// Stop at once (after the `completed` announce).
    No,
    /// Seed until stopped.
    Forever,
    /// Seed until either limit is reached, whichever comes first.
    Until {
        /// Stop once uploaded bytes reach this multiple of the torrent's size.
        ratio: Option<f64>,
        /// Stop after seeding this long.
        time: Option<Duration>,
    },
}

/// How to run a download.
#[derive(Debug, Clone)]
pub struct Options {
    /// Folder the torrent's files are written under.
    pub output_dir: PathBuf,
    /// Peers to dial besides those the trackers return.
    pub peers: Vec<SocketAddr>,
    /// Most peer connections at once.
    pub max_peers: usize,
    /// Where to accept peers (the port may move up if taken); `None` to not listen.
    pub listen: Option<SocketAddr>,
    /// `--encryption`: whether connections use MSE/PE (see [`Encryption`]).
    pub encryption: Encryption,
    /// Pieces already verified on disk (from the resume file or a check), if any.
    pub verified: Option<Bitfield>,
    /// Which files to download, in torrent order; `None` for all of them.
    pub chosen: Option<Vec<bool>>,
    /// Reserve the files' disk space at start (else they are sparse).
    pub preallocate: bool,
    /// What to do once complete.
    pub seed: SeedPolicy,
    /// A message (or disconnect) on this channel stops the session cleanly, as Ctrl-C does.
    pub stop: Option<Receiver<()>>,
    /// How long a tracker round may take, and how long to go on with no peer and no working
    /// tracker before giving up.
    pub tracker_timeout: Duration,
    /// A running DHT to find peers through and announce to; `None` for no DHT. Ignored for a
    /// private torrent (BEP 27).
    pub dht: Option<DhtLink>,
    /// Piece order and rate limits.
    pub flow: Flow,
}

/// How pieces are fetched and how fast payload may flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    /// Start pieces in index order from the first missing one (`--sequential`).
    pub sequential: bool,
    /// Most payload bytes per second to request, over all peers and web seeds; `None` for
    /// no limit (`--download-limit`).
    pub download_limit: Option<u64>,
    /// Most payload bytes per second to send, over all peers; `None` for no limit
    /// (`--upload-limit`).
    pub upload_limit: Option<u64>,
}

/// A snapshot for the progress line, taken once a second.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Bytes of the chosen files' pieces verified and on disk.
    pub verified_bytes: u64,
    /// Bytes of the pieces the chosen files need (the whole torrent when all are chosen).
    pub total_bytes: u64,
    /// Payload bytes per second received lately.
    pub download_rate: f64,
    /// Peers we have a working connection to.
    pub peers_connected: usize,
    /// Web seeds (BEP 19) in use.
    pub web_seeds: usize,
    /// Peer addresses we know of.
    pub peers_known: usize,
    /// Payload bytes sent to peers so far.
    pub uploaded_bytes: u64,
    /// Payload bytes per second sent lately.
    pub upload_rate: f64,
    /// Pieces verified and on disk (for a piece map).
    pub have: Bitfield,
    /// Pieces the chosen files need.
    pub wanted: Bitfield,
    /// Nodes in the DHT's routing table, when the session uses a DHT.
    pub dht_nodes: Option<usize>,
    /// Every tracker failed its last announce (they are tried again); false when one answered
    /// or the torrent has none.
    pub trackers_failing: bool,
}

/// What a finished session did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Bytes of wanted pieces verified and on disk at the end.
    pub bytes: u64,
    /// Bytes of the pieces the chosen files need.
    pub total_bytes: u64,
    /// Wall time of the session.
    pub elapsed: Duration,
    /// Payload bytes sent to peers.
    pub uploaded_bytes: u64,
    /// The session was stopped (Ctrl-C) before it was due to end.
    pub interrupted: bool,
    /// Payload bytes received from peers, including duplicates and bad pieces.
    pub received_bytes: u64,
    /// Pieces that failed their hash check and were fetched again.
    pub failed_pieces: u32,
    /// Time from the start until the chosen files were complete (zero when they were at
    /// the start); `None` when they never were. Seeding time is `elapsed` minus this.
    pub completed_after: Option<Duration>,
}

/// Why a download stopped before it finished.
#[derive(Debug)]
pub enum Error {
    /// Creating, opening or writing the output failed.
    Storage(StorageError),
    /// A worker thread could not be started.
    Thread(std::io::Error),
    /// The listening socket could not be opened.
    Listen(SocketAddr, std::io::Error),
    /// No peer to talk to and no tracker that answers, for the whole tracker timeout.
    NoPeers {
        /// The trackers' last errors (one per line), if there are trackers.
        trackers: Option<String>,
        /// The last peer connection to end (`peer ADDR: why`), if one ever started.
        last_peer: Option<String>,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Storage(e) => write!(f, "{e}"),
            Error::Thread(e) => write!(f, "cannot start a thread: {e}"),
            Error::Listen(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            Error::NoPeers {
                trackers: None,
                last_peer: None,
            } => write!(
                f,
                "no peers: the torrent has no tracker, no peer was given and no DHT node answered"
            ),
            Error::NoPeers {
                trackers: None,
                last_peer: Some(peer),
            } => write!(f, "no peers: no peer left to try; the last: {peer}"),
            // The trackers' text is a header line and a line per tracker: shown as one line.
            Error::NoPeers {
                trackers: Some(errors),
                last_peer,
            } => {
                let lines: Vec<&str> = errors.lines().map(str::trim).collect();
                match lines.as_slice() {
                    [_, only] => write!(f, "no peers: {only}")?,
                    [head, rest @ ..] => write!(f, "no peers: {head} {}", rest.join("; "))?,
                    [] => write!(f, "no peers")?,
                }
                match last_peer {
                    Some(peer) => write!(f, "; the last {peer}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for Error {}
