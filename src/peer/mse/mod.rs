//! Message Stream Encryption (MSE, also called Protocol Encryption), as libtorrent,
//! Transmission and qBittorrent speak it: a Diffie-Hellman exchange, then an RC4-encrypted
//! negotiation that picks RC4 or plaintext for the rest of the connection.
//!
//! Run on a peer thread, before the BitTorrent handshake: [`connect`] on a connection we
//! dialed (the initiator, "A" in the spec), [`accept`] on one we accepted (the responder,
//! "B"). Both only read from and write to what the caller hands them, so every read is bounded
//! by the caller's deadline-enforcing reader. They return an [`Established`] whose cipher
//! halves go to the connection's two threads: [`ReadCipher`] (in a [`DecryptingReader`]) to
//! the reading thread, [`WriteCipher`] (in an [`EncryptingWriter`]) to the sending thread.
//!
//! The exchange (`ENCRYPT` is RC4 keyed by HASH('keyA', S, SKEY) from A and
//! HASH('keyB', S, SKEY) from B, the first 1024 keystream bytes discarded; SKEY is the info
//! hash; VC is 8 zero bytes; every pad is at most 512 bytes):
//! 1. A → B: Ya, PadA
//! 2. B → A: Yb, PadB
//! 3. A → B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!    ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA), IA)
//! 4. B → A: ENCRYPT(VC, crypto_select, len(PadD), PadD)
//!
//! after which both streams continue in the selected method (RC4 continuing the same
//! keystreams, or plaintext). IA, the initial payload, carries A's BitTorrent handshake.
//! Neither side can tell where the other's pad ends, so each scans for a marker (B for
//! HASH('req1', S), A for the encrypted VC) within the window the pad allows, and never reads
//! past the bytes the marker guarantees, so nothing of the stream after the handshake is
//! consumed here.

mod crypto;
mod rc4;
mod stream;

use std::fmt;
use std::io::{self, Read, Write};

use crypto::{req2, xor, KEY_LEN, MAX_PAD};
pub use crypto::{ReadCipher, Secrets, WriteCipher};
pub use stream::{Ciphers, DecryptingReader, EncryptingWriter, Link};

/// The verification constant.
const VC: [u8; 8] = [0; 8];
/// crypto_provide / crypto_select bits.
const CRYPTO_PLAINTEXT: u32 = 0x01;
const CRYPTO_RC4: u32 = 0x02;
/// What the initiator must send after HASH('req1', S) even with an empty PadC:
/// HASH('req2') xor HASH('req3'), VC, crypto_provide, len(PadC), len(IA).
const AFTER_REQ1: usize = 20 + 8 + 4 + 2 + 2;
/// What the responder must send after its encrypted VC even with an empty PadD:
/// crypto_select, len(PadD).
const AFTER_VC: usize = 4 + 2;

/// The first bytes of a plaintext BitTorrent handshake.
const PLAINTEXT_START: &[u8; 20] = b"\x13BitTorrent protocol";

/// Whether the first bytes a peer sent begin a plaintext BitTorrent handshake rather than an
/// MSE public key. Give it the first 20 bytes (both a handshake and a key are longer): with
/// fewer, a key that happens to start like a handshake is taken for one.
pub(crate) fn is_plaintext_start(first: &[u8]) -> bool {
    !first.is_empty() && PLAINTEXT_START.starts_with(&first[..first.len().min(20)])
}

/// The user's encryption policy (`--encryption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encryption {
    /// Offer RC4 and plaintext, choose RC4 when the peer offers it; plaintext BitTorrent
    /// handshakes are accepted too.
    #[default]
    Prefer,
    /// RC4 streams only, both ways; plaintext handshakes are refused.
    Require,
    /// No encryption: plaintext handshakes only. Should an MSE exchange happen anyway, only
    /// plaintext may be selected in it.
    Off,
}

impl Encryption {
    /// The policy named `name` (`prefer`, `require` or `off`).
    pub fn parse(name: &str) -> Option<Encryption> {
        match name {
            "prefer" => Some(Encryption::Prefer),
            "require" => Some(Encryption::Require),
            "off" => Some(Encryption::Off),
            _ => None,
        }
    }

    /// The policy's name, as `--encryption` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Encryption::Prefer => "prefer",
            Encryption::Require => "require",
            Encryption::Off => "off",
        }
    }

    /// Whether a connection may skip MSE and start with a plaintext BitTorrent handshake.
    pub(crate) fn allows_plaintext_handshake(self) -> bool {
        self != Encryption::Require
    }

    /// The crypto_provide bits we offer, or may select.
    fn methods(self) -> u32 {
        match self {
            Encryption::Prefer => CRYPTO_PLAINTEXT | CRYPTO_RC4,
            Encryption::Require => CRYPTO_RC4,
            Encryption::Off => CRYPTO_PLAINTEXT,
        }
    }

    /// The method we select from what the initiator offers: RC4 if we may, else plaintext.
    fn choose(self, provide: u32) -> Option<Method> {
        let both = provide & self.methods();
        if both & CRYPTO_RC4 != 0 {
            Some(Method::Rc4)
        } else if both & CRYPTO_PLAINTEXT != 0 {
            Some(Method::Plaintext)
        } else {
            None
        }
    }
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the two sides settled on for the stream after the MSE handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The handshake was obfuscated; everything after it is plaintext.
    Plaintext,
    /// Everything after the handshake is RC4-encrypted, both ways.
    Rc4,
}

impl Method {
    fn bit(self) -> u32 {
        match self {
            Method::Plaintext => CRYPTO_PLAINTEXT,
            Method::Rc4 => CRYPTO_RC4,
        }
    }

    fn from_select(select: u32, offered: u32) -> Option<Method> {
        match select & offered {
            CRYPTO_PLAINTEXT if select == CRYPTO_PLAINTEXT => Some(Method::Plaintext),
            CRYPTO_RC4 if select == CRYPTO_RC4 => Some(Method::Rc4),
            _ => None,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Plaintext => "plaintext",
            Method::Rc4 => "rc4",
        })
    }
}

/// A finished MSE handshake.
#[derive(Debug)]
pub struct Established {
    /// The method both sides use from now on.
    pub method: Method,
    /// The torrent the connection is for (on [`accept`], the one the initiator named).
    pub info_hash: [u8; 20],
    /// Decrypts the peer's stream: give it to the reading thread.
    pub read: ReadCipher,
    /// Encrypts our stream: give it to the sending thread.
    pub write: WriteCipher,
    /// The initiator's initial payload, already decrypted (normally its 68-byte BitTorrent
    /// handshake); empty on [`connect`]. Pass it to [`DecryptingReader::new`] so that it is
    /// read before the rest of the stream.
    pub initial_payload: Vec<u8>,
}

/// Why an MSE handshake failed. Each is one line, prefixed by "MSE: ".
#[derive(Debug)]
pub enum MseError {
    /// /dev/urandom could not be read for our key and pads.
    Entropy(io::Error),
    /// The connection failed, timed out or ended while we were doing `doing`.
    Io {
        /// The step of the exchange.
        doing: &'static str,
        /// The I/O error.
        err: io::Error,
    },
    /// The peer closed after `got` bytes of its 96-byte public key (a peer that does not
    /// speak MSE closes here).
    KeyTooShort {
        /// Bytes of the key received.
        got: usize,
    },
    /// The peer's public key is 0, 1, P-1 or not below P: the shared secret would be
    /// predictable.
    WeakKey,
    /// `marker` did not appear within `window` bytes: the peer's pad is too long, or it
    /// computed a different shared secret.
    NoSync {
        /// Which marker was looked for.
        marker: &'static str,
        /// Bytes searched.
        window: usize,
    },
    /// The initiator names a torrent we do not have.
    UnknownTorrent,
    /// The decrypted verification constant is not zero: the keys do not match.
    WrongVc,
    /// A pad announced longer than 512 bytes.
    PadTooLarge {
        /// Which pad.
        pad: &'static str,
        /// Its announced length.
        len: u16,
    },
    /// The initiator offers no method our policy allows.
    NoCommonMethod {
        /// The methods offered (bit 0x01 plaintext, 0x02 RC4).
        offered: u32,
        /// Our policy.
        policy: Encryption,
    },
    /// The responder selected something other than exactly one method we offered.
    BadSelect {
        /// The method the responder selected.
        selected: u32,
        /// The methods we offered.
        offered: u32,
    },
    /// Our own initial payload does not fit its 16-bit length.
    PayloadTooLong(usize),
}

impl fmt::Display for MseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MseError::Entropy(e) => write!(f, "MSE: cannot read /dev/urandom for our key: {e}"),
            MseError::Io { doing, err } => write!(f, "MSE: {doing}: {err}"),
            MseError::KeyTooShort { got } => write!(
                f,
                "MSE: peer's DH key too short ({got} of {KEY_LEN} bytes, then the connection closed)"
            ),
            MseError::WeakKey => write!(f, "MSE: peer's DH key is degenerate (0, 1, P-1 or ≥ P)"),
            MseError::NoSync { marker, window } => {
                write!(f, "MSE: no {marker} within {window} bytes of the peer's DH key")
            }
            MseError::UnknownTorrent => {
                write!(f, "MSE: peer asks for a torrent we do not have")
            }
            MseError::WrongVc => write!(f, "MSE: wrong verification constant (keys do not match)"),
            MseError::PadTooLarge { pad, len } => {
                write!(f, "MSE: {pad} of {len} bytes is longer than {MAX_PAD}")
            }
            MseError::NoCommonMethod { offered, policy } => write!(
                f,
                "MSE: peer offers crypto {offered:#x}, none of which --encryption {policy} allows"
            ),
            MseError::BadSelect { selected, offered } => write!(
                f,
                "MSE: peer selected crypto {selected:#x}, not one method of the {offered:#x} we offered"
            ),
            MseError::PayloadTooLong(len) => {
                write!(f, "MSE: initial payload of {len} bytes is longer than 65535")
            }
        }
    }
}

impl std::error::Error for MseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MseError::Entropy(e) | MseError::Io { err: e, .. } => Some(e),
            _ => None,
        }
    }
}

/// The initiator's side, on a connection we dialed: offers the methods `policy` allows and
/// sends `initial_payload` (our BitTorrent handshake) inside the exchange. The peer's
/// handshake is then the first thing to read through the returned [`ReadCipher`].
pub fn connect<R: Read, W: Write>(
    reader: &mut R,
    writer: &mut W,
    info_hash: &[u8; 20],
    initial_payload: &[u8],
    policy: Encryption,
) -> Result<Established, MseError> {
    connect_with(
        &Secrets::generate()?,
        reader,
        writer,
        info_hash,
        initial_payload,
        policy,
    )
}

/// [`connect`] with the caller's key and pads (for tests).
pub(crate) fn connect_with<R: Read, W: Write>(
    secrets: &Secrets,
    reader: &mut R,
    writer: &mut W,
    info_hash: &[u8; 20],
    initial_payload: &[u8],
    policy: Encryption,
) -> Result<Established, MseError> {
    let offered = policy.methods();
    let ia_len = u16::try_from(initial_payload.len())
        .map_err(|_| MseError::PayloadTooLong(initial_payload.len()))?;
    send(writer, &secrets.public_key_and_pad(), "sending our DH key")?;
    let their_key = read_key(reader)?;
    let secret = secrets.shared_secret(&their_key)?;
    let (mut ours, mut theirs) = secret.streams(info_hash);

    let mut msg = Vec::with_capacity(40 + AFTER_REQ1 + MAX_PAD + initial_payload.len());
    msg.extend_from_slice(&secret.req1());
    msg.extend_from_slice(&xor(&req2(info_hash), &secret.req3()));
    let encrypted = msg.len();
    msg.extend_from_slice(&VC);
    msg.extend_from_slice(&offered.to_be_bytes());
    msg.extend_from_slice(&(secrets.inner_pad() as u16).to_be_bytes());
    msg.resize(msg.len() + secrets.inner_pad(), 0);
    msg.extend_from_slice(&ia_len.to_be_bytes());
    msg.extend_from_slice(initial_payload);
    ours.apply(&mut msg[encrypted..]);
    send(writer, &msg, "sending our crypto offer")?;

    let mut marker = VC;
    theirs.apply(&mut marker);
    let past = synchronise(
        reader,
        &marker,
        "verification constant",
        "looking for the peer's verification constant",
        MAX_PAD + VC.len(),
        AFTER_VC,
    )?;
    let mut input = (&past[..]).chain(reader);
    let mut head = [0u8; AFTER_VC];
    read(&mut input, &mut head, "reading the peer's crypto select")?;
    theirs.apply(&mut head);
    let selected = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let pad_d = u16::from_be_bytes([head[4], head[5]]);
    let method =
        Method::from_select(selected, offered).ok_or(MseError::BadSelect { selected, offered })?;
    if usize::from(pad_d) > MAX_PAD {
        return Err(MseError::PadTooLarge {
            pad: "PadD",
            len: pad_d,
        });
    }
    let mut pad = [0u8; MAX_PAD];
    let pad = &mut pad[..usize::from(pad_d)];
    read(&mut input, pad, "reading the peer's PadD")?;
    // Only to keep the keystream in step with the peer's.
    theirs.apply(pad);
    debug_assert!(input.into_inner().0.is_empty(), "read past the handshake");
    Ok(established(method, *info_hash, theirs, ours, Vec::new()))
}

/// The responder's side, on a connection we accepted whose first bytes (`already_read`, as
/// many as the caller read to tell MSE from plaintext with [`is_plaintext_start`]) were not a
/// plaintext handshake. Finds the torrent among `info_hashes` and selects a method per
/// `policy`. The initiator's BitTorrent handshake is normally in
/// [`Established::initial_payload`]; ours is then sent through the returned [`WriteCipher`].
pub fn accept<R: Read, W: Write>(
    already_read: &[u8],
    reader: &mut R,
    writer: &mut W,
    info_hashes: &[[u8; 20]],
    policy: Encryption,
) -> Result<Established, MseError> {
    accept_with(
        &Secrets::generate()?,
        already_read,
        reader,
        writer,
        info_hashes,
        policy,
    )
}

/// [`accept`] with the caller's key and pads (for tests and fuzzing).
pub fn accept_with<R: Read, W: Write>(
    secrets: &Secrets,
    already_read: &[u8],
    reader: &mut R,
    writer: &mut W,
    info_hashes: &[[u8; 20]],
    policy: Encryption,
) -> Result<Established, MseError> {
    let mut input = already_read.chain(reader);
    let their_key = read_key(&mut input)?;
    let secret = secrets.shared_secret(&their_key)?;
    send(writer, &secrets.public_key_and_pad(), "sending our DH key")?;

    let past = synchronise(
        &mut input,
        &secret.req1(),
        "HASH('req1', S)",
        "looking for the peer's HASH('req1', S)",
        MAX_PAD + 20,
        AFTER_REQ1,
    )?;
    let mut input = (&past[..]).chain(input);
    let mut named = [0u8; 20];
    read(&mut input, &mut named, "reading the peer's torrent hash")?;
    let wanted = xor(&named, &secret.req3());
    let info_hash = *info_hashes
        .iter()
        .find(|h| req2(h) == wanted)
        .ok_or(MseError::UnknownTorrent)?;
    let (mut theirs, mut ours) = secret.streams(&info_hash);

    let mut head = [0u8; 8 + 4 + 2];
    read(&mut input, &mut head, "reading the peer's crypto offer")?;
    theirs.apply(&mut head);
    if head[..8] != VC {
        return Err(MseError::WrongVc);
    }
    let offered = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    let method = policy
        .choose(offered)
        .ok_or(MseError::NoCommonMethod { offered, policy })?;
    let pad_c = u16::from_be_bytes([head[12], head[13]]);
    if usize::from(pad_c) > MAX_PAD {
        return Err(MseError::PadTooLarge {
            pad: "PadC",
            len: pad_c,
        });
    }
    let mut pad = [0u8; MAX_PAD + 2];
    let pad = &mut pad[..usize::from(pad_c) + 2];
    read(&mut input, pad, "reading the peer's PadC")?;
    theirs.apply(pad);
    let ia_len = u16::from_be_bytes([pad[pad.len() - 2], pad[pad.len() - 1]]);
    let mut payload = Vec::with_capacity(usize::from(ia_len).min(68));
    (&mut input)
        .take(u64::from(ia_len))
        .read_to_end(&mut payload)
        .map_err(|err| MseError::Io {
            doing: "reading the peer's initial payload",
            err,
        })?;
    if payload.len() < usize::from(ia_len) {
        return Err(MseError::Io {
            doing: "reading the peer's initial payload",
            err: io::ErrorKind::UnexpectedEof.into(),
        });
    }
    theirs.apply(&mut payload);
    debug_assert!(input.into_inner().0.is_empty(), "read past the handshake");

    let mut reply = Vec::with_capacity(8 + 4 + 2 + MAX_PAD);
    reply.extend_from_slice(&VC);
    reply.extend_from_slice(&method.bit().to_be_bytes());
    reply.extend_from_slice(&(secrets.inner_pad() as u16).to_be_bytes());
    reply.resize(reply.len() + secrets.inner_pad(), 0);
    ours.apply(&mut reply);
    send(writer, &reply, "sending our crypto select")?;
    Ok(established(method, info_hash, theirs, ours, payload))
}

/// What an initiator with `initiator`'s secrets sends a responder with `responder`'s, up to
/// and including HASH('req2') xor HASH('req3'), followed by `tail` encrypted as the
/// initiator's stream: a hostile or broken initiator in one buffer, for tests and fuzzing.
pub fn initiator_bytes(
    initiator: &Secrets,
    responder: &Secrets,
    info_hash: &[u8; 20],
    tail: &[u8],
) -> Result<Vec<u8>, MseError> {
    let mut out = initiator.public_key_and_pad();
    let mut their_key = [0u8; KEY_LEN];
    their_key.copy_from_slice(&responder.public_key_and_pad()[..KEY_LEN]);
    let secret = initiator.shared_secret(&their_key)?;
    out.extend_from_slice(&secret.req1());
    out.extend_from_slice(&xor(&req2(info_hash), &secret.req3()));
    let mut tail = tail.to_vec();
    secret.streams(info_hash).0.apply(&mut tail);
    out.extend_from_slice(&tail);
    Ok(out)
}

fn established(
    method: Method,
    info_hash: [u8; 20],
    theirs: crypto::Rc4Stream,
    ours: crypto::Rc4Stream,
    initial_payload: Vec<u8>,
) -> Established {
    let rc4 = method == Method::Rc4;
    Established {
        method,
        info_hash,
        read: ReadCipher(rc4.then_some(theirs)),
        write: WriteCipher(rc4.then_some(ours)),
        initial_payload,
    }
}

fn send<W: Write>(w: &mut W, bytes: &[u8], doing: &'static str) -> Result<(), MseError> {
    w.write_all(bytes)
        .and_then(|()| w.flush())
        .map_err(|err| MseError::Io { doing, err })
}

fn read<R: Read>(r: &mut R, buf: &mut [u8], doing: &'static str) -> Result<(), MseError> {
    r.read_exact(buf).map_err(|err| MseError::Io { doing, err })
}

/// Reads the peer's 96-byte public key, telling a short key from other failures.
fn read_key<R: Read>(r: &mut R) -> Result<[u8; KEY_LEN], MseError> {
    let mut key = [0u8; KEY_LEN];
    let mut got = 0;
    while got < KEY_LEN {
        match r.read(&mut key[got..]) {
            Ok(0) => return Err(MseError::KeyTooShort { got }),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                return Err(MseError::Io {
                    doing: "reading the peer's DH key",
                    err,
                })
            }
        }
    }
    Ok(key)
}

/// Reads until `marker` has arrived, ending within `window` bytes, and returns the bytes read
/// past its end. A marker in the stream guarantees `after` more bytes behind it, so reads
/// never go further than that: with `n` bytes seen and no match, a match could still start
/// at `n - marker.len() + 1`, so `n + 1 + after` bytes are sure to come.
fn synchronise<R: Read>(
    r: &mut R,
    marker: &[u8],
    name: &'static str,
    doing: &'static str,
    window: usize,
    after: usize,
) -> Result<Vec<u8>, MseError> {
    let mut seen = Vec::with_capacity(window + after);
    loop {
        let searched = &seen[..seen.len().min(window)];
        if let Some(at) = searched.windows(marker.len()).position(|w| w == marker) {
            return Ok(seen.split_off(at + marker.len()));
        }
        if seen.len() >= window {
            return Err(MseError::NoSync {
                marker: name,
                window,
            });
        }
        let earliest = (seen.len() + 1).saturating_sub(marker.len());
        let sure = earliest + marker.len() + after;
        let old = seen.len();
        seen.resize(sure, 0);
        read(r, &mut seen[old..], doing)?;
    }
}

#[cfg(test)]
mod tests;
