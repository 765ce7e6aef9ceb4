//! Talking to peers: the wire codec, the handshake, the threads that run a connection, and
//! the listener that accepts them.

pub mod connection;
pub mod dial;
pub mod extension;
pub mod handshake;
pub mod listener;
pub mod mse;
pub mod wire;
