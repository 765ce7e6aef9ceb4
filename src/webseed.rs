//! Web seeds (BEP 19, `url-list`): an HTTP(S) server holding the torrent's files, used as a
//! source like a peer.
//!
//! One thread per web seed ("webseed N"). It speaks to the main thread exactly as a peer
//! connection does: it receives [`Command`]s (`Request`, `Cancel`, `Disconnect`; the rest
//! mean nothing to a server and are ignored) and reports [`PeerEvent`]s (`Connected`, a full
//! `Bitfield`, `Unchoked`, one `Block` per 16 KiB block, `Choked` while it backs off after
//! a failure, `Closed`). So its data goes through the same blocks → hash → blame path as a
//! peer's, a web seed that sends bad data is struck and dropped like a peer, and the rate
//! limits and endgame apply to it unchanged. It owns its HTTP agent (ureq) and its queue of
//! requested blocks; it shares nothing.
//!
//! Contiguous requested blocks are fetched with one `Range` request per file they span.
//! A `404` or `5xx` answer, a timeout or a short body makes the thread report `Choked` (the
//! main thread gives its blocks to others), wait 1, 2, 4, 8, 16 s and try again; after
//! [`MAX_FAILURES`] failures in a row it gives up. Redirects, body size and time are capped.
//! A server that ignores `Range` (`200` with the whole file) is read up to the range when the
//! range starts in the first [`MAX_SKIP`] bytes of the file, and given up on otherwise.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, warn};

use crate::bitfield::Bitfield;
use crate::geometry::{BlockRef, Geometry};
use crate::messages::{Command, Event, PeerEvent, PeerKey};
use crate::metainfo::FileInfo;
use crate::storage::layout::Layout;

/// Failed fetches in a row after which a web seed is given up on.
pub(crate) const MAX_FAILURES: u32 = 6;
/// Longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(16);
/// Most bytes asked for in one go (several requests when it spans files).
const MAX_RANGE: u64 = 4 << 20;
/// A server without `Range` support is read from the file's start only if the range begins
/// within this many bytes.
pub(crate) const MAX_SKIP: u64 = 16 << 20;
/// Redirects followed per request.
const MAX_REDIRECTS: u32 = 5;
/// Time for one whole request, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The address a web seed goes by in the session: `0.0.N.M:0`. No peer can have one
/// (0.0.0.0/8 means "this network" and port 0 is never dialed), so the address book and peer
/// exchange never treat it as dialable, while strikes and smart-ban, which key on addresses,
/// reach a web seed like a peer.
pub(crate) fn identity(n: u16) -> SocketAddr {
    let [hi, lo] = n.to_be_bytes();
    SocketAddr::from((Ipv4Addr::new(0, 0, hi, lo), 0))
}

/// Whether `addr` is a web seed's [`identity`].
pub(crate) fn is_identity(addr: SocketAddr) -> bool {
    match addr {
        SocketAddr::V4(a) => a.port() == 0 && a.ip().octets()[..2] == [0, 0],
        SocketAddr::V6(_) => false,
    }
}

/// The URL of one file of the torrent on a web seed whose URL is `base` (BEP 19): for a
/// single-file torrent `base` itself, or `base` + name when it ends in `/`; for a multi-file
/// torrent `base` + `/` (if missing) + name + `/` + the file's path. Path components are
/// percent-encoded.
pub(crate) fn file_url(base: &str, multi_file: bool, path: &Path) -> String {
    let encoded: Vec<String> = path
        .iter()
        .map(|c| percent_encode(c.to_string_lossy().as_bytes()))
        .collect();
    if !multi_file {
        return if base.ends_with('/') {
            format!("{base}{}", encoded.join("/"))
        } else {
            base.to_string()
        };
    }
    let slash = if base.ends_with('/') { "" } else { "/" };
    format!("{base}{slash}{}", encoded.join("/"))
}

fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a web seed thread needs.
pub(crate) struct WebSeedSetup {
    /// The session's key for this source.
    pub key: PeerKey,
    /// The web seed's URL, as the torrent gives it.
    pub url: String,
    /// The torrent's sizes.
    pub geometry: Geometry,
    /// The torrent's files (pad files are zeros and never fetched).
    pub files: Vec<FileInfo>,
    /// Whether the torrent is multi-file (decides the URL rule).
    pub multi_file: bool,
    /// Where events go.
    pub events: Sender<Event>,
}

/// Starts the thread for one web seed.
pub fn spawn(setup: WebSeedSetup, commands: Receiver<Command>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("webseed {}", setup.key))
        .stack_size(256 * 1024)
        .spawn(move || {
            let reason = run(&setup, &commands);
            debug!("web seed {}: {reason}", setup.url);
            let _ = setup
                .events
                .send(Event::Peer(setup.key, PeerEvent::Closed { reason }));
        })
}

/// Why one fetch failed.
enum Fetch {
    /// Worth trying again later (HTTP 404/5xx, time-out, short body, connection error).
    Retry(String),
    /// Never worth trying again (no Range support on a large file, a URL ureq refuses).
    GiveUp(String),
}

fn run(setup: &WebSeedSetup, commands: &Receiver<Command>) -> String {
    let emit = |e: PeerEvent| setup.events.send(Event::Peer(setup.key, e)).is_ok();
    let all = Bitfield::full(setup.geometry.piece_count());
    let connected = PeerEvent::Connected {
        peer_id: [0; 20],
        extensions: false,
        fast: false,
        link: crate::peer::mse::Link::Plaintext,
    };
    if !(emit(connected) && emit(PeerEvent::Bitfield(all)) && emit(PeerEvent::Unchoked)) {
        return "session gone".into();
    }
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout(REQUEST_TIMEOUT)
        .redirects(MAX_REDIRECTS)
        .build();
    let layout = Layout::new(&setup.files);
    let mut queue: Vec<BlockRef> = Vec::new();
    let mut failures = 0u32;
    loop {
        // Wait for work, then take whatever else is queued so contiguous blocks go together.
        if queue.is_empty() {
            match commands.recv() {
                Ok(cmd) => {
                    if !apply(cmd, &mut queue) {
                        return "disconnected by the session".into();
                    }
                }
                Err(_) => return "session gone".into(),
            }
        }
        while let Ok(cmd) = commands.try_recv() {
            if !apply(cmd, &mut queue) {
                return "disconnected by the session".into();
            }
        }
        let Some(run) = take_run(&mut queue, setup.geometry) else {
            continue;
        };
        match fetch(&agent, setup, &layout, &run) {
            Ok(data) => {
                failures = 0;
                let mut at = 0usize;
                for block in run {
                    let len = block.len as usize;
                    let bytes = data[at..at + len].to_vec();
                    at += len;
                    if !emit(PeerEvent::Block { block, data: bytes }) {
                        return "session gone".into();
                    }
                }
            }
            Err(Fetch::GiveUp(why)) => {
                warn!("web seed {}: {why}; not used any more", setup.url);
                return why;
            }
            Err(Fetch::Retry(why)) => {
                failures += 1;
                if failures >= MAX_FAILURES {
                    warn!(
                        "web seed {}: {why}; given up after {failures} failures in a row",
                        setup.url
                    );
                    return why;
                }
                let wait = Duration::from_secs(1 << (failures - 1)).min(MAX_BACKOFF);
                debug!("web seed {}: {why}; trying again in {wait:?}", setup.url);
                // Our blocks go to other sources meanwhile.
                queue.clear();
                if !emit(PeerEvent::Choked) {
                    return "session gone".into();
                }
                // The whole wait, whatever the session sends meanwhile: requests sent before
                // our choke arrived are void and dropped; only `Disconnect` ends it early.
                let until = Instant::now() + wait;
                loop {
                    let left = until.saturating_duration_since(Instant::now());
                    match commands.recv_timeout(left) {
                        Ok(Command::Disconnect) | Err(RecvTimeoutError::Disconnected) => {
                            return "disconnected by the session".into()
                        }
                        Ok(_) => {}
                        Err(RecvTimeoutError::Timeout) => break,
                    }
                }
                if !emit(PeerEvent::Unchoked) {
                    return "session gone".into();
                }
            }
        }
    }
}

/// Applies one command to the queue; false for `Disconnect`.
fn apply(cmd: Command, queue: &mut Vec<BlockRef>) -> bool {
    match cmd {
        Command::Request(b) if !queue.contains(&b) => queue.push(b),
        Command::Cancel(b) => queue.retain(|q| *q != b),
        Command::Disconnect => return false,
        _ => {}
    }
    true
}

/// Takes the first queued block and every queued block that continues it in the torrent,
/// up to [`MAX_RANGE`] bytes.
fn take_run(queue: &mut Vec<BlockRef>, g: Geometry) -> Option<Vec<BlockRef>> {
    if queue.is_empty() {
        return None;
    }
    let first = queue.remove(0);
    let offset = |b: &BlockRef| g.piece_offset(b.piece) + u64::from(b.offset);
    let mut end = offset(&first) + u64::from(first.len);
    let mut run = vec![first];
    let mut bytes = u64::from(first.len);
    while bytes < MAX_RANGE {
        let Some(i) = queue.iter().position(|b| offset(b) == end) else {
            break;
        };
        let next = queue.remove(i);
        end += u64::from(next.len);
        bytes += u64::from(next.len);
        run.push(next);
    }
    Some(run)
}

/// Fetches the torrent bytes of `run` (contiguous blocks): one range request per file,
/// zeros for padding.
fn fetch(
    agent: &ureq::Agent,
    setup: &WebSeedSetup,
    layout: &Layout,
    run: &[BlockRef],
) -> Result<Vec<u8>, Fetch> {
    let g = setup.geometry;
    let start = g.piece_offset(run[0].piece) + u64::from(run[0].offset);
    let len: u64 = run.iter().map(|b| u64::from(b.len)).sum();
    let mut data = vec![0u8; len as usize];
    for seg in layout.segments(start, len) {
        let file = &setup.files[seg.file];
        if !file.on_disk() {
            continue;
        }
        let url = file_url(&setup.url, setup.multi_file, &file.path);
        let out = &mut data[seg.buf_offset..seg.buf_offset + seg.len as usize];
        get_range(agent, &url, seg.file_offset, out)?;
    }
    Ok(data)
}

/// Fills `out` with the bytes of `url` from `offset` on.
fn get_range(agent: &ureq::Agent, url: &str, offset: u64, out: &mut [u8]) -> Result<(), Fetch> {
    let last = offset + out.len() as u64 - 1;
    let response = match agent
        .get(url)
        .set("Range", &format!("bytes={offset}-{last}"))
        .call()
    {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => return Err(Fetch::Retry(format!("HTTP {code}"))),
        Err(ureq::Error::Transport(t)) => return Err(Fetch::Retry(t.to_string())),
    };
    let mut reader = match response.status() {
        206 => {
            let range = response.header("Content-Range").unwrap_or("");
            let want = format!("bytes {offset}-{last}/");
            if !range.starts_with(&want) {
                return Err(Fetch::Retry(format!(
                    "asked for bytes {offset}-{last}, got Content-Range {range:?}"
                )));
            }
            response.into_reader()
        }
        200 => {
            if offset > MAX_SKIP {
                return Err(Fetch::GiveUp(
                    "the server ignores Range requests (HTTP 200 instead of 206)".into(),
                ));
            }
            let mut r = response.into_reader();
            let skipped = std::io::copy(&mut (&mut r).take(offset), &mut std::io::sink())
                .map_err(|e| Fetch::Retry(e.to_string()))?;
            if skipped < offset {
                return Err(Fetch::Retry(
                    "the file is shorter than the torrent says".into(),
                ));
            }
            r
        }
        code => return Err(Fetch::Retry(format!("unexpected HTTP {code}"))),
    };
    // Never read more than asked for, whatever the server sends.
    let mut filled = 0;
    while filled < out.len() {
        match reader.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Fetch::Retry(e.to_string())),
        }
    }
    if filled < out.len() {
        return Err(Fetch::Retry(format!(
            "body ended after {filled} of {} bytes",
            out.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BLOCK_LEN;

    #[test]
    fn identities_are_distinct_and_never_peers() {
        let a = identity(0);
        let b = identity(300);
        assert_ne!(a, b);
        assert!(is_identity(a) && is_identity(b));
        assert_eq!(b.to_string(), "0.0.1.44:0");
        assert!(!is_identity("127.0.0.1:0".parse().unwrap()));
        assert!(!is_identity("0.0.0.1:6881".parse().unwrap()));
    }

    #[test]
    fn urls_follow_bep_19() {
        let one = Path::new("movie file.mkv");
        assert_eq!(
            file_url("http://h/dir/", false, one),
            "http://h/dir/movie%20file.mkv"
        );
        assert_eq!(file_url("http://h/x.mkv", false, one), "http://h/x.mkv");
        let multi = Path::new("album/disc 1/#1.flac");
        assert_eq!(
            file_url("http://h/pub/", true, multi),
            "http://h/pub/album/disc%201/%231.flac"
        );
        assert_eq!(
            file_url("https://h/pub", true, multi),
            "https://h/pub/album/disc%201/%231.flac"
        );
    }

    #[test]
    fn runs_join_contiguous_blocks_across_pieces() {
        let g = Geometry::new(4 * u64::from(BLOCK_LEN) + 10, 2 * BLOCK_LEN);
        let mut queue = vec![g.block(1, 0), g.block(0, 1), g.block(2, 0), g.block(1, 1)];
        let run = take_run(&mut queue, g).expect("run");
        assert_eq!(run, [g.block(1, 0), g.block(1, 1), g.block(2, 0)]);
        assert_eq!(queue, [g.block(0, 1)]);
        assert_eq!(take_run(&mut queue, g), Some(vec![g.block(0, 1)]));
        assert_eq!(take_run(&mut queue, g), None);
    }
}
