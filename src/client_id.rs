//! Which program a peer runs, read from the peer id of its handshake: for logs.
//!
//! Pure. Two conventions cover nearly every client: Azureus style `-XX1234-…` (two letters
//! for the client, four characters of version) and Mainline style `M4-3-6--…` (a prefix,
//! then version numbers separated by dashes).

/// Azureus-style client codes (BEP 20 and common practice).
const AZUREUS: &[(&str, &str)] = &[
    ("AZ", "Vuze"),
    ("BC", "BitComet"),
    ("BI", "BiglyBT"),
    ("BT", "BitTorrent"),
    ("DE", "Deluge"),
    ("FD", "Free Download Manager"),
    ("KT", "KTorrent"),
    ("LT", "libtorrent (rasterbar)"),
    ("lt", "libTorrent (rakshasa)"),
    ("PI", "PicoTorrent"),
    ("qB", "qBittorrent"),
    ("RQ", "rqbit"),
    ("SR", "strand"),
    ("TR", "Transmission"),
    ("TS", "strand test kit"),
    ("UT", "µTorrent"),
    ("UW", "µTorrent Web"),
    ("WW", "WebTorrent"),
];

/// The first 8 bytes of our own peer id: `-SR` and this crate's version, Azureus style, one
/// character per number (0-9, then A-Z for 10-35) for major, minor and patch, then `0` (no
/// build): `-SR0100-` for 0.1.0.
pub(crate) fn our_prefix() -> [u8; 8] {
    let digit = |n: &str| match n.parse::<u8>() {
        Ok(n @ 0..=9) => b'0' + n,
        Ok(n @ 10..=35) => b'A' + n - 10,
        _ => b'Z',
    };
    let mut parts = env!("CARGO_PKG_VERSION").split(['.', '-', '+']);
    let mut prefix = *b"-SR0000-";
    for slot in &mut prefix[3..6] {
        *slot = digit(parts.next().unwrap_or("0"));
    }
    prefix
}

/// Mainline-style prefixes: the client, then its version numbers separated by dashes.
const MAINLINE: &[(&[u8], &str)] = &[(b"A2-", "aria2"), (b"M", "BitTorrent (mainline)")];

/// The client's name and version as far as the peer id tells, e.g. `Transmission 4.0.5`
/// for `-TR4050-…` (an Azureus-style id's fourth character is a build number or tag, shown
/// only when not `0`); otherwise `unknown` and the id's printable start.
pub(crate) fn client_name(id: &[u8; 20]) -> String {
    if id[0] == b'-' && id[7] == b'-' {
        let code = String::from_utf8_lossy(&id[1..3]);
        let mut version: Vec<String> = id[3..7]
            .iter()
            .map(|&c| match c {
                b'0'..=b'9' => char::from(c).to_string(),
                b'A'..=b'Z' => (c - b'A' + 10).to_string(),
                b'a'..=b'z' => (c - b'a' + 10).to_string(),
                _ => "?".into(),
            })
            .collect();
        if version[3] == "0" {
            version.pop();
        }
        let version = version.join(".");
        if let Some((_, name)) = AZUREUS.iter().find(|(c, _)| *c == code) {
            return format!("{name} {version}");
        }
        if id[1..3].iter().all(u8::is_ascii_alphanumeric) {
            return format!("unknown client {code} {version}");
        }
    }
    for (prefix, name) in MAINLINE {
        let Some(rest) = id.strip_prefix(*prefix) else {
            continue;
        };
        let end = rest
            .iter()
            .position(|&c| !(c.is_ascii_digit() || c == b'-'))
            .unwrap_or(rest.len());
        let version: Vec<&str> = std::str::from_utf8(&rest[..end])
            .unwrap_or("")
            .split('-')
            .filter(|s| !s.is_empty())
            .collect();
        if rest.first().is_some_and(u8::is_ascii_digit) {
            return format!("{name} {}", version.join("."));
        }
    }
    let printable: String = id
        .iter()
        .take_while(|c| c.is_ascii_graphic())
        .take(8)
        .map(|&c| char::from(c))
        .collect();
    if printable.is_empty() {
        "unknown client".into()
    } else {
        format!("unknown client ({printable}…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &[u8]) -> [u8; 20] {
        let mut id = [0x01; 20];
        id[..s.len()].copy_from_slice(s);
        id
    }

    #[test]
    fn names_the_common_clients() {
        assert_eq!(client_name(&id(b"-TR4050-")), "Transmission 4.0.5");
        assert_eq!(client_name(&id(b"-qB4630-")), "qBittorrent 4.6.3");
        assert_eq!(
            client_name(&id(b"-LT2090-")),
            "libtorrent (rasterbar) 2.0.9"
        );
        assert_eq!(client_name(&id(b"-UT355B-")), "µTorrent 3.5.5.11");
        assert_eq!(client_name(&id(b"A2-1-37-0-")), "aria2 1.37.0");
        assert_eq!(client_name(&id(b"M7-4-0--")), "BitTorrent (mainline) 7.4.0");
        assert_eq!(client_name(&id(b"-ZZ1A00-")), "unknown client ZZ 1.10.0");
        assert_eq!(client_name(&id(b"hello")), "unknown client (hello…)");
        assert_eq!(client_name(&[0; 20]), "unknown client");
    }

    #[test]
    fn our_peer_id_carries_our_version() {
        let id = crate::session::new_peer_id();
        assert_eq!(
            client_name(&id),
            format!("strand {}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(&id[..8], b"-SR0100-", "version 0.1.0, Azureus style");
    }
}
