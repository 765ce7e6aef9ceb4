//! Scripted MSE/PE peers for the hostile tests: just enough Message Stream Encryption (the
//! 768-bit Diffie-Hellman exchange, HASH('req1'/'req2'/'req3'), RC4 with the first 1024
//! keystream bytes dropped) to play either side of the exchange correctly, and to break it on
//! purpose. Written from the spec and sharing no code with strand's `peer::mse`, so a bug
//! there cannot hide itself by also being here.
//!
//! [`MseSeeder`] is a seeder strand dials (the MSE responder, "B"); [`attack_seeder`] dials a
//! strand seeder (the initiator, "A"). Every read has a deadline; every loop is bounded.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use num_bigint::BigUint;
use rc4::consts::U20;
use rc4::{KeyInit, Rc4, StreamCipher};

use super::{
    accept_loop, frame, handshake_bytes, payload, read_full, sha1, SeederStats, TestTorrent, BLOCK,
    POLL,
};

/// Length of a DH public key on the wire.
pub const KEY_LEN: usize = 96;
/// The spec's longest pad.
pub const MAX_PAD: usize = 512;
/// The pad our attacks send where the spec allows at most [`MAX_PAD`].
pub const HUGE_PAD: usize = 1000;
/// The spec's 768-bit prime, hex.
const PRIME_HEX: &[u8] = b"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6\
F44C42E9A63A36210000000000090563";
/// Gap between the bytes of a dripped public key: 96 bytes take 19 s, longer than any
/// handshake deadline.
const DRIP_GAP: Duration = Duration::from_millis(200);
/// How long a scripted peer waits for strand's next bytes before giving up itself.
const IDLE: Duration = Duration::from_secs(20);
/// crypto_provide / crypto_select: RC4.
const CRYPTO_RC4: u32 = 0x02;

/// How a scripted MSE peer misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// Follows the spec, RC4 throughout.
    Honest,
    /// PadA or PadB of [`HUGE_PAD`] bytes, then the exchange goes on as if nothing were wrong.
    HugePad,
    /// (Initiator) announces and sends a PadC of [`HUGE_PAD`] bytes.
    HugePadC,
    /// The verification constant is not zero; everything else follows the spec.
    WrongVc,
    /// The public key, one byte every 200 ms.
    DripKey,
    /// RC4 as agreed for this many blocks (seeder) or requests (leecher), then, in the
    /// middle of the next message, bytes that were never encrypted with the keystream.
    GoesBad { after: u64 },
}

fn prime() -> BigUint {
    BigUint::parse_bytes(PRIME_HEX, 16).expect("the spec's prime")
}

fn to_key(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    out[KEY_LEN - bytes.len()..].copy_from_slice(&bytes);
    out
}

/// One side's DH key pair (a 160-bit private exponent from `seed`).
struct Dh {
    private: BigUint,
    public: [u8; KEY_LEN],
}

impl Dh {
    fn new(seed: u64) -> Dh {
        let private = BigUint::from_bytes_be(&payload(20, seed));
        let public = to_key(&BigUint::from(2u32).modpow(&private, &prime()));
        Dh { private, public }
    }

    fn secret(&self, theirs: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
        to_key(&BigUint::from_bytes_be(theirs).modpow(&self.private, &prime()))
    }
}

fn hash(parts: &[&[u8]]) -> [u8; 20] {
    sha1(&parts.concat())
}

/// One direction's RC4 keystream, HASH(`name`, S, SKEY), past its first 1024 bytes.
struct Keystream(Rc4<U20>);

impl Keystream {
    fn new(name: &[u8], secret: &[u8; KEY_LEN], skey: &[u8; 20]) -> Keystream {
        let key = hash(&[name, secret, skey]);
        let mut rc4 = Rc4::<U20>::new(&key.into());
        rc4.apply_keystream(&mut [0u8; 1024]);
        Keystream(rc4)
    }

    fn apply(&mut self, buf: &mut [u8]) {
        self.0.apply_keystream(buf);
    }
}

/// A connection past its MSE handshake, RC4 both ways.
struct Encrypted {
    stream: TcpStream,
    out: Keystream,
    inp: Keystream,
    stop: Arc<AtomicBool>,
}

impl Encrypted {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut b = bytes.to_vec();
        self.out.apply(&mut b);
        self.stream.write_all(&b)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        read_full(&mut self.stream, buf, &self.stop, IDLE)?;
        self.inp.apply(buf);
        Ok(())
    }

    /// One message: its id (`None` for a keep-alive) and payload (at most 1 MiB).
    fn recv_frame(&mut self) -> io::Result<(Option<u8>, Vec<u8>)> {
        let mut len = [0u8; 4];
        self.recv(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            return Ok((None, Vec::new()));
        }
        if len > 1 << 20 {
            return Err(io::Error::other(format!("strand sent a {len}-byte frame")));
        }
        let mut body = vec![0u8; len];
        self.recv(&mut body)?;
        let id = body.remove(0);
        Ok((Some(id), body))
    }
}

/// Reads until `marker` has arrived, within `window` bytes.
fn scan(s: &mut TcpStream, marker: &[u8], window: usize, stop: &AtomicBool) -> io::Result<()> {
    let mut seen = Vec::new();
    while seen.len() < window {
        let mut b = [0u8; 1];
        read_full(s, &mut b, stop, IDLE)?;
        seen.push(b[0]);
        if seen.ends_with(marker) {
            return Ok(());
        }
    }
    Err(io::Error::other("marker not found"))
}

/// Reads and drops whatever strand sends until it closes the connection (an `Err`), the
/// `stop` flag, or [`IDLE`]. With `drip`, writes one byte of it every [`DRIP_GAP`] meanwhile.
fn hold(s: &mut TcpStream, stop: &AtomicBool, drip: Option<&[u8]>) -> io::Result<()> {
    let deadline = Instant::now() + IDLE;
    let mut next = Instant::now();
    let mut sent = 0;
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        if let Some(bytes) = drip {
            if sent < bytes.len() && Instant::now() >= next {
                s.write_all(&bytes[sent..sent + 1])?;
                sent += 1;
                next += DRIP_GAP;
            }
        }
        match s.read(&mut sink) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(e) if strand::net::is_timeout(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether `e` means the other side closed the connection.
fn closed_by_peer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// The bitfield of a seed of `t`.
fn full_bitfield(t: &TestTorrent) -> Vec<u8> {
    let n = t.piece_count() as usize;
    let mut bits = vec![0xFFu8; n.div_ceil(8)];
    if n % 8 != 0 {
        *bits.last_mut().expect("a piece") = 0xFFu8 << (8 - n % 8);
    }
    bits
}

// ---------------------------------------------------------------------------------------------
// The responder: a seeder strand dials
// ---------------------------------------------------------------------------------------------

/// An MSE seeder on 127.0.0.1 (RC4 only, a thread per connection) that plays one [`Attack`].
/// Stops when dropped.
pub struct MseSeeder {
    addr: SocketAddr,
    pub stats: SeederStats,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct Ctx {
    torrent: TestTorrent,
    attack: Attack,
    /// Pause before each block served.
    delay: Duration,
    stats: SeederStats,
    stop: Arc<AtomicBool>,
    /// Numbers connections, to vary the DH key.
    count: AtomicU64,
}

impl MseSeeder {
    /// A seeder of `t` playing `attack`, pausing `delay` before each block it serves.
    pub fn start(t: &TestTorrent, attack: Attack, delay: Duration) -> MseSeeder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind seeder");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = Arc::new(Ctx {
            torrent: t.clone(),
            attack,
            delay,
            stats: SeederStats::default(),
            stop: stop.clone(),
            count: AtomicU64::new(0),
        });
        let stats = ctx.stats.clone();
        let streams = Arc::new(Mutex::new(Vec::new()));
        let stop2 = stop.clone();
        let thread = thread::spawn(move || {
            accept_loop(listener, stop2, streams, move |mut s| {
                ctx.stats.accepted_at.lock().unwrap().push(Instant::now());
                ctx.stats.connections.fetch_add(1, Ordering::SeqCst);
                if let Err(e) = respond(&mut s, &ctx) {
                    if closed_by_peer(&e) && !ctx.stop.load(Ordering::SeqCst) {
                        ctx.stats.closed_at.lock().unwrap().push(Instant::now());
                        ctx.stats.closed_by_peer.fetch_add(1, Ordering::SeqCst);
                    }
                }
                let _ = s.shutdown(Shutdown::Both);
            })
        });
        MseSeeder {
            addr,
            stats,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn connections(&self) -> u64 {
        self.stats.connections.load(Ordering::SeqCst)
    }
    pub fn closed_by_peer(&self) -> u64 {
        self.stats.closed_by_peer.load(Ordering::SeqCst)
    }
    pub fn blocks_served(&self) -> u64 {
        self.stats.blocks_served.load(Ordering::SeqCst)
    }
}

impl Drop for MseSeeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// B's side of the exchange, then a seeder's side of the peer protocol over RC4.
fn respond(s: &mut TcpStream, ctx: &Ctx) -> io::Result<()> {
    s.set_read_timeout(Some(POLL))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let _ = s.set_nodelay(true);
    let stop = &ctx.stop;
    let t = &ctx.torrent;
    let dh = Dh::new(0xB0B0 + ctx.count.fetch_add(1, Ordering::SeqCst));
    let mut ya = [0u8; KEY_LEN];
    read_full(s, &mut ya, stop, IDLE)?;
    let secret = dh.secret(&ya);
    match ctx.attack {
        Attack::DripKey => return hold(s, stop, Some(&dh.public)),
        Attack::HugePad => s.write_all(&[&dh.public[..], &payload(HUGE_PAD, 3)].concat())?,
        _ => s.write_all(&[&dh.public[..], &payload(100, 4)].concat())?,
    }
    // A's HASH('req1', S) ends at most PadA + 20 bytes after its key.
    scan(s, &hash(&[b"req1", &secret]), MAX_PAD + 20, stop)?;
    let mut named = [0u8; 20];
    read_full(s, &mut named, stop, IDLE)?;
    let mut a = Keystream::new(b"keyA", &secret, &t.info_hash);
    let b = Keystream::new(b"keyB", &secret, &t.info_hash);
    let mut head = [0u8; 14];
    read_full(s, &mut head, stop, IDLE)?;
    a.apply(&mut head);
    let pad_c = usize::from(u16::from_be_bytes([head[12], head[13]]));
    let mut rest = vec![0u8; pad_c + 2];
    read_full(s, &mut rest, stop, IDLE)?;
    a.apply(&mut rest);
    let ia_len = usize::from(u16::from_be_bytes([rest[pad_c], rest[pad_c + 1]]));
    let mut ia = vec![0u8; ia_len];
    read_full(s, &mut ia, stop, IDLE)?;
    a.apply(&mut ia);

    let vc = if ctx.attack == Attack::WrongVc {
        [0xA5; 8]
    } else {
        [0; 8]
    };
    let mut conn = Encrypted {
        stream: s.try_clone()?,
        out: b,
        inp: a,
        stop: stop.clone(),
    };
    conn.send(&[&vc[..], &CRYPTO_RC4.to_be_bytes(), &[0, 0]].concat())?;
    let mut peer_id = *b"-MSE001-000000000000";
    peer_id[8..14].copy_from_slice(format!("{:06}", s.local_addr()?.port()).as_bytes());
    conn.send(&handshake_bytes(&t.info_hash, &peer_id))?;
    conn.send(&frame(5, &full_bitfield(t)))?;
    if matches!(ctx.attack, Attack::HugePad | Attack::WrongVc) {
        return hold(s, stop, None);
    }
    ctx.stats.handshakes.fetch_add(1, Ordering::SeqCst);
    serve(&mut conn, ctx)
}

/// Serves requests over `conn` (unchoking on `interested`) until strand closes it.
fn serve(conn: &mut Encrypted, ctx: &Ctx) -> io::Result<()> {
    let t = &ctx.torrent;
    loop {
        let (id, body) = conn.recv_frame()?;
        match id {
            Some(2) => conn.send(&frame(1, &[]))?,
            Some(6) if body.len() == 12 => {
                let word = |i: usize| u32::from_be_bytes(body[i..i + 4].try_into().unwrap());
                let (index, begin, len) = (word(0), word(4), word(8));
                let block = t
                    .block(index, begin, len)
                    .ok_or_else(|| io::Error::other("a request out of range"))?;
                thread::sleep(ctx.delay);
                let mut msg = frame(
                    7,
                    &[&index.to_be_bytes()[..], &begin.to_be_bytes(), block].concat(),
                );
                let served = ctx.stats.blocks_served.fetch_add(1, Ordering::SeqCst);
                match ctx.attack {
                    Attack::GoesBad { after } if served >= after => {
                        // The header and half the block as agreed, then bytes the keystream
                        // never touched, as far as the next few messages would reach.
                        let good = 13 + block.len() / 2;
                        conn.send(&msg[..good])?;
                        msg.drain(..good);
                        msg.extend_from_slice(&payload(4 * BLOCK as usize, u64::from(index)));
                        conn.stream.write_all(&msg)?;
                        return hold(&mut conn.stream, &conn.stop, None);
                    }
                    _ => conn.send(&msg)?,
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The initiator: a leecher dialing a strand seeder
// ---------------------------------------------------------------------------------------------

/// What became of an attack on a strand seeder.
#[derive(Debug)]
pub struct Attacked {
    /// From the connection (or, for [`Attack::GoesBad`], the first bad byte) to strand's
    /// close; `None` if strand never closed it within [`IDLE`].
    pub dropped_after: Option<Duration>,
    /// Blocks strand served before the attack.
    pub blocks: u64,
}

/// Dials the strand seeder at `addr` for `t` as an MSE initiator playing `attack`. Honest
/// and [`Attack::GoesBad`] complete the exchange and ask for blocks; the others end at their
/// misbehaviour. Then waits (at most [`IDLE`]) for strand to close the connection.
pub fn attack_seeder(addr: SocketAddr, t: &TestTorrent, attack: Attack) -> io::Result<Attacked> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(POLL))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let _ = s.set_nodelay(true);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let dh = Dh::new(0xA0A0 + u64::from(addr.port()));
    match attack {
        Attack::DripKey => return wait_closed(&mut s, &stop, Some(&dh.public), started, 0),
        Attack::HugePad => s.write_all(&[&dh.public[..], &payload(HUGE_PAD, 5)].concat())?,
        _ => s.write_all(&[&dh.public[..], &payload(60, 6)].concat())?,
    }
    let mut yb = [0u8; KEY_LEN];
    read_full(&mut s, &mut yb, &stop, IDLE)?;
    let secret = dh.secret(&yb);
    let mut a = Keystream::new(b"keyA", &secret, &t.info_hash);
    let mut b = Keystream::new(b"keyB", &secret, &t.info_hash);
    let req2 = hash(&[b"req2", &t.info_hash]);
    let req3 = hash(&[b"req3", &secret]);
    let named: Vec<u8> = req2.iter().zip(req3).map(|(x, y)| x ^ y).collect();
    let vc = if attack == Attack::WrongVc {
        [0xA5; 8]
    } else {
        [0; 8]
    };
    let pad_c = if attack == Attack::HugePadC {
        HUGE_PAD
    } else {
        0
    };
    let mut offer = [
        &vc[..],
        &CRYPTO_RC4.to_be_bytes(),
        &(pad_c as u16).to_be_bytes(),
    ]
    .concat();
    offer.resize(offer.len() + pad_c, 0);
    offer.extend_from_slice(&68u16.to_be_bytes());
    offer.extend_from_slice(&handshake_bytes(&t.info_hash, b"-MSEATK-abcdefghijkl"));
    a.apply(&mut offer);
    let step3 = [&hash(&[b"req1", &secret])[..], &named, &offer].concat();
    if matches!(attack, Attack::HugePad | Attack::HugePadC | Attack::WrongVc) {
        // The write may fail once strand hangs up: that is the point.
        let _ = s.write_all(&step3);
        return wait_closed(&mut s, &stop, None, started, 0);
    }
    s.write_all(&step3)?;

    // B's encrypted VC comes after its PadB; then crypto_select, len(PadD), PadD.
    let mut marker = [0u8; 8];
    b.apply(&mut marker);
    scan(&mut s, &marker, MAX_PAD + 8, &stop)?;
    let mut conn = Encrypted {
        stream: s.try_clone()?,
        out: a,
        inp: b,
        stop: stop.clone(),
    };
    let mut select = [0u8; 6];
    conn.recv(&mut select)?;
    let mut pad_d = vec![0u8; usize::from(u16::from_be_bytes([select[4], select[5]]))];
    conn.recv(&mut pad_d)?;
    let mut theirs = [0u8; 68];
    conn.recv(&mut theirs)?;
    if theirs[28..48] != t.info_hash {
        return Err(io::Error::other("the seeder answered for another torrent"));
    }
    conn.send(&frame(2, &[]))?;
    while conn.recv_frame()?.0 != Some(1) {}
    let after = match attack {
        Attack::GoesBad { after } => after,
        _ => u64::MAX,
    };
    let mut blocks = 0;
    let mut next = 0u32;
    while blocks < after && next < t.piece_count() {
        let len = t.piece_size(next).min(BLOCK);
        let req = [next.to_be_bytes(), 0u32.to_be_bytes(), len.to_be_bytes()].concat();
        conn.send(&frame(6, &req))?;
        while conn.recv_frame()?.0 != Some(7) {}
        blocks += 1;
        next += 1;
    }
    if after == u64::MAX {
        return Ok(Attacked {
            dropped_after: None,
            blocks,
        });
    }
    // Half a request as agreed, then bytes the keystream never touched.
    let req = frame(6, &[[0u8; 4], [0u8; 4], BLOCK.to_be_bytes()].concat());
    conn.send(&req[..8])?;
    let bad = Instant::now();
    // The write may fail once strand hangs up: that is the point.
    let _ = conn.stream.write_all(&payload(4 * BLOCK as usize, 9));
    wait_closed(&mut conn.stream, &stop, None, bad, blocks)
}

/// Holds the connection (dripping `drip` meanwhile) until strand closes it, at most [`IDLE`].
fn wait_closed(
    s: &mut TcpStream,
    stop: &AtomicBool,
    drip: Option<&[u8]>,
    from: Instant,
    blocks: u64,
) -> io::Result<Attacked> {
    let dropped_after = match hold(s, stop, drip) {
        Err(e) if closed_by_peer(&e) => Some(from.elapsed()),
        Err(e) => return Err(e),
        Ok(()) => None,
    };
    Ok(Attacked {
        dropped_after,
        blocks,
    })
}
