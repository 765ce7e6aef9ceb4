//! The metadata phase of a magnet download (BEP 9): fetching the info dict from peers before
//! the normal session can start.
//!
//! [`fetch`] runs a small main loop on the caller's thread. That loop owns all metadata state
//! (the size being fetched, which 16 KiB pieces are in and from whom, each peer's strikes and
//! outstanding requests, the addresses still to try); it starts the tracker thread
//! ([`crate::tracker::spawn_with_timeout`]) to learn peers and one thread per peer
//! (`metadata <addr>`). A peer thread owns its socket: it connects, exchanges the BitTorrent
//! and extension handshakes, reports the peer's `metadata_size`, then asks the peer for the
//! pieces the main loop hands it and reports each answer. Threads talk only through the
//! private [`Report`] and [`Ask`] messages at the end of this file. When every piece is in,
//! the main loop checks the SHA-1 against the info hash; on a mismatch it discards the
//! bytes, gives every peer that contributed a strike, drops a peer that sent the whole copy
//! alone or twice contributed to a bad copy, and from then on fetches each copy from a single
//! peer so the next failure names its liar. An address is connected to at most once.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;
use std::io::{self, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use log::{debug, info, warn};
use sha1::{Digest, Sha1};

use crate::addresses::MAX_KNOWN_PEERS;
use crate::messages::{Event, TrackerCommand, TrackerEvent};
use crate::peer::connection::{
    ADVERTISED_REQQ, CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT, STACK_SIZE, WRITE_TIMEOUT,
};
use crate::peer::extension::{
    self, MetadataMsg, OurHandshake, MAX_METADATA_SIZE, METADATA_PIECE_LEN, UT_METADATA,
};
use crate::peer::handshake::{read_handshake, Handshake, HandshakeError};
use crate::peer::wire::{self, Message, WireError};
use crate::tracker::{self, TrackerConfig};

/// How long a peer has to answer the requests it was handed.
pub const PIECE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests a peer has outstanding at once.
const PIPELINE: usize = 2;
/// A peer that contributed to this many bad copies is dropped.
const MAX_STRIKES: u32 = 2;
/// How long [`fetch`] waits for the tracker thread to announce `stopped` and end.
const TRACKER_STOP_WAIT: Duration = Duration::from_secs(5);
/// Peers named one by one in an error; the rest are counted.
const LISTED_PEERS: usize = 5;
/// Size of the read buffer in front of each peer's socket.
const READ_BUFFER: usize = 32 * 1024;

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
    /// Most peer connections open at once (at least one is used).
    pub max_peers: usize,
    /// The tracker thread's give-up time per round (`--tracker-timeout`).
    pub tracker_timeout: Duration,
    /// When to give up on the whole fetch.
    pub timeout: Duration,
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
    if !has_tracker && req.peers.is_empty() {
        return Err(MetadataError::NoSources);
    }
    let deadline = Instant::now() + req.timeout;
    let (report_tx, report_rx) = crossbeam_channel::unbounded();
    let mut fetcher = Fetcher::new(&req, report_tx);
    let (tracker_tx, tracker_rx) = crossbeam_channel::unbounded();
    let tracker = has_tracker.then(|| {
        let config = TrackerConfig {
            tiers: req.trackers.clone(),
            info_hash: req.info_hash,
            peer_id: req.our_id,
            port: req.listen_port,
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
    deadline: Instant,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<u8>, GaveUp> {
    let never = crossbeam_channel::never();
    let mut tracker_events = tracker.map_or(&never, |(_, events)| events);
    let mut tracker_alive = tracker.is_some();
    let mut shown = None;
    let timeout = crossbeam_channel::at(deadline);
    fetcher.connect_more();
    loop {
        let serving = fetcher.serving();
        if shown != Some(serving) {
            progress(serving);
            shown = Some(serving);
        }
        if fetcher.peers.is_empty() && fetcher.candidates.is_empty() {
            if !tracker_alive {
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

/// The main loop's name for one peer connection.
type PeerKey = u64;

/// The main loop's view of one peer connection.
struct Peer {
    addr: SocketAddr,
    /// Where to hand this peer's thread pieces to ask for.
    asks: Sender<Ask>,
    /// A handle on the thread's socket, to end the connection from here.
    socket: Option<TcpStream>,
    /// The metadata size the peer offers, once its extension handshake said so.
    size: Option<u32>,
    /// Pieces handed to the peer and not yet answered.
    asked: Vec<u32>,
    /// Bad copies this peer contributed to.
    strikes: u32,
}

/// Who holds one metadata piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Missing,
    Asked(PeerKey),
    Got(PeerKey),
}

/// The copy of the info dict being assembled.
struct Assembly {
    size: u32,
    data: Vec<u8>,
    slots: Vec<Slot>,
}

/// Everything the main loop owns.
struct Fetcher {
    info_hash: [u8; 20],
    our_id: [u8; 20],
    listen_port: u16,
    max_peers: usize,
    reports: Sender<(PeerKey, Report)>,
    peers: BTreeMap<PeerKey, Peer>,
    next_key: PeerKey,
    /// Addresses waiting for a connection slot.
    candidates: VecDeque<SocketAddr>,
    /// Every address ever queued: none is connected to twice.
    seen: HashSet<SocketAddr>,
    /// Connections that ended, and why.
    ended: Vec<(SocketAddr, String)>,
    tracker_note: Option<String>,
    assembly: Option<Assembly>,
    /// After a bad copy, each copy comes from a single peer.
    single_source: bool,
}

impl Fetcher {
    fn new(req: &FetchRequest, reports: Sender<(PeerKey, Report)>) -> Fetcher {
        Fetcher {
            info_hash: req.info_hash,
            our_id: req.our_id,
            listen_port: req.listen_port,
            max_peers: req.max_peers.max(1),
            reports,
            peers: BTreeMap::new(),
            next_key: 0,
            candidates: VecDeque::new(),
            seen: HashSet::new(),
            ended: Vec::new(),
            tracker_note: None,
            assembly: None,
            single_source: false,
        }
    }

    fn attempts(&self) -> Attempts {
        Attempts {
            peers: self.ended.clone(),
            tracker: self.tracker_note.clone(),
        }
    }

    /// Connected peers that offer the metadata.
    fn serving(&self) -> usize {
        self.peers.values().filter(|p| p.size.is_some()).count()
    }

    /// Queues addresses not seen before, up to [`MAX_KNOWN_PEERS`] over the whole phase.
    fn add_candidates(&mut self, addrs: &[SocketAddr]) {
        for &addr in addrs {
            if self.seen.len() >= MAX_KNOWN_PEERS {
                break;
            }
            if addr.port() != 0 && self.seen.insert(addr) {
                self.candidates.push_back(addr);
            }
        }
    }

    /// Starts peer threads for waiting addresses while there are free connection slots.
    fn connect_more(&mut self) {
        while self.peers.len() < self.max_peers {
            let Some(addr) = self.candidates.pop_front() else {
                return;
            };
            let key = self.next_key;
            self.next_key += 1;
            let (asks_tx, asks_rx) = crossbeam_channel::unbounded();
            let link = Link {
                key,
                addr,
                info_hash: self.info_hash,
                our_id: self.our_id,
                listen_port: self.listen_port,
                asks: asks_rx,
                reports: self.reports.clone(),
            };
            let started = std::thread::Builder::new()
                .name(format!("metadata {addr}"))
                .stack_size(STACK_SIZE)
                .spawn(move || link.run());
            match started {
                Ok(_) => {
                    self.peers.insert(
                        key,
                        Peer {
                            addr,
                            asks: asks_tx,
                            socket: None,
                            size: None,
                            asked: Vec::new(),
                            strikes: 0,
                        },
                    );
                }
                Err(e) => self.ended.push((addr, format!("no thread: {e}"))),
            }
        }
    }

    /// Applies one peer report; returns the verified info dict once it is complete.
    fn handle(&mut self, key: PeerKey, report: Report) -> Option<Vec<u8>> {
        let Some(peer) = self.peers.get_mut(&key) else {
            // A peer we already dropped; its socket is shut down or about to be.
            if let Report::Socket(socket) = report {
                let _ = socket.shutdown(Shutdown::Both);
            }
            return None;
        };
        match report {
            Report::Socket(socket) => peer.socket = Some(socket),
            Report::Ready { size } => {
                debug!("{}: offers {size} bytes of metadata", peer.addr);
                peer.size = Some(size);
            }
            Report::Piece { piece, data } => return self.piece(key, piece, data),
            Report::Rejected { piece } => {
                self.drop_peer(key, format!("rejected metadata piece {piece}"));
            }
            Report::Closed { reason } => {
                self.release(key);
                if let Some(peer) = self.peers.remove(&key) {
                    self.ended.push((peer.addr, reason));
                }
                self.connect_more();
            }
        }
        self.assign();
        None
    }

    /// Stores a piece the peer was asked for; verifies the copy once it is complete.
    fn piece(&mut self, key: PeerKey, piece: u32, data: Vec<u8>) -> Option<Vec<u8>> {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.asked.retain(|&p| p != piece);
        }
        let assembly = self.assembly.as_mut()?;
        let index = piece as usize;
        // Answers to requests from a discarded copy are no longer wanted.
        if assembly.slots.get(index) != Some(&Slot::Asked(key)) {
            return None;
        }
        if extension::expected_piece_len(assembly.size, piece) != Some(data.len()) {
            self.drop_peer(
                key,
                format!("sent a {}-byte metadata piece {piece}", data.len()),
            );
            self.assign();
            return None;
        }
        let start = index * METADATA_PIECE_LEN;
        assembly.data[start..start + data.len()].copy_from_slice(&data);
        assembly.slots[index] = Slot::Got(key);
        if assembly.slots.iter().any(|s| !matches!(s, Slot::Got(_))) {
            self.assign();
            return None;
        }
        let complete = self.assembly.take()?;
        let hash: [u8; 20] = Sha1::digest(&complete.data).into();
        if hash == self.info_hash {
            info!("metadata: {} bytes, hash verified", complete.size);
            return Some(complete.data);
        }
        self.strike(&complete.slots);
        self.assign();
        None
    }

    /// A complete copy failed the hash: every contributor gets a strike; one that sent the
    /// whole copy, or has too many strikes, is dropped. Later copies come from single peers.
    fn strike(&mut self, slots: &[Slot]) {
        let contributors: HashSet<PeerKey> = slots
            .iter()
            .filter_map(|s| match s {
                Slot::Got(k) => Some(*k),
                _ => None,
            })
            .collect();
        warn!(
            "metadata from {} peer(s) does not match the info hash; fetching it again",
            contributors.len()
        );
        self.single_source = true;
        let alone = contributors.len() == 1;
        for key in contributors {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            peer.strikes += 1;
            if alone || peer.strikes >= MAX_STRIKES {
                self.drop_peer(
                    key,
                    "sent metadata that does not match the info hash".into(),
                );
            }
        }
    }

    /// Hands missing pieces to idle peers that offer the size being fetched; starts a copy
    /// when none is under way, or when no peer offers the current copy's size any more.
    fn assign(&mut self) {
        if let Some(assembly) = &self.assembly {
            if !self.peers.values().any(|p| p.size == Some(assembly.size)) {
                debug!("no peer left offers {} bytes of metadata", assembly.size);
                self.assembly = None;
            }
        }
        if self.assembly.is_none() {
            let Some(size) = self.pick_source().and_then(|k| self.peers[&k].size) else {
                return;
            };
            let pieces = extension::metadata_piece_count(size) as usize;
            self.assembly = Some(Assembly {
                size,
                data: vec![0; size as usize],
                slots: vec![Slot::Missing; pieces],
            });
        }
        let Some(assembly) = self.assembly.as_mut() else {
            return;
        };
        let busy: HashSet<PeerKey> = assembly
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Asked(k) | Slot::Got(k) => Some(*k),
                Slot::Missing => None,
            })
            .collect();
        let eligible: Vec<PeerKey> = if self.single_source {
            // One peer per copy: the one already on it, else the least suspect.
            busy.iter()
                .copied()
                .filter(|k| self.peers.contains_key(k))
                .min()
                .or_else(|| pick_least_struck(&self.peers, assembly.size, |k| !busy.contains(&k)))
                .into_iter()
                .collect()
        } else {
            self.peers
                .iter()
                .filter(|(_, p)| p.size == Some(assembly.size))
                .map(|(&k, _)| k)
                .collect()
        };
        let mut handed: BTreeMap<PeerKey, Vec<u32>> = BTreeMap::new();
        let mut missing = assembly
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == Slot::Missing)
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
            .into_iter();
        'spread: loop {
            let mut gave = false;
            for &key in &eligible {
                let outstanding =
                    self.peers[&key].asked.len() + handed.get(&key).map_or(0, Vec::len);
                if outstanding >= PIPELINE {
                    continue;
                }
                let Some(index) = missing.next() else {
                    break 'spread;
                };
                assembly.slots[index] = Slot::Asked(key);
                handed.entry(key).or_default().push(index as u32);
                gave = true;
            }
            if !gave {
                break;
            }
        }
        for (key, pieces) in handed {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.asked.extend_from_slice(&pieces);
                // A send fails only if the thread ended; its `Closed` frees the pieces.
                let _ = peer.asks.send(Ask { pieces });
            }
        }
    }

    /// The peer whose offered size starts the next copy: the least struck, oldest first.
    fn pick_source(&self) -> Option<PeerKey> {
        let size = self
            .peers
            .values()
            .filter(|p| p.size.is_some())
            .min_by_key(|p| p.strikes)?
            .size?;
        pick_least_struck(&self.peers, size, |_| true)
    }

    /// Puts the pieces a peer was asked for back in the pool.
    fn release(&mut self, key: PeerKey) {
        if let Some(assembly) = self.assembly.as_mut() {
            for slot in &mut assembly.slots {
                if *slot == Slot::Asked(key) {
                    *slot = Slot::Missing;
                }
            }
        }
    }

    /// Ends a connection from our side and records why.
    fn drop_peer(&mut self, key: PeerKey, reason: String) {
        self.release(key);
        if let Some(peer) = self.peers.remove(&key) {
            debug!("{}: dropped: {reason}", peer.addr);
            if let Some(socket) = &peer.socket {
                let _ = socket.shutdown(Shutdown::Both);
            }
            self.ended.push((peer.addr, reason));
        }
        self.connect_more();
    }

    /// Ends every connection (the fetch is over).
    fn close_all(&mut self) {
        for peer in std::mem::take(&mut self.peers).into_values() {
            if let Some(socket) = &peer.socket {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    }
}

/// The peer offering `size` with the fewest strikes (oldest first) among those `allowed`.
fn pick_least_struck(
    peers: &BTreeMap<PeerKey, Peer>,
    size: u32,
    allowed: impl Fn(PeerKey) -> bool,
) -> Option<PeerKey> {
    peers
        .iter()
        .filter(|(&k, p)| p.size == Some(size) && allowed(k))
        .min_by_key(|(&k, p)| (p.strikes, k))
        .map(|(&k, _)| k)
}

/// From the main loop to a peer thread: ask the peer for these pieces.
struct Ask {
    pieces: Vec<u32>,
}

/// From a peer thread to the main loop.
enum Report {
    /// Connected: a handle on the socket, so the main loop can end the connection.
    Socket(TcpStream),
    /// The peer offers metadata of this size (at most [`MAX_METADATA_SIZE`]).
    Ready { size: u32 },
    /// A piece the peer was asked for, of the right length.
    Piece { piece: u32, data: Vec<u8> },
    /// The peer refused a piece it was asked for.
    Rejected { piece: u32 },
    /// The connection ended (always the thread's last report).
    Closed { reason: String },
}

/// Why a peer thread ended its connection.
#[derive(Debug)]
enum PeerFailure {
    Connect(io::Error),
    Handshake(HandshakeError),
    Write(io::Error),
    Wire(WireError),
    Slow(&'static str),
    Myself,
    NoExtensions,
    BadExtensionHandshake,
    NoUtMetadata,
    NoMetadata,
    TooLarge(u32),
    Malformed,
    Unasked(u32),
    WrongPiece {
        piece: u32,
        total_size: u32,
        len: usize,
    },
}

impl fmt::Display for PeerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerFailure::Connect(e) => write!(f, "connect failed: {e}"),
            PeerFailure::Handshake(e) => write!(f, "handshake failed: {e}"),
            PeerFailure::Write(e) => write!(f, "write failed: {e}"),
            PeerFailure::Wire(e) => write!(f, "{e}"),
            PeerFailure::Slow(what) => write!(f, "no {what} in time"),
            PeerFailure::Myself => write!(f, "connected to ourselves"),
            PeerFailure::NoExtensions => write!(f, "does not speak the extension protocol"),
            PeerFailure::BadExtensionHandshake => {
                write!(f, "sent an unreadable extension handshake")
            }
            PeerFailure::NoUtMetadata => write!(f, "does not offer ut_metadata"),
            PeerFailure::NoMetadata => write!(f, "has no metadata to share"),
            PeerFailure::TooLarge(size) => write!(
                f,
                "metadata_size {size} is over the {MAX_METADATA_SIZE}-byte limit"
            ),
            PeerFailure::Malformed => write!(f, "sent a malformed ut_metadata message"),
            PeerFailure::Unasked(piece) => {
                write!(f, "sent metadata piece {piece} nobody asked for")
            }
            PeerFailure::WrongPiece {
                piece,
                total_size,
                len,
            } => write!(
                f,
                "sent metadata piece {piece} of {len} bytes with total_size {total_size}"
            ),
        }
    }
}

/// Everything a peer thread needs, moved into it.
struct Link {
    key: PeerKey,
    addr: SocketAddr,
    info_hash: [u8; 20],
    our_id: [u8; 20],
    listen_port: u16,
    asks: Receiver<Ask>,
    reports: Sender<(PeerKey, Report)>,
}

impl Link {
    /// The peer thread's body: talks to the peer, then reports `Closed` with the reason.
    fn run(self) {
        let reason = match self.talk() {
            Ok(()) => "metadata no longer needed".to_string(),
            Err(e) => e.to_string(),
        };
        debug!("{}: metadata connection ended: {reason}", self.addr);
        // The fetch may be over already; then nobody needs to hear it.
        let _ = self.reports.send((self.key, Report::Closed { reason }));
    }

    fn report(&self, report: Report) -> bool {
        self.reports.send((self.key, report)).is_ok()
    }

    fn talk(&self) -> Result<(), PeerFailure> {
        let stream = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT)
            .map_err(PeerFailure::Connect)?;
        let socket = stream.try_clone().map_err(PeerFailure::Connect)?;
        if !self.report(Report::Socket(socket)) {
            return Ok(());
        }
        stream.set_nodelay(true).map_err(PeerFailure::Connect)?;
        stream
            .set_write_timeout(Some(WRITE_TIMEOUT))
            .map_err(PeerFailure::Connect)?;
        let handshake_by = Instant::now() + HANDSHAKE_TIMEOUT;
        stream
            .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(PeerFailure::Connect)?;
        let ours = Handshake::new(self.info_hash, self.our_id).to_bytes();
        (&stream).write_all(&ours).map_err(PeerFailure::Write)?;
        let theirs = read_handshake(&mut &stream).map_err(PeerFailure::Handshake)?;
        theirs
            .check_info_hash(&self.info_hash)
            .map_err(PeerFailure::Handshake)?;
        if theirs.peer_id == self.our_id {
            return Err(PeerFailure::Myself);
        }
        if !theirs.supports_extensions() {
            return Err(PeerFailure::NoExtensions);
        }
        let ext = extension::encode_handshake(&OurHandshake {
            reqq: ADVERTISED_REQQ,
            metadata_size: None,
            listen_port: (self.listen_port != 0).then_some(self.listen_port),
            yourip: Some(self.addr.ip()),
            pex: false,
        });
        send(
            &stream,
            &Message::Extended {
                id: extension::HANDSHAKE_ID,
                payload: ext,
            },
        )?;
        let mut reader = BufReader::with_capacity(READ_BUFFER, &stream);
        let theirs = loop {
            match read_by(&mut reader, &stream, handshake_by, "extension handshake")? {
                Message::Extended { id, payload } if id == extension::HANDSHAKE_ID => {
                    break extension::parse_handshake(&payload)
                        .ok_or(PeerFailure::BadExtensionHandshake)?;
                }
                _ => continue,
            }
        };
        let their_id = theirs.ut_metadata.ok_or(PeerFailure::NoUtMetadata)?;
        let size = theirs.metadata_size.ok_or(PeerFailure::NoMetadata)?;
        if size > MAX_METADATA_SIZE {
            return Err(PeerFailure::TooLarge(size));
        }
        if !self.report(Report::Ready { size }) {
            return Ok(());
        }
        while let Ok(ask) = self.asks.recv() {
            let mut out = Vec::new();
            for &piece in &ask.pieces {
                let payload = extension::encode_metadata(&MetadataMsg::Request { piece });
                wire::encode(
                    &Message::Extended {
                        id: their_id,
                        payload,
                    },
                    &mut out,
                );
            }
            (&stream).write_all(&out).map_err(PeerFailure::Write)?;
            if !self.await_answers(&mut reader, &stream, their_id, size, ask.pieces)? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Reads until every piece in `waiting` is answered, reporting each answer; other
    /// messages are ignored, and requests from the peer are rejected (we have nothing yet).
    /// Returns false when the main loop is gone.
    fn await_answers(
        &self,
        reader: &mut BufReader<&TcpStream>,
        stream: &TcpStream,
        their_id: u8,
        size: u32,
        mut waiting: Vec<u32>,
    ) -> Result<bool, PeerFailure> {
        let answer_by = Instant::now() + PIECE_TIMEOUT;
        while !waiting.is_empty() {
            let Message::Extended { id, payload } =
                read_by(reader, stream, answer_by, "answer to a metadata request")?
            else {
                continue;
            };
            if id != UT_METADATA {
                continue;
            }
            let report = match extension::parse_metadata(&payload) {
                None => return Err(PeerFailure::Malformed),
                Some(MetadataMsg::Request { piece }) => {
                    let reject = extension::encode_metadata(&MetadataMsg::Reject { piece });
                    send(
                        stream,
                        &Message::Extended {
                            id: their_id,
                            payload: reject,
                        },
                    )?;
                    continue;
                }
                Some(MetadataMsg::Data {
                    piece,
                    total_size,
                    data,
                }) => {
                    answered(&mut waiting, piece)?;
                    if total_size != size
                        || extension::expected_piece_len(size, piece) != Some(data.len())
                    {
                        return Err(PeerFailure::WrongPiece {
                            piece,
                            total_size,
                            len: data.len(),
                        });
                    }
                    Report::Piece { piece, data }
                }
                Some(MetadataMsg::Reject { piece }) => {
                    answered(&mut waiting, piece)?;
                    Report::Rejected { piece }
                }
            };
            if !self.report(report) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Takes `piece` off the list of pieces awaiting an answer; a piece not on it was never asked
/// for.
fn answered(waiting: &mut Vec<u32>, piece: u32) -> Result<(), PeerFailure> {
    let at = waiting
        .iter()
        .position(|&p| p == piece)
        .ok_or(PeerFailure::Unasked(piece))?;
    waiting.swap_remove(at);
    Ok(())
}

fn send(stream: &TcpStream, msg: &Message) -> Result<(), PeerFailure> {
    let mut out = Vec::new();
    wire::encode(msg, &mut out);
    (&mut &*stream).write_all(&out).map_err(PeerFailure::Write)
}

/// Reads one message, failing with [`PeerFailure::Slow`] once `by` has passed.
fn read_by(
    reader: &mut BufReader<&TcpStream>,
    stream: &TcpStream,
    by: Instant,
    what: &'static str,
) -> Result<Message, PeerFailure> {
    let left = by.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(PeerFailure::Slow(what));
    }
    stream
        .set_read_timeout(Some(left))
        .map_err(|e| PeerFailure::Wire(WireError::Io(e)))?;
    wire::read_message(reader).map_err(|e| match e {
        WireError::Io(io) if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            PeerFailure::Slow(what)
        }
        other => PeerFailure::Wire(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fetcher for `info` with `n` peers (keys 0..n) whose threads are these receivers.
    fn fetcher(info: &[u8], n: u64) -> (Fetcher, Vec<Receiver<Ask>>) {
        let req = FetchRequest {
            info_hash: Sha1::digest(info).into(),
            our_id: [7; 20],
            trackers: Vec::new(),
            peers: Vec::new(),
            listen_port: 0,
            max_peers: 10,
            tracker_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        };
        let (reports, _) = crossbeam_channel::unbounded();
        let mut fetcher = Fetcher::new(&req, reports);
        let mut threads = Vec::new();
        for key in 0..n {
            let (asks, thread) = crossbeam_channel::unbounded();
            let addr = SocketAddr::from(([10, 0, 0, 1], 1000 + key as u16));
            fetcher.peers.insert(
                key,
                Peer {
                    addr,
                    asks,
                    socket: None,
                    size: None,
                    asked: Vec::new(),
                    strikes: 0,
                },
            );
            threads.push(thread);
        }
        (fetcher, threads)
    }

    fn info() -> Vec<u8> {
        (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn asked(thread: &Receiver<Ask>) -> Vec<u32> {
        thread.try_iter().flat_map(|a| a.pieces).collect()
    }

    fn piece(info: &[u8], piece: u32) -> Vec<u8> {
        let start = piece as usize * METADATA_PIECE_LEN;
        info[start..(start + METADATA_PIECE_LEN).min(info.len())].to_vec()
    }

    fn serve(f: &mut Fetcher, key: PeerKey, pieces: &[u32], data: &[u8]) -> Option<Vec<u8>> {
        let mut done = None;
        for &p in pieces {
            done = f.handle(
                key,
                Report::Piece {
                    piece: p,
                    data: piece(data, p),
                },
            );
        }
        done
    }

    #[test]
    fn pieces_are_spread_and_the_copy_verified() {
        let info = info();
        let size = info.len() as u32;
        let (mut f, threads) = fetcher(&info, 2);
        assert_eq!(f.handle(0, Report::Ready { size }), None);
        assert_eq!(asked(&threads[0]), [0, 1], "a pipeline of two");
        f.handle(1, Report::Ready { size });
        assert_eq!(asked(&threads[1]), [2]);
        assert_eq!(f.serving(), 2);
        assert_eq!(serve(&mut f, 1, &[2], &info), None);
        assert_eq!(serve(&mut f, 0, &[0, 1], &info), Some(info));
    }

    #[test]
    fn a_closed_peers_pieces_go_to_another() {
        let info = info();
        let size = info.len() as u32;
        let (mut f, threads) = fetcher(&info, 2);
        f.handle(0, Report::Ready { size });
        f.handle(1, Report::Ready { size });
        assert_eq!(asked(&threads[1]), [2]);
        f.handle(
            0,
            Report::Closed {
                reason: "gone".into(),
            },
        );
        assert_eq!(
            asked(&threads[1]),
            [0],
            "one at a time: piece 2 is still out"
        );
        assert_eq!(f.ended.len(), 1);
        assert_eq!(serve(&mut f, 1, &[2], &info), None);
        assert_eq!(asked(&threads[1]), [1]);
        assert_eq!(serve(&mut f, 1, &[0, 1], &info), Some(info));
    }

    #[test]
    fn a_bad_mixed_copy_strikes_everyone_then_copies_come_from_one_peer() {
        let info = info();
        let size = info.len() as u32;
        let mut bad = info.clone();
        bad[0] ^= 1;
        let (mut f, threads) = fetcher(&info, 2);
        f.handle(0, Report::Ready { size });
        f.handle(1, Report::Ready { size });
        assert_eq!(serve(&mut f, 1, &asked(&threads[1]), &info), None);
        assert_eq!(serve(&mut f, 0, &asked(&threads[0]), &bad), None);
        assert_eq!(f.peers.len(), 2, "one strike each: nobody is dropped yet");
        assert!(f.peers.values().all(|p| p.strikes == 1));
        // Now a single peer (the older, on a tie) is asked for the whole copy, two at a time.
        assert_eq!(asked(&threads[0]), [0, 1]);
        assert_eq!(asked(&threads[1]), []);
        assert_eq!(serve(&mut f, 0, &[0, 1], &bad), None);
        assert_eq!(asked(&threads[0]), [2]);
        assert_eq!(serve(&mut f, 0, &[2], &bad), None);
        assert!(!f.peers.contains_key(&0), "it sent a bad copy alone");
        assert_eq!(
            f.ended,
            [(
                SocketAddr::from(([10, 0, 0, 1], 1000)),
                "sent metadata that does not match the info hash".to_string()
            )]
        );
        assert_eq!(asked(&threads[1]), [0, 1]);
        assert_eq!(serve(&mut f, 1, &[0, 1], &info), None);
        assert_eq!(serve(&mut f, 1, &asked(&threads[1]), &info), Some(info));
    }

    #[test]
    fn stale_and_misfit_answers() {
        let info = info();
        let size = info.len() as u32;
        let (mut f, threads) = fetcher(&info, 2);
        f.handle(0, Report::Ready { size });
        assert_eq!(asked(&threads[0]), [0, 1]);
        assert_eq!(serve(&mut f, 1, &[0], &info), None, "peer 1 was not asked");
        assert_eq!(f.assembly.as_ref().unwrap().slots[0], Slot::Asked(0));
        let short = Report::Piece {
            piece: 0,
            data: vec![0; 10],
        };
        assert_eq!(f.handle(0, short), None);
        assert!(!f.peers.contains_key(&0), "a misfit piece drops the peer");
        assert!(f.ended[0].1.contains("10-byte metadata piece 0"));
    }

    #[test]
    fn peers_offering_another_size_wait() {
        let info = info();
        let (mut f, threads) = fetcher(&info, 2);
        f.handle(0, Report::Ready { size: 999 });
        f.handle(1, Report::Ready { size: 40_000 });
        assert_eq!(asked(&threads[0]), [0]);
        assert_eq!(asked(&threads[1]), [], "a copy of 999 bytes is under way");
        let gone = Report::Closed {
            reason: "gone".into(),
        };
        f.handle(0, gone);
        assert_eq!(asked(&threads[1]), [0, 1], "the other size's copy starts");
        f.handle(1, Report::Rejected { piece: 5 });
        assert!(f.ended[1].1.contains("rejected metadata piece 5"));
        assert!(f.assembly.is_none(), "nobody offers metadata any more");
    }

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
