//! The listener thread: accepts connections from peers and hands them to the main thread.
//!
//! Runs on its own thread ("listener"), blocked in `accept`. It owns the listening socket and
//! decides nothing: every accepted socket goes to the main thread as [`Event::Accepted`], and
//! the main thread either starts a peer thread for it or closes it (too many peers).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use log::debug;

use crate::messages::Event;

/// How many ports after the requested one we try when it is taken.
pub const PORT_FALLBACKS: u16 = 10;

/// A running listener; [`Listener::stop`] ends its thread.
#[derive(Debug)]
pub struct Listener {
    addr: SocketAddr,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Listens on `addr`, or on the next free port after it (up to [`PORT_FALLBACKS`] more),
    /// and starts the accepting thread.
    pub fn start(addr: SocketAddr, events: Sender<Event>) -> std::io::Result<Listener> {
        let socket = bind_with_fallback(addr)?;
        let local = socket.local_addr()?;
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("listener".into())
            .spawn(move || {
                for conn in socket.incoming() {
                    // `stop` drops the sender, then connects once to wake us up.
                    if stop_rx.try_recv() != Err(crossbeam_channel::TryRecvError::Empty) {
                        return;
                    }
                    match conn.and_then(|s| Ok((s.peer_addr()?, s))) {
                        Ok((addr, stream)) => {
                            if events.send(Event::Accepted { stream, addr }).is_err() {
                                return;
                            }
                        }
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

    #[test]
    fn falls_back_to_the_next_free_port_and_stops() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let (tx, rx) = crossbeam_channel::unbounded();
        let want = SocketAddr::from(([127, 0, 0, 1], port));
        let Ok(listener) = Listener::start(want, tx) else {
            // The next ports may be taken by something else on this machine; nothing to test.
            return;
        };
        assert_ne!(listener.addr().port(), port);
        let _client = TcpStream::connect(listener.addr()).unwrap();
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Event::Accepted { .. }) => {}
            other => panic!("expected an accepted connection, got {other:?}"),
        }
        listener.stop();
    }
}
