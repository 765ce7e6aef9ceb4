//! The tracker's UDP side (BEP 15): the `tracker udp` thread owns the UDP socket, answers
//! connect requests with a connection id, checks that id on announces and scrapes, and asks
//! the swarm thread, exactly as the HTTP handlers do.
//!
//! Connection ids need no table: [`ConnectionIds`] derives them from a per-server random key,
//! the client's IP address and a one-minute time bucket, so an id stays valid one to two
//! minutes. The thread wakes every [`POLL`] to check the stop signal. The datagrams
//! themselves are the client's codec, [`crate::tracker::udp_wire`].

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::parse::MAX_NUMWANT;
use super::swarm::{ask, Announce, Query};
use super::{stopped, POLL};
use crate::tracker::udp_wire::{self as udp, Request};

/// Starts the `tracker udp` thread on `socket`; it ends when `stop`'s sender is dropped.
pub(crate) fn spawn(
    socket: UdpSocket,
    queries: Sender<Query>,
    stop: Receiver<()>,
    interval: Duration,
) -> io::Result<JoinHandle<()>> {
    let server = UdpServer {
        socket,
        ids: ConnectionIds::new(),
        queries,
        stop,
        interval,
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
    queries: Sender<Query>,
    stop: Receiver<()>,
    interval: Duration,
}

impl UdpServer {
    /// Answers datagrams until the stop signal.
    fn run(self) {
        if let Err(error) = self.socket.set_read_timeout(Some(POLL)) {
            log::error!("tracker udp: cannot set a read timeout, UDP disabled: {error}");
            return;
        }
        let mut buf = vec![0u8; udp::MAX_DATAGRAM];
        while !stopped(&self.stop) {
            let (n, from) = match self.socket.recv_from(&mut buf) {
                Ok(received) => received,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
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

    /// The reply to the datagram `datagram` from `from`, if it deserves one (garbage and
    /// requests that cannot be parsed far enough to name a transaction get none).
    fn respond(&self, datagram: &[u8], from: SocketAddr, now: Instant) -> Option<udp::Response> {
        let request = match Request::decode(datagram) {
            Ok(request) => request,
            Err(reason) => {
                log::debug!("tracker udp: {from}: {reason}");
                let transaction_id = datagram.get(12..16)?;
                return Some(udp::Response::Error {
                    transaction_id: u32::from_be_bytes(transaction_id.try_into().ok()?),
                    message: reason,
                });
            }
        };
        let transaction_id = request.transaction_id();
        let error = |message: &str| {
            Some(udp::Response::Error {
                transaction_id,
                message: message.to_string(),
            })
        };
        match request {
            Request::Connect { .. } => Some(udp::Response::Connect {
                transaction_id,
                connection_id: self.ids.issue(from, now),
            }),
            Request::Announce { connection_id, .. } | Request::Scrape { connection_id, .. }
                if !self.ids.valid(connection_id, from, now) =>
            {
                error("invalid or expired connection id")
            }
            Request::Announce { request, .. } => {
                if request.port == 0 {
                    return error("invalid port");
                }
                let v4 = from.ip().to_canonical().is_ipv4();
                let announce = Announce {
                    info_hash: request.info_hash,
                    peer_id: request.peer_id,
                    addr: SocketAddr::new(from.ip().to_canonical(), request.port),
                    left: Some(request.left),
                    event: request.event,
                    numwant: usize::try_from(request.numwant)
                        .unwrap_or(MAX_NUMWANT)
                        .min(MAX_NUMWANT),
                    compact: true,
                };
                match ask(&self.queries, |reply| Query::Announce { announce, reply }) {
                    Some(Ok(answer)) => Some(udp::Response::Announce {
                        transaction_id,
                        interval: u32::try_from(self.interval.as_secs().max(1)).unwrap_or(u32::MAX),
                        leechers: saturate(answer.incomplete),
                        seeders: saturate(answer.complete),
                        // Each reply carries one address family: the one the client used.
                        peers: answer
                            .peers
                            .into_iter()
                            .map(|(addr, _)| addr)
                            .filter(|addr| addr.is_ipv4() == v4)
                            .collect(),
                    }),
                    Some(Err(reason)) => error(&reason),
                    None => error("tracker busy"),
                }
            }
            Request::Scrape { info_hashes, .. } => {
                let wanted = info_hashes.clone();
                match ask(&self.queries, |reply| Query::Scrape {
                    hashes: info_hashes,
                    reply,
                }) {
                    Some(files) => Some(udp::Response::Scrape {
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
                    }),
                    None => error("tracker busy"),
                }
            }
        }
    }
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
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
}
