//! KRPC, the DHT's message layer (BEP 5, with BEP 32's `nodes6` and `want`): decoding and
//! encoding of queries, responses and errors, compact node info and compact peers.
//!
//! Pure functions, called on the DHT thread for every datagram. Decoding never trusts
//! the input: every size is checked, unknown keys are ignored, and a malformed query that
//! still names a transaction id tells the caller which error to send back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::bencode::{self, Value};
use crate::dht::id::{NodeId, NodeInfo};

/// Largest datagram read; anything longer is cut short and fails to decode.
pub const MAX_DATAGRAM: usize = 2048;
/// Longest transaction id accepted from a peer.
pub const MAX_TID_LEN: usize = 32;
/// Longest write token accepted from a peer.
pub const MAX_TOKEN_LEN: usize = 64;
/// Most peers (`values`) taken from one `get_peers` response.
pub const MAX_VALUES: usize = 200;

/// Bytes of an error's text kept.
const MAX_ERROR_TEXT: usize = 200;

/// KRPC error code 201: generic error.
pub(crate) const ERROR_GENERIC: i64 = 201;
/// KRPC error code 203: protocol error (malformed packet, bad token).
pub(crate) const ERROR_PROTOCOL: i64 = 203;
/// KRPC error code 204: method unknown.
pub(crate) const ERROR_METHOD: i64 = 204;

/// One KRPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The transaction id, echoed in the reply.
    pub tid: Vec<u8>,
    /// Query, response or error.
    pub kind: Kind,
}

/// What a message is (`y`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `y = q`: the sender's id and what it asks.
    Query(NodeId, Query),
    /// `y = r`.
    Response(Response),
    /// `y = e`: a code and a message.
    Error(i64, String),
}

/// Which address families a querier wants nodes of (BEP 32 `want`); `None` in a query means
/// "the family of the socket the query came in on".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Want {
    /// `n4`: IPv4 nodes.
    pub v4: bool,
    /// `n6`: IPv6 nodes.
    pub v6: bool,
}

/// The four queries of BEP 5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `ping`.
    Ping,
    /// `find_node`: the nodes closest to `target`.
    FindNode {
        /// The id sought.
        target: NodeId,
        /// BEP 32 `want`.
        want: Option<Want>,
    },
    /// `get_peers`: peers for `info_hash`, or the closest nodes, and a token.
    GetPeers {
        /// The torrent.
        info_hash: NodeId,
        /// BEP 32 `want`.
        want: Option<Want>,
    },
    /// `announce_peer`: the sender downloads `info_hash` on `port`.
    AnnouncePeer {
        /// The torrent.
        info_hash: NodeId,
        /// Where the sender takes peers.
        port: AnnouncedPort,
        /// The token from our earlier `get_peers` reply.
        token: Vec<u8>,
    },
}

/// The port an `announce_peer` asks to store: `port`, or with BEP 5's `implied_port` the UDP
/// source port of the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnouncedPort {
    /// The TCP port (ignored when `implied`; 0 when an implied announce sent none).
    pub port: u16,
    /// `implied_port`: store the UDP source port instead of `port`.
    pub implied: bool,
}

impl AnnouncedPort {
    /// The port to store for a query from `source`.
    pub fn of(self, source: SocketAddr) -> u16 {
        if self.implied {
            source.port()
        } else {
            self.port
        }
    }
}

/// A response's fields; which ones appear depends on the query it answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The responder's id.
    pub id: NodeId,
    /// `nodes`: compact IPv4 node info.
    pub nodes: Vec<NodeInfo>,
    /// `nodes6`: compact IPv6 node info.
    pub nodes6: Vec<NodeInfo>,
    /// `values`: compact peers.
    pub values: Vec<SocketAddr>,
    /// `token`, for a later `announce_peer`.
    pub token: Option<Vec<u8>>,
}

/// Why a datagram was not a usable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// What was wrong, in a few words.
    pub reason: &'static str,
    /// For a query with a usable transaction id: the id and the error code to answer with.
    pub reply: Option<(Vec<u8>, i64)>,
}

fn fail<T>(reason: &'static str) -> Result<T, DecodeError> {
    Err(DecodeError {
        reason,
        reply: None,
    })
}

/// Decodes one datagram.
pub fn decode(packet: &[u8]) -> Result<Message, DecodeError> {
    if packet.len() > MAX_DATAGRAM {
        return fail("datagram too long");
    }
    let value = match bencode::decode(packet) {
        Ok(v) => v,
        Err(_) => return fail("not bencode"),
    };
    if value.as_dict().is_none() {
        return fail("not a dict");
    }
    let Some(tid) = value.get(b"t").and_then(Value::as_bytes) else {
        return fail("no transaction id");
    };
    if tid.len() > MAX_TID_LEN {
        return fail("transaction id too long");
    }
    let tid = tid.to_vec();
    let kind = match value.get(b"y").and_then(Value::as_bytes) {
        Some(b"q") => decode_query(&value).map_err(|(reason, code)| DecodeError {
            reason,
            reply: Some((tid.clone(), code)),
        })?,
        Some(b"r") => Kind::Response(decode_response(&value)?),
        Some(b"e") => decode_error(&value)?,
        _ => return fail("unknown message type"),
    };
    Ok(Message { tid, kind })
}

fn id_of(value: Option<&Value<'_>>) -> Option<NodeId> {
    let bytes = value?.as_bytes()?;
    Some(NodeId(bytes.try_into().ok()?))
}

fn decode_query(value: &Value<'_>) -> Result<Kind, (&'static str, i64)> {
    let bad = |reason| (reason, ERROR_PROTOCOL);
    let method = value
        .get(b"q")
        .and_then(Value::as_bytes)
        .ok_or(bad("query without a method"))?;
    let args = value.get(b"a").ok_or(bad("query without arguments"))?;
    if args.as_dict().is_none() {
        return Err(bad("arguments are not a dict"));
    }
    let id = id_of(args.get(b"id")).ok_or(bad("query without a 20-byte id"))?;
    let want = args.get(b"want").map(decode_want);
    let query = match method {
        b"ping" => Query::Ping,
        b"find_node" => Query::FindNode {
            target: id_of(args.get(b"target")).ok_or(bad("find_node without a target"))?,
            want,
        },
        b"get_peers" => Query::GetPeers {
            info_hash: id_of(args.get(b"info_hash")).ok_or(bad("get_peers without info_hash"))?,
            want,
        },
        b"announce_peer" => {
            let info_hash =
                id_of(args.get(b"info_hash")).ok_or(bad("announce_peer without info_hash"))?;
            let implied_port = args.get(b"implied_port").and_then(Value::as_int) == Some(1);
            let port = match args.get(b"port").and_then(Value::as_int) {
                Some(p) if (1..=65535).contains(&p) => p as u16,
                _ if implied_port => 0,
                _ => return Err(bad("announce_peer without a valid port")),
            };
            let token = args
                .get(b"token")
                .and_then(Value::as_bytes)
                .filter(|t| t.len() <= MAX_TOKEN_LEN)
                .ok_or(bad("announce_peer without a token"))?;
            Query::AnnouncePeer {
                info_hash,
                port: AnnouncedPort {
                    port,
                    implied: implied_port,
                },
                token: token.to_vec(),
            }
        }
        _ => return Err(("unknown method", ERROR_METHOD)),
    };
    Ok(Kind::Query(id, query))
}

fn decode_want(value: &Value<'_>) -> Want {
    let mut want = Want::default();
    for item in value.as_list().unwrap_or_default().iter().take(4) {
        match item.as_bytes() {
            Some(b"n4") => want.v4 = true,
            Some(b"n6") => want.v6 = true,
            _ => {}
        }
    }
    want
}

/// A response's `nodes` (`ip_len` 4) or `nodes6` (16) field: absent is empty; `bad_len` and
/// `not_bytes` are the reasons for the two ways it can be malformed.
fn nodes_field(
    field: Option<&Value<'_>>,
    ip_len: usize,
    bad_len: &'static str,
    not_bytes: &'static str,
) -> Result<Vec<NodeInfo>, DecodeError> {
    match field.map(Value::as_bytes) {
        None => Ok(Vec::new()),
        Some(Some(bytes)) => decode_nodes(bytes, ip_len).ok_or(DecodeError {
            reason: bad_len,
            reply: None,
        }),
        Some(None) => fail(not_bytes),
    }
}

fn decode_response(value: &Value<'_>) -> Result<Response, DecodeError> {
    let Some(r) = value.get(b"r").filter(|r| r.as_dict().is_some()) else {
        return fail("response without a dict");
    };
    let Some(id) = id_of(r.get(b"id")) else {
        return fail("response without a 20-byte id");
    };
    let nodes = nodes_field(
        r.get(b"nodes"),
        4,
        "nodes not a multiple of 26 bytes",
        "nodes not a string",
    )?;
    let nodes6 = nodes_field(
        r.get(b"nodes6"),
        16,
        "nodes6 not a multiple of 38 bytes",
        "nodes6 not a string",
    )?;
    let values = match r.get(b"values") {
        None => Vec::new(),
        Some(v) => match v.as_list() {
            Some(items) => items
                .iter()
                .filter_map(|item| decode_peer(item.as_bytes()?))
                .take(MAX_VALUES)
                .collect(),
            None => return fail("values not a list"),
        },
    };
    let token = match r.get(b"token").map(|v| v.as_bytes()) {
        None => None,
        Some(Some(t)) if t.len() <= MAX_TOKEN_LEN => Some(t.to_vec()),
        Some(_) => return fail("bad token"),
    };
    Ok(Response {
        id,
        nodes,
        nodes6,
        values,
        token,
    })
}

fn decode_error(value: &Value<'_>) -> Result<Kind, DecodeError> {
    let Some(list) = value.get(b"e").and_then(Value::as_list) else {
        return fail("error without a list");
    };
    let code = list
        .first()
        .and_then(Value::as_int)
        .unwrap_or(ERROR_GENERIC);
    let mut text = list
        .get(1)
        .and_then(Value::as_bytes)
        .map(|b| String::from_utf8_lossy(&b[..b.len().min(MAX_ERROR_TEXT)]).into_owned())
        .unwrap_or_default();
    let mut cut = text.len().min(MAX_ERROR_TEXT);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    Ok(Kind::Error(code, text))
}

/// Decodes compact node info: 26-byte (`ip_len` 4) or 38-byte (`ip_len` 16) records. `None`
/// when the length is not a whole number of records. Records with port 0 are skipped.
pub(crate) fn decode_nodes(bytes: &[u8], ip_len: usize) -> Option<Vec<NodeInfo>> {
    let record = 20 + ip_len + 2;
    if bytes.len() % record != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(record)
            .filter_map(|chunk| {
                let id = NodeId(chunk[..20].try_into().ok()?);
                let addr = decode_peer(&chunk[20..])?;
                Some(NodeInfo { id, addr })
            })
            .collect(),
    )
}

/// Decodes one compact peer: 6 bytes (IPv4) or 18 bytes (IPv6). Port 0 is refused.
pub(crate) fn decode_peer(bytes: &[u8]) -> Option<SocketAddr> {
    let (ip, port): (IpAddr, &[u8]) = match bytes.len() {
        6 => (
            Ipv4Addr::from(<[u8; 4]>::try_from(&bytes[..4]).ok()?).into(),
            &bytes[4..],
        ),
        18 => (
            Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[..16]).ok()?).into(),
            &bytes[16..],
        ),
        _ => return None,
    };
    let port = u16::from_be_bytes([port[0], port[1]]);
    (port != 0).then_some(SocketAddr::new(ip, port))
}

/// Appends one compact peer (6 or 18 bytes) to `out`.
pub(crate) fn encode_peer(addr: &SocketAddr, out: &mut Vec<u8>) {
    match addr {
        SocketAddr::V4(a) => out.extend_from_slice(&a.ip().octets()),
        SocketAddr::V6(a) => out.extend_from_slice(&a.ip().octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Compact node info for the nodes of one family: `ip_len` 4 (`nodes`) or 16 (`nodes6`).
pub(crate) fn encode_nodes(nodes: &[NodeInfo], ip_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * (22 + ip_len));
    for node in nodes {
        let v4 = node.addr.is_ipv4();
        if v4 == (ip_len == 4) {
            out.extend_from_slice(&node.id.0);
            encode_peer(&node.addr, &mut out);
        }
    }
    out
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as plain IPv4; others unchanged.
pub(crate) fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(ip) => SocketAddr::V4(SocketAddrV4::new(ip, a.port())),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// `addr` as an IPv4-mapped IPv6 address, for sending IPv4 from a dual-stack socket.
pub(crate) fn map_v6(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        SocketAddr::V6(_) => addr,
    }
}

/// A dict with its keys sorted, as canonical bencode asks.
fn dict<'a>(mut entries: Vec<(&'a [u8], Value<'a>)>) -> Value<'a> {
    entries.sort_by(|a, b| a.0.cmp(b.0));
    Value::Dict(entries)
}

fn want_list(want: Option<Want>) -> Option<Value<'static>> {
    let want = want?;
    let mut items = Vec::new();
    if want.v4 {
        items.push(Value::Bytes(b"n4"));
    }
    if want.v6 {
        items.push(Value::Bytes(b"n6"));
    }
    Some(Value::List(items))
}

impl Message {
    /// Encodes the message as canonical bencode.
    pub fn encode(&self) -> Vec<u8> {
        match &self.kind {
            Kind::Query(id, query) => encode_query(&self.tid, id, query),
            Kind::Response(r) => {
                let nodes = encode_nodes(&r.nodes, 4);
                let nodes6 = encode_nodes(&r.nodes6, 16);
                let values: Vec<Vec<u8>> = r
                    .values
                    .iter()
                    .map(|p| {
                        let mut v = Vec::with_capacity(18);
                        encode_peer(p, &mut v);
                        v
                    })
                    .collect();
                let mut body = vec![(&b"id"[..], Value::Bytes(&r.id.0))];
                if !nodes.is_empty() {
                    body.push((b"nodes", Value::Bytes(&nodes)));
                }
                if !nodes6.is_empty() {
                    body.push((b"nodes6", Value::Bytes(&nodes6)));
                }
                if let Some(token) = &r.token {
                    body.push((b"token", Value::Bytes(token)));
                }
                if !values.is_empty() {
                    let list = values.iter().map(|v| Value::Bytes(v)).collect();
                    body.push((b"values", Value::List(list)));
                }
                dict(vec![
                    (b"r", dict(body)),
                    (b"t", Value::Bytes(&self.tid)),
                    (b"y", Value::Bytes(b"r")),
                ])
                .encode()
            }
            Kind::Error(code, text) => dict(vec![
                (
                    b"e",
                    Value::List(vec![Value::Int(*code), Value::Bytes(text.as_bytes())]),
                ),
                (b"t", Value::Bytes(&self.tid)),
                (b"y", Value::Bytes(b"e")),
            ])
            .encode(),
        }
    }
}

fn encode_query(tid: &[u8], id: &NodeId, query: &Query) -> Vec<u8> {
    let mut args = vec![(&b"id"[..], Value::Bytes(&id.0))];
    let method: &[u8] = match query {
        Query::Ping => b"ping",
        Query::FindNode { target, want } => {
            args.push((b"target", Value::Bytes(&target.0)));
            args.extend(want_list(*want).map(|w| (&b"want"[..], w)));
            b"find_node"
        }
        Query::GetPeers { info_hash, want } => {
            args.push((b"info_hash", Value::Bytes(&info_hash.0)));
            args.extend(want_list(*want).map(|w| (&b"want"[..], w)));
            b"get_peers"
        }
        Query::AnnouncePeer {
            info_hash,
            port,
            token,
        } => {
            args.push((b"info_hash", Value::Bytes(&info_hash.0)));
            args.push((b"port", Value::Int(i64::from(port.port))));
            args.push((b"token", Value::Bytes(token)));
            if port.implied {
                args.push((b"implied_port", Value::Int(1)));
            }
            b"announce_peer"
        }
    };
    dict(vec![
        (b"a", dict(args)),
        (b"q", Value::Bytes(method)),
        (b"t", Value::Bytes(tid)),
        (b"y", Value::Bytes(b"q")),
    ])
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NodeId {
        NodeId([n; 20])
    }

    fn roundtrip(message: Message) {
        let bytes = message.encode();
        assert_eq!(
            decode(&bytes).unwrap(),
            message,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }

    #[test]
    fn bep5_ping_example_decodes() {
        let m = decode(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe").unwrap();
        assert_eq!(m.tid, b"aa");
        assert_eq!(
            m.kind,
            Kind::Query(NodeId(*b"abcdefghij0123456789"), Query::Ping)
        );
        assert_eq!(
            m.encode(),
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
        );
    }

    #[test]
    fn bep5_announce_example_encodes_byte_for_byte() {
        let m = Message {
            tid: b"aa".to_vec(),
            kind: Kind::Query(
                NodeId(*b"abcdefghij0123456789"),
                Query::AnnouncePeer {
                    info_hash: NodeId(*b"mnopqrstuvwxyz123456"),
                    port: AnnouncedPort {
                        port: 6881,
                        implied: true,
                    },
                    token: b"aoeusnth".to_vec(),
                },
            ),
        };
        assert_eq!(
            m.encode(),
            &b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"[..]
        );
        roundtrip(m);
    }

    #[test]
    fn every_query_roundtrips() {
        let want = Some(Want { v4: true, v6: true });
        for query in [
            Query::Ping,
            Query::FindNode {
                target: id(3),
                want,
            },
            Query::FindNode {
                target: id(3),
                want: None,
            },
            Query::GetPeers {
                info_hash: id(4),
                want: Some(Want {
                    v4: false,
                    v6: true,
                }),
            },
            Query::AnnouncePeer {
                info_hash: id(4),
                port: AnnouncedPort {
                    port: 51413,
                    implied: false,
                },
                token: vec![1, 2],
            },
        ] {
            roundtrip(Message {
                tid: vec![0, 7],
                kind: Kind::Query(id(1), query),
            });
        }
    }

    #[test]
    fn responses_with_nodes_nodes6_values_token_roundtrip() {
        let v4: SocketAddr = "127.0.0.9:6881".parse().unwrap();
        let v6: SocketAddr = "[::1]:7000".parse().unwrap();
        roundtrip(Message {
            tid: b"xy".to_vec(),
            kind: Kind::Response(Response {
                id: id(9),
                nodes: vec![NodeInfo {
                    id: id(2),
                    addr: v4,
                }],
                nodes6: vec![NodeInfo {
                    id: id(3),
                    addr: v6,
                }],
                values: vec![v4, v6],
                token: Some(b"tok".to_vec()),
            }),
        });
        roundtrip(Message {
            tid: b"e".to_vec(),
            kind: Kind::Error(203, "bad".into()),
        });
    }

    #[test]
    fn compact_node_info_is_26_and_38_bytes() {
        let n4 = NodeInfo {
            id: id(1),
            addr: "1.2.3.4:5".parse().unwrap(),
        };
        let n6 = NodeInfo {
            id: id(1),
            addr: "[::2]:5".parse().unwrap(),
        };
        assert_eq!(encode_nodes(&[n4, n6], 4).len(), 26);
        assert_eq!(encode_nodes(&[n4, n6], 16).len(), 38);
        assert_eq!(
            decode_nodes(&encode_nodes(&[n6], 16), 16).unwrap(),
            vec![n6]
        );
        assert!(decode_nodes(&[0; 27], 4).is_none());
    }

    #[test]
    fn malformed_queries_say_which_error_to_send() {
        let unknown =
            decode(b"d1:ad2:id20:abcdefghij0123456789e1:q3:foo1:t2:aa1:y1:qe").unwrap_err();
        assert_eq!(unknown.reply, Some((b"aa".to_vec(), ERROR_METHOD)));
        let no_target =
            decode(b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe").unwrap_err();
        assert_eq!(no_target.reply, Some((b"aa".to_vec(), ERROR_PROTOCOL)));
        let short_id = decode(b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe").unwrap_err();
        assert_eq!(short_id.reply, Some((b"aa".to_vec(), ERROR_PROTOCOL)));
    }

    #[test]
    fn garbage_is_refused_without_a_reply() {
        for bad in [
            &b""[..],
            b"le",
            b"d1:y1:qe",
            b"d1:t2:aa1:y1:re",
            b"d1:rd2:id2:xxe1:t2:aa1:y1:re",
            b"d1:rd2:id20:abcdefghij01234567895:nodes3:abce1:t2:aa1:y1:re",
            b"d1:t40:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1:y1:qe",
        ] {
            let e = decode(bad).unwrap_err();
            assert_eq!(e.reply, None, "{}", String::from_utf8_lossy(bad));
        }
        assert!(decode(&vec![b'x'; MAX_DATAGRAM + 1]).is_err());
    }

    #[test]
    fn announce_port_rules() {
        let implied = decode(b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe").unwrap();
        assert!(matches!(
            implied.kind,
            Kind::Query(
                _,
                Query::AnnouncePeer {
                    port: AnnouncedPort { implied: true, .. },
                    ..
                }
            )
        ));
        let zero = decode(b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti0e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe");
        assert!(zero.is_err());
    }

    #[test]
    fn mapped_addresses_unmap() {
        let v4: SocketAddr = "127.0.0.3:9".parse().unwrap();
        assert_eq!(unmap(map_v6(v4)), v4);
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(unmap(v6), v6);
    }

    /// The fuzz target's property, over random mutations of valid messages.
    #[test]
    fn mutated_datagrams_never_panic_and_decoded_ones_roundtrip() {
        let mut rng = crate::rng::Rng::seeded(42);
        let seeds: Vec<Vec<u8>> = vec![
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe".to_vec(),
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe".to_vec(),
            b"d1:rd2:id20:abcdefghij01234567895:nodes26:abcdefghij0123456789\x7f\x00\x00\x01\x1a\xe16:valuesl6:\x7f\x00\x00\x01\x1a\xe1ee1:t2:aa1:y1:re".to_vec(),
            b"d1:eli201e5:Oops!e1:t2:aa1:y1:ee".to_vec(),
        ];
        for _ in 0..20_000 {
            let mut packet = seeds[rng.index(seeds.len())].clone();
            for _ in 0..=rng.index(4) {
                let at = rng.index(packet.len());
                match rng.below(3) {
                    0 => packet[at] = rng.next_u32() as u8,
                    1 => {
                        packet.remove(at);
                    }
                    _ => packet.insert(at, rng.next_u32() as u8),
                }
                if packet.is_empty() {
                    break;
                }
            }
            if let Ok(message) = decode(&packet) {
                assert_eq!(decode(&message.encode()), Ok(message));
            }
        }
    }
}
