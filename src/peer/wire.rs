//! STUB (helper fills in): the peer wire codec.
#![allow(unused)]
use std::io::Read;

use crate::geometry::BlockRef;

/// Largest frame accepted from a peer (length prefix value).
pub const MAX_FRAME_LEN: u32 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Vec<u8>),
    Request(BlockRef),
    Piece { piece: u32, offset: u32, data: Vec<u8> },
    Cancel(BlockRef),
    Port(u16),
    Extended { id: u8, payload: Vec<u8> },
    Unknown { id: u8, payload: Vec<u8> },
}

#[derive(Debug)]
pub enum WireError {
    Io(std::io::Error),
    FrameTooLong(u32),
    Malformed { id: u8, len: u32, reason: &'static str },
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        todo!()
    }
}
impl std::error::Error for WireError {}

pub fn encode(msg: &Message, out: &mut Vec<u8>) {
    todo!()
}

pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
    todo!()
}

pub fn read_message(r: &mut impl Read) -> Result<Message, WireError> {
    todo!()
}
