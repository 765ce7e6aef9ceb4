//! The peer wire codec (BEP 3, the five BEP 6 Fast extension messages, and message id 20
//! for BEP 10 extension messages).
//!
//! Pure encoding and decoding of length-prefixed frames, run on each peer thread: the
//! thread encodes outgoing messages into its own buffer and reads incoming ones from its
//! (buffered) socket. It owns nothing beyond the buffers it is handed; all semantic checks
//! (block ranges, bitfield lengths) are the peer thread's job.

use std::fmt;
use std::io::{self, Read};

use crate::geometry::BlockRef;

/// Largest frame accepted from a peer, as a length-prefix value (id byte plus payload).
pub const MAX_FRAME_LEN: u32 = 1 << 20;

const CHOKE: u8 = 0;
const UNCHOKE: u8 = 1;
const INTERESTED: u8 = 2;
const NOT_INTERESTED: u8 = 3;
const HAVE: u8 = 4;
const BITFIELD: u8 = 5;
const REQUEST: u8 = 6;
const PIECE: u8 = 7;
const CANCEL: u8 = 8;
const PORT: u8 = 9;
const SUGGEST: u8 = 0x0D;
const HAVE_ALL: u8 = 0x0E;
const HAVE_NONE: u8 = 0x0F;
const REJECT: u8 = 0x10;
const ALLOWED_FAST: u8 = 0x11;
const EXTENDED: u8 = 20;

/// Longest fixed header of any message id (request and cancel: three u32 fields).
const MAX_HEAD_LEN: usize = 12;

/// Most bytes allocated for a payload before any of it has arrived: a whole 16 KiB block
/// (and any bitfield up to 256 Ki pieces) in one allocation; longer payloads grow as they come,
/// so a peer that announces 1 MiB and sends 5 bytes does not make us hold 1 MiB.
const FIRST_ALLOC: usize = 32 * 1024;

/// One peer wire message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Empty frame that keeps an idle connection open.
    KeepAlive,
    /// The sender will not serve our requests.
    Choke,
    /// The sender will serve our requests.
    Unchoke,
    /// The sender wants pieces we have.
    Interested,
    /// The sender wants nothing we have.
    NotInterested,
    /// The sender now has this piece.
    Have(u32),
    /// The sender's pieces as a raw bit string; check it with `Bitfield::from_wire`.
    Bitfield(Vec<u8>),
    /// Ask for one block.
    Request(BlockRef),
    /// One block of data.
    Piece {
        /// Piece index.
        piece: u32,
        /// Byte offset inside the piece.
        offset: u32,
        /// The block's bytes.
        data: Vec<u8>,
    },
    /// Withdraw an earlier request.
    Cancel(BlockRef),
    /// The sender's DHT port.
    Port(u16),
    /// BEP 6: the sender suggests we download this piece (we may ignore it).
    Suggest(u32),
    /// BEP 6: the sender has every piece; stands in for a bitfield.
    HaveAll,
    /// BEP 6: the sender has no piece; stands in for a bitfield.
    HaveNone,
    /// BEP 6: the sender will not serve this request of ours.
    Reject(BlockRef),
    /// BEP 6: the sender serves requests for this piece even while it chokes us.
    AllowedFast(u32),
    /// A BEP 10 extension message: extended id (0 = extension handshake) and payload.
    Extended {
        /// Extended message id.
        id: u8,
        /// The bytes after the extended id.
        payload: Vec<u8>,
    },
    /// A message id this codec does not know; the peer thread ignores it.
    Unknown {
        /// Message id.
        id: u8,
        /// The bytes after the id.
        payload: Vec<u8>,
    },
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::KeepAlive => write!(f, "keep-alive"),
            Message::Choke => write!(f, "choke"),
            Message::Unchoke => write!(f, "unchoke"),
            Message::Interested => write!(f, "interested"),
            Message::NotInterested => write!(f, "not-interested"),
            Message::Have(piece) => write!(f, "have piece={piece}"),
            Message::Bitfield(bits) => write!(f, "bitfield {} bytes", bits.len()),
            Message::Request(b) => {
                write!(
                    f,
                    "request piece={} offset={} len={}",
                    b.piece, b.offset, b.len
                )
            }
            Message::Piece {
                piece,
                offset,
                data,
            } => write!(f, "piece piece={piece} offset={offset} len={}", data.len()),
            Message::Cancel(b) => {
                write!(
                    f,
                    "cancel piece={} offset={} len={}",
                    b.piece, b.offset, b.len
                )
            }
            Message::Port(port) => write!(f, "port {port}"),
            Message::Suggest(piece) => write!(f, "suggest piece={piece}"),
            Message::HaveAll => write!(f, "have-all"),
            Message::HaveNone => write!(f, "have-none"),
            Message::Reject(b) => {
                write!(
                    f,
                    "reject piece={} offset={} len={}",
                    b.piece, b.offset, b.len
                )
            }
            Message::AllowedFast(piece) => write!(f, "allowed-fast piece={piece}"),
            Message::Extended { id, payload } => {
                write!(f, "extended id={id} len={}", payload.len())
            }
            Message::Unknown { id, payload } => {
                write!(f, "unknown id={id} len={}", payload.len())
            }
        }
    }
}

/// Why a frame could not be read or decoded.
#[derive(Debug)]
pub enum WireError {
    /// The stream failed or ended (a frame cut short gives `UnexpectedEof`).
    Io(io::Error),
    /// The length prefix exceeds [`MAX_FRAME_LEN`]; nothing was allocated for it.
    FrameTooLong(u32),
    /// The payload length does not fit the message id.
    Malformed {
        /// Message id.
        id: u8,
        /// Payload length in bytes (the frame without its id byte).
        len: u32,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Io(e) => write!(f, "wire i/o error: {e}"),
            WireError::FrameTooLong(len) => {
                write!(
                    f,
                    "frame of {len} bytes exceeds the {MAX_FRAME_LEN}-byte limit"
                )
            }
            WireError::Malformed { id, len, reason } => {
                write!(
                    f,
                    "malformed message id {id} with {len}-byte payload: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for WireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WireError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> WireError {
        WireError::Io(e)
    }
}

/// Appends one complete length-prefixed frame for `msg` to `out`.
///
/// `Unknown` is encoded verbatim with its id. The caller keeps its own frames within
/// [`MAX_FRAME_LEN`] (peers refuse bigger ones); a payload over 4 GiB is a bug and panics.
pub fn encode(msg: &Message, out: &mut Vec<u8>) {
    match msg {
        Message::KeepAlive => out.extend_from_slice(&0u32.to_be_bytes()),
        Message::Choke => put_frame(out, CHOKE, &[], &[]),
        Message::Unchoke => put_frame(out, UNCHOKE, &[], &[]),
        Message::Interested => put_frame(out, INTERESTED, &[], &[]),
        Message::NotInterested => put_frame(out, NOT_INTERESTED, &[], &[]),
        Message::Have(piece) => put_frame(out, HAVE, &piece.to_be_bytes(), &[]),
        Message::Bitfield(bits) => put_frame(out, BITFIELD, &[], bits),
        Message::Request(b) => put_frame(out, REQUEST, &block_head(b), &[]),
        Message::Piece {
            piece,
            offset,
            data,
        } => {
            encode_piece_header(*piece, *offset, data.len(), out);
            out.extend_from_slice(data);
        }
        Message::Cancel(b) => put_frame(out, CANCEL, &block_head(b), &[]),
        Message::Port(port) => put_frame(out, PORT, &port.to_be_bytes(), &[]),
        Message::Suggest(piece) => put_frame(out, SUGGEST, &piece.to_be_bytes(), &[]),
        Message::HaveAll => put_frame(out, HAVE_ALL, &[], &[]),
        Message::HaveNone => put_frame(out, HAVE_NONE, &[], &[]),
        Message::Reject(b) => put_frame(out, REJECT, &block_head(b), &[]),
        Message::AllowedFast(piece) => put_frame(out, ALLOWED_FAST, &piece.to_be_bytes(), &[]),
        Message::Extended { id, payload } => put_frame(out, EXTENDED, &[*id], payload),
        Message::Unknown { id, payload } => put_frame(out, *id, &[], payload),
    }
}

/// Appends the length prefix and header of a `piece` message carrying `data_len` bytes; the
/// caller appends the data itself (a seeder reads it from disk straight into `out`).
pub(crate) fn encode_piece_header(piece: u32, offset: u32, data_len: usize, out: &mut Vec<u8>) {
    let frame_len = u32::try_from(1 + 8 + data_len).expect("a block is far below 4 GiB");
    out.extend_from_slice(&frame_len.to_be_bytes());
    out.push(PIECE);
    out.extend_from_slice(&piece.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
}

/// Decodes one frame without its length prefix: id byte plus payload; empty = keep-alive.
pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
    let Some((&id, payload)) = frame.split_first() else {
        return Ok(Message::KeepAlive);
    };
    let shape = Shape::of(id);
    shape.check(id, payload.len())?;
    let (head, tail) = payload.split_at(shape.head());
    Ok(build(id, head, tail.to_vec()))
}

/// Reads one frame from `r` (wrap a socket in a `BufReader`) and decodes it.
///
/// A length prefix over [`MAX_FRAME_LEN`] and a payload length that does not fit the id
/// are refused before anything is allocated for the payload. Variable-length payloads
/// (piece data, bitfields, extension messages) are read straight into the message's own
/// buffer, with no intermediate copy; at most 32 KiB is allocated for them ahead of the
/// bytes actually received.
pub fn read_message(r: &mut impl Read) -> Result<Message, WireError> {
    let mut prefix = [0u8; 4];
    r.read_exact(&mut prefix)?;
    let frame_len = u32::from_be_bytes(prefix);
    if frame_len > MAX_FRAME_LEN {
        return Err(WireError::FrameTooLong(frame_len));
    }
    if frame_len == 0 {
        return Ok(Message::KeepAlive);
    }
    let mut id = [0u8; 1];
    r.read_exact(&mut id)?;
    let id = id[0];
    // frame_len ≤ MAX_FRAME_LEN, so this fits usize on every supported target.
    let payload_len = (frame_len - 1) as usize;
    let shape = Shape::of(id);
    shape.check(id, payload_len)?;
    let mut head = [0u8; MAX_HEAD_LEN];
    let head = &mut head[..shape.head()];
    r.read_exact(head)?;
    let tail_len = payload_len - shape.head();
    let mut tail = Vec::with_capacity(tail_len.min(FIRST_ALLOC));
    r.take(tail_len as u64).read_to_end(&mut tail)?;
    if tail.len() < tail_len {
        return Err(WireError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(build(id, head, tail))
}

/// The payload layout of a message id: a fixed header, then for some ids a variable tail.
enum Shape {
    /// Exactly this many bytes; the reason is given when the length differs.
    Exact(usize, &'static str),
    /// A header of this many bytes, then any tail; the reason is given when shorter.
    AtLeast(usize, &'static str),
    /// Any payload, all of it tail.
    Any,
}

impl Shape {
    fn of(id: u8) -> Shape {
        match id {
            CHOKE | UNCHOKE | INTERESTED | NOT_INTERESTED | HAVE_ALL | HAVE_NONE => {
                Shape::Exact(0, "state messages carry no payload")
            }
            SUGGEST => Shape::Exact(4, "suggest needs exactly 4 bytes"),
            ALLOWED_FAST => Shape::Exact(4, "allowed-fast needs exactly 4 bytes"),
            REJECT => Shape::Exact(12, "reject needs exactly 12 bytes"),
            HAVE => Shape::Exact(4, "have needs exactly 4 bytes"),
            REQUEST => Shape::Exact(12, "request needs exactly 12 bytes"),
            CANCEL => Shape::Exact(12, "cancel needs exactly 12 bytes"),
            PIECE => Shape::AtLeast(8, "piece needs at least 8 bytes"),
            PORT => Shape::Exact(2, "port needs exactly 2 bytes"),
            EXTENDED => Shape::AtLeast(1, "extended needs at least 1 byte"),
            _ => Shape::Any,
        }
    }

    /// Length of the fixed header.
    fn head(&self) -> usize {
        match self {
            Shape::Exact(n, _) | Shape::AtLeast(n, _) => *n,
            Shape::Any => 0,
        }
    }

    fn check(&self, id: u8, payload_len: usize) -> Result<(), WireError> {
        let refused = match self {
            Shape::Exact(n, reason) if payload_len != *n => Some(*reason),
            Shape::AtLeast(n, reason) if payload_len < *n => Some(*reason),
            _ => None,
        };
        match refused {
            Some(reason) => Err(WireError::Malformed {
                id,
                len: u32::try_from(payload_len).unwrap_or(u32::MAX),
                reason,
            }),
            None => Ok(()),
        }
    }
}

/// Builds the message for `id` from a header of the length `Shape::of(id).head()`.
fn build(id: u8, head: &[u8], tail: Vec<u8>) -> Message {
    match id {
        CHOKE => Message::Choke,
        UNCHOKE => Message::Unchoke,
        INTERESTED => Message::Interested,
        NOT_INTERESTED => Message::NotInterested,
        HAVE => Message::Have(be_u32(head, 0)),
        BITFIELD => Message::Bitfield(tail),
        REQUEST => Message::Request(block_ref(head)),
        PIECE => Message::Piece {
            piece: be_u32(head, 0),
            offset: be_u32(head, 4),
            data: tail,
        },
        CANCEL => Message::Cancel(block_ref(head)),
        PORT => Message::Port(u16::from_be_bytes([head[0], head[1]])),
        SUGGEST => Message::Suggest(be_u32(head, 0)),
        HAVE_ALL => Message::HaveAll,
        HAVE_NONE => Message::HaveNone,
        REJECT => Message::Reject(block_ref(head)),
        ALLOWED_FAST => Message::AllowedFast(be_u32(head, 0)),
        EXTENDED => Message::Extended {
            id: head[0],
            payload: tail,
        },
        _ => Message::Unknown { id, payload: tail },
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn block_ref(head: &[u8]) -> BlockRef {
    BlockRef {
        piece: be_u32(head, 0),
        offset: be_u32(head, 4),
        len: be_u32(head, 8),
    }
}

fn block_head(b: &BlockRef) -> [u8; 12] {
    let mut head = [0u8; 12];
    head[..4].copy_from_slice(&b.piece.to_be_bytes());
    head[4..8].copy_from_slice(&b.offset.to_be_bytes());
    head[8..].copy_from_slice(&b.len.to_be_bytes());
    head
}

fn put_frame(out: &mut Vec<u8>, id: u8, head: &[u8], tail: &[u8]) {
    let len = u32::try_from(1 + head.len() + tail.len()).expect("frame payload over 4 GiB");
    out.reserve(4 + len as usize);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(id);
    out.extend_from_slice(head);
    out.extend_from_slice(tail);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, ErrorKind};

    fn frame(id: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
        out.push(id);
        out.extend_from_slice(payload);
        out
    }

    fn all_variants() -> Vec<Message> {
        let block = BlockRef {
            piece: 3,
            offset: 16384,
            len: 16384,
        };
        vec![
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have(0xdead_beef),
            Message::Bitfield(vec![0xff, 0x80]),
            Message::Bitfield(Vec::new()),
            Message::Request(block),
            Message::Piece {
                piece: 3,
                offset: 16384,
                data: (0..=255).collect(),
            },
            Message::Piece {
                piece: 1,
                offset: 0,
                data: Vec::new(),
            },
            Message::Cancel(block),
            Message::Port(6881),
            Message::Suggest(7),
            Message::HaveAll,
            Message::HaveNone,
            Message::Reject(block),
            Message::AllowedFast(0x0102_0304),
            Message::Extended {
                id: 0,
                payload: b"d1:md11:ut_metadatai1eee".to_vec(),
            },
            Message::Extended {
                id: 2,
                payload: Vec::new(),
            },
            Message::Unknown {
                id: 99,
                payload: vec![1, 2, 3],
            },
        ]
    }

    #[test]
    fn every_variant_round_trips_through_one_stream() {
        let msgs = all_variants();
        let mut buf = Vec::new();
        for m in &msgs {
            encode(m, &mut buf);
        }
        let mut r = Cursor::new(buf);
        for m in &msgs {
            assert_eq!(&read_message(&mut r).unwrap(), m);
        }
        assert_eq!(r.position() as usize, r.get_ref().len());
    }

    #[test]
    fn every_variant_round_trips_through_decode() {
        for m in all_variants() {
            let mut buf = Vec::new();
            encode(&m, &mut buf);
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            assert_eq!(len, buf.len() - 4, "{m}");
            assert_eq!(decode(&buf[4..]).unwrap(), m);
        }
    }

    #[test]
    fn encode_appends_exact_bytes() {
        let mut out = vec![0xaa];
        encode(
            &Message::Request(BlockRef {
                piece: 1,
                offset: 2,
                len: 3,
            }),
            &mut out,
        );
        assert_eq!(
            out,
            [0xaa, 0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
        );
        let mut out = Vec::new();
        encode(&Message::KeepAlive, &mut out);
        encode(&Message::Interested, &mut out);
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn keep_alive() {
        assert_eq!(decode(&[]).unwrap(), Message::KeepAlive);
        let mut r = Cursor::new(vec![0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(read_message(&mut r).unwrap(), Message::KeepAlive);
        assert_eq!(read_message(&mut r).unwrap(), Message::Unchoke);
    }

    fn assert_malformed(id: u8, payload: &[u8]) {
        let err = read_message(&mut Cursor::new(frame(id, payload))).unwrap_err();
        match err {
            WireError::Malformed { id: got, len, .. } => {
                assert_eq!((got, len as usize), (id, payload.len()));
            }
            other => panic!(
                "id {id} len {}: expected Malformed, got {other}",
                payload.len()
            ),
        }
        let mut raw = vec![id];
        raw.extend_from_slice(payload);
        assert!(matches!(decode(&raw), Err(WireError::Malformed { .. })));
    }

    #[test]
    fn wrong_fixed_lengths_are_malformed() {
        for id in [CHOKE, UNCHOKE, INTERESTED, NOT_INTERESTED] {
            assert_malformed(id, &[0]);
        }
        assert_malformed(HAVE, &[0; 3]);
        assert_malformed(HAVE, &[0; 5]);
        assert_malformed(REQUEST, &[0; 11]);
        assert_malformed(REQUEST, &[0; 13]);
        assert_malformed(CANCEL, &[0; 11]);
        assert_malformed(CANCEL, &[0; 16]);
        assert_malformed(PORT, &[0; 1]);
        assert_malformed(PORT, &[0; 3]);
        for id in [HAVE_ALL, HAVE_NONE] {
            assert_malformed(id, &[0]);
        }
        for id in [SUGGEST, ALLOWED_FAST] {
            assert_malformed(id, &[0; 3]);
            assert_malformed(id, &[0; 5]);
        }
        assert_malformed(REJECT, &[0; 11]);
        assert_malformed(REJECT, &[0; 13]);
    }

    /// The BEP 6 messages' bytes, as the BEP lays them out: ids 0x0D to 0x11, big-endian
    /// fields.
    #[test]
    fn fast_extension_frames_have_the_bep_6_layout() {
        let cases: Vec<(Message, Vec<u8>)> = vec![
            (Message::Suggest(5), vec![0, 0, 0, 5, 0x0D, 0, 0, 0, 5]),
            (Message::HaveAll, vec![0, 0, 0, 1, 0x0E]),
            (Message::HaveNone, vec![0, 0, 0, 1, 0x0F]),
            (
                Message::Reject(BlockRef {
                    piece: 1,
                    offset: 0x4000,
                    len: 0x4000,
                }),
                vec![0, 0, 0, 13, 0x10, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
            ),
            (
                Message::AllowedFast(0x0102_0304),
                vec![0, 0, 0, 5, 0x11, 1, 2, 3, 4],
            ),
        ];
        for (msg, bytes) in cases {
            let mut out = Vec::new();
            encode(&msg, &mut out);
            assert_eq!(out, bytes, "{msg}");
            assert_eq!(read_message(&mut Cursor::new(bytes)).unwrap(), msg);
        }
        assert_eq!(Message::HaveAll.to_string(), "have-all");
        assert_eq!(Message::AllowedFast(9).to_string(), "allowed-fast piece=9");
    }

    #[test]
    fn short_piece_and_empty_extended_are_malformed() {
        assert_malformed(PIECE, &[0; 7]);
        assert_malformed(PIECE, &[]);
        assert_malformed(EXTENDED, &[]);
    }

    #[test]
    fn unknown_ids_decode_as_unknown() {
        let msg = decode(&[99, 7, 8]).unwrap();
        assert_eq!(
            msg,
            Message::Unknown {
                id: 99,
                payload: vec![7, 8]
            }
        );
    }

    /// A reader that serves a fixed prefix and then fails, so a test can tell whether the
    /// codec tried to read (and would have allocated for) a payload.
    struct PrefixOnly(Cursor<Vec<u8>>);

    impl Read for PrefixOnly {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(io::Error::other("read past the prefix")),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn oversized_prefix_is_refused_before_reading_on() {
        let mut r = PrefixOnly(Cursor::new(vec![0xff; 4]));
        assert!(matches!(
            read_message(&mut r),
            Err(WireError::FrameTooLong(u32::MAX))
        ));
        let mut r = PrefixOnly(Cursor::new((MAX_FRAME_LEN + 1).to_be_bytes().to_vec()));
        assert!(matches!(
            read_message(&mut r),
            Err(WireError::FrameTooLong(n)) if n == MAX_FRAME_LEN + 1
        ));
    }

    #[test]
    fn bad_fixed_length_is_refused_before_reading_the_payload() {
        let mut r = PrefixOnly(Cursor::new(vec![0, 0, 0xff, 0xff, HAVE]));
        assert!(matches!(
            read_message(&mut r),
            Err(WireError::Malformed {
                id: HAVE,
                len: 0xfffe,
                ..
            })
        ));
    }

    #[test]
    fn largest_allowed_frame_is_accepted() {
        let data = vec![7u8; MAX_FRAME_LEN as usize - 9];
        let msg = Message::Piece {
            piece: 0,
            offset: 0,
            data,
        };
        let mut buf = Vec::new();
        encode(&msg, &mut buf);
        assert_eq!(buf.len(), 4 + MAX_FRAME_LEN as usize);
        assert_eq!(read_message(&mut Cursor::new(buf)).unwrap(), msg);
    }

    #[test]
    fn truncated_stream_is_unexpected_eof() {
        let mut full = Vec::new();
        encode(
            &Message::Piece {
                piece: 2,
                offset: 0,
                data: vec![1; 100],
            },
            &mut full,
        );
        for cut in [0, 2, 4, 5, 9, 13, full.len() - 1] {
            let err = read_message(&mut Cursor::new(full[..cut].to_vec())).unwrap_err();
            assert!(
                matches!(&err, WireError::Io(e) if e.kind() == ErrorKind::UnexpectedEof),
                "cut at {cut}: {err}"
            );
        }
    }

    /// Fuzz regression (fuzz/ wire_stream): a 24-byte stream whose last length prefix
    /// announced a 136 KiB extended message made `read_message` allocate all of it before
    /// reading; now it allocates at most `FIRST_ALLOC` ahead of what arrives, and still
    /// reports the cut frame as `UnexpectedEof`.
    #[test]
    fn announced_length_is_not_allocated_ahead_of_the_data() {
        let stream = b"\x00\x00\x00\x02\x14\x01\x00\x00\x00\x02\x14\x01\x00\x00\x00\x02\
                       \x14\x00\x00\x02\x14\x21\x5d\x5d";
        let mut r = Cursor::new(&stream[..]);
        for id in [1, 1, 0] {
            let msg = read_message(&mut r).unwrap();
            assert_eq!(
                msg,
                Message::Extended {
                    id,
                    payload: Vec::new()
                }
            );
        }
        let err = read_message(&mut r).unwrap_err();
        assert!(matches!(&err, WireError::Io(e) if e.kind() == ErrorKind::UnexpectedEof));

        // The biggest frame allowed, cut after 3 payload bytes.
        let mut cut = MAX_FRAME_LEN.to_be_bytes().to_vec();
        cut.extend_from_slice(&[PIECE, 0, 0, 0, 1, 0, 0, 0, 0, 7, 7, 7]);
        let err = read_message(&mut Cursor::new(cut)).unwrap_err();
        assert!(matches!(&err, WireError::Io(e) if e.kind() == ErrorKind::UnexpectedEof));
    }

    #[test]
    fn long_payloads_arrive_whole() {
        for len in [
            0,
            1,
            FIRST_ALLOC - 9,
            FIRST_ALLOC,
            FIRST_ALLOC + 1,
            MAX_FRAME_LEN as usize - 9,
        ] {
            let msg = Message::Piece {
                piece: 1,
                offset: 2,
                data: (0..len).map(|i| i as u8).collect(),
            };
            let mut frame = Vec::new();
            encode(&msg, &mut frame);
            assert_eq!(
                read_message(&mut Cursor::new(frame)).unwrap(),
                msg,
                "len {len}"
            );
        }
    }

    #[test]
    fn display_is_one_readable_line() {
        let block = BlockRef {
            piece: 3,
            offset: 16384,
            len: 16384,
        };
        assert_eq!(
            Message::Request(block).to_string(),
            "request piece=3 offset=16384 len=16384"
        );
        assert_eq!(
            Message::Piece {
                piece: 3,
                offset: 0,
                data: vec![0x41; 16384]
            }
            .to_string(),
            "piece piece=3 offset=0 len=16384"
        );
        assert_eq!(
            Message::Bitfield(vec![0; 128]).to_string(),
            "bitfield 128 bytes"
        );
        assert_eq!(
            Message::Extended {
                id: 0,
                payload: vec![0; 120]
            }
            .to_string(),
            "extended id=0 len=120"
        );
        for m in all_variants() {
            assert!(!m.to_string().contains('\n'));
        }
        let err = decode(&[HAVE, 1]).unwrap_err().to_string();
        assert_eq!(
            err,
            "malformed message id 4 with 1-byte payload: have needs exactly 4 bytes"
        );
    }
}
