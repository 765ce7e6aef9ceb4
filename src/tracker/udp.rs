//! The UDP tracker client (BEP 15), speaking the datagrams of [`super::udp_wire`].
//!
//! The client, [`Client`], runs on whichever thread calls it (normally the
//! tracker thread) and blocks until a reply, its deadline or an interruption. It owns the
//! session's announce `key`, its transaction-id source and the connection ids it obtained,
//! reused for up to [`CONNECTION_ID_LIFETIME`] per tracker address.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use super::udp_wire::{Request, Response, ScrapeCounts, MAX_DATAGRAM, MAX_SCRAPE_HASHES};
use super::{AnnounceRequest, AnnounceResponse, SwarmCounts, TrackerError, Until};
use crate::rng::Rng;

/// How long a client may use a connection id (BEP 15: one minute).
pub(crate) const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);
/// The first retransmission timeout; the n-th waits `RETRANSMIT_BASE × 2^n`.
pub(crate) const RETRANSMIT_BASE: Duration = Duration::from_secs(15);
/// The largest `n` in the retransmission schedule (15 × 2^8 = 3840 s).
pub(crate) const MAX_RETRANSMIT_EXPONENT: u32 = 8;
/// How often a waiting client asks whether it has been interrupted.
const POLL: Duration = Duration::from_millis(100);

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
pub(crate) fn retransmit_timeout(n: u32) -> Duration {
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
    /// each with a fair share of the time `until` leaves; each retransmits on the BEP 15
    /// schedule ([`retransmit_timeout`]) until its share is spent. Name resolution itself is
    /// not bounded by `until`.
    pub fn announce(
        &mut self,
        url: &str,
        req: &AnnounceRequest,
        until: Until,
    ) -> Result<AnnounceResponse, TrackerError> {
        match self.exchange(url, &Want::Announce(req.clone()), until)? {
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
                requires_crypto: Vec::new(),
                warning: None,
                counts: SwarmCounts {
                    complete: Some(u64::from(seeders)),
                    incomplete: Some(u64::from(leechers)),
                },
            }),
            other => Err(unexpected(url, &other)),
        }
    }

    /// Scrapes up to [`MAX_SCRAPE_HASHES`] torrents from the UDP tracker at `url`; the counts
    /// come back in the order of `info_hashes`. Same addresses, schedule and wait as
    /// [`Client::announce`].
    pub fn scrape(
        &mut self,
        url: &str,
        info_hashes: &[[u8; 20]],
        until: Until,
    ) -> Result<Vec<ScrapeCounts>, TrackerError> {
        let hashes: Vec<[u8; 20]> = info_hashes
            .iter()
            .take(MAX_SCRAPE_HASHES)
            .copied()
            .collect();
        let wanted = hashes.len();
        match self.exchange(url, &Want::Scrape(hashes), until)? {
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
        mut until: Until,
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
            let left = until.deadline().saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let share = left / u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
            let attempt = Attempt {
                url,
                addr: *addr,
                want,
            };
            match self.exchange_with(attempt, until.sooner(Instant::now() + share)) {
                Ok(response) => return Ok(response),
                Err(error @ (TrackerError::Failure { .. } | TrackerError::Interrupted { .. })) => {
                    return Err(error)
                }
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    /// Connect (unless a connection id for the attempt's address is fresh) and send the
    /// request, retransmitting on the BEP 15 schedule as long as `until` allows.
    fn exchange_with(&mut self, attempt: Attempt, until: Until) -> Result<Response, TrackerError> {
        let addr = attempt.addr;
        if let Entry::Vacant(slot) = self.connections.entry(addr) {
            let local = match attempt.want {
                Want::Announce(req) => req.announcer.local,
                Want::Scrape(_) => None,
            };
            let socket = crate::net::udp_socket(&addr, local)
                .map_err(|e| attempt.io_error("cannot bind a socket for", e))?;
            // A connected socket only hears from the tracker, and hears ICMP "port
            // unreachable" as a refused receive, so a closed port fails at once.
            socket
                .connect(addr)
                .map_err(|e| attempt.io_error("cannot reach", e))?;
            slot.insert(Connection { socket, id: None });
        }
        let result = self.transact(attempt, until);
        if result.is_err() {
            // Start afresh next time: a new socket, a new connection id.
            self.connections.remove(&addr);
        }
        result
    }

    /// The exchange proper, on the socket kept for the attempt's address.
    fn transact(&mut self, attempt: Attempt, mut until: Until) -> Result<Response, TrackerError> {
        let Attempt { url, addr, want } = attempt;
        let deadline = until.deadline();
        let io_error = |what: &str, error: io::Error| attempt.io_error(what, error);
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
                if until.interrupted() {
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

/// One exchange with one of a tracker's addresses: what to ask, and where.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    /// The tracker's URL, as errors name it.
    url: &'a str,
    /// The address of the tracker's host being tried.
    addr: SocketAddr,
    want: &'a Want,
}

impl Attempt<'_> {
    /// A socket error on the way to the tracker, as one line naming the URL and the address.
    fn io_error(&self, what: &str, error: io::Error) -> TrackerError {
        TrackerError::Transport {
            url: self.url.to_string(),
            reason: format!("{what} {}: {error}", self.addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::udp_wire::tests::{announce_reply, request};

    const URL: &str = "udp://t.example:1337/announce";

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
        let announce = announce_reply(7, &["10.0.0.1:6881"]).encode();
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
            .announce(&url, &request(), Until::at(deadline))
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
                Until::at(started + Duration::from_secs(10)),
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
        let interrupted = &mut || {
            polls += 1;
            polls > 3
        };
        let until = Until::at(started + Duration::from_secs(30)).or_when(interrupted);
        let error = Client::new().announce(&url, &request(), until).unwrap_err();
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
                            announce_reply(transaction_id, &[])
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
            let reply = client.announce(&url, &request(), Until::at(deadline));
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
