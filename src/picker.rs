//! The piece picker: decides which blocks to request from which peer.
//!
//! Strategy, in order: finish pieces that are already started (this bounds how many
//! half-downloaded pieces the session must hold in memory); then start new pieces rarest
//! first, breaking ties at random (or, in sequential mode, in index order from the first
//! missing piece, rarest first only while that piece has no source); finally, in endgame
//! (every missing block is already requested from someone), hand out duplicate requests so
//! the last blocks do not wait on one slow peer.
//!
//! The main (session) thread calls it on every peer event. It is pure: no I/O, no clock, no
//! threads. Its only randomness is a tiny seeded PRNG, so a given seed gives the same picks.
//!
//! It owns: the request state of every piece (per-block state for started pieces), how many
//! connected peers have each piece (availability), each peer's set of outstanding requests
//! and the blocks withdrawn from it (so it alone answers whether a peer was asked for a
//! block). It does not own the block data (the session's `PieceStore` does) nor the peers'
//! bitfields: the session passes a peer's bitfield in whenever the picker needs it.

use std::collections::{BTreeSet, HashMap};

use crate::bitfield::Bitfield;
use crate::geometry::{BlockRef, Geometry, PieceIndex, BLOCK_LEN};
use crate::messages::PeerKey;
use crate::rng::Rng;

/// What `block_received` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Received {
    /// We needed this block. `cancel` lists other peers that were also asked for it
    /// (endgame); `piece_complete` is true when it was the piece's last missing block.
    Wanted {
        /// Other peers that still have this block requested: send them a `cancel`.
        cancel: Vec<PeerKey>,
        /// Every block of the piece is now received: hash it.
        piece_complete: bool,
    },
    /// We already had it, or its piece is done: drop the data.
    NotNeeded,
}

/// Download state of one block of a started piece.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    /// Nobody is asked for it: it may be picked.
    Free,
    /// These peers were asked for it (more than one only in endgame).
    Requested(Vec<PeerKey>),
    /// The data arrived.
    Received,
}

/// A piece with at least one block requested or received, not yet all received.
#[derive(Debug)]
struct PartialPiece {
    /// One entry per block of the piece, in offset order.
    blocks: Vec<Block>,
    /// How many entries of `blocks` are `Free`.
    free: u32,
    /// How many entries of `blocks` are `Received`.
    received: u32,
}

/// Download state of one piece.
#[derive(Debug)]
enum Piece {
    /// Not started: every block is free; no per-block state is allocated.
    Missing,
    /// Started: per-block state.
    Partial(PartialPiece),
    /// Every block received; waiting for the hash check.
    Complete,
    /// Never picked again: its hash passed, or it was on disk or not wanted at start.
    Done,
}

/// Which block to ask for, from whom. See the module documentation for the strategy.
#[derive(Debug)]
pub(crate) struct Picker {
    geometry: Geometry,
    /// State of every piece, indexed by piece number.
    pieces: Vec<Piece>,
    /// How many connected peers have each piece.
    availability: Vec<u32>,
    /// Indices of the `Partial` pieces, so continuing them does not scan every piece.
    partial: BTreeSet<u32>,
    /// Blocks each peer has been asked for and not yet delivered or released.
    /// A peer with nothing outstanding has no entry.
    outstanding: HashMap<PeerKey, BTreeSet<BlockRef>>,
    /// Blocks each peer was asked for and then withdrawn from (we canceled them, or it
    /// choked us), with how many times: each may still arrive once per request, and is then
    /// not unsolicited. At most [`WITHDRAWN_LIMIT`] per peer; a peer with none has no entry.
    withdrawn: HashMap<PeerKey, HashMap<BlockRef, u32>>,
    /// Number of free blocks over all `Missing` and `Partial` pieces; zero means endgame.
    free_blocks: u64,
    /// Per piece, the indices of its blocks that lie wholly in padding (BEP 47): received
    /// from the start (their bytes are zeros), never requested.
    padding: HashMap<u32, Vec<u32>>,
    /// Start new pieces in index order (for playing a file while it downloads).
    sequential: bool,
    /// No piece below this index is `Missing` (pieces never become `Missing` again, but
    /// for an instant in `piece_failed`), so the sequential scan starts here.
    first_missing: u32,
    rng: Rng,
}

/// Most withdrawn blocks remembered per peer; past it the peer's list starts afresh, and a
/// late block from the forgotten ones reads as unsolicited.
pub const WITHDRAWN_LIMIT: usize = 1024;

impl Picker {
    /// A picker for a torrent of this geometry that never picks the pieces in `done` (on
    /// disk, or not wanted). `seed` drives the random tie-break between equally rare pieces.
    pub fn new(geometry: Geometry, done: &Bitfield, seed: u64) -> Picker {
        let count = geometry.piece_count();
        let mut pieces = Vec::with_capacity(count as usize);
        let mut free_blocks = 0;
        for piece in 0..count {
            if done.has(piece) {
                pieces.push(Piece::Done);
            } else {
                free_blocks += u64::from(geometry.block_count(piece));
                pieces.push(Piece::Missing);
            }
        }
        Picker {
            geometry,
            pieces,
            availability: vec![0; count as usize],
            partial: BTreeSet::new(),
            outstanding: HashMap::new(),
            withdrawn: HashMap::new(),
            free_blocks,
            padding: HashMap::new(),
            sequential: false,
            first_missing: 0,
            rng: Rng::seeded(seed),
        }
    }

    /// The same picker, starting new pieces in index order from the first missing one when
    /// `on` (`--sequential`). Started pieces are still finished first and endgame still
    /// applies; rarest first is used only while the first missing piece has no source.
    pub(crate) fn with_sequential(mut self, on: bool) -> Picker {
        self.sequential = on;
        self
    }

    /// The same picker, knowing that `blocks` lie wholly in padding: they count as received
    /// whenever their piece starts, so no peer is ever asked for them. Call it before the
    /// first pick; blocks of pieces already started are ignored.
    pub(crate) fn with_padding(mut self, blocks: &[BlockRef]) -> Picker {
        for b in blocks {
            if !self.geometry.is_valid_block(*b) {
                continue;
            }
            let index = b.offset / BLOCK_LEN;
            let list = self.padding.entry(b.piece).or_default();
            if list.contains(&index)
                || list.len() + 1 >= self.geometry.block_count(b.piece) as usize
            {
                // A piece keeps at least one block to request, or it could never complete.
                continue;
            }
            list.push(index);
            if matches!(self.pieces[b.piece as usize], Piece::Missing) {
                self.free_blocks -= 1;
            }
        }
        self
    }

    /// How many blocks of `piece` must come from peers (those not wholly in padding).
    fn blocks_to_fetch(&self, piece: u32) -> u32 {
        let pad = self.padding.get(&piece).map_or(0, Vec::len) as u32;
        self.geometry.block_count(piece) - pad
    }

    /// A peer announced (`have`) one more piece: its availability goes up by one.
    /// Out-of-range indices are ignored.
    pub(crate) fn peer_has_piece(&mut self, piece: PieceIndex) {
        if let Some(a) = self.availability.get_mut(piece as usize) {
            *a = a.saturating_add(1);
        }
    }

    /// A peer sent its bitfield: every piece in it gains one availability.
    #[cfg(test)]
    pub(crate) fn peer_has_bitfield(&mut self, has: &Bitfield) {
        for piece in has.iter() {
            if let Some(a) = self.availability.get_mut(piece as usize) {
                *a = a.saturating_add(1);
            }
        }
    }

    /// A peer disconnected: every piece in `had` (its last known bitfield) loses one
    /// availability, and every block requested from it is released and forgotten.
    pub(crate) fn peer_gone(&mut self, peer: PeerKey, had: &Bitfield) {
        self.withdrawn.remove(&peer);
        for piece in had.iter() {
            if let Some(a) = self.availability.get_mut(piece as usize) {
                *a = a.saturating_sub(1);
            }
        }
        self.release_peer(peer);
    }

    /// Up to `max` blocks to request from `peer`, who has the pieces in `peer_has`; they are
    /// marked as requested by it.
    ///
    /// Order: (1) free blocks of started pieces, those `peer` already works on first;
    /// (2) blocks of at most `new_pieces` new pieces, rarest first, ties broken at random;
    /// (3) in endgame (no free block anywhere), blocks requested from other peers but not
    /// from `peer`, least-requested first. `new_pieces` only limits step 2.
    ///
    /// Continuing started pieces costs O(started pieces); each new piece started costs one
    /// scan over all pieces.
    pub(crate) fn pick(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        max: usize,
        new_pieces: usize,
    ) -> Vec<BlockRef> {
        let mut out = Vec::new();
        self.continue_started(peer, peer_has, max, &mut out);
        for _ in 0..new_pieces {
            if out.len() >= max {
                break;
            }
            let next = if self.sequential {
                self.next_in_order(peer_has)
            } else {
                self.rarest_missing(peer_has)
            };
            let Some(piece) = next else {
                break;
            };
            self.start(piece);
            self.take_free(peer, piece, max, &mut out);
        }
        if out.len() < max && self.is_endgame() {
            self.duplicate(peer, peer_has, max, &mut out);
        }
        out
    }

    /// `peer` delivered `block`. `Wanted` if its piece is started and the block was not yet
    /// received (even if it had been released meanwhile: the data is still good); the block
    /// is then received and nobody's request any more, and counts as withdrawn from the peers
    /// in `cancel`. `NotNeeded` otherwise: duplicate, invalid block, piece not started,
    /// complete or done.
    pub(crate) fn block_received(&mut self, peer: PeerKey, block: BlockRef) -> Received {
        if !self.geometry.is_valid_block(block) {
            return Received::NotNeeded;
        }
        let Piece::Partial(p) = &mut self.pieces[block.piece as usize] else {
            return Received::NotNeeded;
        };
        let slot = &mut p.blocks[(block.offset / BLOCK_LEN) as usize];
        let requesters = match std::mem::replace(slot, Block::Received) {
            Block::Received => return Received::NotNeeded,
            Block::Free => {
                p.free -= 1;
                self.free_blocks -= 1;
                Vec::new()
            }
            Block::Requested(by) => by,
        };
        p.received += 1;
        let piece_complete = p.received as usize == p.blocks.len();
        if piece_complete {
            self.pieces[block.piece as usize] = Piece::Complete;
            self.partial.remove(&block.piece);
        }
        for &r in &requesters {
            self.forget(r, block);
        }
        let cancel: Vec<PeerKey> = requesters.into_iter().filter(|&r| r != peer).collect();
        for &r in &cancel {
            self.withdraw(r, block);
        }
        Received::Wanted {
            cancel,
            piece_complete,
        }
    }

    /// `peer` will not deliver `block` (choke, timeout): it stops being one of the block's
    /// requesters, and the block is free again if nobody else has it requested.
    /// Does nothing if `peer` did not have `block` requested.
    #[cfg(test)]
    pub fn release(&mut self, peer: PeerKey, block: BlockRef) {
        if self.forget(peer, block) {
            self.unrequest(peer, block);
        }
    }

    /// `peer` choked us: every block outstanding with it is released, and remembered as
    /// withdrawn (it may still arrive, or on a Fast connection be rejected), but those of the
    /// pieces in `keep` (the peer allowed them fast: it may still serve them).
    pub(crate) fn peer_choked(&mut self, peer: PeerKey, keep: &[PieceIndex]) {
        let Some(set) = self.outstanding.get(&peer) else {
            return;
        };
        let dropped: Vec<BlockRef> = set
            .iter()
            .filter(|b| !keep.contains(&b.piece))
            .copied()
            .collect();
        for block in dropped {
            self.forget(peer, block);
            self.unrequest(peer, block);
            self.withdraw(peer, block);
        }
    }

    /// `peer` rejected `block` (BEP 6). If it was outstanding with it, it is released: free
    /// again unless another peer has it requested. If it was withdrawn from it, that uses up
    /// the withdrawal, as a late block would. Returns false when it was neither: a reject for
    /// a request we never made.
    pub(crate) fn rejected(&mut self, peer: PeerKey, block: BlockRef) -> bool {
        if self.forget(peer, block) {
            self.unrequest(peer, block);
            return true;
        }
        self.solicited(peer, block)
    }

    /// Whether `peer` may deliver `block`: it is outstanding with it, or was withdrawn from it
    /// (which uses up one count of the withdrawal). A block neither is unsolicited.
    pub(crate) fn solicited(&mut self, peer: PeerKey, block: BlockRef) -> bool {
        if self.is_requested_from(peer, block) {
            return true;
        }
        let Some(withdrawn) = self.withdrawn.get_mut(&peer) else {
            return false;
        };
        let Some(count) = withdrawn.get_mut(&block) else {
            return false;
        };
        *count -= 1;
        if *count == 0 {
            withdrawn.remove(&block);
            if withdrawn.is_empty() {
                self.withdrawn.remove(&peer);
            }
        }
        true
    }

    /// Releases every block outstanding with `peer` (it choked us, or stopped sending) and
    /// returns them, in (piece, offset) order.
    pub(crate) fn release_peer(&mut self, peer: PeerKey) -> Vec<BlockRef> {
        let blocks: Vec<BlockRef> = self
            .outstanding
            .remove(&peer)
            .unwrap_or_default()
            .into_iter()
            .collect();
        for &block in &blocks {
            self.unrequest(peer, block);
        }
        blocks
    }

    /// The hash check of `piece` failed. The piece stays started (it counts in
    /// [`partial_pieces`](Self::partial_pieces)) with every block free, so the next `pick`
    /// from any peer that has it takes it again, even with `new_pieces` 0. Requests
    /// still outstanding for it are forgotten. No effect on missing or done pieces.
    pub(crate) fn piece_failed(&mut self, piece: PieceIndex) {
        if !matches!(
            self.pieces.get(piece as usize),
            Some(Piece::Partial(_) | Piece::Complete)
        ) {
            return;
        }
        self.retire(piece);
        self.pieces[piece as usize] = Piece::Missing;
        self.free_blocks += u64::from(self.blocks_to_fetch(piece));
        self.start(piece);
    }

    /// `piece` passed its hash check (or was obtained otherwise): it is never picked again.
    /// Requests still outstanding for it are forgotten. Out-of-range indices are ignored.
    pub(crate) fn piece_done(&mut self, piece: PieceIndex) {
        if (piece as usize) < self.pieces.len() {
            self.retire(piece);
        }
    }

    /// Whether a peer with the pieces in `peer_has` has something we still need (a piece
    /// that is neither complete nor done).
    pub(crate) fn is_interesting(&self, peer_has: &Bitfield) -> bool {
        (0..)
            .zip(&self.pieces)
            .any(|(i, p)| matches!(p, Piece::Missing | Piece::Partial(_)) && peer_has.has(i))
    }

    /// How many pieces are started but not complete.
    pub(crate) fn partial_pieces(&self) -> usize {
        self.partial.len()
    }

    /// True when no free block remains in any unfinished piece: everything missing is
    /// requested from someone, so `pick` hands out duplicates. Also true once nothing at all
    /// is missing.
    pub(crate) fn is_endgame(&self) -> bool {
        self.free_blocks == 0
    }

    /// Whether `block` is outstanding with `peer` (requested, not delivered or released).
    pub(crate) fn is_requested_from(&self, peer: PeerKey, block: BlockRef) -> bool {
        self.outstanding
            .get(&peer)
            .is_some_and(|set| set.contains(&block))
    }

    /// How many blocks are outstanding with `peer` (requested, not delivered or released).
    pub(crate) fn requested_from(&self, peer: PeerKey) -> usize {
        self.outstanding.get(&peer).map_or(0, BTreeSet::len)
    }

    /// How many connected peers have `piece` (0 for out-of-range indices).
    #[cfg(test)]
    pub(crate) fn availability(&self, piece: PieceIndex) -> u32 {
        self.availability.get(piece as usize).copied().unwrap_or(0)
    }

    /// Whether every block of `piece` is in and its hash not yet known (`Complete`), and
    /// whether it is never picked again (`Done`): for tests that hold the picker and the
    /// session's piece store to the same story.
    #[cfg(test)]
    pub(crate) fn is_complete_or_done(&self, piece: PieceIndex) -> (bool, bool) {
        match self.pieces.get(piece as usize) {
            Some(Piece::Complete) => (true, false),
            Some(Piece::Done) => (false, true),
            _ => (false, false),
        }
    }

    /// Step 1 of `pick`: free blocks of started pieces that `peer` has, the pieces it already
    /// has requests in first.
    fn continue_started(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        max: usize,
        out: &mut Vec<BlockRef>,
    ) {
        let mut own: Vec<u32> = self
            .outstanding
            .get(&peer)
            .into_iter()
            .flatten()
            .map(|b| b.piece)
            .collect();
        own.dedup();
        // A piece may appear twice (own, then in `partial`); the second visit finds no free
        // block or stops at `max`, so it is harmless.
        let order: Vec<u32> = own
            .into_iter()
            .chain(self.partial.iter().copied())
            .filter(|&piece| peer_has.has(piece))
            .collect();
        for piece in order {
            if out.len() >= max {
                break;
            }
            self.take_free(peer, piece, max, out);
        }
    }

    /// Marks free blocks of partial `piece` as requested by `peer`, in offset order, until
    /// the piece has none left or `out` holds `max` blocks.
    fn take_free(&mut self, peer: PeerKey, piece: u32, max: usize, out: &mut Vec<BlockRef>) {
        let Some(Piece::Partial(p)) = self.pieces.get_mut(piece as usize) else {
            return;
        };
        for (i, slot) in p.blocks.iter_mut().enumerate() {
            if out.len() >= max || p.free == 0 {
                break;
            }
            if *slot == Block::Free {
                *slot = Block::Requested(vec![peer]);
                p.free -= 1;
                self.free_blocks -= 1;
                let block = self.geometry.block(piece, i as u32);
                self.outstanding.entry(peer).or_default().insert(block);
                out.push(block);
            }
        }
    }

    /// Sequential mode's next piece for a peer with `peer_has`: the lowest-index missing piece
    /// it has; but while the first missing piece has no source at all (no connected peer has
    /// it, so the front cannot move), the rarest one it has.
    fn next_in_order(&mut self, peer_has: &Bitfield) -> Option<u32> {
        let count = self.pieces.len() as u32;
        while self.first_missing < count
            && !matches!(self.pieces[self.first_missing as usize], Piece::Missing)
        {
            self.first_missing += 1;
        }
        if self.first_missing >= count {
            return None;
        }
        if self.availability[self.first_missing as usize] == 0 {
            return self.rarest_missing(peer_has);
        }
        (self.first_missing..count)
            .find(|&p| matches!(self.pieces[p as usize], Piece::Missing) && peer_has.has(p))
    }

    /// The missing piece in `peer_has` with the lowest availability; among equally rare
    /// pieces, one chosen uniformly at random (reservoir sampling in a single scan).
    fn rarest_missing(&mut self, peer_has: &Bitfield) -> Option<u32> {
        let mut best: Option<(u32, u32)> = None; // (availability, piece)
        let mut ties = 0u64;
        for (i, state) in (0..).zip(&self.pieces) {
            if !matches!(state, Piece::Missing) || !peer_has.has(i) {
                continue;
            }
            let avail = self.availability[i as usize];
            match best {
                Some((b, _)) if avail > b => {}
                Some((b, _)) if avail == b => {
                    ties += 1;
                    if self.rng.below(ties) == 0 {
                        best = Some((avail, i));
                    }
                }
                _ => {
                    best = Some((avail, i));
                    ties = 1;
                }
            }
        }
        best.map(|(_, piece)| piece)
    }

    /// Turns missing `piece` into a partial piece with every block free, but those wholly in
    /// padding, which are received already.
    fn start(&mut self, piece: u32) {
        let n = self.geometry.block_count(piece);
        let mut blocks = vec![Block::Free; n as usize];
        let pad = self.padding.get(&piece).map_or(&[][..], Vec::as_slice);
        for &i in pad {
            blocks[i as usize] = Block::Received;
        }
        let pad = pad.len() as u32;
        self.pieces[piece as usize] = Piece::Partial(PartialPiece {
            blocks,
            free: n - pad,
            received: pad,
        });
        self.partial.insert(piece);
    }

    /// Step 3 of `pick` (endgame): blocks of pieces `peer` has that others were asked for but
    /// `peer` was not, the ones with the fewest requesters first.
    fn duplicate(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        max: usize,
        out: &mut Vec<BlockRef>,
    ) {
        let mut candidates: Vec<(usize, BlockRef)> = Vec::new();
        for &piece in &self.partial {
            let Piece::Partial(p) = &self.pieces[piece as usize] else {
                continue;
            };
            if !peer_has.has(piece) {
                continue;
            }
            for (i, slot) in p.blocks.iter().enumerate() {
                if let Block::Requested(by) = slot {
                    if !by.contains(&peer) {
                        candidates.push((by.len(), self.geometry.block(piece, i as u32)));
                    }
                }
            }
        }
        candidates.sort_by_key(|&(requesters, _)| requesters);
        for (_, block) in candidates.into_iter().take(max.saturating_sub(out.len())) {
            if let Some(Block::Requested(by)) = self.slot_mut(block) {
                by.push(peer);
                self.outstanding.entry(peer).or_default().insert(block);
                out.push(block);
            }
        }
    }

    /// The state of a valid `block` whose piece is partial.
    fn slot_mut(&mut self, block: BlockRef) -> Option<&mut Block> {
        match self.pieces.get_mut(block.piece as usize) {
            Some(Piece::Partial(p)) => p.blocks.get_mut((block.offset / BLOCK_LEN) as usize),
            _ => None,
        }
    }

    /// Remembers that `block` was withdrawn from `peer` once more.
    fn withdraw(&mut self, peer: PeerKey, block: BlockRef) {
        let withdrawn = self.withdrawn.entry(peer).or_default();
        if withdrawn.len() >= WITHDRAWN_LIMIT {
            withdrawn.clear();
        }
        *withdrawn.entry(block).or_default() += 1;
    }

    /// Removes `block` from `peer`'s outstanding set; returns whether it was there.
    fn forget(&mut self, peer: PeerKey, block: BlockRef) -> bool {
        let Some(set) = self.outstanding.get_mut(&peer) else {
            return false;
        };
        let was_there = set.remove(&block);
        if set.is_empty() {
            self.outstanding.remove(&peer);
        }
        was_there
    }

    /// Drops `peer` from the requesters of `block` (its outstanding set is handled by the
    /// caller); the block is free again when nobody is left.
    fn unrequest(&mut self, peer: PeerKey, block: BlockRef) {
        let Some(Piece::Partial(p)) = self.pieces.get_mut(block.piece as usize) else {
            return;
        };
        let Some(slot) = p.blocks.get_mut((block.offset / BLOCK_LEN) as usize) else {
            return;
        };
        if let Block::Requested(by) = slot {
            by.retain(|&r| r != peer);
            if by.is_empty() {
                *slot = Block::Free;
                p.free += 1;
                self.free_blocks += 1;
            }
        }
    }

    /// Marks `piece` done, first undoing its bookkeeping: its free blocks leave the
    /// count, its outstanding requests are forgotten, it leaves the partial set.
    fn retire(&mut self, piece: u32) {
        let old = std::mem::replace(&mut self.pieces[piece as usize], Piece::Done);
        match old {
            Piece::Missing => self.free_blocks -= u64::from(self.blocks_to_fetch(piece)),
            Piece::Partial(p) => {
                self.free_blocks -= u64::from(p.free);
                self.partial.remove(&piece);
                for (i, slot) in p.blocks.iter().enumerate() {
                    if let Block::Requested(by) = slot {
                        let block = self.geometry.block(piece, i as u32);
                        for &r in by {
                            self.forget(r, block);
                        }
                    }
                }
            }
            Piece::Complete | Piece::Done => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u32 = 4 * BLOCK_LEN;

    /// A torrent of `pieces` pieces of four full blocks each.
    fn geometry(pieces: u32) -> Geometry {
        Geometry::new(u64::from(pieces) * u64::from(PIECE), PIECE)
    }

    /// A picker for `geometry(pieces)` with nothing had yet, and the bitfield of a peer that has
    /// every piece.
    fn fresh(pieces: u32, seed: u64) -> (Geometry, Picker, Bitfield) {
        let g = geometry(pieces);
        let p = Picker::new(g, &Bitfield::new(pieces), seed);
        (g, p, Bitfield::full(pieces))
    }

    /// What `block_received` says of a needed block.
    fn wanted(cancel: &[PeerKey], piece_complete: bool) -> Received {
        Received::Wanted {
            cancel: cancel.to_vec(),
            piece_complete,
        }
    }

    fn bits(len: u32, set: &[u32]) -> Bitfield {
        let mut b = Bitfield::new(len);
        for &i in set {
            b.set(i);
        }
        b
    }

    fn pieces_of(blocks: &[BlockRef]) -> Vec<u32> {
        let mut p: Vec<u32> = blocks.iter().map(|b| b.piece).collect();
        p.dedup();
        p
    }

    /// Checks every internal invariant: counters match states, the partial set matches the
    /// partial pieces, and outstanding sets match the requesters recorded in blocks.
    fn check(p: &Picker) {
        let mut free = 0u64;
        let mut requested = 0usize;
        for (i, state) in p.pieces.iter().enumerate() {
            let piece = i as u32;
            assert_eq!(
                p.partial.contains(&piece),
                matches!(state, Piece::Partial(_))
            );
            match state {
                Piece::Missing => free += u64::from(p.blocks_to_fetch(piece)),
                Piece::Partial(pp) => {
                    let f = pp.blocks.iter().filter(|s| **s == Block::Free).count();
                    let r = pp.blocks.iter().filter(|s| **s == Block::Received).count();
                    assert_eq!(pp.free as usize, f);
                    assert_eq!(pp.received as usize, r);
                    assert!(r < pp.blocks.len());
                    free += f as u64;
                    for (j, s) in pp.blocks.iter().enumerate() {
                        if let Block::Requested(by) = s {
                            assert!(!by.is_empty());
                            let block = p.geometry.block(piece, j as u32);
                            for r in by {
                                assert!(p.outstanding[r].contains(&block));
                            }
                            requested += by.len();
                        }
                    }
                }
                Piece::Complete | Piece::Done => {}
            }
        }
        assert_eq!(p.free_blocks, free);
        let total: usize = p.outstanding.values().map(BTreeSet::len).sum();
        assert_eq!(total, requested);
        assert!(p.outstanding.values().all(|s| !s.is_empty()));
        for w in p.withdrawn.values() {
            assert!(!w.is_empty() && w.len() <= WITHDRAWN_LIMIT);
            assert!(w.values().all(|&n| n > 0));
        }
    }

    #[test]
    fn withdrawn_blocks_may_arrive_once_per_withdrawal() {
        let (_, mut p, all) = fresh(2, 13);
        p.peer_has_bitfield(&all);
        let asked = p.pick(1, &all, 8, usize::MAX);
        assert_eq!(asked.len(), 8);
        assert!(p.solicited(1, asked[0]));
        assert!(!p.solicited(2, asked[0]));
        p.peer_choked(1, &[]);
        assert_eq!(p.requested_from(1), 0);
        check(&p);
        // Each withdrawn block may come once.
        assert!(p.solicited(1, asked[0]));
        assert!(!p.solicited(1, asked[0]));
        // Asked again (endgame) and canceled again: it may come twice more.
        let again = p.pick(1, &all, 8, usize::MAX);
        assert_eq!(again.len(), 8);
        assert!(matches!(
            p.block_received(2, asked[1]),
            Received::Wanted { .. }
        ));
        assert!(p.solicited(1, asked[1]));
        assert!(p.solicited(1, asked[1]));
        assert!(!p.solicited(1, asked[1]));
        check(&p);
        // A peer that goes away is forgotten.
        p.peer_gone(1, &all);
        assert!(!p.solicited(1, asked[2]));
        check(&p);
    }

    #[test]
    fn withdrawn_blocks_are_capped_per_peer() {
        let n = (WITHDRAWN_LIMIT as u32).div_ceil(4) + 1;
        let (_, mut p, all) = fresh(n, 14);
        let mut asked = p.pick(1, &all, WITHDRAWN_LIMIT + 1, usize::MAX);
        assert_eq!(asked.len(), WITHDRAWN_LIMIT + 1);
        asked.sort();
        p.peer_choked(1, &[]);
        check(&p);
        // The list started afresh at the limit: only the last block (in the order they were
        // withdrawn, piece then offset) is remembered.
        assert!(!p.solicited(1, asked[0]));
        assert!(p.solicited(1, asked[WITHDRAWN_LIMIT]));
    }

    #[test]
    fn a_rejected_block_is_free_again_and_an_unasked_reject_is_refused() {
        let (_, mut p, all) = fresh(2, 15);
        p.peer_has_bitfield(&all);
        p.peer_has_bitfield(&all);
        let asked = p.pick(1, &all, 4, usize::MAX);
        assert_eq!(asked.len(), 4);
        assert!(p.rejected(1, asked[0]));
        assert!(!p.is_requested_from(1, asked[0]));
        check(&p);
        // Not endgame: the rejected block is free, and the next peer gets it first.
        let other = p.pick(2, &all, 1, usize::MAX);
        assert_eq!(other, vec![asked[0]]);
        // The same reject again, and one for a block peer 1 was never asked for.
        assert!(!p.rejected(1, asked[0]));
        let never = BlockRef {
            piece: 1,
            offset: 0,
            len: BLOCK_LEN,
        };
        assert!(!p.rejected(1, never));
        // A block withdrawn by a choke may be rejected once, as it may arrive once.
        p.peer_choked(1, &[]);
        assert!(p.rejected(1, asked[1]));
        assert!(!p.rejected(1, asked[1]));
        check(&p);
    }

    #[test]
    fn a_choke_keeps_the_requests_of_allowed_fast_pieces() {
        let (_, mut p, all) = fresh(3, 16);
        p.peer_has_bitfield(&all);
        let asked = p.pick(1, &all, 12, usize::MAX);
        assert_eq!(asked.len(), 12);
        let kept = asked[0].piece;
        p.peer_choked(1, &[kept]);
        check(&p);
        assert_eq!(p.requested_from(1), 4);
        for b in &asked {
            assert_eq!(p.is_requested_from(1, *b), b.piece == kept, "{b:?}");
        }
        // The others were withdrawn: each may still come once.
        let dropped = asked.iter().find(|b| b.piece != kept).unwrap();
        assert!(p.solicited(1, *dropped));
        assert!(!p.solicited(1, *dropped));
    }

    #[test]
    fn blocks_wholly_in_padding_are_never_requested() {
        let g = geometry(3);
        let pad = [
            g.block(0, 2),
            g.block(0, 3),
            g.block(0, 3), // twice: counted once
            g.block(1, 0),
            g.block(1, 1),
            g.block(1, 2),
            g.block(1, 3), // would leave piece 1 nothing to fetch: ignored
        ];
        let mut p = Picker::new(g, &Bitfield::new(3), 11).with_padding(&pad);
        check(&p);
        assert_eq!(p.free_blocks, 2 + 1 + 4);
        let all = bits(3, &[0, 1, 2]);
        let got = p.pick(1, &all, 100, usize::MAX);
        check(&p);
        assert_eq!(got.len(), 7, "{got:?}");
        assert!(got.iter().all(|b| !pad[..6].contains(b)), "{got:?}");
        assert!(p.is_endgame());
        // Piece 0 completes with its two data blocks.
        assert!(matches!(
            p.block_received(1, g.block(0, 0)),
            Received::Wanted {
                piece_complete: false,
                ..
            }
        ));
        assert!(matches!(
            p.block_received(1, g.block(0, 1)),
            Received::Wanted {
                piece_complete: true,
                ..
            }
        ));
        // A failed piece starts again with its padding already received.
        p.piece_failed(0);
        check(&p);
        let again = p.pick(2, &all, 100, usize::MAX);
        assert_eq!(again[..2], [g.block(0, 0), g.block(0, 1)]);
        assert!(again.iter().all(|b| !pad[..6].contains(b)), "{again:?}");
        check(&p);
    }

    #[test]
    fn sequential_goes_in_order_and_falls_back_to_rarest_when_the_front_has_no_source() {
        let g = geometry(8);
        let mut p = Picker::new(g, &bits(8, &[1]), 12).with_sequential(true);
        let all = bits(8, &[0, 1, 2, 3, 4, 5, 6, 7]);
        p.peer_has_bitfield(&all);
        // Two pieces' worth: pieces 0 and 2 (1 is had), in order.
        let got = p.pick(1, &all, 8, usize::MAX);
        assert_eq!(pieces_of(&got), [0, 2]);
        check(&p);
        // A peer without piece 3 gets piece 4: the lowest missing piece it has.
        let no3 = bits(8, &[4, 5, 6, 7]);
        p.peer_has_bitfield(&no3);
        assert_eq!(pieces_of(&p.pick(2, &no3, 4, usize::MAX)), [4]);
        // When nobody has the first missing piece (3), new pieces go rarest first: 7 is had
        // by one peer fewer than 5 and 6.
        let mut q = Picker::new(g, &bits(8, &[0, 1, 2]), 13).with_sequential(true);
        q.peer_has_bitfield(&bits(8, &[4, 5, 6]));
        q.peer_has_bitfield(&bits(8, &[4, 5, 6, 7]));
        let some = bits(8, &[4, 5, 6, 7]);
        assert_eq!(pieces_of(&q.pick(3, &some, 4, usize::MAX)), [7]);
        check(&q);
    }

    #[test]
    fn rarest_piece_first() {
        let g = geometry(4);
        let mut p = Picker::new(g, &Bitfield::new(4), 1);
        let a = bits(4, &[0, 1, 2, 3]);
        p.peer_has_bitfield(&a);
        p.peer_has_bitfield(&bits(4, &[0, 1, 2]));
        p.peer_has_bitfield(&bits(4, &[0, 1]));
        assert_eq!(
            (0..4).map(|i| p.availability(i)).collect::<Vec<_>>(),
            vec![3, 3, 2, 1]
        );
        let first = p.pick(1, &a, 4, usize::MAX);
        assert_eq!(first, (0..4).map(|b| g.block(3, b)).collect::<Vec<_>>());
        let second = p.pick(1, &a, 4, usize::MAX);
        assert_eq!(pieces_of(&second), vec![2]);
        assert_eq!(second.len(), 4);
        p.peer_has_piece(99);
        assert_eq!(p.availability(99), 0);
        check(&p);
    }

    #[test]
    fn tie_break_is_random_but_deterministic() {
        let n = 64;
        let first_piece = |seed: u64| {
            let mut p = Picker::new(geometry(n), &Bitfield::new(n), seed);
            let all = Bitfield::full(n);
            p.peer_has_bitfield(&all);
            p.pick(7, &all, 1, usize::MAX)[0].piece
        };
        let picks: Vec<u32> = (0..20).map(first_piece).collect();
        assert_eq!(picks, (0..20).map(first_piece).collect::<Vec<_>>());
        let distinct: BTreeSet<u32> = picks.iter().copied().collect();
        assert!(distinct.len() > 5, "{picks:?}");
    }

    #[test]
    fn started_pieces_come_first_own_before_others() {
        let (g, mut p, all) = fresh(2, 3);
        let only0 = bits(2, &[0]);
        p.peer_has_bitfield(&all);
        p.peer_has_bitfield(&all);
        p.peer_has_bitfield(&only0);
        // Piece 1 is rarer, so peer 1 starts it; peer 2 can only start piece 0.
        assert_eq!(p.pick(1, &all, 1, usize::MAX), vec![g.block(1, 0)]);
        assert_eq!(p.pick(2, &only0, 1, usize::MAX), vec![g.block(0, 0)]);
        assert_eq!(p.partial_pieces(), 2);
        // Peer 3 works on nothing: it continues the lowest started piece.
        assert_eq!(p.pick(3, &all, 1, usize::MAX), vec![g.block(0, 1)]);
        // Peer 1 continues its own piece 1 before piece 0.
        assert_eq!(p.pick(1, &all, 1, usize::MAX), vec![g.block(1, 1)]);
        // With room for more, peer 3 finishes both started pieces before starting anything.
        let more = p.pick(3, &all, 4, usize::MAX);
        assert_eq!(
            more,
            vec![g.block(0, 2), g.block(0, 3), g.block(1, 2), g.block(1, 3)]
        );
        assert_eq!(p.partial_pieces(), 2);
        check(&p);
    }

    #[test]
    fn no_new_pieces_when_not_allowed() {
        let (_, mut p, all) = fresh(3, 4);
        p.peer_has_bitfield(&all);
        assert!(p.pick(1, &all, 10, 0).is_empty());
        let first = p.pick(1, &all, 1, usize::MAX);
        let piece = first[0].piece;
        let rest = p.pick(2, &all, 10, 0);
        assert_eq!(rest.len(), 3);
        assert_eq!(pieces_of(&rest), vec![piece]);
        assert_eq!(p.partial_pieces(), 1);
        assert!(!p.is_endgame());
        assert!(p.pick(2, &all, 10, 0).is_empty());
        check(&p);
    }

    #[test]
    fn endgame_duplicates_and_cancels() {
        let g = Geometry::new(u64::from(2 * BLOCK_LEN), 2 * BLOCK_LEN);
        let mut p = Picker::new(g, &Bitfield::new(1), 5);
        let all = Bitfield::full(1);
        p.peer_has_bitfield(&all);
        p.peer_has_bitfield(&all);
        let (b0, b1) = (g.block(0, 0), g.block(0, 1));
        assert!(!p.is_endgame());
        assert_eq!(p.pick(1, &all, 10, usize::MAX), vec![b0, b1]);
        assert!(p.is_endgame());
        // Peer 2 gets duplicates, even though it may not start new pieces.
        assert_eq!(p.pick(2, &all, 10, 0), vec![b0, b1]);
        assert!(p.pick(1, &all, 10, usize::MAX).is_empty());
        assert!(p.pick(2, &all, 10, usize::MAX).is_empty());
        assert_eq!(p.block_received(2, b0), wanted(&[1], false));
        assert_eq!(p.requested_from(1), 1);
        assert_eq!(p.requested_from(2), 1);
        assert_eq!(p.block_received(1, b0), Received::NotNeeded);
        assert_eq!(p.block_received(1, b1), wanted(&[2], true));
        assert_eq!((p.requested_from(1), p.requested_from(2)), (0, 0));
        assert_eq!(p.partial_pieces(), 0);
        assert!(!p.is_interesting(&all));
        assert_eq!(p.block_received(2, b1), Received::NotNeeded);
        check(&p);
    }

    #[test]
    fn no_duplicates_while_free_blocks_remain_elsewhere() {
        let g = geometry(2);
        let mut p = Picker::new(g, &Bitfield::new(2), 6);
        let only0 = bits(2, &[0]);
        p.peer_has_bitfield(&only0);
        assert_eq!(p.pick(1, &only0, 10, usize::MAX).len(), 4);
        assert!(!p.is_endgame());
        assert!(p.pick(2, &only0, 10, usize::MAX).is_empty());
        check(&p);
    }

    #[test]
    fn release_and_choke_put_blocks_back() {
        // Two pieces, so the untouched one keeps free blocks and endgame never starts.
        let (_, mut p, all) = fresh(2, 7);
        p.peer_has_bitfield(&all);
        let blocks = p.pick(1, &all, 4, usize::MAX);
        assert_eq!(blocks.len(), 4);
        p.release(1, blocks[2]);
        p.release(2, blocks[0]); // not peer 2's request: ignored
        assert_eq!(p.requested_from(1), 3);
        assert!(!p.is_endgame());
        assert_eq!(p.pick(2, &all, 4, 0), vec![blocks[2]]);
        let choked = p.release_peer(1);
        assert_eq!(choked, vec![blocks[0], blocks[1], blocks[3]]);
        assert_eq!(p.requested_from(1), 0);
        assert!(p.release_peer(1).is_empty());
        assert_eq!(p.pick(3, &all, 4, 0), choked);
        // A released block that still arrives is accepted; its current requester is cancelled.
        assert_eq!(p.block_received(1, blocks[0]), wanted(&[3], false));
        check(&p);
    }

    #[test]
    fn released_free_block_arriving_late_is_accepted() {
        let (g, mut p, all) = fresh(2, 8);
        let blocks = p.pick(1, &all, 2, usize::MAX);
        let piece = blocks[0].piece;
        p.release(1, blocks[1]);
        assert_eq!(p.block_received(1, blocks[1]), wanted(&[], false));
        assert_eq!(
            p.pick(2, &all, 4, 0),
            vec![g.block(piece, 2), g.block(piece, 3)]
        );
        check(&p);
    }

    #[test]
    fn peer_gone_lowers_availability_and_frees_blocks() {
        let (g, mut p, all) = fresh(2, 9);
        let only1 = bits(2, &[1]);
        p.peer_has_bitfield(&all);
        p.peer_has_bitfield(&only1);
        assert_eq!((p.availability(0), p.availability(1)), (1, 2));
        let taken = p.pick(1, &all, 3, usize::MAX);
        assert_eq!(pieces_of(&taken), vec![0]);
        p.peer_gone(1, &all);
        assert_eq!((p.availability(0), p.availability(1)), (0, 1));
        assert_eq!(p.requested_from(1), 0);
        assert_eq!(
            p.pick(2, &all, 4, 0),
            (0..4).map(|b| g.block(0, b)).collect::<Vec<_>>()
        );
        check(&p);
    }

    #[test]
    fn failed_piece_is_picked_again() {
        let (_, mut p, all) = fresh(2, 10);
        p.peer_has_bitfield(&all);
        let blocks = p.pick(1, &all, 4, usize::MAX);
        let piece = blocks[0].piece;
        let mut last = Received::NotNeeded;
        for &b in &blocks {
            last = p.block_received(1, b);
        }
        assert_eq!(last, wanted(&[], true));
        assert_eq!(p.partial_pieces(), 0);
        assert_eq!(p.block_received(1, blocks[0]), Received::NotNeeded);
        p.piece_failed(piece);
        assert_eq!(p.partial_pieces(), 1);
        assert_eq!(p.pick(2, &all, 10, 0), blocks);
        assert!(matches!(
            p.block_received(2, blocks[0]),
            Received::Wanted { .. }
        ));
        // Failing a piece that is being downloaded forgets its requests.
        p.piece_failed(piece);
        assert_eq!(p.requested_from(2), 0);
        p.piece_failed(1 - piece); // missing: no effect
        assert_eq!(p.partial_pieces(), 1);
        check(&p);
    }

    #[test]
    fn done_pieces_are_never_picked() {
        let g = geometry(3);
        let mut p = Picker::new(g, &bits(3, &[0]), 11);
        let all = Bitfield::full(3);
        p.peer_has_bitfield(&all);
        assert!(!p.is_interesting(&bits(3, &[0])));
        assert!(p.is_interesting(&bits(3, &[0, 2])));
        let blocks = p.pick(1, &all, 5, usize::MAX);
        assert!(blocks.iter().all(|b| b.piece != 0));
        let started = blocks[0].piece;
        p.piece_done(started);
        p.piece_done(77);
        assert_eq!(p.requested_from(1), 1);
        assert_eq!(p.block_received(1, blocks[0]), Received::NotNeeded);
        let rest = p.pick(1, &all, 100, usize::MAX);
        assert!(rest.iter().all(|b| b.piece != 0 && b.piece != started));
        assert_eq!(rest.len(), 3);
        assert!(p.is_endgame());
        assert_eq!(p.pick(2, &all, 100, usize::MAX).len(), 4);
        check(&p);
    }

    #[test]
    fn short_last_piece_and_block_sizes_come_from_geometry() {
        let g = Geometry::new(u64::from(PIECE + 2 * BLOCK_LEN + 100), PIECE);
        let mut p = Picker::new(g, &bits(2, &[0]), 12);
        let all = Bitfield::full(2);
        let blocks = p.pick(1, &all, 10, usize::MAX);
        let expect = |offset, len| BlockRef {
            piece: 1,
            offset,
            len,
        };
        assert_eq!(
            blocks,
            vec![
                expect(0, BLOCK_LEN),
                expect(BLOCK_LEN, BLOCK_LEN),
                expect(2 * BLOCK_LEN, 100)
            ]
        );
        assert_eq!(
            p.block_received(1, expect(2 * BLOCK_LEN, BLOCK_LEN)),
            Received::NotNeeded
        );
        assert_eq!(p.block_received(1, expect(5, 100)), Received::NotNeeded);
        check(&p);
    }

    /// Several fake peers with random bitfields; random picks, deliveries, drops, chokes and
    /// disconnects. Every piece must end verified, with no request left dangling.
    #[test]
    fn random_swarm_downloads_everything() {
        let mut duplicates_cancelled = 0;
        for seed in 0..8u64 {
            let g = Geometry::new(u64::from(37 * 3 * BLOCK_LEN + 5000), 3 * BLOCK_LEN);
            let n = g.piece_count();
            let mut rng = Rng::seeded(seed ^ 0x5eed);
            let mut p = Picker::new(g, &Bitfield::new(n), seed);
            let mut peers: Vec<(PeerKey, Bitfield)> = Vec::new();
            for idx in 0..5 {
                let mut has = Bitfield::new(n);
                for i in 0..n {
                    if i % 5 == idx || rng.below(3) == 0 {
                        has.set(i);
                    }
                }
                p.peer_has_bitfield(&has);
                peers.push((PeerKey::from(idx), has));
            }
            let mut next_key = 5;
            let mut pending: Vec<(PeerKey, BlockRef)> = Vec::new();
            let mut verified = Bitfield::new(n);
            let mut failures = 0;
            let mut steps = 0;
            while !verified.is_full() {
                steps += 1;
                assert!(steps < 100_000, "seed {seed}: no progress");
                let who = rng.below(peers.len() as u64) as usize;
                let key = peers[who].0;
                match rng.below(10) {
                    0..=3 => {
                        let max = 1 + rng.below(8) as usize;
                        let has = &peers[who].1;
                        let (new_pieces, started) = (rng.index(3), p.partial_pieces());
                        let got = p.pick(key, has, max, new_pieces);
                        assert!(got.len() <= max);
                        assert!(p.partial_pieces() <= started + new_pieces);
                        for b in got {
                            assert!(has.has(b.piece) && !verified.has(b.piece));
                            assert!(!pending.contains(&(key, b)));
                            pending.push((key, b));
                        }
                    }
                    4..=7 if !pending.is_empty() => {
                        let (from, b) =
                            pending.swap_remove(rng.below(pending.len() as u64) as usize);
                        let Received::Wanted {
                            cancel,
                            piece_complete,
                        } = p.block_received(from, b)
                        else {
                            panic!("requested block {b:?} not wanted");
                        };
                        assert!(!cancel.contains(&from));
                        duplicates_cancelled += cancel.len();
                        pending.retain(|&(k, pb)| !(pb == b && cancel.contains(&k)));
                        assert!(pending.iter().all(|&(_, pb)| pb != b));
                        if piece_complete {
                            if failures < 3 {
                                failures += 1;
                                p.piece_failed(b.piece);
                            } else {
                                p.piece_done(b.piece);
                                verified.set(b.piece);
                            }
                        }
                    }
                    8 if !pending.is_empty() => {
                        let (from, b) =
                            pending.swap_remove(rng.below(pending.len() as u64) as usize);
                        p.release(from, b);
                    }
                    9 => {
                        let mut theirs: Vec<BlockRef> = pending
                            .iter()
                            .filter(|&&(k, _)| k == key)
                            .map(|&(_, b)| b)
                            .collect();
                        theirs.sort();
                        pending.retain(|&(k, _)| k != key);
                        if rng.below(2) == 0 {
                            assert_eq!(p.release_peer(key), theirs);
                        } else {
                            let has = peers[who].1.clone();
                            p.peer_gone(key, &has);
                            assert_eq!(p.requested_from(key), 0);
                            p.peer_has_bitfield(&has);
                            peers[who].0 = next_key;
                            next_key += 1;
                        }
                    }
                    _ => {}
                }
                check(&p);
                for &(k, _) in &peers {
                    let mine = pending.iter().filter(|&&(pk, _)| pk == k).count();
                    assert_eq!(p.requested_from(k), mine);
                }
            }
            assert!(pending.is_empty());
            assert_eq!(p.partial_pieces(), 0);
            assert!(p.is_endgame());
            assert!(!p.is_interesting(&Bitfield::full(n)));
            assert!(p.pick(0, &Bitfield::full(n), 10, usize::MAX).is_empty());
            assert_eq!(failures, 3);
        }
        // The endgame path (duplicate requests, then cancels) was exercised.
        assert!(duplicates_cancelled > 0);
    }
}
