//! The blocks one peer asked us for and we have not sent yet: the sending thread's queue.
//!
//! Owned by a connection's sending thread, which takes `Command::Upload`s into it and writes
//! a few blocks of it per write. The main thread decides what to serve; the queue only keeps
//! BEP 6's promise on a Fast connection, that every request gets exactly one answer: each
//! block it drops (the peer's cancel, our choke, a request over the queue's limit) comes
//! back to the caller, which sends a `reject` for it. On other connections dropped blocks
//! are simply forgotten, as BEP 3 says, and a request over the limit ends the connection.

use std::collections::VecDeque;

use crate::geometry::{BlockRef, PieceIndex};

/// What became of a block given to [`UploadQueue::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queued {
    /// It waits its turn.
    Yes,
    /// The queue is full and the connection is Fast: reject it.
    Reject,
    /// The queue is full and the connection is not Fast: the peer floods us; hang up.
    Overflow,
}

/// One connection's queue of blocks to send, oldest first.
#[derive(Debug)]
pub(crate) struct UploadQueue {
    blocks: VecDeque<BlockRef>,
    limit: usize,
    fast: bool,
}

impl UploadQueue {
    /// A queue of at most `limit` blocks, for a Fast connection or not.
    pub(crate) fn new(limit: usize, fast: bool) -> UploadQueue {
        UploadQueue {
            blocks: VecDeque::new(),
            limit,
            fast,
        }
    }

    /// Queues a block the main thread chose to serve.
    pub(crate) fn push(&mut self, block: BlockRef) -> Queued {
        if self.blocks.len() < self.limit {
            self.blocks.push_back(block);
            Queued::Yes
        } else if self.fast {
            Queued::Reject
        } else {
            Queued::Overflow
        }
    }

    /// The peer canceled `block`: it leaves the queue. Returns it when it was there and the
    /// connection is Fast (it needs a `reject`).
    pub(crate) fn cancel(&mut self, block: BlockRef) -> Option<BlockRef> {
        let before = self.blocks.len();
        self.blocks.retain(|b| *b != block);
        (self.fast && self.blocks.len() < before).then_some(block)
    }

    /// We choke the peer: every block leaves the queue but those of the pieces in `keep`
    /// (allowed fast to it). Returns the dropped blocks that need a `reject` (none on a
    /// connection that is not Fast).
    pub(crate) fn choke(&mut self, keep: &[PieceIndex]) -> Vec<BlockRef> {
        let mut rejected = Vec::new();
        self.blocks.retain(|b| {
            let kept = keep.contains(&b.piece);
            if !kept {
                rejected.push(*b);
            }
            kept
        });
        if !self.fast {
            rejected.clear();
        }
        rejected
    }

    /// The next block to send.
    pub(crate) fn pop(&mut self) -> Option<BlockRef> {
        self.blocks.pop_front()
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(piece: u32, offset: u32) -> BlockRef {
        BlockRef {
            piece,
            offset,
            len: 16384,
        }
    }

    #[test]
    fn a_fast_queue_rejects_what_it_drops() {
        let mut q = UploadQueue::new(4, true);
        for block in [b(1, 0), b(2, 0), b(3, 0), b(2, 16384)] {
            assert_eq!(q.push(block), Queued::Yes);
        }
        assert_eq!(q.push(b(4, 0)), Queued::Reject);
        assert_eq!(q.cancel(b(1, 0)), Some(b(1, 0)));
        assert_eq!(
            q.cancel(b(1, 0)),
            None,
            "no longer queued: already answered"
        );
        // A choke keeps the allowed-fast piece 2 and rejects the rest.
        assert_eq!(q.choke(&[2]), vec![b(3, 0)]);
        assert_eq!(q.pop(), Some(b(2, 0)));
        assert_eq!(q.pop(), Some(b(2, 16384)));
        assert!(q.is_empty());
    }

    #[test]
    fn a_plain_queue_forgets_what_it_drops_and_overflows() {
        let mut q = UploadQueue::new(2, false);
        assert_eq!(q.push(b(1, 0)), Queued::Yes);
        assert_eq!(q.push(b(2, 0)), Queued::Yes);
        assert_eq!(q.push(b(3, 0)), Queued::Overflow);
        assert_eq!(q.cancel(b(1, 0)), None);
        assert!(q.choke(&[]).is_empty());
        assert!(q.is_empty());
    }
}
