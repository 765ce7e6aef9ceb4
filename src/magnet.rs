//! Magnet links (BEP 9): `magnet:?xt=urn:btih:...` parsed into a [`Magnet`].
//!
//! Pure parsing, run once on the main thread at start-up; the returned [`Magnet`] owns copies
//! of everything it found. Understood parameters: `xt` (and `xt.N`) with `urn:btih:` in hex
//! (40 digits) or base32 (32 characters, RFC 4648), `dn`, every `tr` (and `tr.N`) in order
//! without repeats, `x.pe` peers given as `IP:PORT` or `[IPv6]:PORT` literals (host names
//! in `x.pe` are skipped, never resolved), `so` (BEP 53 file selection: 0-based indices into
//! the info dict's file list and ranges, `so=0,2,4-6`) and `ws` web seeds. Everything else is
//! ignored, including `xt=urn:btmh:` next to a `btih` (v2 hashes are not used yet).

use std::fmt;
use std::net::SocketAddr;

/// What a magnet link says about a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// The v1 info hash (SHA-1 of the info dict).
    pub info_hash: [u8; 20],
    /// The display name (`dn`), if any: a hint only, the info dict's name is authoritative.
    pub name: Option<String>,
    /// Tracker URLs (`tr`), in link order, without repeats.
    pub trackers: Vec<String>,
    /// Peer addresses (`x.pe`), in link order, without repeats.
    pub peers: Vec<SocketAddr>,
    /// BEP 53 `so`: inclusive ranges of 0-based indices into the info dict's file list (pad
    /// files count), in link order; empty when the link selects nothing.
    pub select_only: Vec<(usize, usize)>,
    /// Web seed URLs (`ws`), in link order, without repeats.
    pub web_seeds: Vec<String>,
}

impl Magnet {
    /// The link that says all this: `magnet:?xt=urn:btih:HEX&dn=NAME&tr=URL&x.pe=ADDR`, the
    /// name and addresses percent-encoded; [`parse`] reads it back.
    pub fn to_link(&self) -> String {
        use crate::tracker::http::percent_encode;
        let mut link = String::from("magnet:?xt=urn:btih:");
        for b in self.info_hash {
            link.push_str(&format!("{b:02x}"));
        }
        if let Some(name) = &self.name {
            link.push_str("&dn=");
            link.push_str(&percent_encode(name.as_bytes()));
        }
        for tr in &self.trackers {
            link.push_str("&tr=");
            link.push_str(&percent_encode(tr.as_bytes()));
        }
        for pe in &self.peers {
            link.push_str("&x.pe=");
            link.push_str(&percent_encode(pe.to_string().as_bytes()));
        }
        for ws in &self.web_seeds {
            link.push_str("&ws=");
            link.push_str(&percent_encode(ws.as_bytes()));
        }
        if !self.select_only.is_empty() {
            let ranges: Vec<String> = self
                .select_only
                .iter()
                .map(|&(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect();
            link.push_str("&so=");
            link.push_str(&ranges.join(","));
        }
        link
    }
}

/// Why a string is not a usable magnet link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MagnetError {
    /// The string does not start with `magnet:?`.
    NotMagnet,
    /// No `xt` parameter names a BitTorrent info hash.
    NoInfoHash,
    /// The only hashes are v2 (`urn:btmh:`) ones.
    OnlyV2,
    /// The `btih` hash has a length that is neither 40 (hex) nor 32 (base32).
    BadHashLength(usize),
    /// The `btih` hash has the right length but a character outside its alphabet.
    BadHashChar(char),
    /// A BEP 53 `so` value that is not a list of file indices and ranges.
    BadSelectOnly(String),
}

impl fmt::Display for MagnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MagnetError::NotMagnet => write!(f, "not a magnet link (expected magnet:?...)"),
            MagnetError::NoInfoHash => {
                write!(f, "magnet link has no xt=urn:btih: info hash")
            }
            MagnetError::OnlyV2 => write!(f, "v2 (btmh) magnet links are not supported yet"),
            MagnetError::BadHashLength(n) => write!(
                f,
                "magnet info hash has {n} characters; expected 40 (hex) or 32 (base32)"
            ),
            MagnetError::BadHashChar(c) => {
                write!(f, "magnet info hash has an invalid character {c:?}")
            }
            MagnetError::BadSelectOnly(v) => write!(
                f,
                "magnet link: so={v:?} is not a list of file indices (BEP 53, e.g. so=0,2,4-6)"
            ),
        }
    }
}

impl std::error::Error for MagnetError {}

/// Parses a magnet link; see the module docs for what is read.
pub fn parse(link: &str) -> Result<Magnet, MagnetError> {
    let query = strip_prefix_ignore_case(link.trim(), "magnet:?").ok_or(MagnetError::NotMagnet)?;
    let mut info_hash = None;
    let mut saw_btmh = false;
    let mut name = None;
    let mut trackers: Vec<String> = Vec::new();
    let mut peers: Vec<SocketAddr> = Vec::new();
    let mut select_only = Vec::new();
    let mut web_seeds: Vec<String> = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match base_key(key) {
            "xt" => {
                let urn = String::from_utf8_lossy(&percent_decode(value, false)).into_owned();
                if let Some(hash) = strip_prefix_ignore_case(&urn, "urn:btih:") {
                    if info_hash.is_none() {
                        info_hash = Some(parse_btih(hash)?);
                    }
                } else if strip_prefix_ignore_case(&urn, "urn:btmh:").is_some() {
                    saw_btmh = true;
                }
            }
            "dn" if name.is_none() => {
                name = Some(String::from_utf8_lossy(&percent_decode(value, true)).into_owned());
            }
            "tr" => {
                if let Ok(url) = String::from_utf8(percent_decode(value, false)) {
                    if !url.is_empty() && !trackers.contains(&url) {
                        trackers.push(url);
                    }
                }
            }
            "x.pe" => {
                let text = String::from_utf8_lossy(&percent_decode(value, false)).into_owned();
                if let Ok(addr) = text.parse::<SocketAddr>() {
                    if addr.port() != 0 && !peers.contains(&addr) {
                        peers.push(addr);
                    }
                }
            }
            "so" => {
                let text = String::from_utf8_lossy(&percent_decode(value, false)).into_owned();
                select_only.extend(parse_select_only(&text)?);
            }
            "ws" => {
                if let Ok(url) = String::from_utf8(percent_decode(value, false)) {
                    if !url.is_empty() && !web_seeds.contains(&url) {
                        web_seeds.push(url);
                    }
                }
            }
            _ => {}
        }
    }
    let info_hash = match info_hash {
        Some(hash) => hash,
        None if saw_btmh => return Err(MagnetError::OnlyV2),
        None => return Err(MagnetError::NoInfoHash),
    };
    Ok(Magnet {
        info_hash,
        name,
        trackers,
        peers,
        select_only,
        web_seeds,
    })
}

/// `0,2,4-6` as inclusive ranges; refuses anything else (a descending range included).
fn parse_select_only(text: &str) -> Result<Vec<(usize, usize)>, MagnetError> {
    let bad = || MagnetError::BadSelectOnly(text.to_string());
    text.split(',')
        .map(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let a: usize = a.trim().parse().map_err(|_| bad())?;
            let b: usize = b.trim().parse().map_err(|_| bad())?;
            if a > b {
                return Err(bad());
            }
            Ok((a, b))
        })
        .collect()
}

/// `xt.1` → `xt`, `tr.2` → `tr`: BEP 9 numbers repeated keys this way. `x.pe` stays itself.
fn base_key(key: &str) -> &str {
    match key.split_once('.') {
        Some((base @ ("xt" | "tr"), n)) if n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => key,
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Decodes `%XX` escapes (a malformed escape is kept as it is) and, when `plus_is_space`,
/// turns `+` into a space.
fn percent_decode(s: &str, plus_is_space: bool) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escaped = (b == b'%')
            .then(|| {
                Some((
                    hex_digit(*bytes.get(i + 1)?)?,
                    hex_digit(*bytes.get(i + 2)?)?,
                ))
            })
            .flatten();
        match escaped {
            Some((hi, lo)) => {
                out.push((hi << 4) | lo);
                i += 3;
            }
            None => {
                out.push(if plus_is_space && b == b'+' { b' ' } else { b });
                i += 1;
            }
        }
    }
    out
}

fn hex_digit(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// A `btih` hash: 40 hex digits or 32 base32 characters, either case.
fn parse_btih(text: &str) -> Result<[u8; 20], MagnetError> {
    let mut hash = [0u8; 20];
    match text.len() {
        40 => {
            for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
                let digit = |c: u8| hex_digit(c).ok_or(MagnetError::BadHashChar(char::from(c)));
                hash[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
            }
        }
        32 => {
            let mut acc: u64 = 0;
            let mut bits = 0;
            let mut at = 0;
            for c in text.bytes() {
                let v = match c.to_ascii_uppercase() {
                    u @ b'A'..=b'Z' => u - b'A',
                    d @ b'2'..=b'7' => d - b'2' + 26,
                    _ => return Err(MagnetError::BadHashChar(char::from(c))),
                };
                acc = (acc << 5) | u64::from(v);
                bits += 5;
                if bits >= 8 {
                    bits -= 8;
                    hash[at] = (acc >> bits) as u8;
                    at += 1;
                }
            }
        }
        _ => {
            let chars = text.chars().count();
            return Err(MagnetError::BadHashLength(chars));
        }
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-1 of "strand", in both encodings (Python's `base64.b32encode` gave the second).
    const HEX: &str = "d6ed2f81b978eaf8cc61ce62f924059fe5141caf";
    const B32: &str = "23WS7ANZPDVPRTDBZZRPSJAFT7SRIHFP";
    const HASH: [u8; 20] = [
        0xd6, 0xed, 0x2f, 0x81, 0xb9, 0x78, 0xea, 0xf8, 0xcc, 0x61, 0xce, 0x62, 0xf9, 0x24, 0x05,
        0x9f, 0xe5, 0x14, 0x1c, 0xaf,
    ];

    #[test]
    fn hex_and_base32_name_the_same_hash() {
        let hex = parse(&format!("magnet:?xt=urn:btih:{HEX}")).unwrap();
        let upper = parse(&format!("magnet:?xt=urn:btih:{}", HEX.to_uppercase())).unwrap();
        let b32 = parse(&format!("magnet:?xt=urn:btih:{B32}")).unwrap();
        let lower = parse(&format!("magnet:?xt=urn:btih:{}", B32.to_lowercase())).unwrap();
        assert_eq!(hex.info_hash, HASH);
        assert_eq!(upper.info_hash, HASH);
        assert_eq!(b32.info_hash, HASH);
        assert_eq!(lower.info_hash, HASH);
        let counting = parse("magnet:?xt=urn:btih:AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT").unwrap();
        let expected: Vec<u8> = (0..20).collect();
        assert_eq!(counting.info_hash.as_slice(), expected.as_slice());
    }

    #[test]
    fn name_trackers_and_peers() {
        let link = format!(
            "MAGNET:?xt=urn:btih:{HEX}&dn=My+Show%20S01%2B&tr=udp%3A%2F%2Ft1.example%3A80\
             &tr=http%3A%2F%2Ft2.example%2Fannounce%3Fa%3D1&tr.1=udp%3A%2F%2Ft1.example%3A80\
             &x.pe=10.0.0.1:6881&x.pe=%5B2001%3Adb8%3A%3A1%5D%3A51413&x.pe=host.example:6881\
             &x.pe=10.0.0.2:0&x.pe=10.0.0.1:6881&so=0,2-4&ws=http%3A%2F%2Fweb"
        );
        let m = parse(&link).unwrap();
        assert_eq!(m.info_hash, HASH);
        assert_eq!(m.name.as_deref(), Some("My Show S01+"));
        assert_eq!(
            m.trackers,
            ["udp://t1.example:80", "http://t2.example/announce?a=1"]
        );
        assert_eq!(
            m.peers,
            [
                "10.0.0.1:6881".parse::<SocketAddr>().unwrap(),
                "[2001:db8::1]:51413".parse().unwrap()
            ]
        );
        assert_eq!(m.select_only, [(0, 0), (2, 4)]);
        assert_eq!(m.web_seeds, ["http://web"]);
    }

    #[test]
    fn select_only_forms() {
        let so = |v: &str| parse(&format!("magnet:?xt=urn:btih:{HEX}&so={v}"));
        assert_eq!(so("7").unwrap().select_only, [(7, 7)]);
        assert_eq!(so("1%2C3-3").unwrap().select_only, [(1, 1), (3, 3)]);
        for bad in ["", "a", "1,", "3-1", "-2", "1-2-3"] {
            assert_eq!(
                so(bad),
                Err(MagnetError::BadSelectOnly(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(
            MagnetError::BadSelectOnly("x".into()).to_string(),
            "magnet link: so=\"x\" is not a list of file indices (BEP 53, e.g. so=0,2,4-6)"
        );
    }

    #[test]
    fn plus_stays_a_plus_outside_dn() {
        let m = parse(&format!(
            "magnet:?xt=urn:btih:{HEX}&tr=http://a/x+y&dn=a%zzb"
        ))
        .unwrap();
        assert_eq!(m.trackers, ["http://a/x+y"]);
        assert_eq!(
            m.name.as_deref(),
            Some("a%zzb"),
            "a bad escape stays as it is"
        );
    }

    #[test]
    fn bare_hash_link() {
        let m = parse(&format!("magnet:?xt=urn:btih:{HEX}")).unwrap();
        assert_eq!((m.name, m.trackers.len(), m.peers.len()), (None, 0, 0));
        assert!(m.select_only.is_empty() && m.web_seeds.is_empty());
    }

    #[test]
    fn hybrid_link_uses_btih() {
        let link = format!(
            "magnet:?xt=urn:btmh:1220{}&xt=urn:btih:{HEX}",
            "ab".repeat(32)
        );
        assert_eq!(parse(&link).unwrap().info_hash, HASH);
    }

    #[test]
    fn malformed_links() {
        assert_eq!(parse("http://example.com"), Err(MagnetError::NotMagnet));
        assert_eq!(parse("magnet:"), Err(MagnetError::NotMagnet));
        assert_eq!(parse("magnet:?dn=x"), Err(MagnetError::NoInfoHash));
        assert_eq!(
            parse("magnet:?xt=urn:sha1:ABCD"),
            Err(MagnetError::NoInfoHash)
        );
        let v2 = format!("magnet:?xt=urn:btmh:1220{}", "ab".repeat(32));
        assert_eq!(parse(&v2), Err(MagnetError::OnlyV2));
        assert_eq!(
            MagnetError::OnlyV2.to_string(),
            "v2 (btmh) magnet links are not supported yet"
        );
        assert_eq!(
            parse(&format!("magnet:?xt=urn:btih:{}", &HEX[..39])),
            Err(MagnetError::BadHashLength(39))
        );
        assert_eq!(
            parse(&format!("magnet:?xt=urn:btih:{}g", &HEX[..39])),
            Err(MagnetError::BadHashChar('g'))
        );
        assert_eq!(
            parse(&format!("magnet:?xt=urn:btih:{}1", &B32[..31])),
            Err(MagnetError::BadHashChar('1'))
        );
        assert_eq!(
            parse("magnet:?xt=urn:btih:"),
            Err(MagnetError::BadHashLength(0))
        );
    }

    #[test]
    fn errors_are_one_line() {
        for e in [
            MagnetError::NotMagnet,
            MagnetError::NoInfoHash,
            MagnetError::OnlyV2,
            MagnetError::BadHashLength(3),
            MagnetError::BadHashChar('\n'),
            MagnetError::BadSelectOnly("a\nb".into()),
        ] {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn to_link_reads_back() {
        let m = Magnet {
            info_hash:
                *b"\x01\x23\x45\x67\x89\xab\xcd\xef\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xff",
            name: Some("my file & more/ü.txt".into()),
            trackers: vec![
                "http://127.0.0.1:6969/announce?key=a&b=c".into(),
                "udp://[::1]:80".into(),
            ],
            peers: vec![
                "127.0.0.1:6881".parse().unwrap(),
                "[::1]:7000".parse().unwrap(),
            ],
            select_only: vec![(0, 0), (2, 4)],
            web_seeds: vec!["http://127.0.0.1:8000/files/".into()],
        };
        let link = m.to_link();
        assert!(
            link.starts_with("magnet:?xt=urn:btih:0123456789abcdef00112233445566778899aaff&dn="),
            "{link}"
        );
        assert_eq!(parse(&link).unwrap(), m);
    }
}
