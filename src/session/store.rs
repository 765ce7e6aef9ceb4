//! The piece store: the one owner of where each piece is in its life.
//!
//! Pure state, owned by the main thread. Every piece is in exactly one [`PieceState`]; the
//! store holds the blocks of a piece being assembled, who sent each of them, the blame left
//! by failed copies (for the "smart ban"), the piece memory budget and the byte counts the
//! progress line shows. ARCHITECTURE.md, "The states of a piece", draws the transitions;
//! [`PieceStore::check`] tests them.
//!
//! The [`Picker`](crate::picker::Picker) answers the other question, "which block from whom":
//! it tracks requests block by block and never sees data. The session tells both of every
//! change, and `check` in the session's tests keeps them in step.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::bitfield::Bitfield;
use crate::blocks::PieceBlocks;
use crate::geometry::{BlockRef, Geometry, PieceIndex, BLOCK_LEN};
use crate::messages::{HashJob, HashResult};

/// The most bytes of piece data the session holds at once (blocks of pieces being assembled,
/// hashed or written), whatever the torrent's size: the budget of `piece_memory_budget`
/// with many peers sending. Pieces started count whole, so over a link with latency L it
/// lets at most the budget / L arrive per second (160 MB/s at 100 ms for 16 MiB).
pub const PIECE_MEMORY_BUDGET: u64 = 16 * 1024 * 1024;
/// The budget with no peer sending yet.
const BASE_PIECE_MEMORY: u64 = 12 * 1024 * 1024;
/// What each peer sending to us adds to the budget, up to [`PIECE_MEMORY_BUDGET`] (reached at
/// 256 peers).
const PIECE_MEMORY_PER_PEER: u64 = 16 * 1024;

/// The piece memory budget while `sending` peers send to us. A few fast peers need less
/// (on loopback from two seeders, 12 MiB kept the speed of 16 at 4 MiB less peak memory;
/// 8 MiB was a tenth slower); hundreds of slow ones each need pieces of their own to work on
/// (with 300 peers, 8 MiB lost a fifth of the speed of 16). Measured in bench/RESULTS.md.
pub(super) fn piece_memory_budget(sending: usize) -> u64 {
    let extra = PIECE_MEMORY_PER_PEER.saturating_mul(sending as u64);
    BASE_PIECE_MEMORY
        .saturating_add(extra)
        .min(PIECE_MEMORY_BUDGET)
}

/// Where one piece is in its life. See ARCHITECTURE.md, "The states of a piece".
#[derive(Debug)]
pub(super) enum PieceState {
    /// No chosen file needs it and it is not on disk: never fetched.
    NotWanted,
    /// Wanted and not on disk; no block of it is held (some may be requested).
    Wanted,
    /// Blocks are arriving.
    Assembling(PieceBuffer),
    /// Every block is in; the hasher has them. Holds who sent each block.
    Hashing {
        /// Who sent each block, by block index.
        block_from: Vec<Option<SocketAddr>>,
    },
    /// The hash matched; the writer has the blocks.
    Writing,
    /// Verified and on disk: served to peers, never fetched again.
    OnDisk,
    /// Verified once, but only the chosen files' bytes are on disk: a finished selective
    /// download dropped the rest with its parts file. Done for the chosen files, so never
    /// fetched; not whole, so never served nor announced.
    Kept,
}

/// A piece being assembled from blocks.
#[derive(Debug)]
pub(super) struct PieceBuffer {
    blocks: PieceBlocks,
    /// Who sent each block (by block index), to find the culprit if the hash fails.
    block_from: Vec<Option<SocketAddr>>,
}

/// One block of a piece that failed its hash: who sent it and what it hashed to. When the
/// piece later passes, a block whose digest differs from the good copy's was bad.
#[derive(Debug)]
struct Suspect {
    block: usize,
    from: SocketAddr,
    digest: [u8; 20],
}

/// What the hasher's verdict means for the peers that sent the piece.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The piece passed and goes on to the writer. `liars` sent blocks of an earlier copy
    /// that differ from this good one: `(peer, block index)`.
    Good { liars: Vec<(SocketAddr, usize)> },
    /// The piece failed and is wanted again. `senders` sent its blocks (sorted, once each).
    Bad { senders: Vec<SocketAddr> },
    /// The piece was not being hashed: nothing changed.
    Stale,
}

/// Every piece's state, and what goes with it. See the module documentation.
#[derive(Debug)]
pub(super) struct PieceStore {
    geometry: Geometry,
    /// One state per piece, indexed by piece.
    states: Vec<PieceState>,
    /// Pieces that touch a chosen file (fixed for the session).
    wanted: Bitfield,
    /// Per piece, how many of its bytes belong to chosen files (what progress counts).
    chosen_bytes: Vec<u32>,
    /// The pieces in [`PieceState::OnDisk`], as the wire sends them.
    on_disk: Bitfield,
    /// Bytes of the chosen files.
    wanted_bytes: u64,
    /// Bytes of the chosen files in pieces on disk (or kept).
    verified_bytes: u64,
    /// Wanted pieces not on disk yet.
    wanted_missing: u32,
    /// Pieces in [`PieceState::Hashing`] or [`PieceState::Writing`].
    in_pipeline: usize,
    /// Blocks of pieces that failed their hash, kept until the piece passes.
    suspects: HashMap<PieceIndex, Vec<Suspect>>,
    /// Bytes of piece data we may hold now ([`piece_memory_budget`]).
    budget: u64,
}

impl PieceStore {
    /// A store where the pieces in `on_disk` are on disk and those in `wanted` are to fetch,
    /// every byte of them counted (the tests' store).
    #[cfg(test)]
    pub(super) fn new(geometry: Geometry, wanted: Bitfield, on_disk: Bitfield) -> PieceStore {
        let chosen_bytes = (0..geometry.piece_count())
            .map(|p| {
                if wanted.has(p) {
                    geometry.piece_size(p)
                } else {
                    0
                }
            })
            .collect();
        PieceStore::selective(geometry, chosen_bytes, on_disk, &Bitfield::new(0))
    }

    /// A store for chosen files holding `chosen_bytes[p]` bytes of piece `p` (the pieces
    /// with some are wanted): the pieces in `on_disk` are on disk, the wanted ones in `kept`
    /// are [`PieceState::Kept`], the other wanted ones are to fetch.
    pub(super) fn selective(
        geometry: Geometry,
        chosen_bytes: Vec<u32>,
        on_disk: Bitfield,
        kept: &Bitfield,
    ) -> PieceStore {
        let mut states = Vec::with_capacity(geometry.piece_count() as usize);
        let mut wanted = Bitfield::new(geometry.piece_count());
        let (mut wanted_bytes, mut verified_bytes, mut wanted_missing) = (0, 0, 0);
        for piece in 0..geometry.piece_count() {
            let bytes = u64::from(chosen_bytes.get(piece as usize).copied().unwrap_or(0));
            if bytes > 0 {
                wanted.set(piece);
                wanted_bytes += bytes;
            }
            states.push(match (on_disk.has(piece), bytes > 0) {
                (true, true) => {
                    verified_bytes += bytes;
                    PieceState::OnDisk
                }
                (true, false) => PieceState::OnDisk,
                (false, true) if kept.has(piece) => {
                    verified_bytes += bytes;
                    PieceState::Kept
                }
                (false, true) => {
                    wanted_missing += 1;
                    PieceState::Wanted
                }
                (false, false) => PieceState::NotWanted,
            });
        }
        PieceStore {
            geometry,
            states,
            wanted,
            chosen_bytes,
            on_disk,
            wanted_bytes,
            verified_bytes,
            wanted_missing,
            in_pipeline: 0,
            suspects: HashMap::new(),
            budget: piece_memory_budget(0),
        }
    }

    /// The pieces on disk.
    pub(super) fn on_disk(&self) -> &Bitfield {
        &self.on_disk
    }

    /// The pieces that touch a chosen file.
    pub(super) fn wanted(&self) -> &Bitfield {
        &self.wanted
    }

    /// The pieces the picker must never pick: on disk, kept, or not wanted.
    pub(super) fn not_to_fetch(&self) -> Bitfield {
        let mut skip = self.on_disk.clone();
        for (piece, state) in (0..).zip(&self.states) {
            if !self.wanted.has(piece) || matches!(state, PieceState::Kept) {
                skip.set(piece);
            }
        }
        skip
    }

    /// Every wanted piece is on disk: the download is complete (we may still lack pieces
    /// of files not chosen).
    pub(super) fn is_complete(&self) -> bool {
        self.wanted_missing == 0
    }

    /// Bytes of the chosen files.
    pub(super) fn wanted_bytes(&self) -> u64 {
        self.wanted_bytes
    }

    /// Bytes of the chosen files on disk.
    pub(super) fn verified_bytes(&self) -> u64 {
        self.verified_bytes
    }

    /// Sizes the piece memory budget for `sending` peers sending to us; the bytes it holds.
    pub(super) fn set_budget(&mut self, sending: usize) -> u64 {
        self.budget = piece_memory_budget(sending);
        self.budget
    }

    /// How many more pieces may be started inside the piece memory budget, with `started`
    /// pieces started but not complete (the picker's count: requested or assembling) besides
    /// those being hashed or written. Two pieces are always allowed, so that huge pieces
    /// still make progress.
    pub(super) fn pieces_to_start(&self, started: usize) -> usize {
        let fit = self.budget / u64::from(self.geometry.piece_len());
        let fit = usize::try_from(fit).unwrap_or(usize::MAX).max(2);
        fit.saturating_sub(started + self.in_pipeline)
    }

    /// Keeps a wanted block (Wanted → Assembling, or Assembling stays), noting who sent it.
    /// Ignored for a piece in any other state or a block that does not fit the piece.
    pub(super) fn block_arrived(&mut self, block: BlockRef, data: Vec<u8>, from: SocketAddr) {
        let size = self.geometry.piece_size(block.piece);
        let Some(state) = self.states.get_mut(block.piece as usize) else {
            return;
        };
        if matches!(state, PieceState::Wanted) {
            *state = PieceState::Assembling(PieceBuffer {
                blocks: PieceBlocks::new(size),
                block_from: vec![None; size.div_ceil(BLOCK_LEN) as usize],
            });
        }
        let PieceState::Assembling(buffer) = state else {
            return;
        };
        if buffer.blocks.put(block.offset, data) {
            buffer.block_from[(block.offset / BLOCK_LEN) as usize] = Some(from);
        }
    }

    /// Hands a complete piece to the hasher (Assembling → Hashing): the job to send. `None`
    /// for a piece that is not being assembled.
    pub(super) fn take_for_hashing(&mut self, piece: PieceIndex) -> Option<HashJob> {
        let state = self.states.get_mut(piece as usize)?;
        if !matches!(state, PieceState::Assembling(_)) {
            return None;
        }
        let PieceState::Assembling(buffer) = std::mem::replace(state, PieceState::Wanted) else {
            return None;
        };
        *state = PieceState::Hashing {
            block_from: buffer.block_from,
        };
        self.in_pipeline += 1;
        Some(HashJob {
            piece,
            blocks: buffer.blocks,
            block_digests: self.suspects.contains_key(&piece),
        })
    }

    /// The hasher's verdict. Good: Hashing → Writing, and the blocks of earlier bad copies
    /// that differ from this one name their senders. Bad: Hashing → Wanted, and, if several
    /// peers sent the copy, each block's digest is kept with its sender until a good copy
    /// passes.
    pub(super) fn hashed(&mut self, result: HashResult) -> Verdict {
        let Some(state) = self.states.get_mut(result.piece as usize) else {
            return Verdict::Stale;
        };
        let PieceState::Hashing { block_from } = state else {
            return Verdict::Stale;
        };
        let block_from = std::mem::take(block_from);
        if result.ok {
            *state = PieceState::Writing;
            let mut liars = Vec::new();
            if let (Some(bad), Some(good)) =
                (self.suspects.remove(&result.piece), result.block_digests)
            {
                for s in bad {
                    if good.get(s.block) != Some(&s.digest) {
                        liars.push((s.from, s.block));
                    }
                }
            }
            return Verdict::Good { liars };
        }
        *state = PieceState::Wanted;
        self.in_pipeline -= 1;
        let mut senders: Vec<SocketAddr> = block_from.iter().flatten().copied().collect();
        senders.sort();
        senders.dedup();
        // A copy from one peer blames that peer alone (the session gives it a strike); only
        // a copy from several needs its blocks kept, to tell the liar from the honest.
        if senders.len() > 1 {
            let digests = result.block_digests.unwrap_or_default();
            let suspects = self.suspects.entry(result.piece).or_default();
            for (block, (from, digest)) in block_from.iter().zip(digests).enumerate() {
                if let Some(from) = *from {
                    suspects.push(Suspect {
                        block,
                        from,
                        digest,
                    });
                }
            }
        }
        Verdict::Bad { senders }
    }

    /// The writer put `piece` on disk (Writing → OnDisk). Returns false, changing nothing,
    /// for a piece that was not being written.
    pub(super) fn written(&mut self, piece: PieceIndex) -> bool {
        let Some(state) = self.states.get_mut(piece as usize) else {
            return false;
        };
        if !matches!(state, PieceState::Writing) {
            return false;
        }
        *state = PieceState::OnDisk;
        self.in_pipeline -= 1;
        self.on_disk.set(piece);
        if self.wanted.has(piece) {
            self.verified_bytes += u64::from(self.chosen_bytes[piece as usize]);
            self.wanted_missing -= 1;
        }
        true
    }

    /// Panics unless every invariant of the store holds (tests call it after every step).
    #[cfg(test)]
    pub(super) fn check(&self) {
        let g = self.geometry;
        assert_eq!(self.states.len(), g.piece_count() as usize);
        let (mut verified, mut missing, mut pipeline) = (0, 0, 0);
        for (piece, state) in (0..).zip(&self.states) {
            let wanted = self.wanted.has(piece);
            let size = g.piece_size(piece) as usize;
            assert_eq!(
                self.on_disk.has(piece),
                matches!(state, PieceState::OnDisk),
                "piece {piece}: {state:?}"
            );
            // A piece nobody wants is never fetched; a wanted one is never "not wanted".
            assert_eq!(
                matches!(state, PieceState::NotWanted),
                !wanted && !self.on_disk.has(piece),
                "piece {piece}"
            );
            assert_eq!(wanted, self.chosen_bytes[piece as usize] > 0);
            assert!(
                wanted || !matches!(state, PieceState::Kept),
                "piece {piece}"
            );
            match state {
                PieceState::Assembling(b) => {
                    assert_eq!(b.blocks.len(), size);
                    assert_eq!(b.blocks.block_count(), b.block_from.len());
                    assert_eq!(b.block_from.len(), g.block_count(piece) as usize);
                    assert!(b.block_from.iter().any(Option::is_some));
                }
                PieceState::Hashing { block_from } => {
                    assert_eq!(block_from.len(), g.block_count(piece) as usize);
                    pipeline += 1;
                }
                PieceState::Writing => pipeline += 1,
                PieceState::OnDisk | PieceState::Kept if wanted => {
                    verified += u64::from(self.chosen_bytes[piece as usize]);
                }
                _ => {}
            }
            if wanted && !matches!(state, PieceState::OnDisk | PieceState::Kept) {
                missing += 1;
            }
            // Blame is kept only while a good copy is still to come.
            if self.suspects.contains_key(&piece) {
                assert!(matches!(
                    state,
                    PieceState::Wanted | PieceState::Assembling(_) | PieceState::Hashing { .. }
                ));
            }
        }
        assert_eq!(self.verified_bytes, verified);
        assert_eq!(self.wanted_missing, missing);
        assert_eq!(self.in_pipeline, pipeline);
    }

    /// The state of `piece`, for tests.
    #[cfg(test)]
    pub(super) fn state(&self, piece: PieceIndex) -> &PieceState {
        &self.states[piece as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, n], 6881))
    }

    fn bits(len: u32, set: &[u32]) -> Bitfield {
        let mut b = Bitfield::new(len);
        for &i in set {
            b.set(i);
        }
        b
    }

    /// Delivers every block of `piece` from `from`, the bytes all `fill`.
    fn fill_piece(s: &mut PieceStore, piece: PieceIndex, from: SocketAddr, fill: u8) {
        let g = s.geometry;
        for i in 0..g.block_count(piece) {
            let b = g.block(piece, i);
            s.block_arrived(b, vec![fill; b.len as usize], from);
            s.check();
        }
    }

    fn result(job: &HashJob, ok: bool, digests: Option<Vec<[u8; 20]>>) -> HashResult {
        HashResult {
            piece: job.piece,
            ok,
            block_digests: digests,
        }
    }

    #[test]
    fn a_piece_goes_wanted_assembling_hashing_writing_on_disk() {
        let g = Geometry::new(u64::from(5 * BLOCK_LEN / 2), BLOCK_LEN * 2);
        let mut s = PieceStore::new(g, bits(2, &[0, 1]), bits(2, &[]));
        s.check();
        assert_eq!((s.wanted_bytes(), s.verified_bytes()), (g.total_len(), 0));
        assert!(matches!(s.state(1), PieceState::Wanted));
        assert!(s.take_for_hashing(1).is_none());
        s.block_arrived(g.block(1, 0), vec![7; 8192], addr(1));
        assert!(matches!(s.state(1), PieceState::Assembling(_)));
        let job = s.take_for_hashing(1).expect("assembling");
        assert_eq!(job.blocks.to_vec(), vec![7; 8192]);
        assert!(!job.block_digests);
        assert!(matches!(s.state(1), PieceState::Hashing { .. }));
        assert!(!s.written(1));
        assert_eq!(
            s.hashed(result(&job, true, None)),
            Verdict::Good { liars: vec![] }
        );
        assert!(matches!(s.state(1), PieceState::Writing));
        assert_eq!(s.hashed(result(&job, true, None)), Verdict::Stale);
        assert!(s.written(1));
        assert!(matches!(s.state(1), PieceState::OnDisk));
        assert!(s.on_disk().has(1));
        assert_eq!(s.verified_bytes(), 8192);
        assert!(!s.is_complete());
        s.check();
    }

    #[test]
    fn smart_ban_blames_only_the_blocks_that_differ() {
        let g = Geometry::new(u64::from(2 * BLOCK_LEN), 2 * BLOCK_LEN);
        let mut s = PieceStore::new(g, bits(1, &[0]), bits(1, &[]));
        s.block_arrived(g.block(0, 0), vec![1; BLOCK_LEN as usize], addr(1));
        s.block_arrived(g.block(0, 1), vec![2; BLOCK_LEN as usize], addr(2));
        let job = s.take_for_hashing(0).unwrap();
        let (good, bad) = ([1; 20], [9; 20]);
        assert_eq!(
            s.hashed(result(&job, false, Some(vec![good, bad]))),
            Verdict::Bad {
                senders: vec![addr(1), addr(2)]
            }
        );
        assert!(matches!(s.state(0), PieceState::Wanted));
        s.check();
        // The second copy comes from peer 3 alone and asks for block digests.
        fill_piece(&mut s, 0, addr(3), 5);
        let job = s.take_for_hashing(0).unwrap();
        assert!(job.block_digests);
        assert_eq!(
            s.hashed(result(&job, true, Some(vec![good, [3; 20]]))),
            Verdict::Good {
                liars: vec![(addr(2), 1)]
            }
        );
        s.check();
        assert!(s.written(0));
        assert!(s.is_complete());
        s.check();
    }

    #[test]
    fn budget_counts_pieces_in_the_pipeline() {
        // Four pieces fill the budget of no peer sending.
        let piece = (piece_memory_budget(0) / 4) as u32;
        let g = Geometry::new(10 * u64::from(piece), piece);
        let mut s = PieceStore::new(g, Bitfield::full(10), Bitfield::new(10));
        assert_eq!(s.pieces_to_start(0), 4);
        assert_eq!(s.pieces_to_start(3), 1);
        assert_eq!(s.pieces_to_start(4), 0);
        assert_eq!(s.pieces_to_start(9), 0);
        s.block_arrived(g.block(0, 0), vec![0; BLOCK_LEN as usize], addr(1));
        s.take_for_hashing(0).unwrap();
        assert_eq!(s.pieces_to_start(3), 0);
        assert_eq!(s.pieces_to_start(0), 3);
        // The budget grows with the peers sending, up to its cap.
        assert_eq!(s.set_budget(10_000), PIECE_MEMORY_BUDGET);
        let fit = (PIECE_MEMORY_BUDGET / u64::from(piece)) as usize;
        assert!(fit > 4);
        assert_eq!(s.pieces_to_start(0), fit - 1);
        // Two pieces are always allowed, however large.
        let huge = Geometry::new(4 * u64::from(u32::MAX), u32::MAX);
        let s = PieceStore::new(huge, Bitfield::full(4), Bitfield::new(4));
        assert_eq!(s.pieces_to_start(0), 2);
        assert_eq!(s.pieces_to_start(1), 1);
        assert_eq!(s.pieces_to_start(2), 0);
    }

    #[test]
    fn the_budget_grows_with_the_peers_sending_up_to_its_cap() {
        assert_eq!(piece_memory_budget(0), BASE_PIECE_MEMORY);
        assert_eq!(
            piece_memory_budget(3),
            BASE_PIECE_MEMORY + 3 * PIECE_MEMORY_PER_PEER
        );
        let mut last = 0;
        for sending in 0..1000 {
            let budget = piece_memory_budget(sending);
            assert!(budget >= last && budget <= PIECE_MEMORY_BUDGET);
            last = budget;
        }
        assert_eq!(piece_memory_budget(256), PIECE_MEMORY_BUDGET);
        assert_eq!(piece_memory_budget(usize::MAX), PIECE_MEMORY_BUDGET);
    }

    #[test]
    fn unwanted_and_on_disk_pieces_are_not_to_fetch() {
        let g = Geometry::new(u64::from(4 * BLOCK_LEN), BLOCK_LEN);
        let s = PieceStore::new(g, bits(4, &[1, 2]), bits(4, &[2, 3]));
        s.check();
        assert_eq!(s.not_to_fetch(), bits(4, &[0, 2, 3]));
        assert!(matches!(s.state(0), PieceState::NotWanted));
        assert!(matches!(s.state(3), PieceState::OnDisk));
        assert_eq!(s.wanted_bytes(), 2 * u64::from(BLOCK_LEN));
        assert_eq!(s.verified_bytes(), u64::from(BLOCK_LEN));
        assert!(!s.is_complete());
    }

    /// Random blocks, hash verdicts and writes in random order; `check` after every step.
    /// Every wanted piece must end on disk (or stay kept), and nothing else change state.
    #[test]
    fn random_lives_keep_every_invariant() {
        for seed in 0..20 {
            let mut rng = Rng::seeded(seed);
            let g = Geometry::new(u64::from(23 * 3 * BLOCK_LEN + 777), 3 * BLOCK_LEN);
            let n = g.piece_count();
            let (mut wanted, mut on_disk, mut kept) =
                (Bitfield::new(n), Bitfield::new(n), Bitfield::new(n));
            let mut chosen_bytes = vec![0; n as usize];
            for p in 0..n {
                if rng.below(4) != 0 {
                    wanted.set(p);
                    chosen_bytes[p as usize] = 1 + rng.below(u64::from(g.piece_size(p))) as u32;
                }
                if rng.below(5) == 0 {
                    on_disk.set(p);
                } else if rng.below(5) == 0 {
                    kept.set(p);
                }
            }
            let mut s = PieceStore::selective(g, chosen_bytes, on_disk.clone(), &kept);
            s.check();
            // Blocks of each piece received so far (what the picker would know).
            let mut received: Vec<Vec<bool>> = (0..n)
                .map(|p| vec![false; g.block_count(p) as usize])
                .collect();
            let mut hashing: Vec<HashJob> = Vec::new();
            let mut writing: Vec<PieceIndex> = Vec::new();
            let mut steps = 0;
            while !s.is_complete() {
                steps += 1;
                assert!(steps < 100_000, "seed {seed}: stuck");
                match rng.below(6) {
                    0..=2 => {
                        let p = rng.below(u64::from(n)) as PieceIndex;
                        let fetching =
                            matches!(s.state(p), PieceState::Wanted | PieceState::Assembling(_));
                        if !fetching {
                            continue;
                        }
                        let i = rng.index(received[p as usize].len());
                        let b = g.block(p, i as u32);
                        s.block_arrived(b, vec![p as u8; b.len as usize], addr(1 + i as u8));
                        received[p as usize][i] = true;
                        if received[p as usize].iter().all(|&r| r) {
                            hashing
                                .push(s.take_for_hashing(p).expect("complete piece is assembling"));
                            received[p as usize].fill(false);
                        }
                    }
                    3 | 4 if !hashing.is_empty() => {
                        let job = hashing.swap_remove(rng.index(hashing.len()));
                        let ok = rng.below(4) != 0;
                        let blocks = g.block_count(job.piece) as usize;
                        let digests = (!ok || job.block_digests).then(|| vec![[0; 20]; blocks]);
                        match s.hashed(result(&job, ok, digests)) {
                            Verdict::Good { .. } => writing.push(job.piece),
                            Verdict::Bad { senders } => assert!(!senders.is_empty()),
                            Verdict::Stale => panic!("piece {} was hashing", job.piece),
                        }
                    }
                    5 if !writing.is_empty() => {
                        let p = writing.swap_remove(rng.index(writing.len()));
                        assert!(s.written(p));
                    }
                    _ => {}
                }
                s.check();
            }
            assert!(hashing.is_empty() && writing.is_empty());
            for p in 0..n {
                let kept = wanted.has(p) && kept.has(p) && !on_disk.has(p);
                assert_eq!(
                    s.on_disk().has(p),
                    (wanted.has(p) && !kept) || on_disk.has(p)
                );
                assert_eq!(matches!(s.state(p), PieceState::Kept), kept);
            }
        }
    }
}
