//! The cryptography of MSE: the 768-bit Diffie-Hellman exchange, the SHA-1 derivations the
//! handshake sends (`req1`, `req2`, `req3`) and the RC4 keys (`keyA`, `keyB`), and the two
//! cipher halves a connection keeps afterwards.
//!
//! Pure computation, run on the peer thread during the handshake. [`ReadCipher`] and
//! [`WriteCipher`] then go to the connection's reading and sending threads, one each: RC4
//! keeps a state per direction, so neither needs the other and no lock is shared.

use std::fs::File;
use std::io::Read;

use num_bigint::BigUint;
use sha1::{Digest, Sha1};

use super::rc4::Rc4;
use super::MseError;

/// Length of a DH public key and of the shared secret on the wire: 768 bits, big-endian,
/// zero-padded on the left.
pub(crate) const KEY_LEN: usize = 96;
/// Length of a private DH exponent: 160 bits, as the spec recommends.
pub(crate) const PRIVATE_LEN: usize = 20;
/// The longest PadA, PadB, PadC or PadD the spec allows.
pub(crate) const MAX_PAD: usize = 512;
/// Keystream bytes thrown away at the start of each RC4 stream (the spec's "RC4-drop1024").
const RC4_DROP: usize = 1024;

/// The spec's prime P (768 bits), big-endian. The generator is 2.
pub(crate) const PRIME: [u8; KEY_LEN] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC9, 0x0F, 0xDA, 0xA2, 0x21, 0x68, 0xC2, 0x34,
    0xC4, 0xC6, 0x62, 0x8B, 0x80, 0xDC, 0x1C, 0xD1, 0x29, 0x02, 0x4E, 0x08, 0x8A, 0x67, 0xCC, 0x74,
    0x02, 0x0B, 0xBE, 0xA6, 0x3B, 0x13, 0x9B, 0x22, 0x51, 0x4A, 0x08, 0x79, 0x8E, 0x34, 0x04, 0xDD,
    0xEF, 0x95, 0x19, 0xB3, 0xCD, 0x3A, 0x43, 0x1B, 0x30, 0x2B, 0x0A, 0x6D, 0xF2, 0x5F, 0x14, 0x37,
    0x4F, 0xE1, 0x35, 0x6D, 0x6D, 0x51, 0xC2, 0x45, 0xE4, 0x85, 0xB5, 0x76, 0x62, 0x5E, 0x7E, 0xC6,
    0xF4, 0x4C, 0x42, 0xE9, 0xA6, 0x3A, 0x36, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x05, 0x63,
];

/// One side's random material for one handshake: its private DH exponent (and the public key
/// it makes, computed once) and the pads it sends. Generated fresh for every connection.
#[derive(Clone)]
pub struct Secrets {
    private: [u8; PRIVATE_LEN],
    /// Y = 2^X mod P, as sent.
    public: [u8; KEY_LEN],
    /// PadA or PadB: random bytes sent in the clear after our public key.
    pad: Vec<u8>,
    /// Length of PadC or PadD (zeros, sent encrypted).
    inner_pad: usize,
}

impl Secrets {
    /// Fresh secrets from the operating system's random source.
    ///
    /// Not [`crate::rng::Rng`]: splitmix64 seeded from a hasher is predictable enough that an
    /// observer could recover the DH exponent, and the pads exist to make the exchange look
    /// random on the wire; both need the kernel's cryptographic randomness.
    pub(crate) fn generate() -> Result<Secrets, MseError> {
        let mut random = [0u8; PRIVATE_LEN + 4 + MAX_PAD];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut random))
            .map_err(MseError::Entropy)?;
        let (key, rest) = random.split_at(PRIVATE_LEN);
        let mut private = [0u8; PRIVATE_LEN];
        private.copy_from_slice(key);
        let pad_len = usize::from(u16::from_be_bytes([rest[0], rest[1]])) % (MAX_PAD + 1);
        let inner_pad = usize::from(u16::from_be_bytes([rest[2], rest[3]])) % (MAX_PAD + 1);
        let mut secrets = Secrets::fixed(private, pad_len, inner_pad);
        secrets.pad.copy_from_slice(&rest[4..4 + pad_len]);
        Ok(secrets)
    }

    /// Secrets chosen by the caller, for replayable tests and fuzzing: the private exponent,
    /// the length of the clear pad (filled with a fixed pattern) and of the encrypted pad.
    /// Pad lengths are capped at 512.
    pub fn fixed(private: [u8; PRIVATE_LEN], pad_len: usize, inner_pad: usize) -> Secrets {
        let pad_len = pad_len.min(MAX_PAD);
        let y = BigUint::from(2u32).modpow(&BigUint::from_bytes_be(&private), &prime());
        Secrets {
            private,
            public: to_key_bytes(&y),
            pad: (0..pad_len).map(|i| (i * 37 + 11) as u8).collect(),
            inner_pad: inner_pad.min(MAX_PAD),
        }
    }

    /// Our public key Y = 2^X mod P, followed by our clear pad: the first thing we send.
    pub(crate) fn public_key_and_pad(&self) -> Vec<u8> {
        let mut out = self.public.to_vec();
        out.extend_from_slice(&self.pad);
        out
    }

    /// The shared secret S = Y^X mod P for the peer's public key, refusing keys that would
    /// make S predictable (0, 1, P-1) or that are not below P.
    pub(crate) fn shared_secret(&self, their_key: &[u8; KEY_LEN]) -> Result<Secret, MseError> {
        let p = prime();
        let y = BigUint::from_bytes_be(their_key);
        if y <= BigUint::from(1u32) || y >= &p - 1u32 {
            return Err(MseError::WeakKey);
        }
        let s = y.modpow(&BigUint::from_bytes_be(&self.private), &p);
        Ok(Secret(to_key_bytes(&s)))
    }

    /// Length of PadC or PadD.
    pub(crate) fn inner_pad(&self) -> usize {
        self.inner_pad
    }
}

fn prime() -> BigUint {
    BigUint::from_bytes_be(&PRIME)
}

/// A number below P as 96 big-endian bytes.
fn to_key_bytes(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    out[KEY_LEN - bytes.len()..].copy_from_slice(&bytes);
    out
}

/// The DH shared secret S, as 96 bytes.
pub(crate) struct Secret(pub(crate) [u8; KEY_LEN]);

impl Secret {
    /// HASH('req1', S): the marker the responder synchronises on.
    pub(crate) fn req1(&self) -> [u8; 20] {
        hash(&[b"req1", &self.0])
    }

    /// HASH('req3', S): what the initiator xors over HASH('req2', SKEY).
    pub(crate) fn req3(&self) -> [u8; 20] {
        hash(&[b"req3", &self.0])
    }

    /// The two RC4 streams for the torrent `skey`: (initiator → responder, responder →
    /// initiator), each with its first 1024 keystream bytes already discarded.
    pub(crate) fn streams(&self, skey: &[u8; 20]) -> (Rc4Stream, Rc4Stream) {
        (
            Rc4Stream::new(hash(&[b"keyA", &self.0, skey])),
            Rc4Stream::new(hash(&[b"keyB", &self.0, skey])),
        )
    }
}

/// HASH('req2', SKEY): how the initiator names the torrent without showing its info hash.
pub(crate) fn req2(skey: &[u8; 20]) -> [u8; 20] {
    hash(&[b"req2", skey])
}

/// SHA-1 over the concatenation of `parts`.
fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// Byte-wise xor of two hashes.
pub(crate) fn xor(a: &[u8; 20], b: &[u8; 20]) -> [u8; 20] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// One direction's RC4 keystream, past the discarded 1024 bytes.
pub(crate) struct Rc4Stream(Rc4);

impl Rc4Stream {
    fn new(key: [u8; 20]) -> Rc4Stream {
        let mut rc4 = Rc4::new(&key);
        rc4.apply(&mut [0u8; RC4_DROP]);
        Rc4Stream(rc4)
    }

    /// Encrypts or decrypts `buf` in place (RC4 is its own inverse).
    pub(crate) fn apply(&mut self, buf: &mut [u8]) {
        self.0.apply(buf);
    }
}

/// What the peer sends us is decrypted with this: RC4, or nothing when the peers chose
/// plaintext. Owned by the connection's reading thread.
pub struct ReadCipher(pub(crate) Option<Rc4Stream>);

/// What we send is encrypted with this. Owned by the connection's sending thread.
pub struct WriteCipher(pub(crate) Option<Rc4Stream>);

impl ReadCipher {
    /// Decrypts `buf` in place, the next bytes of the peer's stream.
    pub(crate) fn decrypt(&mut self, buf: &mut [u8]) {
        if let Some(rc4) = &mut self.0 {
            rc4.apply(buf);
        }
    }

    /// Whether the stream is RC4-encrypted (false: plaintext after the handshake).
    pub fn is_rc4(&self) -> bool {
        self.0.is_some()
    }
}

impl WriteCipher {
    /// Encrypts `buf` in place, the next bytes of our stream.
    pub(crate) fn encrypt(&mut self, buf: &mut [u8]) {
        if let Some(rc4) = &mut self.0 {
            rc4.apply(buf);
        }
    }

    /// Whether the stream is RC4-encrypted (false: plaintext after the handshake).
    pub fn is_rc4(&self) -> bool {
        self.0.is_some()
    }
}

impl std::fmt::Debug for ReadCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadCipher({})", describe(self.is_rc4()))
    }
}

impl std::fmt::Debug for WriteCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WriteCipher({})", describe(self.is_rc4()))
    }
}

fn describe(rc4: bool) -> &'static str {
    if rc4 {
        "rc4"
    } else {
        "plaintext"
    }
}
