use std::io::{self, Cursor, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use super::crypto::{Secrets, KEY_LEN};
use super::*;
use crate::net::is_timeout;
use crate::peer::dial::DeadlineReader;
use crate::peer::handshake::{read_handshake, Handshake};
use crate::peer::wire::{self, Message};
use crate::rng::Rng;

const HASH_A: [u8; 20] = [0x55; 20];
const HASH_B: [u8; 20] = [0x66; 20];
const HASH_C: [u8; 20] = [0x77; 20];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn key(first: u8) -> [u8; 20] {
    std::array::from_fn(|i| first + i as u8)
}

/// Initiator and responder secrets of the known-answer test.
fn fixed_a(pad: usize, inner: usize) -> Secrets {
    Secrets::fixed(key(0x01), pad, inner)
}

fn fixed_b(pad: usize, inner: usize) -> Secrets {
    Secrets::fixed(key(0xa1), pad, inner)
}

/// Hands out at most one byte per read, after `delay`.
struct Drip<R> {
    inner: R,
    delay: Duration,
}

impl<R: Read> Read for Drip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        thread::sleep(self.delay);
        let n = buf.len().min(1);
        self.inner.read(&mut buf[..n])
    }
}

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    (a, b)
}

/// Runs a real initiator against a real responder over a socket pair; returns both results
/// and the sockets for what follows the handshake.
#[allow(clippy::type_complexity)]
fn exchange(
    initiator: Encryption,
    responder: Encryption,
    dial: [u8; 20],
    ours: Vec<[u8; 20]>,
    payload: Vec<u8>,
) -> (
    (Result<Established, MseError>, UnixStream),
    (Result<Established, MseError>, UnixStream),
) {
    let (a, b) = pair();
    let accepting = thread::spawn(move || {
        let mut first = [0u8; 20];
        (&b).read_exact(&mut first).unwrap();
        assert!(!is_plaintext_start(&first));
        let r = accept(&first, &mut &b, &mut &b, &ours, responder);
        if r.is_err() {
            b.shutdown(std::net::Shutdown::Both).unwrap();
        }
        (r, b)
    });
    let r = connect(&mut &a, &mut &a, &dial, &payload, initiator);
    if r.is_err() {
        // Let a responder that waits for more see the end of the stream.
        a.shutdown(std::net::Shutdown::Both).unwrap();
    }
    let theirs = accepting.join().unwrap();
    ((r, a), theirs)
}

#[test]
fn known_answer_key_derivation() {
    let a = fixed_a(0, 0);
    let b = fixed_b(0, 0);
    let ya = a.public_key_and_pad();
    let yb = b.public_key_and_pad();
    assert_eq!(
        ya,
        unhex(
            "96e112dab29e8c5272accb9b17b26887ce54a144a4e3b697c7d159b7a817e556\
             b0918db2b4c658e02a87f7e5fb14b18a553e084cbf3dad2d30f16596ccb982d4\
             06258c61b30c5c1dae2ddc60bdbd48d79896312aad63238c39e1a633821eb693"
        )
    );
    assert_eq!(
        yb,
        unhex(
            "6f72c10f7c5cb043a9f36fa7089d06b8e6dfac4e4a1aa6b0132d7ab064b33c59\
             5079f97e083b5d2dd56908c635c06cfd18da020eaf0da28bb27f7a2feb2cdd93\
             260c139a59bf00aa7fffb754d3ffd63f2c4e911b84b8dc080e0e198f2cb9f510"
        )
    );
    let s_a = a.shared_secret(&yb[..].try_into().unwrap()).unwrap();
    let s_b = b.shared_secret(&ya[..].try_into().unwrap()).unwrap();
    let expected_s = unhex(
        "647917bf1d8fa2dd2287ca80f6f3c81d3b2b46731e2cd43a15c49e6c912c1dd3\
         daf8a43b3b12057c27bb91ebdf21d771d001ea17e04705a62d6732246dbd9cf7\
         e0f79cb490e75962697d487eec5ca71bfa112a3323445eb2e25a7f472854e83d",
    );
    assert_eq!(s_a.0.to_vec(), expected_s);
    assert_eq!(s_b.0.to_vec(), expected_s);
    assert_eq!(
        s_a.req1().to_vec(),
        unhex("90896606dafbb8f455a81bebcc266214333441a1")
    );
    assert_eq!(
        s_a.req3().to_vec(),
        unhex("63766e650e6b87d340efde5a67117b5854b4d023")
    );
    assert_eq!(
        crypto::req2(&HASH_A).to_vec(),
        unhex("58fa7aaf8f88daa1986e8ab84fbe9c45802e1ade")
    );
    // RC4 keystreams after the 1024 discarded bytes (keyA, keyB).
    let (mut to_b, mut to_a) = s_a.streams(&HASH_A);
    let mut ks = [0u8; 16];
    to_b.apply(&mut ks);
    assert_eq!(ks.to_vec(), unhex("24a11790b335a5c3b8bee6cf356ca6f2"));
    let mut ks = [0u8; 16];
    to_a.apply(&mut ks);
    assert_eq!(ks.to_vec(), unhex("8d42e814345807d2d4add74511d0fd41"));
}

#[test]
fn generated_secrets_differ_and_keep_pads_in_bounds() {
    let one = Secrets::generate().unwrap();
    let two = Secrets::generate().unwrap();
    let (k1, k2) = (one.public_key_and_pad(), two.public_key_and_pad());
    assert!((KEY_LEN..=KEY_LEN + 512).contains(&k1.len()));
    assert!(one.inner_pad() <= 512);
    assert_ne!(k1[..KEY_LEN], k2[..KEY_LEN]);
}

#[test]
fn plaintext_start_is_told_from_a_key() {
    let hs = Handshake::new(HASH_A, [1; 20]).to_bytes();
    assert!(is_plaintext_start(&hs[..20]));
    assert!(is_plaintext_start(&hs));
    let mut key = fixed_a(0, 0).public_key_and_pad();
    assert!(!is_plaintext_start(&key[..20]));
    key[0] = 19;
    assert!(!is_plaintext_start(&key[..20]));
    assert!(!is_plaintext_start(&[]));
}

#[test]
fn policies_parse_and_choose() {
    for p in [Encryption::Prefer, Encryption::Require, Encryption::Off] {
        assert_eq!(Encryption::parse(p.name()), Some(p));
    }
    assert_eq!(Encryption::parse("yes"), None);
    assert_eq!(Encryption::default(), Encryption::Prefer);
    assert_eq!(Encryption::Prefer.choose(3), Some(Method::Rc4));
    assert_eq!(Encryption::Prefer.choose(1), Some(Method::Plaintext));
    assert_eq!(Encryption::Require.choose(3), Some(Method::Rc4));
    assert_eq!(Encryption::Require.choose(1), None);
    assert_eq!(Encryption::Off.choose(3), Some(Method::Plaintext));
    assert_eq!(Encryption::Off.choose(2), None);
    assert_eq!(Encryption::Prefer.choose(0xfc), None);
    assert!(!Encryption::Require.allows_plaintext_handshake());
    assert!(Encryption::Off.allows_plaintext_handshake());
}

#[test]
fn rc4_is_selected_and_carries_the_handshakes_both_ways() {
    let ours = Handshake::new(HASH_B, [1; 20]);
    let ((dialed, a), (accepted, b)) = exchange(
        Encryption::Prefer,
        Encryption::Prefer,
        HASH_B,
        vec![HASH_A, HASH_B],
        ours.to_bytes().to_vec(),
    );
    let (dialed, accepted) = (dialed.unwrap(), accepted.unwrap());
    assert_eq!(dialed.method, Method::Rc4);
    assert_eq!(accepted.method, Method::Rc4);
    assert_eq!(accepted.info_hash, HASH_B);
    assert!(dialed.read.is_rc4() && dialed.write.is_rc4());

    // The responder reads the initiator's handshake from the initial payload, answers with
    // its own through its cipher; the initiator reads it through its own.
    let mut b_in = DecryptingReader::new(&b, accepted.read, accepted.initial_payload);
    assert_eq!(read_handshake(&mut b_in).unwrap(), ours);
    let theirs = Handshake::new(HASH_B, [2; 20]);
    let mut b_out = EncryptingWriter::new(&b, accepted.write);
    b_out.write_all(&theirs.to_bytes()).unwrap();
    let mut a_in = DecryptingReader::new(&a, dialed.read, dialed.initial_payload);
    assert_eq!(read_handshake(&mut a_in).unwrap(), theirs);

    // Then 256 KiB, written in uneven pieces, arrives intact.
    let mut data = vec![0u8; 1 << 18];
    Rng::seeded(7).fill(&mut data);
    let sent = data.clone();
    let writer = thread::spawn(move || {
        let mut a_out = EncryptingWriter::new(&a, dialed.write);
        for chunk in sent.chunks(10_000 - 1) {
            a_out.write_all(chunk).unwrap();
        }
    });
    let mut got = vec![0u8; data.len()];
    b_in.read_exact(&mut got).unwrap();
    writer.join().unwrap();
    assert!(got == data);
}

#[test]
fn rc4_stream_is_not_plaintext_on_the_wire() {
    let ((dialed, a), (accepted, b)) = exchange(
        Encryption::Require,
        Encryption::Prefer,
        HASH_A,
        vec![HASH_A],
        Vec::new(),
    );
    let (dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    assert_eq!(accepted.method, Method::Rc4);
    assert!(accepted.initial_payload.is_empty());
    let msg = b"interested, unchoke, have 0, have 1";
    EncryptingWriter::new(&a, dialed.write)
        .write_all(msg)
        .unwrap();
    let mut raw = [0u8; 35];
    (&b).read_exact(&mut raw).unwrap();
    assert_ne!(&raw, msg);
    accepted.read.decrypt(&mut raw);
    assert_eq!(&raw, msg);
}

#[test]
fn plaintext_is_selected_when_the_initiator_offers_only_plaintext() {
    let hs = Handshake::new(HASH_A, [3; 20]);
    let ((dialed, a), (accepted, b)) = exchange(
        Encryption::Off,
        Encryption::Prefer,
        HASH_A,
        vec![HASH_A],
        hs.to_bytes().to_vec(),
    );
    let (dialed, accepted) = (dialed.unwrap(), accepted.unwrap());
    assert_eq!(dialed.method, Method::Plaintext);
    assert_eq!(accepted.method, Method::Plaintext);
    assert!(!dialed.write.is_rc4() && !accepted.read.is_rc4());
    // The initial payload was still encrypted in the exchange, and arrives decrypted.
    assert_eq!(accepted.initial_payload, hs.to_bytes());
    // What follows goes in the clear.
    EncryptingWriter::new(&b, accepted.write)
        .write_all(b"plain")
        .unwrap();
    let mut raw = [0u8; 5];
    (&a).read_exact(&mut raw).unwrap();
    assert_eq!(&raw, b"plain");
}

#[test]
fn plaintext_is_selected_by_a_responder_that_allows_only_plaintext() {
    let ((dialed, _a), (accepted, _b)) = exchange(
        Encryption::Prefer,
        Encryption::Off,
        HASH_A,
        vec![HASH_A],
        Vec::new(),
    );
    assert_eq!(dialed.unwrap().method, Method::Plaintext);
    assert_eq!(accepted.unwrap().method, Method::Plaintext);
}

#[test]
fn require_and_plaintext_only_refuse_each_other() {
    let ((dialed, _a), (accepted, _b)) = exchange(
        Encryption::Require,
        Encryption::Off,
        HASH_A,
        vec![HASH_A],
        Vec::new(),
    );
    match accepted {
        Err(MseError::NoCommonMethod { offered: 2, .. }) => {}
        other => panic!("responder: {other:?}"),
    }
    // The responder hung up: the initiator does not hang.
    assert!(matches!(dialed, Err(MseError::Io { .. })), "{dialed:?}");

    let ((_, _a), (accepted, _b)) = exchange(
        Encryption::Off,
        Encryption::Require,
        HASH_A,
        vec![HASH_A],
        Vec::new(),
    );
    let e = accepted.unwrap_err();
    assert!(matches!(e, MseError::NoCommonMethod { offered: 1, .. }));
    assert_eq!(
        e.to_string(),
        "MSE: peer offers crypto 0x1, none of which --encryption require allows"
    );
}

#[test]
fn responder_finds_the_torrent_among_many_or_refuses() {
    let ((dialed, _a), (accepted, _b)) = exchange(
        Encryption::Prefer,
        Encryption::Prefer,
        HASH_C,
        vec![HASH_A, HASH_B, HASH_C],
        Vec::new(),
    );
    assert_eq!(accepted.unwrap().info_hash, HASH_C);
    assert_eq!(dialed.unwrap().info_hash, HASH_C);

    let ((_, _a), (accepted, _b)) = exchange(
        Encryption::Prefer,
        Encryption::Prefer,
        HASH_C,
        vec![HASH_A, HASH_B],
        Vec::new(),
    );
    assert!(matches!(accepted, Err(MseError::UnknownTorrent)));
}

/// The responder fed `bytes` in one go; what it writes is thrown away.
fn accept_bytes(bytes: &[u8], policy: Encryption) -> Result<Established, MseError> {
    let mut input = Cursor::new(bytes);
    accept_with(
        &fixed_b(100, 3),
        &[],
        &mut input,
        &mut io::sink(),
        &[HASH_A],
        policy,
    )
}

/// Encrypted part of an initiator's step 3: VC, crypto_provide, PadC, IA.
fn offer(vc: [u8; 8], provide: u32, pad_c: u16, ia: &[u8]) -> Vec<u8> {
    let mut out = vc.to_vec();
    out.extend_from_slice(&provide.to_be_bytes());
    out.extend_from_slice(&pad_c.to_be_bytes());
    out.resize(out.len() + usize::from(pad_c).min(600), 0);
    out.extend_from_slice(&(ia.len() as u16).to_be_bytes());
    out.extend_from_slice(ia);
    out
}

fn crafted(pad_a: usize, tail: &[u8]) -> Vec<u8> {
    initiator_bytes(&fixed_a(pad_a, 0), &fixed_b(100, 3), &HASH_A, tail).unwrap()
}

#[test]
fn crafted_initiator_is_accepted_with_every_pad_length() {
    let hs = Handshake::new(HASH_A, [9; 20]).to_bytes();
    for pad_a in [0, 1, 19, 20, 21, 255, 511, 512] {
        for pad_c in [0, 1, 36, 512] {
            let stream = crafted(pad_a, &offer(VC, 3, pad_c, &hs));
            let est = accept_bytes(&stream, Encryption::Prefer)
                .unwrap_or_else(|e| panic!("PadA {pad_a} PadC {pad_c}: {e}"));
            assert_eq!(est.initial_payload, hs);
            assert_eq!(est.method, Method::Rc4);
        }
    }
}

#[test]
fn wrong_verification_constant_is_refused() {
    let stream = crafted(10, &offer([0, 0, 0, 0, 0, 0, 0, 1], 2, 0, &[]));
    let e = accept_bytes(&stream, Encryption::Prefer).unwrap_err();
    assert!(matches!(e, MseError::WrongVc), "{e}");
}

#[test]
fn huge_pad_c_is_refused_before_it_is_read() {
    for len in [513, 65535] {
        // Only the announced length arrives: refusing must not wait for the pad.
        let mut tail = offer(VC, 2, 0, &[]);
        tail.truncate(12);
        tail.extend_from_slice(&u16::to_be_bytes(len));
        tail.extend_from_slice(&[0; 22]);
        let stream = crafted(0, &tail);
        match accept_bytes(&stream, Encryption::Prefer) {
            Err(MseError::PadTooLarge {
                pad: "PadC",
                len: l,
            }) => assert_eq!(l, len),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn pad_a_longer_than_512_loses_synchronisation() {
    let stream = crafted(512, &offer(VC, 2, 0, &[]));
    // Insert one more pad byte after PadA's 512: req1 now ends past the window.
    let mut longer = stream[..KEY_LEN + 512].to_vec();
    longer.push(0xee);
    longer.extend_from_slice(&stream[KEY_LEN + 512..]);
    let e = accept_bytes(&longer, Encryption::Prefer).unwrap_err();
    assert!(matches!(e, MseError::NoSync { window: 532, .. }), "{e}");
    // Garbage after a key: no marker.
    let mut garbage = stream[..KEY_LEN].to_vec();
    garbage.extend_from_slice(&[0xab; 700]);
    let e = accept_bytes(&garbage, Encryption::Prefer).unwrap_err();
    assert!(matches!(e, MseError::NoSync { .. }), "{e}");
}

#[test]
fn short_and_degenerate_keys_are_refused() {
    match accept_bytes(&[7; 50], Encryption::Prefer) {
        Err(MseError::KeyTooShort { got: 50 }) => {}
        other => panic!("{other:?}"),
    }
    let mut one = [0u8; KEY_LEN];
    one[KEY_LEN - 1] = 1;
    let mut p_minus_1 = crypto::PRIME;
    p_minus_1[KEY_LEN - 1] -= 1;
    for key in [
        [0u8; KEY_LEN],
        one,
        p_minus_1,
        crypto::PRIME,
        [0xff; KEY_LEN],
    ] {
        let e = accept_bytes(&key, Encryption::Prefer).unwrap_err();
        assert!(matches!(e, MseError::WeakKey), "{e}");
    }
}

#[test]
fn truncated_streams_end_in_an_io_error() {
    let hs = Handshake::new(HASH_A, [9; 20]).to_bytes();
    let stream = crafted(30, &offer(VC, 2, 5, &hs));
    // Every third length, and the last: each costs two modular exponentiations.
    for cut in (KEY_LEN..stream.len()).step_by(3).chain([stream.len() - 1]) {
        match accept_bytes(&stream[..cut], Encryption::Prefer) {
            Err(MseError::Io { err, .. }) => {
                assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}")
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    assert!(accept_bytes(&stream, Encryption::Prefer).is_ok());
}

#[test]
fn responder_never_reads_past_the_handshake() {
    let hs = Handshake::new(HASH_A, [9; 20]).to_bytes();
    for pad_a in [0, 7, 512] {
        let mut stream = crafted(pad_a, &offer(VC, 2, 0, &hs));
        let end = stream.len();
        stream.extend_from_slice(b"after the handshake");
        let mut input = Cursor::new(&stream[..]);
        let est = accept_with(
            &fixed_b(0, 0),
            &[],
            &mut input,
            &mut io::sink(),
            &[HASH_A],
            Encryption::Prefer,
        );
        // The responder's secrets differ from the ones `crafted` assumed (pad lengths do
        // not enter the keys), so this is the same handshake.
        assert!(est.is_ok());
        assert_eq!(input.position() as usize, end, "PadA {pad_a}");
    }
}

#[test]
fn already_read_bytes_count_as_the_start_of_the_key() {
    let stream = crafted(40, &offer(VC, 2, 0, &[]));
    for split in [1, 20, 96, 100] {
        let mut rest = Cursor::new(&stream[split..]);
        let est = accept_with(
            &fixed_b(0, 0),
            &stream[..split],
            &mut rest,
            &mut io::sink(),
            &[HASH_A],
            Encryption::Require,
        );
        assert_eq!(est.unwrap().method, Method::Rc4, "split {split}");
    }
}

/// A loopback TCP connection whose far end sends `bytes` one per write, `delay` apart, and
/// stays open until the thread is joined.
fn dripping_peer(bytes: Vec<u8>, delay: Duration) -> (TcpStream, thread::JoinHandle<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let far = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (near, _) = listener.accept().unwrap();
    far.set_nodelay(true).unwrap();
    let dripper = thread::spawn(move || {
        for b in bytes {
            thread::sleep(delay);
            if (&far).write_all(&[b]).is_err() {
                break;
            }
        }
        far
    });
    (near, dripper)
}

/// The responder, under a `deadline` per read, fed `stream` by a dripping peer; the peer's
/// end and thread come back for the test to close and join.
fn accept_dripped(
    stream: Vec<u8>,
    delay: Duration,
    deadline: Duration,
) -> (
    Result<Established, MseError>,
    TcpStream,
    thread::JoinHandle<TcpStream>,
) {
    let (near, dripper) = dripping_peer(stream, delay);
    let mut input = DeadlineReader::new(&near, deadline);
    let result = accept_with(
        &fixed_b(0, 0),
        &[],
        &mut input,
        &mut &near,
        &[HASH_A],
        Encryption::Prefer,
    );
    (result, near, dripper)
}

#[test]
fn a_key_dripped_a_byte_at_a_time_still_finishes() {
    let hs = Handshake::new(HASH_A, [9; 20]).to_bytes();
    let stream = crafted(200, &offer(VC, 2, 100, &hs));
    let (est, _near, dripper) =
        accept_dripped(stream, Duration::from_millis(1), Duration::from_secs(20));
    assert_eq!(est.unwrap().initial_payload, hs);
    dripper.join().unwrap();
}

#[test]
fn a_key_dripped_too_slowly_is_cut_by_the_deadline() {
    let stream = crafted(0, &offer(VC, 2, 0, &[]));
    let started = Instant::now();
    let (est, near, dripper) = accept_dripped(
        stream,
        Duration::from_millis(20),
        Duration::from_millis(300),
    );
    match est.unwrap_err() {
        MseError::Io { err, .. } => assert!(is_timeout(&err), "{err}"),
        other => panic!("{other:?}"),
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    drop(near);
    dripper.join().unwrap();
}

#[test]
fn both_sides_reading_a_byte_at_a_time_still_agree() {
    let (a, b) = pair();
    let accepting = thread::spawn(move || {
        let mut r = Drip {
            inner: &b,
            delay: Duration::ZERO,
        };
        accept(&[], &mut r, &mut &b, &[HASH_A], Encryption::Prefer)
    });
    let mut r = Drip {
        inner: &a,
        delay: Duration::ZERO,
    };
    let dialed = connect(&mut r, &mut &a, &HASH_A, b"ia", Encryption::Prefer).unwrap();
    let accepted = accepting.join().unwrap().unwrap();
    assert_eq!(dialed.method, Method::Rc4);
    assert_eq!(accepted.initial_payload, b"ia");
}

/// A responder that answers a real initiator (with `fixed_a(pad_a, 0)` secrets, no initial
/// payload) with a crypto select and PadD length of our choice.
fn hostile_responder(select: u32, pad_d: u16, pad_a: usize) -> Result<Established, MseError> {
    let (a, b) = pair();
    let responder = thread::spawn(move || {
        let me = fixed_b(50, 0);
        let mut ya = vec![0u8; KEY_LEN + pad_a];
        (&b).read_exact(&mut ya).unwrap();
        (&b).write_all(&me.public_key_and_pad()).unwrap();
        let secret = me
            .shared_secret(&ya[..KEY_LEN].try_into().unwrap())
            .unwrap();
        let mut step3 = [0u8; 40 + 8 + 4 + 2 + 2];
        (&b).read_exact(&mut step3).unwrap();
        let (_, mut ours) = secret.streams(&HASH_A);
        let mut reply = VC.to_vec();
        reply.extend_from_slice(&select.to_be_bytes());
        reply.extend_from_slice(&pad_d.to_be_bytes());
        ours.apply(&mut reply);
        (&b).write_all(&reply).unwrap();
        b
    });
    let r = connect_with(
        &fixed_a(pad_a, 0),
        &mut &a,
        &mut &a,
        &HASH_A,
        &[],
        Encryption::Require,
    );
    drop(responder.join().unwrap());
    r
}

#[test]
fn initiator_refuses_a_select_it_did_not_offer() {
    for select in [0, 1, 3, 0x102] {
        match hostile_responder(select, 0, 17) {
            Err(MseError::BadSelect {
                selected,
                offered: 2,
            }) => assert_eq!(selected, select),
            other => panic!("select {select:#x}: {other:?}"),
        }
    }
    match hostile_responder(2, 513, 0) {
        Err(MseError::PadTooLarge {
            pad: "PadD",
            len: 513,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(hostile_responder(2, 0, 3).unwrap().method, Method::Rc4);
}

#[test]
fn an_rc4_stream_that_goes_bad_midway_fails_without_losing_what_came_before() {
    let ((dialed, a), (accepted, b)) = exchange(
        Encryption::Require,
        Encryption::Require,
        HASH_A,
        vec![HASH_A],
        Vec::new(),
    );
    let (dialed, accepted) = (dialed.unwrap(), accepted.unwrap());
    let sender = thread::spawn(move || {
        let mut out = EncryptingWriter::new(&a, dialed.write);
        let mut buf = Vec::new();
        for piece in 0..3 {
            wire::encode(&Message::Have(piece), &mut buf);
        }
        out.write_all(&buf).unwrap();
        // Bytes that skip the cipher: from here on the stream decrypts to garbage.
        out.get_mut().write_all(&[0; 64]).unwrap();
        buf.clear();
        wire::encode(&Message::Have(3), &mut buf);
        out.write_all(&buf).unwrap();
        // The peer closes: whatever the garbage announced never arrives.
    });
    let mut input = DecryptingReader::new(&b, accepted.read, accepted.initial_payload);
    for piece in 0..3 {
        assert_eq!(
            wire::read_message(&mut input).unwrap(),
            Message::Have(piece)
        );
    }
    sender.join().unwrap();
    let mut outcome = Ok(Message::KeepAlive);
    for _ in 0..100 {
        outcome = wire::read_message(&mut input);
        if outcome.is_err() {
            break;
        }
        assert_ne!(outcome.as_ref().unwrap(), &Message::Have(3));
    }
    assert!(outcome.is_err(), "garbage decoded as messages forever");
}

#[test]
fn encrypting_writer_refuses_to_continue_after_a_failed_write() {
    struct Fails;
    impl Write for Fails {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::ConnectionReset.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let secret = fixed_a(0, 0)
        .shared_secret(&fixed_b(0, 0).public_key_and_pad()[..].try_into().unwrap())
        .unwrap();
    let (ours, _) = secret.streams(&HASH_A);
    let mut w = EncryptingWriter::new(Fails, WriteCipher(Some(ours)));
    assert!(w.is_rc4());
    assert!(w.write(b"x").is_err());
    assert_eq!(w.write(b"y").unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(
        w.send(&mut [1]).unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
}

#[test]
fn encrypting_in_place_sends_what_write_sends() {
    let secret = fixed_a(0, 0)
        .shared_secret(&fixed_b(0, 0).public_key_and_pad()[..].try_into().unwrap())
        .unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let mut by_write =
        EncryptingWriter::new(Vec::new(), WriteCipher(Some(secret.streams(&HASH_A).0)));
    by_write.write_all(&data).unwrap();
    let mut in_place =
        EncryptingWriter::new(Vec::new(), WriteCipher(Some(secret.streams(&HASH_A).0)));
    let mut buf = data.clone();
    in_place.send(&mut buf[..40_000]).unwrap();
    in_place.send(&mut buf[40_000..]).unwrap();
    assert_eq!(in_place.get_mut(), by_write.get_mut());
    assert_ne!(in_place.get_mut(), &data);
}

#[test]
fn decrypting_reader_hands_out_the_initial_payload_first() {
    let mut r = DecryptingReader::new(&b"-stream"[..], ReadCipher(None), b"payload".to_vec());
    let mut one = [0u8; 3];
    r.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"pay");
    let mut rest = String::new();
    r.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "load-stream");
    assert!(!r.is_rc4());
}

#[test]
fn errors_read_as_one_line() {
    let errors = [
        MseError::KeyTooShort { got: 3 },
        MseError::WeakKey,
        MseError::NoSync {
            marker: "HASH('req1', S)",
            window: 532,
        },
        MseError::UnknownTorrent,
        MseError::WrongVc,
        MseError::PadTooLarge {
            pad: "PadC",
            len: 600,
        },
        MseError::BadSelect {
            selected: 3,
            offered: 2,
        },
        MseError::PayloadTooLong(70_000),
        MseError::Io {
            doing: "reading the peer's DH key",
            err: io::ErrorKind::TimedOut.into(),
        },
    ];
    for e in errors {
        let line = e.to_string();
        assert!(line.starts_with("MSE: ") && !line.contains('\n'), "{line}");
    }
}

#[test]
fn pads_on_every_step_keep_both_keystreams_in_step() {
    for (pad_a, pad_c, pad_b, pad_d) in [(0, 0, 0, 0), (5, 7, 11, 13), (512, 512, 512, 512)] {
        let (a, b) = pair();
        let accepting = thread::spawn(move || {
            let est = accept_with(
                &fixed_b(pad_b, pad_d),
                &[],
                &mut &b,
                &mut &b,
                &[HASH_A],
                Encryption::Prefer,
            )
            .unwrap();
            let mut out = EncryptingWriter::new(&b, est.write);
            out.write_all(b"from B").unwrap();
            let mut input = DecryptingReader::new(&b, est.read, est.initial_payload);
            let mut got = [0u8; 8];
            input.read_exact(&mut got).unwrap();
            got
        });
        let est = connect_with(
            &fixed_a(pad_a, pad_c),
            &mut &a,
            &mut &a,
            &HASH_A,
            b"IA",
            Encryption::Prefer,
        )
        .unwrap();
        EncryptingWriter::new(&a, est.write)
            .write_all(b"from A")
            .unwrap();
        let mut got = [0u8; 6];
        DecryptingReader::new(&a, est.read, est.initial_payload)
            .read_exact(&mut got)
            .unwrap();
        assert_eq!(&got, b"from B");
        assert_eq!(&accepting.join().unwrap(), b"IAfrom A");
    }
}
