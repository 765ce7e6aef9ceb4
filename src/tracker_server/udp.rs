//! The tracker's UDP side (BEP 15): the `tracker udp` thread owns the UDP socket, answers
//! connect requests with a connection id, checks that id on announces and scrapes, and asks
//! the swarm thread, exactly as the HTTP handlers do.
//!
//! Connection ids need no table: [`ConnectionIds`] derives them from a per-server random key,
//! the client's IP address and a one-minute time bucket, so an id stays valid one to two
//! minutes. The thread wakes every [`POLL`] to check the stop signal. The datagrams
//! themselves are the client's codec, [`crate::tracker::udp_wire`].
//!
//! Under a flood the thread spends little on each datagram, least on garbage: [`screen`]
//! looks only at the first 16 bytes (length, action, the connect magic or a valid connection
//! id) and drops garbage without a reply or a log line. Then each source address (IPv4, or
//! IPv6 /64) may have at most [`UDP_REPLIES_PER_SOURCE`] replies a second ([`Budget`]), so one
//! address flooding us with valid requests costs us a hash lookup per datagram and cannot
//! take the replies, or the swarm thread's time, that others are owed. Only then is the
//! request decoded and the swarm thread asked.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::conns::source;
use super::parse::MAX_NUMWANT;
use super::swarm::{ask, Announce, Query};
use super::{stopped, FrontEnd, POLL};
use crate::net::is_timeout;
use crate::tracker::udp_wire::{
    self as udp, Request, ACTION_ANNOUNCE, ACTION_CONNECT, ACTION_SCRAPE,
};

/// Replies sent to one source address (or IPv6 /64) per second; datagrams beyond are dropped
/// unread. A client sends two per announce (connect, announce), so this serves a NAT with
/// thousands of clients.
pub const UDP_REPLIES_PER_SOURCE: u32 = 100;
/// Bytes of datagrams the kernel holds for the UDP thread (asked for; Linux grants at most
/// `net.core.rmem_max`). The default (about 200 KiB, some 270 small datagrams) overflows
/// within milliseconds of a flood, dropping the legitimate datagrams that arrive with it.
pub const UDP_RECEIVE_BUFFER: usize = 4 * 1024 * 1024;
/// Source addresses whose replies are counted per second; beyond, new ones are not counted
/// (a flood from that many addresses is bounded by the socket's buffer instead).
pub const UDP_SOURCES_COUNTED: usize = 16 * 1024;

/// Starts the `tracker udp` thread on `socket`; it ends when `stop`'s sender is dropped.
pub(super) fn spawn(socket: UdpSocket, front: FrontEnd) -> io::Result<JoinHandle<()>> {
    let server = UdpServer {
        socket,
        ids: ConnectionIds::new(),
        budget: Budget::new(Instant::now()),
        front,
    };
    std::thread::Builder::new()
        .name("tracker udp".into())
        .spawn(move || server.run())
}

/// How long one UDP connection-id bucket lasts; an id is accepted in its bucket and the next.
const CONNECTION_BUCKET: Duration = Duration::from_secs(60);

/// Stateless UDP connection ids: a keyed hash of the client's IP address (not its port, as
/// BEP 15 suggests) and a time bucket.
#[derive(Debug)]
struct ConnectionIds {
    /// Randomly keyed SipHash: the per-server secret.
    key: RandomState,
    epoch: Instant,
}

impl ConnectionIds {
    fn new() -> ConnectionIds {
        ConnectionIds {
            key: RandomState::new(),
            epoch: Instant::now(),
        }
    }

    fn bucket(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / CONNECTION_BUCKET.as_secs()
    }

    fn id(&self, from: SocketAddr, bucket: u64) -> u64 {
        let mut hasher = self.key.build_hasher();
        std::hash::Hash::hash(&from.ip().to_canonical(), &mut hasher);
        hasher.write_u64(bucket);
        hasher.finish()
    }

    /// The id to give `from` at `now`.
    fn issue(&self, from: SocketAddr, now: Instant) -> u64 {
        self.id(from, self.bucket(now))
    }

    /// Whether `id` was issued to `from` in this bucket or the previous one.
    fn valid(&self, id: u64, from: SocketAddr, now: Instant) -> bool {
        let bucket = self.bucket(now);
        id == self.id(from, bucket) || (bucket > 0 && id == self.id(from, bucket - 1))
    }
}

/// The UDP thread's state.
struct UdpServer {
    socket: UdpSocket,
    ids: ConnectionIds,
    budget: Budget,
    front: FrontEnd,
}

impl UdpServer {
    /// Answers datagrams until the stop signal.
    fn run(mut self) {
        if let Err(error) = self.socket.set_read_timeout(Some(POLL)) {
            log::error!("tracker udp: cannot set a read timeout, UDP disabled: {error}");
            return;
        }
        grow_receive_buffer(&self.socket);
        let mut buf = vec![0u8; udp::MAX_DATAGRAM];
        while !stopped(&self.front.stop) {
            let (n, from) = match self.socket.recv_from(&mut buf) {
                Ok(received) => received,
                Err(error) if is_timeout(&error) || error.kind() == io::ErrorKind::Interrupted => {
                    continue
                }
                Err(error) => {
                    // E.g. ICMP errors reported for an earlier reply: harmless.
                    log::debug!("tracker udp: receive failed: {error}");
                    continue;
                }
            };
            let Some(reply) = self.respond(&buf[..n], from, Instant::now()) else {
                continue;
            };
            if let Err(error) = self.socket.send_to(&reply.encode(), from) {
                log::debug!("tracker udp: reply to {from} failed: {error}");
            }
        }
    }

    /// The reply to the datagram `datagram` from `from`, if it deserves one: garbage, and
    /// anything from a source past its budget, gets none.
    fn respond(
        &mut self,
        datagram: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Option<udp::Response> {
        let screened = screen(datagram, from, &self.ids, now);
        if screened == Screen::Garbage || !self.budget.allow(source(from.ip()), now) {
            return None;
        }
        match screened {
            Screen::Garbage => None,
            Screen::Connect { transaction_id } => Some(udp::Response::Connect {
                transaction_id,
                connection_id: self.ids.issue(from, now),
            }),
            Screen::BadId { transaction_id } => Some(udp::Response::Error {
                transaction_id,
                message: "invalid or expired connection id".to_string(),
            }),
            Screen::Valid { transaction_id } => Some(self.answer(datagram, from, transaction_id)),
        }
    }

    /// The reply to an announce or scrape that passed [`screen`].
    fn answer(&self, datagram: &[u8], from: SocketAddr, transaction_id: u32) -> udp::Response {
        let error = |message: &str| udp::Response::Error {
            transaction_id,
            message: message.to_string(),
        };
        let request = match Request::decode(datagram) {
            Ok(request) => request,
            Err(reason) => return error(&reason),
        };
        match request {
            // Screened as an announce or a scrape; decoding agrees on the action.
            Request::Connect { .. } => error("unexpected connect"),
            Request::Announce { request, .. } => {
                if request.announcer.port == 0 {
                    return error("invalid port");
                }
                let v4 = from.ip().to_canonical().is_ipv4();
                let announce = Announce {
                    info_hash: request.announcer.info_hash,
                    peer_id: request.announcer.peer_id,
                    addr: SocketAddr::new(from.ip().to_canonical(), request.announcer.port),
                    left: Some(request.totals.left),
                    event: request.event,
                    numwant: usize::try_from(request.numwant)
                        .unwrap_or(MAX_NUMWANT)
                        .min(MAX_NUMWANT),
                    compact: true,
                };
                match ask(&self.front.queries, |reply| Query::Announce {
                    announce,
                    reply,
                }) {
                    Some(Ok(answer)) => udp::Response::Announce {
                        transaction_id,
                        interval: u32::try_from(self.front.interval.as_secs().max(1))
                            .unwrap_or(u32::MAX),
                        leechers: saturate(answer.incomplete),
                        seeders: saturate(answer.complete),
                        // Each reply carries one address family: the one the client used.
                        peers: answer
                            .peers
                            .into_iter()
                            .map(|(addr, _)| addr)
                            .filter(|addr| addr.is_ipv4() == v4)
                            .collect(),
                    },
                    Some(Err(reason)) => error(&reason),
                    None => error("tracker busy"),
                }
            }
            Request::Scrape { info_hashes, .. } => {
                let wanted = info_hashes.clone();
                match ask(&self.front.queries, |reply| Query::Scrape {
                    hashes: info_hashes,
                    reply,
                }) {
                    Some(files) => udp::Response::Scrape {
                        transaction_id,
                        counts: wanted
                            .iter()
                            .map(|hash| {
                                let counts = files
                                    .binary_search_by_key(hash, |(h, _)| *h)
                                    .map(|i| files[i].1)
                                    .unwrap_or_default();
                                udp::ScrapeCounts {
                                    seeders: saturate(counts.complete),
                                    completed: saturate(counts.downloaded),
                                    leechers: saturate(counts.incomplete),
                                }
                            })
                            .collect(),
                    },
                    None => error("tracker busy"),
                }
            }
        }
    }
}

/// Asks for a receive buffer of [`UDP_RECEIVE_BUFFER`] bytes; a smaller one only makes floods
/// drop more.
fn grow_receive_buffer(socket: &UdpSocket) {
    if let Err(e) = crate::net::grow_receive_buffer(socket, UDP_RECEIVE_BUFFER) {
        log::debug!("tracker udp: cannot grow the receive buffer: {e}");
    }
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What the first 16 bytes of a datagram say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    /// Too short, an unknown action, or a connect without the protocol's magic: dropped.
    Garbage,
    /// A connect request.
    Connect { transaction_id: u32 },
    /// An announce or scrape with a connection id we did not give this address.
    BadId { transaction_id: u32 },
    /// An announce or scrape with a valid connection id: worth decoding.
    Valid { transaction_id: u32 },
}

/// Judges a datagram from `from` by its header alone, before any other work: at most two
/// keyed hashes, no allocation.
fn screen(datagram: &[u8], from: SocketAddr, ids: &ConnectionIds, now: Instant) -> Screen {
    let Some(header) = datagram.get(..16) else {
        return Screen::Garbage;
    };
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let connection_id = u64::from(word(0)) << 32 | u64::from(word(4));
    let transaction_id = word(12);
    match word(8) {
        ACTION_CONNECT if connection_id == udp::PROTOCOL_ID => Screen::Connect { transaction_id },
        ACTION_ANNOUNCE | ACTION_SCRAPE if ids.valid(connection_id, from, now) => {
            Screen::Valid { transaction_id }
        }
        ACTION_ANNOUNCE | ACTION_SCRAPE => Screen::BadId { transaction_id },
        _ => Screen::Garbage,
    }
}

/// Replies left to each source address this second; see the module docs.
#[derive(Debug)]
struct Budget {
    window: Instant,
    spent: HashMap<IpAddr, u32>,
}

impl Budget {
    fn new(now: Instant) -> Budget {
        Budget {
            window: now,
            spent: HashMap::new(),
        }
    }

    /// Whether `source` may have one more reply at `now`; if so, counts it.
    fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        if now.saturating_duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.spent.clear();
            // After a flood from many addresses, give the memory back.
            self.spent.shrink_to(1024);
        }
        let full = self.spent.len() >= UDP_SOURCES_COUNTED;
        match self.spent.get_mut(&source) {
            Some(spent) if *spent >= UDP_REPLIES_PER_SOURCE => false,
            Some(spent) => {
                *spent += 1;
                true
            }
            None if full => true,
            None => {
                self.spent.insert(source, 1);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_connection_ids_are_per_address_and_expire() {
        let ids = ConnectionIds::new();
        let a = SocketAddr::from(([127, 0, 0, 1], 4000));
        let b = SocketAddr::from(([127, 0, 0, 2], 4000));
        let t0 = ids.epoch;
        let id = ids.issue(a, t0);
        assert!(ids.valid(id, a, t0));
        assert!(ids.valid(id, SocketAddr::from(([127, 0, 0, 1], 4001)), t0));
        assert!(!ids.valid(id, b, t0));
        assert!(ids.valid(id, a, t0 + Duration::from_secs(119)));
        assert!(!ids.valid(id, a, t0 + Duration::from_secs(120)));
        assert_ne!(
            ConnectionIds::new().issue(a, t0),
            id,
            "the secret is per server"
        );
    }

    #[test]
    fn screening_reads_only_the_header() {
        let ids = ConnectionIds::new();
        let t0 = ids.epoch;
        let from = SocketAddr::from(([127, 0, 0, 1], 4000));
        let connect = Request::Connect { transaction_id: 5 }.encode();
        assert_eq!(
            screen(&connect, from, &ids, t0),
            Screen::Connect { transaction_id: 5 }
        );
        let mut no_magic = connect.clone();
        no_magic[3] ^= 1;
        assert_eq!(screen(&no_magic, from, &ids, t0), Screen::Garbage);
        assert_eq!(screen(&connect[..15], from, &ids, t0), Screen::Garbage);
        let mut unknown = connect.clone();
        unknown[11] = 9;
        assert_eq!(screen(&unknown, from, &ids, t0), Screen::Garbage);
        let scrape = |connection_id| {
            Request::Scrape {
                connection_id,
                transaction_id: 6,
                info_hashes: vec![[1; 20]],
            }
            .encode()
        };
        let valid = scrape(ids.issue(from, t0));
        assert_eq!(
            screen(&valid, from, &ids, t0),
            Screen::Valid { transaction_id: 6 }
        );
        // Only the header is read: a valid id with a truncated body still screens valid
        // (decoding then refuses it), and a bad id is refused before the body.
        assert_eq!(
            screen(&valid[..16], from, &ids, t0),
            Screen::Valid { transaction_id: 6 }
        );
        assert_eq!(
            screen(&scrape(12345), from, &ids, t0),
            Screen::BadId { transaction_id: 6 }
        );
    }

    #[test]
    fn each_source_gets_its_own_reply_budget_every_second() {
        let t0 = Instant::now();
        let mut budget = Budget::new(t0);
        let flooder = IpAddr::from([127, 0, 0, 1]);
        let other = IpAddr::from([127, 0, 0, 9]);
        let allowed = (0..1000).filter(|_| budget.allow(flooder, t0)).count();
        assert_eq!(allowed, UDP_REPLIES_PER_SOURCE as usize);
        assert!(budget.allow(other, t0));
        assert!(!budget.allow(flooder, t0 + Duration::from_millis(999)));
        assert!(budget.allow(flooder, t0 + Duration::from_secs(1)));
        // Past the number of sources counted, new sources are not counted (nor refused).
        let later = t0 + Duration::from_secs(5);
        for n in 0..UDP_SOURCES_COUNTED as u32 + 10 {
            assert!(budget.allow(IpAddr::from(n.to_be_bytes()), later));
        }
        assert_eq!(budget.spent.len(), UDP_SOURCES_COUNTED);
        budget.allow(flooder, later + Duration::from_secs(1));
        assert!(
            budget.spent.capacity() <= 2048,
            "{}",
            budget.spent.capacity()
        );
    }
}
