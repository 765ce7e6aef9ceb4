//! UDP tracker protocol (BEP 15): the datagram codec and the client.
//!
//! The codec ([`Request`], [`Response`]) is pure and shared with the embedded tracker
//! (`server.rs`). The client, [`Client`], runs on whichever thread calls it (normally the
//! tracker thread) and blocks until a reply, its deadline or an interruption. It owns the
//! session's announce `key`, its transaction-id source and the connection ids it obtained,
//! reused for up to [`CONNECTION_ID_LIFETIME`] per tracker address.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use super::{AnnounceEvent, AnnounceRequest, AnnounceResponse, TrackerError, NUMWANT};
use crate::rng::Rng;

/// The magic constant that opens every connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// How long a client may use a connection id (BEP 15: one minute).
pub const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);
/// The first retransmission timeout; the n-th waits `RETRANSMIT_BASE × 2^n`.
pub const RETRANSMIT_BASE: Duration = Duration::from_secs(15);
/// The largest `n` in the retransmission schedule (15 × 2^8 = 3840 s).
pub const MAX_RETRANSMIT_EXPONENT: u32 = 8;
/// Largest datagram read; enough for an announce reply with 200 IPv6 peers, or a scrape
/// reply for the 74 torrents a request can hold.
pub const MAX_DATAGRAM: usize = 8 * 1024;
/// Most info hashes in one scrape request (BEP 15 limits a request to about 74).
pub const MAX_SCRAPE_HASHES: usize = 74;
/// How often a waiting client asks whether it has been interrupted.
const POLL: Duration = Duration::from_millis(100);

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

/// One torrent's counts in a scrape reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    /// Peers with the whole torrent.
    pub seeders: u32,
    /// `completed` announces seen.
    pub completed: u32,
    /// Peers still downloading.
    pub leechers: u32,
}

/// A client-to-tracker datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Ask for a connection id.
    Connect {
        /// Chosen by the client, echoed by the tracker.
        transaction_id: u32,
    },
    /// Announce, as over HTTP, plus the session `key`.
    Announce {
        /// From the connect reply.
        connection_id: u64,
        /// Chosen by the client, echoed by the tracker.
        transaction_id: u32,
        /// What to announce. On the wire `ip` is always 0 (the tracker uses the source address).
        request: AnnounceRequest,
        /// Random per session, so the tracker can recognise us across address changes.
        key: u32,
    },
    /// Counts for up to [`MAX_SCRAPE_HASHES`] torrents.
    Scrape {
        /// From the connect reply.
        connection_id: u64,
        /// Chosen by the client, echoed by the tracker.
        transaction_id: u32,
        /// The torrents' info hashes.
        info_hashes: Vec<[u8; 20]>,
    },
}

/// A tracker-to-client datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The connection id to use for the next minute.
    Connect {
        /// Echo of the request's.
        transaction_id: u32,
        /// The id to put in announces and scrapes.
        connection_id: u64,
    },
    /// An announce's answer.
    Announce {
        /// Echo of the request's.
        transaction_id: u32,
        /// Seconds until the next regular announce.
        interval: u32,
        /// Peers still downloading.
        leechers: u32,
        /// Peers with the whole torrent.
        seeders: u32,
        /// Peers, all of the tracker socket's address family (6 bytes each for IPv4, 18 for
        /// IPv6). Decoding drops port-0 entries and maps IPv4-mapped IPv6 addresses to IPv4.
        peers: Vec<SocketAddr>,
    },
    /// A scrape's answer, in the order of the request's hashes.
    Scrape {
        /// Echo of the request's.
        transaction_id: u32,
        /// One entry per requested hash.
        counts: Vec<ScrapeCounts>,
    },
    /// The tracker refused the request; `message` is for the user.
    Error {
        /// Echo of the request's.
        transaction_id: u32,
        /// The tracker's text.
        message: String,
    },
}

fn event_code(event: Option<AnnounceEvent>) -> u32 {
    match event {
        None => 0,
        Some(AnnounceEvent::Completed) => 1,
        Some(AnnounceEvent::Started) => 2,
        Some(AnnounceEvent::Stopped) => 3,
    }
}

/// A cursor over a datagram that reports truncation instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at + n;
        let slice = self.bytes.get(self.at..end).ok_or_else(|| {
            format!(
                "datagram truncated at {} bytes (needed {end})",
                self.bytes.len()
            )
        })?;
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, String> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_be_bytes)
    }

    fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        self.at = self.bytes.len();
        rest
    }
}

impl Request {
    /// The request's transaction id.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Request::Connect { transaction_id }
            | Request::Announce { transaction_id, .. }
            | Request::Scrape { transaction_id, .. } => *transaction_id,
        }
    }

    /// The datagram for this request.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(98);
        match self {
            Request::Connect { transaction_id } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
            }
            Request::Announce {
                connection_id,
                transaction_id,
                request,
                key,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&request.info_hash);
                out.extend_from_slice(&request.peer_id);
                out.extend_from_slice(&request.downloaded.to_be_bytes());
                out.extend_from_slice(&request.left.to_be_bytes());
                out.extend_from_slice(&request.uploaded.to_be_bytes());
                out.extend_from_slice(&event_code(request.event).to_be_bytes());
                out.extend_from_slice(&0u32.to_be_bytes());
                out.extend_from_slice(&key.to_be_bytes());
                let numwant = i32::try_from(request.numwant).unwrap_or(i32::MAX);
                out.extend_from_slice(&numwant.to_be_bytes());
                out.extend_from_slice(&request.port.to_be_bytes());
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for hash in info_hashes {
                    out.extend_from_slice(hash);
                }
            }
        }
        out
    }

    /// Parses a request datagram; `Err` says what is wrong with it. A negative `num_want`
    /// (the protocol's "default") becomes [`NUMWANT`]; the `ip` field is ignored.
    pub fn decode(datagram: &[u8]) -> Result<Request, String> {
        let mut r = Reader::new(datagram);
        let connection_id = r.u64()?;
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            ACTION_CONNECT if connection_id == PROTOCOL_ID => {
                Ok(Request::Connect { transaction_id })
            }
            ACTION_CONNECT => Err("connect request without the protocol id".to_string()),
            ACTION_ANNOUNCE => {
                let info_hash = r.array()?;
                let peer_id = r.array()?;
                let downloaded = r.u64()?;
                let left = r.u64()?;
                let uploaded = r.u64()?;
                let event = match r.u32()? {
                    0 => None,
                    1 => Some(AnnounceEvent::Completed),
                    2 => Some(AnnounceEvent::Started),
                    3 => Some(AnnounceEvent::Stopped),
                    other => return Err(format!("invalid event {other}")),
                };
                let _ip = r.u32()?;
                let key = r.u32()?;
                let numwant = r.array().map(i32::from_be_bytes)?;
                let port = r.u16()?;
                Ok(Request::Announce {
                    connection_id,
                    transaction_id,
                    request: AnnounceRequest {
                        info_hash,
                        peer_id,
                        port,
                        uploaded,
                        downloaded,
                        left,
                        event,
                        numwant: u32::try_from(numwant).unwrap_or(NUMWANT),
                    },
                    key,
                })
            }
            ACTION_SCRAPE => {
                let rest = r.rest();
                if rest.is_empty() || rest.len() % 20 != 0 {
                    return Err(format!(
                        "scrape request with {} bytes of info hashes",
                        rest.len()
                    ));
                }
                let info_hashes: Vec<[u8; 20]> = rest
                    .chunks_exact(20)
                    .take(MAX_SCRAPE_HASHES)
                    .map(|chunk| {
                        let mut hash = [0u8; 20];
                        hash.copy_from_slice(chunk);
                        hash
                    })
                    .collect();
                Ok(Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes,
                })
            }
            other => Err(format!("unknown action {other}")),
        }
    }
}

impl Response {
    /// The reply's transaction id.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Response::Connect { transaction_id, .. }
            | Response::Announce { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => *transaction_id,
        }
    }

    /// The datagram for this reply. Each announce peer takes 6 bytes if IPv4 and 18 if IPv6:
    /// callers pass only peers of the family the client reached them over.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20);
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&interval.to_be_bytes());
                out.extend_from_slice(&leechers.to_be_bytes());
                out.extend_from_slice(&seeders.to_be_bytes());
                for peer in peers {
                    match peer.ip() {
                        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
                        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
                    }
                    out.extend_from_slice(&peer.port().to_be_bytes());
                }
            }
            Response::Scrape {
                transaction_id,
                counts,
            } => {
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for c in counts {
                    out.extend_from_slice(&c.seeders.to_be_bytes());
                    out.extend_from_slice(&c.completed.to_be_bytes());
                    out.extend_from_slice(&c.leechers.to_be_bytes());
                }
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                out.extend_from_slice(&ACTION_ERROR.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(message.as_bytes());
            }
        }
        out
    }

    /// Parses a reply datagram received over an IPv6 socket (`ipv6`) or an IPv4 one, which
    /// decides the size of announce peers; `Err` says what is wrong with it.
    pub fn decode(datagram: &[u8], ipv6: bool) -> Result<Response, String> {
        let mut r = Reader::new(datagram);
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            ACTION_CONNECT => Ok(Response::Connect {
                transaction_id,
                connection_id: r.u64()?,
            }),
            ACTION_ANNOUNCE => {
                let interval = r.u32()?;
                let leechers = r.u32()?;
                let seeders = r.u32()?;
                let entry = if ipv6 { 18 } else { 6 };
                let rest = r.rest();
                if rest.len() % entry != 0 {
                    return Err(format!(
                        "{} bytes of peers is not a multiple of {entry}",
                        rest.len()
                    ));
                }
                let peers = rest
                    .chunks_exact(entry)
                    .filter_map(|record| {
                        let (ip, port) = record.split_at(entry - 2);
                        let port = u16::from_be_bytes([port[0], port[1]]);
                        let ip = match <[u8; 4]>::try_from(ip) {
                            Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
                            Err(_) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?)),
                        };
                        (port != 0).then_some(SocketAddr::new(ip.to_canonical(), port))
                    })
                    .collect();
                Ok(Response::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            ACTION_SCRAPE => {
                let rest = r.rest();
                if rest.len() % 12 != 0 {
                    return Err(format!(
                        "{} bytes of scrape counts is not a multiple of 12",
                        rest.len()
                    ));
                }
                let counts = rest
                    .chunks_exact(12)
                    .map(|c| {
                        let word =
                            |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
                        ScrapeCounts {
                            seeders: word(0),
                            completed: word(4),
                            leechers: word(8),
                        }
                    })
                    .collect();
                Ok(Response::Scrape {
                    transaction_id,
                    counts,
                })
            }
            ACTION_ERROR => Ok(Response::Error {
                transaction_id,
                message: String::from_utf8_lossy(r.rest()).into_owned(),
            }),
            other => Err(format!("unknown action {other}")),
        }
    }
}

/// Checks a datagram received while waiting for `transaction_id`, from the tracker at `url`.
///
/// `Ok(None)`: not an answer to us (another transaction id, or too short to carry one);
/// keep waiting. An error reply becomes [`TrackerError::Failure`] with the tracker's text, an
/// undecodable reply [`TrackerError::Malformed`].
pub fn check_reply(
    url: &str,
    datagram: &[u8],
    transaction_id: u32,
    ipv6: bool,
) -> Result<Option<Response>, TrackerError> {
    if datagram.get(4..8) != Some(&transaction_id.to_be_bytes()[..]) {
        return Ok(None);
    }
    match Response::decode(datagram, ipv6) {
        Ok(Response::Error { message, .. }) => Err(TrackerError::Failure {
            url: url.to_string(),
            reason: message,
        }),
        Ok(response) => Ok(Some(response)),
        Err(reason) => Err(TrackerError::Malformed {
            url: url.to_string(),
            reason,
        }),
    }
}

/// The retransmission timeout after `n` earlier timeouts: 15 × 2^n s, n capped at 8.
pub fn retransmit_timeout(n: u32) -> Duration {
    RETRANSMIT_BASE * (1 << n.min(MAX_RETRANSMIT_EXPONENT))
}

/// The `host:port` of a `udp://host:port[/path]` URL.
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // A port is required: after the last ':' that is not inside an IPv6 literal's brackets.
    let port = authority.rsplit_once(':')?.1;
    (!port.is_empty() && !port.contains(']')).then_some(authority)
}

/// What the client wants from one exchange.
#[derive(Debug, Clone)]
enum Want {
    Announce(AnnounceRequest),
    Scrape(Vec<[u8; 20]>),
}

/// What the client keeps per tracker address.
#[derive(Debug)]
struct Connection {
    /// Connected to the tracker's address. Kept, because a tracker may tie the connection id
    /// to our source address.
    socket: UdpSocket,
    /// The connection id and when it was obtained.
    id: Option<(u64, Instant)>,
}

/// A UDP tracker client; see the module docs. One per session (its `key` identifies us).
#[derive(Debug)]
pub struct Client {
    random: Rng,
    key: u32,
    /// Sockets and connection ids by tracker address.
    connections: HashMap<SocketAddr, Connection>,
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

impl Client {
    /// A client with a fresh random `key` and no connection ids.
    pub fn new() -> Client {
        let mut random = Rng::from_entropy();
        let key = random.next_u32();
        Client {
            random,
            key,
            connections: HashMap::new(),
        }
    }

    /// Announces `req` to the UDP tracker at `url` (`udp://host:port[/path]`).
    ///
    /// The host's addresses (IPv4 and IPv6, as the resolver orders them) are tried in turn,
    /// each with a fair share of the time left; each retransmits on the BEP 15 schedule
    /// ([`retransmit_timeout`]) until `deadline`. `interrupted` is asked every 100 ms while
    /// waiting; when it says true the announce ends with [`TrackerError::Interrupted`].
    /// Name resolution itself is not bounded by `deadline`.
    pub fn announce(
        &mut self,
        url: &str,
        req: &AnnounceRequest,
        deadline: Instant,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<AnnounceResponse, TrackerError> {
        match self.exchange(url, &Want::Announce(req.clone()), deadline, interrupted)? {
            Response::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            } => Ok(AnnounceResponse {
                interval: Duration::from_secs(u64::from(interval)),
                min_interval: None,
                peers,
                warning: None,
                complete: Some(u64::from(seeders)),
                incomplete: Some(u64::from(leechers)),
            }),
            other => Err(unexpected(url, &other)),
        }
    }

    /// Scrapes up to [`MAX_SCRAPE_HASHES`] torrents from the UDP tracker at `url`; the counts
    /// come back in the order of `info_hashes`. Same addresses, schedule and deadline as
    /// [`Client::announce`].
    pub fn scrape(
        &mut self,
        url: &str,
        info_hashes: &[[u8; 20]],
        deadline: Instant,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<Vec<ScrapeCounts>, TrackerError> {
        let hashes: Vec<[u8; 20]> = info_hashes
            .iter()
            .take(MAX_SCRAPE_HASHES)
            .copied()
            .collect();
        let wanted = hashes.len();
        match self.exchange(url, &Want::Scrape(hashes), deadline, interrupted)? {
            Response::Scrape { counts, .. } if counts.len() == wanted => Ok(counts),
            Response::Scrape { counts, .. } => Err(TrackerError::Malformed {
                url: url.to_string(),
                reason: format!("{} scrape entries for {wanted} torrents", counts.len()),
            }),
            other => Err(unexpected(url, &other)),
        }
    }

    /// Resolves `url` and runs the exchange against each address in turn until one answers.
    fn exchange(
        &mut self,
        url: &str,
        want: &Want,
        deadline: Instant,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<Response, TrackerError> {
        let transport = |reason: String| TrackerError::Transport {
            url: url.to_string(),
            reason,
        };
        let authority =
            authority(url).ok_or_else(|| transport("bad URL: expected udp://host:port".into()))?;
        let addrs: Vec<SocketAddr> = authority
            .to_socket_addrs()
            .map_err(|error| transport(format!("cannot resolve {authority}: {error}")))?
            .collect();
        let mut last_error = transport(format!("{authority} has no address"));
        for (i, addr) in addrs.iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let share = left / u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
            match self.exchange_with(url, *addr, want, Instant::now() + share, interrupted) {
                Ok(response) => return Ok(response),
                Err(error @ (TrackerError::Failure { .. } | TrackerError::Interrupted { .. })) => {
                    return Err(error)
                }
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    /// Connect (unless a connection id for `addr` is fresh) and send the request, retransmitting
    /// on the BEP 15 schedule until `deadline`.
    fn exchange_with(
        &mut self,
        url: &str,
        addr: SocketAddr,
        want: &Want,
        deadline: Instant,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<Response, TrackerError> {
        let io_error = |what: &str, error: io::Error| TrackerError::Transport {
            url: url.to_string(),
            reason: format!("{what} {addr}: {error}"),
        };
        if let Entry::Vacant(slot) = self.connections.entry(addr) {
            let local: SocketAddr = if addr.is_ipv6() {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            };
            let socket =
                UdpSocket::bind(local).map_err(|e| io_error("cannot bind a socket for", e))?;
            // A connected socket only hears from the tracker, and hears ICMP "port
            // unreachable" as a refused receive, so a closed port fails at once.
            socket
                .connect(addr)
                .map_err(|e| io_error("cannot reach", e))?;
            slot.insert(Connection { socket, id: None });
        }
        let result = self.transact(url, addr, want, deadline, interrupted);
        if result.is_err() {
            // Start afresh next time: a new socket, a new connection id.
            self.connections.remove(&addr);
        }
        result
    }

    /// The exchange proper, on the socket kept for `addr`.
    fn transact(
        &mut self,
        url: &str,
        addr: SocketAddr,
        want: &Want,
        deadline: Instant,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<Response, TrackerError> {
        let io_error = |what: &str, error: io::Error| TrackerError::Transport {
            url: url.to_string(),
            reason: format!("{what} {addr}: {error}"),
        };
        let started = Instant::now();
        let mut timeouts = 0u32;
        // A cached id the tracker refuses (it may have restarted) earns one fresh connect.
        let mut may_reconnect = true;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let now = Instant::now();
            let connection = self
                .connections
                .get_mut(&addr)
                .ok_or_else(|| io_error("no socket for", io::ErrorKind::NotFound.into()))?;
            let connection_id = connection
                .id
                .filter(|(_, at)| now.saturating_duration_since(*at) < CONNECTION_ID_LIFETIME)
                .map(|(id, _)| id);
            let socket = &connection.socket;
            let transaction_id = self.random.next_u32();
            let request = match (connection_id, want) {
                (None, _) => Request::Connect { transaction_id },
                (Some(connection_id), Want::Announce(request)) => Request::Announce {
                    connection_id,
                    transaction_id,
                    request: request.clone(),
                    key: self.key,
                },
                (Some(connection_id), Want::Scrape(info_hashes)) => Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes: info_hashes.clone(),
                },
            };
            socket
                .send(&request.encode())
                .map_err(|e| io_error("cannot send to", e))?;
            let wait_until = deadline.min(now + retransmit_timeout(timeouts));
            let heard = loop {
                let left = wait_until.saturating_duration_since(Instant::now());
                if interrupted() {
                    return Err(TrackerError::Interrupted {
                        url: url.to_string(),
                    });
                }
                if left.is_zero() {
                    break Heard::Nothing;
                }
                socket
                    .set_read_timeout(Some(left.min(POLL)))
                    .map_err(|e| io_error("cannot wait for", e))?;
                match socket.recv(&mut buf) {
                    Ok(n) => match check_reply(url, &buf[..n], transaction_id, addr.is_ipv6()) {
                        Ok(Some(reply)) => break Heard::Reply(reply),
                        Ok(None) => {}
                        Err(TrackerError::Failure { .. })
                            if may_reconnect && connection_id.is_some() =>
                        {
                            break Heard::RefusedId
                        }
                        Err(error) => return Err(error),
                    },
                    Err(error)
                        if (crate::net::is_timeout(&error)
                            || error.kind() == io::ErrorKind::Interrupted) => {}
                    Err(error) => return Err(io_error("no answer from", error)),
                }
            };
            match heard {
                Heard::Reply(Response::Connect { connection_id, .. })
                    if matches!(request, Request::Connect { .. }) =>
                {
                    connection.id = Some((connection_id, Instant::now()));
                    timeouts = 0;
                }
                Heard::Reply(reply) if !matches!(request, Request::Connect { .. }) => {
                    return Ok(reply)
                }
                Heard::Reply(other) => return Err(unexpected(url, &other)),
                Heard::RefusedId => {
                    log::debug!("{url}: cached connection id refused, connecting again");
                    may_reconnect = false;
                    connection.id = None;
                }
                Heard::Nothing if Instant::now() >= deadline => {
                    return Err(TrackerError::Transport {
                        url: url.to_string(),
                        reason: format!(
                            "no reply from {addr} within {:.1} s",
                            started.elapsed().as_secs_f64()
                        ),
                    })
                }
                Heard::Nothing => {
                    // The tracker may have restarted and forgotten our id: get a new one.
                    connection.id = None;
                    timeouts += 1;
                }
            }
        }
    }
}

/// What one wait for a reply brought.
enum Heard {
    /// The reply to our request.
    Reply(Response),
    /// An error reply to a request that used a cached connection id.
    RefusedId,
    /// Nothing before the retransmission timeout.
    Nothing,
}

/// A reply of the wrong kind for the request.
fn unexpected(url: &str, reply: &Response) -> TrackerError {
    let kind = match reply {
        Response::Connect { .. } => "connect",
        Response::Announce { .. } => "announce",
        Response::Scrape { .. } => "scrape",
        Response::Error { .. } => "error",
    };
    TrackerError::Malformed {
        url: url.to_string(),
        reason: format!("unexpected {kind} reply"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "udp://t.example:1337/announce";

    fn request() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: [0xAB; 20],
            peer_id: *b"-ST0001-abcdefghijkl",
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Some(AnnounceEvent::Started),
            numwant: 50,
        }
    }

    #[test]
    fn requests_round_trip() {
        let requests = [
            Request::Connect {
                transaction_id: 0xDEAD_BEEF,
            },
            Request::Announce {
                connection_id: 0x0102_0304_0506_0708,
                transaction_id: 7,
                request: request(),
                key: 0x1234_5678,
            },
            Request::Announce {
                connection_id: 1,
                transaction_id: 8,
                request: AnnounceRequest {
                    event: None,
                    numwant: 0,
                    ..request()
                },
                key: 9,
            },
            Request::Scrape {
                connection_id: 5,
                transaction_id: 6,
                info_hashes: vec![[1; 20], [2; 20]],
            },
        ];
        for original in requests {
            let bytes = original.encode();
            assert_eq!(Request::decode(&bytes), Ok(original.clone()));
        }
    }

    #[test]
    fn announce_request_layout_matches_bep_15() {
        let bytes = Request::Announce {
            connection_id: 0x1122_3344_5566_7788,
            transaction_id: 0xA0B0_C0D0,
            request: request(),
            key: 0xCAFE_F00D,
        }
        .encode();
        assert_eq!(bytes.len(), 98);
        assert_eq!(bytes[..8], 0x1122_3344_5566_7788u64.to_be_bytes());
        assert_eq!(bytes[8..12], [0, 0, 0, 1]);
        assert_eq!(bytes[12..16], [0xA0, 0xB0, 0xC0, 0xD0]);
        assert_eq!(bytes[16..36], [0xAB; 20]);
        assert_eq!(&bytes[36..56], b"-ST0001-abcdefghijkl");
        assert_eq!(bytes[56..64], 2u64.to_be_bytes()); // downloaded
        assert_eq!(bytes[64..72], 3u64.to_be_bytes()); // left
        assert_eq!(bytes[72..80], 1u64.to_be_bytes()); // uploaded
        assert_eq!(bytes[80..84], 2u32.to_be_bytes()); // started
        assert_eq!(bytes[84..88], [0; 4]); // ip
        assert_eq!(bytes[88..92], [0xCA, 0xFE, 0xF0, 0x0D]);
        assert_eq!(bytes[92..96], 50i32.to_be_bytes());
        assert_eq!(bytes[96..98], 6881u16.to_be_bytes());
        let connect = Request::Connect { transaction_id: 1 }.encode();
        assert_eq!(connect[..8], [0, 0, 4, 0x17, 0x27, 0x10, 0x19, 0x80]);
    }

    #[test]
    fn negative_numwant_means_the_default() {
        let mut bytes = Request::Announce {
            connection_id: 1,
            transaction_id: 2,
            request: request(),
            key: 3,
        }
        .encode();
        bytes[92..96].copy_from_slice(&(-1i32).to_be_bytes());
        match Request::decode(&bytes) {
            Ok(Request::Announce { request, .. }) => assert_eq!(request.numwant, NUMWANT),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn responses_round_trip_ipv4_and_ipv6() {
        let v4 = Response::Announce {
            transaction_id: 3,
            interval: 1800,
            leechers: 4,
            seeders: 5,
            peers: vec![
                "10.0.0.1:6881".parse().unwrap(),
                "127.0.0.1:1".parse().unwrap(),
            ],
        };
        assert_eq!(v4.encode().len(), 20 + 12);
        assert_eq!(Response::decode(&v4.encode(), false), Ok(v4));
        let v6 = Response::Announce {
            transaction_id: 3,
            interval: 60,
            leechers: 0,
            seeders: 1,
            peers: vec!["[2001:db8::1]:51413".parse().unwrap()],
        };
        assert_eq!(v6.encode().len(), 20 + 18);
        assert_eq!(Response::decode(&v6.encode(), true), Ok(v6));
        for other in [
            Response::Connect {
                transaction_id: 1,
                connection_id: u64::MAX,
            },
            Response::Scrape {
                transaction_id: 2,
                counts: vec![ScrapeCounts {
                    seeders: 1,
                    completed: 2,
                    leechers: 3,
                }],
            },
            Response::Error {
                transaction_id: 4,
                message: "unregistered torrent".to_string(),
            },
        ] {
            assert_eq!(Response::decode(&other.encode(), false), Ok(other));
        }
    }

    #[test]
    fn port_zero_and_mapped_peers_are_normalised() {
        let bytes = Response::Announce {
            transaction_id: 1,
            interval: 60,
            leechers: 0,
            seeders: 0,
            peers: vec![
                "[::ffff:10.0.0.9]:80".parse().unwrap(),
                "[::1]:0".parse().unwrap(),
            ],
        }
        .encode();
        match Response::decode(&bytes, true) {
            Ok(Response::Announce { peers, .. }) => {
                assert_eq!(peers, vec!["10.0.0.9:80".parse::<SocketAddr>().unwrap()])
            }
            other => panic!("{other:?}"),
        }
        // One IPv4 record read as if it came over IPv6 does not fit.
        let v4 = Response::Announce {
            transaction_id: 1,
            interval: 60,
            leechers: 0,
            seeders: 0,
            peers: vec!["10.0.0.1:1".parse().unwrap()],
        };
        assert!(Response::decode(&v4.encode(), true).is_err());
    }

    #[test]
    fn wrong_transaction_id_is_ignored() {
        let reply = Response::Connect {
            transaction_id: 41,
            connection_id: 9,
        }
        .encode();
        assert_eq!(check_reply(URL, &reply, 42, false), Ok(None));
        assert_eq!(check_reply(URL, &reply[..6], 41, false), Ok(None));
        assert_eq!(
            check_reply(URL, &reply, 41, false),
            Ok(Some(Response::Connect {
                transaction_id: 41,
                connection_id: 9
            }))
        );
        let error = Response::Error {
            transaction_id: 41,
            message: "nope".into(),
        };
        assert_eq!(check_reply(URL, &error.encode(), 40, false), Ok(None));
    }

    #[test]
    fn truncated_replies_are_malformed() {
        let connect = Response::Connect {
            transaction_id: 7,
            connection_id: 1,
        }
        .encode();
        let announce = Response::Announce {
            transaction_id: 7,
            interval: 60,
            leechers: 1,
            seeders: 1,
            peers: vec!["10.0.0.1:6881".parse().unwrap()],
        }
        .encode();
        let scrape = Response::Scrape {
            transaction_id: 7,
            counts: vec![ScrapeCounts::default()],
        }
        .encode();
        let cases: [&[u8]; 5] = [
            &connect[..15],
            &announce[..19],
            &announce[..announce.len() - 1],
            &scrape[..scrape.len() - 4],
            &[0, 0, 0, 9, 0, 0, 0, 7],
        ];
        for datagram in cases {
            match check_reply(URL, datagram, 7, false) {
                Err(TrackerError::Malformed { url, reason }) => {
                    assert_eq!(url, URL);
                    assert!(!reason.is_empty());
                }
                other => panic!("{datagram:?} gave {other:?}"),
            }
        }
        assert!(Request::decode(&[0; 15]).is_err());
        assert!(Request::decode(&Request::Connect { transaction_id: 1 }.encode()[..15]).is_err());
    }

    #[test]
    fn error_reply_is_shown_with_the_trackers_text() {
        let error = Response::Error {
            transaction_id: 5,
            message: "torrent not registered\n".to_string(),
        };
        let result = check_reply(URL, &error.encode(), 5, false);
        let Err(error) = result else {
            panic!("expected an error, got {result:?}");
        };
        assert!(matches!(error, TrackerError::Failure { .. }));
        let text = error.to_string();
        assert!(text.contains("torrent not registered"), "{text}");
        assert!(text.contains(URL) && !text.contains('\n'), "{text}");
    }

    #[test]
    fn retransmit_schedule_doubles_up_to_3840_s() {
        assert_eq!(retransmit_timeout(0), Duration::from_secs(15));
        assert_eq!(retransmit_timeout(1), Duration::from_secs(30));
        assert_eq!(retransmit_timeout(8), Duration::from_secs(3840));
        assert_eq!(retransmit_timeout(20), Duration::from_secs(3840));
    }

    #[test]
    fn urls_need_a_port() {
        assert_eq!(
            authority("udp://t.example:1337/announce"),
            Some("t.example:1337")
        );
        assert_eq!(authority("udp://[::1]:6969"), Some("[::1]:6969"));
        assert_eq!(authority("udp://t.example/announce"), None);
        assert_eq!(authority("udp://[::1]/announce"), None);
        assert_eq!(authority("udp://t.example:/x"), None);
    }

    #[test]
    fn silent_tracker_costs_the_deadline_and_refused_port_fails_fast() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let url = format!("udp://{}/announce", silent.local_addr().unwrap());
        let mut client = Client::new();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(600);
        let error = client
            .announce(&url, &request(), deadline, &mut || false)
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(error, TrackerError::Transport { .. }), "{error:?}");
        assert!(
            elapsed >= Duration::from_millis(550) && elapsed < Duration::from_secs(3),
            "{elapsed:?}"
        );
        // The connect request did reach the silent tracker.
        let mut buf = [0u8; 64];
        silent
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let n = silent.recv(&mut buf).unwrap();
        assert!(matches!(
            Request::decode(&buf[..n]),
            Ok(Request::Connect { .. })
        ));

        let closed = format!("udp://127.0.0.1:{}", silent.local_addr().unwrap().port());
        drop(silent);
        let started = Instant::now();
        let error = client
            .announce(
                &closed,
                &request(),
                started + Duration::from_secs(10),
                &mut || false,
            )
            .unwrap_err();
        assert!(matches!(error, TrackerError::Transport { .. }), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{error}");
    }

    #[test]
    fn interruption_ends_the_wait() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let url = format!("udp://{}", silent.local_addr().unwrap());
        let started = Instant::now();
        let mut polls = 0;
        let error = Client::new()
            .announce(
                &url,
                &request(),
                started + Duration::from_secs(30),
                &mut || {
                    polls += 1;
                    polls > 3
                },
            )
            .unwrap_err();
        assert!(
            matches!(error, TrackerError::Interrupted { .. }),
            "{error:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn transaction_ids_and_keys_differ() {
        let a = Client::new();
        let b = Client::new();
        let mut random = Rng::from_entropy();
        let ids: std::collections::HashSet<u32> = (0..100).map(|_| random.next_u32()).collect();
        assert!(ids.len() > 95, "{}", ids.len());
        // Two sessions' keys are equal with probability 2^-32.
        assert_ne!(a.key, b.key);
    }

    #[test]
    fn connection_ids_are_reused_and_a_refused_one_is_renewed() {
        // A scripted tracker: ids 1, 2, ... per connect; only the newest id is accepted
        // after `forget` announces (as if it had restarted).
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let url = format!("udp://{}", server.local_addr().unwrap());
        let script = std::thread::spawn(move || {
            server
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut seen = Vec::new();
            let mut newest = 0u64;
            let mut buf = [0u8; 256];
            while let Ok((n, from)) = server.recv_from(&mut buf) {
                let request = Request::decode(&buf[..n]).unwrap();
                let transaction_id = request.transaction_id();
                let reply = match request {
                    Request::Connect { .. } => {
                        newest += 1;
                        seen.push("connect".to_string());
                        Response::Connect {
                            transaction_id,
                            connection_id: newest,
                        }
                    }
                    Request::Announce { connection_id, .. } => {
                        seen.push(format!("announce {connection_id}"));
                        // The third request forgets id 1.
                        if connection_id == newest && seen.len() != 3 {
                            Response::Announce {
                                transaction_id,
                                interval: 60,
                                leechers: 0,
                                seeders: 0,
                                peers: vec![],
                            }
                        } else {
                            Response::Error {
                                transaction_id,
                                message: "bad connection id".into(),
                            }
                        }
                    }
                    Request::Scrape { .. } => panic!("no scrape expected"),
                };
                server.send_to(&reply.encode(), from).unwrap();
                if seen.len() == 5 {
                    break;
                }
            }
            seen
        });
        let mut client = Client::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        for _ in 0..2 {
            let reply = client.announce(&url, &request(), deadline, &mut || false);
            assert!(reply.is_ok(), "{reply:?}");
        }
        let seen = script.join().unwrap();
        assert_eq!(
            seen,
            [
                "connect",
                "announce 1",
                "announce 1",
                "connect",
                "announce 2"
            ]
        );
    }
}
