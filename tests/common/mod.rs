//! Test swarm kit: deterministic payloads, a hand-written bencode encoder and torrent builder,
//! a tiny HTTP tracker and a scriptable seeder, all on 127.0.0.1.
//!
//! This deliberately shares no code with the crate's own codec (bencode, wire, handshake), so a
//! bug there cannot hide itself by also being in the tests. Every loop and wait is bounded.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

pub mod mse_peer;
pub mod strand_peer;
pub mod web_seed;

pub const BLOCK: u32 = 16 * 1024;
pub const PSTR: &[u8] = b"BitTorrent protocol";

/// How long a seeder connection may sit without receiving a byte before it gives up.
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// Socket read poll interval (lets threads notice the stop flag).
const POLL: Duration = Duration::from_millis(200);
/// Socket write timeout.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------------

/// Deterministic pseudo-random bytes (splitmix64), fast enough for tens of MiB.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

// ---------------------------------------------------------------------------------------------
// Bencode (encoder only; keys sorted by BTreeMap, i.e. by raw bytes)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub enum B {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<B>),
    Dict(BTreeMap<Vec<u8>, B>),
}

impl B {
    pub fn str(s: &str) -> B {
        B::Bytes(s.as_bytes().to_vec())
    }

    pub fn dict(entries: Vec<(&str, B)>) -> B {
        B::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            B::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            B::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            B::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            B::Dict(map) => {
                out.push(b'd');
                for (k, v) in map {
                    B::Bytes(k.clone()).encode_into(out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Torrents
// ---------------------------------------------------------------------------------------------

/// A .torrent built by the kit, with everything the seeders and assertions need.
#[derive(Debug, Clone)]
pub struct TestTorrent {
    /// The bencoded .torrent file.
    pub bytes: Vec<u8>,
    /// SHA-1 of the bencoded info dict.
    pub info_hash: [u8; 20],
    pub piece_len: u32,
    /// All files concatenated, in torrent order.
    pub data: Vec<u8>,
    /// Expected output files, paths relative to the output dir (`name` for a single-file
    /// torrent, `name/dir/file` for a multi-file one), with their contents.
    pub files: Vec<(String, Vec<u8>)>,
    pub name: String,
}

impl TestTorrent {
    pub fn piece_count(&self) -> u32 {
        self.data.len().div_ceil(self.piece_len as usize) as u32
    }

    /// Length of piece `index` (the last one may be short).
    pub fn piece_size(&self, index: u32) -> u32 {
        let start = index as usize * self.piece_len as usize;
        (self.data.len() - start).min(self.piece_len as usize) as u32
    }

    /// Number of 16 KiB blocks in the whole torrent.
    pub fn block_count(&self) -> u64 {
        (0..self.piece_count())
            .map(|p| u64::from(self.piece_size(p).div_ceil(BLOCK)))
            .sum()
    }

    /// The bytes of `piece` from `begin`, `len` long, or None when out of range.
    pub fn block(&self, piece: u32, begin: u32, len: u32) -> Option<&[u8]> {
        if piece >= self.piece_count() {
            return None;
        }
        let size = self.piece_size(piece);
        if len == 0 || u64::from(begin) + u64::from(len) > u64::from(size) {
            return None;
        }
        let start = piece as usize * self.piece_len as usize + begin as usize;
        Some(&self.data[start..start + len as usize])
    }
}

/// Builds a torrent. `files` are `(path, data)` with '/'-separated paths; for a single-file
/// torrent (`multi == false`) there must be exactly one file and its path is ignored: the
/// file is called `name`. `name` is written as given (tests use it for hostile names).
pub fn make_torrent(
    files: &[(&str, &[u8])],
    piece_len: u32,
    name: &str,
    announce: Option<&str>,
    multi: bool,
) -> TestTorrent {
    assert!(piece_len > 0);
    let mut data = Vec::new();
    for (_, d) in files {
        data.extend_from_slice(d);
    }
    let mut pieces = Vec::new();
    for chunk in data.chunks(piece_len as usize) {
        pieces.extend_from_slice(&sha1(chunk));
    }

    let mut info = vec![
        ("name", B::str(name)),
        ("piece length", B::Int(i64::from(piece_len))),
        ("pieces", B::Bytes(pieces)),
    ];
    let out_files: Vec<(String, Vec<u8>)> = if multi {
        let list = files
            .iter()
            .map(|(path, d)| {
                B::dict(vec![
                    ("length", B::Int(d.len() as i64)),
                    ("path", B::List(path.split('/').map(B::str).collect())),
                ])
            })
            .collect();
        info.push(("files", B::List(list)));
        files
            .iter()
            .map(|(path, d)| (format!("{name}/{path}"), d.to_vec()))
            .collect()
    } else {
        assert_eq!(files.len(), 1, "a single-file torrent has one file");
        info.push(("length", B::Int(data.len() as i64)));
        vec![(name.to_string(), data.clone())]
    };
    let info = B::dict(info);
    let info_bytes = info.encode();
    let info_hash = sha1(&info_bytes);

    let mut top = vec![
        ("info", info),
        ("created by", B::str("strand test kit")),
        ("creation date", B::Int(1_700_000_000)),
    ];
    if let Some(url) = announce {
        top.push(("announce", B::str(url)));
    }
    let bytes = B::dict(top).encode();
    TestTorrent {
        bytes,
        info_hash,
        piece_len,
        data,
        files: out_files,
        name: name.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Temp dirs
// ---------------------------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "strand-test-{}-{}-{}-{}",
            std::process::id(),
            n,
            nanos,
            tag
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Every regular file under `root`, as '/'-separated relative paths, sorted.
pub fn list_files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>, depth: usize) {
        assert!(depth < 64, "directory tree too deep");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            let ft = entry.file_type().expect("file type");
            if ft.is_dir() {
                walk(root, &p, out, depth + 1);
            } else {
                let rel = p.strip_prefix(root).unwrap();
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out, 0);
    out.sort();
    out
}

/// The resume file strand keeps beside a download of `t`, relative to the output folder.
pub fn resume_file(t: &TestTorrent) -> String {
    let hex: String = t.info_hash.iter().map(|b| format!("{b:02x}")).collect();
    format!(".strand/{hex}.resume")
}

/// Asserts that every file of `t` is under `out_dir` with identical bytes.
pub fn assert_output_matches(t: &TestTorrent, out_dir: &Path) {
    for (rel, want) in &t.files {
        let p = out_dir.join(rel);
        let got = std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
        assert_eq!(got.len(), want.len(), "length of {rel}");
        if got != *want {
            let first = got.iter().zip(want).position(|(a, b)| a != b).unwrap();
            panic!("{rel} differs from the payload first at byte {first}");
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Bounded socket I/O
// ---------------------------------------------------------------------------------------------

/// Fills `buf` from `s`, which must have a short read timeout. Fails on EOF, on `stop`, or
/// when no byte has arrived for `idle`.
fn read_full(
    s: &mut TcpStream,
    buf: &mut [u8],
    stop: &AtomicBool,
    idle: Duration,
) -> io::Result<()> {
    let mut filled = 0;
    let mut last = Instant::now();
    while filled < buf.len() {
        if stop.load(Ordering::SeqCst) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
        }
        match s.read(&mut buf[filled..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                filled += n;
                last = Instant::now();
            }
            Err(e) if (strand::net::is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted) => {
                if last.elapsed() > idle {
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn frame(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.extend_from_slice(&(1 + payload.len() as u32).to_be_bytes());
    out.push(id);
    out.extend_from_slice(payload);
    out
}

/// A BitTorrent handshake (BEP 3) with no reserved bit set.
pub fn handshake_bytes(info_hash: &[u8; 20], peer_id: &[u8; 20]) -> Vec<u8> {
    handshake_bytes_with(info_hash, peer_id, [0; 8])
}

/// The BEP 6 Fast extension bit: `reserved[7] & 0x04`.
pub const FAST_BIT: u8 = 0x04;

/// A handshake with these reserved bytes.
pub fn handshake_bytes_with(
    info_hash: &[u8; 20],
    peer_id: &[u8; 20],
    reserved: [u8; 8],
) -> Vec<u8> {
    let mut hs = Vec::with_capacity(68);
    hs.push(19);
    hs.extend_from_slice(PSTR);
    hs.extend_from_slice(&reserved);
    hs.extend_from_slice(info_hash);
    hs.extend_from_slice(peer_id);
    hs
}

/// Accepts connections until `stop`, handing each to `handle`; the listener is nonblocking so
/// the loop notices the flag. Connection threads are collected and joined at the end.
fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    handle: impl Fn(TcpStream) + Send + Sync + 'static,
) {
    let handle = Arc::new(handle);
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((s, _)) => {
                let _ = s.set_nonblocking(false);
                if let Ok(c) = s.try_clone() {
                    streams.lock().unwrap().push(c);
                }
                let h = handle.clone();
                workers.push(thread::spawn(move || h(s)));
                workers.retain(|w| !w.is_finished());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(10))
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
    // Unblock every worker, then join them (each notices `stop` within POLL).
    for s in streams.lock().unwrap().iter() {
        let _ = s.shutdown(Shutdown::Both);
    }
    for w in workers {
        let _ = w.join();
    }
}

// ---------------------------------------------------------------------------------------------
// Tracker
// ---------------------------------------------------------------------------------------------

/// A minimal HTTP tracker on 127.0.0.1: every `GET /announce?...` gets `interval` and a
/// compact `peers` list. It records each query string. Stops when dropped.
pub struct TestTracker {
    addr: SocketAddr,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    queries: Arc<Mutex<Vec<String>>>,
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestTracker {
    pub fn start(peers: Vec<SocketAddr>) -> TestTracker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind tracker");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let peers = Arc::new(Mutex::new(peers));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (peers, queries, requests, stop2) = (
                peers.clone(),
                queries.clone(),
                requests.clone(),
                stop.clone(),
            );
            thread::spawn(move || {
                let stop3 = stop2.clone();
                accept_loop(listener, stop2, streams, move |s| {
                    serve_tracker(s, &peers, &queries, &requests, &stop3)
                })
            })
        };
        TestTracker {
            addr,
            peers,
            queries,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn announce_url(&self) -> String {
        format!("http://{}/announce", self.addr)
    }

    pub fn set_peers(&self, peers: Vec<SocketAddr>) {
        *self.peers.lock().unwrap() = peers;
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The raw query strings received so far (after the `?`).
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }

    /// Whether some announce carried `event=<event>`.
    pub fn saw_event(&self, event: &str) -> bool {
        self.queries().iter().any(|q| {
            parse_query(q)
                .iter()
                .any(|(k, v)| k == b"event" && v == event.as_bytes())
        })
    }
}

impl Drop for TestTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Splits and percent-decodes a query string into raw byte pairs.
pub fn parse_query(q: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    fn decode(s: &str) -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                if let Ok(v) = u8::from_str_radix(hex, 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
        out
    }
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), Vec::new()),
        })
        .collect()
}

fn serve_tracker(
    mut s: TcpStream,
    peers: &Mutex<Vec<SocketAddr>>,
    queries: &Mutex<Vec<String>>,
    requests: &AtomicU64,
    stop: &AtomicBool,
) {
    let _ = s.set_read_timeout(Some(POLL));
    let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
    // Read the request head, at most 16 KiB and 10 s.
    let mut head = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > 16 * 1024 || Instant::now() > deadline || stop.load(Ordering::SeqCst) {
            return;
        }
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if strand::net::is_timeout(&e) => {}
            Err(_) => return,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    requests.fetch_add(1, Ordering::SeqCst);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, body) = if method == "GET" && path == "/announce" {
        queries.lock().unwrap().push(query.to_string());
        let mut compact = Vec::new();
        for p in peers.lock().unwrap().iter() {
            if let SocketAddr::V4(v4) = p {
                compact.extend_from_slice(&v4.ip().octets());
                compact.extend_from_slice(&v4.port().to_be_bytes());
            }
        }
        let body = B::dict(vec![
            ("interval", B::Int(1800)),
            ("complete", B::Int(1)),
            ("incomplete", B::Int(0)),
            ("peers", B::Bytes(compact)),
        ])
        .encode();
        ("200 OK", body)
    } else {
        ("404 Not Found", b"not found".to_vec())
    };
    let mut resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    resp.extend_from_slice(&body);
    let _ = s.write_all(&resp);
    let _ = s.flush();
    let _ = s.shutdown(Shutdown::Write);
}

// ---------------------------------------------------------------------------------------------
// Seeder
// ---------------------------------------------------------------------------------------------

/// How a [`TestSeeder`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Serves every request correctly.
    Honest,
    /// Closes the connection once it has served this many blocks (counted over the seeder's
    /// lifetime) and from then on closes every new connection at once.
    DisconnectAfterBlocks(u64),
    /// Closes each connection once it has served this many blocks on it; every new
    /// connection is served again.
    CloseEachAfterBlocks(u64),
    /// Serves blocks of these pieces with a flipped byte, so the pieces fail their hash.
    CorruptPieces(Vec<u32>),
    /// Serves the first block of this piece corrupted the first time only (a transient
    /// fault: the piece fails its hash once, then comes right).
    CorruptOnce(u32),
    /// After handshake, bitfield and unchoke, sends a frame with length 0xFFFF_FFFF and some
    /// bytes, then holds the socket until the peer closes it (or a timeout).
    HugeLengthPrefix,
    /// Serves every request correctly, but waits this long before each block (so that a
    /// download from it lasts long enough to watch what happens to other peers meanwhile).
    Throttled(Duration),
    /// Sends a bitfield one byte longer than the piece count needs, then behaves honestly.
    BitfieldWrongLength,
    /// Sends a bitfield with the spare bits of its last byte set (the torrent's piece count
    /// must not be a multiple of 8), then behaves honestly.
    BitfieldSpareBits,
    /// After a correct bitfield, sends `have` for piece `piece_count` (one past the last),
    /// then behaves honestly.
    HaveOutOfRange,
    /// After the bitfield and while still choking the peer (so it cannot have asked for
    /// anything), sends a `piece` message with the correct bytes of the torrent's last
    /// block, then behaves honestly.
    UnsolicitedPiece,
    /// Answers every request with the right bytes but one byte short.
    WrongLengthBlock,
    /// Answers the handshake with a different info hash, then holds the socket.
    WrongInfoHash,
    /// Answers the handshake with its first 30 bytes only, then closes the connection
    /// (`close`) or holds it without sending anything more.
    TruncatedHandshake { close: bool },
    /// After handshake, bitfield and unchoke, trickles a `piece` frame one byte a second,
    /// never answering requests, until the peer closes the connection (or a timeout).
    Slowloris,
    /// Bitfield, unchoke on `interested`, then reads every request and never answers one.
    Silent,
    /// Speaks BEP 6: sets the Fast bit, sends `have all` and no bitfield, then serves every
    /// request correctly.
    FastHaveAll,
    /// Sets the Fast bit, sends `have all`, then at once (before the peer can have asked for
    /// anything) a `reject` for the first block; then behaves honestly.
    FastRejectUnasked,
    /// Does not set the Fast bit, yet sends `have all` instead of a bitfield; then behaves
    /// honestly.
    HaveAllWithoutBit,
    /// Sets the Fast bit, sends a bitfield and then `have none`; then behaves honestly.
    FastHaveNoneAfterBitfield,
}

impl Behaviour {
    /// Whether the seeder sets the Fast bit in its handshake.
    fn fast(&self) -> bool {
        matches!(
            self,
            Behaviour::FastHaveAll
                | Behaviour::FastRejectUnasked
                | Behaviour::FastHaveNoneAfterBitfield
        )
    }

    /// Whether the seeder sends `have all` in place of its bitfield.
    fn have_all_first(&self) -> bool {
        matches!(
            self,
            Behaviour::FastHaveAll | Behaviour::FastRejectUnasked | Behaviour::HaveAllWithoutBit
        )
    }
}

/// Counters a seeder keeps; all Arc<AtomicU64> so tests can read them while it runs.
#[derive(Debug, Clone, Default)]
pub struct SeederStats {
    /// TCP connections accepted (including those refused at once).
    pub connections: Arc<AtomicU64>,
    /// Handshakes that completed with the right info hash.
    pub handshakes: Arc<AtomicU64>,
    /// Handshakes refused (wrong protocol string or info hash).
    pub bad_handshakes: Arc<AtomicU64>,
    /// `piece` messages sent (counted just before each is written).
    pub blocks_served: Arc<AtomicU64>,
    /// `interested` messages received.
    pub interested: Arc<AtomicU64>,
    /// Requests out of range, of zero or over-128 KiB length, or oversized frames.
    pub bad_requests: Arc<AtomicU64>,
    /// Connections the remote closed (EOF or reset), as opposed to our timeouts or stop.
    pub closed_by_peer: Arc<AtomicU64>,
    /// When each connection was accepted, in order.
    pub accepted_at: Arc<Mutex<Vec<Instant>>>,
    /// When each close counted in `closed_by_peer` was noticed, in order.
    pub closed_at: Arc<Mutex<Vec<Instant>>>,
    /// `request` messages received (well-formed or not).
    pub requests: Arc<AtomicU64>,
    /// Handshakes received with the Fast bit (BEP 6) set.
    pub fast_handshakes: Arc<AtomicU64>,
    /// `bitfield` messages sent.
    pub bitfields_sent: Arc<AtomicU64>,
    /// `have all` messages sent.
    pub have_alls_sent: Arc<AtomicU64>,
    /// `have none` messages received.
    pub have_nones_received: Arc<AtomicU64>,
}

impl SeederStats {
    /// When the first connection was accepted, if any was.
    pub fn first_accepted_at(&self) -> Option<Instant> {
        self.accepted_at.lock().unwrap().first().copied()
    }
    /// When the remote first closed a connection, if it has.
    pub fn first_closed_at(&self) -> Option<Instant> {
        self.closed_at.lock().unwrap().first().copied()
    }
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::SeqCst)
}

/// A seeder on 127.0.0.1 with a thread per connection. Stops when dropped.
pub struct TestSeeder {
    addr: SocketAddr,
    pub stats: SeederStats,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct SeedCtx {
    torrent: TestTorrent,
    behaviour: Behaviour,
    stats: SeederStats,
    stop: Arc<AtomicBool>,
    peer_id: [u8; 20],
    /// Set once a DisconnectAfterBlocks seeder has hit its limit.
    exhausted: AtomicBool,
    /// Set once a CorruptOnce seeder has sent its bad block.
    corrupted: AtomicBool,
}

impl TestSeeder {
    pub fn start(torrent: &TestTorrent, behaviour: Behaviour) -> TestSeeder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind seeder");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = SeederStats::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut peer_id = *b"-TS0001-000000000000";
        peer_id[8..14].copy_from_slice(format!("{:06}", addr.port()).as_bytes());
        let ctx = Arc::new(SeedCtx {
            torrent: torrent.clone(),
            behaviour,
            stats: stats.clone(),
            stop: stop.clone(),
            peer_id,
            exhausted: AtomicBool::new(false),
            corrupted: AtomicBool::new(false),
        });
        let stop2 = stop.clone();
        let streams = Arc::new(Mutex::new(Vec::new()));
        let thread = thread::spawn(move || {
            accept_loop(listener, stop2, streams, move |s| {
                ctx.stats.accepted_at.lock().unwrap().push(Instant::now());
                ctx.stats.connections.fetch_add(1, Ordering::SeqCst);
                serve_peer(s, &ctx)
            })
        });
        TestSeeder {
            addr,
            stats,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn blocks_served(&self) -> u64 {
        get(&self.stats.blocks_served)
    }
    pub fn connections(&self) -> u64 {
        get(&self.stats.connections)
    }
    pub fn handshakes(&self) -> u64 {
        get(&self.stats.handshakes)
    }
    pub fn bad_requests(&self) -> u64 {
        get(&self.stats.bad_requests)
    }
    pub fn closed_by_peer(&self) -> u64 {
        get(&self.stats.closed_by_peer)
    }
    pub fn requests(&self) -> u64 {
        get(&self.stats.requests)
    }
}

impl Drop for TestSeeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn note_close(ctx: &SeedCtx, e: &io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    ) && !ctx.stop.load(Ordering::SeqCst)
    {
        ctx.stats.closed_at.lock().unwrap().push(Instant::now());
        ctx.stats.closed_by_peer.fetch_add(1, Ordering::SeqCst);
    }
}

/// Reads and discards whatever the peer sends until it closes the connection (an `Err`, for
/// [`note_close`]), we are stopped, or [`IDLE_LIMIT`] passes. With `trickle`, writes one byte
/// of it a second meanwhile.
fn hold(s: &mut TcpStream, ctx: &SeedCtx, trickle: Option<&[u8]>) -> io::Result<()> {
    let deadline = Instant::now() + IDLE_LIMIT;
    let mut next_byte = Instant::now();
    let mut sent = 0;
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline && !ctx.stop.load(Ordering::SeqCst) {
        if let Some(bytes) = trickle {
            if sent < bytes.len() && Instant::now() >= next_byte {
                s.write_all(&bytes[sent..sent + 1])?;
                sent += 1;
                next_byte += Duration::from_secs(1);
            }
        }
        match s.read(&mut sink) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(e) if strand::net::is_timeout(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A `piece` message carrying `t`'s bytes of `piece` from `begin`, `len` long.
fn piece_frame(t: &TestTorrent, piece: u32, begin: u32, len: u32) -> Vec<u8> {
    let block = t
        .block(piece, begin, len)
        .expect("a block inside the torrent");
    let mut body = Vec::with_capacity(8 + block.len());
    body.extend_from_slice(&piece.to_be_bytes());
    body.extend_from_slice(&begin.to_be_bytes());
    body.extend_from_slice(block);
    frame(7, &body)
}

fn serve_peer(mut s: TcpStream, ctx: &SeedCtx) {
    if let Err(e) = serve_peer_inner(&mut s, ctx) {
        note_close(ctx, &e);
    }
    let _ = s.shutdown(Shutdown::Both);
}

fn serve_peer_inner(s: &mut TcpStream, ctx: &SeedCtx) -> io::Result<()> {
    if ctx.exhausted.load(Ordering::SeqCst) {
        return Ok(()); // refuse: close at once
    }
    s.set_read_timeout(Some(POLL))?;
    s.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let _ = s.set_nodelay(true);
    let stop = &ctx.stop;
    let t = &ctx.torrent;

    // Handshake: read up to the info hash, answer, then read the peer id.
    let mut hs = [0u8; 48];
    read_full(s, &mut hs, stop, Duration::from_secs(10))?;
    if hs[0] != 19 || &hs[1..20] != PSTR || hs[28..48] != t.info_hash {
        ctx.stats.bad_handshakes.fetch_add(1, Ordering::SeqCst);
        return Ok(());
    }
    if hs[27] & FAST_BIT != 0 {
        ctx.stats.fast_handshakes.fetch_add(1, Ordering::SeqCst);
    }
    match ctx.behaviour {
        Behaviour::WrongInfoHash => {
            let mut wrong = t.info_hash;
            wrong[0] ^= 0xFF;
            s.write_all(&handshake_bytes(&wrong, &ctx.peer_id))?;
            return hold(s, ctx, None);
        }
        Behaviour::TruncatedHandshake { close } => {
            s.write_all(&handshake_bytes(&t.info_hash, &ctx.peer_id)[..30])?;
            s.flush()?;
            return if close { Ok(()) } else { hold(s, ctx, None) };
        }
        _ => {}
    }
    let mut reserved = [0u8; 8];
    if ctx.behaviour.fast() {
        reserved[7] |= FAST_BIT;
    }
    s.write_all(&handshake_bytes_with(&t.info_hash, &ctx.peer_id, reserved))?;
    let mut peer_id = [0u8; 20];
    read_full(s, &mut peer_id, stop, Duration::from_secs(10))?;
    ctx.stats.handshakes.fetch_add(1, Ordering::SeqCst);

    // Bitfield: every piece.
    let n = t.piece_count() as usize;
    let mut bits = vec![0u8; n.div_ceil(8)];
    for i in 0..n {
        bits[i / 8] |= 0x80 >> (i % 8);
    }
    match ctx.behaviour {
        Behaviour::BitfieldWrongLength => bits.push(0),
        Behaviour::BitfieldSpareBits => {
            assert!(
                n % 8 != 0,
                "BitfieldSpareBits needs a piece count not a multiple of 8"
            );
            *bits.last_mut().unwrap() |= (1u8 << (8 - n % 8)) - 1;
        }
        _ => {}
    }
    if ctx.behaviour.have_all_first() {
        s.write_all(&frame(0x0E, &[]))?;
        ctx.stats.have_alls_sent.fetch_add(1, Ordering::SeqCst);
    } else {
        s.write_all(&frame(5, &bits))?;
        ctx.stats.bitfields_sent.fetch_add(1, Ordering::SeqCst);
    }
    match ctx.behaviour {
        Behaviour::FastRejectUnasked => {
            let mut block = [0u8; 12];
            block[8..].copy_from_slice(&BLOCK.min(t.piece_size(0)).to_be_bytes());
            s.write_all(&frame(0x10, &block))?;
        }
        Behaviour::FastHaveNoneAfterBitfield => s.write_all(&frame(0x0F, &[]))?,
        _ => {}
    }
    match ctx.behaviour {
        Behaviour::HaveOutOfRange => s.write_all(&frame(4, &(n as u32).to_be_bytes()))?,
        Behaviour::UnsolicitedPiece => {
            let last = t.piece_count() - 1;
            let size = t.piece_size(last);
            let begin = (size - 1) / BLOCK * BLOCK;
            s.write_all(&piece_frame(t, last, begin, size - begin))?;
        }
        Behaviour::Slowloris => {
            s.write_all(&frame(1, &[]))?;
            let trickle = piece_frame(t, 0, 0, BLOCK.min(t.piece_size(0)));
            return hold(s, ctx, Some(&trickle));
        }
        _ => {}
    }

    if ctx.behaviour == Behaviour::HugeLengthPrefix {
        s.write_all(&frame(1, &[]))?;
        let mut evil = Vec::new();
        evil.extend_from_slice(&u32::MAX.to_be_bytes());
        evil.push(7);
        evil.extend_from_slice(&payload(4096, 7));
        s.write_all(&evil)?;
        s.flush()?;
        // Hold the socket until the peer closes it, we are stopped, or 60 s pass.
        let deadline = Instant::now() + IDLE_LIMIT;
        let mut sink = [0u8; 4096];
        while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
            match s.read(&mut sink) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if strand::net::is_timeout(&e) => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(());
    }

    let mut unchoked = false;
    let mut served_here = 0;
    loop {
        let mut len = [0u8; 4];
        read_full(s, &mut len, stop, IDLE_LIMIT)?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            continue; // keep-alive
        }
        if len > 1 << 20 {
            ctx.stats.bad_requests.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        let mut msg = vec![0u8; len];
        read_full(s, &mut msg, stop, IDLE_LIMIT)?;
        match msg[0] {
            2 => {
                ctx.stats.interested.fetch_add(1, Ordering::SeqCst);
                if !unchoked {
                    s.write_all(&frame(1, &[]))?;
                    unchoked = true;
                }
            }
            6 if msg.len() == 13 => {
                ctx.stats.requests.fetch_add(1, Ordering::SeqCst);
                let index = u32::from_be_bytes(msg[1..5].try_into().unwrap());
                let begin = u32::from_be_bytes(msg[5..9].try_into().unwrap());
                let length = u32::from_be_bytes(msg[9..13].try_into().unwrap());
                let Some(block) = t
                    .block(index, begin, length)
                    .filter(|_| length <= 128 * 1024)
                else {
                    ctx.stats.bad_requests.fetch_add(1, Ordering::SeqCst);
                    return Ok(());
                };
                if !unchoked {
                    // A request while choked is a protocol error; a real seeder would ignore it.
                    ctx.stats.bad_requests.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                match ctx.behaviour {
                    Behaviour::Silent => continue,
                    Behaviour::Throttled(delay) => thread::sleep(delay),
                    _ => {}
                }
                let mut body = Vec::with_capacity(8 + block.len());
                body.extend_from_slice(&index.to_be_bytes());
                body.extend_from_slice(&begin.to_be_bytes());
                body.extend_from_slice(block);
                match &ctx.behaviour {
                    Behaviour::CorruptPieces(bad) if bad.contains(&index) => body[8] ^= 0xFF,
                    Behaviour::CorruptOnce(piece)
                        if *piece == index
                            && begin == 0
                            && !ctx.corrupted.swap(true, Ordering::SeqCst) =>
                    {
                        body[8] ^= 0xFF
                    }
                    Behaviour::WrongLengthBlock => {
                        body.pop();
                    }
                    _ => {}
                }
                // Counted before the write, so a client that has the block sees the count.
                let served = ctx.stats.blocks_served.fetch_add(1, Ordering::SeqCst) + 1;
                s.write_all(&frame(7, &body))?;
                served_here += 1;
                match ctx.behaviour {
                    Behaviour::DisconnectAfterBlocks(limit) if served >= limit => {
                        ctx.exhausted.store(true, Ordering::SeqCst);
                        return Ok(());
                    }
                    Behaviour::CloseEachAfterBlocks(limit) if served_here >= limit => return Ok(()),
                    _ => {}
                }
            }
            6 => {
                ctx.stats.requests.fetch_add(1, Ordering::SeqCst);
                ctx.stats.bad_requests.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            0x0F => {
                ctx.stats.have_nones_received.fetch_add(1, Ordering::SeqCst);
            }
            // choke, unchoke, not interested, have, bitfield, cancel, port, extended, and the
            // other BEP 6 messages: ignored.
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A raw test peer (for the kit's self-test)
// ---------------------------------------------------------------------------------------------

/// A minimal blocking client for poking a seeder by hand; 10 s timeouts on everything.
pub struct RawPeer {
    pub stream: TcpStream,
}

impl RawPeer {
    pub fn connect(addr: SocketAddr) -> io::Result<RawPeer> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(RawPeer { stream })
    }

    /// Sends our handshake and returns the remote's 68 bytes.
    pub fn handshake(&mut self, info_hash: &[u8; 20]) -> io::Result<[u8; 68]> {
        self.handshake_with(info_hash, [0; 8])
    }

    /// [`RawPeer::handshake`] with these reserved bytes (`[0, 0, 0, 0, 0, 0, 0, FAST_BIT]`
    /// speaks BEP 6).
    pub fn handshake_with(
        &mut self,
        info_hash: &[u8; 20],
        reserved: [u8; 8],
    ) -> io::Result<[u8; 68]> {
        self.stream.write_all(&handshake_bytes_with(
            info_hash,
            b"-RAW001-abcdefghijkl",
            reserved,
        ))?;
        let mut hs = [0u8; 68];
        self.stream.read_exact(&mut hs)?;
        Ok(hs)
    }

    pub fn send(&mut self, id: u8, payload: &[u8]) -> io::Result<()> {
        self.stream.write_all(&frame(id, payload))
    }

    pub fn request(&mut self, index: u32, begin: u32, len: u32) -> io::Result<()> {
        let mut p = Vec::new();
        p.extend_from_slice(&index.to_be_bytes());
        p.extend_from_slice(&begin.to_be_bytes());
        p.extend_from_slice(&len.to_be_bytes());
        self.send(6, &p)
    }

    /// Reads one frame; returns (declared length, id, payload). Payloads over 1 MiB are not
    /// read: the payload is left empty and the declared length tells the caller.
    pub fn recv(&mut self) -> io::Result<(u32, Option<u8>, Vec<u8>)> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len);
        if len == 0 {
            return Ok((0, None, Vec::new()));
        }
        let mut id = [0u8; 1];
        self.stream.read_exact(&mut id)?;
        if len > 1 << 20 {
            return Ok((len, Some(id[0]), Vec::new()));
        }
        let mut body = vec![0u8; len as usize - 1];
        self.stream.read_exact(&mut body)?;
        Ok((len, Some(id[0]), body))
    }

    /// Reads frames until one with `id` arrives (at most 50 frames).
    pub fn recv_id(&mut self, id: u8) -> io::Result<Vec<u8>> {
        for _ in 0..50 {
            let (_, got, body) = self.recv()?;
            if got == Some(id) {
                return Ok(body);
            }
        }
        Err(io::Error::other(format!("no message {id} in 50 frames")))
    }
}

// ---------------------------------------------------------------------------------------------
// Running the library
// ---------------------------------------------------------------------------------------------

pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Parses `torrent.bytes` with `Metainfo::from_bytes` and runs `strand::session::download`
/// into `out_dir` in a thread, waiting at most [`DOWNLOAD_TIMEOUT`]. Panics on timeout (the
/// thread is left behind: a test must fail, not hang). A panic inside the library (e.g. a
/// `todo!()`) comes back as `Err`.
pub fn run_download(
    torrent: &TestTorrent,
    peers: Vec<SocketAddr>,
    out_dir: &Path,
) -> Result<strand::session::Summary, String> {
    run_download_with_timeout(torrent, peers, out_dir, DOWNLOAD_TIMEOUT)
}

pub fn run_download_with_timeout(
    torrent: &TestTorrent,
    peers: Vec<SocketAddr>,
    out_dir: &Path,
    timeout: Duration,
) -> Result<strand::session::Summary, String> {
    run_download_with(torrent, peers, out_dir, timeout, Default::default())
}

/// [`run_download`] with a piece order and rate limits.
pub fn run_download_with_flow(
    torrent: &TestTorrent,
    peers: Vec<SocketAddr>,
    out_dir: &Path,
    flow: strand::session::Flow,
) -> Result<strand::session::Summary, String> {
    run_download_with(torrent, peers, out_dir, DOWNLOAD_TIMEOUT, flow)
}

fn run_download_with(
    torrent: &TestTorrent,
    peers: Vec<SocketAddr>,
    out_dir: &Path,
    timeout: Duration,
    flow: strand::session::Flow,
) -> Result<strand::session::Summary, String> {
    // RUST_LOG=strand=debug shows what the session did when a test fails.
    let _ = env_logger::builder().is_test(true).try_init();
    let bytes = torrent.bytes.clone();
    let opts = strand::session::Options {
        output_dir: out_dir.to_path_buf(),
        peers,
        max_peers: 50,
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        // The kit's seeders speak plaintext only.
        encryption: strand::peer::mse::Encryption::Off,
        verified: None,
        chosen: None,
        preallocate: false,
        seed: strand::session::SeedPolicy::No,
        stop: None,
        tracker_timeout: Duration::from_secs(10),
        dht: None,
        flow,
    };
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let handle = thread::Builder::new()
        .name("test-download".into())
        .spawn(move || {
            let result = match strand::metainfo::Metainfo::from_bytes(&bytes) {
                Err(e) => Err(format!("Metainfo::from_bytes failed: {e:?}")),
                Ok(meta) => {
                    let mut calls = 0u64;
                    strand::session::download(meta, opts, &mut |_p| calls += 1)
                        .map_err(|e| format!("download failed: {e:?}"))
                }
            };
            let _ = tx.send(result);
        })
        .expect("spawn download thread");
    match rx.recv_timeout(timeout) {
        Ok(r) => {
            let _ = handle.join();
            r
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let msg = match handle.join() {
                Err(p) => panic_message(&p),
                Ok(()) => "no result".to_string(),
            };
            Err(format!("download thread panicked: {msg}"))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "download did not finish within {:?} (started {:?} ago)",
            timeout,
            started.elapsed()
        ),
    }
}

pub fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".to_string()
    }
}

/// Runs `f` in a thread and waits at most `limit` for it; panics from `f` come back as Err.
pub fn with_timeout<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            let _ = handle.join();
            Ok(v)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(p) => Err(format!("panicked: {}", panic_message(&p))),
            Ok(()) => Err("no result".into()),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("did not finish within {limit:?}"),
    }
}

/// Waits at most `limit` for `child` to exit; kills it (by its own handle) and panics when it
/// overstays.
pub fn wait_child(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("strand binary did not exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Panics unless a `download` or `seed` command line turns the DHT off (`--no-dht`),
/// names its own bootstrap node, or only asks for help: the binary's default DHT routers are
/// public hosts, which no test may reach.
pub fn assert_no_public_dht<'a>(mut args: impl Iterator<Item = &'a str>) {
    let command = args.next().unwrap_or_default().to_string();
    let rest: Vec<&str> = args.collect();
    let help = rest.iter().any(|a| *a == "--help" || *a == "-h");
    if matches!(command.as_str(), "download" | "seed") && !help {
        assert!(
            rest.iter()
                .any(|a| matches!(*a, "--no-dht" | "--dht-bootstrap" | "--help" | "-h")),
            "a test ran `strand {command}` without --no-dht or a loopback --dht-bootstrap"
        );
    }
}

/// Runs the `strand` binary with `args`, killing it after `limit`. Returns (exit status
/// success, exit code, stdout, stderr).
pub fn run_bin(args: &[&std::ffi::OsStr], limit: Duration) -> (bool, Option<i32>, String, String) {
    use std::process::{Command, Stdio};
    assert_no_public_dht(args.iter().filter_map(|a| a.to_str()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_strand"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "off")
        .env("STRAND_DHT_LOOPBACK_ONLY", "1")
        .spawn()
        .expect("spawn strand binary");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.by_ref().take(1 << 20).read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.by_ref().take(1 << 20).read_to_end(&mut v);
        v
    });
    let status = wait_child(&mut child, limit);
    let out = String::from_utf8_lossy(&out_t.join().unwrap()).into_owned();
    let err = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
    (status.success(), status.code(), out, err)
}
