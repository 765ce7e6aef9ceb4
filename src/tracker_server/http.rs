//! The tracker's HTTP side: the `tracker accept` thread and the `tracker http N` handler pool.
//!
//! The accept thread owns the listening socket and blocks in `accept`. It hands each
//! connection to the pool over a bounded channel and closes connections that do not fit in
//! the queue, so a flood of connections cannot create threads or unbounded queues. Each of
//! the [`HANDLERS`] threads owns one connection at a time: it reads the request head (at most
//! [`MAX_REQUEST_HEAD`] bytes within [`REQUEST_TIMEOUT`]), parses it ([`super::parse`]), asks
//! the swarm thread, writes the reply ([`super::reply`]) and closes.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::parse::{head_end, parse_request, HttpRequest};
use super::reply::{announce_body, scrape_body, Response};
use super::swarm::{ask, Announce, Query};
use super::{stopped, POLL};

/// Number of connection handler threads.
pub const HANDLERS: usize = 4;
/// Connections waiting for a handler beyond this many are closed at once.
pub const QUEUE: usize = 64;
/// Largest request line plus headers read, in bytes; a longer head gets `400`.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Longest a client may take to send its request head, and to take our reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Starts the accept thread and the handler pool on `listener`; returns the accept thread
/// and the handlers. They end when `stop`'s sender is dropped (see `TrackerServer::stop`).
pub(crate) fn spawn(
    listener: TcpListener,
    queries: Sender<Query>,
    stop: Receiver<()>,
    interval: Duration,
) -> io::Result<(JoinHandle<()>, Vec<JoinHandle<()>>)> {
    let (conn_tx, conn_rx) = crossbeam_channel::bounded::<(TcpStream, SocketAddr)>(QUEUE);
    let mut handlers = Vec::with_capacity(HANDLERS);
    for n in 0..HANDLERS {
        let handler = Handler {
            queries: queries.clone(),
            stop: stop.clone(),
            interval,
        };
        let conns = conn_rx.clone();
        handlers.push(
            std::thread::Builder::new()
                .name(format!("tracker http {n}"))
                .spawn(move || handler.run(conns))?,
        );
    }
    let accept = std::thread::Builder::new()
        .name("tracker accept".into())
        .spawn(move || run_accept(listener, conn_tx, stop))?;
    Ok((accept, handlers))
}

/// Pause after a failed `accept` (e.g. out of file descriptors) so the thread does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

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
