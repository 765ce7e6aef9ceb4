//! Finding peers: addresses learned, whom to dial, accepted connections.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use log::{debug, warn};

use super::Session;
use crate::addresses::MAX_KNOWN_PEERS;
use crate::messages::PeerKey;
use crate::peer::connection::{self, PeerSetup};
use crate::peer::handshake::Handshake;
use crate::peer::mse::{Ciphers, Encryption, Link};

/// Connections being opened (not yet handshaken) at once.
pub const MAX_HALF_OPEN: usize = 16;
/// Below this many connected peers, the session asks the trackers for more.
pub(super) const WANT_MORE_PEERS: usize = 10;

impl Session {
    pub(super) fn learn_peers(&mut self, addrs: Vec<SocketAddr>) {
        let local = self.local_ip();
        for addr in addrs {
            if !crate::net::same_family(local, &addr) {
                debug!("{addr}: skipped, another address family than --bind");
                continue;
            }
            if !self.is_us(addr) && !self.addresses.learn(addr) {
                debug!("{addr}: not remembered, already {MAX_KNOWN_PEERS} addresses");
            }
        }
        self.connect_more();
    }

    /// A tracker says `addrs` require encryption: under `--encryption off` they are not
    /// dialed.
    pub(super) fn requires_crypto(&mut self, addrs: Vec<SocketAddr>) {
        for addr in addrs {
            self.addresses.requires_encryption(addr);
            if self.opts.encryption == Encryption::Off {
                debug!("{addr}: requires encryption (says the tracker); not dialed under --encryption off");
            }
        }
    }

    /// Whether `addr` is our own listening socket (trackers list us among the peers).
    pub(super) fn is_us(&self, addr: SocketAddr) -> bool {
        self.workers.listener.as_ref().is_some_and(|l| {
            let ours = l.addr();
            // Trackers on this host list us at the address our announce came from, which
            // may be a loopback address other than the one we listen on.
            addr.port() == ours.port()
                && (addr.ip() == ours.ip() || addr.ip().is_loopback() || addr.ip().is_unspecified())
        })
    }

    /// The address we dial from: the one we listen on, when `--bind` named one.
    fn local_ip(&self) -> Option<IpAddr> {
        self.workers
            .listener
            .as_ref()
            .and_then(|l| crate::net::local_ip(l.addr().ip()))
    }

    pub(super) fn peer_setup(&self, key: PeerKey, addr: SocketAddr) -> PeerSetup {
        PeerSetup {
            key,
            addr,
            local: self.local_ip(),
            encryption: self.opts.encryption,
            info_hash: self.meta.info_hash,
            our_id: self.our_id,
            geometry: self.geometry,
            events: self.events_tx.clone(),
            files: Arc::clone(&self.files),
        }
    }

    /// Dials known addresses until we reach the peer and half-open limits.
    pub(super) fn connect_more(&mut self) {
        let now = Instant::now();
        let half_open = self.peers.values().filter(|p| !p.connected).count();
        let candidates = self
            .addresses
            .to_dial(now, self.is_seed(), self.opts.encryption);
        for (addr, encryption) in candidates
            .into_iter()
            .take(MAX_HALF_OPEN.saturating_sub(half_open))
        {
            if self.peers.len() >= self.opts.max_peers {
                break;
            }
            let (key, cmd_rx) = self.add_peer(addr, false);
            if encryption != self.opts.encryption {
                debug!("{addr}: dialing with --encryption {encryption}, as it needed before");
            }
            let setup = PeerSetup {
                encryption,
                ..self.peer_setup(key, addr)
            };
            if let Err(e) = connection::spawn_outgoing(setup, cmd_rx) {
                warn!("cannot start a thread for {addr}: {e}");
                self.peers.remove(&key);
                break;
            }
            self.addresses.dialing(addr);
            debug!("{addr}: connecting");
        }
    }

    /// The handshake with peer `key` was carried over `link`: what that tells of its
    /// encryption goes into the address book (for a peer that dialed us, under the address
    /// it listens on, once its extension handshake names it).
    pub(super) fn on_link(&mut self, key: PeerKey, link: Link) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.speaks_mse = link == Link::Mse;
        if !peer.incoming {
            self.addresses.reached(peer.addr, link);
        }
    }

    /// A peer dialed us: give it a thread, unless we have enough peers already.
    pub(super) fn on_accepted(
        &mut self,
        stream: TcpStream,
        addr: SocketAddr,
        theirs: Handshake,
        ciphers: Ciphers,
    ) {
        if self.peers.len() >= self.opts.max_peers {
            debug!("{addr}: refused, already {} peers", self.peers.len());
            // Dropping the stream closes the connection.
            return;
        }
        if self.addresses.is_banned(addr) {
            return;
        }
        let (key, cmd_rx) = self.add_peer(addr, true);
        debug!("{addr}: connected to us");
        if let Err(e) =
            connection::spawn_incoming(self.peer_setup(key, addr), stream, theirs, ciphers, cmd_rx)
        {
            warn!("cannot start a thread for {addr}: {e}");
            self.peers.remove(&key);
        }
    }
}
