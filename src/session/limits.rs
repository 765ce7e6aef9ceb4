//! Rate limits, the session's side: the main thread spends one token bucket per direction
//! on decisions it already makes alone, so the limits need no lock and no shared counter.
//!
//! Download: `fill` requests only as many blocks as the download bucket affords, and keeps
//! no more than a fifth of a second of the limit in flight per peer, so a limited download
//! never asks peers (or web seeds) for much more than it can take; the data then arrives at
//! the rate the requests went out. Upload: a request we would serve
//! waits here until the upload bucket affords its block, then goes to the peer's sender
//! thread as `Command::Upload`. When a bucket runs dry with work waiting, the main loop
//! wakes when it will afford the next block ([`Limits::wake_in`]), not at the next tick.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::Session;
use crate::geometry::{BlockRef, BLOCK_LEN};
use crate::messages::{Command, PeerKey};
use crate::rate_limit::TokenBucket;

/// Most requests of one peer waiting for upload budget (a sender thread holds no more).
const MAX_WAITING_PER_PEER: usize = 512;
/// Under a download limit, requests in flight to one peer are at most this many seconds of
/// the limit (enough to keep the rate over a 200 ms round trip)...
const IN_FLIGHT_SECONDS: f64 = 0.2;
/// ...but never fewer than this many blocks.
const MIN_IN_FLIGHT: usize = 4;

/// The two buckets and the uploads waiting for budget.
pub(super) struct Limits {
    download: Option<TokenBucket>,
    download_rate: Option<u64>,
    upload: Option<TokenBucket>,
    /// Requests we will serve, oldest first, waiting for upload budget.
    waiting: VecDeque<(PeerKey, BlockRef)>,
    /// How many of `waiting` each peer has.
    waiting_per_peer: HashMap<PeerKey, usize>,
    /// A peer wanted more requests than the download bucket afforded.
    starved: bool,
}

impl Limits {
    /// Buckets for these limits in bytes per second (`None`: unlimited).
    pub(super) fn new(download: Option<u64>, upload: Option<u64>, now: Instant) -> Limits {
        Limits {
            download: download.map(|r| TokenBucket::new(r, now)),
            download_rate: download,
            upload: upload.map(|r| TokenBucket::new(r, now)),
            waiting: VecDeque::new(),
            waiting_per_peer: HashMap::new(),
            starved: false,
        }
    }

    /// How many of `want` more blocks may be requested now from a peer that has
    /// `outstanding` requests in flight: what the bucket affords, and no more in flight than
    /// [`IN_FLIGHT_SECONDS`] of the rate, so a peer that stalls and then catches up cannot
    /// deliver a burst much above the limit.
    pub(super) fn download_room(&mut self, want: usize, outstanding: usize, now: Instant) -> usize {
        let (Some(bucket), Some(rate)) = (&mut self.download, self.download_rate) else {
            return want;
        };
        let in_flight = ((rate as f64 * IN_FLIGHT_SECONDS) / f64::from(BLOCK_LEN)) as usize;
        let want = want.min(in_flight.max(MIN_IN_FLIGHT).saturating_sub(outstanding));
        let room = bucket.affordable(BLOCK_LEN, now).min(want);
        if room < want {
            self.starved = true;
        }
        room
    }

    /// Blocks of `bytes` in all were requested.
    pub(super) fn requested(&mut self, bytes: u64, now: Instant) {
        if let Some(bucket) = &mut self.download {
            bucket.spend(bytes, now);
        }
    }

    /// The blocks of `key` waiting for upload budget, oldest first.
    #[cfg(test)]
    pub(super) fn waiting_for(&self, key: PeerKey) -> Vec<BlockRef> {
        self.waiting
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, b)| *b)
            .collect()
    }

    /// When the main loop should wake to spend budget that will have accrued: `None` when
    /// nothing waits for it.
    pub(super) fn wake_in(&self, now: Instant) -> Option<Duration> {
        let download = match &self.download {
            Some(b) if self.starved => Some(b.wait_for(u64::from(BLOCK_LEN), now)),
            _ => None,
        };
        let upload = match (&self.upload, self.waiting.front()) {
            (Some(b), Some((_, block))) => Some(b.wait_for(u64::from(block.len), now)),
            _ => None,
        };
        let wait = download.into_iter().chain(upload).min()?;
        Some(wait.max(Duration::from_millis(1)))
    }
}

impl Session {
    /// Serves a checked request: at once without an upload limit, else when the upload
    /// bucket affords it, in the order requests came.
    pub(super) fn serve(&mut self, key: PeerKey, block: BlockRef) {
        if self.limits.upload.is_none() {
            self.upload_now(key, block);
            return;
        }
        let count = self.limits.waiting_per_peer.entry(key).or_default();
        if *count >= MAX_WAITING_PER_PEER {
            // The peer's own sender would refuse that many too; ignoring the request is
            // what a busy peer does (a Fast one says so).
            self.reject_if_fast(key, block);
            return;
        }
        *count += 1;
        self.limits.waiting.push_back((key, block));
        self.serve_waiting();
    }

    /// A peer canceled a request: it no longer waits for budget (and if it already went to
    /// the sender thread, the sender skips it if it has not gone out yet).
    pub(super) fn withdraw_upload(&mut self, key: PeerKey, block: BlockRef) {
        let before = self.limits.waiting.len();
        self.limits
            .waiting
            .retain(|&(k, b)| !(k == key && b == block));
        if self.limits.waiting.len() < before {
            self.uncount_waiting(key);
            // It never reached the sender: the answer BEP 6 wants is ours to give.
            self.reject_if_fast(key, block);
        }
        self.send(key, Command::SkipUpload(block));
    }

    /// We choked `key`: its waiting uploads go (a Fast peer gets a `reject` for each), but
    /// those for pieces we allow it fast.
    pub(super) fn drop_waiting_uploads(&mut self, key: PeerKey) {
        let mut dropped = Vec::new();
        let mut kept = VecDeque::new();
        let waiting = std::mem::take(&mut self.limits.waiting);
        for (k, block) in waiting {
            if k == key && !self.may_serve(k, block.piece) {
                dropped.push(block);
            } else {
                kept.push_back((k, block));
            }
        }
        self.limits.waiting = kept;
        for block in dropped {
            self.uncount_waiting(key);
            self.reject_if_fast(key, block);
        }
    }

    /// Tells a Fast peer we will not serve `block`.
    fn reject_if_fast(&self, key: PeerKey, block: BlockRef) {
        if self.peers.get(&key).is_some_and(|p| p.fast) {
            self.send(key, Command::Reject(block));
        }
    }

    /// Hands waiting uploads to their senders while the bucket affords them; those of peers
    /// gone or choked since are dropped.
    pub(super) fn serve_waiting(&mut self) {
        let now = Instant::now();
        while let Some(&(key, block)) = self.limits.waiting.front() {
            let live = self.may_serve(key, block.piece);
            if live {
                let Some(bucket) = &mut self.limits.upload else {
                    break;
                };
                if !bucket.try_spend(u64::from(block.len), now) {
                    break;
                }
                self.upload_now(key, block);
            }
            self.limits.waiting.pop_front();
            self.uncount_waiting(key);
        }
    }

    /// Budget has accrued: top up requests and serve waiting uploads.
    pub(super) fn on_limit_timer(&mut self) {
        self.limits.starved = false;
        self.fill_all();
        self.serve_waiting();
    }

    fn uncount_waiting(&mut self, key: PeerKey) {
        if let Some(n) = self.limits.waiting_per_peer.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.limits.waiting_per_peer.remove(&key);
            }
        }
    }

    /// Counts `block` as uploaded and hands it to the peer's sender thread.
    fn upload_now(&mut self, key: PeerKey, block: BlockRef) {
        let len = u64::from(block.len);
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.upload.add(len);
        }
        self.upload.add(len);
        self.uploaded_bytes += len;
        self.send(key, Command::Upload(block));
    }
}
