//! The metadata phase of a magnet download against scripted test peers on 127.0.0.1: each
//! peer speaks the handshake, the extension handshake and `ut_metadata` (written by hand here,
//! sharing no code with the crate's codecs) and serves a given info dict, honestly or not.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{handshake_bytes_with, payload, sha1, TestTracker, B};
use strand::metadata::{fetch, FetchRequest, MetadataError};
use strand::metainfo::Metainfo;

/// The id our test peers give `ut_metadata` in their `m`: not 1, to show the fetcher uses the
/// peer's id and not its own.
const PEER_UT_METADATA: i64 = 3;
/// Longest a test peer waits for a byte.
const PEER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest any one fetch in these tests may run.
const FETCH_LIMIT: Duration = Duration::from_secs(30);

/// How a test peer behaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Serve {
    /// Serves the info dict as it is.
    Honest,
    /// Serves the info dict with one byte of every piece flipped.
    Corrupt,
    /// Leaves `ut_metadata` out of its extension handshake.
    NoUtMetadata,
    /// Announces this `metadata_size` instead of the real one.
    Claims(u64),
    /// Answers the first request with a piece it was not asked for.
    Unsolicited,
    /// Sends its extension handshake only after this many milliseconds.
    Late(u64),
}

/// A scripted peer on 127.0.0.1 serving one info dict; stops when dropped.
struct MetaPeer {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetaPeer {
    fn start(info: &[u8], serve: Serve) -> MetaPeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (info, requests, stop) = (info.to_vec(), requests.clone(), stop.clone());
            thread::spawn(move || {
                let info_hash = sha1(&info);
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let (info, requests) = (info.clone(), requests.clone());
                            thread::spawn(move || {
                                let _ = serve_peer(s, &info, &info_hash, serve, &requests);
                            });
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        MetaPeer {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// `ut_metadata` requests received so far, over all connections.
    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for MetaPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn frame(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = (1 + payload.len() as u32).to_be_bytes().to_vec();
    out.push(id);
    out.extend_from_slice(payload);
    out
}

fn extended(ext_id: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![ext_id];
    body.extend_from_slice(payload);
    frame(20, &body)
}

/// Reads one frame: (id, payload); keep-alives come back as id 255 with no payload.
fn read_frame(s: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 {
        return Ok((255, Vec::new()));
    }
    if len > 1 << 20 {
        return Err(io::Error::other("frame too long"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok((body[0], body[1..].to_vec()))
}

/// The integer after `key` in a bencoded dict (`<key>i<digits>e`), found by search.
fn int_after(payload: &[u8], key: &str) -> Option<i64> {
    let needle = format!("{}:{key}i", key.len());
    let at = payload
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())?;
    let digits = &payload[at + needle.len()..];
    let end = digits.iter().position(|&b| b == b'e')?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

fn serve_peer(
    mut s: TcpStream,
    info: &[u8],
    info_hash: &[u8; 20],
    serve: Serve,
    requests: &AtomicU64,
) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(PEER_READ_TIMEOUT))?;
    let mut hs = [0u8; 68];
    s.read_exact(&mut hs)?;
    if &hs[28..48] != info_hash || (hs[25] & 0x10) == 0 {
        return s.shutdown(Shutdown::Both);
    }
    let ours = handshake_bytes_with(
        info_hash,
        b"-MP0001-metapeer0000",
        [0, 0, 0, 0, 0, 0x10, 0, 0],
    );
    s.write_all(&ours)?;
    // Messages the fetcher must skip on its way to the extension handshake.
    s.write_all(&frame(1, &[]))?;
    s.write_all(&frame(5, &[0xff]))?;
    if let Serve::Late(ms) = serve {
        thread::sleep(Duration::from_millis(ms));
    }
    let m = if serve == Serve::NoUtMetadata {
        B::dict(vec![("ut_holepunch", B::Int(4))])
    } else {
        B::dict(vec![("ut_metadata", B::Int(PEER_UT_METADATA))])
    };
    let size = match serve {
        Serve::Claims(n) => n as i64,
        _ => info.len() as i64,
    };
    let handshake = B::dict(vec![
        ("m", m),
        ("metadata_size", B::Int(size)),
        ("v", B::str("metapeer")),
    ]);
    s.write_all(&extended(0, &handshake.encode()))?;
    let mut their_ut_metadata = None;
    loop {
        let (id, body) = read_frame(&mut s)?;
        if id != 20 || body.is_empty() {
            continue;
        }
        let (ext, payload) = (body[0], &body[1..]);
        if ext == 0 {
            their_ut_metadata = int_after(payload, "ut_metadata").map(|n| n as u8);
            continue;
        }
        if i64::from(ext) != PEER_UT_METADATA || int_after(payload, "msg_type") != Some(0) {
            continue;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let reply_id = their_ut_metadata.ok_or_else(|| io::Error::other("no ut_metadata id"))?;
        let mut piece = int_after(payload, "piece").unwrap_or(0) as usize;
        if serve == Serve::Unsolicited {
            piece += 1;
        }
        let start = (piece * 16384).min(info.len());
        let mut data = info[start..(start + 16384).min(info.len())].to_vec();
        if serve == Serve::Corrupt && !data.is_empty() {
            data[0] ^= 0x55;
        }
        let mut reply = B::dict(vec![
            ("msg_type", B::Int(1)),
            ("piece", B::Int(piece as i64)),
            ("total_size", B::Int(info.len() as i64)),
        ])
        .encode();
        reply.extend_from_slice(&data);
        s.write_all(&extended(reply_id, &reply))?;
    }
}

/// A bencoded single-file info dict for a torrent of `pieces` pieces of 256 KiB.
fn info_dict(pieces: usize, name: &str) -> Vec<u8> {
    B::dict(vec![
        ("length", B::Int(pieces as i64 * 262_144)),
        ("name", B::str(name)),
        ("piece length", B::Int(262_144)),
        ("pieces", B::Bytes(payload(20 * pieces, pieces as u64))),
    ])
    .encode()
}

fn request(info: &[u8], peers: Vec<SocketAddr>, timeout: Duration) -> FetchRequest {
    FetchRequest {
        info_hash: sha1(info),
        our_id: *b"-ST0001-magnettest00",
        trackers: Vec::new(),
        peers,
        listen_port: 6881,
        local: None,
        encryption: strand::peer::mse::Encryption::Prefer,
        max_peers: 20,
        tracker_timeout: Duration::from_secs(5),
        timeout,
        dht: None,
    }
}

/// Runs `fetch` in a thread, bounded by [`FETCH_LIMIT`]; returns its result, the most peers
/// the progress callback reported, and how long it took.
fn run_fetch(req: FetchRequest) -> (Result<Vec<u8>, MetadataError>, usize, Duration) {
    common::with_timeout(FETCH_LIMIT, move || {
        let mut most = 0;
        let started = Instant::now();
        let result = fetch(req, &mut |n| most = most.max(n));
        (result, most, started.elapsed())
    })
    .unwrap()
}

#[test]
fn fetches_a_1000_piece_torrents_info_from_one_honest_peer() {
    let info = info_dict(1000, "thousand.bin");
    assert!(info.len() > 16384, "at least two metadata pieces");
    let honest = MetaPeer::start(&info, Serve::Honest);
    let (result, most, took) = run_fetch(request(&info, vec![honest.addr], FETCH_LIMIT));
    let got = result.unwrap();
    assert_eq!(got, info);
    assert_eq!(most, 1, "progress saw the one peer with metadata");
    assert_eq!(honest.requests(), 2);
    let meta = Metainfo::from_info_bytes(&got, Vec::new()).unwrap();
    assert_eq!(meta.piece_hashes.len(), 1000);
    eprintln!(
        "fetch of a {}-byte info dict (1,000 pieces) on loopback: {:.1} ms",
        info.len(),
        took.as_secs_f64() * 1000.0
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn fetches_a_large_info_dict_from_three_peers() {
    let info = info_dict(100_000, "hundred-thousand.bin");
    let peers: Vec<MetaPeer> = (0..3)
        .map(|_| MetaPeer::start(&info, Serve::Honest))
        .collect();
    let addrs = peers.iter().map(|p| p.addr).collect();
    let (result, most, took) = run_fetch(request(&info, addrs, FETCH_LIMIT));
    assert_eq!(result.unwrap(), info);
    assert!(most >= 1);
    let asked: Vec<u64> = peers.iter().map(MetaPeer::requests).collect();
    assert_eq!(asked.iter().sum::<u64>(), info.len().div_ceil(16384) as u64);
    eprintln!(
        "fetch of a {}-byte info dict (100,000 pieces) from 3 peers on loopback: {:.1} ms, \
         requests per peer {asked:?}",
        info.len(),
        took.as_secs_f64() * 1000.0
    );
}

#[test]
fn a_liar_is_outvoted_by_the_hash() {
    let info = info_dict(4000, "liar.bin");
    let liar = MetaPeer::start(&info, Serve::Corrupt);
    let honest = MetaPeer::start(&info, Serve::Late(300));
    let (result, _, _) = run_fetch(request(&info, vec![liar.addr, honest.addr], FETCH_LIMIT));
    assert_eq!(result.unwrap(), info);
    assert!(
        liar.requests() > 0,
        "the liar was asked first and served bad data"
    );
    assert!(honest.requests() > 0);
}

#[test]
fn a_lone_liar_is_struck_and_the_fetch_fails() {
    let info = info_dict(1000, "liar.bin");
    let liar = MetaPeer::start(&info, Serve::Corrupt);
    let (result, _, _) = run_fetch(request(&info, vec![liar.addr], FETCH_LIMIT));
    let err = result.unwrap_err();
    assert!(matches!(err, MetadataError::PeersExhausted(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "{}: sent metadata that does not match the info hash",
            liar.addr
        )),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

#[test]
fn a_peer_claiming_too_much_metadata_is_refused() {
    let info = info_dict(1000, "big.bin");
    let greedy = MetaPeer::start(&info, Serve::Claims(33 * 1024 * 1024));
    let (result, _, _) = run_fetch(request(&info, vec![greedy.addr], FETCH_LIMIT));
    let text = result.unwrap_err().to_string();
    assert!(
        text.contains("metadata_size 34603008 is over the"),
        "{text}"
    );
    assert_eq!(greedy.requests(), 0);

    let greedy = MetaPeer::start(&info, Serve::Claims(1 << 40));
    let honest = MetaPeer::start(&info, Serve::Honest);
    let (result, _, _) = run_fetch(request(&info, vec![greedy.addr, honest.addr], FETCH_LIMIT));
    assert_eq!(result.unwrap(), info);
    assert_eq!(greedy.requests(), 0);
}

#[test]
fn a_peer_without_ut_metadata_is_ignored() {
    let info = info_dict(1000, "plain.bin");
    let plain = MetaPeer::start(&info, Serve::NoUtMetadata);
    let honest = MetaPeer::start(&info, Serve::Honest);
    let (result, most, _) = run_fetch(request(&info, vec![plain.addr, honest.addr], FETCH_LIMIT));
    assert_eq!(result.unwrap(), info);
    assert_eq!(most, 1, "only the honest peer offers metadata");
    assert_eq!(plain.requests(), 0);

    let (result, _, _) = run_fetch(request(&info, vec![plain.addr], FETCH_LIMIT));
    let text = result.unwrap_err().to_string();
    assert!(text.contains("does not offer ut_metadata"), "{text}");
}

#[test]
fn a_piece_nobody_asked_for_ends_the_connection() {
    let info = info_dict(1000, "pushy.bin");
    let pushy = MetaPeer::start(&info, Serve::Unsolicited);
    let (result, _, _) = run_fetch(request(&info, vec![pushy.addr], FETCH_LIMIT));
    let text = result.unwrap_err().to_string();
    assert!(text.contains("nobody asked for"), "{text}");
}

#[test]
fn a_tracker_supplies_the_peer() {
    let info = info_dict(1000, "tracked.bin");
    let honest = MetaPeer::start(&info, Serve::Honest);
    let tracker = TestTracker::start(vec![honest.addr]);
    let mut req = request(&info, Vec::new(), FETCH_LIMIT);
    req.trackers = vec![vec![tracker.announce_url()]];
    let (result, _, _) = run_fetch(req);
    assert_eq!(result.unwrap(), info);
    assert!(tracker.requests() >= 1);
    assert!(
        common::wait_until(Duration::from_secs(5), || tracker.saw_event("stopped")),
        "the tracker thread was stopped"
    );
}

#[test]
fn no_peers_means_an_error() {
    let info = info_dict(10, "lonely.bin");
    let (result, most, took) = run_fetch(request(&info, Vec::new(), FETCH_LIMIT));
    assert_eq!(result.unwrap_err(), MetadataError::NoSources);
    assert_eq!(most, 0);
    assert!(took < Duration::from_secs(1));

    let tracker = TestTracker::start(Vec::new());
    let mut req = request(&info, Vec::new(), Duration::from_secs(1));
    req.trackers = vec![vec![tracker.announce_url()]];
    let (result, _, took) = run_fetch(req);
    let err = result.unwrap_err();
    assert!(matches!(err, MetadataError::TimedOut { .. }), "{err}");
    assert_eq!(err.to_string(), "no metadata within 1 s: no peer was found");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(8),
        "{took:?}"
    );

    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (result, _, _) = run_fetch(request(&info, vec![closed], FETCH_LIMIT));
    let text = result.unwrap_err().to_string();
    assert!(
        text.starts_with("no peer gave the metadata: 1 peer(s) tried ("),
        "{text}"
    );
    assert!(text.contains("connect failed"), "{text}");
}
