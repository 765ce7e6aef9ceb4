//! The one dialer: opening a TCP connection to a peer, exchanging the BitTorrent handshake,
//! and the deadline reader every peer connection reads through.
//!
//! Runs on whichever thread owns the connection: a session's peer thread
//! ([`super::connection`]) or a metadata-phase thread ([`crate::metadata`]). It owns nothing
//! beyond the socket it is handed, and arms the socket's timeouts itself, so that no caller
//! has to.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use log::debug;

use super::handshake::{read_handshake, Handshake, HandshakeError};
use super::mse::{self, Ciphers, Encryption, Link, MseError, WriteCipher};

/// How long a TCP connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the peer may take to send its whole handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A write that cannot finish in this time ends the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a connection could not be opened.
#[derive(Debug)]
pub(crate) enum DialError {
    /// The TCP connect, or setting up the socket, failed.
    Connect(io::Error),
    /// The peer's handshake was late, malformed or for another torrent.
    Handshake(HandshakeError),
    /// The peer is ourselves (its peer id is ours).
    Myself,
    /// The MSE exchange failed.
    Mse(MseError),
    /// The peer started a plaintext handshake and `--encryption require` refuses it.
    PlaintextRefused,
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::Connect(e) => write!(f, "connect failed: {e}"),
            DialError::Handshake(HandshakeError::Io(e)) if crate::net::is_timeout(e) => write!(
                f,
                "handshake failed: no whole handshake in {} s",
                HANDSHAKE_TIMEOUT.as_secs()
            ),
            DialError::Handshake(e) => write!(f, "handshake failed: {e}"),
            DialError::Myself => write!(f, "connected to ourselves"),
            DialError::Mse(e) => write!(f, "{e}"),
            DialError::PlaintextRefused => {
                write!(f, "plaintext handshake refused (--encryption require)")
            }
        }
    }
}

/// A connection we opened, handshakes done.
pub(crate) struct Dialed {
    pub(crate) stream: TcpStream,
    pub(crate) theirs: Handshake,
    pub(crate) ciphers: Ciphers,
}

/// Opens a connection to `addr` and exchanges handshakes as `policy` says: `off` plaintext;
/// `require` MSE with RC4 only; `prefer` MSE offering RC4 and plaintext, and when the MSE
/// exchange fails, once more on a new connection in plaintext.
pub(crate) fn dial(
    addr: SocketAddr,
    local: Option<IpAddr>,
    ours: &Handshake,
    policy: Encryption,
) -> Result<Dialed, DialError> {
    if policy == Encryption::Off {
        return dial_plaintext(addr, local, ours);
    }
    let stream = connect(addr, local)?;
    match handshake_mse(&stream, ours, policy) {
        Ok((theirs, ciphers)) => Ok(Dialed {
            stream,
            theirs,
            ciphers,
        }),
        Err(DialError::Mse(e)) if policy == Encryption::Prefer => {
            debug!("{addr}: {e}; trying plaintext");
            drop(stream);
            let mut dialed = dial_plaintext(addr, local, ours)?;
            dialed.ciphers.link = Link::PlaintextFallback;
            Ok(dialed)
        }
        Err(e) => Err(e),
    }
}

fn dial_plaintext(
    addr: SocketAddr,
    local: Option<IpAddr>,
    ours: &Handshake,
) -> Result<Dialed, DialError> {
    let stream = connect(addr, local)?;
    let theirs = handshake_out(&stream, ours)?;
    Ok(Dialed {
        stream,
        theirs,
        ciphers: Ciphers::plaintext(),
    })
}

/// The initiator's MSE exchange, our BitTorrent handshake inside it, then the peer's
/// handshake read through the negotiated cipher; all within [`HANDSHAKE_TIMEOUT`].
fn handshake_mse(
    stream: &TcpStream,
    ours: &Handshake,
    policy: Encryption,
) -> Result<(Handshake, Ciphers), DialError> {
    prepare(stream)?;
    let mut within = DeadlineReader::new(stream, HANDSHAKE_TIMEOUT);
    let est = mse::connect(
        &mut within,
        &mut &*stream,
        &ours.info_hash,
        &ours.to_bytes(),
        policy,
    )
    .map_err(DialError::Mse)?;
    let mut read = est.read;
    let mut bytes = [0u8; 68];
    within
        .read_exact(&mut bytes)
        .map_err(|e| DialError::Handshake(HandshakeError::Io(e)))?;
    read.decrypt(&mut bytes);
    let theirs = read_handshake(&mut &bytes[..]).map_err(DialError::Handshake)?;
    check(&theirs, ours)?;
    Ok((
        theirs,
        Ciphers {
            read,
            write: est.write,
            pending: Vec::new(),
            link: Link::Mse,
        },
    ))
}

/// The accepting side, first half (the listener's gate thread), for a listener with `policy` serving `info_hashes`: tells
/// a plaintext handshake from an MSE exchange by the first 20 bytes, runs the exchange if it
/// is one, and reads the peer's BitTorrent handshake; all within `limit`. Nothing of ours is
/// sent but the MSE exchange's half.
pub(crate) fn read_incoming_any(
    stream: &TcpStream,
    limit: Duration,
    policy: Encryption,
    info_hashes: &[[u8; 20]],
) -> Result<(Handshake, Ciphers), DialError> {
    prepare(stream)?;
    let io = |e| DialError::Handshake(HandshakeError::Io(e));
    let mut within = DeadlineReader::new(stream, limit);
    let mut first = [0u8; 20];
    within.read_exact(&mut first).map_err(io)?;
    if mse::is_plaintext_start(&first) {
        if !policy.allows_plaintext_handshake() {
            return Err(DialError::PlaintextRefused);
        }
        let theirs =
            read_handshake(&mut (&first[..]).chain(&mut within)).map_err(DialError::Handshake)?;
        return Ok((theirs, Ciphers::plaintext()));
    }
    let est = mse::accept(&first, &mut within, &mut &*stream, info_hashes, policy)
        .map_err(DialError::Mse)?;
    let mut read = est.read;
    let mut bytes = est.initial_payload;
    if bytes.len() < 68 {
        let mut more = vec![0u8; 68 - bytes.len()];
        within.read_exact(&mut more).map_err(io)?;
        read.decrypt(&mut more);
        bytes.extend_from_slice(&more);
    }
    let pending = bytes.split_off(68);
    let theirs = read_handshake(&mut &bytes[..]).map_err(DialError::Handshake)?;
    Ok((
        theirs,
        Ciphers {
            read,
            write: est.write,
            pending,
            link: Link::Mse,
        },
    ))
}

/// Opens a TCP connection to `addr` from `local` (`--bind`; `None` lets the system choose),
/// giving up after [`CONNECT_TIMEOUT`].
pub(crate) fn connect(addr: SocketAddr, local: Option<IpAddr>) -> Result<TcpStream, DialError> {
    crate::net::tcp_connect(addr, local, CONNECT_TIMEOUT).map_err(DialError::Connect)
}

/// Sets up a connected socket for the peer protocol: no Nagle delay, and [`WRITE_TIMEOUT`]
/// on every write.
fn prepare(stream: &TcpStream) -> Result<(), DialError> {
    let io = |e| DialError::Handshake(HandshakeError::Io(e));
    stream.set_nodelay(true).map_err(io)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT)).map_err(io)
}

/// The dialing side of the handshake: sends ours, then reads the peer's, which must arrive
/// whole within [`HANDSHAKE_TIMEOUT`], name `ours.info_hash` and not carry our peer id.
pub(crate) fn handshake_out(stream: &TcpStream, ours: &Handshake) -> Result<Handshake, DialError> {
    prepare(stream)?;
    (&mut &*stream)
        .write_all(&ours.to_bytes())
        .map_err(|e| DialError::Handshake(HandshakeError::Io(e)))?;
    let theirs = read_theirs(stream, HANDSHAKE_TIMEOUT)?;
    check(&theirs, ours)?;
    Ok(theirs)
}

/// Reads a peer's plaintext handshake, which must arrive whole within `limit`.
pub(crate) fn read_theirs(stream: &TcpStream, limit: Duration) -> Result<Handshake, DialError> {
    prepare(stream)?;
    // The whole handshake must arrive within the limit, however the peer slices it.
    let mut within = DeadlineReader::new(stream, limit);
    read_handshake(&mut within).map_err(DialError::Handshake)
}

/// The accepting side, second half: checks the handshake the listener read against ours and
/// answers with ours, through `write` (the connection's write cipher).
pub(crate) fn answer(
    stream: &TcpStream,
    ours: &Handshake,
    theirs: &Handshake,
    write: &mut WriteCipher,
) -> Result<(), DialError> {
    check(theirs, ours)?;
    let mut bytes = ours.to_bytes();
    write.encrypt(&mut bytes);
    (&mut &*stream)
        .write_all(&bytes)
        .map_err(|e| DialError::Handshake(HandshakeError::Io(e)))
}

/// Refuses a handshake for another torrent, or from ourselves.
fn check(theirs: &Handshake, ours: &Handshake) -> Result<(), DialError> {
    theirs
        .check_info_hash(&ours.info_hash)
        .map_err(DialError::Handshake)?;
    if theirs.peer_id == ours.peer_id {
        return Err(DialError::Myself);
    }
    Ok(())
}

/// Reads from a socket with one deadline for a whole unit (the handshake, or one message):
/// each read waits only for the time left, so a peer that drips a byte at a time cannot keep
/// the connection past the deadline. Once the deadline has passed, every read fails with
/// `TimedOut` ([`crate::net::is_timeout`]). The socket's timeout is only reset when it is off
/// by more than a second, so a busy connection costs no extra system call per read.
pub(crate) struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
    /// The read timeout last set on the socket.
    applied: Option<Duration>,
}

impl<'a> DeadlineReader<'a> {
    /// A reader whose first unit must arrive within `limit` from now.
    pub(crate) fn new(stream: &'a TcpStream, limit: Duration) -> DeadlineReader<'a> {
        DeadlineReader {
            stream,
            deadline: Instant::now() + limit,
            applied: None,
        }
    }

    /// Starts a new unit that must arrive within `limit` from now.
    pub(crate) fn restart(&mut self, limit: Duration) {
        self.deadline = Instant::now() + limit;
    }

    /// Starts a new unit that must arrive by `deadline`.
    pub(crate) fn until(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let off_by = self.applied.map(|a| a.abs_diff(left));
        if off_by.is_none_or(|d| d > Duration::from_secs(1)) {
            self.stream.set_read_timeout(Some(left))?;
            self.applied = Some(left);
        }
        (&mut &*self.stream).read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected pair of sockets on loopback.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (far, _) = listener.accept().unwrap();
        (near, far)
    }

    /// Sends one byte every `gap` until the socket fails or `count` bytes are out.
    fn drip(mut far: TcpStream, gap: Duration, count: usize) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            for _ in 0..count {
                if far.write_all(&[19]).is_err() {
                    return;
                }
                std::thread::sleep(gap);
            }
        })
    }

    #[test]
    fn a_dripping_peer_is_cut_off_at_the_deadline() {
        let (near, far) = pair();
        let dripper = drip(far, Duration::from_millis(50), 200);
        let started = Instant::now();
        let mut reader = DeadlineReader::new(&near, Duration::from_millis(600));
        let mut buf = [0u8; 68];
        let err = reader.read_exact(&mut buf).unwrap_err();
        let took = started.elapsed();
        assert!(crate::net::is_timeout(&err), "{err}");
        assert!(
            took >= Duration::from_millis(550),
            "cut off early: {took:?}"
        );
        assert!(
            took < Duration::from_millis(1500),
            "held past the deadline: {took:?}"
        );
        drop(near);
        dripper.join().unwrap();
    }

    #[test]
    fn a_restarted_deadline_gives_the_next_unit_its_own_time() {
        let (near, mut far) = pair();
        let mut reader = DeadlineReader::new(&near, Duration::from_millis(300));
        far.write_all(&[1, 2]).unwrap();
        let mut one = [0u8; 2];
        reader.read_exact(&mut one).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        far.write_all(&[3]).unwrap();
        assert!(
            reader.read(&mut one).is_err(),
            "the first unit's deadline passed"
        );
        reader.restart(Duration::from_millis(300));
        assert_eq!(reader.read(&mut one).unwrap(), 1);
        assert_eq!(one[0], 3);
    }

    /// The accepting side of [`handshake_out`]: read, then answer.
    fn accept(far: &TcpStream, ours: &Handshake) -> Result<Handshake, DialError> {
        let theirs = read_theirs(far, HANDSHAKE_TIMEOUT)?;
        answer(far, ours, &theirs, &mut WriteCipher(None))?;
        Ok(theirs)
    }

    #[test]
    fn handshakes_are_exchanged_and_checked() {
        let (near, far) = pair();
        let info_hash = [5u8; 20];
        let theirs = std::thread::spawn(move || accept(&far, &Handshake::new(info_hash, [2; 20])));
        let got = handshake_out(&near, &Handshake::new(info_hash, [1; 20])).unwrap();
        assert_eq!(got.peer_id, [2; 20]);
        assert_eq!(theirs.join().unwrap().unwrap().peer_id, [1; 20]);

        let (near, far) = pair();
        let other = std::thread::spawn(move || accept(&far, &Handshake::new([6; 20], [2; 20])));
        assert!(handshake_out(&near, &Handshake::new(info_hash, [1; 20])).is_err());
        let err = other.join().unwrap().unwrap_err();
        assert!(
            matches!(err, DialError::Handshake(HandshakeError::WrongInfoHash)),
            "{err}"
        );

        let (near, far) = pair();
        let me = std::thread::spawn(move || accept(&far, &Handshake::new(info_hash, [1; 20])));
        assert!(handshake_out(&near, &Handshake::new(info_hash, [1; 20])).is_err());
        let err = me.join().unwrap().unwrap_err();
        assert!(matches!(err, DialError::Myself), "{err}");
    }

    /// A plaintext-only peer on loopback for `conns` connections: it hangs up on anything
    /// but a plaintext handshake (as a client without MSE does on our DH key) and answers
    /// those.
    fn plaintext_only(info_hash: [u8; 20], conns: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for _ in 0..conns {
                let Ok((s, _)) = listener.accept() else {
                    return;
                };
                if let Ok(theirs) = read_theirs(&s, Duration::from_secs(5)) {
                    let ours = Handshake::new(info_hash, [9; 20]);
                    let _ = answer(&s, &ours, &theirs, &mut WriteCipher(None));
                }
            }
        });
        addr
    }

    #[test]
    fn the_link_says_how_the_handshakes_went() {
        let ours = Handshake::new([5; 20], [1; 20]);
        let addr = plaintext_only([5; 20], 4);
        let dialed = dial(addr, None, &ours, Encryption::Prefer).unwrap();
        assert_eq!(dialed.ciphers.link, Link::PlaintextFallback);
        let dialed = dial(addr, None, &ours, Encryption::Off).unwrap();
        assert_eq!(dialed.ciphers.link, Link::Plaintext);
        let refused = dial(addr, None, &ours, Encryption::Require);
        assert!(matches!(refused, Err(DialError::Mse(_))), "no fallback");
    }
}
