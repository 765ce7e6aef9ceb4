//! Serving other peers: their requests, metadata requests and the choker.

use std::time::{Duration, Instant};

use log::{debug, info};

use super::Session;

/// How many times over one connection may have our metadata (the info dict, in 16 KiB
/// pieces); later requests get a reject.
pub const METADATA_ROUNDS: u32 = 2;
use crate::choker::Candidate;
use crate::geometry::{BlockRef, PieceIndex};
use crate::messages::{Command, PeerKey};
use crate::peer::extension::{self, MetadataMsg};

/// Ticks between two runs of the choker.
pub(super) const RECHOKE_TICKS: u64 = 10;
/// A peer connected for less than this counts as new for the optimistic unchoke.
pub(super) const NEW_PEER_AGE: Duration = Duration::from_secs(60);

impl Session {
    /// A peer asked for a block: serve it if we may, drop the peer if the request is bogus.
    /// A Fast peer gets a `reject` for a request we will not serve (it is choked and the
    /// piece is not allowed fast to it, or we lack the piece) instead.
    pub(super) fn on_request(&mut self, key: PeerKey, block: BlockRef) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        if !self.may_serve(key, block.piece) {
            // Requests from a choked peer are simply not answered, as BEP 3 says; BEP 6
            // wants an answer.
            if peer.fast {
                self.send(key, Command::Reject(block));
            }
            return;
        }
        let bogus = if !self
            .geometry
            .is_valid_request(block.piece, block.offset, block.len)
        {
            Some("a request outside the piece or over 16 KiB")
        } else if !self.store.on_disk().has(block.piece) {
            if peer.fast {
                self.send(key, Command::Reject(block));
                return;
            }
            Some("a request for a piece we do not have")
        } else {
            None
        };
        if let Some(why) = bogus {
            // Not a warning: nothing the user can do about a stranger's protocol errors, and
            // a peer that keeps reconnecting would fill the terminal (the soak saw 3,000).
            info!("{}: dropped for {why}: {block:?}", peer.addr);
            self.send(key, Command::Disconnect);
            return;
        }
        self.serve(key, block);
    }

    /// A peer asked for a piece of the metadata: send it, or a reject for a piece that does
    /// not exist or once the peer has had it [`METADATA_ROUNDS`] times over.
    pub(super) fn on_metadata_request(&mut self, key: PeerKey, piece: u32) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(id) = peer.ut_metadata else {
            return;
        };
        let info = &self.meta.info_bytes;
        let total = u32::try_from(info.len()).unwrap_or(u32::MAX);
        // A 16 KiB answer to a 50-byte question: without a cap, a peer that asks fast and
        // reads slowly would fill its command channel with our memory.
        let allowed =
            peer.metadata_served < METADATA_ROUNDS * extension::metadata_piece_count(total);
        let msg = match extension::expected_piece_len(total, piece).filter(|_| allowed) {
            Some(len) => {
                peer.metadata_served += 1;
                let start = piece as usize * extension::METADATA_PIECE_LEN;
                MetadataMsg::Data {
                    piece,
                    total_size: total,
                    data: info[start..start + len].to_vec(),
                }
            }
            None => MetadataMsg::Reject { piece },
        };
        let payload = extension::encode_metadata(&msg);
        self.send(key, Command::Extended { id, payload });
    }

    /// Whether we serve `peer` requests for `piece` now: it is unchoked, or it is a Fast
    /// peer and `piece` is in the set we allow it fast.
    pub(super) fn may_serve(&self, key: PeerKey, piece: PieceIndex) -> bool {
        self.peers
            .get(&key)
            .is_some_and(|p| !p.am_choking || (p.fast && p.allowed_to_them.contains(&piece)))
    }

    /// Chokes or unchokes a peer, if that changes anything. Choking drops the requests of
    /// the peer's we had yet to serve (its sender rejects those it holds, if it is Fast), but
    /// those for pieces we allow it fast.
    pub(super) fn set_choking(&mut self, key: PeerKey, choke: bool) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.am_choking != choke {
            debug!(
                "{}: {}",
                peer.addr,
                if choke {
                    "we choke it"
                } else {
                    "we unchoke it"
                }
            );
            peer.am_choking = choke;
            if choke {
                let keep = peer.allowed_to_them.clone();
                self.send(key, Command::Choke { keep });
                self.drop_waiting_uploads(key);
            } else {
                self.send(key, Command::Unchoke);
            }
        }
    }

    /// Every [`RECHOKE_TICKS`]: lets the choker pick whom we upload to.
    pub(super) fn rechoke(&mut self) {
        let seeding = self.seeding();
        let now = Instant::now();
        let candidates: Vec<Candidate> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connected)
            .map(|(&key, p)| Candidate {
                key,
                interested: p.peer_interested,
                rate: if seeding {
                    p.upload.per_second()
                } else {
                    p.download.per_second()
                },
                is_new: now.duration_since(p.since) < NEW_PEER_AGE,
            })
            .collect();
        let unchoke = self.choker.rechoke(&candidates);
        for c in candidates {
            self.set_choking(c.key, !unchoke.contains(&c.key));
        }
    }
}
