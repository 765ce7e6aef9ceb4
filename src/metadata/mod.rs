//! The metadata phase of a magnet download (BEP 9): fetching the info dict from peers before
//! the normal session can start.
//!
//! [`fetch`] runs a small main loop on the caller's thread. That loop owns all metadata state
//! (the size being fetched, which 16 KiB pieces are in and from whom, each peer's strikes and
//! outstanding requests, the addresses still to try); it starts the tracker thread
//! ([`crate::tracker::spawn_with_timeout`]) to learn peers and one thread per peer
//! (`metadata <addr>`, [`link`]). A peer thread owns its socket: it dials through the one
//! dialer ([`crate::peer::dial`]), exchanges the extension handshake, reports the peer's
//! `metadata_size`, then asks the peer for the pieces the main loop hands it and reports each
//! answer. Threads talk only through the private [`Report`] and [`Ask`] messages at the end of
//! this file. What the main loop decides (who is asked for which piece, and who is to blame for
//! a bad copy) is in [`fetcher`]. An address is connected to at most once.

mod fetcher;
mod link;

use std::fmt;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use log::{debug, warn};

use crate::dht::{DhtEvent, DhtLink};
use crate::messages::{Event, PeerKey, TrackerCommand, TrackerEvent};
use crate::peer::mse::Encryption;
use crate::tracker::{self, Announcer, TrackerConfig};
use fetcher::Fetcher;

/// How long a peer has to answer the requests it was handed.
pub(crate) const PIECE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`fetch`] waits for the tracker thread to announce `stopped` and end.
const TRACKER_STOP_WAIT: Duration = Duration::from_secs(5);
/// How often the DHT is asked again while no peer gives the metadata.
const DHT_RETRY: Duration = Duration::from_secs(5);
/// Peers named one by one in an error; the rest are counted.
const LISTED_PEERS: usize = 5;

/// What [`fetch`] needs to know.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// The info hash from the magnet link; the fetched info dict must hash to it.
    pub info_hash: [u8; 20],
    /// Our peer id, for handshakes and announces.
    pub our_id: [u8; 20],
    /// Tracker tiers to announce to (BEP 12); may be empty.
    pub trackers: Vec<Vec<String>>,
    /// Peers to try first (the magnet link's `x.pe`).
    pub peers: Vec<SocketAddr>,
    /// The TCP port we accept peers on, for announces and our extension handshake (`p`);
    /// 0 leaves `p` out.
    pub listen_port: u16,
    /// The address peer connections are dialed from (`--bind`; see [`crate::net::local_ip`]);
    /// `None` lets the system choose. Peers of the other address family are skipped.
    pub local: Option<IpAddr>,
    /// `--encryption`: whether peer connections use MSE/PE.
    pub encryption: Encryption,
    /// Most peer connections open at once (at least one is used).
    pub max_peers: usize,
    /// The tracker thread's give-up time per round (`--tracker-timeout`).
    pub tracker_timeout: Duration,
    /// When to give up on the whole fetch.
    pub timeout: Duration,
    /// A running DHT to find peers through; `None` for none.
    pub dht: Option<DhtLink>,
}

/// What was tried before giving up, for the error message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attempts {
    /// Each peer connection that ended, and why, in the order they ended.
    pub peers: Vec<(SocketAddr, String)>,
    /// The trackers' last failure (one line), if the last round failed.
    pub tracker: Option<String>,
}

impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.peers.len() {
            0 => write!(f, "no peer was found")?,
            n => {
                write!(f, "{n} peer(s) tried (")?;
                for (i, (addr, why)) in self.peers.iter().take(LISTED_PEERS).enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}{addr}: {why}")?;
                }
                if n > LISTED_PEERS {
                    write!(f, "; and {} more", n - LISTED_PEERS)?;
                }
                write!(f, ")")?;
            }
        }
        if let Some(tracker) = &self.tracker {
            write!(f, "; trackers: {tracker}")?;
        }
        Ok(())
    }
}

/// Why the metadata could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    /// The request names no tracker and no peer: there is nobody to ask.
    NoSources,
    /// Every known peer failed and there is no tracker to find more.
    PeersExhausted(Attempts),
    /// The overall timeout passed.
    TimedOut {
        /// The timeout.
        after: Duration,
        /// What was tried meanwhile.
        attempts: Attempts,
    },
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::NoSources => write!(
                f,
                "cannot fetch the metadata: the magnet link names no tracker and no peer"
            ),
            MetadataError::PeersExhausted(attempts) => {
                write!(f, "no peer gave the metadata: {attempts}")
            }
            MetadataError::TimedOut { after, attempts } => write!(
                f,
                "no metadata within {:.0} s: {attempts}",
                after.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for MetadataError {}

/// Fetches the info dict named by `req.info_hash` and returns its raw bytes, hash verified.
///
/// Runs on the calling thread until done; see the module docs. `progress` is called with the
/// number of connected peers offering the metadata whenever it changes. The tracker thread
/// is told to stop (and waited for, at most a few seconds) before this returns; peer threads
/// still running are ended by shutting their sockets down.
pub fn fetch(req: FetchRequest, progress: &mut dyn FnMut(usize)) -> Result<Vec<u8>, MetadataError> {
    let has_tracker = req.trackers.iter().any(|tier| !tier.is_empty());
    if !has_tracker && req.peers.is_empty() && req.dht.is_none() {
        return Err(MetadataError::NoSources);
    }
    let deadline = Instant::now() + req.timeout;
    let (report_tx, report_rx) = crossbeam_channel::unbounded();
    let mut fetcher = Fetcher::new(&req, report_tx);
    let (tracker_tx, tracker_rx) = crossbeam_channel::unbounded();
    let tracker = has_tracker.then(|| {
        let config = TrackerConfig {
            tiers: req.trackers.clone(),
            announcer: Announcer {
                info_hash: req.info_hash,
                peer_id: req.our_id,
                port: req.listen_port,
                local: req.local,
                encryption: req.encryption,
            },
            // The size is unknown until the metadata is in; trackers want something > 0.
            left: 1,
        };
        tracker::spawn_with_timeout(config, req.tracker_timeout, tracker_tx)
    });
    fetcher.add_candidates(&req.peers);
    let result = run(
        &mut fetcher,
        &report_rx,
        tracker
            .as_ref()
            .map(|(commands, _)| (commands, &tracker_rx)),
        req.dht.as_ref().map(|d| (d, req.info_hash)),
        deadline,
        progress,
    );
    fetcher.close_all();
    if let Some((commands, handle)) = tracker {
        // The thread may have ended on its own; then there is nobody to tell.
        let _ = commands.send(TrackerCommand::Stop);
        let stop_by = Instant::now() + TRACKER_STOP_WAIT;
        while !handle.is_finished() && Instant::now() < stop_by {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    result.map_err(|gave_up| match gave_up {
        GaveUp::Exhausted => MetadataError::PeersExhausted(fetcher.attempts()),
        GaveUp::TimedOut => MetadataError::TimedOut {
            after: req.timeout,
            attempts: fetcher.attempts(),
        },
    })
}

/// Why the main loop stopped without metadata.
enum GaveUp {
    Exhausted,
    TimedOut,
}

/// The main loop: reacts to peer reports and tracker events until the metadata is in, the
/// peers run out (with no tracker to find more) or the deadline passes.
fn run(
    fetcher: &mut Fetcher,
    reports: &Receiver<(PeerKey, Report)>,
    tracker: Option<(&Sender<TrackerCommand>, &Receiver<Event>)>,
    dht: Option<(&DhtLink, [u8; 20])>,
    deadline: Instant,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<u8>, GaveUp> {
    let never = crossbeam_channel::never();
    let mut tracker_events = tracker.map_or(&never, |(_, events)| events);
    let mut tracker_alive = tracker.is_some();
    let mut shown = None;
    let timeout = crossbeam_channel::at(deadline);
    let never_dht = crossbeam_channel::never();
    let mut dht_events = dht.map_or(&never_dht, |(d, _)| &d.events);
    let dht_retry = crossbeam_channel::tick(DHT_RETRY);
    let info_hash = dht.map_or([0; 20], |(_, hash)| hash);
    let dht = dht.map(|(d, _)| d);
    if let Some(dht) = dht {
        dht.get_peers(info_hash);
    }
    fetcher.connect_more();
    loop {
        let serving = fetcher.serving();
        if shown != Some(serving) {
            progress(serving);
            shown = Some(serving);
        }
        if fetcher.out_of_peers() {
            if !tracker_alive && dht.is_none() {
                return Err(GaveUp::Exhausted);
            }
            if let Some((commands, _)) = tracker {
                // Honoured once the tracker's minimum interval allows; a dead thread is
                // noticed when its event channel closes.
                let _ = commands.send(TrackerCommand::NeedPeers);
            }
        }
        select! {
            recv(reports) -> report => {
                // `fetcher` holds a sender, so the channel never closes while we wait.
                if let Ok((key, report)) = report {
                    if let Some(info) = fetcher.handle(key, report) {
                        return Ok(info);
                    }
                }
            }
            recv(tracker_events) -> event => match event {
                Ok(Event::Tracker(TrackerEvent::Peers(peers))) => {
                    fetcher.tracker_note = None;
                    fetcher.add_candidates(&peers);
                    fetcher.connect_more();
                }
                Ok(Event::Tracker(TrackerEvent::Failed(text))) => {
                    fetcher.tracker_note = Some(one_line(&text));
                }
                Ok(Event::Tracker(TrackerEvent::Warning(text))) => {
                    warn!("tracker warning: {}", one_line(&text));
                }
                Ok(other) => debug!("metadata phase ignores {other:?}"),
                Err(_) => {
                    tracker_alive = false;
                    tracker_events = &never;
                }
            },
            recv(dht_events) -> event => match event {
                Ok(DhtEvent::Peers(hash, peers)) if hash == info_hash => {
                    debug!("DHT: {} peers", peers.len());
                    fetcher.add_candidates(&peers);
                    fetcher.connect_more();
                }
                Ok(_) => {}
                Err(_) => dht_events = &never_dht,
            },
            recv(dht_retry) -> _ => {
                if let Some(dht) = dht.filter(|_| fetcher.serving() == 0) {
                    dht.get_peers(info_hash);
                }
            }
            recv(timeout) -> _ => return Err(GaveUp::TimedOut),
        }
    }
}

/// Joins a multi-line message into one line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// From the main loop to a peer thread: ask the peer for these pieces.
struct Ask {
    pieces: Vec<u32>,
}

/// From a peer thread to the main loop.
enum Report {
    /// Connected: a handle on the socket, so the main loop can end the connection.
    Socket(TcpStream),
    /// The peer offers metadata of this size (at most [`crate::peer::extension::MAX_METADATA_SIZE`]).
    Ready { size: u32 },
    /// A piece the peer was asked for, of the right length.
    Piece { piece: u32, data: Vec<u8> },
    /// The peer refused a piece it was asked for.
    Rejected { piece: u32 },
    /// The connection ended (always the thread's last report).
    Closed { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_read_as_one_line() {
        let addr = |p| SocketAddr::from(([127, 0, 0, 1], p));
        let attempts = Attempts {
            peers: (1..=7)
                .map(|p| (addr(p), "connect failed".to_string()))
                .collect(),
            tracker: Some(one_line(
                "all 1 trackers failed:\n  http://t/announce: refused\n",
            )),
        };
        let text = MetadataError::PeersExhausted(attempts).to_string();
        assert_eq!(
            text,
            "no peer gave the metadata: 7 peer(s) tried (127.0.0.1:1: connect failed; \
             127.0.0.1:2: connect failed; 127.0.0.1:3: connect failed; 127.0.0.1:4: connect \
             failed; 127.0.0.1:5: connect failed; and 2 more); trackers: all 1 trackers failed: \
             http://t/announce: refused"
        );
    }
}
