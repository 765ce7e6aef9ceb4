//! The tracker's replies: an HTTP [`Response`] (status, `text/plain` body, `Connection:
//! close`) and the bencoded announce and scrape bodies (BEP 3, BEP 23 compact peers, BEP 7
//! `peers6`, BEP 48 scrape).
//!
//! Pure functions, run by an HTTP handler thread; they own nothing.

use std::time::Duration;

use super::swarm::{AnnounceAnswer, ScrapeCounts};
use crate::bencode::Value;

/// An HTTP reply: status and `text/plain` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    body: Vec<u8>,
}

impl Response {
    pub(crate) fn ok(body: Vec<u8>) -> Response {
        Response { status: 200, body }
    }

    /// A `200` carrying a bencoded `failure reason`, as trackers refuse announces.
    pub(crate) fn failure(reason: &str) -> Response {
        let body = Value::Dict(vec![(b"failure reason", Value::Bytes(reason.as_bytes()))]);
        Response::ok(body.encode())
    }

    pub(crate) fn status(status: u16) -> Response {
        Response {
            status,
            body: reason_phrase(status).as_bytes().to_vec(),
        }
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            self.status,
            reason_phrase(self.status),
            self.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    }
}

fn int(n: u64) -> Value<'static> {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The bencoded announce reply: compact `peers` (IPv4) and `peers6` (IPv6), or with
/// `compact` false a `peers` list of `ip`/`peer id`/`port` dicts.
pub(crate) fn announce_body(answer: &AnnounceAnswer, compact: bool, interval: Duration) -> Vec<u8> {
    let interval = interval.as_secs().max(1);
    let (v4, v6) = crate::net::compact_by_family(answer.peers.iter().map(|(addr, _)| addr));
    let ips: Vec<String> = answer
        .peers
        .iter()
        .map(|(addr, _)| addr.ip().to_string())
        .collect();
    // Keys in sorted order, as canonical bencode requires.
    let mut entries = vec![
        (b"complete" as &[u8], int(answer.complete)),
        (b"incomplete", int(answer.incomplete)),
        (b"interval", int(interval)),
        (b"min interval", int((interval / 2).max(1))),
    ];
    if compact {
        entries.push((b"peers", Value::Bytes(&v4)));
        if !v6.is_empty() {
            entries.push((b"peers6", Value::Bytes(&v6)));
        }
    } else {
        let list = answer
            .peers
            .iter()
            .zip(&ips)
            .map(|((addr, peer_id), ip)| {
                Value::Dict(vec![
                    (b"ip" as &[u8], Value::Bytes(ip.as_bytes())),
                    (b"peer id", Value::Bytes(peer_id)),
                    (b"port", int(u64::from(addr.port()))),
                ])
            })
            .collect();
        entries.push((b"peers", Value::List(list)));
    }
    Value::Dict(entries).encode()
}

/// The bencoded scrape reply; `files` must be sorted by hash without duplicates.
pub(crate) fn scrape_body(files: &[([u8; 20], ScrapeCounts)]) -> Vec<u8> {
    let files = files
        .iter()
        .map(|(hash, counts)| {
            let counts = Value::Dict(vec![
                (b"complete" as &[u8], int(counts.complete)),
                (b"downloaded", int(counts.downloaded)),
                (b"incomplete", int(counts.incomplete)),
            ]);
            (hash as &[u8], counts)
        })
        .collect();
    Value::Dict(vec![(b"files", Value::Dict(files))]).encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode;
    use std::net::SocketAddr;

    #[test]
    fn ipv6_peers_go_in_peers6() {
        let answer = AnnounceAnswer {
            complete: 0,
            incomplete: 2,
            peers: vec![
                (SocketAddr::from(([10, 0, 0, 1], 6881)), [1; 20]),
                ("[2001:db8::1]:6882".parse().unwrap(), [2; 20]),
            ],
        };
        let body = announce_body(&answer, true, Duration::from_secs(60));
        let parsed = crate::tracker::http::parse_response("test", &body).unwrap();
        assert_eq!(parsed.peers, vec![answer.peers[0].0, answer.peers[1].0],);
        let root = bencode::decode(&body).unwrap();
        assert_eq!(
            root.get(b"peers6")
                .and_then(Value::as_bytes)
                .map(<[u8]>::len),
            Some(18)
        );
    }
}
