//! Runs a session (for `download` and `seed`) with its live line, then prints the summary.
//!
//! Runs on the main thread, which becomes the session's main loop until the session ends.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use strand::dht::Dht;
use strand::metainfo::Metainfo;
use strand::session::{self, SeedPolicy};

use super::args::{Files, SessionArgs};
use super::errors::{note, Failure, EXIT_INTERRUPTED};
use super::live::LiveLine;
use super::progress::paint;
use super::summary;

/// A second Ctrl-C counts only when it comes at least this long after the first: `timeout`
/// (and some shells) send one Ctrl-C to the process as well as to its group, so that one press
/// arrives twice within milliseconds.
const SECOND_CTRL_C_AFTER: Duration = Duration::from_millis(500);

/// A channel that receives a message when the user presses Ctrl-C. The session then stops
/// cleanly (trackers hear `stopped`, the writer finishes); a second Ctrl-C, at least
/// [`SECOND_CTRL_C_AFTER`] after the first, ends the process at once, as a kill would (the next
/// run checks the data again, so no verified piece is lost).
fn ctrl_c() -> Result<Receiver<()>, Failure> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let mut first: Option<Instant> = None;
    let tty = std::io::stderr().is_terminal();
    ctrlc::set_handler(move || match first {
        None => {
            first = Some(Instant::now());
            let _ = tx.try_send(());
        }
        Some(at) if at.elapsed() >= SECOND_CTRL_C_AFTER => {
            if tty {
                paint("\r\x1b[2K");
            }
            note!("strand: stopped at once by a second Ctrl-C");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        Some(_) => {}
    })
    .map_err(|e| Failure::error(format!("cannot catch Ctrl-C: {e}")))?;
    Ok(rx)
}

/// Runs a session with its live line, then prints the summary. `dht` is the DHT started
/// for a magnet's metadata phase, if any; otherwise one is started here unless `--no-dht`
/// or the torrent is private (BEP 27). It is stopped (and its state saved) at the end.
pub(crate) fn run_session(
    meta: Metainfo,
    output_dir: PathBuf,
    files: Files,
    seed: SeedPolicy,
    peer: SessionArgs,
    dht: Option<Dht>,
) -> Result<(), Failure> {
    let quiet = peer.quiet;
    let cx = summary::Context {
        saved: output_dir.join(&meta.name),
        seed,
        torrent_len: meta.geometry.total_len(),
    };
    let dht = match dht {
        Some(running) if meta.private => {
            super::dht::stop(Some(running));
            None
        }
        Some(running) => Some(running),
        None if meta.private => None,
        None => peer.dht.start(peer.listen)?,
    };
    let opts = peer.options(
        output_dir,
        files,
        seed,
        ctrl_c()?,
        dht.as_ref().map(Dht::link),
    );
    let result = run(meta, opts, quiet, &cx);
    super::dht::stop(dht);
    result
}

fn run(
    meta: Metainfo,
    opts: session::Options,
    quiet: bool,
    cx: &summary::Context,
) -> Result<(), Failure> {
    let show_progress = !quiet && std::io::stderr().is_terminal();
    let mut line = LiveLine::new(&meta.name);
    let result = session::download(meta, opts, &mut |p| {
        if show_progress {
            line.draw(p);
        }
    });
    line.clear();
    let summary = result?;
    // The one-line result: shown under `--quiet` too.
    note!("{}", summary::line(&summary, cx));
    // Ctrl-C while seeding a complete download ends a success: seeding has no end of its
    // own, and every chosen piece is on disk.
    if summary.interrupted && summary.completed_after.is_none() {
        return Err(Failure::interrupted());
    }
    Ok(())
}
