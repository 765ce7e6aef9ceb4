//! Each peer connection's record on the main thread: its setup (bitfield or BEP 6 `have
//! all`/`have none`, extension handshake, allowed-fast sets), the four BEP 3 flags, its
//! request pipeline (interest, depth, filling), its rates, and the once-a-tick checks for
//! snubs and useless seeds.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use log::{debug, warn};

use super::pex::PEX_FIRST;
use super::rate::Rate;
use super::Session;
use crate::bitfield::Bitfield;
use crate::geometry::{BlockRef, PieceIndex, BLOCK_LEN};
use crate::messages::TheirHandshake;
use crate::messages::{Command, PeerKey};
use crate::peer::connection;
use crate::peer::extension::{self, OurHandshake};
use crate::peer::fast::{self, ALLOWED_FAST_COUNT};

/// Requests kept in flight to a new peer before its rate is known.
pub(super) const INITIAL_DEPTH: usize = 32;
/// Fewest requests kept in flight to an unchoked peer.
pub(super) const MIN_DEPTH: usize = 4;
/// Most requests kept in flight to one peer.
pub const MAX_DEPTH: usize = 250;
/// Seconds of a peer's rate worth of requests kept in flight.
pub(super) const DEPTH_SECONDS: f64 = 2.0;
/// A peer that owes us blocks and sends nothing for this long loses them and is dropped.
pub const SNUB_TIMEOUT: Duration = Duration::from_secs(30);
/// Most pieces a peer may allow us fast that we remember; later `allowed fast` messages are
/// ignored (the BEP's sets have ten).
pub(super) const MAX_ALLOWED_FROM_PEER: usize = 32;

/// The main thread's record of one peer connection.
pub(super) struct Peer {
    pub(super) addr: SocketAddr,
    pub(super) commands: Sender<Command>,
    /// Pieces the peer has told us it has.
    pub(super) has: Bitfield,
    /// The handshake is done.
    pub(super) connected: bool,
    /// BEP 3's four flags. `am_choking`: we are choking the peer (we will not serve it).
    pub(super) am_choking: bool,
    /// `am_interested`: we told the peer we want pieces it has.
    pub(super) am_interested: bool,
    /// `peer_choking`: the peer is choking us (it will not serve our requests).
    pub(super) peer_choking: bool,
    /// `peer_interested`: the peer told us it wants pieces we have.
    pub(super) peer_interested: bool,
    /// Both handshakes set the BEP 6 Fast bit.
    pub(super) fast: bool,
    /// The canonical allowed-fast set we computed for the peer (Fast peers only): requests
    /// for these pieces are served even while we choke it.
    pub(super) allowed_to_them: Vec<PieceIndex>,
    /// Pieces the peer allowed us fast: we may request them while it chokes us.
    pub(super) allowed_from_them: Vec<PieceIndex>,
    /// Requests to keep in flight, following the peer's rate.
    pub(super) depth: usize,
    /// Most requests the peer accepts in flight (its `reqq`, else [`MAX_DEPTH`]).
    pub(super) max_depth: usize,
    /// Payload received from the peer.
    pub(super) download: Rate,
    /// Last time the peer sent a block, or we started waiting for one.
    pub(super) last_block: Instant,
    /// When the handshake completed (or the thread started, before that).
    pub(super) since: Instant,
    /// Payload sent to the peer.
    pub(super) upload: Rate,
    /// The peer dialed us (its address's port is not one we can dial).
    pub(super) incoming: bool,
    /// The port the peer listens on, from its extension handshake.
    pub(super) listen_port: Option<u16>,
    /// The peer's id for `ut_metadata` messages, if it speaks them.
    pub(super) ut_metadata: Option<u8>,
    /// Metadata pieces we sent the peer.
    pub(super) metadata_served: u32,
    /// The peer's id for `ut_pex` messages, if it speaks them (never for private torrents).
    pub(super) ut_pex: Option<u8>,
    /// When the next peer exchange message to this peer is due.
    pub(super) pex_due: Option<Instant>,
    /// The addresses our peer exchange messages have told this peer about and not dropped.
    pub(super) pex_sent: HashSet<SocketAddr>,
    /// The peer speaks MSE: the connection began with an MSE exchange, or the peer said
    /// `e` = 1 (our peer exchange messages flag it 0x01).
    pub(super) speaks_mse: bool,
}

impl Peer {
    /// The address other peers can dial to reach this one, if we know it.
    pub(super) fn dial_addr(&self) -> Option<SocketAddr> {
        if self.incoming {
            self.listen_port
                .map(|port| SocketAddr::new(self.addr.ip(), port))
        } else {
            Some(self.addr)
        }
    }
}

impl Session {
    /// The handshake is done: our bitfield first (if we have a piece; to a Fast peer `have
    /// all` when we have every piece and `have none` when we have none), then our extension
    /// handshake if the peer speaks BEP 10, then to a Fast peer `allowed fast` for the pieces
    /// of its canonical set that we have.
    pub(super) fn on_connected(&mut self, key: PeerKey, extensions: bool, fast: bool) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.connected = true;
        peer.fast = fast;
        peer.last_block = Instant::now();
        peer.since = Instant::now();
        self.addresses.handshaken(peer.addr);
        let on_disk = self.store.on_disk();
        let first = if fast && on_disk.is_full() {
            Some(Command::HaveAll)
        } else if on_disk.count() > 0 {
            Some(Command::Bitfield(on_disk.as_bytes().to_vec()))
        } else if fast {
            Some(Command::HaveNone)
        } else {
            None
        };
        if let Some(cmd) = first {
            let _ = peer.commands.send(cmd);
        }
        if extensions {
            let ours = OurHandshake {
                reqq: connection::ADVERTISED_REQQ,
                metadata_size: u32::try_from(self.meta.info_bytes.len()).ok(),
                listen_port: self.workers.listener.as_ref().map(|l| l.addr().port()),
                yourip: Some(peer.addr.ip()),
                pex: !self.meta.private,
                prefers_encryption: self.opts.encryption != crate::peer::mse::Encryption::Off,
            };
            let _ = peer.commands.send(Command::Extended {
                id: extension::HANDSHAKE_ID,
                payload: extension::encode_handshake(&ours),
            });
        }
        if fast {
            peer.allowed_to_them = fast::allowed_fast_set(
                peer.addr.ip(),
                &self.meta.info_hash,
                self.geometry.piece_count(),
                ALLOWED_FAST_COUNT,
            );
            for &piece in &peer.allowed_to_them {
                if on_disk.has(piece) {
                    let _ = peer.commands.send(Command::AllowedFast(piece));
                }
            }
        }
    }

    /// A Fast peer allowed us `piece`: remembered (up to [`MAX_ALLOWED_FROM_PEER`]), and
    /// requested at once if the peer chokes us and has it.
    pub(super) fn on_allowed_fast(&mut self, key: PeerKey, piece: PieceIndex) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.allowed_from_them.contains(&piece)
            || peer.allowed_from_them.len() >= MAX_ALLOWED_FROM_PEER
        {
            return;
        }
        peer.allowed_from_them.push(piece);
        self.update_interest(key);
    }

    /// A Fast peer will not serve `block`: it goes back to the picker for another peer, at
    /// once. A reject for a block we never asked for (nor withdrew) drops the peer. A peer that
    /// chokes us and rejects a piece it allowed us fast is not asked for that piece again
    /// while it chokes us.
    pub(super) fn on_rejected(&mut self, key: PeerKey, block: BlockRef) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !self.picker.rejected(key, block) {
            debug!(
                "{}: dropped: a reject for a block we never asked for: {block:?}",
                peer.addr
            );
            self.send(key, Command::Disconnect);
            return;
        }
        if peer.peer_choking {
            peer.allowed_from_them.retain(|&p| p != block.piece);
        }
        // Others first: the rejecting peer is asked again at its next block or tick.
        let others: Vec<PeerKey> = self.peers.keys().copied().filter(|&k| k != key).collect();
        for other in others {
            self.fill(other);
        }
    }

    /// The peer's extension handshake: its `reqq` caps our pipeline, and its message ids say
    /// whether it serves metadata and exchanges peers.
    pub(super) fn on_extension_handshake(&mut self, key: PeerKey, theirs: TheirHandshake) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if let Some(reqq) = theirs.reqq {
            peer.max_depth = (reqq as usize).clamp(MIN_DEPTH, MAX_DEPTH);
            peer.depth = peer.depth.min(peer.max_depth);
        }
        peer.listen_port = theirs.listen_port;
        peer.speaks_mse |= theirs.prefers_encryption;
        if let Some(addr) = peer.dial_addr().filter(|_| peer.speaks_mse) {
            self.addresses.supports_encryption(addr);
        }
        peer.ut_metadata = theirs.ut_metadata;
        peer.ut_pex = theirs.ut_pex.filter(|_| !self.meta.private);
        if peer.ut_pex.is_some() {
            peer.pex_due = Some(Instant::now() + PEX_FIRST);
        }
    }

    /// Once a tick: each peer's rates and pipeline depth; drops peers that owe us blocks and
    /// went silent, and, when we are a seed, other seeds.
    pub(super) fn tick_peers(&mut self, now: Instant, secs: f64) {
        let seed = self.is_seed();
        let mut snubbed = Vec::new();
        let mut useless = Vec::new();
        for (&key, peer) in self.peers.iter_mut() {
            peer.download.tick(secs);
            peer.upload.tick(secs);
            if seed && peer.has.is_full() {
                // Two seeds have nothing to say to each other.
                useless.push(key);
            }
            let wanted =
                (peer.download.per_second() * DEPTH_SECONDS / f64::from(BLOCK_LEN)) as usize;
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
    }

    /// Sizes the piece memory budget for the peers that send to us, and gives each a fair
    /// share of the blocks it holds, so that many peers share partial pieces instead of the
    /// first few claiming the whole budget (with small pieces, a peer at full depth holds
    /// several pieces).
    pub(super) fn update_depth_cap(&mut self) {
        let sending = self
            .peers
            .values()
            .filter(|p| p.connected && !p.peer_choking && p.am_interested)
            .count();
        let budget_blocks = (self.store.set_budget(sending) / u64::from(BLOCK_LEN)) as usize;
        self.depth_cap = (budget_blocks / sending.max(1)).clamp(MIN_DEPTH, MAX_DEPTH);
    }

    /// Tells a peer whether we want something it has, when that changes, then requests.
    pub(super) fn update_interest(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !peer.connected {
            // Our bitfield must be the first message; interest follows the handshake.
            return;
        }
        let want = self.picker.is_interesting(&peer.has);
        if want != peer.am_interested {
            peer.am_interested = want;
            let cmd = if want {
                Command::Interested
            } else {
                Command::NotInterested
            };
            self.send(key, cmd);
        }
        self.fill(key);
    }

    /// Tops up a peer's requests to its pipeline depth. A peer that chokes us is asked only
    /// for pieces it allowed us fast.
    pub(super) fn fill(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        if !peer.connected || !peer.am_interested {
            return;
        }
        let allowed;
        let has = if !peer.peer_choking {
            &peer.has
        } else if peer.allowed_from_them.is_empty() {
            return;
        } else {
            let mut only = Bitfield::new(peer.has.len());
            for &piece in &peer.allowed_from_them {
                if peer.has.has(piece) {
                    only.set(piece);
                }
            }
            allowed = only;
            &allowed
        };
        let depth = peer.depth.min(self.depth_cap);
        let outstanding = self.picker.requested_from(key);
        if outstanding >= depth {
            return;
        }
        let now = Instant::now();
        let room = self
            .limits
            .download_room(depth - outstanding, outstanding, now);
        if room == 0 {
            return;
        }
        let blocks = self.picker.pick(
            key,
            has,
            room,
            self.store.pieces_to_start(self.picker.partial_pieces()),
        );
        if blocks.is_empty() {
            return;
        }
        let bytes = blocks.iter().map(|b| u64::from(b.len)).sum();
        self.limits.requested(bytes, now);
        if outstanding == 0 {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.last_block = Instant::now();
            }
        }
        for b in blocks {
            self.send(key, Command::Request(b));
        }
    }

    pub(super) fn fill_all(&mut self) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.fill(key);
        }
    }

    pub(super) fn send(&self, key: PeerKey, cmd: Command) {
        if let Some(peer) = self.peers.get(&key) {
            // A closed channel means the thread is ending; its `Closed` event is on the way.
            let _ = peer.commands.send(cmd);
        }
    }

    /// Drops our record of a connection and puts its blocks back in the pool.
    pub(super) fn forget_peer(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        self.picker.peer_gone(key, &peer.has);
        self.addresses
            .closed(peer.addr, peer.connected, Instant::now());
    }

    /// Records a new connection; the caller starts its thread.
    pub(super) fn add_peer(
        &mut self,
        addr: SocketAddr,
        incoming: bool,
    ) -> (PeerKey, Receiver<Command>) {
        let key = self.next_key;
        self.next_key += 1;
        let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
        let now = Instant::now();
        self.peers.insert(
            key,
            Peer {
                addr,
                commands: cmd_tx,
                has: Bitfield::new(self.geometry.piece_count()),
                connected: false,
                // Every connection starts choked and not interested, both ways.
                am_choking: true,
                am_interested: false,
                peer_choking: true,
                peer_interested: false,
                fast: false,
                allowed_to_them: Vec::new(),
                allowed_from_them: Vec::new(),
                depth: INITIAL_DEPTH,
                max_depth: MAX_DEPTH,
                download: Rate::default(),
                last_block: now,
                since: now,
                upload: Rate::default(),
                incoming,
                listen_port: None,
                ut_metadata: None,
                metadata_served: 0,
                ut_pex: None,
                pex_due: None,
                pex_sent: HashSet::new(),
                speaks_mse: false,
            },
        );
        (key, cmd_rx)
    }

    /// Adds `count` strikes to `addr`; at [`MAX_STRIKES`] its connections are closed and it
    /// is never dialed or accepted again.
    pub(super) fn strike(&mut self, addr: SocketAddr, count: u32, why: &str) {
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
}
