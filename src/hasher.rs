//! The hasher thread: checks each completed piece against its SHA-1 from the torrent.
//!
//! Runs on its own thread ("hasher"), so the main thread never spends time hashing. It owns
//! nothing but a read-only copy of the piece hashes and of where the padding lies (BEP 47):
//! it sets a piece's padding to zeros before hashing, since those bytes are never fetched
//! (a block may hold anything there) and are zeros by definition. It hashes the piece block
//! by block, in the buffers the blocks arrived in. A piece that matches goes straight on to
//! the writer thread; either way the main thread hears the verdict as [`Event::Hashed`], with
//! per-block digests when the main thread needs them to find who sent bad blocks.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::messages::{Event, HashJob, HashResult, WriteCommand};
use crate::storage::padding::Padding;

/// Starts the hasher. It ends when every sender of `jobs` is dropped or a receiver goes away.
pub fn spawn(
    piece_hashes: Vec<[u8; 20]>,
    padding: Padding,
    jobs: Receiver<HashJob>,
    to_writer: Sender<WriteCommand>,
    events: Sender<Event>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("hasher".into())
        .spawn(move || {
            for mut job in jobs {
                padding.zero(job.piece, &mut job.blocks);
                let ok = piece_hashes
                    .get(job.piece as usize)
                    .is_some_and(|want| job.blocks.sha1() == *want);
                let block_digests = (!ok || job.block_digests).then(|| job.blocks.block_digests());
                // The verdict goes out before the data moves on, so the main thread always
                // hears `Hashed` before the writer's `PieceWritten` for the same piece.
                let verdict = Event::Hashed(HashResult {
                    piece: job.piece,
                    ok,
                    block_digests,
                });
                if events.send(verdict).is_err() {
                    return;
                }
                if ok {
                    let write = WriteCommand {
                        piece: job.piece,
                        blocks: job.blocks,
                    };
                    if to_writer.send(write).is_err() {
                        return;
                    }
                }
            }
        })
}
