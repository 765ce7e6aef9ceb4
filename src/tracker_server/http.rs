//! The tracker's HTTP side: the `tracker accept` thread, and one short-lived `tracker http`
//! thread per connection.
//!
//! The accept thread owns the listening socket and the table of open connections
//! ([`super::conns`]); it blocks in `accept`. Each new connection gets its own thread with a
//! small stack ([`CONNECTION_STACK`]), so a slow client holds only its own thread, never a
//! handler that others wait for. Threads are capped by the table: at most
//! [`MAX_CONNECTIONS_PER_SOURCE`] per source address and [`MAX_CONNECTIONS`] in all, and a
//! new connection over a cap takes the place of the oldest idle one (still sending its
//! head), which the accept thread closes with `shutdown`. When file descriptors or threads
//! run out, the accept thread says so once at warn level, sheds or refuses, and keeps
//! serving the connections it has.
//!
//! A connection thread owns its connection: it reads the request head (at most
//! [`MAX_REQUEST_HEAD`] bytes within [`REQUEST_TIMEOUT`] in all, however the bytes trickle
//! in), tells the accept thread it is answering (so it is no longer shed), parses the head
//! ([`super::parse`]), asks the swarm thread, writes the reply ([`super::reply`]), closes,
//! and tells the accept thread it is gone. Those two messages ([`ConnEvent`]) are the only
//! ones the connection threads send it; each connection sends at most two, so their channel
//! holds at most twice the connections open when the accept thread last drained it.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::conns::{Admission, Conns};
pub use super::conns::{MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE};
use super::parse::{head_end, parse_request, HttpRequest};
use super::reply::{announce_body, scrape_body, Response};
use super::swarm::{ask, Announce, Query};
use super::{stopped, FrontEnd};
use crate::net::is_timeout;

/// Largest request line plus headers read, in bytes; a longer head gets `400`.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Longest a client may take to send its whole request head, and to take our reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Stack reserved for each connection thread (it parses one head and bencodes one reply).
pub const CONNECTION_STACK: usize = 64 * 1024;
/// Connections the kernel queues for `accept` (std's default is 128; Linux caps this at
/// `net.core.somaxconn`).
pub const LISTEN_BACKLOG: i32 = 1024;
/// Pause after a failed `accept` that freed nothing, so the thread does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Pause after shedding a connection for want of descriptors, for its thread to close it.
const SHED_PAUSE: Duration = Duration::from_millis(5);
/// Longest a stopping accept thread waits for its connection threads to end.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Starts the accept thread on `listener`. It ends, after closing every connection and
/// waiting for their threads, when `stop`'s sender is dropped and a connection wakes it (see
/// `TrackerServer::stop`).
pub(super) fn spawn(listener: TcpListener, front: FrontEnd) -> io::Result<JoinHandle<()>> {
    // Listening again on a listening socket only changes its backlog.
    // SAFETY: `listen` on a descriptor we own; it reads no memory of ours.
    if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
        log::debug!(
            "tracker: cannot raise the listen backlog: {}",
            io::Error::last_os_error()
        );
    }
    let (events, events_rx) = crossbeam_channel::unbounded();
    let acceptor = Acceptor {
        conns: Conns::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE),
        events,
        events_rx,
        front,
        warned_fds: false,
        warned_threads: false,
    };
    std::thread::Builder::new()
        .name("tracker accept".into())
        .spawn(move || acceptor.run(listener))
}

/// What a connection thread tells the accept thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnEvent {
    /// Connection `id` sent its whole head and is being answered.
    Answering(u64),
    /// Connection `id` is closed and its thread ending.
    Closed(u64),
}

/// The accept thread's state.
struct Acceptor {
    /// Each open connection's socket, shared with its thread only so that `shutdown` can
    /// end a stalled read; the thread alone reads and writes it.
    conns: Conns<Arc<TcpStream>>,
    /// Cloned into each connection thread; the accept thread drops its own at stop.
    events: Sender<ConnEvent>,
    events_rx: Receiver<ConnEvent>,
    front: FrontEnd,
    warned_fds: bool,
    warned_threads: bool,
}

impl Acceptor {
    fn run(mut self, listener: TcpListener) {
        for conn in listener.incoming() {
            if stopped(&self.front.stop) {
                break;
            }
            self.drain_events();
            match conn.and_then(|stream| Ok((stream.peer_addr()?, stream))) {
                Ok((from, stream)) => self.admit(stream, from),
                Err(error) => self.accept_failed(&error),
            }
        }
        self.close_all();
    }

    fn drain_events(&mut self) {
        for event in self.events_rx.try_iter() {
            match event {
                ConnEvent::Answering(id) => self.conns.answering(id),
                ConnEvent::Closed(id) => {
                    self.conns.remove(id);
                }
            }
        }
    }

    /// Gives `stream` a thread, closing a stalled connection first if a cap says so.
    fn admit(&mut self, stream: TcpStream, from: SocketAddr) {
        match self.conns.admit(from.ip()) {
            (Admission::Refuse, _) => {
                log::debug!("tracker: {from}: every connection in the way is being answered");
                return;
            }
            (Admission::Shed(_), Some(victim)) => {
                log::debug!("tracker: closing a stalled connection to make room for {from}");
                let _ = victim.shutdown(std::net::Shutdown::Both);
            }
            (_, _) => {}
        }
        let stream = Arc::new(stream);
        let id = self
            .conns
            .insert(from.ip(), Instant::now(), Arc::clone(&stream));
        let connection = Connection {
            id,
            stream,
            from,
            queries: self.front.queries.clone(),
            events: self.events.clone(),
            interval: self.front.interval,
        };
        let spawned = std::thread::Builder::new()
            .name("tracker http".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || connection.serve());
        if let Err(error) = spawned {
            self.conns.remove(id);
            if !self.warned_threads {
                self.warned_threads = true;
                log::warn!(
                    "tracker: cannot start a thread ({error}) with {} connections open; \
                     refusing new ones until threads are free",
                    self.conns.len()
                );
            }
        }
    }

    /// After a failed `accept`: out of descriptors, close the oldest idle connection to
    /// free one; otherwise pause.
    fn accept_failed(&mut self, error: &io::Error) {
        let out_of_fds = matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
        if !out_of_fds {
            log::debug!("tracker: accept failed: {error}");
            std::thread::sleep(ACCEPT_BACKOFF);
            return;
        }
        if !self.warned_fds {
            self.warned_fds = true;
            log::warn!(
                "tracker: out of file descriptors ({error}) with {} connections open; \
                 closing stalled ones to keep serving (raise `ulimit -n`)",
                self.conns.len()
            );
        }
        match self.conns.oldest_idle(None) {
            Some(id) => {
                if let Some(victim) = self.conns.remove(id) {
                    let _ = victim.shutdown(std::net::Shutdown::Both);
                }
                // Its descriptor is freed when its thread, woken by the shutdown, ends.
                std::thread::sleep(SHED_PAUSE);
            }
            None => std::thread::sleep(ACCEPT_BACKOFF),
        }
    }

    /// At stop: closes every connection and waits (bounded) for their threads to end.
    fn close_all(mut self) {
        for stream in self.conns.drain() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        drop(self.events);
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events_rx.recv_timeout(left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    log::warn!("tracker: connection threads still running at stop, leaving them");
                    return;
                }
            }
        }
    }
}

/// Why a connection thread gave up on its connection.
#[derive(Debug)]
enum ServeError {
    /// The client closed, went silent past [`REQUEST_TIMEOUT`], or the connection was shed:
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

/// One connection thread's state.
struct Connection {
    id: u64,
    stream: Arc<TcpStream>,
    from: SocketAddr,
    queries: Sender<Query>,
    events: Sender<ConnEvent>,
    interval: Duration,
}

impl Connection {
    /// Serves the one request, closes, and says so.
    fn serve(self) {
        if let Err(error) = self.exchange() {
            log::debug!("tracker: {}: {error}", self.from);
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        // The accept thread may have stopped; nothing to tell then.
        let _ = self.events.send(ConnEvent::Closed(self.id));
    }

    fn exchange(&self) -> Result<(), ServeError> {
        let mut stream = &*self.stream;
        stream
            .set_write_timeout(Some(REQUEST_TIMEOUT))
            .map_err(ServeError::Io)?;
        let response = match read_head(stream) {
            Ok(head) => {
                let _ = self.events.send(ConnEvent::Answering(self.id));
                self.respond(&head)
            }
            Err(ServeError::Bad) => Response::status(400),
            Err(error) => return Err(error),
        };
        stream
            .write_all(&response.to_bytes())
            .and_then(|()| stream.flush())
            .map_err(ServeError::Io)
    }

    /// The reply to the request head `head` from `from`.
    fn respond(&self, head: &[u8]) -> Response {
        match parse_request(head, self.from) {
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

/// Reads up to the blank line ending the headers, within [`REQUEST_TIMEOUT`] in total: each
/// read waits only for what is left of it, so bytes trickled in one by one buy no time.
fn read_head(mut stream: &TcpStream) -> Result<Vec<u8>, ServeError> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ServeError::Abandoned);
        }
        stream
            .set_read_timeout(Some(left))
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
            Err(error) if is_timeout(&error) || error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(ServeError::Io(error)),
        }
    }
}
