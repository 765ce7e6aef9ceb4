//! The main loop: the one thread that owns all piece state and makes every decision.
//!
//! Runs on the caller's thread (the program's main thread). It owns the [`Picker`] (which
//! blocks are wanted, requested from whom, received), the buffers of pieces being assembled,
//! the set of pieces on disk, and one record per peer connection. It starts the other threads
//! (listener, tracker, hasher, writer, two per peer) and then only reacts: to [`Event`]s
//! arriving on its single channel, and to a one-second tick. It never touches a socket or a
//! file. Uploads follow the same pattern backwards: a peer's request arrives as
//! [`PeerEvent::Requested`], is checked here, and goes back to that peer's sender thread as
//! [`Command::Upload`], which reads the block from disk itself.
//!
//! The life of a block: a peer thread reports [`PeerEvent::Block`]; the picker says whether we
//! wanted it; its bytes are copied into the piece's buffer; when the last block arrives the
//! buffer goes to the hasher as a [`HashJob`]; a good piece goes on to the writer, and the
//! writer's [`DiskEvent::PieceWritten`] marks it done and is announced to every peer.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use log::{debug, info, warn};

use crate::addresses::{AddressBook, MAX_KNOWN_PEERS, MAX_STRIKES};
use crate::bitfield::Bitfield;
use crate::choker::{Candidate, Choker};
use crate::geometry::{BlockRef, Geometry, BLOCK_LEN};
use crate::messages::{
    Command, DiskEvent, Event, HashJob, HashResult, PeerEvent, PeerKey, TrackerCommand,
    TrackerEvent,
};
use crate::metainfo::Metainfo;
use crate::peer::connection::{self, PeerSetup};
use crate::peer::extension::{self, MetadataMsg, OurHandshake, Pex};
use crate::peer::listener::Listener;
use crate::picker::{Picker, Received};
use crate::rng::Rng;
use crate::storage::writer::{self, ResumeSetup};
use crate::storage::{resume, FileMap, StorageError};
use crate::{hasher, tracker};

/// Bytes of piece data the session may hold at once (pieces being assembled, hashed or
/// written). This is what keeps memory flat whatever the torrent's size.
pub const PIECE_MEMORY_BUDGET: u64 = 32 * 1024 * 1024;
/// Bytes of written piece buffers kept for reuse.
const SPARE_BYTES: usize = 8 * 1024 * 1024;
/// Requests kept in flight to a new peer before its rate is known.
const INITIAL_DEPTH: usize = 32;
/// Fewest requests kept in flight to an unchoked peer.
const MIN_DEPTH: usize = 4;
/// Most requests kept in flight to one peer.
pub const MAX_DEPTH: usize = 250;
/// Seconds of a peer's rate worth of requests kept in flight.
const DEPTH_SECONDS: f64 = 2.0;
/// A peer that owes us blocks and sends nothing for this long loses them and is dropped.
pub const SNUB_TIMEOUT: Duration = Duration::from_secs(30);
/// Most withdrawn blocks remembered per peer (a late block we canceled is not unsolicited).
pub const WITHDRAWN_LIMIT: usize = 1024;
/// Connections being opened (not yet handshaken) at once.
pub const MAX_HALF_OPEN: usize = 16;
/// Below this many connected peers, the session asks the trackers for more.
const WANT_MORE_PEERS: usize = 10;
/// How often the session updates rates, checks for snubs and reports progress.
const TICK: Duration = Duration::from_secs(1);
/// How long after a peer's extension handshake we send it our first peer exchange message.
const PEX_FIRST: Duration = Duration::from_secs(1);
/// Time between two peer exchange messages to the same peer (BEP 11: at most one a minute).
const PEX_INTERVAL: Duration = Duration::from_secs(60);
/// Ticks between two runs of the choker.
const RECHOKE_TICKS: u64 = 10;
/// A peer connected for less than this counts as new for the optimistic unchoke.
const NEW_PEER_AGE: Duration = Duration::from_secs(60);

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
    /// Peer addresses we know of.
    pub peers_known: usize,
    /// Payload bytes sent to peers so far.
    pub uploaded_bytes: u64,
    /// Payload bytes per second sent lately.
    pub upload_rate: f64,
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
    /// No peer to talk to and no tracker that answers, for the whole tracker timeout. Holds
    /// the trackers' last errors (one per line), if there are trackers.
    NoPeers(Option<String>),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Storage(e) => write!(f, "{e}"),
            Error::Thread(e) => write!(f, "cannot start a thread: {e}"),
            Error::Listen(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            Error::NoPeers(None) => write!(
                f,
                "no peers: the torrent has no tracker and no peer was given"
            ),
            Error::NoPeers(Some(errors)) => write!(f, "no peers, and {errors}"),
        }
    }
}

impl std::error::Error for Error {}

/// Downloads every piece of `meta` into `opts.output_dir`, serving what it has to other
/// peers meanwhile, then seeds as `opts.seed` says. Returns once every piece is verified and
/// written (or the session was stopped), the trackers have been told, and the worker threads
/// have ended. `progress` is called about once a second from this thread.
pub fn download(
    meta: Metainfo,
    opts: Options,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Summary, Error> {
    let mut session = Session::start(meta, opts)?;
    let result = session.run(progress);
    session.shut_down();
    result
}

/// A fresh 20-byte peer id: client prefix plus random bytes.
pub fn new_peer_id() -> [u8; 20] {
    // "SR" for strand: not a client code anyone has registered (BEP 20's list).
    let mut id = *b"-SR0010-000000000000";
    let mut rng = Rng::from_entropy();
    for byte in id[8..].iter_mut() {
        *byte = b"0123456789abcdefghijklmnopqrstuvwxyz"[rng.index(36)];
    }
    id
}

/// Takes one count of `block` from `withdrawn`; false if there was none.
fn take_one(withdrawn: &mut HashMap<BlockRef, u32>, block: BlockRef) -> bool {
    match withdrawn.get_mut(&block) {
        Some(n) if *n > 1 => {
            *n -= 1;
            true
        }
        Some(_) => withdrawn.remove(&block).is_some(),
        None => false,
    }
}

/// The pieces that hold at least one byte of a chosen file.
fn wanted_pieces(meta: &Metainfo, chosen: &[bool]) -> Bitfield {
    let g = meta.geometry;
    let mut wanted = Bitfield::new(g.piece_count() as usize);
    let piece_len = u64::from(g.piece_len());
    let mut start = 0u64;
    for (f, &c) in meta.files.iter().zip(chosen) {
        if c && f.length > 0 {
            let first = start / piece_len;
            let last = (start + f.length - 1) / piece_len;
            for p in first..=last {
                wanted.set(p as usize);
            }
        }
        start += f.length;
    }
    wanted
}

/// The main thread's record of one peer connection.
struct Peer {
    addr: SocketAddr,
    commands: Sender<Command>,
    /// Pieces the peer has told us it has.
    has: Bitfield,
    /// The handshake is done.
    connected: bool,
    /// The peer is choking us (the initial state of every connection).
    choking_us: bool,
    /// We told the peer we are interested.
    interested: bool,
    /// Requests to keep in flight, following the peer's rate.
    depth: usize,
    /// Most requests the peer accepts in flight (its `reqq`, else [`MAX_DEPTH`]).
    max_depth: usize,
    /// Payload bytes received since the last tick.
    bytes_this_tick: u64,
    /// Smoothed payload bytes per second.
    rate: f64,
    /// Last time the peer sent a block, or we started waiting for one.
    last_block: Instant,
    /// When the handshake completed (or the thread started, before that).
    since: Instant,
    /// The peer wants pieces from us.
    peer_interested: bool,
    /// We are choking the peer (the initial state of every connection).
    choking_peer: bool,
    /// Payload bytes sent since the last tick.
    sent_this_tick: u64,
    /// Smoothed payload bytes per second sent.
    upload_rate: f64,
    /// The peer dialed us (its address's port is not one we can dial).
    incoming: bool,
    /// The port the peer listens on, from its extension handshake.
    listen_port: Option<u16>,
    /// The peer's id for `ut_metadata` messages, if it speaks them.
    ut_metadata: Option<u8>,
    /// The peer's id for `ut_pex` messages, if it speaks them (never for private torrents).
    ut_pex: Option<u8>,
    /// When the next peer exchange message to this peer is due.
    pex_due: Option<Instant>,
    /// The addresses our peer exchange messages have told this peer about and not dropped.
    pex_sent: HashSet<SocketAddr>,
    /// Blocks we asked this peer for and then withdrew (a cancel, or its choke), with how many
    /// times: they may still arrive, once per request, and are then not unsolicited.
    withdrawn: HashMap<BlockRef, u32>,
}

impl Peer {
    /// The address other peers can dial to reach this one, if we know it.
    fn dial_addr(&self) -> Option<SocketAddr> {
        if self.incoming {
            self.listen_port
                .map(|port| SocketAddr::new(self.addr.ip(), port))
        } else {
            Some(self.addr)
        }
    }
}

/// A piece being assembled from blocks.
struct PieceBuffer {
    data: Vec<u8>,
    /// Who sent each block (by block index), to find the culprit if the hash fails.
    block_from: Vec<Option<SocketAddr>>,
}

/// One block of a piece that failed its hash: who sent it and what it hashed to. When the
/// piece later passes, a block whose digest differs from the good copy's was bad.
struct Suspect {
    block: usize,
    from: SocketAddr,
    digest: [u8; 20],
}

/// Threads the session started and must wind down.
struct Workers {
    hash_jobs: Option<Sender<HashJob>>,
    hasher: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
    tracker: Option<(Sender<TrackerCommand>, JoinHandle<()>)>,
}

struct Session {
    meta: Metainfo,
    opts: Options,
    our_id: [u8; 20],
    geometry: Geometry,
    picker: Picker,
    /// Pieces verified and on disk.
    have: Bitfield,
    peers: HashMap<PeerKey, Peer>,
    addresses: AddressBook,
    next_key: PeerKey,
    buffers: HashMap<u32, PieceBuffer>,
    /// Buffers of written pieces, ready for new ones.
    spare_buffers: Vec<Vec<u8>>,
    /// Most requests in flight per peer while many peers share the piece memory budget.
    depth_cap: usize,
    /// Pieces handed to the hasher (and then the writer) whose fate we wait for, with the
    /// addresses that sent their blocks.
    in_pipeline: HashMap<u32, Vec<Option<SocketAddr>>>,
    /// Blocks of pieces that failed their hash, kept until the piece passes.
    suspects: HashMap<u32, Vec<Suspect>>,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
    workers: Workers,
    started: Instant,
    received_bytes: u64,
    verified_bytes: u64,
    failed_pieces: u32,
    rate: f64,
    bytes_this_tick: u64,
    uploaded_bytes: u64,
    upload_rate: f64,
    sent_this_tick: u64,
    choker: Choker,
    ticks: u64,
    files: Arc<FileMap>,
    /// Pieces that touch a chosen file: the ones to fetch.
    wanted: Bitfield,
    /// Bytes of the wanted pieces.
    wanted_bytes: u64,
    /// Wanted pieces not on disk yet.
    wanted_missing: usize,
    listener: Option<Listener>,
    /// When every piece was on disk, if it is.
    completed_at: Option<Instant>,
    /// The trackers' last errors while none answers (cleared when one does).
    tracker_errors: Option<String>,
    /// Since when we have had no peer connection at all.
    lonely_since: Option<Instant>,
    interrupted: bool,
}

impl Session {
    fn start(meta: Metainfo, opts: Options) -> Result<Session, Error> {
        let geometry = meta.geometry;
        let pieces = geometry.piece_count() as usize;
        let chosen = opts
            .chosen
            .clone()
            .unwrap_or_else(|| vec![true; meta.files.len()]);
        let map = Arc::new(FileMap::selective(&opts.output_dir, &meta, &chosen));
        writer::prepare(&map, &meta.files, &chosen, opts.preallocate).map_err(Error::Storage)?;
        let have = match &opts.verified {
            Some(v) if v.len() == pieces => v.clone(),
            _ => Bitfield::new(pieces),
        };
        let wanted = wanted_pieces(&meta, &chosen);
        let size = |p: usize| u64::from(geometry.piece_size(p as u32));
        let wanted_bytes: u64 = wanted.iter().map(size).sum();
        let verified_bytes: u64 = wanted.iter().filter(|&p| have.has(p)).map(size).sum();
        let wanted_missing = wanted.iter().filter(|&p| !have.has(p)).count();
        // The picker never picks what we have or do not want.
        let mut skip = have.clone();
        for p in 0..pieces {
            if !wanted.has(p) {
                skip.set(p);
            }
        }

        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let (hash_tx, hash_rx) = crossbeam_channel::unbounded();
        let (write_tx, write_rx) = crossbeam_channel::unbounded();
        let resume = ResumeSetup {
            path: resume::path(&opts.output_dir, &meta.info_hash),
            info_hash: meta.info_hash,
            have: have.clone(),
        };
        let writer = writer::spawn(Arc::clone(&map), resume, write_rx, events_tx.clone())
            .map_err(Error::Thread)?;
        let hasher = hasher::spawn(
            meta.piece_hashes.clone(),
            hash_rx,
            write_tx,
            events_tx.clone(),
        )
        .map_err(Error::Thread)?;
        let our_id = new_peer_id();
        let listener = match opts.listen {
            Some(addr) => {
                Some(Listener::start(addr, events_tx.clone()).map_err(|e| Error::Listen(addr, e))?)
            }
            None => None,
        };
        let port = listener.as_ref().map_or(0, |l| l.addr().port());
        let tracker = (!meta.trackers.is_empty()).then(|| {
            let config = tracker::TrackerConfig {
                tiers: meta.trackers.clone(),
                info_hash: meta.info_hash,
                peer_id: our_id,
                port,
                left: wanted_bytes - verified_bytes,
            };
            tracker::spawn_with_timeout(config, opts.tracker_timeout, events_tx.clone())
        });
        let seed = Rng::from_entropy().next_u64();
        let mut session = Session {
            picker: Picker::new(geometry, &skip, seed),
            choker: Choker::new(seed.rotate_left(32)),
            files: map,
            completed_at: (wanted_missing == 0).then(Instant::now),
            wanted,
            wanted_bytes,
            wanted_missing,
            have,
            geometry,
            our_id,
            peers: HashMap::new(),
            addresses: AddressBook::default(),
            next_key: 0,
            buffers: HashMap::new(),
            spare_buffers: Vec::new(),
            depth_cap: MAX_DEPTH,
            in_pipeline: HashMap::new(),
            suspects: HashMap::new(),
            events_tx,
            events_rx,
            workers: Workers {
                hash_jobs: Some(hash_tx),
                hasher: Some(hasher),
                writer: Some(writer),
                tracker,
            },
            started: Instant::now(),
            received_bytes: 0,
            verified_bytes,
            failed_pieces: 0,
            rate: 0.0,
            bytes_this_tick: 0,
            uploaded_bytes: 0,
            upload_rate: 0.0,
            sent_this_tick: 0,
            ticks: 0,
            listener,
            interrupted: false,
            tracker_errors: None,
            lonely_since: None,
            meta,
            opts,
        };
        let direct = session.opts.peers.clone();
        session.learn_peers(direct);
        Ok(session)
    }

    /// Reacts to events and ticks until the session is due to end or is stopped.
    fn run(&mut self, progress: &mut dyn FnMut(&Progress)) -> Result<Summary, Error> {
        let ticker = crossbeam_channel::tick(TICK);
        let stop = self
            .opts
            .stop
            .clone()
            .unwrap_or_else(crossbeam_channel::never);
        while !self.finished() {
            select! {
                recv(self.events_rx) -> event => {
                    // We hold a sender ourselves, so the channel cannot disconnect.
                    if let Ok(event) = event {
                        self.handle(event)?;
                    }
                }
                recv(ticker) -> _ => {
                    self.tick()?;
                    progress(&self.progress());
                }
                recv(stop) -> _ => {
                    info!("stopping on request");
                    self.interrupted = true;
                    break;
                }
            }
        }
        progress(&self.progress());
        Ok(Summary {
            bytes: self.verified_bytes,
            total_bytes: self.wanted_bytes,
            elapsed: self.started.elapsed(),
            uploaded_bytes: self.uploaded_bytes,
            interrupted: self.interrupted,
            received_bytes: self.received_bytes,
            failed_pieces: self.failed_pieces,
        })
    }

    /// Whether the session has done what it was asked: complete, and seeded enough.
    fn finished(&self) -> bool {
        let Some(done) = self.completed_at else {
            return false;
        };
        match self.opts.seed {
            SeedPolicy::No => true,
            SeedPolicy::Forever => false,
            SeedPolicy::Until { ratio, time } => {
                let total = self.geometry.total_len().max(1) as f64;
                ratio.is_some_and(|r| self.uploaded_bytes as f64 / total >= r)
                    || time.is_some_and(|t| done.elapsed() >= t)
            }
        }
    }

    fn handle(&mut self, event: Event) -> Result<(), Error> {
        match event {
            Event::Peer(key, event) => self.on_peer_event(key, event),
            Event::Tracker(TrackerEvent::Peers(addrs)) => {
                self.tracker_errors = None;
                self.learn_peers(addrs);
            }
            Event::Tracker(TrackerEvent::Warning(text)) => warn!("tracker warning: {text}"),
            Event::Tracker(TrackerEvent::Failed(text)) => {
                warn!("{text}");
                self.tracker_errors = Some(text);
            }
            Event::Hashed(result) => self.on_hashed(result),
            Event::Disk(DiskEvent::PieceWritten { piece, buffer }) => {
                let piece_len = self.geometry.piece_len() as usize;
                if (self.spare_buffers.len() + 1) * piece_len <= SPARE_BYTES {
                    self.spare_buffers.push(buffer);
                }
                self.on_written(piece);
            }
            Event::Accepted { stream, addr } => self.on_accepted(stream, addr),
            Event::Disk(DiskEvent::Failed { path, error }) => {
                return Err(Error::Storage(StorageError {
                    op: "write",
                    path,
                    source: std::io::Error::other(error),
                }))
            }
        }
        Ok(())
    }

    fn on_peer_event(&mut self, key: PeerKey, event: PeerEvent) {
        // Events from a connection we already let go of are stale.
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        match event {
            PeerEvent::ExtensionHandshake(theirs) => {
                if let Some(reqq) = theirs.reqq {
                    peer.max_depth = (reqq as usize).clamp(MIN_DEPTH, MAX_DEPTH);
                    peer.depth = peer.depth.min(peer.max_depth);
                }
                peer.listen_port = theirs.listen_port;
                peer.ut_metadata = theirs.ut_metadata;
                peer.ut_pex = theirs.ut_pex.filter(|_| !self.meta.private);
                if peer.ut_pex.is_some() {
                    peer.pex_due = Some(Instant::now() + PEX_FIRST);
                }
            }
            PeerEvent::MetadataRequested(piece) => self.on_metadata_request(key, piece),
            PeerEvent::PexPeers(addrs) => {
                if !self.meta.private {
                    self.learn_peers(addrs);
                }
            }
            PeerEvent::Connected { extensions, .. } => {
                peer.connected = true;
                peer.last_block = Instant::now();
                peer.since = Instant::now();
                self.addresses.handshaken(peer.addr);
                if self.have.count() > 0 {
                    let _ = peer
                        .commands
                        .send(Command::Bitfield(self.have.as_bytes().to_vec()));
                }
                if extensions {
                    let ours = OurHandshake {
                        reqq: connection::ADVERTISED_REQQ,
                        metadata_size: u32::try_from(self.meta.info_bytes.len()).ok(),
                        listen_port: self.listener.as_ref().map(|l| l.addr().port()),
                        yourip: Some(peer.addr.ip()),
                        pex: !self.meta.private,
                    };
                    let _ = peer.commands.send(Command::Extended {
                        id: extension::HANDSHAKE_ID,
                        payload: extension::encode_handshake(&ours),
                    });
                }
            }
            PeerEvent::Bitfield(bits) => {
                // A late bitfield (aria2 sends one after its haves) only adds pieces.
                for piece in bits.iter() {
                    if peer.has.set(piece) {
                        self.picker.peer_has_piece(piece as u32);
                    }
                }
                if peer.has.is_full() {
                    self.addresses.mark_seed(peer.addr);
                }
                self.update_interest(key);
            }
            PeerEvent::Have(piece) => {
                if peer.has.set(piece as usize) {
                    self.picker.peer_has_piece(piece);
                }
                if peer.has.is_full() {
                    self.addresses.mark_seed(peer.addr);
                }
                self.update_interest(key);
            }
            PeerEvent::Choked => {
                peer.choking_us = true;
                for block in self.picker.release_peer(key) {
                    *peer.withdrawn.entry(block).or_default() += 1;
                }
                self.fill_all();
            }
            PeerEvent::Unchoked => {
                peer.choking_us = false;
                peer.last_block = Instant::now();
                self.fill(key);
            }
            PeerEvent::Interested => {
                peer.peer_interested = true;
                let unchoked = self.peers.values().filter(|p| !p.choking_peer).count();
                if unchoked <= crate::choker::REGULAR_SLOTS {
                    self.set_choking(key, false);
                }
            }
            PeerEvent::NotInterested => peer.peer_interested = false,
            PeerEvent::Requested(block) => self.on_request(key, block),
            PeerEvent::Canceled(block) => self.send(key, Command::SkipUpload(block)),
            PeerEvent::Block { block, data } => self.on_block(key, block, data),
            PeerEvent::Closed { reason } => {
                debug!("{}: closed: {reason}", peer.addr);
                self.forget_peer(key);
                self.fill_all();
            }
        }
    }

    /// A peer asked for a block: serve it if we may, drop the peer if the request is bogus.
    fn on_request(&mut self, key: PeerKey, block: BlockRef) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.choking_peer {
            // Requests from a choked peer are simply not answered, as the spec says.
            return;
        }
        let bogus = if !self
            .geometry
            .is_valid_request(block.piece, block.offset, block.len)
        {
            Some("a request outside the piece or over 16 KiB")
        } else if !self.have.has(block.piece as usize) {
            Some("a request for a piece we do not have")
        } else {
            None
        };
        if let Some(why) = bogus {
            // Not a warning: nothing the user can do about a stranger's protocol errors, and
            // a peer that keeps reconnecting would fill the terminal (the soak saw 3,000).
            info!("{}: dropped for {why}: {block:?}", peer.addr);
            self.send(key, Command::Disconnect);
            return;
        }
        let len = u64::from(block.len);
        peer.sent_this_tick += len;
        self.sent_this_tick += len;
        self.uploaded_bytes += len;
        self.send(key, Command::Upload(block));
    }

    /// A peer asked for a piece of the metadata: send it, or a reject for a piece that does
    /// not exist.
    fn on_metadata_request(&mut self, key: PeerKey, piece: u32) {
        let Some(id) = self.peers.get(&key).and_then(|p| p.ut_metadata) else {
            return;
        };
        let info = &self.meta.info_bytes;
        let total = u32::try_from(info.len()).unwrap_or(u32::MAX);
        let msg = match extension::expected_piece_len(total, piece) {
            Some(len) => {
                let start = piece as usize * extension::METADATA_PIECE_LEN;
                MetadataMsg::Data {
                    piece,
                    total_size: total,
                    data: info[start..start + len].to_vec(),
                }
            }
            None => MetadataMsg::Reject { piece },
        };
        let payload = extension::encode_metadata(&msg);
        self.send(key, Command::Extended { id, payload });
    }

    /// Peer exchange (BEP 11): tells each peer that speaks it, at most once a minute, which
    /// dialable peers we are connected to now that we have not told it of, and which of
    /// those we told it of are gone. Never for private torrents.
    fn send_pex(&mut self) {
        if self.meta.private {
            return;
        }
        let now = Instant::now();
        let current: HashSet<SocketAddr> = self
            .peers
            .values()
            .filter(|p| p.connected)
            .filter_map(Peer::dial_addr)
            .collect();
        for peer in self.peers.values_mut() {
            let (Some(id), Some(due)) = (peer.ut_pex, peer.pex_due) else {
                continue;
            };
            if due > now {
                continue;
            }
            peer.pex_due = Some(now + PEX_INTERVAL);
            let own = peer.dial_addr();
            let added: Vec<SocketAddr> = current
                .iter()
                .filter(|a| Some(**a) != own && !peer.pex_sent.contains(a))
                .take(extension::MAX_PEX_PEERS)
                .copied()
                .collect();
            let dropped: Vec<SocketAddr> = peer
                .pex_sent
                .iter()
                .filter(|a| !current.contains(a))
                .take(extension::MAX_PEX_PEERS)
                .copied()
                .collect();
            if added.is_empty() && dropped.is_empty() {
                continue;
            }
            peer.pex_sent.extend(added.iter().copied());
            for d in &dropped {
                peer.pex_sent.remove(d);
            }
            let payload = extension::encode_pex(&Pex { added, dropped });
            let _ = peer.commands.send(Command::Extended { id, payload });
        }
    }

    /// A peer dialed us: give it a thread, unless we have enough peers already.
    fn on_accepted(&mut self, stream: TcpStream, addr: SocketAddr) {
        if self.peers.len() >= self.opts.max_peers {
            debug!("{addr}: refused, already {} peers", self.peers.len());
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        if self.addresses.is_banned(addr) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        let (key, cmd_rx) = self.add_peer(addr, true);
        if let Err(e) = connection::spawn_incoming(self.peer_setup(key, addr), stream, cmd_rx) {
            warn!("cannot start a thread for {addr}: {e}");
            self.peers.remove(&key);
        }
    }

    /// Chokes or unchokes a peer, if that changes anything.
    fn set_choking(&mut self, key: PeerKey, choke: bool) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.choking_peer != choke {
            peer.choking_peer = choke;
            self.send(
                key,
                if choke {
                    Command::Choke
                } else {
                    Command::Unchoke
                },
            );
        }
    }

    /// Every [`RECHOKE_TICKS`]: lets the choker pick whom we upload to.
    fn rechoke(&mut self) {
        let seeding = self.completed_at.is_some();
        let now = Instant::now();
        let candidates: Vec<Candidate> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connected)
            .map(|(&key, p)| Candidate {
                key,
                interested: p.peer_interested,
                rate: if seeding { p.upload_rate } else { p.rate },
                is_new: now.duration_since(p.since) < NEW_PEER_AGE,
            })
            .collect();
        let unchoke = self.choker.rechoke(&candidates);
        for c in candidates {
            self.set_choking(c.key, !unchoke.contains(&c.key));
        }
    }

    fn on_block(&mut self, key: PeerKey, block: BlockRef, data: Vec<u8>) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let len = u64::from(block.len);
        self.received_bytes += len;
        self.bytes_this_tick += len;
        peer.bytes_this_tick += len;
        peer.last_block = Instant::now();
        let addr = peer.addr;
        let solicited =
            self.picker.is_requested_from(key, block) || take_one(&mut peer.withdrawn, block);
        if !solicited {
            info!("{addr}: dropped for sending a block nobody asked for: {block:?}");
            self.send(key, Command::Disconnect);
            return;
        }
        if let Received::Wanted {
            cancel,
            piece_complete,
        } = self.picker.block_received(key, block)
        {
            for other in cancel {
                if let Some(p) = self.peers.get_mut(&other) {
                    if p.withdrawn.len() >= WITHDRAWN_LIMIT {
                        p.withdrawn.clear();
                    }
                    *p.withdrawn.entry(block).or_default() += 1;
                }
                self.send(other, Command::Cancel(block));
            }
            let size = self.geometry.piece_size(block.piece) as usize;
            let spare = &mut self.spare_buffers;
            let buffer = self.buffers.entry(block.piece).or_insert_with(|| {
                // A recycled buffer is overwritten block by block before it is hashed, so its
                // old bytes never matter; only a change of length costs a fill.
                let mut data = spare.pop().unwrap_or_default();
                data.resize(size, 0);
                PieceBuffer {
                    data,
                    block_from: vec![None; size.div_ceil(BLOCK_LEN as usize)],
                }
            });
            let at = block.offset as usize;
            buffer.data[at..at + data.len()].copy_from_slice(&data);
            buffer.block_from[at / BLOCK_LEN as usize] = Some(addr);
            if piece_complete {
                self.submit_piece(block.piece);
            }
        }
        self.fill(key);
    }

    /// Sends a complete piece to the hasher.
    fn submit_piece(&mut self, piece: u32) {
        let Some(buffer) = self.buffers.remove(&piece) else {
            return;
        };
        self.in_pipeline.insert(piece, buffer.block_from);
        if let Some(jobs) = &self.workers.hash_jobs {
            // The hasher only stops when we drop this sender.
            let _ = jobs.send(HashJob {
                piece,
                data: buffer.data,
                block_digests: self.suspects.contains_key(&piece),
            });
        }
    }

    /// The hasher's verdict. A bad piece is fetched again. Blame is laid carefully, so that an
    /// honest peer that shared a piece with a liar is not dropped with it ("smart ban"): a
    /// piece that came from a single peer gives that peer a strike; the blocks of a piece
    /// from several peers are remembered, and when a good copy of the piece passes later,
    /// every peer that had sent a block that differs from it is dropped.
    fn on_hashed(&mut self, result: HashResult) {
        let block_from = self.in_pipeline.remove(&result.piece).unwrap_or_default();
        if result.ok {
            self.picker.piece_verified(result.piece);
            // Back in the pipeline until the writer is done with it.
            self.in_pipeline.insert(result.piece, Vec::new());
            if let (Some(bad), Some(good)) =
                (self.suspects.remove(&result.piece), result.block_digests)
            {
                for s in bad {
                    if good.get(s.block) != Some(&s.digest) {
                        let why = format!("bad data in piece {} block {}", result.piece, s.block);
                        self.strike(s.from, MAX_STRIKES, &why);
                    }
                }
            }
            return;
        }
        self.failed_pieces += 1;
        self.picker.piece_failed(result.piece);
        let mut senders: Vec<SocketAddr> = block_from.iter().flatten().copied().collect();
        senders.sort();
        senders.dedup();
        warn!(
            "piece {} failed its hash check (sent by {})",
            result.piece,
            senders
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let [only] = senders[..] {
            self.strike(only, 1, &format!("bad piece {}", result.piece));
        }
        let digests = result.block_digests.unwrap_or_default();
        let suspects = self.suspects.entry(result.piece).or_default();
        for (block, (from, digest)) in block_from.iter().zip(digests).enumerate() {
            if let Some(from) = *from {
                suspects.push(Suspect {
                    block,
                    from,
                    digest,
                });
            }
        }
        // The piece is wanted again: peers we lost interest in (because every piece we
        // lacked was already awaiting its hash) may have it, so interest is re-evaluated
        // for everyone, which also sends the new requests.
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.update_interest(key);
        }
    }

    /// Adds `count` strikes to `addr`; at [`MAX_STRIKES`] its connections are closed and it
    /// is never dialed or accepted again.
    fn strike(&mut self, addr: SocketAddr, count: u32, why: &str) {
        if !self.addresses.strike(addr, count) {
            return;
        }
        warn!("{addr}: dropped ({why})");
        let keys: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.addr == addr)
            .map(|(&k, _)| k)
            .collect();
        for key in keys {
            self.send(key, Command::Disconnect);
        }
    }

    fn on_written(&mut self, piece: u32) {
        self.in_pipeline.remove(&piece);
        if !self.have.set(piece as usize) {
            return;
        }
        if self.wanted.has(piece as usize) {
            self.verified_bytes += u64::from(self.geometry.piece_size(piece));
            self.wanted_missing -= 1;
        }
        let connected: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connected)
            .map(|(&k, _)| k)
            .collect();
        for key in connected {
            self.send(key, Command::Have(piece));
            self.update_interest(key);
        }
        if self.wanted_missing == 0 && self.completed_at.is_none() {
            self.completed_at = Some(Instant::now());
            info!(
                "{}: complete, {} bytes in {:.1} s",
                self.meta.name,
                self.wanted_bytes,
                self.started.elapsed().as_secs_f64()
            );
            if let Some((tracker, _)) = &self.workers.tracker {
                let _ = tracker.send(TrackerCommand::Completed);
            }
        }
    }

    /// Tells a peer whether we want something it has, when that changes, then requests.
    fn update_interest(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !peer.connected {
            // Our bitfield must be the first message; interest follows the handshake.
            return;
        }
        let want = self.picker.is_interesting(&peer.has);
        if want != peer.interested {
            peer.interested = want;
            let cmd = if want {
                Command::Interested
            } else {
                Command::NotInterested
            };
            self.send(key, cmd);
        }
        self.fill(key);
    }

    /// Tops up a peer's requests to its pipeline depth.
    fn fill(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        if !peer.connected || peer.choking_us || !peer.interested {
            return;
        }
        let depth = peer.depth.min(self.depth_cap);
        let outstanding = self.picker.requested_from(key);
        if outstanding >= depth {
            return;
        }
        let blocks = self
            .picker
            .pick(key, &peer.has, depth - outstanding, self.may_start_piece());
        if blocks.is_empty() {
            return;
        }
        if outstanding == 0 {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.last_block = Instant::now();
            }
        }
        for b in blocks {
            self.send(key, Command::Request(b));
        }
    }

    fn fill_all(&mut self) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.fill(key);
        }
    }

    /// Whether starting one more piece stays inside [`PIECE_MEMORY_BUDGET`]. Two pieces are
    /// always allowed, so that huge pieces still make progress.
    fn may_start_piece(&self) -> bool {
        let held = self.picker.partial_pieces() + self.in_pipeline.len();
        held < 2 || (held as u64 + 1) * u64::from(self.geometry.piece_len()) <= PIECE_MEMORY_BUDGET
    }

    fn send(&self, key: PeerKey, cmd: Command) {
        if let Some(peer) = self.peers.get(&key) {
            // A closed channel means the thread is ending; its `Closed` event is on the way.
            let _ = peer.commands.send(cmd);
        }
    }

    /// Drops our record of a connection and puts its blocks back in the pool.
    fn forget_peer(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        self.picker.peer_gone(key, &peer.has);
        self.addresses
            .closed(peer.addr, peer.connected, Instant::now());
    }

    fn learn_peers(&mut self, addrs: Vec<SocketAddr>) {
        for addr in addrs {
            if !self.is_us(addr) && !self.addresses.learn(addr) {
                debug!("{addr}: not remembered, already {MAX_KNOWN_PEERS} addresses");
            }
        }
        self.connect_more();
    }

    /// Whether `addr` is our own listening socket (trackers list us among the peers).
    fn is_us(&self, addr: SocketAddr) -> bool {
        self.listener.as_ref().is_some_and(|l| {
            let ours = l.addr();
            // Trackers on this host list us at the address our announce came from, which
            // may be a loopback address other than the one we listen on.
            addr.port() == ours.port()
                && (addr.ip() == ours.ip() || addr.ip().is_loopback() || addr.ip().is_unspecified())
        })
    }

    /// Records a new connection; the caller starts its thread.
    fn add_peer(&mut self, addr: SocketAddr, incoming: bool) -> (PeerKey, Receiver<Command>) {
        let key = self.next_key;
        self.next_key += 1;
        let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
        let now = Instant::now();
        self.peers.insert(
            key,
            Peer {
                addr,
                commands: cmd_tx,
                has: Bitfield::new(self.geometry.piece_count() as usize),
                connected: false,
                choking_us: true,
                interested: false,
                depth: INITIAL_DEPTH,
                max_depth: MAX_DEPTH,
                bytes_this_tick: 0,
                rate: 0.0,
                last_block: now,
                since: now,
                peer_interested: false,
                choking_peer: true,
                sent_this_tick: 0,
                upload_rate: 0.0,
                incoming,
                listen_port: None,
                ut_metadata: None,
                ut_pex: None,
                pex_due: None,
                pex_sent: HashSet::new(),
                withdrawn: HashMap::new(),
            },
        );
        (key, cmd_rx)
    }

    fn peer_setup(&self, key: PeerKey, addr: SocketAddr) -> PeerSetup {
        PeerSetup {
            key,
            addr,
            info_hash: self.meta.info_hash,
            our_id: self.our_id,
            geometry: self.geometry,
            events: self.events_tx.clone(),
            files: Arc::clone(&self.files),
        }
    }

    /// Dials known addresses until we reach the peer and half-open limits.
    fn connect_more(&mut self) {
        let now = Instant::now();
        let half_open = self.peers.values().filter(|p| !p.connected).count();
        let candidates = self.addresses.to_dial(now, self.have.is_full());
        for addr in candidates
            .into_iter()
            .take(MAX_HALF_OPEN.saturating_sub(half_open))
        {
            if self.peers.len() >= self.opts.max_peers {
                break;
            }
            let (key, cmd_rx) = self.add_peer(addr, false);
            if let Err(e) = connection::spawn_outgoing(self.peer_setup(key, addr), cmd_rx) {
                warn!("cannot start a thread for {addr}: {e}");
                self.peers.remove(&key);
                break;
            }
            self.addresses.dialing(addr);
        }
    }

    /// Once a second: rates, pipeline depths, snubbed peers, new connections, tracker totals;
    /// gives up when there has been no peer and no working tracker for the tracker timeout.
    fn tick(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        let secs = TICK.as_secs_f64();
        self.ticks += 1;
        self.rate = 0.5 * self.rate + 0.5 * self.bytes_this_tick as f64 / secs;
        self.upload_rate = 0.5 * self.upload_rate + 0.5 * self.sent_this_tick as f64 / secs;
        self.bytes_this_tick = 0;
        self.sent_this_tick = 0;
        let seeding = self.have.is_full();
        let mut snubbed = Vec::new();
        let mut useless = Vec::new();
        for (&key, peer) in self.peers.iter_mut() {
            peer.rate = 0.5 * peer.rate + 0.5 * peer.bytes_this_tick as f64 / secs;
            peer.upload_rate = 0.5 * peer.upload_rate + 0.5 * peer.sent_this_tick as f64 / secs;
            peer.bytes_this_tick = 0;
            peer.sent_this_tick = 0;
            if seeding && peer.has.is_full() {
                // Two seeds have nothing to say to each other.
                useless.push(key);
            }
            let wanted = (peer.rate * DEPTH_SECONDS / f64::from(BLOCK_LEN)) as usize;
            peer.depth = wanted
                .clamp(MIN_DEPTH, MAX_DEPTH)
                .max(peer.depth.min(INITIAL_DEPTH));
            let owes = self.picker.requested_from(key) > 0;
            if owes && now.duration_since(peer.last_block) > SNUB_TIMEOUT {
                snubbed.push(key);
            }
        }
        for key in snubbed {
            if let Some(peer) = self.peers.get(&key) {
                debug!("{}: snubbed us for {} s", peer.addr, SNUB_TIMEOUT.as_secs());
            }
            self.picker.release_peer(key);
            self.send(key, Command::Disconnect);
        }
        for key in useless {
            self.send(key, Command::Disconnect);
        }
        if self.ticks % RECHOKE_TICKS == 0 {
            self.rechoke();
        }
        self.send_pex();
        self.connect_more();
        self.fill_all();
        // Each peer that sends to us gets a fair share of the blocks the piece memory budget
        // holds, so that many peers share partial pieces instead of the first few claiming
        // the whole budget (with small pieces, a peer at full depth holds several pieces).
        let sending = self
            .peers
            .values()
            .filter(|p| p.connected && !p.choking_us && p.interested)
            .count()
            .max(1);
        let budget_blocks = (PIECE_MEMORY_BUDGET / u64::from(BLOCK_LEN)) as usize;
        self.depth_cap = (budget_blocks / sending).clamp(MIN_DEPTH, MAX_DEPTH);
        let connected = self.peers.values().filter(|p| p.connected).count();
        if let Some((tracker, _)) = &self.workers.tracker {
            let _ = tracker.send(TrackerCommand::Progress {
                uploaded: self.uploaded_bytes,
                downloaded: self.verified_bytes,
                left: self.wanted_bytes - self.verified_bytes,
            });
            if connected < WANT_MORE_PEERS && self.completed_at.is_none() {
                let _ = tracker.send(TrackerCommand::NeedPeers);
            }
        }
        self.give_up_when_alone()
    }

    /// Fails the session after a whole tracker timeout with no peer at all while no tracker
    /// answers (or there is none): waiting longer would only hang.
    fn give_up_when_alone(&mut self) -> Result<(), Error> {
        if !self.peers.is_empty() || self.completed_at.is_some() {
            self.lonely_since = None;
            return Ok(());
        }
        let since = *self.lonely_since.get_or_insert_with(Instant::now);
        let no_tracker = self.workers.tracker.is_none();
        if (no_tracker || self.tracker_errors.is_some())
            && since.elapsed() >= self.opts.tracker_timeout
        {
            return Err(Error::NoPeers(self.tracker_errors.clone()));
        }
        Ok(())
    }

    fn progress(&self) -> Progress {
        Progress {
            verified_bytes: self.verified_bytes,
            total_bytes: self.wanted_bytes,
            download_rate: self.rate,
            peers_connected: self.peers.values().filter(|p| p.connected).count(),
            peers_known: self.addresses.dialable_count(),
            uploaded_bytes: self.uploaded_bytes,
            upload_rate: self.upload_rate,
        }
    }

    /// Hangs up on every peer, tells the trackers we stopped, and waits for the workers.
    fn shut_down(&mut self) {
        for key in self.peers.keys().copied().collect::<Vec<_>>() {
            self.send(key, Command::Disconnect);
        }
        self.peers.clear();
        if let Some(listener) = self.listener.take() {
            listener.stop();
        }
        if let Some((tracker, handle)) = self.workers.tracker.take() {
            let _ = tracker.send(TrackerCommand::Stop);
            let _ = handle.join();
        }
        // Closing the hasher's queue ends it, which closes the writer's queue and ends it.
        self.workers.hash_jobs = None;
        for handle in [self.workers.hasher.take(), self.workers.writer.take()]
            .into_iter()
            .flatten()
        {
            let _ = handle.join();
        }
    }
}
