//! STUB (helper fills in): the piece picker.
#![allow(unused)]
use crate::bitfield::Bitfield;
use crate::geometry::{BlockRef, Geometry};
use crate::messages::PeerKey;

/// What `block_received` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// We needed this block. `cancel` lists other peers that were also asked for it
    /// (endgame); `piece_complete` is true when it was the piece's last missing block.
    Wanted { cancel: Vec<PeerKey>, piece_complete: bool },
    /// We already had it, or its piece is done: drop the data.
    NotNeeded,
}

pub struct Picker {}

impl Picker {
    pub fn new(geometry: Geometry, have: &Bitfield, seed: u64) -> Picker {
        todo!()
    }
    pub fn peer_has_piece(&mut self, piece: u32) {
        todo!()
    }
    pub fn peer_has_bitfield(&mut self, has: &Bitfield) {
        todo!()
    }
    pub fn peer_gone(&mut self, peer: PeerKey, had: &Bitfield) {
        todo!()
    }
    pub fn pick(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        max: usize,
        may_start_new: bool,
    ) -> Vec<BlockRef> {
        todo!()
    }
    pub fn block_received(&mut self, peer: PeerKey, block: BlockRef) -> Received {
        todo!()
    }
    pub fn release(&mut self, peer: PeerKey, block: BlockRef) {
        todo!()
    }
    pub fn release_peer(&mut self, peer: PeerKey) -> Vec<BlockRef> {
        todo!()
    }
    pub fn piece_failed(&mut self, piece: u32) {
        todo!()
    }
    pub fn piece_verified(&mut self, piece: u32) {
        todo!()
    }
    pub fn is_interesting(&self, peer_has: &Bitfield) -> bool {
        todo!()
    }
    pub fn partial_pieces(&self) -> usize {
        todo!()
    }
    pub fn is_endgame(&self) -> bool {
        todo!()
    }
}
