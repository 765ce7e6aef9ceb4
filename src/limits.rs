//! Every limit on what a stranger (a peer, a tracker, a .torrent file) can make strand spend,
//! in one place.
//!
//! Each limit is defined beside the code that enforces it; this module only re-exports them,
//! so that one page lists them all. It also holds the one call that asks the system for more,
//! [`raise_open_file_limit`], made once at program start, and `open_file_limit`, which the
//! writer's set-up reads back. `--max-peers` (default 100; each connection has two threads)
//! and `--tracker-timeout` are the ones the user sets; see `strand --help`.

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
/// Handshakes in progress on incoming connections: per source address, in all, the share
/// kept for addresses with none in progress, and the deadline for a whole handshake.
pub use crate::peer::listener::{
    INCOMING_HANDSHAKE_TIMEOUT, KEPT_FOR_NEW_ADDRESSES, MAX_HANDSHAKES, MAX_HANDSHAKES_PER_IP,
};
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
/// Late blocks we remember having withdrawn, per peer.
pub use crate::picker::WITHDRAWN_LIMIT;
/// Requests we keep in flight to one peer (less if its `reqq` says so).
pub use crate::session::MAX_DEPTH;
/// How many times over one connection may fetch our metadata (BEP 9) from us.
pub use crate::session::METADATA_ROUNDS;
/// Piece data held in memory at once, whatever the torrent's size.
pub use crate::session::PIECE_MEMORY_BUDGET;

// What trackers and files can make us read.

/// Deepest nesting of bencoded lists and dicts decoded.
pub use crate::bencode::MAX_DEPTH as MAX_BENCODE_DEPTH;
/// Largest .torrent file read, and largest piece length accepted in one.
pub use crate::metainfo::{MAX_PIECE_LEN, MAX_TORRENT_FILE_LEN};
/// Largest HTTP tracker reply read.
pub use crate::tracker::http::MAX_BODY;
/// Largest UDP tracker datagram read.
pub use crate::tracker::udp_wire::MAX_DATAGRAM;

// What strangers can make `strand tracker` spend.

/// Stack reserved for each HTTP connection thread, and the kernel's queue of connections
/// not yet accepted.
pub use crate::tracker_server::{CONNECTION_STACK, LISTEN_BACKLOG};
/// Open HTTP connections, each with its own thread, from one source address (or IPv6 /64)
/// and in all; at either cap the oldest connection still sending its head is closed.
pub use crate::tracker_server::{MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE};
/// Peers returned per announce, and torrents per scrape.
pub use crate::tracker_server::{MAX_NUMWANT, MAX_SCRAPE};
/// Largest request head read, and the time a client has to send all of it (and to take
/// our reply).
pub use crate::tracker_server::{MAX_REQUEST_HEAD, REQUEST_TIMEOUT};
/// UDP replies per source address per second, the source addresses counted, and the
/// kernel buffer asked for incoming datagrams.
pub use crate::tracker_server::{UDP_RECEIVE_BUFFER, UDP_REPLIES_PER_SOURCE, UDP_SOURCES_COUNTED};

/// This process's soft and hard limits on open files.
fn open_file_rlimit() -> std::io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` to a valid pointer we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(limit)
}

/// This process's soft limit on open files now (1,024, the common default, if it cannot be
/// read).
pub(crate) fn open_file_limit() -> u64 {
    open_file_rlimit().map_or(1024, |limit| limit.rlim_cur)
}

/// Raises this process's soft limit on open files to its hard limit, since many systems
/// still start programs at 1,024, fewer than a busy tracker or seed needs. Returns the new
/// soft limit. Call it once, at program start, before any thread is spawned.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let limit = open_file_rlimit()?;
    // An unlimited hard limit still stops at the kernel's `nr_open`.
    let target = if limit.rlim_max == libc::RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(1 << 20)
    } else {
        limit.rlim_max
    };
    if limit.rlim_cur >= target {
        return Ok(limit.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: `setrlimit` reads one `rlimit` from a valid pointer we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(raised.rlim_cur)
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn the_open_file_limit_rises_to_the_hard_limit() {
        let raised = super::raise_open_file_limit().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as in `raise_open_file_limit`.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert!(limit.rlim_cur == limit.rlim_max || limit.rlim_max == libc::RLIM_INFINITY);
        assert_eq!(raised, limit.rlim_cur);
    }
}
