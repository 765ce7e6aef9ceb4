//! `strand tracker`: an embedded tracker for local swarms, like the one built into
//! qBittorrent. HTTP (BEP 3 announce, BEP 23 compact peers, BEP 7 `peers6`, BEP 48 scrape)
//! and UDP (BEP 15 connect, announce and scrape) on the same port number, as opentracker does.
//! The tracker client (`crate::tracker`) never uses this tree; it only shares the client's
//! BEP 15 datagram codec, `crate::tracker::udp_wire`.
//!
//! This file is the lifecycle: [`start`] binds both sockets and starts the threads, and
//! [`TrackerServer`] stops them. None of the threads shares mutable state:
//! - `tracker accept` ([`http`]): connections in, one `tracker http` thread each, capped
//!   per source address and in all ([`conns`]); each reads its request head whole, parses
//!   it ([`parse`]) and answers ([`reply`]);
//! - `tracker udp` ([`udp`]): BEP 15 datagrams in and out;
//! - `tracker swarms` ([`swarm`]): owns the swarm table and answers the others' queries.

mod conns;
mod http;
mod parse;
mod reply;
mod swarm;
#[cfg(test)]
mod tests;
mod udp;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};

pub use http::{
    CONNECTION_STACK, LISTEN_BACKLOG, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE,
    MAX_REQUEST_HEAD, REQUEST_TIMEOUT,
};
pub use parse::{parse_request, HttpRequest, DEFAULT_NUMWANT, MAX_NUMWANT};
pub use reply::Response;
pub use swarm::{Announce, MAX_SCRAPE};
pub use udp::{UDP_RECEIVE_BUFFER, UDP_REPLIES_PER_SOURCE, UDP_SOURCES_COUNTED};

/// The port `strand tracker` listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 6969;
/// The announce interval handed to clients by default. A local swarm is small and changes
/// quickly, so a minute keeps peer lists fresh at negligible cost (strand's own client waits
/// at least 30 s whatever the tracker says).
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// How often the UDP thread, blocked in `recv`, looks at the stop signal.
const POLL: Duration = Duration::from_millis(100);
/// Longest `stop` waits to connect to its own socket to wake the accept thread.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// How many times [`start`] retries when port 0's free TCP port is taken for UDP.
const BIND_ATTEMPTS: usize = 10;

/// How the tracker listens and how much it remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port (see [`TrackerServer::addr`]).
    pub bind: SocketAddr,
    /// Announce interval told to clients (`interval`; `min interval` is half of it). Whole
    /// seconds are sent, at least one.
    pub interval: Duration,
    /// Peers that have not announced for this long are forgotten.
    pub peer_ttl: Duration,
    /// Most torrents tracked at once; announces for further torrents are refused.
    pub max_torrents: usize,
    /// Most peers tracked per torrent; further peers are refused.
    pub max_peers_per_torrent: usize,
}

impl ServerConfig {
    /// The defaults, listening on `bind`: [`DEFAULT_INTERVAL`], a peer TTL of three
    /// intervals, 1,000 torrents of up to 1,000 peers each (tens of MiB at most).
    pub fn new(bind: SocketAddr) -> ServerConfig {
        ServerConfig {
            bind,
            interval: DEFAULT_INTERVAL,
            peer_ttl: DEFAULT_INTERVAL * 3,
            max_torrents: 1000,
            max_peers_per_torrent: 1000,
        }
    }
}

impl Default for ServerConfig {
    /// [`ServerConfig::new`] on `127.0.0.1:`[`DEFAULT_PORT`].
    fn default() -> ServerConfig {
        ServerConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)))
    }
}

/// A running tracker. [`TrackerServer::stop`] (or dropping it) shuts it down;
/// [`TrackerServer::wait`] serves until the process ends.
#[derive(Debug)]
pub struct TrackerServer {
    addr: SocketAddr,
    /// Dropped to tell every thread to stop.
    stop: Option<Sender<()>>,
    accept: Option<JoinHandle<()>>,
    /// The UDP and swarm threads.
    workers: Vec<JoinHandle<()>>,
}

/// Binds `config.bind` and starts the tracker's threads (see the module docs).
///
/// Fails when the socket cannot be bound, a thread cannot be started, or the config has a
/// zero interval, TTL or limit.
pub fn start(config: ServerConfig) -> io::Result<TrackerServer> {
    if config.interval.is_zero()
        || config.peer_ttl.is_zero()
        || config.max_torrents == 0
        || config.max_peers_per_torrent == 0
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "tracker interval, peer TTL and limits must be non-zero",
        ));
    }
    let (listener, udp_socket) = bind_both(config.bind)?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let (query_tx, query_rx) = crossbeam_channel::bounded::<swarm::Query>(swarm::QUERIES);
    // If a spawn fails, returning drops the senders held here and the started threads end.
    let mut workers = vec![swarm::spawn(&config, query_rx)?];
    let front = FrontEnd {
        queries: query_tx,
        stop: stop_rx,
        interval: config.interval,
    };
    workers.push(udp::spawn(udp_socket, front.clone())?);
    let accept = http::spawn(listener, front)?;
    log::info!("tracker listening on http://{addr}/announce and udp://{addr}");
    Ok(TrackerServer {
        addr,
        stop: Some(stop_tx),
        accept: Some(accept),
        workers,
    })
}

impl TrackerServer {
    /// The address actually listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The announce URL for clients on this machine (`http://ADDR/announce`, with a loopback
    /// address when listening on all interfaces).
    pub fn announce_url(&self) -> String {
        format!("http://{}/announce", reachable(self.addr))
    }

    /// The UDP announce URL for clients on this machine (`udp://ADDR/announce`, with a
    /// loopback address when listening on all interfaces).
    pub fn udp_announce_url(&self) -> String {
        format!("udp://{}/announce", reachable(self.addr))
    }

    /// Stops accepting, closes open connections and waits for every thread. Normally
    /// returns within a few tenths of a second; at worst after a few seconds (a connection
    /// thread waiting for a busy swarm thread).
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Serves until the process ends (Ctrl-C or a kill); returns only if the accept thread
    /// dies.
    pub fn wait(mut self) {
        if let Some(accept) = self.accept.take() {
            if accept.join().is_err() {
                log::error!("tracker accept thread panicked");
            }
        }
    }

    fn shutdown(&mut self) {
        let Some(stop) = self.stop.take() else {
            return;
        };
        drop(stop);
        let Some(accept) = self.accept.take() else {
            return;
        };
        // The accept thread checks the stop signal after each accept: hand it one.
        if let Err(error) = TcpStream::connect_timeout(&reachable(self.addr), WAKE_TIMEOUT) {
            log::warn!("tracker: cannot wake the accept thread, leaving it: {error}");
            return;
        }
        for thread in std::iter::once(accept).chain(self.workers.drain(..)) {
            if thread.join().is_err() {
                log::error!("a tracker thread panicked");
            }
        }
    }
}

impl Drop for TrackerServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds TCP and UDP on the same address and port. With port 0 the TCP port is chosen first
/// and retried (up to [`BIND_ATTEMPTS`] times) if UDP cannot have the same number.
fn bind_both(bind: SocketAddr) -> io::Result<(TcpListener, UdpSocket)> {
    let mut attempt = 0;
    loop {
        let listener = TcpListener::bind(bind)?;
        match UdpSocket::bind(listener.local_addr()?) {
            Ok(socket) => return Ok((listener, socket)),
            Err(error) if bind.port() != 0 || attempt + 1 >= BIND_ATTEMPTS => return Err(error),
            Err(_) => attempt += 1,
        }
    }
}

/// `addr` with an unspecified IP replaced by the loopback address of the same family.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// What each front-end thread (the HTTP accept thread, the UDP thread) is started with.
#[derive(Clone)]
struct FrontEnd {
    /// Where the swarm thread takes its queries.
    queries: Sender<swarm::Query>,
    /// Disconnected when the tracker stops.
    stop: Receiver<()>,
    /// The announce interval to tell clients.
    interval: Duration,
}

/// Whether the stop sender has been dropped.
fn stopped(stop: &Receiver<()>) -> bool {
    stop.try_recv() == Err(TryRecvError::Disconnected)
}
