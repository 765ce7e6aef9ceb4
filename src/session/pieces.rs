//! Pieces: assembling blocks, the hash verdict and its blame, the write.

use std::net::SocketAddr;
use std::time::Instant;

use log::{info, warn};

use super::peers::{take_one, WITHDRAWN_LIMIT};
use super::Session;
use crate::addresses::MAX_STRIKES;
use crate::bitfield::Bitfield;
use crate::geometry::{BlockRef, BLOCK_LEN};
use crate::messages::{Command, HashJob, HashResult, PeerKey, TrackerCommand};
use crate::metainfo::Metainfo;
use crate::picker::Received;

/// Bytes of piece data the session may hold at once (pieces being assembled, hashed or
/// written). This is what keeps memory flat whatever the torrent's size.
pub const PIECE_MEMORY_BUDGET: u64 = 32 * 1024 * 1024;
/// Bytes of written piece buffers kept for reuse.
pub(super) const SPARE_BYTES: usize = 8 * 1024 * 1024;

/// The pieces that hold at least one byte of a chosen file.
pub(super) fn wanted_pieces(meta: &Metainfo, chosen: &[bool]) -> Bitfield {
    let g = meta.geometry;
    let mut wanted = Bitfield::new(g.piece_count() as usize);
    let piece_len = u64::from(g.piece_len());
    let mut start = 0u64;
    for (f, &c) in meta.files.iter().zip(chosen) {
        if c && f.length > 0 {
            let first = start / piece_len;
            let last = (start + f.length - 1) / piece_len;
            for p in first..=last {
                wanted.set(p as usize);
            }
        }
        start += f.length;
    }
    wanted
}

/// A piece being assembled from blocks.
pub(super) struct PieceBuffer {
    pub(super) data: Vec<u8>,
    /// Who sent each block (by block index), to find the culprit if the hash fails.
    pub(super) block_from: Vec<Option<SocketAddr>>,
}

/// One block of a piece that failed its hash: who sent it and what it hashed to. When the
/// piece later passes, a block whose digest differs from the good copy's was bad.
pub(super) struct Suspect {
    pub(super) block: usize,
    pub(super) from: SocketAddr,
    pub(super) digest: [u8; 20],
}

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
        let solicited =
            self.picker.is_requested_from(key, block) || take_one(&mut peer.withdrawn, block);
        if !solicited {
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
                if let Some(p) = self.peers.get_mut(&other) {
                    if p.withdrawn.len() >= WITHDRAWN_LIMIT {
                        p.withdrawn.clear();
                    }
                    *p.withdrawn.entry(block).or_default() += 1;
                }
                self.send(other, Command::Cancel(block));
            }
            let size = self.geometry.piece_size(block.piece) as usize;
            let spare = &mut self.spare_buffers;
            let buffer = self.buffers.entry(block.piece).or_insert_with(|| {
                // A recycled buffer is overwritten block by block before it is hashed, so its
                // old bytes never matter; only a change of length costs a fill.
                let mut data = spare.pop().unwrap_or_default();
                data.resize(size, 0);
                PieceBuffer {
                    data,
                    block_from: vec![None; size.div_ceil(BLOCK_LEN as usize)],
                }
            });
            let at = block.offset as usize;
            buffer.data[at..at + data.len()].copy_from_slice(&data);
            buffer.block_from[at / BLOCK_LEN as usize] = Some(addr);
            if piece_complete {
                self.submit_piece(block.piece);
            }
        }
        self.fill(key);
    }

    /// Sends a complete piece to the hasher.
    pub(super) fn submit_piece(&mut self, piece: u32) {
        let Some(buffer) = self.buffers.remove(&piece) else {
            return;
        };
        self.in_pipeline.insert(piece, buffer.block_from);
        if let Some(jobs) = &self.workers.hash_jobs {
            // The hasher only stops when we drop this sender.
            let _ = jobs.send(HashJob {
                piece,
                data: buffer.data,
                block_digests: self.suspects.contains_key(&piece),
            });
        }
    }

    /// The hasher's verdict. A bad piece is fetched again. Blame is laid carefully, so that an
    /// honest peer that shared a piece with a liar is not dropped with it ("smart ban"): a
    /// piece that came from a single peer gives that peer a strike; the blocks of a piece
    /// from several peers are remembered, and when a good copy of the piece passes later,
    /// every peer that had sent a block that differs from it is dropped.
    pub(super) fn on_hashed(&mut self, result: HashResult) {
        let block_from = self.in_pipeline.remove(&result.piece).unwrap_or_default();
        if result.ok {
            self.picker.piece_verified(result.piece);
            // Back in the pipeline until the writer is done with it.
            self.in_pipeline.insert(result.piece, Vec::new());
            if let (Some(bad), Some(good)) =
                (self.suspects.remove(&result.piece), result.block_digests)
            {
                for s in bad {
                    if good.get(s.block) != Some(&s.digest) {
                        let why = format!("bad data in piece {} block {}", result.piece, s.block);
                        self.strike(s.from, MAX_STRIKES, &why);
                    }
                }
            }
            return;
        }
        self.failed_pieces += 1;
        self.picker.piece_failed(result.piece);
        let mut senders: Vec<SocketAddr> = block_from.iter().flatten().copied().collect();
        senders.sort();
        senders.dedup();
        warn!(
            "piece {} failed its hash check (sent by {})",
            result.piece,
            senders
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let [only] = senders[..] {
            self.strike(only, 1, &format!("bad piece {}", result.piece));
        }
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
        // The piece is wanted again: peers we lost interest in (because every piece we
        // lacked was already awaiting its hash) may have it, so interest is re-evaluated
        // for everyone, which also sends the new requests.
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.update_interest(key);
        }
    }

    pub(super) fn on_written(&mut self, piece: u32) {
        self.in_pipeline.remove(&piece);
        if !self.have.set(piece as usize) {
            return;
        }
        if self.wanted.has(piece as usize) {
            self.verified_bytes += u64::from(self.geometry.piece_size(piece));
            self.wanted_missing -= 1;
        }
        let connected: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connected)
            .map(|(&k, _)| k)
            .collect();
        for key in connected {
            self.send(key, Command::Have(piece));
            self.update_interest(key);
        }
        if self.wanted_missing == 0 && self.completed_at.is_none() {
            self.completed_at = Some(Instant::now());
            info!(
                "{}: complete, {} bytes in {:.1} s",
                self.meta.name,
                self.wanted_bytes,
                self.started.elapsed().as_secs_f64()
            );
            if let Some((tracker, _)) = &self.workers.tracker {
                let _ = tracker.send(TrackerCommand::Completed);
            }
        }
    }

    /// Whether starting one more piece stays inside [`PIECE_MEMORY_BUDGET`]. Two pieces are
    /// always allowed, so that huge pieces still make progress.
    pub(super) fn may_start_piece(&self) -> bool {
        let held = self.picker.partial_pieces() + self.in_pipeline.len();
        held < 2 || (held as u64 + 1) * u64::from(self.geometry.piece_len()) <= PIECE_MEMORY_BUDGET
    }
}
