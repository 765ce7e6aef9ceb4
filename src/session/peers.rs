//! The main thread's record of each peer connection, and keeping its requests topped up.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use log::warn;

use super::rate::Rate;
use super::Session;
use crate::bitfield::Bitfield;
use crate::geometry::BlockRef;
use crate::messages::{Command, PeerKey};

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
/// Most withdrawn blocks remembered per peer (a late block we canceled is not unsolicited).
pub const WITHDRAWN_LIMIT: usize = 1024;

/// Takes one count of `block` from `withdrawn`; false if there was none.
pub(super) fn take_one(withdrawn: &mut HashMap<BlockRef, u32>, block: BlockRef) -> bool {
    match withdrawn.get_mut(&block) {
        Some(n) if *n > 1 => {
            *n -= 1;
            true
        }
        Some(_) => withdrawn.remove(&block).is_some(),
        None => false,
    }
}

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
    /// The peer's id for `ut_pex` messages, if it speaks them (never for private torrents).
    pub(super) ut_pex: Option<u8>,
    /// When the next peer exchange message to this peer is due.
    pub(super) pex_due: Option<Instant>,
    /// The addresses our peer exchange messages have told this peer about and not dropped.
    pub(super) pex_sent: HashSet<SocketAddr>,
    /// Blocks we asked this peer for and then withdrew (a cancel, or its choke), with how many
    /// times: they may still arrive, once per request, and are then not unsolicited.
    pub(super) withdrawn: HashMap<BlockRef, u32>,
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

    /// Tops up a peer's requests to its pipeline depth.
    pub(super) fn fill(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        if !peer.connected || peer.peer_choking || !peer.am_interested {
            return;
        }
        let depth = peer.depth.min(self.depth_cap);
        let outstanding = self.picker.requested_from(key);
        if outstanding >= depth {
            return;
        }
        let blocks = self.picker.pick(
            key,
            &peer.has,
            depth - outstanding,
            self.store.may_start_piece(self.picker.partial_pieces()),
        );
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
                depth: INITIAL_DEPTH,
                max_depth: MAX_DEPTH,
                download: Rate::default(),
                last_block: now,
                since: now,
                upload: Rate::default(),
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
