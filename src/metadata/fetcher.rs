//! The metadata phase's decisions, on the main loop's thread: which connected peer is asked
//! for which 16 KiB piece, and who is to blame for a bad copy.
//!
//! [`Fetcher`] owns all metadata state (the size being fetched, which pieces are in and from
//! whom, each connection's strikes and outstanding requests, the addresses still to try) and
//! is driven by the peer threads' [`Report`]s. When every piece is in, it checks the SHA-1
//! against the info hash; on a mismatch it discards the bytes, gives every peer that
//! contributed a strike, drops a peer that sent the whole copy alone or has
//! [`MAX_STRIKES`], and from then on fetches each copy from a single peer so the next failure
//! names its liar.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};

use crossbeam_channel::Sender;
use log::{debug, info, warn};
use sha1::{Digest, Sha1};

use super::link::Link;
use super::{Ask, Attempts, FetchRequest, Report, PIECE_TIMEOUT};
use crate::addresses::{MAX_KNOWN_PEERS, MAX_STRIKES};
use crate::messages::PeerKey;
use crate::peer::connection::STACK_SIZE;
use crate::peer::dial::HANDSHAKE_TIMEOUT;
use crate::peer::extension::{self, METADATA_PIECE_LEN};
use crate::peer::mse::Encryption;

/// Requests a peer has outstanding at once.
const PIPELINE: usize = 2;

/// The main loop's view of one metadata connection (a peer thread and its socket).
struct Connection {
    addr: SocketAddr,
    /// Where to hand this peer's thread pieces to ask for.
    asks: Sender<Ask>,
    /// A handle on the thread's socket, to end the connection from here.
    socket: Option<TcpStream>,
    /// The metadata size the peer offers, once its extension handshake said so.
    size: Option<u32>,
    /// Pieces handed to the peer and not yet answered.
    asked: Vec<u32>,
    /// Bad copies this peer contributed to.
    strikes: u32,
}

/// Who holds one metadata piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Missing,
    Asked(PeerKey),
    Got(PeerKey),
}

/// The copy of the info dict being assembled.
struct Assembly {
    size: u32,
    data: Vec<u8>,
    slots: Vec<Slot>,
}

/// Everything the main loop owns.
pub(super) struct Fetcher {
    info_hash: [u8; 20],
    our_id: [u8; 20],
    listen_port: u16,
    local: Option<IpAddr>,
    encryption: Encryption,
    max_peers: usize,
    reports: Sender<(PeerKey, Report)>,
    peers: BTreeMap<PeerKey, Connection>,
    next_key: PeerKey,
    /// Addresses waiting for a connection slot.
    candidates: VecDeque<SocketAddr>,
    /// Every address ever queued: none is connected to twice.
    seen: HashSet<SocketAddr>,
    /// Connections that ended, and why.
    ended: Vec<(SocketAddr, String)>,
    pub(super) tracker_note: Option<String>,
    assembly: Option<Assembly>,
    /// After a bad copy, each copy comes from a single peer.
    single_source: bool,
}

impl Fetcher {
    pub(super) fn new(req: &FetchRequest, reports: Sender<(PeerKey, Report)>) -> Fetcher {
        Fetcher {
            info_hash: req.info_hash,
            our_id: req.our_id,
            listen_port: req.listen_port,
            local: req.local,
            encryption: req.encryption,
            max_peers: req.max_peers.max(1),
            reports,
            peers: BTreeMap::new(),
            next_key: 0,
            candidates: VecDeque::new(),
            seen: HashSet::new(),
            ended: Vec::new(),
            tracker_note: None,
            assembly: None,
            single_source: false,
        }
    }

    pub(super) fn attempts(&self) -> Attempts {
        Attempts {
            peers: self.ended.clone(),
            tracker: self.tracker_note.clone(),
        }
    }

    /// Connected peers that offer the metadata.
    pub(super) fn serving(&self) -> usize {
        self.peers.values().filter(|p| p.size.is_some()).count()
    }

    /// Whether no connection is open and no address waits for one.
    pub(super) fn out_of_peers(&self) -> bool {
        self.peers.is_empty() && self.candidates.is_empty()
    }

    /// Queues addresses not seen before, up to [`MAX_KNOWN_PEERS`] over the whole phase.
    pub(super) fn add_candidates(&mut self, addrs: &[SocketAddr]) {
        for &addr in addrs {
            if self.seen.len() >= MAX_KNOWN_PEERS {
                break;
            }
            if !crate::net::same_family(self.local, &addr) {
                debug!("{addr}: skipped, another address family than --bind");
                continue;
            }
            if addr.port() != 0 && self.seen.insert(addr) {
                self.candidates.push_back(addr);
            }
        }
    }

    /// Starts peer threads for waiting addresses while there are free connection slots.
    pub(super) fn connect_more(&mut self) {
        while self.peers.len() < self.max_peers {
            let Some(addr) = self.candidates.pop_front() else {
                return;
            };
            let key = self.next_key;
            self.next_key += 1;
            let (asks_tx, asks_rx) = crossbeam_channel::unbounded();
            let link = Link {
                key,
                addr,
                info_hash: self.info_hash,
                our_id: self.our_id,
                listen_port: self.listen_port,
                local: self.local,
                encryption: self.encryption,
                asks: asks_rx,
                reports: self.reports.clone(),
                handshake_timeout: HANDSHAKE_TIMEOUT,
                piece_timeout: PIECE_TIMEOUT,
            };
            let started = std::thread::Builder::new()
                .name(format!("metadata {addr}"))
                .stack_size(STACK_SIZE)
                .spawn(move || link.run());
            match started {
                Ok(_) => {
                    self.peers.insert(
                        key,
                        Connection {
                            addr,
                            asks: asks_tx,
                            socket: None,
                            size: None,
                            asked: Vec::new(),
                            strikes: 0,
                        },
                    );
                }
                Err(e) => self.ended.push((addr, format!("no thread: {e}"))),
            }
        }
    }

    /// Applies one peer report; returns the verified info dict once it is complete.
    pub(super) fn handle(&mut self, key: PeerKey, report: Report) -> Option<Vec<u8>> {
        let Some(peer) = self.peers.get_mut(&key) else {
            // A peer we already dropped; its socket is shut down or about to be.
            if let Report::Socket(socket) = report {
                let _ = socket.shutdown(Shutdown::Both);
            }
            return None;
        };
        match report {
            Report::Socket(socket) => peer.socket = Some(socket),
            Report::Ready { size } => {
                debug!("{}: offers {size} bytes of metadata", peer.addr);
                peer.size = Some(size);
            }
            Report::Piece { piece, data } => return self.piece(key, piece, data),
            Report::Rejected { piece } => {
                self.drop_peer(key, format!("rejected metadata piece {piece}"));
            }
            Report::Closed { reason } => {
                self.release(key);
                if let Some(peer) = self.peers.remove(&key) {
                    self.ended.push((peer.addr, reason));
                }
                self.connect_more();
            }
        }
        self.assign();
        None
    }

    /// Stores a piece the peer was asked for; verifies the copy once it is complete.
    fn piece(&mut self, key: PeerKey, piece: u32, data: Vec<u8>) -> Option<Vec<u8>> {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.asked.retain(|&p| p != piece);
        }
        let assembly = self.assembly.as_mut()?;
        let index = piece as usize;
        // Answers to requests from a discarded copy are no longer wanted.
        if assembly.slots.get(index) != Some(&Slot::Asked(key)) {
            return None;
        }
        if extension::expected_piece_len(assembly.size, piece) != Some(data.len()) {
            self.drop_peer(
                key,
                format!("sent a {}-byte metadata piece {piece}", data.len()),
            );
            self.assign();
            return None;
        }
        let start = index * METADATA_PIECE_LEN;
        assembly.data[start..start + data.len()].copy_from_slice(&data);
        assembly.slots[index] = Slot::Got(key);
        if assembly.slots.iter().any(|s| !matches!(s, Slot::Got(_))) {
            self.assign();
            return None;
        }
        let complete = self.assembly.take()?;
        let hash: [u8; 20] = Sha1::digest(&complete.data).into();
        if hash == self.info_hash {
            info!("metadata: {} bytes, hash verified", complete.size);
            return Some(complete.data);
        }
        self.strike(&complete.slots);
        self.assign();
        None
    }

    /// A complete copy failed the hash: every contributor gets a strike; one that sent the
    /// whole copy, or has too many strikes, is dropped. Later copies come from single peers.
    fn strike(&mut self, slots: &[Slot]) {
        let contributors: HashSet<PeerKey> = slots
            .iter()
            .filter_map(|s| match s {
                Slot::Got(k) => Some(*k),
                _ => None,
            })
            .collect();
        warn!(
            "metadata from {} peer(s) does not match the info hash; fetching it again",
            contributors.len()
        );
        self.single_source = true;
        let alone = contributors.len() == 1;
        for key in contributors {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            peer.strikes += 1;
            if alone || peer.strikes >= MAX_STRIKES {
                self.drop_peer(
                    key,
                    "sent metadata that does not match the info hash".into(),
                );
            }
        }
    }

    /// Hands missing pieces to idle peers that offer the size being fetched; starts a copy
    /// when none is under way, or when no peer offers the current copy's size any more.
    fn assign(&mut self) {
        if let Some(assembly) = &self.assembly {
            if !self.peers.values().any(|p| p.size == Some(assembly.size)) {
                debug!("no peer left offers {} bytes of metadata", assembly.size);
                self.assembly = None;
            }
        }
        if self.assembly.is_none() {
            let Some(size) = self.pick_source().and_then(|k| self.peers[&k].size) else {
                return;
            };
            let pieces = extension::metadata_piece_count(size) as usize;
            self.assembly = Some(Assembly {
                size,
                data: vec![0; size as usize],
                slots: vec![Slot::Missing; pieces],
            });
        }
        let Some(assembly) = self.assembly.as_mut() else {
            return;
        };
        let busy: HashSet<PeerKey> = assembly
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Asked(k) | Slot::Got(k) => Some(*k),
                Slot::Missing => None,
            })
            .collect();
        let eligible: Vec<PeerKey> = if self.single_source {
            // One peer per copy: the one already on it, else the least suspect.
            busy.iter()
                .copied()
                .filter(|k| self.peers.contains_key(k))
                .min()
                .or_else(|| pick_least_struck(&self.peers, assembly.size, |k| !busy.contains(&k)))
                .into_iter()
                .collect()
        } else {
            self.peers
                .iter()
                .filter(|(_, p)| p.size == Some(assembly.size))
                .map(|(&k, _)| k)
                .collect()
        };
        let mut handed: BTreeMap<PeerKey, Vec<u32>> = BTreeMap::new();
        let mut missing = assembly
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == Slot::Missing)
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
            .into_iter();
        'spread: loop {
            let mut gave = false;
            for &key in &eligible {
                let outstanding =
                    self.peers[&key].asked.len() + handed.get(&key).map_or(0, Vec::len);
                if outstanding >= PIPELINE {
                    continue;
                }
                let Some(index) = missing.next() else {
                    break 'spread;
                };
                assembly.slots[index] = Slot::Asked(key);
                handed.entry(key).or_default().push(index as u32);
                gave = true;
            }
            if !gave {
                break;
            }
        }
        for (key, pieces) in handed {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.asked.extend_from_slice(&pieces);
                // A send fails only if the thread ended; its `Closed` frees the pieces.
                let _ = peer.asks.send(Ask { pieces });
            }
        }
    }

    /// The peer whose offered size starts the next copy: the least struck, oldest first.
    fn pick_source(&self) -> Option<PeerKey> {
        let size = self
            .peers
            .values()
            .filter(|p| p.size.is_some())
            .min_by_key(|p| p.strikes)?
            .size?;
        pick_least_struck(&self.peers, size, |_| true)
    }

    /// Puts the pieces a peer was asked for back in the pool.
    fn release(&mut self, key: PeerKey) {
        if let Some(assembly) = self.assembly.as_mut() {
            for slot in &mut assembly.slots {
                if *slot == Slot::Asked(key) {
                    *slot = Slot::Missing;
                }
            }
        }
    }

    /// Ends a connection from our side and records why.
    fn drop_peer(&mut self, key: PeerKey, reason: String) {
        self.release(key);
        if let Some(peer) = self.peers.remove(&key) {
            debug!("{}: dropped: {reason}", peer.addr);
            if let Some(socket) = &peer.socket {
                let _ = socket.shutdown(Shutdown::Both);
            }
            self.ended.push((peer.addr, reason));
        }
        self.connect_more();
    }

    /// Ends every connection (the fetch is over).
    pub(super) fn close_all(&mut self) {
        for peer in std::mem::take(&mut self.peers).into_values() {
            if let Some(socket) = &peer.socket {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    }
}

/// The peer offering `size` with the fewest strikes (oldest first) among those `allowed`.
fn pick_least_struck(
    peers: &BTreeMap<PeerKey, Connection>,
    size: u32,
    allowed: impl Fn(PeerKey) -> bool,
) -> Option<PeerKey> {
    peers
        .iter()
        .filter(|(&k, p)| p.size == Some(size) && allowed(k))
        .min_by_key(|(&k, p)| (p.strikes, k))
        .map(|(&k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::Receiver;
    use std::time::Duration;

    /// A fetcher for `info` with `n` peers (keys 0..n) whose threads are these receivers.
    fn fetcher(info: &[u8], n: u64) -> (Fetcher, Vec<Receiver<Ask>>) {
        let req = FetchRequest {
            info_hash: Sha1::digest(info).into(),
            our_id: [7; 20],
            trackers: Vec::new(),
            peers: Vec::new(),
            listen_port: 0,
            local: None,
            encryption: Encryption::Prefer,
            max_peers: 10,
            tracker_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            dht: None,
        };
        let (reports, _) = crossbeam_channel::unbounded();
        let mut fetcher = Fetcher::new(&req, reports);
        let mut threads = Vec::new();
        for key in 0..n {
            let (asks, thread) = crossbeam_channel::unbounded();
            let addr = SocketAddr::from(([10, 0, 0, 1], 1000 + key as u16));
            fetcher.peers.insert(
                key,
                Connection {
                    addr,
                    asks,
                    socket: None,
                    size: None,
                    asked: Vec::new(),
                    strikes: 0,
                },
            );
            threads.push(thread);
        }
        (fetcher, threads)
    }

    fn info() -> Vec<u8> {
        (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn asked(thread: &Receiver<Ask>) -> Vec<u32> {
        thread.try_iter().flat_map(|a| a.pieces).collect()
    }

    fn piece(info: &[u8], piece: u32) -> Vec<u8> {
        let start = piece as usize * METADATA_PIECE_LEN;
        info[start..(start + METADATA_PIECE_LEN).min(info.len())].to_vec()
    }

    fn serve(f: &mut Fetcher, key: PeerKey, pieces: &[u32], data: &[u8]) -> Option<Vec<u8>> {
        let mut done = None;
        for &p in pieces {
            done = f.handle(
                key,
                Report::Piece {
                    piece: p,
                    data: piece(data, p),
                },
            );
        }
        done
    }

    /// The test info dict, its size and a fetcher for it with two peers.
    fn two_peer_fetcher() -> (Vec<u8>, u32, Fetcher, Vec<Receiver<Ask>>) {
        let info = info();
        let size = info.len() as u32;
        let (f, threads) = fetcher(&info, 2);
        (info, size, f, threads)
    }

    #[test]
    fn pieces_are_spread_and_the_copy_verified() {
        let (info, size, mut f, threads) = two_peer_fetcher();
        assert_eq!(f.handle(0, Report::Ready { size }), None);
        assert_eq!(asked(&threads[0]), [0, 1], "a pipeline of two");
        f.handle(1, Report::Ready { size });
        assert_eq!(asked(&threads[1]), [2]);
        assert_eq!(f.serving(), 2);
        assert_eq!(serve(&mut f, 1, &[2], &info), None);
        assert_eq!(serve(&mut f, 0, &[0, 1], &info), Some(info));
    }

    #[test]
    fn a_closed_peers_pieces_go_to_another() {
        let (info, size, mut f, threads) = two_peer_fetcher();
        f.handle(0, Report::Ready { size });
        f.handle(1, Report::Ready { size });
        assert_eq!(asked(&threads[1]), [2]);
        f.handle(
            0,
            Report::Closed {
                reason: "gone".into(),
            },
        );
        assert_eq!(
            asked(&threads[1]),
            [0],
            "one at a time: piece 2 is still out"
        );
        assert_eq!(f.ended.len(), 1);
        assert_eq!(serve(&mut f, 1, &[2], &info), None);
        assert_eq!(asked(&threads[1]), [1]);
        assert_eq!(serve(&mut f, 1, &[0, 1], &info), Some(info));
    }

    #[test]
    fn a_bad_mixed_copy_strikes_everyone_then_copies_come_from_one_peer() {
        let info = info();
        let size = info.len() as u32;
        let mut bad = info.clone();
        bad[0] ^= 1;
        let (mut f, threads) = fetcher(&info, 2);
        f.handle(0, Report::Ready { size });
        f.handle(1, Report::Ready { size });
        assert_eq!(serve(&mut f, 1, &asked(&threads[1]), &info), None);
        assert_eq!(serve(&mut f, 0, &asked(&threads[0]), &bad), None);
        assert_eq!(f.peers.len(), 2, "one strike each: nobody is dropped yet");
        assert!(f.peers.values().all(|p| p.strikes == 1));
        // Now a single peer (the older, on a tie) is asked for the whole copy, two at a time.
        assert_eq!(asked(&threads[0]), [0, 1]);
        assert_eq!(asked(&threads[1]), []);
        assert_eq!(serve(&mut f, 0, &[0, 1], &bad), None);
        assert_eq!(asked(&threads[0]), [2]);
        assert_eq!(serve(&mut f, 0, &[2], &bad), None);
        assert!(!f.peers.contains_key(&0), "it sent a bad copy alone");
        assert_eq!(
            f.ended,
            [(
                SocketAddr::from(([10, 0, 0, 1], 1000)),
                "sent metadata that does not match the info hash".to_string()
            )]
        );
        assert_eq!(asked(&threads[1]), [0, 1]);
        assert_eq!(serve(&mut f, 1, &[0, 1], &info), None);
        assert_eq!(serve(&mut f, 1, &asked(&threads[1]), &info), Some(info));
    }

    #[test]
    fn stale_and_misfit_answers() {
        let (info, size, mut f, threads) = two_peer_fetcher();
        f.handle(0, Report::Ready { size });
        assert_eq!(asked(&threads[0]), [0, 1]);
        assert_eq!(serve(&mut f, 1, &[0], &info), None, "peer 1 was not asked");
        assert_eq!(f.assembly.as_ref().unwrap().slots[0], Slot::Asked(0));
        let short = Report::Piece {
            piece: 0,
            data: vec![0; 10],
        };
        assert_eq!(f.handle(0, short), None);
        assert!(!f.peers.contains_key(&0), "a misfit piece drops the peer");
        assert!(f.ended[0].1.contains("10-byte metadata piece 0"));
    }

    #[test]
    fn peers_offering_another_size_wait() {
        let info = info();
        let (mut f, threads) = fetcher(&info, 2);
        f.handle(0, Report::Ready { size: 999 });
        f.handle(1, Report::Ready { size: 40_000 });
        assert_eq!(asked(&threads[0]), [0]);
        assert_eq!(asked(&threads[1]), [], "a copy of 999 bytes is under way");
        let gone = Report::Closed {
            reason: "gone".into(),
        };
        f.handle(0, gone);
        assert_eq!(asked(&threads[1]), [0, 1], "the other size's copy starts");
        f.handle(1, Report::Rejected { piece: 5 });
        assert!(f.ended[1].1.contains("rejected metadata piece 5"));
        assert!(f.assembly.is_none(), "nobody offers metadata any more");
    }
}
