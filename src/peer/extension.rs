//! The extension protocol (BEP 10) and the two extensions strand speaks: `ut_metadata`
//! (BEP 9, the info dict in 16 KiB pieces, for magnet links) and `ut_pex` (BEP 11, peer
//! exchange).
//!
//! Pure encoding and decoding, used by whichever thread holds the bytes: the main thread
//! builds our handshake and PEX messages, peer threads (and the metadata fetcher's peer
//! threads) read theirs. It owns nothing. Incoming extension messages carry the ids *we*
//! assigned in our handshake's `m` ([`UT_METADATA`], [`UT_PEX`]); outgoing ones must use the
//! ids the peer assigned in its `m` ([`TheirHandshake::ut_metadata`], [`TheirHandshake::ut_pex`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::bencode::{self, Value};

/// Extended message id of the extension handshake itself.
pub(crate) const HANDSHAKE_ID: u8 = 0;
/// Our extended message id for `ut_metadata`: peers send us metadata messages with it.
pub(crate) const UT_METADATA: u8 = 1;
/// Our extended message id for `ut_pex`: peers send us PEX messages with it.
pub(crate) const UT_PEX: u8 = 2;

/// Size of one `ut_metadata` piece; only the last piece may be shorter.
pub(crate) const METADATA_PIECE_LEN: usize = 16384;
/// Largest info dict we accept or serve (32 MiB); a peer announcing more is refused.
pub const MAX_METADATA_SIZE: u32 = 32 * 1024 * 1024;
/// Most peers in one PEX list (`added` or `dropped`), sent or taken from a message.
pub const MAX_PEX_PEERS: usize = 50;
/// PEX flag (`added.f`, BEP 11): the peer prefers encryption.
const PEX_ENCRYPTION: u8 = 0x01;

/// What our extension handshake announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OurHandshake {
    /// How many requests a peer may queue with us (`reqq`).
    pub reqq: u32,
    /// Size of the info dict we can serve (`metadata_size`); `None` while we lack it.
    pub metadata_size: Option<u32>,
    /// The TCP port we accept peers on (`p`), if any.
    pub listen_port: Option<u16>,
    /// The peer's address as we see it (`yourip`), if known.
    pub yourip: Option<IpAddr>,
    /// Whether to offer `ut_pex`: false for private torrents (BEP 27), which must not
    /// exchange peers.
    pub pex: bool,
    /// Whether to say we prefer encrypted connections (`e: 1`, for `--encryption prefer` or
    /// `require`).
    pub prefers_encryption: bool,
}

/// Our extension handshake: `e` (when we prefer encryption), `m` (`ut_metadata`, and `ut_pex`
/// when enabled), `metadata_size`, `p`, `reqq`, `v` and `yourip` (4 or 16 raw bytes), keys
/// sorted, absent fields left out.
pub(crate) fn encode_handshake(ours: &OurHandshake) -> Vec<u8> {
    let version = concat!("strand ", env!("CARGO_PKG_VERSION"));
    let yourip: Option<Vec<u8>> = ours.yourip.map(|ip| match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    });
    let mut m = vec![(
        b"ut_metadata".as_slice(),
        Value::Int(i64::from(UT_METADATA)),
    )];
    if ours.pex {
        m.push((b"ut_pex".as_slice(), Value::Int(i64::from(UT_PEX))));
    }
    let mut dict = Vec::new();
    if ours.prefers_encryption {
        dict.push((b"e".as_slice(), Value::Int(1)));
    }
    dict.push((b"m".as_slice(), Value::Dict(m)));
    if let Some(size) = ours.metadata_size {
        dict.push((b"metadata_size".as_slice(), Value::Int(i64::from(size))));
    }
    if let Some(port) = ours.listen_port {
        dict.push((b"p".as_slice(), Value::Int(i64::from(port))));
    }
    dict.push((b"reqq".as_slice(), Value::Int(i64::from(ours.reqq))));
    dict.push((b"v".as_slice(), Value::Bytes(version.as_bytes())));
    if let Some(ip) = &yourip {
        dict.push((b"yourip".as_slice(), Value::Bytes(ip)));
    }
    Value::Dict(dict).encode()
}

/// What we use from a peer's extension handshake; declared with the other messages between
/// threads, since a peer thread hands it to the main thread.
pub use crate::messages::TheirHandshake;

/// Reads a peer's extension handshake; `None` if it is not a bencoded dict.
pub fn parse_handshake(payload: &[u8]) -> Option<TheirHandshake> {
    let (value, _) = bencode::decode_prefix(payload).ok()?;
    value.as_dict()?;
    let int = |key: &[u8]| value.get(key).and_then(Value::as_int);
    let reqq = int(b"reqq")
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0);
    let client = value
        .get(b"v")
        .and_then(Value::as_bytes)
        .map(|v| String::from_utf8_lossy(&v[..v.len().min(64)]).into_owned());
    let m = value.get(b"m");
    let id = |name: &[u8]| {
        m.and_then(|m| m.get(name))
            .and_then(Value::as_int)
            .and_then(|n| u8::try_from(n).ok())
            .filter(|&n| n != 0)
    };
    let metadata_size = int(b"metadata_size")
        .filter(|&n| n > 0)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let listen_port = int(b"p")
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&n| n > 0);
    Some(TheirHandshake {
        reqq,
        client,
        ut_metadata: id(b"ut_metadata"),
        ut_pex: id(b"ut_pex"),
        metadata_size,
        listen_port,
        prefers_encryption: int(b"e") == Some(1),
    })
}

/// One `ut_metadata` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMsg {
    /// Asks for one piece of the info dict.
    Request {
        /// Piece index (pieces are [`METADATA_PIECE_LEN`] bytes).
        piece: u32,
    },
    /// One piece of the info dict.
    Data {
        /// Piece index.
        piece: u32,
        /// The whole info dict's size, as the sender claims it.
        total_size: u32,
        /// The piece's bytes; check the length with [`expected_piece_len`].
        data: Vec<u8>,
    },
    /// The sender will not serve this piece.
    Reject {
        /// Piece index.
        piece: u32,
    },
}

const MSG_REQUEST: i64 = 0;
const MSG_DATA: i64 = 1;
const MSG_REJECT: i64 = 2;

/// Encodes a `ut_metadata` payload: a bencoded dict, followed for `Data` by the raw bytes.
pub fn encode_metadata(msg: &MetadataMsg) -> Vec<u8> {
    let (kind, piece) = match msg {
        MetadataMsg::Request { piece } => (MSG_REQUEST, piece),
        MetadataMsg::Data { piece, .. } => (MSG_DATA, piece),
        MetadataMsg::Reject { piece } => (MSG_REJECT, piece),
    };
    let mut dict = vec![
        (b"msg_type".as_slice(), Value::Int(kind)),
        (b"piece".as_slice(), Value::Int(i64::from(*piece))),
    ];
    if let MetadataMsg::Data { total_size, .. } = msg {
        dict.push((b"total_size".as_slice(), Value::Int(i64::from(*total_size))));
    }
    let mut out = Value::Dict(dict).encode();
    if let MetadataMsg::Data { data, .. } = msg {
        out.extend_from_slice(data);
    }
    out
}

/// Decodes a `ut_metadata` payload; `None` when it is not a dict with a known `msg_type`, a
/// `piece` that fits a `u32` and (for data) a positive `total_size` that fits a `u32`.
/// Bytes after the dict are the data of a `Data` message and ignored for the others.
pub fn parse_metadata(payload: &[u8]) -> Option<MetadataMsg> {
    let (dict, used) = bencode::decode_prefix(payload).ok()?;
    let int = |key: &[u8]| dict.get(key).and_then(Value::as_int);
    let piece = u32::try_from(int(b"piece")?).ok()?;
    match int(b"msg_type")? {
        MSG_REQUEST => Some(MetadataMsg::Request { piece }),
        MSG_DATA => {
            let total_size = u32::try_from(int(b"total_size")?).ok().filter(|&n| n > 0)?;
            Some(MetadataMsg::Data {
                piece,
                total_size,
                data: payload[used..].to_vec(),
            })
        }
        MSG_REJECT => Some(MetadataMsg::Reject { piece }),
        _ => None,
    }
}

/// How many `ut_metadata` pieces an info dict of `total_size` bytes has.
pub fn metadata_piece_count(total_size: u32) -> u32 {
    total_size.div_ceil(METADATA_PIECE_LEN as u32)
}

/// The length piece `piece` of an info dict of `total_size` bytes must have; `None` when
/// there is no such piece.
pub fn expected_piece_len(total_size: u32, piece: u32) -> Option<usize> {
    if piece >= metadata_piece_count(total_size) {
        return None;
    }
    let start = piece as usize * METADATA_PIECE_LEN;
    Some((total_size as usize - start).min(METADATA_PIECE_LEN))
}

/// One `ut_pex` message: peers the sender connected to and disconnected from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pex {
    /// Peers to try.
    pub added: Vec<SocketAddr>,
    /// Those of `added` that prefer encryption (flag 0x01 in `added.f` / `added6.f`).
    pub encrypted: Vec<SocketAddr>,
    /// Peers the sender no longer talks to.
    pub dropped: Vec<SocketAddr>,
}

/// Encodes a `ut_pex` payload: `added`/`dropped` as compact 6-byte IPv4 entries,
/// `added6`/`dropped6` as 18-byte IPv6 entries, `added.f` and `added6.f` with one flag byte
/// per peer added (0x01 for those in `encrypted`). Each list is cut to its first
/// [`MAX_PEX_PEERS`] peers.
pub fn encode_pex(pex: &Pex) -> Vec<u8> {
    let (added4, added6) = compact(&pex.added);
    let (dropped4, dropped6) = compact(&pex.dropped);
    let flags = |v4: bool| -> Vec<u8> {
        pex.added
            .iter()
            .take(MAX_PEX_PEERS)
            .filter(|a| a.is_ipv4() == v4)
            .map(|a| u8::from(pex.encrypted.contains(a)) * PEX_ENCRYPTION)
            .collect()
    };
    let (flags4, flags6) = (flags(true), flags(false));
    Value::Dict(vec![
        (b"added".as_slice(), Value::Bytes(&added4)),
        (b"added.f".as_slice(), Value::Bytes(&flags4)),
        (b"added6".as_slice(), Value::Bytes(&added6)),
        (b"added6.f".as_slice(), Value::Bytes(&flags6)),
        (b"dropped".as_slice(), Value::Bytes(&dropped4)),
        (b"dropped6".as_slice(), Value::Bytes(&dropped6)),
    ])
    .encode()
}

/// The first [`MAX_PEX_PEERS`] of `peers` in compact form: (IPv4 entries, IPv6 entries).
fn compact(peers: &[SocketAddr]) -> (Vec<u8>, Vec<u8>) {
    crate::net::compact_by_family(peers.iter().take(MAX_PEX_PEERS))
}

/// Decodes a `ut_pex` payload; `None` when it is not a dict. Missing or mistyped lists read
/// as empty, a trailing partial entry is ignored, entries with port 0 are skipped, and each
/// of `added` and `dropped` (IPv4 then IPv6) holds at most [`MAX_PEX_PEERS`] peers.
pub fn parse_pex(payload: &[u8]) -> Option<Pex> {
    let (dict, _) = bencode::decode_prefix(payload).ok()?;
    dict.as_dict()?;
    let bytes = |key: &[u8]| dict.get(key).and_then(Value::as_bytes).unwrap_or(&[]);
    // Each entry with its flag byte (0 where the flags are missing or short).
    let list = |v4_key: &[u8], v6_key: &[u8], f4: &[u8], f6: &[u8]| {
        let flag = |flags: &[u8], i: usize| flags.get(i).copied().unwrap_or(0);
        let v4 = bytes(v4_key).chunks_exact(6).enumerate().map(|(i, e)| {
            let ip = Ipv4Addr::new(e[0], e[1], e[2], e[3]);
            let addr = SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([e[4], e[5]]));
            (addr, flag(f4, i))
        });
        let v6 = bytes(v6_key).chunks_exact(18).enumerate().map(|(i, e)| {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&e[..16]);
            let ip = Ipv6Addr::from(octets);
            let addr = SocketAddr::new(IpAddr::V6(ip), u16::from_be_bytes([e[16], e[17]]));
            (addr, flag(f6, i))
        });
        v4.chain(v6)
            .filter(|(a, _)| a.port() != 0)
            .take(MAX_PEX_PEERS)
            .collect::<Vec<_>>()
    };
    let added = list(b"added", b"added6", bytes(b"added.f"), bytes(b"added6.f"));
    let dropped = list(b"dropped", b"dropped6", &[], &[]);
    Some(Pex {
        encrypted: added
            .iter()
            .filter(|(_, f)| f & PEX_ENCRYPTION != 0)
            .map(|(a, _)| *a)
            .collect(),
        added: added.into_iter().map(|(a, _)| a).collect(),
        dropped: dropped.into_iter().map(|(a, _)| a).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> OurHandshake {
        OurHandshake {
            reqq: 500,
            metadata_size: None,
            listen_port: None,
            yourip: None,
            pex: true,
            prefers_encryption: false,
        }
    }

    #[test]
    fn our_handshake_round_trips() {
        let bytes = encode_handshake(&ours());
        assert!(bytes.starts_with(b"d1:md11:ut_metadatai1e6:ut_pexi2ee4:reqqi500e1:v"));
        let back = parse_handshake(&bytes).unwrap();
        assert_eq!(back.reqq, Some(500));
        assert!(back.client.unwrap().starts_with("strand "));
        assert_eq!(back.ut_metadata, Some(UT_METADATA));
        assert_eq!(back.ut_pex, Some(UT_PEX));
        assert_eq!((back.metadata_size, back.listen_port), (None, None));
    }

    #[test]
    fn preferring_encryption_is_said_with_e() {
        let bytes = encode_handshake(&OurHandshake {
            prefers_encryption: true,
            ..ours()
        });
        assert!(bytes.starts_with(b"d1:ei1e1:md11:ut_metadata"), "{bytes:?}");
        assert!(parse_handshake(&bytes).unwrap().prefers_encryption);
        assert!(
            !parse_handshake(&encode_handshake(&ours()))
                .unwrap()
                .prefers_encryption
        );
        assert!(!parse_handshake(b"d1:ei0ee").unwrap().prefers_encryption);
        assert!(!parse_handshake(b"d1:e1:1e").unwrap().prefers_encryption);
    }

    #[test]
    fn pex_flags_say_who_prefers_encryption() {
        let pex = Pex {
            added: vec![
                addr("10.0.0.1:6881"),
                addr("[2001:db8::1]:6881"),
                addr("10.0.0.2:6881"),
                addr("[2001:db8::2]:6881"),
            ],
            encrypted: vec![addr("10.0.0.2:6881"), addr("[2001:db8::1]:6881")],
            dropped: vec![],
        };
        let bytes = encode_pex(&pex);
        let value = bencode::decode(&bytes).unwrap();
        let flags = |key: &[u8]| value.get(key).and_then(Value::as_bytes).unwrap().to_vec();
        assert_eq!(flags(b"added.f"), [0, 1]);
        assert_eq!(flags(b"added6.f"), [1, 0]);
        let back = parse_pex(&bytes).unwrap();
        assert_eq!(
            back.encrypted,
            [addr("10.0.0.2:6881"), addr("[2001:db8::1]:6881")]
        );
        // Other flag bits, missing and short flag strings, and port 0 entries keep the
        // flags in step with their entries.
        let mut compact = vec![10, 0, 0, 1, 0, 0, 10, 0, 0, 2, 0, 1, 10, 0, 0, 3, 0, 1];
        let mut hostile = format!("d5:added{}:", compact.len()).into_bytes();
        hostile.append(&mut compact);
        hostile.extend_from_slice(b"7:added.f2:\x01\x13e");
        let back = parse_pex(&hostile).unwrap();
        assert_eq!(back.added, [addr("10.0.0.2:1"), addr("10.0.0.3:1")]);
        assert_eq!(back.encrypted, [addr("10.0.0.2:1")]);
    }

    #[test]
    fn every_field_of_our_handshake() {
        let full = OurHandshake {
            reqq: 250,
            metadata_size: Some(31_337),
            listen_port: Some(6881),
            yourip: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
            pex: false,
            prefers_encryption: false,
        };
        let bytes = encode_handshake(&full);
        assert!(
            bytes
                .starts_with(b"d1:md11:ut_metadatai1ee13:metadata_sizei31337e1:pi6881e4:reqqi250e"),
            "private torrents do not offer ut_pex: {}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(bytes.ends_with(b"6:yourip4:\x0a\x01\x02\x03e"));
        let decoded = bencode::decode(&bytes).unwrap();
        assert!(decoded.as_dict().is_some(), "one dict, nothing after it");
        let back = parse_handshake(&bytes).unwrap();
        assert_eq!(back.metadata_size, Some(31_337));
        assert_eq!(back.listen_port, Some(6881));
        assert_eq!(back.ut_pex, None);

        let v6 = OurHandshake {
            yourip: Some("2001:db8::7".parse().unwrap()),
            ..ours()
        };
        let bytes = encode_handshake(&v6);
        let value = bencode::decode(&bytes).unwrap();
        let ip = value.get(b"yourip").and_then(Value::as_bytes).unwrap();
        assert_eq!(ip.len(), 16);
        assert_eq!(ip[15], 7);
    }

    #[test]
    fn odd_handshakes() {
        assert_eq!(parse_handshake(b"i3e"), None);
        assert_eq!(parse_handshake(b"d4:reqq"), None);
        let none = parse_handshake(b"d4:reqqi0ee").unwrap();
        assert_eq!(none.reqq, None, "a zero reqq means nothing");
        let neg = parse_handshake(b"d4:reqqi-5ee").unwrap();
        assert_eq!(neg.reqq, None);
        assert_eq!(parse_handshake(b"de").unwrap(), TheirHandshake::default());
    }

    #[test]
    fn extension_ids_sizes_and_ports() {
        let h = parse_handshake(b"d1:md11:ut_metadatai0e6:ut_pexi300ee1:pi0ee").unwrap();
        assert_eq!(h.ut_metadata, None, "id 0 disables the extension");
        assert_eq!(h.ut_pex, None, "ids above 255 do not fit the wire");
        assert_eq!(h.listen_port, None);
        let h = parse_handshake(b"d1:md11:ut_metadatai3ee13:metadata_sizei9999999999ee").unwrap();
        assert_eq!(h.ut_metadata, Some(3));
        assert_eq!(
            h.metadata_size,
            Some(u32::MAX),
            "huge sizes stay over the limit"
        );
        let h = parse_handshake(b"d1:mi5e13:metadata_sizei-1e1:pi70000ee").unwrap();
        assert_eq!(
            (h.ut_metadata, h.metadata_size, h.listen_port),
            (None, None, None)
        );
        let h = parse_handshake(b"d13:metadata_sizei20000e1:pi51413ee").unwrap();
        assert_eq!(
            (h.metadata_size, h.listen_port),
            (Some(20_000), Some(51_413))
        );
    }

    #[test]
    fn metadata_messages_round_trip() {
        let msgs = [
            MetadataMsg::Request { piece: 0 },
            MetadataMsg::Request { piece: 2047 },
            MetadataMsg::Reject { piece: 5 },
            MetadataMsg::Data {
                piece: 1,
                total_size: 20_000,
                data: (0..=255u8).cycle().take(20_000 - 16384).collect(),
            },
            MetadataMsg::Data {
                piece: 0,
                total_size: 1,
                data: b"e".to_vec(),
            },
        ];
        for msg in msgs {
            assert_eq!(parse_metadata(&encode_metadata(&msg)), Some(msg));
        }
        assert_eq!(
            encode_metadata(&MetadataMsg::Request { piece: 3 }),
            b"d8:msg_typei0e5:piecei3ee"
        );
        assert_eq!(
            encode_metadata(&MetadataMsg::Data {
                piece: 0,
                total_size: 2,
                data: b"de".to_vec()
            }),
            b"d8:msg_typei1e5:piecei0e10:total_sizei2eede"
        );
    }

    #[test]
    fn malformed_metadata_messages() {
        for bad in [
            b"".as_slice(),
            b"i1e",
            b"d8:msg_typei0ee",
            b"d5:piecei0ee",
            b"d8:msg_typei3e5:piecei0ee",
            b"d8:msg_typei0e5:piecei-1ee",
            b"d8:msg_typei0e5:piecei4294967296ee",
            b"d8:msg_typei1e5:piecei0ee",
            b"d8:msg_typei1e5:piecei0e10:total_sizei0ee",
            b"d8:msg_typei1e5:piecei0e10:total_sizei-3ee",
            b"d8:msg_type",
        ] {
            assert_eq!(
                parse_metadata(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn piece_lengths() {
        assert_eq!(metadata_piece_count(1), 1);
        assert_eq!(metadata_piece_count(16384), 1);
        assert_eq!(metadata_piece_count(16385), 2);
        assert_eq!(metadata_piece_count(0), 0);
        assert_eq!(expected_piece_len(16384, 0), Some(16384));
        assert_eq!(expected_piece_len(16384, 1), None);
        assert_eq!(expected_piece_len(40_000, 1), Some(16384));
        assert_eq!(expected_piece_len(40_000, 2), Some(40_000 - 32768));
        assert_eq!(expected_piece_len(40_000, 3), None);
        assert_eq!(expected_piece_len(0, 0), None);
        assert_eq!(
            expected_piece_len(MAX_METADATA_SIZE, 2047),
            Some(METADATA_PIECE_LEN)
        );
        assert_eq!(expected_piece_len(u32::MAX, u32::MAX), None);
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn pex_round_trips() {
        let pex = Pex {
            added: vec![
                addr("10.0.0.1:6881"),
                addr("[2001:db8::1]:51413"),
                addr("1.2.3.4:1"),
            ],
            dropped: vec![addr("[::1]:9"), addr("192.168.1.1:65535")],
            ..Pex::default()
        };
        let bytes = encode_pex(&pex);
        let back = parse_pex(&bytes).unwrap();
        let v4_first = |v: &[SocketAddr]| {
            let mut v = v.to_vec();
            v.sort_by_key(|a| a.is_ipv6());
            v
        };
        assert_eq!(back.added, v4_first(&pex.added));
        assert_eq!(back.dropped, v4_first(&pex.dropped));
        let value = bencode::decode(&bytes).unwrap();
        let flags = value.get(b"added.f").and_then(Value::as_bytes).unwrap();
        assert_eq!(flags, [0, 0], "one flag byte per IPv4 peer added");
        let added = value.get(b"added").and_then(Value::as_bytes).unwrap();
        assert_eq!(added[..6], [10, 0, 0, 1, 0x1a, 0xe1]);
        assert_eq!(
            parse_pex(&encode_pex(&Pex::default())),
            Some(Pex::default())
        );
    }

    #[test]
    fn pex_lists_are_capped() {
        let many: Vec<SocketAddr> = (0..120u16)
            .map(|i| SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1000 + i)))
            .collect();
        let bytes = encode_pex(&Pex {
            added: many.clone(),
            dropped: many.clone(),
            ..Pex::default()
        });
        let value = bencode::decode(&bytes).unwrap();
        let added = value.get(b"added").and_then(Value::as_bytes).unwrap();
        assert_eq!(added.len(), 6 * MAX_PEX_PEERS);
        let back = parse_pex(&bytes).unwrap();
        assert_eq!(back.added, many[..MAX_PEX_PEERS]);
        assert_eq!(back.dropped, many[..MAX_PEX_PEERS]);

        let mut compact = Vec::new();
        for i in 0..100u8 {
            compact.extend_from_slice(&[10, 0, 0, i, 0, 80]);
        }
        let mut hostile = format!("d5:added{}:", compact.len()).into_bytes();
        hostile.extend_from_slice(&compact);
        hostile.push(b'e');
        assert_eq!(parse_pex(&hostile).unwrap().added.len(), MAX_PEX_PEERS);
    }

    #[test]
    fn malformed_pex() {
        assert_eq!(parse_pex(b"le"), None);
        assert_eq!(parse_pex(b"d5:added"), None);
        let partial = parse_pex(b"d5:added8:\x0a\x00\x00\x01\x00\x50\x0a\x00e").unwrap();
        assert_eq!(
            partial.added,
            [addr("10.0.0.1:80")],
            "the partial entry is ignored"
        );
        let zero_port =
            parse_pex(b"d5:added12:\x0a\x00\x00\x01\x00\x00\x0a\x00\x00\x02\x00\x51e").unwrap();
        assert_eq!(zero_port.added, [addr("10.0.0.2:81")]);
        let typed = parse_pex(b"d5:addedi3e7:dropped6:\x01\x01\x01\x01\x00\x01e").unwrap();
        assert_eq!(typed.added, []);
        assert_eq!(typed.dropped, [addr("1.1.1.1:1")]);
    }
}
