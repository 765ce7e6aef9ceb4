//! The UDP tracker protocol's datagrams (BEP 15): [`Request`] and [`Response`], encoded and
//! decoded. Pure functions on byte slices, run by whichever thread holds a datagram: the
//! client ([`super::udp`]) on the tracker thread, and the built-in tracker's UDP thread
//! (`crate::tracker_server`). Owns nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{AnnounceEvent, AnnounceRequest, Announcer, NUMWANT};
use crate::messages::Totals;

/// The magic constant that opens every connect request.
pub(crate) const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Largest datagram read; enough for an announce reply with 200 IPv6 peers, or a scrape
/// reply for the 74 torrents a request can hold.
pub const MAX_DATAGRAM: usize = 8 * 1024;
/// Most info hashes in one scrape request (BEP 15 limits a request to about 74).
pub(crate) const MAX_SCRAPE_HASHES: usize = 74;

pub(crate) const ACTION_CONNECT: u32 = 0;
pub(crate) const ACTION_ANNOUNCE: u32 = 1;
pub(crate) const ACTION_SCRAPE: u32 = 2;
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

/// Builds a datagram from big-endian integers and raw bytes, in order: the counterpart of
/// [`Reader`].
struct Writer(Vec<u8>);

impl Writer {
    fn bytes(&mut self, bytes: &[u8]) -> &mut Writer {
        self.0.extend_from_slice(bytes);
        self
    }

    fn u16(&mut self, n: u16) -> &mut Writer {
        self.bytes(&n.to_be_bytes())
    }

    fn u32(&mut self, n: u32) -> &mut Writer {
        self.bytes(&n.to_be_bytes())
    }

    fn u64(&mut self, n: u64) -> &mut Writer {
        self.bytes(&n.to_be_bytes())
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
        let mut out = Writer(Vec::with_capacity(98));
        match self {
            Request::Connect { transaction_id } => {
                out.u64(PROTOCOL_ID)
                    .u32(ACTION_CONNECT)
                    .u32(*transaction_id);
            }
            Request::Announce {
                connection_id,
                transaction_id,
                request,
                key,
            } => {
                let numwant = i32::try_from(request.numwant).unwrap_or(i32::MAX);
                out.u64(*connection_id)
                    .u32(ACTION_ANNOUNCE)
                    .u32(*transaction_id)
                    .bytes(&request.announcer.info_hash)
                    .bytes(&request.announcer.peer_id)
                    .u64(request.totals.downloaded)
                    .u64(request.totals.left)
                    .u64(request.totals.uploaded)
                    .u32(event_code(request.event))
                    .u32(0) // ip: the tracker uses the source address
                    .u32(*key)
                    .bytes(&numwant.to_be_bytes())
                    .u16(request.announcer.port);
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                out.u64(*connection_id)
                    .u32(ACTION_SCRAPE)
                    .u32(*transaction_id)
                    .bytes(info_hashes.as_flattened());
            }
        }
        out.0
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
                        announcer: Announcer {
                            info_hash,
                            peer_id,
                            port,
                            local: None,
                            encryption: crate::peer::mse::Encryption::Off,
                        },
                        totals: Totals {
                            uploaded,
                            downloaded,
                            left,
                        },
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
        let mut out = Writer(Vec::with_capacity(20));
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                out.u32(ACTION_CONNECT)
                    .u32(*transaction_id)
                    .u64(*connection_id);
            }
            Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                out.u32(ACTION_ANNOUNCE)
                    .u32(*transaction_id)
                    .u32(*interval)
                    .u32(*leechers)
                    .u32(*seeders);
                for peer in peers {
                    match peer.ip() {
                        IpAddr::V4(ip) => out.bytes(&ip.octets()),
                        IpAddr::V6(ip) => out.bytes(&ip.octets()),
                    }
                    .u16(peer.port());
                }
            }
            Response::Scrape {
                transaction_id,
                counts,
            } => {
                out.u32(ACTION_SCRAPE).u32(*transaction_id);
                for c in counts {
                    out.u32(c.seeders).u32(c.completed).u32(c.leechers);
                }
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                out.u32(ACTION_ERROR)
                    .u32(*transaction_id)
                    .bytes(message.as_bytes());
            }
        }
        out.0
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An announce with every field set, for codec and client tests.
    /// The client the codec and client tests announce as.
    pub(crate) fn announcer() -> Announcer {
        Announcer {
            info_hash: [0xAB; 20],
            peer_id: *b"-ST0001-abcdefghijkl",
            port: 6881,
            local: None,
            encryption: crate::peer::mse::Encryption::Off,
        }
    }

    pub(crate) fn request() -> AnnounceRequest {
        AnnounceRequest {
            announcer: announcer(),
            totals: Totals {
                uploaded: 1,
                downloaded: 2,
                left: 3,
            },
            event: Some(AnnounceEvent::Started),
            numwant: 50,
        }
    }

    /// An announce reply to `transaction_id` listing `peers`, its counts all different, for
    /// codec and client tests.
    pub(crate) fn announce_reply(transaction_id: u32, peers: &[&str]) -> Response {
        Response::Announce {
            transaction_id,
            interval: 1800,
            leechers: 4,
            seeders: 5,
            peers: peers.iter().map(|peer| peer.parse().unwrap()).collect(),
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
        let v4 = announce_reply(3, &["10.0.0.1:6881", "127.0.0.1:1"]);
        assert_eq!(v4.encode().len(), 20 + 12);
        assert_eq!(Response::decode(&v4.encode(), false), Ok(v4));
        let v6 = announce_reply(3, &["[2001:db8::1]:51413"]);
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
        let bytes = announce_reply(1, &["[::ffff:10.0.0.9]:80", "[::1]:0"]).encode();
        match Response::decode(&bytes, true) {
            Ok(Response::Announce { peers, .. }) => {
                assert_eq!(peers, vec!["10.0.0.9:80".parse::<SocketAddr>().unwrap()])
            }
            other => panic!("{other:?}"),
        }
        // One IPv4 record read as if it came over IPv6 does not fit.
        let v4 = announce_reply(1, &["10.0.0.1:1"]);
        assert!(Response::decode(&v4.encode(), true).is_err());
    }
}
