//! Parsing what a stranger sends to the tracker over HTTP: the request head's request line,
//! its query string (percent-escapes, repeated keys) and the announce and scrape parameters.
//!
//! Pure functions, run by an HTTP handler thread on a head it has read whole; they own
//! nothing. Fuzzed by `fuzz/fuzz_targets/tracker_server.rs` through [`parse_request`].

use std::net::SocketAddr;

use super::reply::Response;
use super::swarm::Announce;
use crate::tracker::AnnounceEvent;

/// Peers returned when the announce has no `numwant`.
pub const DEFAULT_NUMWANT: usize = 50;
/// Most peers returned by one announce, whatever `numwant` says.
pub const MAX_NUMWANT: usize = 200;

/// What a request head asks of the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRequest {
    /// `GET /announce?…`.
    Announce(Announce),
    /// `GET /scrape?…`: these info hashes, or every torrent when there are none.
    Scrape(Vec<[u8; 20]>),
}

/// Parses the request head `head` (request line and headers, as a stranger sent them) from
/// `from`. `Err` is the reply that refuses it: an HTTP error status, or a `200` with a
/// `failure reason` for a well-formed request with bad parameters.
pub fn parse_request(head: &[u8], from: SocketAddr) -> Result<HttpRequest, Response> {
    let Some(line) = head
        .split(|&b| b == b'\n')
        .next()
        .and_then(|line| std::str::from_utf8(line).ok())
    else {
        return Err(Response::status(400));
    };
    let parts: Vec<&str> = line.trim_end_matches('\r').split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(Response::status(400));
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(Response::status(400));
    }
    if method != "GET" {
        return Err(Response::status(405));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = parse_query(query).map_err(|reason| Response::failure(&reason))?;
    match path {
        "/announce" => parse_announce(&params, from).map(HttpRequest::Announce),
        "/scrape" => parse_scrape(&params).map(HttpRequest::Scrape),
        _ => return Err(Response::status(404)),
    }
    .map_err(|reason| Response::failure(&reason))
}

/// Where the head ends (just past `\r\n\r\n` or `\n\n`) in `bytes`, if it does.
pub(crate) fn head_end(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find_map(|i| {
        let rest = &bytes[i..];
        if rest.starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if rest.starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// One percent-decoded `key=value` pair of a query string.
type Param = (Vec<u8>, Vec<u8>);

/// Splits a query string into percent-decoded key/value pairs, in order.
fn parse_query(query: &str) -> Result<Vec<Param>, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(key)?, percent_decode(value)?))
        })
        .collect()
}

/// Decodes `%XX` escapes to bytes. `+` stays `+`: a raw `+` in a binary `info_hash` is the
/// byte 0x2B, never a space.
fn percent_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| "malformed percent-encoding in the query".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The first value of `key`.
fn param<'a>(params: &'a [Param], key: &str) -> Option<&'a [u8]> {
    params
        .iter()
        .find(|(k, _)| k == key.as_bytes())
        .map(|(_, v)| v.as_slice())
}

/// `value` as a 20-byte hash or id named `name`.
fn twenty(value: &[u8], name: &str) -> Result<[u8; 20], String> {
    <[u8; 20]>::try_from(value).map_err(|_| format!("{name} must be 20 bytes, got {}", value.len()))
}

/// The first value of `key` as a decimal number, if present.
fn number<T: std::str::FromStr>(params: &[Param], key: &str) -> Result<Option<T>, String> {
    param(params, key)
        .map(|value| {
            std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| format!("invalid {key}"))
        })
        .transpose()
}

/// Validates an announce's parameters; the peer's IP is `from`'s (a client-supplied `ip` is
/// ignored). `Err` is the `failure reason`.
fn parse_announce(params: &[Param], from: SocketAddr) -> Result<Announce, String> {
    let info_hash = twenty(
        param(params, "info_hash").ok_or("missing info_hash")?,
        "info_hash",
    )?;
    let peer_id = twenty(
        param(params, "peer_id").ok_or("missing peer_id")?,
        "peer_id",
    )?;
    let port = match number::<u16>(params, "port")? {
        Some(port) if port != 0 => port,
        Some(_) => return Err("invalid port".to_string()),
        None => return Err("missing port".to_string()),
    };
    number::<u64>(params, "uploaded")?;
    number::<u64>(params, "downloaded")?;
    let left = number::<u64>(params, "left")?;
    let event = match param(params, "event") {
        None | Some(b"") | Some(b"paused") => None,
        Some(b"started") => Some(AnnounceEvent::Started),
        Some(b"completed") => Some(AnnounceEvent::Completed),
        Some(b"stopped") => Some(AnnounceEvent::Stopped),
        Some(_) => return Err("invalid event".to_string()),
    };
    let numwant = number::<usize>(params, "numwant")
        .ok()
        .flatten()
        .unwrap_or(DEFAULT_NUMWANT)
        .min(MAX_NUMWANT);
    Ok(Announce {
        info_hash,
        peer_id,
        addr: SocketAddr::new(from.ip().to_canonical(), port),
        left,
        event,
        numwant,
        compact: param(params, "compact") != Some(b"0"),
    })
}

/// The `info_hash` values of a scrape (none means all torrents).
fn parse_scrape(params: &[Param]) -> Result<Vec<[u8; 20]>, String> {
    params
        .iter()
        .filter(|(key, _)| key == b"info_hash")
        .map(|(_, value)| twenty(value, "info_hash"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: [u8; 20] = *b"\x00\x01 +%&=?/\xfe\xffhashbytes";
    const QUERY: &str = "info_hash=%00%01%20%2B%25%26%3D%3F%2F%FE%FFhashbytes\
                         &peer_id=-TS0001-000000000001&port=7001";

    #[test]
    fn query_parsing_decodes_bytes_and_ignores_a_client_ip() {
        assert_eq!(percent_decode("a%00%fF+b").unwrap(), b"a\x00\xff+b");
        assert!(percent_decode("%4").is_err());
        let query = format!("{QUERY}&ip=6.6.6.6&numwant=9999&compact=0");
        let params = parse_query(&query).unwrap();
        let from = SocketAddr::from(([127, 0, 0, 2], 40000));
        let parsed = parse_announce(&params, from).unwrap();
        assert_eq!(parsed.info_hash, HASH);
        assert_eq!(parsed.addr, SocketAddr::from(([127, 0, 0, 2], 7001)));
        assert_eq!(parsed.numwant, MAX_NUMWANT);
        assert!(!parsed.compact);
        assert_eq!(parsed.left, None);
    }

    #[test]
    fn ipv4_mapped_sources_become_ipv4() {
        let params = parse_query(QUERY).unwrap();
        let mapped: SocketAddr = "[::ffff:192.168.1.9]:5555".parse().unwrap();
        let parsed = parse_announce(&params, mapped).unwrap();
        assert_eq!(parsed.addr, SocketAddr::from(([192, 168, 1, 9], 7001)));
    }
}
