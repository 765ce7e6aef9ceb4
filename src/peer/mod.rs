//! Talking to one peer: the wire codec, the handshake, and the thread that runs a connection.

pub mod connection;
pub mod handshake;
pub mod wire;
