//! The session's side of a piece's life: a block arrives, the piece goes to the hasher,
//! the verdict lays blame, the writer's report announces it. The state itself lives in the
//! [`PieceStore`](super::store::PieceStore).

use std::time::Instant;

use log::{info, warn};

use super::store::Verdict;
use super::Session;
use crate::addresses::MAX_STRIKES;
use crate::geometry::{BlockRef, PieceIndex};
use crate::messages::{Command, HashResult, PeerKey, TrackerCommand};
use crate::picker::Received;

impl Session {
    pub(super) fn on_block(&mut self, key: PeerKey, block: BlockRef, data: Vec<u8>) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let len = u64::from(block.len);
        self.received_bytes += len;
        self.download.add(len);
        peer.download.add(len);
        peer.last_block = Instant::now();
        let addr = peer.addr;
        if !self.picker.solicited(key, block) {
            info!("{addr}: dropped for sending a block nobody asked for: {block:?}");
            self.send(key, Command::Disconnect);
            return;
        }
        if let Received::Wanted {
            cancel,
            piece_complete,
        } = self.picker.block_received(key, block)
        {
            for other in cancel {
                self.send(other, Command::Cancel(block));
            }
            self.store.block_arrived(block, data, addr);
            if piece_complete {
                self.submit_piece(block.piece);
            }
        }
        self.fill(key);
    }

    /// Sends a complete piece to the hasher.
    pub(super) fn submit_piece(&mut self, piece: PieceIndex) {
        let Some(job) = self.store.take_for_hashing(piece) else {
            return;
        };
        if let Some(jobs) = &self.workers.hash_jobs {
            // The hasher only stops when we drop this sender.
            let _ = jobs.send(job);
        }
    }

    /// The hasher's verdict. A bad piece is fetched again. Blame is laid carefully, so that an
    /// honest peer that shared a piece with a liar is not dropped with it ("smart ban"): a
    /// piece that came from a single peer gives that peer a strike; the blocks of a piece
    /// from several peers are remembered, and when a good copy of the piece passes later,
    /// every peer that had sent a block that differs from it is dropped.
    pub(super) fn on_hashed(&mut self, result: HashResult) {
        let piece = result.piece;
        let senders = match self.store.hashed(result) {
            Verdict::Stale => return,
            Verdict::Good { liars } => {
                self.picker.piece_done(piece);
                for (from, block) in liars {
                    let why = format!("bad data in piece {piece} block {block}");
                    self.strike(from, MAX_STRIKES, &why);
                }
                return;
            }
            Verdict::Bad { senders } => senders,
        };
        self.failed_pieces += 1;
        self.picker.piece_failed(piece);
        warn!(
            "piece {piece} failed its hash check (sent by {})",
            senders
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let [only] = senders[..] {
            self.strike(only, 1, &format!("bad piece {piece}"));
        }
        // The piece is wanted again: peers we lost interest in (because every piece we
        // lacked was already awaiting its hash) may have it, so interest is re-evaluated
        // for everyone, which also sends the new requests.
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.update_interest(key);
        }
    }

    /// The writer put `piece` on disk: announce it, and see whether we are complete.
    pub(super) fn on_written(&mut self, piece: PieceIndex) {
        if !self.store.written(piece) {
            return;
        }
        let connected: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connected)
            .map(|(&k, _)| k)
            .collect();
        for key in connected {
            self.send(key, Command::Have(piece));
            // A piece of a Fast peer's allowed-fast set is now ours to serve it while choked.
            let allowed = self.peers.get(&key).map(|p| &p.allowed_to_them);
            if allowed.is_some_and(|set| set.contains(&piece)) {
                self.send(key, Command::AllowedFast(piece));
            }
            self.update_interest(key);
        }
        if self.store.is_complete() && self.completed_at.is_none() {
            self.completed_at = Some(Instant::now());
            info!(
                "{}: complete, {} bytes in {:.1} s",
                self.meta.name,
                self.store.wanted_bytes(),
                self.started.elapsed().as_secs_f64()
            );
            if let Some((tracker, _)) = &self.workers.tracker {
                let _ = tracker.send(TrackerCommand::Completed);
            }
        }
    }
}
