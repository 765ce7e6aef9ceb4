//! Every message that crosses a thread boundary, in one place.
//!
//! strand's threads share no mutable state: they talk only by sending these values over
//! crossbeam channels. Events flow *into* the main thread (one channel, [`Event`]); commands
//! flow *out* of it to the peer threads ([`Command`]), the writer thread ([`WriteCommand`]),
//! the hasher ([`HashJob`]) and the tracker thread ([`TrackerCommand`]). The DHT thread has
//! its own pair: [`DhtCommand`] in, [`DhtEvent`] out (it outlives a magnet's metadata phase,
//! so it reports on a channel of its own rather than the session's).
//! ARCHITECTURE.md draws who sends what to whom.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::bitfield::Bitfield;
use crate::blocks::PieceBlocks;
use crate::geometry::{BlockRef, PieceIndex};
use crate::peer::extension::Pex;
use crate::peer::mse::{Ciphers, Link};

/// The main thread's name for one peer connection; never reused within a session.
pub(crate) type PeerKey = u64;

/// Everything the main thread hears about, from any thread.
#[derive(Debug)]
pub enum Event {
    /// Something happened on a peer connection.
    Peer(PeerKey, PeerEvent),
    /// The tracker thread learned something.
    Tracker(TrackerEvent),
    /// The hasher finished checking a piece.
    Hashed(HashResult),
    /// The writer thread finished (or failed) a write.
    Disk(DiskEvent),
    /// The listener accepted a connection from a peer and read its handshake.
    Accepted {
        /// The new socket; we have not answered the handshake yet.
        stream: TcpStream,
        /// The peer's address.
        addr: SocketAddr,
        /// The peer's handshake (its info hash not yet checked).
        handshake: Handshake,
        /// The connection's cipher halves (plaintext, or RC4 after an MSE exchange); boxed,
        /// as two RC4 states would make every event large.
        ciphers: Box<Ciphers>,
    },
}

/// What a peer thread reports: one variant per thing that happened on the wire.
#[derive(Debug)]
pub enum PeerEvent {
    /// The handshake succeeded; the peer is ready for messages.
    Connected {
        /// The peer's 20-byte id from its handshake.
        peer_id: [u8; 20],
        /// The peer speaks the extension protocol (BEP 10).
        extensions: bool,
        /// Both handshakes set the Fast extension bit (BEP 6): `have all`, `have none`,
        /// `reject` and `allowed fast` may be used both ways.
        fast: bool,
        /// How the handshakes were carried: what it tells of the peer's encryption.
        link: Link,
    },
    /// The peer's extension handshake (BEP 10): its message ids, `reqq`, listen port.
    ExtensionHandshake(TheirHandshake),
    /// The peer asked for one 16 KiB piece of the torrent's metadata (BEP 9).
    MetadataRequested(u32),
    /// The peer's DHT node listens on this UDP port (BEP 5 `port` message).
    DhtPort(u16),
    /// The peer told us of other peers (BEP 11 peer exchange; at most 50 at a time), and
    /// which of them prefer encryption (flag 0x01).
    PexPeers(Pex),
    /// The peer sent its bitfield (already checked for length and spare bits), or a Fast
    /// `have all` (a full bitfield).
    Bitfield(Bitfield),
    /// The peer announced it has one more piece (index already range-checked).
    Have(PieceIndex),
    /// The peer choked us: our outstanding requests will not be answered.
    Choked,
    /// The peer unchoked us: we may send requests.
    Unchoked,
    /// The peer wants pieces from us.
    Interested,
    /// The peer no longer wants pieces from us.
    NotInterested,
    /// The peer asked us for a block (not yet checked against what we have).
    Requested(BlockRef),
    /// The peer withdrew one of its requests.
    Canceled(BlockRef),
    /// The peer will not serve this request of ours (BEP 6 `reject`; block range-checked,
    /// not yet checked against what we asked for).
    Rejected(BlockRef),
    /// The peer will serve requests for this piece while it chokes us (BEP 6 `allowed fast`;
    /// index range-checked).
    AllowedFast(PieceIndex),
    /// The peer sent a block of data.
    Block {
        /// Which block (checked to be one of the torrent's blocks).
        block: BlockRef,
        /// The block's bytes (`block.len` of them).
        data: Vec<u8>,
    },
    /// The connection ended; the thread has exited or is about to.
    Closed {
        /// Why, in a few words, for logs.
        reason: String,
    },
}

/// Orders from the main thread to one peer thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Tell the peer we are interested.
    Interested,
    /// Tell the peer we are not interested.
    NotInterested,
    /// Ask the peer for a block.
    Request(BlockRef),
    /// Withdraw an earlier request.
    Cancel(BlockRef),
    /// Send our bitfield: the first message after the handshake, when we have any piece.
    Bitfield(Vec<u8>),
    /// Send `have all` instead of a bitfield: we have every piece (Fast peers only).
    HaveAll,
    /// Send `have none` instead of a bitfield: we have no piece (Fast peers only).
    HaveNone,
    /// Tell a Fast peer we will not serve this request of its.
    Reject(BlockRef),
    /// Tell a Fast peer we serve requests for this piece even while we choke it.
    AllowedFast(PieceIndex),
    /// Send an extension-protocol message (BEP 10): id 0 is the extension handshake.
    Extended {
        /// The extended message id.
        id: u8,
        /// The bencoded payload.
        payload: Vec<u8>,
    },
    /// Announce a newly verified piece.
    Have(PieceIndex),
    /// Choke the peer: we will not serve it, and its queued requests are dropped (and, on a
    /// Fast connection, each rejected), but those for the pieces in `keep`, which we allow
    /// it fast.
    Choke {
        /// Pieces whose queued requests are still served (empty but for Fast peers).
        keep: Vec<PieceIndex>,
    },
    /// Unchoke the peer: we will serve its requests.
    Unchoke,
    /// Send the peer this block, read from our verified data.
    Upload(BlockRef),
    /// The peer canceled its request for this block: do not send it if not sent yet (and,
    /// on a Fast connection, reject it).
    SkipUpload(BlockRef),
    /// Close the connection and end the thread.
    Disconnect,
}

/// What we use from a peer's extension handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TheirHandshake {
    /// How many requests the peer lets us queue, if it said (and said something sane).
    pub reqq: Option<u32>,
    /// The peer's client name, if it said.
    pub client: Option<String>,
    /// The id the peer wants `ut_metadata` messages sent with; `None` if it does not speak it
    /// (or disabled it with id 0).
    pub ut_metadata: Option<u8>,
    /// The id the peer wants `ut_pex` messages sent with; `None` if it does not speak it.
    pub ut_pex: Option<u8>,
    /// The size of the info dict the peer can serve. A positive size too large for a `u32`
    /// reads as `u32::MAX`, which is over any sane limit like the real value.
    pub metadata_size: Option<u32>,
    /// The TCP port the peer accepts connections on (`p`), if it said.
    pub listen_port: Option<u16>,
    /// The peer prefers encrypted connections (`e` = 1): it speaks MSE.
    pub prefers_encryption: bool,
}

/// One side's handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// Feature bits; we only look at the BEP 10 extension bit and the BEP 6 Fast bit.
    pub reserved: [u8; 8],
    /// SHA-1 of the torrent's info dictionary.
    pub info_hash: [u8; 20],
    /// The sender's peer id.
    pub peer_id: [u8; 20],
}

/// What the tracker thread reports.
#[derive(Debug)]
pub enum TrackerEvent {
    /// An announce returned peers (possibly none).
    Peers(Vec<SocketAddr>),
    /// The tracker says these peers, about to come in [`TrackerEvent::Peers`], require
    /// encryption (`crypto_flags`).
    RequiresCrypto(Vec<SocketAddr>),
    /// The tracker said something the user should see (a `warning message`).
    Warning(String),
    /// Every tracker failed in one round; the thread will retry later with backoff. The text
    /// is one short block: a header line (`all N trackers failed:`), then one indented line
    /// per tracker with its error, each naming the tracker's URL.
    Failed(String),
}

/// Orders from the main thread to the tracker thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerCommand {
    /// Current transfer totals, sent on the next announce.
    Progress(Totals),
    /// Every piece is done: announce `completed`.
    Completed,
    /// We are short of peers: announce early for more. Honoured only once the tracker's
    /// `min interval` (30 s if it gave none) has passed since the last announce; sent
    /// earlier, the announce is deferred to that moment (unless the regular one comes first).
    NeedPeers,
    /// Announce `stopped` and end the thread.
    Stop,
}

/// The transfer totals an announce reports (BEP 3's `uploaded`, `downloaded` and `left`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Payload bytes sent to peers so far.
    pub uploaded: u64,
    /// Payload bytes received and verified so far.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
}

/// A complete piece for the hasher to verify.
#[derive(Debug)]
pub(crate) struct HashJob {
    /// Piece index.
    pub piece: PieceIndex,
    /// The piece's blocks.
    pub blocks: PieceBlocks,
    /// Also return each block's SHA-1 when the piece passes (it failed before, and the
    /// good copy tells which earlier blocks were bad).
    pub block_digests: bool,
}

/// The hasher's verdict on one piece.
#[derive(Debug)]
pub struct HashResult {
    /// Piece index.
    pub piece: PieceIndex,
    /// True when the SHA-1 matched the torrent; the data has gone on to the writer.
    pub ok: bool,
    /// The SHA-1 of each 16 KiB block: always for a failed piece, and for a good one when
    /// the job asked.
    pub block_digests: Option<Vec<[u8; 20]>>,
}

/// A verified piece for the writer thread.
#[derive(Debug)]
pub(crate) struct WriteCommand {
    /// Piece index.
    pub piece: PieceIndex,
    /// The piece's blocks, already verified.
    pub blocks: PieceBlocks,
}

/// What the writer thread reports.
#[derive(Debug)]
pub enum DiskEvent {
    /// The piece is on disk (its blocks are freed).
    PieceWritten(PieceIndex),
    /// A write failed; the session must stop.
    Failed {
        /// The file that could not be written.
        path: PathBuf,
        /// The OS error, as text.
        error: String,
    },
}

/// Orders to the DHT thread (`dht::spawn`).
#[derive(Debug, Clone)]
pub enum DhtCommand {
    /// Look for peers of this info hash now (ignored while a lookup for it runs); they come
    /// back as [`DhtEvent::Peers`], the end as [`DhtEvent::LookupDone`].
    GetPeers([u8; 20]),
    /// We download or seed this info hash on this TCP port: announce it now and every 15–30
    /// minutes.
    Announce([u8; 20], u16),
    /// A peer said its DHT node listens here (BEP 5 `port` message): ping it.
    AddNode(SocketAddr),
    /// Send back a [`DhtReport`] (node count, counters).
    Report(crossbeam_channel::Sender<DhtReport>),
    /// Move this node's clock forward (tests of expiry; never sent by the client itself).
    AdvanceClock(Duration),
    /// Save the state file and end the thread.
    Stop,
}

/// What the DHT thread reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtEvent {
    /// A lookup found these peers for this info hash.
    Peers([u8; 20], Vec<SocketAddr>),
    /// A lookup for this info hash ended with this many distinct peers.
    LookupDone([u8; 20], usize),
    /// The routing table now holds this many nodes (sent when it changes, at most once a
    /// second).
    Nodes(usize),
}

/// The DHT thread's counters, on [`DhtCommand::Report`] and when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DhtReport {
    /// Nodes in the routing table.
    pub nodes: usize,
    /// Datagrams that did not decode.
    pub malformed: u64,
    /// Replies matching no query of ours.
    pub unsolicited: u64,
    /// Queries answered.
    pub answered: u64,
    /// Info hashes and peers in the store of peers announced to us.
    pub stored: (usize, usize),
    /// Datagrams not sent, or names not resolved, because they were not loopback under
    /// the loopback-only setting.
    pub refused: u64,
    /// Datagrams dropped on arrival: over a source's query rate, or the DHT thread busy.
    pub dropped: u64,
}
