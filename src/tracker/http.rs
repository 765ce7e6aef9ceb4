//! HTTP(S) tracker announces (BEP 3, BEP 23 compact peers, BEP 7 `peers6`).
//!
//! Runs on whichever thread calls it (normally the tracker thread) and blocks for at most
//! about the timeout it is given. It owns nothing between calls: each announce sends one GET
//! (`http://` through [`super::http_get`], `https://` through a `ureq` agent of its own) and
//! parses the bencoded reply.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::bencode::{self, Value};

use super::http_get::GetError;
use super::{AnnounceRequest, AnnounceResponse, SwarmCounts, TrackerError};
use crate::peer::mse::Encryption;

/// Largest reply body accepted, in bytes.
pub const MAX_BODY: usize = 2 * 1024 * 1024;
/// Re-announce interval assumed when a reply has no `interval` (BEP 3 requires one; some
/// trackers omit it).
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// Announces `req` to the HTTP(S) tracker at `url`; the whole exchange is bounded by `timeout`.
///
/// `http://` goes through our own small GET ([`super::http_get`]), which binds to
/// `req.announcer.local`; `https://` through ureq 2, which cannot bind, so it is refused when
/// `req.announcer.local` names an address rather than sent from another one.
pub fn announce(
    url: &str,
    req: &AnnounceRequest,
    timeout: Duration,
) -> Result<AnnounceResponse, TrackerError> {
    let full = announce_url(url, req);
    let body = if url.len() > 7 && url[..7].eq_ignore_ascii_case("http://") {
        super::http_get::get(&full, req.announcer.local, timeout, MAX_BODY).map_err(
            |e| match e {
                GetError::Transport(reason) => TrackerError::Transport {
                    url: url.to_string(),
                    reason,
                },
                GetError::Status(status) => TrackerError::Status {
                    url: url.to_string(),
                    status,
                },
                GetError::TooLarge => TrackerError::TooLarge {
                    url: url.to_string(),
                    limit: MAX_BODY,
                },
            },
        )?
    } else if let Some(local) = req.announcer.local {
        return Err(TrackerError::Transport {
            url: url.to_string(),
            reason: format!(
                "an https:// announce cannot be sent from --bind {local} (its HTTP library \
                 cannot bind); use the tracker's http:// or udp:// URL"
            ),
        });
    } else {
        get_https(url, &full, timeout)?
    };
    parse_response(url, &body)
}

/// A GET through ureq 2, for `https://` trackers.
fn get_https(url: &str, full: &str, timeout: Duration) -> Result<Vec<u8>, TrackerError> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout_read(timeout)
        .timeout_write(timeout)
        .timeout(timeout)
        .user_agent(concat!("strand/", env!("CARGO_PKG_VERSION")))
        .build();
    let response = agent.get(full).call().map_err(|error| match error {
        ureq::Error::Status(status, _) => TrackerError::Status {
            url: url.to_string(),
            status,
        },
        ureq::Error::Transport(transport) => TrackerError::Transport {
            url: url.to_string(),
            reason: describe_transport(&transport),
        },
    })?;
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|error| TrackerError::Transport {
            url: url.to_string(),
            reason: format!("reading reply: {error}"),
        })?;
    if body.len() > MAX_BODY {
        return Err(TrackerError::TooLarge {
            url: url.to_string(),
            limit: MAX_BODY,
        });
    }
    Ok(body)
}

/// A transport error's kind, message and cause, without the request URL (which would repeat
/// the tracker URL and carry the query string).
fn describe_transport(transport: &ureq::Transport) -> String {
    // The innermost I/O error says it best ("connection refused"); ureq's own kind and
    // message often repeat each other ("Network Error: Network Error: ...").
    let mut source = std::error::Error::source(transport);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io_reason(io);
        }
        source = e.source();
    }
    let kind = transport.kind().to_string();
    match transport.message() {
        Some(message) if message.contains(&kind) => message.to_string(),
        Some(message) => format!("{}: {message}", kind.to_lowercase()),
        None => kind.to_lowercase(),
    }
}

/// A short reason for an I/O error, without the OS error number.
pub(super) fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timed out".into(),
        ErrorKind::ConnectionReset => "connection reset".into(),
        ErrorKind::ConnectionAborted => "connection aborted".into(),
        ErrorKind::UnexpectedEof => "connection closed before a reply".into(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(at) => text[..at].to_lowercase(),
                None => text,
            }
        }
    }
}

/// The full GET URL for announcing `req` to the tracker at `base`.
///
/// The binary `info_hash` and `peer_id` are percent-encoded here; any query or fragment
/// already in `base` is kept or dropped respectively.
pub fn announce_url(base: &str, req: &AnnounceRequest) -> String {
    let base = base.split('#').next().unwrap_or(base);
    let mut url = String::with_capacity(base.len() + 256);
    url.push_str(base);
    if !base.contains('?') {
        url.push('?');
    } else if !base.ends_with('?') && !base.ends_with('&') {
        url.push('&');
    }
    url.push_str("info_hash=");
    url.push_str(&percent_encode(&req.announcer.info_hash));
    url.push_str("&peer_id=");
    url.push_str(&percent_encode(&req.announcer.peer_id));
    url.push_str(&format!(
        "&port={}&uploaded={}&downloaded={}&left={}&compact=1&numwant={}",
        req.announcer.port,
        req.totals.uploaded,
        req.totals.downloaded,
        req.totals.left,
        req.numwant
    ));
    if let Some(event) = req.event {
        url.push_str("&event=");
        url.push_str(event.as_str());
    }
    match req.announcer.encryption {
        Encryption::Off => {}
        Encryption::Prefer => url.push_str("&supportcrypto=1"),
        Encryption::Require => url.push_str("&supportcrypto=1&requirecrypto=1"),
    }
    url
}

/// Percent-encodes every byte except the RFC 3986 unreserved characters `A-Za-z0-9-._~`.
pub(crate) fn percent_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// Parses a tracker's reply body; `url` only labels errors.
///
/// A `failure reason` becomes [`TrackerError::Failure`]. Peers may come as a compact string
/// (6 bytes each), a list of `ip`/`port` dictionaries (IP literals only; bad entries are
/// skipped) and/or a compact `peers6` string (18 bytes each); port 0 is skipped. A missing
/// `interval` means [`DEFAULT_INTERVAL`]; a missing `peers` means none.
pub fn parse_response(url: &str, body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let malformed = |reason: String| TrackerError::Malformed {
        url: url.to_string(),
        reason,
    };
    let root = bencode::decode(body).map_err(|error| malformed(format!("bencode: {error}")))?;
    if !matches!(root, Value::Dict(_)) {
        return Err(malformed("not a dictionary".to_string()));
    }
    if let Some(reason) = root.get(b"failure reason") {
        let reason = reason
            .as_bytes()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        return Err(TrackerError::Failure {
            url: url.to_string(),
            reason: reason.into_owned(),
        });
    }
    let interval = match root.get(b"interval") {
        None => DEFAULT_INTERVAL,
        Some(value) => value
            .as_int()
            .and_then(|n| u64::try_from(n).ok())
            .map(Duration::from_secs)
            .ok_or_else(|| malformed("interval is not a non-negative integer".to_string()))?,
    };
    let count = |key: &[u8]| {
        root.get(key)
            .and_then(Value::as_int)
            .and_then(|n| u64::try_from(n).ok())
    };
    let mut peers = Vec::new();
    match root.get(b"peers") {
        None => {}
        Some(Value::Bytes(compact)) => peers.extend(compact_peers(compact, 6).map_err(malformed)?),
        Some(Value::List(entries)) => peers.extend(entries.iter().filter_map(dict_peer)),
        Some(_) => {
            return Err(malformed(
                "peers is neither a string nor a list".to_string(),
            ))
        }
    }
    match root.get(b"peers6") {
        None => {}
        Some(Value::Bytes(compact)) => peers.extend(compact_peers(compact, 18).map_err(malformed)?),
        Some(_) => return Err(malformed("peers6 is not a string".to_string())),
    }
    let requires_crypto = match (root.get(b"peers"), root.get(b"crypto_flags")) {
        (Some(Value::Bytes(compact)), Some(Value::Bytes(flags))) => crypto_required(compact, flags),
        _ => Vec::new(),
    };
    Ok(AnnounceResponse {
        interval,
        min_interval: count(b"min interval").map(Duration::from_secs),
        peers,
        requires_crypto,
        warning: root
            .get(b"warning message")
            .and_then(Value::as_bytes)
            .map(|text| String::from_utf8_lossy(text).into_owned()),
        counts: SwarmCounts {
            complete: count(b"complete"),
            incomplete: count(b"incomplete"),
        },
    })
}

/// Splits a compact peer string into `entry`-byte records: a 4-byte (IPv4) or 16-byte (IPv6)
/// address followed by a big-endian port.
fn compact_peers(bytes: &[u8], entry: usize) -> Result<Vec<SocketAddr>, String> {
    if bytes.len() % entry != 0 {
        return Err(format!(
            "compact peers length {} is not a multiple of {entry}",
            bytes.len()
        ));
    }
    let peers = bytes.chunks_exact(entry).filter_map(|record| {
        let (ip, port) = record.split_at(entry - 2);
        let port = u16::from_be_bytes([port[0], port[1]]);
        let ip = match <[u8; 4]>::try_from(ip) {
            Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
            Err(_) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?)),
        };
        (port != 0).then_some(SocketAddr::new(ip, port))
    });
    Ok(peers.collect())
}

/// The compact IPv4 peers that `crypto_flags` marks as requiring encryption. Trackers that
/// know the Azureus extension (`supportcrypto`/`requirecrypto` in announces) send it with
/// one byte per entry of the compact `peers`: 1 for a peer that announced `requirecrypto=1`.
/// Flags of another length are ignored.
fn crypto_required(compact: &[u8], flags: &[u8]) -> Vec<SocketAddr> {
    if flags.len() * 6 != compact.len() {
        return Vec::new();
    }
    compact
        .chunks_exact(6)
        .zip(flags)
        .filter(|(_, &flag)| flag == 1)
        .filter_map(|(e, _)| {
            let port = u16::from_be_bytes([e[4], e[5]]);
            let ip = Ipv4Addr::new(e[0], e[1], e[2], e[3]);
            (port != 0).then_some(SocketAddr::new(IpAddr::V4(ip), port))
        })
        .collect()
}

/// One `{ip, port}` dictionary peer; `None` when it is unusable (hostnames are not resolved).
fn dict_peer(entry: &Value<'_>) -> Option<SocketAddr> {
    let ip: IpAddr = entry.get(b"ip")?.as_str()?.parse().ok()?;
    let port = u16::try_from(entry.get(b"port")?.as_int()?).ok()?;
    (port != 0).then_some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::testutil::{Reply, TestServer};
    use super::super::Announcer;
    use super::*;

    const URL: &str = "http://t.example/announce";

    /// The codec tests' announce, with an info hash that needs every kind of escaping.
    fn request() -> AnnounceRequest {
        let request = super::super::udp_wire::tests::request();
        AnnounceRequest {
            announcer: Announcer {
                info_hash: *b"\x00\x01 ~-._AZaz09%&=+/\xfe\xff",
                ..request.announcer
            },
            ..request
        }
    }

    fn percent_decode(text: &str) -> Vec<u8> {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    fn parse(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
        parse_response(URL, body)
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn percent_encoding_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let encoded = percent_encode(&all);
        assert!(encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        assert_eq!(percent_decode(&encoded), all);
        assert_eq!(percent_encode(b"aZ9-._~"), "aZ9-._~");
        assert_eq!(percent_encode(b" %\xff/"), "%20%25%FF%2F");
    }

    #[test]
    fn announce_url_has_every_parameter() {
        let url = announce_url(URL, &request());
        let (base, query) = url.split_once('?').unwrap();
        assert_eq!(base, URL);
        let params: Vec<(&str, &str)> = query
            .split('&')
            .map(|kv| kv.split_once('=').unwrap())
            .collect();
        let get = |key: &str| params.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        assert_eq!(
            percent_decode(get("info_hash").unwrap()),
            request().announcer.info_hash
        );
        assert_eq!(get("peer_id"), Some("-ST0001-abcdefghijkl"));
        assert_eq!(get("port"), Some("6881"));
        assert_eq!(get("uploaded"), Some("1"));
        assert_eq!(get("downloaded"), Some("2"));
        assert_eq!(get("left"), Some("3"));
        assert_eq!(get("compact"), Some("1"));
        assert_eq!(get("numwant"), Some("50"));
        assert_eq!(get("event"), Some("started"));

        let regular = AnnounceRequest {
            event: None,
            ..request()
        };
        assert!(!announce_url(URL, &regular).contains("event="));
    }

    #[test]
    fn announce_url_says_what_encryption_we_speak() {
        let with = |encryption| {
            announce_url(
                URL,
                &AnnounceRequest {
                    announcer: Announcer {
                        encryption,
                        ..request().announcer
                    },
                    ..request()
                },
            )
        };
        assert!(!with(Encryption::Off).contains("crypto"));
        assert!(with(Encryption::Prefer).ends_with("&supportcrypto=1"));
        assert!(with(Encryption::Require).ends_with("&supportcrypto=1&requirecrypto=1"));
    }

    #[test]
    fn crypto_flags_name_the_peers_that_require_encryption() {
        let mut body = b"d12:crypto_flags3:".to_vec();
        body.extend_from_slice(&[1, 0, 1]);
        body.extend_from_slice(b"5:peers18:");
        body.extend_from_slice(&[10, 0, 0, 1, 0, 80, 10, 0, 0, 2, 0, 81, 10, 0, 0, 3, 0, 0]);
        body.push(b'e');
        let reply = parse(&body).unwrap();
        assert_eq!(reply.peers, [addr("10.0.0.1:80"), addr("10.0.0.2:81")]);
        assert_eq!(
            reply.requires_crypto,
            [addr("10.0.0.1:80")],
            "port 0 is skipped"
        );
        // Flags that do not match the peers one for one are ignored.
        let mut short = b"d12:crypto_flags1:".to_vec();
        short.push(1);
        short.extend_from_slice(b"5:peers12:");
        short.extend_from_slice(&[10, 0, 0, 1, 0, 80, 10, 0, 0, 2, 0, 81]);
        short.push(b'e');
        assert!(parse(&short).unwrap().requires_crypto.is_empty());
    }

    #[test]
    fn announce_url_extends_an_existing_query() {
        let with_query = announce_url("http://t.example/a?passkey=xyz", &request());
        assert!(with_query.starts_with("http://t.example/a?passkey=xyz&info_hash="));
        let trailing = announce_url("http://t.example/a?passkey=xyz&", &request());
        assert!(trailing.starts_with("http://t.example/a?passkey=xyz&info_hash="));
        let bare = announce_url("http://t.example/a?", &request());
        assert!(bare.starts_with("http://t.example/a?info_hash="));
        let fragment = announce_url("http://t.example/a#frag", &request());
        assert!(fragment.starts_with("http://t.example/a?info_hash="));
        assert!(!fragment.contains('#'));
    }

    #[test]
    fn parses_compact_peers_and_counts() {
        let body = b"d8:completei5e10:incompletei7e8:intervali900e12:min intervali60e\
5:peers18:\x0a\x00\x00\x01\x1a\xe1\x7f\x00\x00\x01\x00\x00\xc0\xa8\x01\x02\x00\x50e";
        let response = parse(body).unwrap();
        assert_eq!(response.interval, Duration::from_secs(900));
        assert_eq!(response.min_interval, Some(Duration::from_secs(60)));
        assert_eq!(response.counts.complete, Some(5));
        assert_eq!(response.counts.incomplete, Some(7));
        assert_eq!(response.warning, None);
        // The middle entry has port 0 and is skipped.
        assert_eq!(
            response.peers,
            vec![addr("10.0.0.1:6881"), addr("192.168.1.2:80")]
        );
    }

    #[test]
    fn parses_dictionary_peers_skipping_bad_entries() {
        let body = b"d8:intervali1800e5:peersl\
d2:ip8:10.0.0.27:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881ee\
d2:ip3:::14:porti51413ee\
d2:ip16:tracker.example.4:porti1ee\
d2:ip8:10.0.0.34:porti70000ee\
d2:ip8:10.0.0.44:porti0ee\
d4:porti1ee\
i5e\
ee";
        let response = parse(body).unwrap();
        assert_eq!(
            response.peers,
            vec![addr("10.0.0.2:6881"), addr("[::1]:51413")]
        );
    }

    #[test]
    fn parses_peers6_alongside_peers() {
        let mut body = b"d8:intervali1800e5:peers6:\x0a\x00\x00\x01\x1a\xe16:peers636:".to_vec();
        let mut v6 = [0u8; 18];
        v6[15] = 1;
        v6[16..].copy_from_slice(&6881u16.to_be_bytes());
        body.extend_from_slice(&v6);
        let mut zero_port = [0u8; 18];
        zero_port[0] = 0x20;
        body.extend_from_slice(&zero_port);
        body.push(b'e');
        let response = parse(&body).unwrap();
        assert_eq!(
            response.peers,
            vec![addr("10.0.0.1:6881"), addr("[::1]:6881")]
        );
    }

    #[test]
    fn missing_interval_and_peers_use_defaults() {
        let response = parse(b"de").unwrap();
        assert_eq!(response.interval, DEFAULT_INTERVAL);
        assert!(response.peers.is_empty());
        assert_eq!(response.min_interval, None);
        assert_eq!(response.counts.complete, None);
    }

    #[test]
    fn failure_reason_is_an_error_with_the_trackers_text() {
        let error = parse(b"d14:failure reason17:torrent not founde").unwrap_err();
        assert_eq!(
            error,
            TrackerError::Failure {
                url: URL.to_string(),
                reason: "torrent not found".to_string()
            }
        );
        let text = error.to_string();
        assert!(
            text.contains("torrent not found") && text.contains(URL),
            "{text}"
        );
    }

    #[test]
    fn warning_is_reported() {
        let response = parse(b"d8:intervali60e5:peers0:15:warning message9:slow downe").unwrap();
        assert_eq!(response.warning.as_deref(), Some("slow down"));
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let bodies: [&[u8]; 8] = [
            b"",
            b"<html>nope</html>",
            b"li1ee",
            b"d8:intervali1800e5:peers5:abcdee",
            b"d8:intervali1800e5:peersi3ee",
            b"d8:intervali1800e6:peers65:abcdee",
            b"d8:intervali-5ee",
            b"d8:interval2:60e",
        ];
        for body in bodies {
            match parse(body) {
                Err(TrackerError::Malformed { url, .. }) => assert_eq!(url, URL),
                other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(body)),
            }
        }
    }

    #[test]
    fn announce_sends_the_exact_encoded_info_hash() {
        let reply = b"d8:intervali1800e5:peers6:\x0a\x00\x00\x01\x1a\xe1e".to_vec();
        let server = TestServer::start(move |_| Reply::Ok(reply.clone()));
        let response = announce(&server.url(), &request(), Duration::from_secs(5)).unwrap();
        assert_eq!(response.peers, vec![addr("10.0.0.1:6881")]);
        let line = server.next_request(Duration::from_secs(5));
        assert!(line.starts_with("GET /announce?"), "{line}");
        let expected = "info_hash=%00%01%20~-._AZaz09%25%26%3D%2B%2F%FE%FF&";
        assert!(line.contains(expected), "{line}");
        assert!(line.contains("event=started"), "{line}");
    }

    #[test]
    fn non_2xx_status_is_an_error() {
        let server = TestServer::start(|_| Reply::Status(404));
        let error = announce(&server.url(), &request(), Duration::from_secs(5)).unwrap_err();
        assert!(
            matches!(error, TrackerError::Status { status: 404, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("404"));
    }

    #[test]
    fn oversized_body_is_refused() {
        let server = TestServer::start(|_| Reply::Ok(vec![b'x'; 3 * 1024 * 1024]));
        let error = announce(&server.url(), &request(), Duration::from_secs(10)).unwrap_err();
        assert!(
            matches!(
                error,
                TrackerError::TooLarge {
                    limit: MAX_BODY,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn silent_tracker_times_out() {
        let server = TestServer::start(|_| Reply::Silent);
        let started = Instant::now();
        let error = announce(&server.url(), &request(), Duration::from_secs(1)).unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(error, TrackerError::Transport { .. }), "{error:?}");
        assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
        assert!(!error.to_string().contains('\n'));
    }

    #[test]
    fn refused_connection_is_a_transport_error() {
        let url = super::super::testutil::closed_port_url();
        let error = announce(&url, &request(), Duration::from_secs(5)).unwrap_err();
        assert!(matches!(error, TrackerError::Transport { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("tracker {url}: connection refused")
        );
    }
}
