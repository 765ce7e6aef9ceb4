//! Every limit on what a stranger (a peer, a tracker, a .torrent file) can make strand spend,
//! in one place.
//!
//! Each limit is defined beside the code that enforces it; this module only re-exports them,
//! so that one page lists them all. `--max-peers` (default 100; each connection has two
//! threads) and `--tracker-timeout` are the ones the user sets; see `strand --help`.

// Peers, and the threads that come with them.

/// Peer addresses remembered (from trackers, peer exchange and the user).
pub use crate::addresses::MAX_KNOWN_PEERS;
/// Pieces with a peer as their only source that may fail their hash before it is dropped.
pub use crate::addresses::MAX_STRIKES;
/// Silence (no whole message) may last this long before the connection is dropped.
pub use crate::peer::connection::IDLE_TIMEOUT;
/// Stack reserved for each of a connection's two threads.
pub use crate::peer::connection::STACK_SIZE;
/// A connect, a handshake and one write may take this long before the connection is dropped.
pub use crate::peer::dial::{CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT, WRITE_TIMEOUT};
/// Connections being opened (not yet handshaken) at once.
pub use crate::session::MAX_HALF_OPEN;
/// A peer that owes us blocks and sends nothing for this long is dropped.
pub use crate::session::SNUB_TIMEOUT;

// What a peer can make us queue or buffer.

/// Requests a peer may queue with us before it counts as a flood (we advertise
/// [`ADVERTISED_REQQ`]).
pub use crate::peer::connection::{ADVERTISED_REQQ, MAX_QUEUED_UPLOADS};
/// Bytes buffered per connection: the read buffer, and the most a write batch grows to.
pub use crate::peer::connection::{READ_BUFFER, WRITE_BATCH};
/// Largest info dict accepted from peers for a magnet link.
pub use crate::peer::extension::MAX_METADATA_SIZE;
/// Peers taken from one peer exchange message, and sent in one.
pub use crate::peer::extension::MAX_PEX_PEERS;
/// Largest frame (length prefix) accepted from a peer.
pub use crate::peer::wire::MAX_FRAME_LEN;
/// Requests we keep in flight to one peer (less if its `reqq` says so).
pub use crate::session::MAX_DEPTH;
/// Piece data held in memory at once, whatever the torrent's size.
pub use crate::session::PIECE_MEMORY_BUDGET;
/// Late blocks we remember having withdrawn, per peer.
pub use crate::session::WITHDRAWN_LIMIT;

// What trackers and files can make us read.

/// Deepest nesting of bencoded lists and dicts decoded.
pub use crate::bencode::MAX_DEPTH as MAX_BENCODE_DEPTH;
/// Largest .torrent file read, and largest piece length accepted in one.
pub use crate::metainfo::{MAX_PIECE_LEN, MAX_TORRENT_FILE_LEN};
/// Largest HTTP tracker reply read.
pub use crate::tracker::http::MAX_BODY;
/// Largest UDP tracker datagram read.
pub use crate::tracker::udp_wire::MAX_DATAGRAM;

// What DHT nodes can make us spend (BEP 5).

/// Largest DHT datagram read, longest transaction id and token, most peers taken from one
/// reply.
pub use crate::dht::krpc::{
    MAX_DATAGRAM as MAX_DHT_DATAGRAM, MAX_TID_LEN, MAX_TOKEN_LEN, MAX_VALUES,
};
/// One lookup: nodes kept in mind, queries sent, peers collected, and how long it may run.
pub use crate::dht::lookup::{
    LOOKUP_DEADLINE, MAX_CANDIDATES, MAX_LOOKUP_PEERS, MAX_LOOKUP_QUERIES,
};
/// Lookups at once, DHT queries in flight, and how long one may go unanswered.
pub use crate::dht::node::{MAX_LOOKUPS, MAX_TRANSACTIONS, QUERY_TIMEOUT};
/// Queries answered per second for one source IP, and source IPs counted at once.
pub use crate::dht::ratelimit::{MAX_QUERIES_PER_SECOND, MAX_TRACKED_SOURCES};
/// Nodes in the routing table: [`DHT_K`] per bucket, at most 160 buckets.
pub use crate::dht::routing::K as DHT_K;
/// Info hashes whose announced peers we store, peers per info hash, how long they live, and
/// how many one `get_peers` reply carries.
pub use crate::dht::store::{
    MAX_PEERS_PER_INFO_HASH, MAX_PEERS_PER_REPLY, MAX_STORED_INFO_HASHES, PEER_TTL,
};
/// Datagrams queued between a DHT socket's receiving thread and the DHT thread.
pub use crate::dht::thread::INBOX as DHT_INBOX;
