//! STUB (helper fills in): the 68-byte handshake.
#![allow(unused)]
use std::io::{Read, Write};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
}

#[derive(Debug)]
pub enum HandshakeError {
    Io(std::io::Error),
    BadProtocol,
    WrongInfoHash,
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        todo!()
    }
}
impl std::error::Error for HandshakeError {}

impl Handshake {
    pub fn new(info_hash: [u8; 20], peer_id: [u8; 20]) -> Handshake {
        todo!()
    }
    pub fn to_bytes(&self) -> [u8; 68] {
        todo!()
    }
}

pub fn read_handshake(r: &mut impl Read) -> Result<Handshake, HandshakeError> {
    todo!()
}
