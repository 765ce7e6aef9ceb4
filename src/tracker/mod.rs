//! Finding peers: announce requests and replies, and the tracker thread that re-announces.

pub mod http;
