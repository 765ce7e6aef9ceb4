//! strand: a BitTorrent v1 client built from plain OS threads.
//!
//! One thread per peer does blocking socket I/O, the main thread ([`session`]) owns all piece
//! state, a hasher verifies pieces and a writer thread puts them on disk. The threads share
//! nothing mutable; they exchange the messages in [`messages`]. The one exception is the data
//! check (`storage::check`), whose scoped hashing threads take piece numbers from a shared
//! atomic counter and watch an atomic stop flag. See ARCHITECTURE.md.

#![warn(missing_docs)]

pub(crate) mod addresses;
pub mod bencode;
pub mod bitfield;
pub(crate) mod blocks;
pub(crate) mod choker;
pub(crate) mod client_id;
pub mod create;
pub mod dht;
pub(crate) mod geometry;
pub(crate) mod hasher;
pub mod limits;
pub mod magnet;
pub(crate) mod messages;
pub mod metadata;
pub mod metainfo;
pub mod net;
pub mod peer;
pub(crate) mod picker;
pub mod rate_limit;
pub mod rng;
pub mod select;
pub mod session;
pub mod storage;
pub mod tracker;
pub mod tracker_server;
pub(crate) mod webseed;
