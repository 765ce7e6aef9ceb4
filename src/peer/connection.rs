//! The peer thread: one TCP connection to one peer, driven by blocking reads and writes.
//!
//! Each connection gets two plain OS threads:
//! - the **peer thread** (`peer <addr>`) dials through [`super::dial`] (or takes a socket the
//!   listener accepted, with the peer's handshake already read, and answers it), then blocks
//!   in `read`, decodes each message, checks it against the torrent's geometry and the Fast
//!   extension's rules ([`FastRules`]) and reports it to the main thread as a [`PeerEvent`];
//! - its **sender** (`peer <addr> tx`) owns a `try_clone` of the socket and blocks on the
//!   connection's [`Command`] channel, so a request from the main thread goes out at once and
//!   never waits behind a blocking read. It batches whatever commands are queued into one
//!   write, serves uploads by reading verified blocks with its own [`BlockReader`] (queued
//!   in an [`UploadQueue`], which on a Fast connection rejects each block it drops), and
//!   sends a keep-alive after 90 s of quiet.
//!
//! The threads own the socket and nothing else: every decision (what to request, whom to
//! serve, whom to drop) is the main thread's. Either thread ending shuts the socket down,
//! which ends the other; the peer thread reports [`PeerEvent::Closed`] last.

use std::io::BufReader;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use log::{debug, trace, warn};

use super::dial::{self, DeadlineReader, DialError};
use super::extension::{self, MetadataMsg};
use super::fast::FastRules;
use super::handshake::Handshake;
use super::mse::Ciphers;
use super::mse::{DecryptingReader, EncryptingWriter, Encryption};
use super::upload_queue::{Queued, UploadQueue};
use super::wire::{self, Message, WireError};
use crate::bitfield::{Bitfield, BitfieldError};
use crate::geometry::{BlockRef, Geometry};
use crate::messages::{Command, Event, PeerEvent, PeerKey};
use crate::storage::reader::BlockReader;
use crate::storage::FileMap;

/// A peer that takes this long to send one whole message (or stays silent, not even a
/// keep-alive) is dropped.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// We send a keep-alive after this long without sending anything.
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(90);
/// Stack size of each connection thread: they keep their buffers on the heap. Measured with
/// the integration tests in release builds: 16 KiB overflowed, 32 and 64 KiB each failed a
/// run, 128 KiB passed every run; so 128 KiB, which commits only the pages a thread touches.
pub const STACK_SIZE: usize = 128 * 1024;
/// Size of the read buffer in front of the socket: two blocks' worth, so one `read` usually
/// brings a whole `piece` message; small, because every connection has one.
pub const READ_BUFFER: usize = 32 * 1024;
/// The sender stops batching queued commands into one write past this many bytes.
pub const WRITE_BATCH: usize = 64 * 1024;
/// Requests a peer may queue with us, as our extension handshake's `reqq` tells it.
pub const ADVERTISED_REQQ: u32 = 500;
/// Requests a peer may have queued with us before we call it a flood and hang up: four times
/// what we advertise, because a peer may fill its pipeline before it reads our `reqq`
/// (transmission sends ~700 at once).
pub const MAX_QUEUED_UPLOADS: usize = 4 * ADVERTISED_REQQ as usize;

/// Everything a peer thread needs to know, handed over when it starts.
#[derive(Debug, Clone)]
pub(crate) struct PeerSetup {
    /// The main thread's name for this connection.
    pub key: PeerKey,
    /// Where to connect.
    pub addr: SocketAddr,
    /// What `--encryption` allows when we dial.
    pub encryption: Encryption,
    /// The address to dial from (`--bind`; see [`crate::net::local_ip`]); `None` lets the
    /// system choose.
    pub local: Option<IpAddr>,
    /// The torrent's info hash, checked against the peer's handshake.
    pub info_hash: [u8; 20],
    /// Our peer id, sent in our handshake.
    pub our_id: [u8; 20],
    /// The torrent's sizes, to check `have`, `bitfield` and `piece` messages.
    pub geometry: Geometry,
    /// Where to report what happens.
    pub events: Sender<Event>,
    /// The torrent's files, to read blocks we upload.
    pub files: Arc<FileMap>,
}

/// Why a connection ended.
#[derive(Debug)]
enum PeerError {
    Dial(DialError),
    Wire(WireError),
    Protocol(String),
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerError::Dial(e) => write!(f, "{e}"),
            PeerError::Wire(WireError::Io(e)) if crate::net::is_timeout(e) => {
                write!(f, "no whole message in {} s", IDLE_TIMEOUT.as_secs())
            }
            PeerError::Wire(WireError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                write!(f, "the peer closed the connection")
            }
            PeerError::Wire(WireError::Io(e))
                if e.kind() == std::io::ErrorKind::ConnectionReset =>
            {
                write!(f, "the peer reset the connection")
            }
            PeerError::Wire(e) => write!(f, "{e}"),
            PeerError::Protocol(what) => write!(f, "protocol violation: {what}"),
        }
    }
}

impl From<DialError> for PeerError {
    fn from(e: DialError) -> PeerError {
        PeerError::Dial(e)
    }
}

impl From<BitfieldError> for PeerError {
    fn from(e: BitfieldError) -> PeerError {
        PeerError::Protocol(e.to_string())
    }
}

/// Starts the threads for an outgoing connection to `setup.addr`. Commands sent on
/// `commands` before the handshake completes wait in the channel.
pub(crate) fn spawn_outgoing(setup: PeerSetup, commands: Receiver<Command>) -> std::io::Result<()> {
    spawn(setup, None, commands)
}

/// Starts the threads for a connection a peer opened to us: the listener accepted `stream`
/// and read the peer's handshake, `theirs`; we check it and answer.
pub(crate) fn spawn_incoming(
    setup: PeerSetup,
    stream: TcpStream,
    theirs: Handshake,
    ciphers: Ciphers,
    commands: Receiver<Command>,
) -> std::io::Result<()> {
    spawn(setup, Some((stream, theirs, ciphers)), commands)
}

fn spawn(
    setup: PeerSetup,
    accepted: Option<(TcpStream, Handshake, Ciphers)>,
    commands: Receiver<Command>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("peer {}", setup.addr))
        .stack_size(STACK_SIZE)
        .spawn(move || {
            let reason = match run(&setup, accepted, commands) {
                Ok(()) => "we closed the connection".to_string(),
                Err(e) => e.to_string(),
            };
            let closed = PeerEvent::Closed { reason };
            // The session may be over already; then nobody needs to hear it.
            let _ = setup.events.send(Event::Peer(setup.key, closed));
        })?;
    Ok(())
}

fn run(
    setup: &PeerSetup,
    accepted: Option<(TcpStream, Handshake, Ciphers)>,
    commands: Receiver<Command>,
) -> Result<(), PeerError> {
    let ours = Handshake::new(setup.info_hash, setup.our_id);
    let (stream, theirs, mut ciphers) = match accepted {
        Some((stream, theirs, mut ciphers)) => {
            dial::answer(&stream, &ours, &theirs, &mut ciphers.write)?;
            (stream, theirs, ciphers)
        }
        None => {
            let dialed = dial::dial(setup.addr, setup.local, &ours, setup.encryption)?;
            (dialed.stream, dialed.theirs, dialed.ciphers)
        }
    };
    debug!(
        "{}: handshake done, {}",
        setup.addr,
        if ciphers.is_rc4() { "RC4" } else { "plaintext" }
    );
    let fast = ours.supports_fast() && theirs.supports_fast();
    let connected = PeerEvent::Connected {
        peer_id: theirs.peer_id,
        extensions: theirs.supports_extensions(),
        fast,
        link: ciphers.link,
    };
    if setup
        .events
        .send(Event::Peer(setup.key, connected))
        .is_err()
    {
        return Ok(());
    }
    let write_half = stream
        .try_clone()
        .map_err(|e| PeerError::Dial(DialError::Connect(e)))?;
    let write_half = EncryptingWriter::new(write_half, ciphers.write);
    let addr = setup.addr;
    let reader = BlockReader::new(Arc::clone(&setup.files));
    let uploads = UploadQueue::new(MAX_QUEUED_UPLOADS, fast);
    std::thread::Builder::new()
        .name(format!("peer {addr} tx"))
        .stack_size(STACK_SIZE)
        .spawn(move || send_loop(write_half, commands, addr, reader, uploads))
        .map_err(|e| PeerError::Dial(DialError::Connect(e)))?;
    let within = DeadlineReader::new(&stream, IDLE_TIMEOUT);
    let pending = std::mem::take(&mut ciphers.pending);
    let rules = FastRules::new(fast, setup.geometry);
    let result = read_loop(
        DecryptingReader::new(within, ciphers.read, pending),
        setup,
        rules,
    );
    // Wakes the sender if it is blocked in a write; it ends when the main thread drops
    // this connection's command channel after hearing `Closed`.
    let _ = stream.shutdown(Shutdown::Both);
    result
}

/// Reads messages until the connection fails, reporting each one that matters.
fn read_loop(
    input: DecryptingReader<DeadlineReader<'_>>,
    setup: &PeerSetup,
    mut rules: FastRules,
) -> Result<(), PeerError> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, input);
    let pieces = setup.geometry.piece_count();
    loop {
        // Each message, keep-alives included, must arrive whole within the idle timeout.
        reader.get_mut().get_mut().restart(IDLE_TIMEOUT);
        let msg = wire::read_message(&mut reader).map_err(PeerError::Wire)?;
        trace!("{} <- {msg}", setup.addr);
        rules.check(&msg).map_err(PeerError::Protocol)?;
        let event = match msg {
            Message::Choke => PeerEvent::Choked,
            Message::Unchoke => PeerEvent::Unchoked,
            Message::Have(piece) if piece < pieces => PeerEvent::Have(piece),
            Message::Have(piece) => {
                return Err(PeerError::Protocol(format!(
                    "have for piece {piece} of {pieces}"
                )))
            }
            Message::Bitfield(bytes) => PeerEvent::Bitfield(Bitfield::from_wire(&bytes, pieces)?),
            // BEP 6: the same path as a bitfield; `have none` changes nothing.
            Message::HaveAll => PeerEvent::Bitfield(Bitfield::full(pieces)),
            Message::HaveNone => continue,
            Message::Reject(block) => PeerEvent::Rejected(block),
            Message::AllowedFast(piece) => PeerEvent::AllowedFast(piece),
            // Checked by `rules`; we pick pieces our own way, as the BEP allows.
            Message::Suggest(_) => continue,
            Message::Piece {
                piece,
                offset,
                data,
            } => {
                let block = BlockRef {
                    piece,
                    offset,
                    len: data.len() as u32,
                };
                if !setup.geometry.is_valid_block(block) {
                    return Err(PeerError::Protocol(format!(
                        "block of the wrong size or place: piece {piece} offset {offset} length {}",
                        data.len()
                    )));
                }
                PeerEvent::Block { block, data }
            }
            Message::Interested => PeerEvent::Interested,
            Message::NotInterested => PeerEvent::NotInterested,
            Message::Request(block) => PeerEvent::Requested(block),
            Message::Cancel(block) => PeerEvent::Canceled(block),
            Message::Extended { id, payload } => match id {
                extension::HANDSHAKE_ID => match extension::parse_handshake(&payload) {
                    Some(theirs) => PeerEvent::ExtensionHandshake(theirs),
                    None => continue,
                },
                // Peers address extension messages to us with the ids we gave in our
                // handshake. Metadata we are sent (data, reject) is only of use in the metadata
                // phase, which has its own threads.
                extension::UT_METADATA => match extension::parse_metadata(&payload) {
                    Some(MetadataMsg::Request { piece }) => PeerEvent::MetadataRequested(piece),
                    _ => continue,
                },
                extension::UT_PEX => match extension::parse_pex(&payload) {
                    Some(pex) if !pex.added.is_empty() => PeerEvent::PexPeers(pex),
                    _ => continue,
                },
                _ => continue,
            },
            // Unknown messages are ignored, as the spec asks.
            Message::Port(0) => continue,
            Message::Port(port) => PeerEvent::DhtPort(port),
            Message::KeepAlive | Message::Unknown { .. } => continue,
        };
        if setup.events.send(Event::Peer(setup.key, event)).is_err() {
            return Ok(());
        }
    }
}

/// Writes the main thread's commands to the socket until told to stop or a write fails.
///
/// Uploads wait in `uploads` and go out a few blocks per write, so that a `SkipUpload` (the
/// peer's cancel) or a `Choke` that arrives meanwhile still takes effect.
fn send_loop(
    mut stream: EncryptingWriter<TcpStream>,
    commands: Receiver<Command>,
    addr: SocketAddr,
    mut reader: BlockReader,
    mut uploads: UploadQueue,
) {
    // Grows to a batch of uploads only on connections that upload.
    let mut out = Vec::new();
    'connection: loop {
        out.clear();
        // Block for work only when no upload is waiting.
        let mut next = None;
        if uploads.is_empty() {
            match commands.recv_timeout(KEEPALIVE_INTERVAL) {
                Ok(cmd) => next = Some(cmd),
                Err(RecvTimeoutError::Timeout) => push_frame(&Message::KeepAlive, &mut out, addr),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        while out.len() < WRITE_BATCH {
            let cmd = match next.take().map_or_else(|| commands.try_recv(), Ok) {
                Ok(cmd) => cmd,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => break 'connection,
            };
            let msg = match cmd {
                Command::Interested => Message::Interested,
                Command::NotInterested => Message::NotInterested,
                Command::Request(b) => Message::Request(b),
                Command::Cancel(b) => Message::Cancel(b),
                Command::Have(piece) => Message::Have(piece),
                Command::Bitfield(bits) => Message::Bitfield(bits),
                Command::HaveAll => Message::HaveAll,
                Command::HaveNone => Message::HaveNone,
                Command::Reject(b) => Message::Reject(b),
                Command::AllowedFast(piece) => Message::AllowedFast(piece),
                Command::Extended { id, payload } => Message::Extended { id, payload },
                Command::Unchoke => Message::Unchoke,
                Command::Choke { keep } => {
                    push_frame(&Message::Choke, &mut out, addr);
                    for b in uploads.choke(&keep) {
                        push_frame(&Message::Reject(b), &mut out, addr);
                    }
                    continue;
                }
                Command::Upload(b) => match uploads.push(b) {
                    Queued::Yes => continue,
                    Queued::Reject => Message::Reject(b),
                    Queued::Overflow => {
                        debug!("{addr}: more than {MAX_QUEUED_UPLOADS} requests queued");
                        break 'connection;
                    }
                },
                Command::SkipUpload(b) => match uploads.cancel(b) {
                    Some(b) => Message::Reject(b),
                    None => continue,
                },
                Command::Disconnect => break 'connection,
            };
            push_frame(&msg, &mut out, addr);
        }
        while out.len() < WRITE_BATCH {
            let Some(b) = uploads.pop() else { break };
            trace!(
                "{addr} -> piece piece={} offset={} len={}",
                b.piece,
                b.offset,
                b.len
            );
            wire::encode_piece_header(b.piece, b.offset, b.len as usize, &mut out);
            if let Err(e) = reader.read(b, &mut out) {
                warn!("{addr}: cannot serve a block: {e}");
                break 'connection;
            }
        }
        // Encrypted in place: `out` is rebuilt for the next batch.
        if !out.is_empty() && stream.send(&mut out).is_err() {
            break;
        }
    }
    let _ = stream.get_mut().shutdown(Shutdown::Both);
}

fn push_frame(msg: &Message, out: &mut Vec<u8>, addr: SocketAddr) {
    trace!("{addr} -> {msg}");
    wire::encode(msg, out);
}
