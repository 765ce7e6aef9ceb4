//! The listener thread: accepts connections from peers, reads each one's handshake on a
//! short-lived gate thread, and hands the peers that handshook to the main thread.
//!
//! Runs on its own thread ("listener"), blocked in `accept`. It owns the listening socket and
//! the count of handshakes in progress per source address; each accepted socket gets a gate
//! thread (`handshake <addr>`) that tells a plaintext handshake from an MSE exchange by its
//! first bytes, runs the exchange if it is one (as `--encryption` allows), and reads the
//! peer's handshake, all within
//! [`INCOMING_HANDSHAKE_TIMEOUT`] and then sends it, with the socket, to the main thread as
//! [`Event::Accepted`] (which starts a peer thread for it or closes it). So a stalled or
//! dripping handshake holds a small thread for a few seconds and never a session slot.
//!
//! Half-open limits: at most [`MAX_HANDSHAKES_PER_IP`] handshakes in progress from one
//! address, and [`MAX_HANDSHAKES`] in all, of which the last [`KEPT_FOR_NEW_ADDRESSES`] go
//! only to addresses with none in progress. A connection over a limit is closed at once.
//! Gate threads report their end on a channel the listener drains before each decision;
//! it holds at most one message per gate thread, so [`MAX_HANDSHAKES`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use log::{debug, warn};

use super::dial;
use super::mse::Encryption;
use crate::messages::Event;

/// How many ports after the requested one we try when it is taken.
pub(crate) const PORT_FALLBACKS: u16 = 10;
/// How long a peer that dialed us may take to send its whole handshake.
pub const INCOMING_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshakes in progress from one source address.
pub const MAX_HANDSHAKES_PER_IP: usize = 8;
/// Handshakes in progress in all (each holds a gate thread).
pub const MAX_HANDSHAKES: usize = 128;
/// The last of [`MAX_HANDSHAKES`], kept for addresses with no handshake in progress.
pub const KEPT_FOR_NEW_ADDRESSES: usize = 32;
/// Stack size of a gate thread: it only reads 68 bytes.
const GATE_STACK_SIZE: usize = 64 * 1024;

/// A running listener; [`Listener::stop`] ends its thread.
#[derive(Debug)]
pub(crate) struct Listener {
    addr: SocketAddr,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Listens on `addr`, or on the next free port after it (up to [`PORT_FALLBACKS`] more),
    /// and starts the accepting thread.
    ///
    /// Incoming connections may be plaintext or MSE as `policy` allows; an MSE one must name
    /// a torrent among `info_hashes`.
    pub fn start(
        addr: SocketAddr,
        events: Sender<Event>,
        policy: Encryption,
        info_hashes: Vec<[u8; 20]>,
    ) -> std::io::Result<Listener> {
        let socket = bind_with_fallback(addr)?;
        let local = socket.local_addr()?;
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("listener".into())
            .spawn(move || {
                let mut gates = Gates::new(events, policy, info_hashes);
                for conn in socket.incoming() {
                    // `stop` drops the sender, then connects once to wake us up.
                    if stop_rx.try_recv() != Err(crossbeam_channel::TryRecvError::Empty) {
                        return;
                    }
                    match conn.and_then(|s| Ok((s.peer_addr()?, s))) {
                        Ok((addr, stream)) => gates.admit(stream, addr),
                        Err(e) => debug!("accept failed: {e}"),
                    }
                }
            })?;
        Ok(Listener {
            addr: local,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The address we actually listen on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Ends the accepting thread and waits for it.
    pub fn stop(mut self) {
        self.stop = None;
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// The listener thread's count of handshakes in progress, and the gate threads behind it.
struct Gates {
    events: Sender<Event>,
    policy: Encryption,
    info_hashes: Arc<[[u8; 20]]>,
    in_progress: HashMap<IpAddr, usize>,
    total: usize,
    ended_tx: Sender<IpAddr>,
    ended: Receiver<IpAddr>,
    /// A failed thread spawn was reported (once per listener).
    warned: bool,
}

impl Gates {
    fn new(events: Sender<Event>, policy: Encryption, info_hashes: Vec<[u8; 20]>) -> Gates {
        let (ended_tx, ended) = crossbeam_channel::unbounded();
        Gates {
            events,
            policy,
            info_hashes: info_hashes.into(),
            in_progress: HashMap::new(),
            total: 0,
            ended_tx,
            ended,
            warned: false,
        }
    }

    /// Starts a gate thread for `stream`, or closes it when a limit is reached.
    fn admit(&mut self, stream: TcpStream, addr: SocketAddr) {
        for ip in self.ended.try_iter() {
            self.total -= 1;
            if let Some(n) = self.in_progress.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.in_progress.remove(&ip);
                }
            }
        }
        let ip = addr.ip();
        let mine = self.in_progress.get(&ip).copied().unwrap_or(0);
        if !may_start(mine, self.total) {
            debug!(
                "{addr}: closed, {mine} handshakes from it and {} in all in progress",
                self.total
            );
            return;
        }
        let events = self.events.clone();
        let ended = self.ended_tx.clone();
        let (policy, info_hashes) = (self.policy, Arc::clone(&self.info_hashes));
        let spawned = std::thread::Builder::new()
            .name(format!("handshake {addr}"))
            .stack_size(GATE_STACK_SIZE)
            .spawn(move || {
                match dial::read_incoming_any(
                    &stream,
                    INCOMING_HANDSHAKE_TIMEOUT,
                    policy,
                    &info_hashes,
                ) {
                    Ok((handshake, ciphers)) => {
                        // The session may be over; then the socket just closes.
                        let _ = events.send(Event::Accepted {
                            stream,
                            addr,
                            handshake,
                            ciphers: Box::new(ciphers),
                        });
                    }
                    Err(e) => debug!("{addr}: {e}"),
                }
                let _ = ended.send(ip);
            });
        match spawned {
            Ok(_) => {
                *self.in_progress.entry(ip).or_insert(0) += 1;
                self.total += 1;
            }
            Err(e) if !self.warned => {
                warn!("cannot start a thread for an incoming connection ({e}); refusing them until threads free up");
                self.warned = true;
            }
            Err(_) => {}
        }
    }
}

/// Whether one more handshake may start from an address with `mine` in progress, with
/// `total` in progress in all.
fn may_start(mine: usize, total: usize) -> bool {
    let cap = if mine == 0 {
        MAX_HANDSHAKES
    } else {
        MAX_HANDSHAKES - KEPT_FOR_NEW_ADDRESSES
    };
    mine < MAX_HANDSHAKES_PER_IP && total < cap
}

fn bind_with_fallback(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut last = None;
    for step in 0..=PORT_FALLBACKS {
        let Some(port) = addr.port().checked_add(step) else {
            break;
        };
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)) {
            Ok(socket) => return Ok(socket),
            Err(e) if addr.port() == 0 => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no port to try")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::handshake::Handshake;
    use std::io::Write;

    #[test]
    fn falls_back_to_the_next_free_port_and_stops() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let (tx, rx) = crossbeam_channel::unbounded();
        let want = SocketAddr::from(([127, 0, 0, 1], port));
        let Ok(listener) = Listener::start(want, tx, Encryption::Prefer, vec![[1; 20]]) else {
            // The next ports may be taken by something else on this machine; nothing to test.
            return;
        };
        assert_ne!(listener.addr().port(), port);
        let mut client = TcpStream::connect(listener.addr()).unwrap();
        let hs = Handshake::new([1; 20], [2; 20]);
        client.write_all(&hs.to_bytes()).unwrap();
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Event::Accepted { handshake, .. }) => assert_eq!(handshake, hs),
            other => panic!("expected an accepted connection, got {other:?}"),
        }
        listener.stop();
    }

    #[test]
    fn one_address_cannot_take_every_handshake_slot() {
        assert!(may_start(0, 0));
        assert!(may_start(MAX_HANDSHAKES_PER_IP - 1, 10));
        assert!(!may_start(MAX_HANDSHAKES_PER_IP, 10), "per address");
        let shared = MAX_HANDSHAKES - KEPT_FOR_NEW_ADDRESSES;
        assert!(!may_start(1, shared), "the rest is kept for new addresses");
        assert!(may_start(0, shared));
        assert!(may_start(0, MAX_HANDSHAKES - 1));
        assert!(!may_start(0, MAX_HANDSHAKES), "in all");
    }

    #[test]
    fn stalled_handshakes_from_one_address_leave_room_for_another() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let listener = Listener::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            tx,
            Encryption::Prefer,
            vec![[1; 20]],
        )
        .unwrap();
        let port = listener.addr().port();
        let to = SocketAddr::from(([127, 0, 0, 1], port));
        // Stalled connections from 127.0.0.1: each sends 4 bytes of a handshake.
        let stalled: Vec<TcpStream> = (0..50)
            .filter_map(|_| {
                let mut s = TcpStream::connect(to).ok()?;
                s.write_all(&[19, b'B', b'i', b't']).ok()?;
                Some(s)
            })
            .collect();
        assert_eq!(stalled.len(), 50);
        let started = std::time::Instant::now();
        let mut other =
            crate::net::tcp_connect(to, Some([127, 0, 0, 2].into()), Duration::from_secs(5))
                .unwrap();
        other
            .write_all(&Handshake::new([1; 20], [3; 20]).to_bytes())
            .unwrap();
        match rx.recv_timeout(Duration::from_secs(2)) {
            Ok(Event::Accepted { addr, .. }) => assert_eq!(addr.ip(), IpAddr::from([127, 0, 0, 2])),
            other => panic!("expected 127.0.0.2's connection, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(stalled);
        listener.stop();
    }
}
