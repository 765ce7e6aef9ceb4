//! The swarm table and the thread that owns it (`tracker swarms`): info hash → peers keyed by
//! (source IP, announced port), with each torrent's `completed` count.
//!
//! The thread is the table's only reader and writer. The HTTP handlers and the UDP thread ask
//! it typed [`Query`]s that carry their own reply channel (see [`ask`]); it sweeps silent peers
//! on a timer (`recv_timeout`). No lock guards the table. [`Swarms`] itself is pure: time
//! comes in as arguments, so the announce and expiry rules are unit-tested without a thread.
//!
//! These queries are private to the tracker server rather than declared in
//! `src/messages.rs`: they never leave it.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::ServerConfig;
use crate::rng::Rng;
use crate::tracker::AnnounceEvent;

/// Most torrents listed by a scrape without `info_hash`.
pub const MAX_SCRAPE: usize = 1000;
/// Queries waiting for the swarm thread; a sender finding it full waits up to
/// [`QUERY_TIMEOUT`].
pub(crate) const QUERIES: usize = 64;
/// Longest a handler waits for the swarm thread to take or answer a query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts the `tracker swarms` thread; it ends when every sender of `queries` has gone.
pub(crate) fn spawn(config: &ServerConfig, queries: Receiver<Query>) -> io::Result<JoinHandle<()>> {
    let swarms = Swarms::new(config);
    std::thread::Builder::new()
        .name("tracker swarms".into())
        .spawn(move || run_swarms(swarms, queries))
}

/// A question for the swarm thread, with the channel to answer on.
pub(crate) enum Query {
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
    pub(crate) info_hash: [u8; 20],
    pub(crate) peer_id: [u8; 20],
    /// The connection's source IP with the announced port: the peer's key.
    pub(crate) addr: SocketAddr,
    /// Bytes still missing, when the client said.
    pub(crate) left: Option<u64>,
    pub(crate) event: Option<AnnounceEvent>,
    pub(crate) numwant: usize,
    pub(crate) compact: bool,
}

/// The swarm thread's answer to an announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnnounceAnswer {
    /// Seeders in the swarm.
    pub(crate) complete: u64,
    /// Leechers in the swarm.
    pub(crate) incomplete: u64,
    /// The chosen peers (never the requester) with their peer ids.
    pub(crate) peers: Vec<(SocketAddr, [u8; 20])>,
}

/// One torrent's scrape counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    pub(crate) complete: u64,
    pub(crate) downloaded: u64,
    pub(crate) incomplete: u64,
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

/// Sends a query to the swarm thread and waits (bounded) for its answer.
pub(crate) fn ask<T>(queries: &Sender<Query>, query: impl FnOnce(Sender<T>) -> Query) -> Option<T> {
    let (reply, answer) = crossbeam_channel::bounded(1);
    queries.send_timeout(query(reply), QUERY_TIMEOUT).ok()?;
    answer.recv_timeout(QUERY_TIMEOUT).ok()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const HASH: [u8; 20] = [7; 20];

    fn config() -> ServerConfig {
        ServerConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    fn peer_id(n: u16) -> [u8; 20] {
        let mut id = *b"-TS0001-000000000000";
        id[18..].copy_from_slice(&n.to_be_bytes());
        id
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
}
