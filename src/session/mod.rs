//! The main loop: the one thread that owns all piece state and makes every decision.
//!
//! Runs on the caller's thread (the program's main thread). It owns the [`Picker`] (which
//! blocks are wanted, requested from whom, received), the buffers of pieces being assembled,
//! the set of pieces on disk, and one record per peer connection. It starts the other threads
//! (listener, tracker, hasher, writer, two per peer) and then only reacts: to [`Event`]s
//! arriving on its single channel, and to a one-second tick. It never reads or writes a
//! socket or a file (a connection it refuses is closed by dropping it). Uploads follow the
//! same pattern backwards: a peer's request arrives as [`PeerEvent::Requested`], is checked
//! here, and goes back to that peer's sender thread as [`Command::Upload`], which reads the
//! block from disk itself.
//!
//! The life of a block: a peer thread reports [`PeerEvent::Block`]; the picker says whether we
//! wanted it; its bytes are copied into the piece's buffer; when the last block arrives the
//! buffer goes to the hasher as a [`HashJob`]; a good piece goes on to the writer, and the
//! writer's [`DiskEvent::PieceWritten`] marks it done and is announced to every peer.
//!
//! The folder, one idea per file: this file is the loop, its dispatch, its tick and the
//! shutdown; `api.rs` what callers see; `store.rs` the [`PieceStore`], every piece's state;
//! `pieces.rs` a block in, the hash verdict and its blame, the write; `peers.rs` the record
//! of each connection, its setup and its request pipeline; `upload.rs` serving peers, the
//! choker and metadata; `pex.rs` peer exchange; `dial.rs` finding and dialing peers;
//! `rate.rs` the smoothed transfer rate; `tests.rs` drives the session by messages alone.
//!
//! Where new things slot in: a new source of peer addresses (the DHT) hands them to
//! `learn_peers`, as the trackers and peer exchange do; a new source of blocks (a web seed)
//! is a record in `peers` whose thread takes [`Command::Request`]s and answers with
//! [`PeerEvent::Block`]s, so the pipeline, the picker and the store never ask what is on the
//! other end.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use log::{debug, info, warn};

use crate::addresses::AddressBook;
use crate::bitfield::Bitfield;
use crate::choker::Choker;
use crate::client_id::client_name;
use crate::dht::{DhtEvent, DhtLink};
use crate::geometry::Geometry;
use crate::messages::{
    Command, DiskEvent, Event, HashJob, PeerEvent, PeerKey, Totals, TrackerCommand, TrackerEvent,
};
use crate::metainfo::Metainfo;
use crate::peer::listener::Listener;
use crate::picker::Picker;
use crate::rng::Rng;
use crate::storage::layout::Layout;
use crate::storage::padding::Padding;
use crate::storage::writer::{self, ResumeSetup};
use crate::storage::{parts, resume, FileMap, StorageError};
use crate::{hasher, tracker};

mod api;
mod dial;
mod limits;
mod peers;
mod pex;
mod pieces;
mod rate;
mod store;
#[cfg(test)]
mod tests;
mod upload;
mod webseeds;

pub use api::{Error, Flow, Options, Progress, SeedPolicy, Summary};
pub use dial::MAX_HALF_OPEN;
use dial::WANT_MORE_PEERS;
use limits::Limits;
use peers::Peer;
pub use peers::{MAX_DEPTH, SNUB_TIMEOUT};
use rate::Rate;
use store::PieceStore;
pub use store::PIECE_MEMORY_BUDGET;
pub use upload::METADATA_ROUNDS;
use upload::RECHOKE_TICKS;

/// How often the session updates rates, checks for snubs and reports progress.
const TICK: Duration = Duration::from_secs(1);
/// How often the DHT is asked for peers again while no peer is connected, and while fewer
/// than [`WANT_MORE_PEERS`] are.
const DHT_RETRY: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(60));

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
    if result.is_ok() {
        session.drop_parts();
    }
    result
}

/// A fresh 20-byte peer id: client prefix plus random bytes.
pub fn new_peer_id() -> [u8; 20] {
    // "SR" for strand: not a client code anyone has registered (BEP 20's list).
    let mut id = [b'0'; 20];
    id[..8].copy_from_slice(&crate::client_id::our_prefix());
    let mut rng = Rng::from_entropy();
    for byte in id[8..].iter_mut() {
        *byte = b"0123456789abcdefghijklmnopqrstuvwxyz"[rng.index(36)];
    }
    id
}

/// Threads the session started and must wind down.
struct Workers {
    hash_jobs: Option<Sender<HashJob>>,
    hasher: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
    tracker: Option<(Sender<TrackerCommand>, JoinHandle<()>)>,
    listener: Option<Listener>,
}

struct Session {
    meta: Metainfo,
    opts: Options,
    our_id: [u8; 20],
    geometry: Geometry,
    picker: Picker,
    /// Every piece's state: the one owner of the piece data and what is on disk.
    store: PieceStore,
    peers: HashMap<PeerKey, Peer>,
    addresses: AddressBook,
    next_key: PeerKey,
    /// Most requests in flight per peer while many peers share the piece memory budget.
    depth_cap: usize,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
    workers: Workers,
    started: Instant,
    received_bytes: u64,
    failed_pieces: u32,
    /// Payload received, over all peers.
    download: Rate,
    uploaded_bytes: u64,
    /// Payload sent, over all peers.
    upload: Rate,
    /// The rate limits' buckets and the uploads waiting for budget.
    limits: Limits,
    choker: Choker,
    ticks: u64,
    files: Arc<FileMap>,
    /// When every wanted piece was on disk, if it is: from then on we are seeding.
    completed_at: Option<Instant>,
    /// The trackers' last errors while none answers (cleared when one does).
    tracker_errors: Option<String>,
    /// The last peer connection to end, and why: named if we give up with no peer left.
    last_peer_left: Option<String>,
    /// Since when we have had no peer connection at all.
    lonely_since: Option<Instant>,
    interrupted: bool,
    /// The DHT (never for a private torrent), its last node count and last lookup.
    dht: Option<DhtLink>,
    dht_nodes: usize,
    dht_asked: Instant,
}

/// Per piece, how many of its bytes belong to chosen files (the wanted pieces have some).
fn chosen_bytes(meta: &Metainfo, chosen: &[bool]) -> Vec<u32> {
    let (g, layout) = (meta.geometry, Layout::new(&meta.files));
    let mut bytes = vec![0; g.piece_count() as usize];
    for (file, _) in chosen.iter().enumerate().filter(|(_, &c)| c) {
        let range = layout.file_range(file);
        for piece in layout.file_pieces(file, &g) {
            let start = g.piece_offset(piece);
            let end = start + u64::from(g.piece_size(piece));
            bytes[piece as usize] += (end.min(range.end) - start.max(range.start)) as u32;
        }
    }
    bytes
}

impl Session {
    /// Prepares the output, starts the worker threads and dials the peers given.
    fn start(meta: Metainfo, opts: Options) -> Result<Session, Error> {
        let geometry = meta.geometry;
        let pieces = geometry.piece_count();
        let chosen = opts
            .chosen
            .clone()
            .unwrap_or_else(|| vec![true; meta.files.len()]);
        let map = Arc::new(FileMap::selective(&opts.output_dir, &meta, &chosen));
        let prepared = writer::prepare(&map, &meta.files, &chosen, opts.preallocate)
            .map_err(Error::Storage)?;
        let on_disk = match &opts.verified {
            Some(v) if v.len() == pieces => v.clone(),
            _ => Bitfield::new(pieces),
        };
        // Pieces a finished selective download left partly on disk (see `storage::parts`).
        let kept = parts::kept(&opts.output_dir, &meta, &map, &chosen, &on_disk);
        let store = PieceStore::selective(geometry, chosen_bytes(&meta, &chosen), on_disk, &kept);

        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let (hash_tx, hash_rx) = crossbeam_channel::unbounded();
        let (write_tx, write_rx) = crossbeam_channel::unbounded();
        let resume = ResumeSetup {
            path: resume::path(&opts.output_dir, &meta.info_hash),
            info_hash: meta.info_hash,
            have: store.on_disk().clone(),
        };
        let writer = writer::spawn(
            Arc::clone(&map),
            prepared,
            resume,
            write_rx,
            events_tx.clone(),
        )
        .map_err(Error::Thread)?;
        let padding = Padding::new(geometry, &meta.files);
        let hasher = hasher::spawn(
            meta.piece_hashes.clone(),
            padding.clone(),
            hash_rx,
            write_tx,
            events_tx.clone(),
        )
        .map_err(Error::Thread)?;
        let our_id = new_peer_id();
        let listener = match opts.listen {
            Some(addr) => Some(
                Listener::start(
                    addr,
                    events_tx.clone(),
                    opts.encryption,
                    vec![meta.info_hash],
                )
                .map_err(|e| Error::Listen(addr, e))?,
            ),
            None => None,
        };
        let port = listener.as_ref().map_or(0, |l| l.addr().port());
        let tracker = (!meta.trackers.is_empty()).then(|| {
            let config = tracker::TrackerConfig {
                tiers: meta.trackers.clone(),
                announcer: tracker::Announcer {
                    info_hash: meta.info_hash,
                    peer_id: our_id,
                    port,
                    local: listener
                        .as_ref()
                        .and_then(|l| crate::net::local_ip(l.addr().ip())),
                    encryption: opts.encryption,
                },
                left: store.wanted_bytes() - store.verified_bytes(),
            };
            tracker::spawn_with_timeout(config, opts.tracker_timeout, events_tx.clone())
        });
        let workers = Workers {
            hash_jobs: Some(hash_tx),
            hasher: Some(hasher),
            writer: Some(writer),
            tracker,
            listener,
        };
        let events = (events_tx, events_rx);
        let mut session = Session::new(meta, opts, our_id, store, map, events, workers);
        if let Some(dht) = &session.dht {
            // Announcing starts a lookup for peers too; without a listener we only look.
            match session.workers.listener.as_ref() {
                Some(l) => dht.announce(session.meta.info_hash, l.addr().port()),
                None => dht.get_peers(session.meta.info_hash),
            }
        }
        let direct = session.opts.peers.clone();
        session.learn_peers(direct);
        session.start_web_seeds();
        Ok(session)
    }

    /// The session's state around `store`, talking to the threads in `workers` and hearing
    /// from every thread on `events`. Starts nothing: [`Session::start`] does, and the tests
    /// build a session with no threads at all.
    fn new(
        meta: Metainfo,
        opts: Options,
        our_id: [u8; 20],
        store: PieceStore,
        files: Arc<FileMap>,
        (events_tx, events_rx): (Sender<Event>, Receiver<Event>),
        workers: Workers,
    ) -> Session {
        let seed = Rng::from_entropy().next_u64();
        Session {
            dht: opts.dht.clone().filter(|_| !meta.private),
            dht_nodes: 0,
            dht_asked: Instant::now(),
            picker: Picker::new(meta.geometry, &store.not_to_fetch(), seed)
                .with_padding(&Padding::new(meta.geometry, &meta.files).blocks())
                .with_sequential(opts.flow.sequential),
            limits: Limits::new(
                opts.flow.download_limit,
                opts.flow.upload_limit,
                Instant::now(),
            ),
            choker: Choker::new(seed.rotate_left(32)),
            files,
            completed_at: store.is_complete().then(Instant::now),
            store,
            geometry: meta.geometry,
            our_id,
            peers: HashMap::new(),
            addresses: AddressBook::default(),
            next_key: 0,
            depth_cap: MAX_DEPTH,
            events_tx,
            events_rx,
            workers,
            started: Instant::now(),
            received_bytes: 0,
            failed_pieces: 0,
            download: Rate::default(),
            uploaded_bytes: 0,
            upload: Rate::default(),
            ticks: 0,
            interrupted: false,
            tracker_errors: None,
            last_peer_left: None,
            lonely_since: None,
            meta,
            opts,
        }
    }

    /// Reacts to events and ticks until the session is due to end or is stopped.
    fn run(&mut self, progress: &mut dyn FnMut(&Progress)) -> Result<Summary, Error> {
        let ticker = crossbeam_channel::tick(TICK);
        let stop = self
            .opts
            .stop
            .clone()
            .unwrap_or_else(crossbeam_channel::never);
        let dht_events = self
            .dht
            .as_ref()
            .map_or_else(crossbeam_channel::never, |d| d.events.clone());
        while !self.finished() {
            let budget = self
                .limits
                .wake_in(Instant::now())
                .map_or_else(crossbeam_channel::never, crossbeam_channel::after);
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
                recv(budget) -> _ => self.on_limit_timer(),
                recv(stop) -> _ => {
                    info!("stopping on request");
                    self.interrupted = true;
                    break;
                }
                recv(dht_events) -> event => match event {
                    Ok(DhtEvent::Peers(hash, peers)) if hash == self.meta.info_hash => {
                        debug!("DHT: {} peers", peers.len());
                        self.learn_peers(peers);
                    }
                    Ok(DhtEvent::Nodes(n)) => self.dht_nodes = n,
                    Ok(_) => {}
                    Err(_) => self.dht = None,
                },
            }
        }
        progress(&self.progress());
        Ok(Summary {
            bytes: self.store.verified_bytes(),
            total_bytes: self.store.wanted_bytes(),
            elapsed: self.started.elapsed(),
            uploaded_bytes: self.uploaded_bytes,
            interrupted: self.interrupted,
            received_bytes: self.received_bytes,
            failed_pieces: self.failed_pieces,
            completed_after: self.completed_at.map(|t| t.duration_since(self.started)),
        })
    }

    /// Every wanted piece is on disk: from now on we only upload. This is what "seeding"
    /// means everywhere in strand, even when pieces of files not chosen are missing.
    fn seeding(&self) -> bool {
        self.completed_at.is_some()
    }

    /// We have every piece of the torrent: a seed in BEP 3's sense, of no use to other seeds.
    fn is_seed(&self) -> bool {
        self.store.on_disk().is_full()
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
            Event::Tracker(TrackerEvent::RequiresCrypto(addrs)) => self.requires_crypto(addrs),
            Event::Tracker(TrackerEvent::Warning(text)) => warn!("tracker warning: {text}"),
            Event::Tracker(TrackerEvent::Failed(text)) => {
                // Not a warning: if no peer comes, the session's error carries the text.
                info!("{text}");
                self.tracker_errors = Some(text);
            }
            Event::Hashed(result) => self.on_hashed(result),
            Event::Disk(DiskEvent::PieceWritten(piece)) => self.on_written(piece),
            Event::Accepted {
                stream,
                addr,
                handshake,
                ciphers,
            } => self.on_accepted(stream, addr, handshake, *ciphers),
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
            PeerEvent::ExtensionHandshake(theirs) => self.on_extension_handshake(key, theirs),
            PeerEvent::MetadataRequested(piece) => self.on_metadata_request(key, piece),
            PeerEvent::DhtPort(port) => {
                if let Some(dht) = &self.dht {
                    dht.add_node(SocketAddr::new(peer.addr.ip(), port));
                }
            }
            PeerEvent::PexPeers(pex) => {
                if !self.meta.private {
                    self.learn_peers(pex.added);
                    for addr in pex.encrypted {
                        self.addresses.supports_encryption(addr);
                    }
                }
            }
            PeerEvent::Connected {
                extensions,
                peer_id,
                fast,
                link,
            } => {
                debug!(
                    "{}: handshake done: {}{}",
                    peer.addr,
                    client_name(&peer_id),
                    if fast { ", Fast extension" } else { "" }
                );
                self.on_link(key, link);
                self.on_connected(key, extensions, fast);
            }
            PeerEvent::Bitfield(bits) => {
                // A late bitfield (aria2 sends one after its haves) only adds pieces.
                for piece in bits.iter() {
                    if peer.has.set(piece) {
                        self.picker.peer_has_piece(piece);
                    }
                }
                if peer.has.is_full() {
                    self.addresses.mark_seed(peer.addr);
                }
                self.update_interest(key);
            }
            PeerEvent::Have(piece) => {
                // Only a new piece changes anything: a peer repeating `have`s costs us O(1)
                // each, not a scan of every piece.
                if !peer.has.set(piece) {
                    return;
                }
                self.picker.peer_has_piece(piece);
                if peer.has.is_full() {
                    self.addresses.mark_seed(peer.addr);
                }
                self.update_interest(key);
            }
            PeerEvent::Choked => {
                if !peer.peer_choking {
                    debug!("{}: choked us", peer.addr);
                }
                peer.peer_choking = true;
                // A Fast peer may still serve what it allowed us fast (it rejects the rest).
                self.picker.peer_choked(key, &peer.allowed_from_them);
                self.fill_all();
            }
            PeerEvent::Unchoked => {
                if peer.peer_choking {
                    debug!("{}: unchoked us", peer.addr);
                }
                peer.peer_choking = false;
                peer.last_block = Instant::now();
                self.fill(key);
            }
            PeerEvent::Interested => {
                peer.peer_interested = true;
                let unchoked = self.peers.values().filter(|p| !p.am_choking).count();
                if unchoked <= crate::choker::REGULAR_SLOTS {
                    self.set_choking(key, false);
                }
            }
            PeerEvent::NotInterested => peer.peer_interested = false,
            PeerEvent::Requested(block) => self.on_request(key, block),
            PeerEvent::Canceled(block) => self.withdraw_upload(key, block),
            PeerEvent::Rejected(block) => self.on_rejected(key, block),
            PeerEvent::AllowedFast(piece) => self.on_allowed_fast(key, piece),
            PeerEvent::Block { block, data } => self.on_block(key, block, data),
            PeerEvent::Closed { reason } => {
                debug!("{}: left: {reason}", peer.addr);
                self.last_peer_left = Some(format!("peer {}: {reason}", peer.addr));
                self.forget_peer(key);
                self.fill_all();
            }
        }
    }

    /// Once a second: rates, pipeline depths, snubbed peers, new connections, tracker totals;
    /// gives up when there has been no peer and no working tracker for the tracker timeout.
    fn tick(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        let secs = TICK.as_secs_f64();
        self.ticks += 1;
        self.download.tick(secs);
        self.upload.tick(secs);
        self.tick_peers(now, secs);
        if self.ticks % RECHOKE_TICKS == 0 {
            self.rechoke();
        }
        self.send_pex();
        self.connect_more();
        self.fill_all();
        self.update_depth_cap();
        let connected = self.peers.values().filter(|p| p.connected).count();
        if let Some((tracker, _)) = &self.workers.tracker {
            let _ = tracker.send(TrackerCommand::Progress(Totals {
                uploaded: self.uploaded_bytes,
                downloaded: self.store.verified_bytes(),
                left: self.store.wanted_bytes() - self.store.verified_bytes(),
            }));
            if connected < WANT_MORE_PEERS && !self.seeding() {
                let _ = tracker.send(TrackerCommand::NeedPeers);
            }
        }
        if let Some(dht) = &self.dht {
            let retry = if connected == 0 {
                DHT_RETRY.0
            } else {
                DHT_RETRY.1
            };
            if connected < WANT_MORE_PEERS
                && !self.seeding()
                && now.duration_since(self.dht_asked) >= retry
            {
                self.dht_asked = now;
                dht.get_peers(self.meta.info_hash);
            }
        }
        self.give_up_when_alone()
    }

    /// Fails the session after a whole tracker timeout with no peer at all while no tracker
    /// answers (or there is none): waiting longer would only hang.
    fn give_up_when_alone(&mut self) -> Result<(), Error> {
        if !self.peers.is_empty() || self.seeding() {
            self.lonely_since = None;
            return Ok(());
        }
        let since = *self.lonely_since.get_or_insert_with(Instant::now);
        // A DHT that knows nodes may still find peers: keep waiting, as other clients do.
        if self.dht.is_some() && self.dht_nodes > 0 {
            return Ok(());
        }
        let no_tracker = self.workers.tracker.is_none();
        if (no_tracker || self.tracker_errors.is_some())
            && since.elapsed() >= self.opts.tracker_timeout
        {
            return Err(Error::NoPeers {
                trackers: self.tracker_errors.clone(),
                last_peer: self.last_peer_left.clone(),
            });
        }
        Ok(())
    }

    fn progress(&self) -> Progress {
        Progress {
            verified_bytes: self.store.verified_bytes(),
            total_bytes: self.store.wanted_bytes(),
            download_rate: self.download.per_second(),
            peers_connected: self.peers.values().filter(|p| p.connected).count()
                - self.web_seeds_connected(),
            web_seeds: self.web_seeds_connected(),
            peers_known: self.addresses.dialable_count(),
            uploaded_bytes: self.uploaded_bytes,
            upload_rate: self.upload.per_second(),
            have: self.store.on_disk().clone(),
            wanted: self.store.wanted().clone(),
            dht_nodes: self.dht.as_ref().map(|_| self.dht_nodes),
            trackers_failing: self.tracker_errors.is_some(),
        }
    }

    /// Once the chosen files are complete (and the writer has ended): a selective
    /// download's parts file goes, and with every file chosen, its `.kept` records too. A
    /// failure only leaves them there.
    fn drop_parts(&self) {
        if !self.store.is_complete() {
            return;
        }
        let root = &self.opts.output_dir;
        let dropped = match self.opts.chosen {
            None => parts::forget(root, &self.meta.info_hash),
            Some(_) => {
                parts::drop_parts(root, &self.meta, &self.files, self.store.on_disk()).map(|_| ())
            }
        };
        if let Err(e) = dropped {
            warn!("{e}; strand's parts file stays");
        }
    }

    /// Hangs up on every peer, tells the trackers we stopped, and waits for the workers.
    fn shut_down(&mut self) {
        for (key, addr) in self
            .peers
            .iter()
            .map(|(k, p)| (*k, p.addr))
            .collect::<Vec<_>>()
        {
            debug!("{addr}: left: the session ended");
            self.send(key, Command::Disconnect);
        }
        self.peers.clear();
        if let Some(listener) = self.workers.listener.take() {
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
