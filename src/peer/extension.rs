//! The extension protocol (BEP 10): the handshake that follows the BitTorrent handshake when
//! both sides set the extension bit.
//!
//! Pure encoding and decoding, used by the main thread (which builds ours) and the peer
//! thread (which reads theirs). Today it carries `v` (our name) and `reqq` (how many requests
//! a peer may queue with us, which clients such as transmission size their pipeline by); the
//! `m` dictionary is empty until strand speaks an extension message.

use crate::bencode::{self, Value};

/// Extended message id of the extension handshake itself.
pub const HANDSHAKE_ID: u8 = 0;

/// Our extension handshake: `m` (no extension messages yet), `reqq` and `v`, keys sorted.
pub fn our_handshake(reqq: u32) -> Vec<u8> {
    let version = concat!("strand ", env!("CARGO_PKG_VERSION"));
    Value::Dict(vec![
        (b"m".as_slice(), Value::Dict(Vec::new())),
        (b"reqq".as_slice(), Value::Int(i64::from(reqq))),
        (b"v".as_slice(), Value::Bytes(version.as_bytes())),
    ])
    .encode()
}

/// What we use from a peer's extension handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TheirHandshake {
    /// How many requests the peer lets us queue, if it said (and said something sane).
    pub reqq: Option<u32>,
    /// The peer's client name, if it said.
    pub client: Option<String>,
}

/// Reads a peer's extension handshake; `None` if it is not a bencoded dict.
pub fn parse_handshake(payload: &[u8]) -> Option<TheirHandshake> {
    let (value, _) = bencode::decode_prefix(payload).ok()?;
    value.as_dict()?;
    let reqq = value
        .get(b"reqq")
        .and_then(Value::as_int)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0);
    let client = value
        .get(b"v")
        .and_then(Value::as_bytes)
        .map(|v| String::from_utf8_lossy(&v[..v.len().min(64)]).into_owned());
    Some(TheirHandshake { reqq, client })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_handshake_round_trips() {
        let ours = our_handshake(500);
        assert!(ours.starts_with(b"d1:mde4:reqqi500e1:v"));
        let back = parse_handshake(&ours).unwrap();
        assert_eq!(back.reqq, Some(500));
        assert!(back.client.unwrap().starts_with("strand "));
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
}
