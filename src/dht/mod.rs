//! The DHT (BEP 5 with BEP 32's IPv6): finding peers without a tracker, and announcing the
//! torrents we download or seed.
//!
//! [`spawn`] starts the DHT thread, which owns the UDP socket(s) and talks to the rest of
//! strand only through [`DhtCommand`] and [`DhtEvent`] (declared in `messages.rs`). The
//! protocol itself is pure and lives beside it, one idea per file: node ids
//! ([`id`]), the message codec ([`krpc`]), the routing table ([`routing`]), lookups
//! ([`lookup`]), write tokens ([`tokens`]), the peers others announced ([`store`]), per-source
//! query limits ([`ratelimit`]), and the node that ties them together ([`node`]). Our id and
//! good nodes persist between runs ([`state`]).
//!
//! The library starts no DHT unless asked, and knows no public bootstrap routers: only the
//! command line adds those.

pub mod id;
pub mod krpc;
pub mod lookup;
pub mod node;
pub mod ratelimit;
pub mod routing;
#[cfg(test)]
mod sim_tests;
pub mod state;
pub mod store;
pub(crate) mod thread;
pub(crate) mod tokens;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

pub use crate::messages::{DhtCommand, DhtEvent, DhtReport};
pub use id::NodeId;

/// How the DHT thread is set up.
#[derive(Debug, Clone, Default)]
pub struct DhtConfig {
    /// The address to bind (`--bind`); `None` binds every address, IPv6 and IPv4 when the
    /// system has IPv6, IPv4 only otherwise.
    pub bind: Option<IpAddr>,
    /// The UDP port: the TCP listener's port number (0 picks a free one, for tests).
    pub port: u16,
    /// `HOST:PORT` of nodes to join through (resolved on the DHT thread). Empty by default:
    /// the library knows no public routers.
    pub bootstrap: Vec<String>,
    /// Where to read and save our id and good nodes; `None` keeps nothing.
    pub state_file: Option<PathBuf>,
    /// A fixed node id (tests); otherwise the saved one, else a random one.
    pub id: Option<[u8; 20]>,
    /// Refuse (and count in [`DhtReport::refused`]) every name and address that is not
    /// loopback: what tests set, so that a test can never reach another host.
    pub loopback_only: bool,
}

/// A failure to start the DHT.
#[derive(Debug)]
pub struct DhtError(String);

impl fmt::Display for DhtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DHT: {}", self.0)
    }
}

impl std::error::Error for DhtError {}

/// A running DHT thread.
#[derive(Debug)]
pub struct Dht {
    /// Orders to the thread (unbounded: its senders send a handful per torrent).
    pub commands: Sender<DhtCommand>,
    /// What it found (bounded to 256; the thread drops events nobody reads rather than wait).
    pub events: Receiver<DhtEvent>,
    local: SocketAddr,
    handle: std::thread::JoinHandle<DhtReport>,
}

/// What the session and the metadata phase hold of a running DHT: a way to ask and a way to
/// hear. Cloning it shares the same thread (and the same event channel).
#[derive(Debug, Clone)]
pub struct DhtLink {
    /// Orders to the DHT thread.
    pub commands: Sender<DhtCommand>,
    /// What it found.
    pub events: Receiver<DhtEvent>,
}

impl DhtLink {
    /// Asks for peers of `info_hash` (see [`DhtCommand::GetPeers`]).
    pub fn get_peers(&self, info_hash: [u8; 20]) {
        let _ = self.commands.send(DhtCommand::GetPeers(info_hash));
    }

    /// Announces `info_hash` on TCP `port` now and every 15–30 minutes (a lookup for peers
    /// comes with it).
    pub fn announce(&self, info_hash: [u8; 20], port: u16) {
        let _ = self.commands.send(DhtCommand::Announce(info_hash, port));
    }

    /// A peer's BEP 5 `port` message: its node is at `addr`.
    pub(crate) fn add_node(&self, addr: SocketAddr) {
        let _ = self.commands.send(DhtCommand::AddNode(addr));
    }
}

impl Dht {
    /// A link for the session or the metadata phase.
    pub fn link(&self) -> DhtLink {
        DhtLink {
            commands: self.commands.clone(),
            events: self.events.clone(),
        }
    }

    /// The address the UDP socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Asks for peers of `info_hash` (see [`DhtCommand::GetPeers`]).
    pub fn get_peers(&self, info_hash: [u8; 20]) {
        let _ = self.commands.send(DhtCommand::GetPeers(info_hash));
    }

    /// The thread's counters now; `None` if it has ended.
    pub fn report(&self) -> Option<DhtReport> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.commands.send(DhtCommand::Report(tx)).ok()?;
        rx.recv_timeout(std::time::Duration::from_secs(5)).ok()
    }

    /// Saves the state, stops the thread and returns its final counters.
    pub fn stop(self) -> DhtReport {
        let _ = self.commands.send(DhtCommand::Stop);
        self.handle.join().unwrap_or_default()
    }
}

/// Binds the socket(s) and starts the DHT thread (named `dht`) and one receiving thread per
/// socket (`dht recv`).
pub fn spawn(config: DhtConfig) -> Result<Dht, DhtError> {
    thread::spawn(config)
}

/// Whether an address may be used under [`DhtConfig::loopback_only`].
pub(crate) fn is_loopback(addr: &SocketAddr) -> bool {
    krpc::unmap(*addr).ip().is_loopback()
}
