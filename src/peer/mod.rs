//! Talking to peers: the wire codec, the handshake, the threads that run a connection, and
//! the listener that accepts them.

pub mod connection;
pub mod dial;
pub mod extension;
pub(crate) mod fast;
pub mod handshake;
pub mod listener;
pub mod mse;
pub(crate) mod upload_queue;
pub mod wire;
