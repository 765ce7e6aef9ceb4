//! A metadata-phase peer thread (`metadata <addr>`): one connection, opened through the one
//! dialer, that asks a peer for the metadata pieces the main loop hands it.
//!
//! It owns its socket and nothing else. It dials ([`dial::connect`], [`dial::handshake`]),
//! exchanges the extension handshake, reports the peer's `metadata_size`, then for each
//! [`Ask`] sends the requests and reports every answer as a [`Report`]. Every read goes
//! through a [`DeadlineReader`], so a peer that drips bytes cannot hold the connection past
//! the deadline of what it owes (the extension handshake, or the answers to one ask).

use std::fmt;
use std::io::{self, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use log::debug;

use super::{Ask, Report};
use crate::messages::PeerKey;
use crate::net::is_timeout;
use crate::peer::connection::{ADVERTISED_REQQ, READ_BUFFER};
use crate::peer::dial::{self, DeadlineReader, DialError};
use crate::peer::extension::{self, MetadataMsg, OurHandshake, MAX_METADATA_SIZE, UT_METADATA};
use crate::peer::handshake::Handshake;
use crate::peer::mse::{DecryptingReader, EncryptingWriter, Encryption};
use crate::peer::wire::{self, Message, WireError};

/// Why a peer thread ended its connection.
#[derive(Debug)]
enum PeerFailure {
    Dial(DialError),
    Write(io::Error),
    Wire(WireError),
    Slow(&'static str),
    NoExtensions,
    BadExtensionHandshake,
    NoUtMetadata,
    NoMetadata,
    TooLarge(u32),
    Malformed,
    Unasked(u32),
    WrongPiece {
        piece: u32,
        total_size: u32,
        len: usize,
    },
}

impl fmt::Display for PeerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerFailure::Dial(e) => write!(f, "{e}"),
            PeerFailure::Write(e) => write!(f, "write failed: {e}"),
            PeerFailure::Wire(e) => write!(f, "{e}"),
            PeerFailure::Slow(what) => write!(f, "no {what} in time"),
            PeerFailure::NoExtensions => write!(f, "does not speak the extension protocol"),
            PeerFailure::BadExtensionHandshake => {
                write!(f, "sent an unreadable extension handshake")
            }
            PeerFailure::NoUtMetadata => write!(f, "does not offer ut_metadata"),
            PeerFailure::NoMetadata => write!(f, "has no metadata to share"),
            PeerFailure::TooLarge(size) => write!(
                f,
                "metadata_size {size} is over the {MAX_METADATA_SIZE}-byte limit"
            ),
            PeerFailure::Malformed => write!(f, "sent a malformed ut_metadata message"),
            PeerFailure::Unasked(piece) => {
                write!(f, "sent metadata piece {piece} nobody asked for")
            }
            PeerFailure::WrongPiece {
                piece,
                total_size,
                len,
            } => write!(
                f,
                "sent metadata piece {piece} of {len} bytes with total_size {total_size}"
            ),
        }
    }
}

/// Everything a peer thread needs, moved into it.
pub(super) struct Link {
    pub(super) key: PeerKey,
    pub(super) addr: SocketAddr,
    pub(super) info_hash: [u8; 20],
    pub(super) our_id: [u8; 20],
    pub(super) listen_port: u16,
    /// The address to dial from (`--bind`), if any.
    pub(super) local: Option<IpAddr>,
    /// `--encryption`.
    pub(super) encryption: Encryption,
    pub(super) asks: Receiver<Ask>,
    pub(super) reports: Sender<(PeerKey, Report)>,
    /// From the connect to the peer's extension handshake.
    pub(super) handshake_timeout: Duration,
    /// For the answers to one [`Ask`].
    pub(super) piece_timeout: Duration,
}

impl Link {
    /// The peer thread's body: talks to the peer, then reports `Closed` with the reason.
    pub(super) fn run(self) {
        let reason = match self.talk() {
            Ok(()) => "metadata no longer needed".to_string(),
            Err(e) => e.to_string(),
        };
        debug!("{}: metadata connection ended: {reason}", self.addr);
        // The fetch may be over already; then nobody needs to hear it.
        let _ = self.reports.send((self.key, Report::Closed { reason }));
    }

    fn report(&self, report: Report) -> bool {
        self.reports.send((self.key, report)).is_ok()
    }

    fn talk(&self) -> Result<(), PeerFailure> {
        let handshake_by = Instant::now() + self.handshake_timeout;
        let ours = Handshake::new(self.info_hash, self.our_id);
        let dialed =
            dial::dial(self.addr, self.local, &ours, self.encryption).map_err(PeerFailure::Dial)?;
        let (stream, theirs, ciphers) = (dialed.stream, dialed.theirs, dialed.ciphers);
        let socket = stream
            .try_clone()
            .map_err(|e| PeerFailure::Dial(DialError::Connect(e)))?;
        if !self.report(Report::Socket(socket)) {
            return Ok(());
        }
        let mut writer = EncryptingWriter::new(&stream, ciphers.write);
        if !theirs.supports_extensions() {
            return Err(PeerFailure::NoExtensions);
        }
        let ext = extension::encode_handshake(&OurHandshake {
            reqq: ADVERTISED_REQQ,
            metadata_size: None,
            listen_port: (self.listen_port != 0).then_some(self.listen_port),
            yourip: Some(self.addr.ip()),
            pex: false,
            prefers_encryption: self.encryption != Encryption::Off,
        });
        send(
            &mut writer,
            &Message::Extended {
                id: extension::HANDSHAKE_ID,
                payload: ext,
            },
        )?;
        if ours.supports_fast() && theirs.supports_fast() {
            // BEP 6: a Fast peer says what it has; before the metadata, nothing.
            send(&mut writer, &Message::HaveNone)?;
        }
        let within = DeadlineReader::new(&stream, self.handshake_timeout);
        let mut reader = BufReader::with_capacity(
            READ_BUFFER,
            DecryptingReader::new(within, ciphers.read, ciphers.pending),
        );
        let theirs = loop {
            match read_by(&mut reader, handshake_by, "extension handshake")? {
                Message::Extended { id, payload } if id == extension::HANDSHAKE_ID => {
                    break extension::parse_handshake(&payload)
                        .ok_or(PeerFailure::BadExtensionHandshake)?;
                }
                _ => continue,
            }
        };
        let their_id = theirs.ut_metadata.ok_or(PeerFailure::NoUtMetadata)?;
        let size = theirs.metadata_size.ok_or(PeerFailure::NoMetadata)?;
        if size > MAX_METADATA_SIZE {
            return Err(PeerFailure::TooLarge(size));
        }
        if !self.report(Report::Ready { size }) {
            return Ok(());
        }
        while let Ok(ask) = self.asks.recv() {
            let mut out = Vec::new();
            for &piece in &ask.pieces {
                let payload = extension::encode_metadata(&MetadataMsg::Request { piece });
                wire::encode(
                    &Message::Extended {
                        id: their_id,
                        payload,
                    },
                    &mut out,
                );
            }
            writer.write_all(&out).map_err(PeerFailure::Write)?;
            if !self.await_answers(&mut reader, &mut writer, their_id, size, ask.pieces)? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Reads until every piece in `waiting` is answered, reporting each answer; other
    /// messages are ignored, and requests from the peer are rejected (we have nothing yet).
    /// Returns false when the main loop is gone.
    fn await_answers(
        &self,
        reader: &mut Input<'_>,
        writer: &mut EncryptingWriter<&TcpStream>,
        their_id: u8,
        size: u32,
        mut waiting: Vec<u32>,
    ) -> Result<bool, PeerFailure> {
        let answer_by = Instant::now() + self.piece_timeout;
        while !waiting.is_empty() {
            let Message::Extended { id, payload } =
                read_by(reader, answer_by, "answer to a metadata request")?
            else {
                continue;
            };
            if id != UT_METADATA {
                continue;
            }
            let report = match extension::parse_metadata(&payload) {
                None => return Err(PeerFailure::Malformed),
                Some(MetadataMsg::Request { piece }) => {
                    let reject = extension::encode_metadata(&MetadataMsg::Reject { piece });
                    send(
                        writer,
                        &Message::Extended {
                            id: their_id,
                            payload: reject,
                        },
                    )?;
                    continue;
                }
                Some(MetadataMsg::Data {
                    piece,
                    total_size,
                    data,
                }) => {
                    answered(&mut waiting, piece)?;
                    if total_size != size
                        || extension::expected_piece_len(size, piece) != Some(data.len())
                    {
                        return Err(PeerFailure::WrongPiece {
                            piece,
                            total_size,
                            len: data.len(),
                        });
                    }
                    Report::Piece { piece, data }
                }
                Some(MetadataMsg::Reject { piece }) => {
                    answered(&mut waiting, piece)?;
                    Report::Rejected { piece }
                }
            };
            if !self.report(report) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Takes `piece` off the list of pieces awaiting an answer; a piece not on it was never asked
/// for.
fn answered(waiting: &mut Vec<u32>, piece: u32) -> Result<(), PeerFailure> {
    let at = waiting
        .iter()
        .position(|&p| p == piece)
        .ok_or(PeerFailure::Unasked(piece))?;
    waiting.swap_remove(at);
    Ok(())
}

fn send(writer: &mut impl Write, msg: &Message) -> Result<(), PeerFailure> {
    let mut out = Vec::new();
    wire::encode(msg, &mut out);
    writer.write_all(&out).map_err(PeerFailure::Write)
}

/// What a metadata connection reads through: the deadline, then the cipher, then a buffer.
type Input<'a> = BufReader<DecryptingReader<DeadlineReader<'a>>>;

/// Reads one message, failing with [`PeerFailure::Slow`] once `by` has passed, however the
/// peer slices it.
fn read_by(
    reader: &mut Input<'_>,
    by: Instant,
    what: &'static str,
) -> Result<Message, PeerFailure> {
    reader.get_mut().get_mut().until(by);
    wire::read_message(reader).map_err(|e| match e {
        WireError::Io(io) if is_timeout(&io) => PeerFailure::Slow(what),
        other => PeerFailure::Wire(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::handshake::read_handshake;
    use std::net::TcpListener;
    use std::time::Duration;

    /// A peer that offers metadata, then answers the first request by dripping one byte of a
    /// message every 50 ms, for up to 10 s.
    fn dripping_peer(info_hash: [u8; 20]) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            read_handshake(&mut s).unwrap();
            s.write_all(&Handshake::new(info_hash, [9; 20]).to_bytes())
                .unwrap();
            let ext = extension::encode_handshake(&OurHandshake {
                reqq: 10,
                metadata_size: Some(40_000),
                listen_port: None,
                yourip: None,
                pex: false,
                prefers_encryption: false,
            });
            let mut out = Vec::new();
            wire::encode(
                &Message::Extended {
                    id: extension::HANDSHAKE_ID,
                    payload: ext,
                },
                &mut out,
            );
            s.write_all(&out).unwrap();
            // Their extension handshake, then the requests.
            let mut reader = BufReader::new(s.try_clone().unwrap());
            wire::read_message(&mut reader).unwrap();
            wire::read_message(&mut reader).unwrap();
            // A 1,000-byte message, never finished in time.
            if s.write_all(&[0, 0, 3, 232, 20]).is_err() {
                return;
            }
            for _ in 0..200 {
                std::thread::sleep(Duration::from_millis(50));
                if s.write_all(&[0]).is_err() {
                    return;
                }
            }
        });
        (addr, peer)
    }

    #[test]
    fn a_peer_that_drips_bytes_is_dropped_at_the_piece_deadline() {
        let info_hash = [3; 20];
        let (addr, peer) = dripping_peer(info_hash);
        let (asks_tx, asks) = crossbeam_channel::unbounded();
        let (reports, reports_rx) = crossbeam_channel::unbounded();
        let link = Link {
            key: 0,
            addr,
            info_hash,
            our_id: [1; 20],
            listen_port: 0,
            local: None,
            encryption: Encryption::Off,
            asks,
            reports,
            handshake_timeout: Duration::from_secs(5),
            piece_timeout: Duration::from_secs(1),
        };
        asks_tx.send(Ask { pieces: vec![0] }).unwrap();
        let started = Instant::now();
        let failure = link.talk().unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(failure, PeerFailure::Slow(_)),
            "dropped for {failure}"
        );
        assert!(took < Duration::from_secs(3), "held for {took:?}");
        assert!(reports_rx
            .try_iter()
            .any(|(_, r)| matches!(r, Report::Ready { size: 40_000 })));
        drop(link);
        peer.join().unwrap();
    }
}
