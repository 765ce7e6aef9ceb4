//! The 68-byte BitTorrent handshake: protocol string, reserved bits, info hash, peer id.
//!
//! Pure encoding and decoding, run on each peer thread before the wire codec takes over.
//! It owns nothing; the peer thread writes [`Handshake::to_bytes`] with one write and reads
//! the peer's with [`read_handshake`].

use std::fmt;
use std::io::{self, Read};

/// The protocol string that follows the length byte.
const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// Length of a handshake on the wire.
const HANDSHAKE_LEN: usize = 68;

/// Byte and bit of the reserved field that announce BEP 10 extension support.
const EXTENSION_BYTE: usize = 5;
const EXTENSION_BIT: u8 = 0x10;
/// Byte and bit of the reserved field that announce the BEP 6 Fast extension.
const FAST_BYTE: usize = 7;
const FAST_BIT: u8 = 0x04;

/// One side's handshake; declared with the messages between threads, since the listener
/// hands a peer's to the main thread.
pub use crate::messages::Handshake;

/// Why a handshake was refused.
#[derive(Debug)]
pub enum HandshakeError {
    /// The stream failed or ended before 68 bytes arrived.
    Io(io::Error),
    /// The first 20 bytes are not `19` followed by "BitTorrent protocol".
    BadProtocol,
    /// The peer's info hash is not the one we expected.
    WrongInfoHash,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Io(e) => write!(f, "handshake i/o error: {e}"),
            HandshakeError::BadProtocol => write!(f, "peer does not speak BitTorrent protocol"),
            HandshakeError::WrongInfoHash => write!(f, "peer sent a different info hash"),
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandshakeError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for HandshakeError {
    fn from(e: io::Error) -> HandshakeError {
        HandshakeError::Io(e)
    }
}

impl Handshake {
    /// Our handshake: the BEP 10 extension bit and the BEP 6 Fast bit set in the reserved
    /// bytes, nothing else.
    pub fn new(info_hash: [u8; 20], peer_id: [u8; 20]) -> Handshake {
        let mut reserved = [0u8; 8];
        reserved[EXTENSION_BYTE] = EXTENSION_BIT;
        reserved[FAST_BYTE] = FAST_BIT;
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// The 68 bytes to send.
    pub fn to_bytes(&self) -> [u8; 68] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = PROTOCOL.len() as u8;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash);
        out[48..68].copy_from_slice(&self.peer_id);
        out
    }

    /// Whether the sender announces BEP 10 extension messages.
    pub fn supports_extensions(&self) -> bool {
        self.reserved[EXTENSION_BYTE] & EXTENSION_BIT != 0
    }

    /// Whether the sender speaks the BEP 6 Fast extension. A connection uses it only when
    /// both handshakes say so.
    pub fn supports_fast(&self) -> bool {
        self.reserved[FAST_BYTE] & FAST_BIT != 0
    }

    /// Checks that the handshake is for the torrent whose info hash is `expected`.
    pub(crate) fn check_info_hash(&self, expected: &[u8; 20]) -> Result<(), HandshakeError> {
        if &self.info_hash == expected {
            Ok(())
        } else {
            Err(HandshakeError::WrongInfoHash)
        }
    }
}

/// Reads a peer's 68-byte handshake from `r`.
///
/// The protocol prefix (first 20 bytes) is checked before the rest is read, so a peer
/// speaking something else is refused without waiting for more. The info hash is not
/// checked here; call [`Handshake::check_info_hash`].
pub fn read_handshake(r: &mut impl Read) -> Result<Handshake, HandshakeError> {
    let mut prefix = [0u8; 20];
    r.read_exact(&mut prefix)?;
    if usize::from(prefix[0]) != PROTOCOL.len() || &prefix[1..] != PROTOCOL {
        return Err(HandshakeError::BadProtocol);
    }
    let mut rest = [0u8; HANDSHAKE_LEN - 20];
    r.read_exact(&mut rest)?;
    let mut hs = Handshake {
        reserved: [0; 8],
        info_hash: [0; 20],
        peer_id: [0; 20],
    };
    hs.reserved.copy_from_slice(&rest[..8]);
    hs.info_hash.copy_from_slice(&rest[8..28]);
    hs.peer_id.copy_from_slice(&rest[28..]);
    Ok(hs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, ErrorKind};

    fn sample() -> Handshake {
        Handshake::new([0x11; 20], *b"-ST0001-abcdefghijkl")
    }

    #[test]
    fn round_trip_and_layout() {
        let hs = sample();
        let bytes = hs.to_bytes();
        assert_eq!(bytes[0], 19);
        assert_eq!(&bytes[1..20], b"BitTorrent protocol");
        assert_eq!(&bytes[20..28], &[0, 0, 0, 0, 0, 0x10, 0, 0x04]);
        assert_eq!(&bytes[48..], b"-ST0001-abcdefghijkl");
        let back = read_handshake(&mut Cursor::new(bytes.to_vec())).unwrap();
        assert_eq!(back, hs);
        assert!(back.supports_extensions());
        assert!(back.supports_fast());
    }

    #[test]
    fn fast_bit_is_read_from_the_last_reserved_byte() {
        let mut hs = sample();
        hs.reserved = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb];
        assert!(!hs.supports_fast());
        hs.reserved = [0, 0, 0, 0, 0, 0, 0, 0x04];
        assert!(hs.supports_fast());
        assert!(!hs.supports_extensions());
    }

    #[test]
    fn extension_bit_is_read_from_the_reserved_bytes() {
        let mut hs = sample();
        hs.reserved = [0xff, 0xff, 0xff, 0xff, 0xff, 0xef, 0xff, 0xff];
        assert!(!hs.supports_extensions());
        hs.reserved = [0; 8];
        hs.reserved[5] = 0x10;
        assert!(hs.supports_extensions());
    }

    /// A reader that serves `data` and then fails, to show the codec stopped reading.
    struct Only(Cursor<Vec<u8>>);

    impl Read for Only {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(io::Error::other("read too far")),
                n => Ok(n),
            }
        }
    }

    /// `read_handshake` on only the first 20 bytes of the sample, byte `at` set to `value`.
    fn first_20_with(at: usize, value: u8) -> Result<Handshake, HandshakeError> {
        let mut bytes = sample().to_bytes();
        bytes[at] = value;
        read_handshake(&mut Only(Cursor::new(bytes[..20].to_vec())))
    }

    #[test]
    fn wrong_pstrlen_is_refused_after_20_bytes() {
        assert!(matches!(
            first_20_with(0, 18),
            Err(HandshakeError::BadProtocol)
        ));
    }

    #[test]
    fn wrong_protocol_string_is_refused_after_20_bytes() {
        assert!(matches!(
            first_20_with(19, b'X'),
            Err(HandshakeError::BadProtocol)
        ));
    }

    #[test]
    fn truncated_handshake_is_io_error() {
        let bytes = sample().to_bytes();
        for cut in [0, 10, 20, 67] {
            let err = read_handshake(&mut Cursor::new(bytes[..cut].to_vec())).unwrap_err();
            assert!(
                matches!(&err, HandshakeError::Io(e) if e.kind() == ErrorKind::UnexpectedEof),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn info_hash_check() {
        let hs = sample();
        assert!(hs.check_info_hash(&[0x11; 20]).is_ok());
        let mut other = [0x11; 20];
        other[19] = 0x12;
        assert!(matches!(
            hs.check_info_hash(&other),
            Err(HandshakeError::WrongInfoHash)
        ));
    }
}
