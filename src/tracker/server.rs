//! An embedded tracker for local swarms, like the one built into qBittorrent: HTTP (BEP 3
//! announce, BEP 23 compact peers, BEP 7 `peers6`, BEP 48 scrape) and UDP (BEP 15 connect,
//! announce and scrape) on the same port number, as opentracker does.
//!
//! [`start`] binds both sockets and starts four kinds of threads; none shares mutable state:
//! - `tracker accept` owns the listening socket and blocks in `accept`. It hands each
//!   connection to the handler pool over a bounded channel and closes connections that do not
//!   fit in the queue, so a flood of connections cannot create threads or unbounded queues.
//! - `tracker http N` ([`HANDLERS`] of them) each own one connection at a time: read the
//!   request head (at most [`MAX_REQUEST_HEAD`] bytes within [`REQUEST_TIMEOUT`]), parse it,
//!   ask the swarm thread, write the reply and close.
//! - `tracker udp` owns the UDP socket: it answers connect requests with a connection id
//!   derived from a per-server random key, the client's address and a one-minute time bucket
//!   (so ids need no table and stay valid one to two minutes), checks that id on announces and
//!   scrapes, and asks the swarm thread, exactly as the HTTP handlers do. It wakes every
//!   100 ms to check the stop signal.
//! - `tracker swarms` owns the swarm table (info hash → peers keyed by address) and is its
//!   only reader and writer: it answers typed queries carrying their own reply channel and
//!   sweeps expired peers on a timer (`recv_timeout`). No lock guards the table.
//!
//! These queries are private to this module rather than declared in `src/messages.rs`: they
//! never leave the tracker server.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};

use super::udp::{self, Request};
use super::AnnounceEvent;
use crate::bencode::Value;
use crate::rng::Rng;

/// The port `strand tracker` listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 6969;
/// The announce interval handed to clients by default. A local swarm is small and changes
/// quickly, so a minute keeps peer lists fresh at negligible cost (strand's own client waits
/// at least 30 s whatever the tracker says).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Number of connection handler threads.
pub const HANDLERS: usize = 4;
/// Connections waiting for a handler beyond this many are closed at once.
pub const QUEUE: usize = 64;
/// Largest request line plus headers read, in bytes; a longer head gets `400`.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Longest a client may take to send its request head, and to take our reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Peers returned when the announce has no `numwant`.
pub const DEFAULT_NUMWANT: usize = 50;
/// Most peers returned by one announce, whatever `numwant` says.
pub const MAX_NUMWANT: usize = 200;
/// Most torrents listed by a scrape without `info_hash`.
pub const MAX_SCRAPE: usize = 1000;

/// How often a handler blocked in `read` looks at the stop signal.
const POLL: Duration = Duration::from_millis(100);
/// Longest a handler waits for the swarm thread to take or answer a query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the thread does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Longest `stop` waits to connect to its own socket to wake the accept thread.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one UDP connection-id bucket lasts; an id is accepted in its bucket and the next.
const CONNECTION_BUCKET: Duration = Duration::from_secs(60);
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
    /// The handlers and the swarm thread.
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
    let (query_tx, query_rx) = crossbeam_channel::bounded::<Query>(QUEUE);
    let (conn_tx, conn_rx) = crossbeam_channel::bounded::<(TcpStream, SocketAddr)>(QUEUE);
    // If a spawn fails, returning drops the senders held here and the started threads end.
    let mut workers = Vec::with_capacity(HANDLERS + 1);
    let swarms = Swarms::new(&config);
    workers.push(
        std::thread::Builder::new()
            .name("tracker swarms".into())
            .spawn(move || run_swarms(swarms, query_rx))?,
    );
    for n in 0..HANDLERS {
        let handler = Handler {
            queries: query_tx.clone(),
            stop: stop_rx.clone(),
            interval: config.interval,
        };
        let conns = conn_rx.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("tracker http {n}"))
                .spawn(move || handler.run(conns))?,
        );
    }
    let udp_server = UdpServer {
        socket: udp_socket,
        ids: ConnectionIds::new(),
        queries: query_tx.clone(),
        stop: stop_rx.clone(),
        interval: config.interval,
    };
    workers.push(
        std::thread::Builder::new()
            .name("tracker udp".into())
            .spawn(move || udp_server.run())?,
    );
    drop((query_tx, conn_rx));
    let accept = std::thread::Builder::new()
        .name("tracker accept".into())
        .spawn(move || run_accept(listener, conn_tx, stop_rx))?;
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

    /// Stops accepting, drops queued connections and waits for every thread. Normally returns
    /// within a few tenths of a second; at worst after about [`REQUEST_TIMEOUT`] plus a second
    /// (a reply stuck writing to a client that does not read).
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

/// Whether the stop sender has been dropped.
fn stopped(stop: &Receiver<()>) -> bool {
    stop.try_recv() == Err(TryRecvError::Disconnected)
}

/// The accept thread: queue each connection for the handlers, or close it when they are busy.
fn run_accept(listener: TcpListener, conns: Sender<(TcpStream, SocketAddr)>, stop: Receiver<()>) {
    for conn in listener.incoming() {
        if stopped(&stop) {
            return;
        }
        match conn.and_then(|stream| Ok((stream.peer_addr()?, stream))) {
            Ok((from, stream)) => match conns.try_send((stream, from)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    log::debug!("tracker: all handlers busy, closing connection from {from}")
                }
                Err(TrySendError::Disconnected(_)) => return,
            },
            Err(error) => {
                log::debug!("tracker: accept failed: {error}");
                std::thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The swarm thread and its table.

/// A question for the swarm thread, with the channel to answer on.
enum Query {
    /// Record an announce and pick peers for it; `Err` is a refusal (`failure reason`).
    Announce {
        announce: Announce,
        reply: Sender<Result<AnnounceAnswer, String>>,
    },
    /// Counts for these torrents, or for all (up to [`MAX_SCRAPE`]) when empty.
    Scrape {
        hashes: Vec<[u8; 20]>,
        reply: Sender<Vec<([u8; 20], ScrapeCounts)>>,
    },
}

/// A parsed announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    info_hash: [u8; 20],
    peer_id: [u8; 20],
    /// The connection's source IP with the announced port: the peer's key.
    addr: SocketAddr,
    /// Bytes still missing, when the client said.
    left: Option<u64>,
    event: Option<AnnounceEvent>,
    numwant: usize,
    compact: bool,
}

/// The swarm thread's answer to an announce.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AnnounceAnswer {
    /// Seeders in the swarm.
    complete: u64,
    /// Leechers in the swarm.
    incomplete: u64,
    /// The chosen peers (never the requester) with their peer ids.
    peers: Vec<(SocketAddr, [u8; 20])>,
}

/// One torrent's scrape counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ScrapeCounts {
    complete: u64,
    downloaded: u64,
    incomplete: u64,
}

/// What the tracker remembers about one peer.
#[derive(Debug, Clone)]
struct Peer {
    peer_id: [u8; 20],
    left: Option<u64>,
    last_seen: Instant,
}

impl Peer {
    fn is_seed(&self) -> bool {
        self.left == Some(0)
    }
}

/// One torrent's peers, keyed by (source IP, announced port), and its `completed` count.
#[derive(Debug, Default)]
struct Swarm {
    peers: HashMap<SocketAddr, Peer>,
    downloaded: u64,
}

impl Swarm {
    fn expire(&mut self, now: Instant, ttl: Duration) {
        self.peers
            .retain(|_, peer| now.saturating_duration_since(peer.last_seen) < ttl);
    }

    fn counts(&self) -> ScrapeCounts {
        let complete = self.peers.values().filter(|peer| peer.is_seed()).count() as u64;
        ScrapeCounts {
            complete,
            downloaded: self.downloaded,
            incomplete: self.peers.len() as u64 - complete,
        }
    }
}

/// The swarm table, owned by the swarm thread. Pure: time comes in as arguments.
#[derive(Debug)]
struct Swarms {
    torrents: HashMap<[u8; 20], Swarm>,
    ttl: Duration,
    max_torrents: usize,
    max_peers: usize,
    /// Picks peers at random.
    rng: Rng,
}

impl Swarms {
    fn new(config: &ServerConfig) -> Swarms {
        Swarms {
            torrents: HashMap::new(),
            ttl: config.peer_ttl,
            max_torrents: config.max_torrents,
            max_peers: config.max_peers_per_torrent,
            rng: Rng::from_entropy(),
        }
    }

    /// Records `a` at `now` and picks up to `a.numwant` other peers at random.
    fn announce(&mut self, a: &Announce, now: Instant) -> Result<AnnounceAnswer, String> {
        let ttl = self.ttl;
        if let Some(swarm) = self.torrents.get_mut(&a.info_hash) {
            swarm.expire(now, ttl);
        }
        if a.event == Some(AnnounceEvent::Stopped) {
            let counts = match self.torrents.entry(a.info_hash) {
                Entry::Occupied(mut swarm) => {
                    swarm.get_mut().peers.remove(&a.addr);
                    let counts = swarm.get().counts();
                    if swarm.get().peers.is_empty() {
                        swarm.remove();
                    }
                    counts
                }
                Entry::Vacant(_) => ScrapeCounts::default(),
            };
            return Ok(AnnounceAnswer {
                complete: counts.complete,
                incomplete: counts.incomplete,
                peers: Vec::new(),
            });
        }
        let torrents = self.torrents.len();
        let swarm = match self.torrents.entry(a.info_hash) {
            Entry::Occupied(swarm) => swarm.into_mut(),
            Entry::Vacant(_) if torrents >= self.max_torrents => {
                return Err(format!(
                    "this tracker is full ({} torrents)",
                    self.max_torrents
                ))
            }
            Entry::Vacant(slot) => slot.insert(Swarm::default()),
        };
        if !swarm.peers.contains_key(&a.addr) && swarm.peers.len() >= self.max_peers {
            return Err(format!(
                "this torrent's swarm is full ({} peers)",
                self.max_peers
            ));
        }
        let left = match a.event {
            Some(AnnounceEvent::Completed) => {
                swarm.downloaded += 1;
                Some(a.left.unwrap_or(0))
            }
            _ => a.left,
        };
        swarm.peers.insert(
            a.addr,
            Peer {
                peer_id: a.peer_id,
                left,
                last_seen: now,
            },
        );
        let counts = swarm.counts();
        let mut peers: Vec<(SocketAddr, [u8; 20])> = swarm
            .peers
            .iter()
            .filter(|(addr, peer)| **addr != a.addr && peer.peer_id != a.peer_id)
            .map(|(addr, peer)| (*addr, peer.peer_id))
            .collect();
        let wanted = a.numwant.min(peers.len());
        // Partial Fisher–Yates: the first `wanted` entries become a uniform random sample.
        for i in 0..wanted {
            let j = i + self.rng.index(peers.len() - i);
            peers.swap(i, j);
        }
        peers.truncate(wanted);
        Ok(AnnounceAnswer {
            complete: counts.complete,
            incomplete: counts.incomplete,
            peers,
        })
    }

    /// Counts for `hashes` (zeros for unknown torrents), or for every torrent (at most
    /// [`MAX_SCRAPE`]) when `hashes` is empty; sorted by hash, without duplicates.
    fn scrape(&self, hashes: &[[u8; 20]]) -> Vec<([u8; 20], ScrapeCounts)> {
        let mut files: Vec<([u8; 20], ScrapeCounts)> = if hashes.is_empty() {
            self.torrents
                .iter()
                .take(MAX_SCRAPE)
                .map(|(hash, swarm)| (*hash, swarm.counts()))
                .collect()
        } else {
            hashes
                .iter()
                .map(|hash| {
                    let counts = self.torrents.get(hash).map(Swarm::counts);
                    (*hash, counts.unwrap_or_default())
                })
                .collect()
        };
        files.sort_unstable_by_key(|(hash, _)| *hash);
        files.dedup_by_key(|(hash, _)| *hash);
        files
    }

    /// Forgets peers silent for the TTL, and torrents left without peers (their `downloaded`
    /// count goes with them).
    fn sweep(&mut self, now: Instant) {
        let ttl = self.ttl;
        self.torrents.retain(|_, swarm| {
            swarm.expire(now, ttl);
            !swarm.peers.is_empty()
        });
    }
}

/// The swarm thread: answers queries and sweeps every quarter TTL (between 10 ms and 30 s),
/// until every handler has gone.
fn run_swarms(mut swarms: Swarms, queries: Receiver<Query>) {
    let period = (swarms.ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(30));
    let mut next_sweep = Instant::now() + period;
    loop {
        let received = queries.recv_timeout(next_sweep.saturating_duration_since(Instant::now()));
        // Sweep before answering, so a query never sees a peer whose sweep is overdue.
        let now = Instant::now();
        if now >= next_sweep {
            swarms.sweep(now);
            next_sweep = now + period;
        }
        match received {
            Ok(Query::Announce { announce, reply }) => {
                let answer = swarms.announce(&announce, now);
                log::debug!(
                    "tracker: announce {} from {} event {:?} left {:?}: {}",
                    crate::metainfo::hex(&announce.info_hash),
                    announce.addr,
                    announce.event,
                    announce.left,
                    match &answer {
                        Ok(answer) => format!("{} peers", answer.peers.len()),
                        Err(reason) => format!("refused: {reason}"),
                    }
                );
                // The handler may have given up waiting; nothing to do then.
                let _ = reply.send(answer);
            }
            Ok(Query::Scrape { hashes, reply }) => {
                let _ = reply.send(swarms.scrape(&hashes));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The handler threads: HTTP in, bencode out.

/// An HTTP reply: status and `text/plain` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    body: Vec<u8>,
}

impl Response {
    fn ok(body: Vec<u8>) -> Response {
        Response { status: 200, body }
    }

    /// A `200` carrying a bencoded `failure reason`, as trackers refuse announces.
    fn failure(reason: &str) -> Response {
        let body = Value::Dict(vec![(b"failure reason", Value::Bytes(reason.as_bytes()))]);
        Response::ok(body.encode())
    }

    fn status(status: u16) -> Response {
        Response {
            status,
            body: reason_phrase(status).as_bytes().to_vec(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            self.status,
            reason_phrase(self.status),
            self.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    }
}

/// Why a handler gave up on a connection.
#[derive(Debug)]
enum ServeError {
    /// The client closed, went silent past [`REQUEST_TIMEOUT`], or the server is stopping:
    /// close without a reply.
    Abandoned,
    /// The head exceeded [`MAX_REQUEST_HEAD`] or the client closed mid-head: `400`.
    Bad,
    /// A socket error.
    Io(io::Error),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Abandoned => write!(f, "request abandoned"),
            ServeError::Bad => write!(f, "request head too long or cut short"),
            ServeError::Io(error) => write!(f, "{error}"),
        }
    }
}

/// One handler thread's view of the server.
struct Handler {
    queries: Sender<Query>,
    stop: Receiver<()>,
    interval: Duration,
}

impl Handler {
    /// Serves connections until the accept thread is gone; after a stop, drops queued ones.
    fn run(self, conns: Receiver<(TcpStream, SocketAddr)>) {
        for (stream, from) in conns {
            if stopped(&self.stop) {
                continue;
            }
            if let Err(error) = self.serve(stream, from) {
                log::debug!("tracker: {from}: {error}");
            }
        }
    }

    fn serve(&self, mut stream: TcpStream, from: SocketAddr) -> Result<(), ServeError> {
        stream
            .set_write_timeout(Some(REQUEST_TIMEOUT))
            .map_err(ServeError::Io)?;
        let response = match self.read_head(&mut stream) {
            Ok(head) => self.respond(&head, from),
            Err(ServeError::Bad) => Response::status(400),
            Err(error) => return Err(error),
        };
        stream
            .write_all(&response.to_bytes())
            .and_then(|()| stream.flush())
            .map_err(ServeError::Io)
    }

    /// Reads up to the blank line ending the headers, in short reads that check the stop
    /// signal, within [`REQUEST_TIMEOUT`] in total.
    fn read_head(&self, stream: &mut TcpStream) -> Result<Vec<u8>, ServeError> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || stopped(&self.stop) {
                return Err(ServeError::Abandoned);
            }
            stream
                .set_read_timeout(Some(left.min(POLL)))
                .map_err(ServeError::Io)?;
            match stream.read(&mut chunk) {
                Ok(0) if head.is_empty() => return Err(ServeError::Abandoned),
                Ok(0) => return Err(ServeError::Bad),
                Ok(n) => {
                    // Look for the end from a little before the new bytes, in case it straddles.
                    let from = head.len().saturating_sub(3);
                    head.extend_from_slice(&chunk[..n]);
                    if let Some(end) = head_end(&head[from..]) {
                        head.truncate(from + end);
                        return Ok(head);
                    }
                    if head.len() > MAX_REQUEST_HEAD {
                        return Err(ServeError::Bad);
                    }
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(error) => return Err(ServeError::Io(error)),
            }
        }
    }

    /// The reply to the request head `head` from `from`.
    fn respond(&self, head: &[u8], from: SocketAddr) -> Response {
        match parse_request(head, from) {
            Ok(HttpRequest::Announce(announce)) => self.announce(announce),
            Ok(HttpRequest::Scrape(hashes)) => self.scrape(hashes),
            Err(refusal) => refusal,
        }
    }

    fn announce(&self, announce: Announce) -> Response {
        let compact = announce.compact;
        match self.ask(|reply| Query::Announce { announce, reply }) {
            Some(Ok(answer)) => Response::ok(announce_body(&answer, compact, self.interval)),
            Some(Err(reason)) => Response::failure(&reason),
            None => Response::status(503),
        }
    }

    fn scrape(&self, hashes: Vec<[u8; 20]>) -> Response {
        match self.ask(|reply| Query::Scrape { hashes, reply }) {
            Some(files) => Response::ok(scrape_body(&files)),
            None => Response::status(503),
        }
    }

    fn ask<T>(&self, query: impl FnOnce(Sender<T>) -> Query) -> Option<T> {
        ask(&self.queries, query)
    }
}

/// Sends a query to the swarm thread and waits (bounded) for its answer.
fn ask<T>(queries: &Sender<Query>, query: impl FnOnce(Sender<T>) -> Query) -> Option<T> {
    let (reply, answer) = crossbeam_channel::bounded(1);
    queries.send_timeout(query(reply), QUERY_TIMEOUT).ok()?;
    answer.recv_timeout(QUERY_TIMEOUT).ok()
}

// ---------------------------------------------------------------------------------------------
// The UDP thread: BEP 15 datagrams in and out.

/// Stateless UDP connection ids: a keyed hash of the client's IP address (not its port, as
/// BEP 15 suggests) and a time bucket.
#[derive(Debug)]
struct ConnectionIds {
    /// Randomly keyed SipHash: the per-server secret.
    key: RandomState,
    epoch: Instant,
}

impl ConnectionIds {
    fn new() -> ConnectionIds {
        ConnectionIds {
            key: RandomState::new(),
            epoch: Instant::now(),
        }
    }

    fn bucket(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / CONNECTION_BUCKET.as_secs()
    }

    fn id(&self, from: SocketAddr, bucket: u64) -> u64 {
        let mut hasher = self.key.build_hasher();
        std::hash::Hash::hash(&from.ip().to_canonical(), &mut hasher);
        hasher.write_u64(bucket);
        hasher.finish()
    }

    /// The id to give `from` at `now`.
    fn issue(&self, from: SocketAddr, now: Instant) -> u64 {
        self.id(from, self.bucket(now))
    }

    /// Whether `id` was issued to `from` in this bucket or the previous one.
    fn valid(&self, id: u64, from: SocketAddr, now: Instant) -> bool {
        let bucket = self.bucket(now);
        id == self.id(from, bucket) || (bucket > 0 && id == self.id(from, bucket - 1))
    }
}

/// The UDP thread's state.
struct UdpServer {
    socket: UdpSocket,
    ids: ConnectionIds,
    queries: Sender<Query>,
    stop: Receiver<()>,
    interval: Duration,
}

impl UdpServer {
    /// Answers datagrams until the stop signal.
    fn run(self) {
        if let Err(error) = self.socket.set_read_timeout(Some(POLL)) {
            log::error!("tracker udp: cannot set a read timeout, UDP disabled: {error}");
            return;
        }
        let mut buf = vec![0u8; udp::MAX_DATAGRAM];
        while !stopped(&self.stop) {
            let (n, from) = match self.socket.recv_from(&mut buf) {
                Ok(received) => received,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(error) => {
                    // E.g. ICMP errors reported for an earlier reply: harmless.
                    log::debug!("tracker udp: receive failed: {error}");
                    continue;
                }
            };
            let Some(reply) = self.respond(&buf[..n], from, Instant::now()) else {
                continue;
            };
            if let Err(error) = self.socket.send_to(&reply.encode(), from) {
                log::debug!("tracker udp: reply to {from} failed: {error}");
            }
        }
    }

    /// The reply to the datagram `datagram` from `from`, if it deserves one (garbage and
    /// requests that cannot be parsed far enough to name a transaction get none).
    fn respond(&self, datagram: &[u8], from: SocketAddr, now: Instant) -> Option<udp::Response> {
        let request = match Request::decode(datagram) {
            Ok(request) => request,
            Err(reason) => {
                log::debug!("tracker udp: {from}: {reason}");
                let transaction_id = datagram.get(12..16)?;
                return Some(udp::Response::Error {
                    transaction_id: u32::from_be_bytes(transaction_id.try_into().ok()?),
                    message: reason,
                });
            }
        };
        let transaction_id = request.transaction_id();
        let error = |message: &str| {
            Some(udp::Response::Error {
                transaction_id,
                message: message.to_string(),
            })
        };
        match request {
            Request::Connect { .. } => Some(udp::Response::Connect {
                transaction_id,
                connection_id: self.ids.issue(from, now),
            }),
            Request::Announce { connection_id, .. } | Request::Scrape { connection_id, .. }
                if !self.ids.valid(connection_id, from, now) =>
            {
                error("invalid or expired connection id")
            }
            Request::Announce { request, .. } => {
                if request.port == 0 {
                    return error("invalid port");
                }
                let v4 = from.ip().to_canonical().is_ipv4();
                let announce = Announce {
                    info_hash: request.info_hash,
                    peer_id: request.peer_id,
                    addr: SocketAddr::new(from.ip().to_canonical(), request.port),
                    left: Some(request.left),
                    event: request.event,
                    numwant: usize::try_from(request.numwant)
                        .unwrap_or(MAX_NUMWANT)
                        .min(MAX_NUMWANT),
                    compact: true,
                };
                match ask(&self.queries, |reply| Query::Announce { announce, reply }) {
                    Some(Ok(answer)) => Some(udp::Response::Announce {
                        transaction_id,
                        interval: u32::try_from(self.interval.as_secs().max(1)).unwrap_or(u32::MAX),
                        leechers: saturate(answer.incomplete),
                        seeders: saturate(answer.complete),
                        // Each reply carries one address family: the one the client used.
                        peers: answer
                            .peers
                            .into_iter()
                            .map(|(addr, _)| addr)
                            .filter(|addr| addr.is_ipv4() == v4)
                            .collect(),
                    }),
                    Some(Err(reason)) => error(&reason),
                    None => error("tracker busy"),
                }
            }
            Request::Scrape { info_hashes, .. } => {
                let wanted = info_hashes.clone();
                match ask(&self.queries, |reply| Query::Scrape {
                    hashes: info_hashes,
                    reply,
                }) {
                    Some(files) => Some(udp::Response::Scrape {
                        transaction_id,
                        counts: wanted
                            .iter()
                            .map(|hash| {
                                let counts = files
                                    .binary_search_by_key(hash, |(h, _)| *h)
                                    .map(|i| files[i].1)
                                    .unwrap_or_default();
                                udp::ScrapeCounts {
                                    seeders: saturate(counts.complete),
                                    completed: saturate(counts.downloaded),
                                    leechers: saturate(counts.incomplete),
                                }
                            })
                            .collect(),
                    }),
                    None => error("tracker busy"),
                }
            }
        }
    }
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What a request head asks of the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRequest {
    /// `GET /announce?…`.
    Announce(Announce),
    /// `GET /scrape?…`: these info hashes, or every torrent when there are none.
    Scrape(Vec<[u8; 20]>),
}

/// Parses the request head `head` (request line and headers, as a stranger sent them) from
/// `from`. `Err` is the reply that refuses it: an HTTP error status, or a `200` with a
/// `failure reason` for a well-formed request with bad parameters.
pub fn parse_request(head: &[u8], from: SocketAddr) -> Result<HttpRequest, Response> {
    let Some(line) = head
        .split(|&b| b == b'\n')
        .next()
        .and_then(|line| std::str::from_utf8(line).ok())
    else {
        return Err(Response::status(400));
    };
    let parts: Vec<&str> = line.trim_end_matches('\r').split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(Response::status(400));
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(Response::status(400));
    }
    if method != "GET" {
        return Err(Response::status(405));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = parse_query(query).map_err(|reason| Response::failure(&reason))?;
    match path {
        "/announce" => parse_announce(&params, from).map(HttpRequest::Announce),
        "/scrape" => parse_scrape(&params).map(HttpRequest::Scrape),
        _ => return Err(Response::status(404)),
    }
    .map_err(|reason| Response::failure(&reason))
}

/// Where the head ends (just past `\r\n\r\n` or `\n\n`) in `bytes`, if it does.
fn head_end(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find_map(|i| {
        let rest = &bytes[i..];
        if rest.starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if rest.starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// One percent-decoded `key=value` pair of a query string.
type Param = (Vec<u8>, Vec<u8>);

/// Splits a query string into percent-decoded key/value pairs, in order.
fn parse_query(query: &str) -> Result<Vec<Param>, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(key)?, percent_decode(value)?))
        })
        .collect()
}

/// Decodes `%XX` escapes to bytes. `+` stays `+`: a raw `+` in a binary `info_hash` is the
/// byte 0x2B, never a space.
fn percent_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| "malformed percent-encoding in the query".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The first value of `key`.
fn param<'a>(params: &'a [Param], key: &str) -> Option<&'a [u8]> {
    params
        .iter()
        .find(|(k, _)| k == key.as_bytes())
        .map(|(_, v)| v.as_slice())
}

/// `value` as a 20-byte hash or id named `name`.
fn twenty(value: &[u8], name: &str) -> Result<[u8; 20], String> {
    <[u8; 20]>::try_from(value).map_err(|_| format!("{name} must be 20 bytes, got {}", value.len()))
}

/// The first value of `key` as a decimal number, if present.
fn number<T: std::str::FromStr>(params: &[Param], key: &str) -> Result<Option<T>, String> {
    param(params, key)
        .map(|value| {
            std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| format!("invalid {key}"))
        })
        .transpose()
}

/// Validates an announce's parameters; the peer's IP is `from`'s (a client-supplied `ip` is
/// ignored). `Err` is the `failure reason`.
fn parse_announce(params: &[Param], from: SocketAddr) -> Result<Announce, String> {
    let info_hash = twenty(
        param(params, "info_hash").ok_or("missing info_hash")?,
        "info_hash",
    )?;
    let peer_id = twenty(
        param(params, "peer_id").ok_or("missing peer_id")?,
        "peer_id",
    )?;
    let port = match number::<u16>(params, "port")? {
        Some(port) if port != 0 => port,
        Some(_) => return Err("invalid port".to_string()),
        None => return Err("missing port".to_string()),
    };
    number::<u64>(params, "uploaded")?;
    number::<u64>(params, "downloaded")?;
    let left = number::<u64>(params, "left")?;
    let event = match param(params, "event") {
        None | Some(b"") | Some(b"paused") => None,
        Some(b"started") => Some(AnnounceEvent::Started),
        Some(b"completed") => Some(AnnounceEvent::Completed),
        Some(b"stopped") => Some(AnnounceEvent::Stopped),
        Some(_) => return Err("invalid event".to_string()),
    };
    let numwant = number::<usize>(params, "numwant")
        .ok()
        .flatten()
        .unwrap_or(DEFAULT_NUMWANT)
        .min(MAX_NUMWANT);
    Ok(Announce {
        info_hash,
        peer_id,
        addr: SocketAddr::new(from.ip().to_canonical(), port),
        left,
        event,
        numwant,
        compact: param(params, "compact") != Some(b"0"),
    })
}

/// The `info_hash` values of a scrape (none means all torrents).
fn parse_scrape(params: &[Param]) -> Result<Vec<[u8; 20]>, String> {
    params
        .iter()
        .filter(|(key, _)| key == b"info_hash")
        .map(|(_, value)| twenty(value, "info_hash"))
        .collect()
}

fn int(n: u64) -> Value<'static> {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The bencoded announce reply: compact `peers` (IPv4) and `peers6` (IPv6), or with
/// `compact` false a `peers` list of `ip`/`peer id`/`port` dicts.
fn announce_body(answer: &AnnounceAnswer, compact: bool, interval: Duration) -> Vec<u8> {
    let interval = interval.as_secs().max(1);
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for (addr, _) in &answer.peers {
        match addr {
            SocketAddr::V4(addr) => {
                v4.extend_from_slice(&addr.ip().octets());
                v4.extend_from_slice(&addr.port().to_be_bytes());
            }
            SocketAddr::V6(addr) => {
                v6.extend_from_slice(&addr.ip().octets());
                v6.extend_from_slice(&addr.port().to_be_bytes());
            }
        }
    }
    let ips: Vec<String> = answer
        .peers
        .iter()
        .map(|(addr, _)| addr.ip().to_string())
        .collect();
    // Keys in sorted order, as canonical bencode requires.
    let mut entries = vec![
        (b"complete" as &[u8], int(answer.complete)),
        (b"incomplete", int(answer.incomplete)),
        (b"interval", int(interval)),
        (b"min interval", int((interval / 2).max(1))),
    ];
    if compact {
        entries.push((b"peers", Value::Bytes(&v4)));
        if !v6.is_empty() {
            entries.push((b"peers6", Value::Bytes(&v6)));
        }
    } else {
        let list = answer
            .peers
            .iter()
            .zip(&ips)
            .map(|((addr, peer_id), ip)| {
                Value::Dict(vec![
                    (b"ip" as &[u8], Value::Bytes(ip.as_bytes())),
                    (b"peer id", Value::Bytes(peer_id)),
                    (b"port", int(u64::from(addr.port()))),
                ])
            })
            .collect();
        entries.push((b"peers", Value::List(list)));
    }
    Value::Dict(entries).encode()
}

/// The bencoded scrape reply; `files` must be sorted by hash without duplicates.
fn scrape_body(files: &[([u8; 20], ScrapeCounts)]) -> Vec<u8> {
    let files = files
        .iter()
        .map(|(hash, counts)| {
            let counts = Value::Dict(vec![
                (b"complete" as &[u8], int(counts.complete)),
                (b"downloaded", int(counts.downloaded)),
                (b"incomplete", int(counts.incomplete)),
            ]);
            (hash as &[u8], counts)
        })
        .collect();
    Value::Dict(vec![(b"files", Value::Dict(files))]).encode()
}

#[cfg(test)]
mod tests {
    use super::super::AnnounceRequest;
    use super::*;
    use crate::bencode;

    const HASH: [u8; 20] = *b"\x00\x01 +%&=?/\xfe\xffhashbytes";

    fn config() -> ServerConfig {
        ServerConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    fn peer_id(n: u16) -> [u8; 20] {
        let mut id = *b"-TS0001-000000000000";
        id[18..].copy_from_slice(&n.to_be_bytes());
        id
    }

    fn encode(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("%{b:02X}")).collect()
    }

    /// The announce target for peer `n` on port `port`, plus `extra` parameters.
    fn target(hash: &[u8], n: u16, port: u16, extra: &str) -> String {
        format!(
            "/announce?info_hash={}&peer_id={}&port={port}{extra}",
            encode(hash),
            encode(&peer_id(n))
        )
    }

    /// Sends `request` raw and returns the status code and body of the reply.
    fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        let end = head_end(&reply).expect("a complete reply head");
        let head = std::str::from_utf8(&reply[..end]).unwrap();
        assert!(head.contains("Connection: close"), "{head}");
        let status = head[9..12].parse().unwrap();
        (status, reply[end..].to_vec())
    }

    fn get(addr: SocketAddr, target: &str) -> (u16, Vec<u8>) {
        exchange(
            addr,
            format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        )
    }

    /// A successful announce's bencoded reply body.
    fn announce_ok(addr: SocketAddr, target: &str) -> Vec<u8> {
        let (status, body) = get(addr, target);
        assert_eq!(status, 200);
        let root = bencode::decode(&body).unwrap();
        assert!(
            root.get(b"failure reason").is_none(),
            "{}",
            String::from_utf8_lossy(&body)
        );
        body
    }

    fn failure_reason(body: &[u8]) -> String {
        let root = bencode::decode(body).unwrap();
        root.get(b"failure reason")
            .and_then(Value::as_str)
            .expect("a failure reason")
            .to_string()
    }

    /// The ports in a compact `peers` string.
    fn compact_ports(body: &[u8]) -> Vec<u16> {
        let root = bencode::decode(body).unwrap();
        let peers = root.get(b"peers").and_then(Value::as_bytes).unwrap();
        assert_eq!(peers.len() % 6, 0);
        let mut ports: Vec<u16> = peers
            .chunks_exact(6)
            .map(|entry| {
                assert_eq!(entry[..4], [127, 0, 0, 1]);
                u16::from_be_bytes([entry[4], entry[5]])
            })
            .collect();
        ports.sort_unstable();
        ports
    }

    fn count(body: &[u8], key: &[u8]) -> i64 {
        bencode::decode(body)
            .unwrap()
            .get(key)
            .and_then(Value::as_int)
            .unwrap()
    }

    #[test]
    fn compact_reply_lists_the_others_but_not_the_requester() {
        let server = start(config()).unwrap();
        let addr = server.addr();
        announce_ok(addr, &target(&HASH, 1, 7001, "&left=0"));
        announce_ok(addr, &target(&HASH, 2, 7002, "&left=10"));
        let body = announce_ok(addr, &target(&HASH, 3, 7003, "&left=10&event=started"));
        assert_eq!(compact_ports(&body), [7001, 7002]);
        assert_eq!(count(&body, b"complete"), 1);
        assert_eq!(count(&body, b"incomplete"), 2);
        assert_eq!(count(&body, b"interval"), 60);
        assert_eq!(count(&body, b"min interval"), 30);
        // A re-announce by the same peer does not list it either, nor count it twice.
        let again = announce_ok(addr, &target(&HASH, 1, 7001, "&left=0"));
        assert_eq!(compact_ports(&again), [7002, 7003]);
        assert_eq!(count(&again, b"incomplete"), 2);
        server.stop();
    }

    #[test]
    fn compact_zero_gives_dictionaries() {
        let server = start(config()).unwrap();
        let addr = server.addr();
        announce_ok(addr, &target(&HASH, 1, 7001, ""));
        let body = announce_ok(addr, &target(&HASH, 2, 7002, "&compact=0"));
        let root = bencode::decode(&body).unwrap();
        let peers = root.get(b"peers").and_then(Value::as_list).unwrap();
        assert_eq!(peers.len(), 1);
        assert_eq!(
            peers[0].get(b"ip").and_then(Value::as_str),
            Some("127.0.0.1")
        );
        assert_eq!(peers[0].get(b"port").and_then(Value::as_int), Some(7001));
        assert_eq!(
            peers[0].get(b"peer id").and_then(Value::as_bytes),
            Some(&peer_id(1)[..])
        );
        server.stop();
    }

    #[test]
    fn numwant_limits_the_peers_returned() {
        let server = start(config()).unwrap();
        let addr = server.addr();
        for n in 1..=6 {
            announce_ok(addr, &target(&HASH, n, 7000 + n, ""));
        }
        let two = announce_ok(addr, &target(&HASH, 1, 7001, "&numwant=2"));
        assert_eq!(compact_ports(&two).len(), 2);
        assert!(!compact_ports(&two).contains(&7001));
        let none = announce_ok(addr, &target(&HASH, 1, 7001, "&numwant=0"));
        assert!(compact_ports(&none).is_empty());
        let all = announce_ok(addr, &target(&HASH, 1, 7001, "&numwant=1000"));
        assert_eq!(compact_ports(&all), [7002, 7003, 7004, 7005, 7006]);
        server.stop();
    }

    #[test]
    fn stopped_removes_the_peer() {
        let server = start(config()).unwrap();
        let addr = server.addr();
        announce_ok(addr, &target(&HASH, 1, 7001, ""));
        announce_ok(addr, &target(&HASH, 2, 7002, ""));
        let body = announce_ok(addr, &target(&HASH, 1, 7001, "&event=stopped"));
        assert_eq!(count(&body, b"incomplete"), 1);
        let body = announce_ok(addr, &target(&HASH, 2, 7002, ""));
        assert!(compact_ports(&body).is_empty());
        assert_eq!(count(&body, b"incomplete"), 1);
        server.stop();
    }

    #[test]
    fn silent_peers_expire() {
        let server = start(ServerConfig {
            peer_ttl: Duration::from_millis(200),
            ..config()
        })
        .unwrap();
        let addr = server.addr();
        announce_ok(addr, &target(&HASH, 1, 7001, ""));
        std::thread::sleep(Duration::from_millis(400));
        // Swept by the timer: a scrape (which never expires anything itself) no longer sees it.
        let (_, scrape) = get(addr, "/scrape");
        let root = bencode::decode(&scrape).unwrap();
        let files = root.get(b"files").and_then(Value::as_dict).unwrap();
        assert!(files.is_empty(), "{files:?}");
        let body = announce_ok(addr, &target(&HASH, 2, 7002, ""));
        assert!(compact_ports(&body).is_empty());
        assert_eq!(count(&body, b"incomplete"), 1);
        server.stop();
    }

    #[test]
    fn scrape_counts_seeders_leechers_and_completions() {
        let server = start(config()).unwrap();
        let addr = server.addr();
        let other = [7u8; 20];
        announce_ok(addr, &target(&HASH, 1, 7001, "&left=5"));
        announce_ok(addr, &target(&HASH, 1, 7001, "&left=0&event=completed"));
        announce_ok(addr, &target(&HASH, 2, 7002, "&left=5"));
        announce_ok(addr, &target(&other, 3, 7003, "&left=0"));
        let unknown = [9u8; 20];
        let (status, body) = get(
            addr,
            &format!(
                "/scrape?info_hash={}&info_hash={}",
                encode(&HASH),
                encode(&unknown)
            ),
        );
        assert_eq!(status, 200);
        let root = bencode::decode(&body).unwrap();
        let files = root.get(b"files").unwrap();
        let ours = files.get(&HASH).unwrap();
        assert_eq!(ours.get(b"complete").and_then(Value::as_int), Some(1));
        assert_eq!(ours.get(b"incomplete").and_then(Value::as_int), Some(1));
        assert_eq!(ours.get(b"downloaded").and_then(Value::as_int), Some(1));
        let none = files.get(&unknown).unwrap();
        assert_eq!(none.get(b"complete").and_then(Value::as_int), Some(0));
        assert!(files.get(&other).is_none());

        let (_, all) = get(addr, "/scrape");
        let root = bencode::decode(&all).unwrap();
        let files = root.get(b"files").and_then(Value::as_dict).unwrap();
        let mut hashes: Vec<&[u8]> = files.iter().map(|(hash, _)| *hash).collect();
        hashes.sort_unstable();
        assert_eq!(hashes, [&HASH[..], &other[..]]);
        server.stop();
    }

    #[test]
    fn malformed_announces_get_a_failure_reason() {
        let server = start(config()).unwrap();
        let addr = server.addr();
        let cases = [
            (
                target(&HASH[..19], 1, 7001, ""),
                "info_hash must be 20 bytes, got 19",
            ),
            (
                format!("/announce?peer_id={}&port=1", encode(&peer_id(1))),
                "missing info_hash",
            ),
            (target(&HASH, 1, 0, ""), "invalid port"),
            (target(&HASH, 1, 7001, "&left=-1"), "invalid left"),
            (target(&HASH, 1, 7001, "&event=bogus"), "invalid event"),
            (
                "/announce?info_hash=%zz".to_string(),
                "malformed percent-encoding in the query",
            ),
        ];
        for (target, expected) in cases {
            let (status, body) = get(addr, &target);
            assert_eq!(status, 200, "{target}");
            assert_eq!(failure_reason(&body), expected, "{target}");
        }
        let (_, scrape) = get(addr, "/scrape?info_hash=short");
        assert_eq!(failure_reason(&scrape), "info_hash must be 20 bytes, got 5");
        server.stop();
    }

    #[test]
    fn garbage_unknown_paths_and_huge_heads_do_not_hurt_the_server() {
        let server = start(config()).unwrap();
        let addr = server.addr();
        assert_eq!(exchange(addr, b"\x00\x16\x03\x01garbage\r\n\r\n").0, 400);
        assert_eq!(exchange(addr, b"GET /announce\r\n\r\n").0, 400);
        assert_eq!(exchange(addr, b"POST /announce HTTP/1.1\r\n\r\n").0, 405);
        assert_eq!(get(addr, "/favicon.ico").0, 404);
        // A head past the cap: a 400 or a reset, never a hang or a crash.
        let mut huge = b"GET /announce?".to_vec();
        huge.extend(vec![b'a'; MAX_REQUEST_HEAD + 100]);
        if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let _ = stream.write_all(&huge);
            let mut reply = Vec::new();
            let _ = stream.read_to_end(&mut reply);
            assert!(reply.is_empty() || reply.starts_with(b"HTTP/1.1 400"));
        }
        // A client that connects and leaves without a word gets nothing and harms nothing.
        drop(TcpStream::connect(addr).unwrap());
        announce_ok(addr, &target(&HASH, 1, 7001, ""));
        server.stop();
    }

    #[test]
    fn our_client_announces_end_to_end() {
        let server = start(config()).unwrap();
        announce_ok(server.addr(), &target(&HASH, 1, 7001, ""));
        let request = AnnounceRequest {
            info_hash: HASH,
            peer_id: peer_id(2),
            port: 7002,
            uploaded: 0,
            downloaded: 0,
            left: 100,
            event: Some(AnnounceEvent::Started),
            numwant: 50,
        };
        let url = server.announce_url();
        let response =
            super::super::http::announce(&url, &request, Duration::from_secs(5)).unwrap();
        assert_eq!(
            response.peers,
            vec![SocketAddr::from(([127, 0, 0, 1], 7001))]
        );
        assert_eq!(response.interval, DEFAULT_INTERVAL);
        assert_eq!(response.incomplete, Some(2));
        let stopped = AnnounceRequest {
            event: Some(AnnounceEvent::Stopped),
            numwant: 0,
            ..request
        };
        let response =
            super::super::http::announce(&url, &stopped, Duration::from_secs(5)).unwrap();
        assert!(response.peers.is_empty());
        assert_eq!(response.incomplete, Some(1));
        server.stop();
    }

    #[test]
    fn limits_refuse_new_peers_and_torrents() {
        let server = start(ServerConfig {
            max_torrents: 1,
            max_peers_per_torrent: 2,
            ..config()
        })
        .unwrap();
        let addr = server.addr();
        announce_ok(addr, &target(&HASH, 1, 7001, ""));
        announce_ok(addr, &target(&HASH, 2, 7002, ""));
        let (_, body) = get(addr, &target(&HASH, 3, 7003, ""));
        assert_eq!(
            failure_reason(&body),
            "this torrent's swarm is full (2 peers)"
        );
        // Known peers may still re-announce.
        announce_ok(addr, &target(&HASH, 2, 7002, ""));
        let (_, body) = get(addr, &target(&[5u8; 20], 3, 7003, ""));
        assert_eq!(failure_reason(&body), "this tracker is full (1 torrents)");
        server.stop();
    }

    #[test]
    fn stop_returns_promptly_even_with_an_idle_client() {
        let server = start(config()).unwrap();
        let _idle = TcpStream::connect(server.addr()).unwrap();
        let mut partial = TcpStream::connect(server.addr()).unwrap();
        partial.write_all(b"GET /announce?info").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        server.stop();
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(2), "stop took {elapsed:?}");
    }

    #[test]
    fn bad_configs_are_refused() {
        let zero_ttl = ServerConfig {
            peer_ttl: Duration::ZERO,
            ..config()
        };
        let error = start(zero_ttl).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    fn announce(n: u16, port: u16) -> Announce {
        Announce {
            info_hash: HASH,
            peer_id: peer_id(n),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            left: Some(1),
            event: None,
            numwant: 1,
            compact: true,
        }
    }

    #[test]
    fn random_selection_varies() {
        let mut swarms = Swarms::new(&config());
        let now = Instant::now();
        for n in 1..=10 {
            swarms.announce(&announce(n, 7000 + n), now).unwrap();
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let answer = swarms.announce(&announce(1, 7001), now).unwrap();
            assert_eq!(answer.peers.len(), 1);
            assert_ne!(answer.peers[0].0.port(), 7001);
            seen.insert(answer.peers[0].0);
        }
        assert!(seen.len() > 1, "always the same peer: {seen:?}");
    }

    #[test]
    fn sweep_forgets_silent_peers_and_empty_torrents() {
        let mut swarms = Swarms::new(&config());
        let start = Instant::now();
        let ttl = swarms.ttl;
        swarms.announce(&announce(1, 7001), start).unwrap();
        swarms
            .announce(&announce(2, 7002), start + ttl / 2)
            .unwrap();
        swarms.sweep(start + ttl);
        assert_eq!(swarms.scrape(&[HASH])[0].1.incomplete, 1);
        swarms.sweep(start + ttl * 2);
        assert!(swarms.torrents.is_empty());
    }

    #[test]
    fn ipv6_peers_go_in_peers6_and_ipv4_mapped_sources_become_ipv4() {
        let answer = AnnounceAnswer {
            complete: 0,
            incomplete: 2,
            peers: vec![
                (SocketAddr::from(([10, 0, 0, 1], 6881)), peer_id(1)),
                ("[2001:db8::1]:6882".parse().unwrap(), peer_id(2)),
            ],
        };
        let body = announce_body(&answer, true, DEFAULT_INTERVAL);
        let parsed = super::super::http::parse_response("test", &body).unwrap();
        assert_eq!(parsed.peers, vec![answer.peers[0].0, answer.peers[1].0],);
        let root = bencode::decode(&body).unwrap();
        assert_eq!(
            root.get(b"peers6")
                .and_then(Value::as_bytes)
                .map(<[u8]>::len),
            Some(18)
        );

        let params = parse_query(&target(&HASH, 1, 7001, "")[10..]).unwrap();
        let mapped: SocketAddr = "[::ffff:192.168.1.9]:5555".parse().unwrap();
        let parsed = parse_announce(&params, mapped).unwrap();
        assert_eq!(parsed.addr, SocketAddr::from(([192, 168, 1, 9], 7001)));
    }

    #[test]
    fn query_parsing_decodes_bytes_and_ignores_a_client_ip() {
        assert_eq!(percent_decode("a%00%fF+b").unwrap(), b"a\x00\xff+b");
        assert!(percent_decode("%4").is_err());
        let query = format!(
            "{}&ip=6.6.6.6&numwant=9999&compact=0",
            &target(&HASH, 1, 7001, "")[10..]
        );
        let params = parse_query(&query).unwrap();
        let from = SocketAddr::from(([127, 0, 0, 2], 40000));
        let parsed = parse_announce(&params, from).unwrap();
        assert_eq!(parsed.info_hash, HASH);
        assert_eq!(parsed.addr, SocketAddr::from(([127, 0, 0, 2], 7001)));
        assert_eq!(parsed.numwant, MAX_NUMWANT);
        assert!(!parsed.compact);
        assert_eq!(parsed.left, None);
    }

    #[test]
    fn udp_connection_ids_are_per_address_and_expire() {
        let ids = ConnectionIds::new();
        let a = SocketAddr::from(([127, 0, 0, 1], 4000));
        let b = SocketAddr::from(([127, 0, 0, 2], 4000));
        let t0 = ids.epoch;
        let id = ids.issue(a, t0);
        assert!(ids.valid(id, a, t0));
        assert!(ids.valid(id, SocketAddr::from(([127, 0, 0, 1], 4001)), t0));
        assert!(!ids.valid(id, b, t0));
        assert!(ids.valid(id, a, t0 + Duration::from_secs(119)));
        assert!(!ids.valid(id, a, t0 + Duration::from_secs(120)));
        assert_ne!(
            ConnectionIds::new().issue(a, t0),
            id,
            "the secret is per server"
        );
    }

    fn udp_exchange(socket: &UdpSocket, request: &Request) -> udp::Response {
        socket.send(&request.encode()).unwrap();
        let mut buf = [0u8; 2048];
        let n = socket.recv(&mut buf).unwrap();
        udp::Response::decode(&buf[..n], socket.local_addr().unwrap().is_ipv6()).unwrap()
    }

    fn udp_socket(server: &TrackerServer) -> UdpSocket {
        let local: SocketAddr = if server.addr().is_ipv6() {
            "[::1]:0".parse().unwrap()
        } else {
            "127.0.0.1:0".parse().unwrap()
        };
        let socket = UdpSocket::bind(local).unwrap();
        socket.connect(server.addr()).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket
    }

    fn udp_request(n: u16, port: u16) -> AnnounceRequest {
        AnnounceRequest {
            info_hash: HASH,
            peer_id: peer_id(n),
            port,
            uploaded: 0,
            downloaded: 0,
            left: 10,
            event: Some(AnnounceEvent::Started),
            numwant: 50,
        }
    }

    #[test]
    fn udp_announce_needs_a_valid_connection_id() {
        let server = start(config()).unwrap();
        let socket = udp_socket(&server);
        let refused = udp_exchange(
            &socket,
            &Request::Announce {
                connection_id: 12345,
                transaction_id: 7,
                request: udp_request(1, 7001),
                key: 1,
            },
        );
        assert_eq!(
            refused,
            udp::Response::Error {
                transaction_id: 7,
                message: "invalid or expired connection id".to_string()
            }
        );
        let udp::Response::Connect { connection_id, .. } =
            udp_exchange(&socket, &Request::Connect { transaction_id: 8 })
        else {
            panic!("expected a connect reply");
        };
        let reply = udp_exchange(
            &socket,
            &Request::Announce {
                connection_id,
                transaction_id: 9,
                request: udp_request(1, 7001),
                key: 1,
            },
        );
        assert!(
            matches!(
                reply,
                udp::Response::Announce {
                    transaction_id: 9,
                    leechers: 1,
                    ..
                }
            ),
            "{reply:?}"
        );
        // Garbage that names a transaction gets an error; shorter garbage gets nothing.
        socket.send(&[0u8; 16]).unwrap();
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).unwrap();
        assert!(matches!(
            udp::Response::decode(&buf[..n], false),
            Ok(udp::Response::Error { .. })
        ));
        server.stop();
    }

    #[test]
    fn udp_and_http_share_one_swarm_and_scrape_works() {
        let server = start(config()).unwrap();
        announce_ok(server.addr(), &target(&HASH, 1, 7001, "&left=0"));
        let url = server.udp_announce_url();
        assert_eq!(url, format!("udp://{}/announce", server.addr()));
        let mut client = udp::Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let reply = client
            .announce(&url, &udp_request(2, 7002), deadline, &mut || false)
            .unwrap();
        assert_eq!(reply.peers, vec![SocketAddr::from(([127, 0, 0, 1], 7001))]);
        assert_eq!((reply.complete, reply.incomplete), (Some(1), Some(1)));
        let unknown = [3u8; 20];
        let counts = client
            .scrape(&url, &[unknown, HASH], deadline, &mut || false)
            .unwrap();
        assert_eq!(counts[0], udp::ScrapeCounts::default());
        assert_eq!((counts[1].seeders, counts[1].leechers), (1, 1));
        // An HTTP announce sees the UDP peer.
        let body = announce_ok(server.addr(), &target(&HASH, 3, 7003, ""));
        assert_eq!(compact_ports(&body), [7001, 7002]);
        server.stop();
    }

    #[test]
    fn udp_over_ipv6_returns_18_byte_peers() {
        let Ok(server) = start(ServerConfig::new("[::1]:0".parse().unwrap())) else {
            // No IPv6 loopback on this machine: nothing to test.
            return;
        };
        announce_ok(server.addr(), &target(&HASH, 1, 7001, ""));
        let url = server.udp_announce_url();
        assert!(url.starts_with("udp://[::1]:"), "{url}");
        let reply = udp::Client::new()
            .announce(
                &url,
                &udp_request(2, 7002),
                Instant::now() + Duration::from_secs(10),
                &mut || false,
            )
            .unwrap();
        assert_eq!(
            reply.peers,
            vec!["[::1]:7001".parse::<SocketAddr>().unwrap()]
        );
        server.stop();
    }
}
