//! Test-only HTTP tracker stand-ins on 127.0.0.1.
//!
//! [`TestServer`] runs one background thread that owns a listener on an ephemeral loopback
//! port, records each request line and answers with a scripted [`Reply`]. The thread ends
//! when the server is dropped or after [`SERVER_LIFETIME`], so nothing waits forever.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

/// Longest a test server keeps accepting connections.
const SERVER_LIFETIME: Duration = Duration::from_secs(60);
/// Longest the server waits for a request's head.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a [`Reply::Silent`] connection is held open.
const SILENT_HOLD: Duration = Duration::from_secs(5);

/// What the test server does with a request.
pub(crate) enum Reply {
    /// `200 OK` with this body.
    Ok(Vec<u8>),
    /// An empty reply with this status code.
    Status(u16),
    /// Accept, read the request and never answer (the connection closes after a while).
    Silent,
}

/// A scripted HTTP server on 127.0.0.1; see the module docs.
pub(crate) struct TestServer {
    port: u16,
    requests: Receiver<String>,
    stop: Arc<AtomicBool>,
}

impl TestServer {
    /// Starts a server that answers each request with `reply(request_line)`.
    pub fn start(reply: impl Fn(&str) -> Reply + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (requests_tx, requests) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        thread::spawn(move || {
            let deadline = Instant::now() + SERVER_LIFETIME;
            while !stop_flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Some(line) = serve_one(stream, &reply) {
                            // The test may have finished and dropped the receiver.
                            let _ = requests_tx.send(line);
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TestServer {
            port,
            requests,
            stop,
        }
    }

    /// The announce URL to give the client.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    /// The next request line received, waiting at most `timeout`; panics if none came.
    pub(crate) fn next_request(&self, timeout: Duration) -> String {
        match self.requests.recv_timeout(timeout) {
            Ok(line) => line,
            Err(error) => panic!("no request reached the test server: {error}"),
        }
    }

    /// The next request line, if one has already arrived.
    pub(crate) fn try_next_request(&self) -> Option<String> {
        self.requests.try_recv().ok()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads one request head, writes the reply and returns the request line.
fn serve_one(mut stream: TcpStream, reply: &impl Fn(&str) -> Reply) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(REQUEST_READ_TIMEOUT)).ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or_default().to_string();
    let response = match reply(&line) {
        Reply::Ok(body) => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(&body);
            r
        }
        Reply::Status(code) => {
            format!("HTTP/1.1 {code} Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .into_bytes()
        }
        Reply::Silent => {
            let until = Instant::now() + SILENT_HOLD;
            // Hold the connection until the client gives up (EOF) or the hold expires.
            stream
                .set_read_timeout(Some(Duration::from_millis(50)))
                .ok()?;
            while Instant::now() < until {
                if let Ok(0) = stream.read(&mut buf) {
                    break;
                }
            }
            return Some(line);
        }
    };
    // The client may hang up early (e.g. when it caps the body); that is its business.
    let _ = stream.write_all(&response);
    Some(line)
}

/// An http URL on 127.0.0.1 where nothing listens (connections are refused).
pub(crate) fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/announce")
}
