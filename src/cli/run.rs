//! Runs a session (for `download` and `seed`) with its live line, then prints the summary.
//!
//! Runs on the main thread, which becomes the session's main loop until the session ends.

use std::io::IsTerminal;
use std::path::PathBuf;

use crossbeam_channel::Receiver;
use strand::metainfo::Metainfo;
use strand::session::{self, SeedPolicy};

use super::args::{Files, SessionArgs};
use super::errors::{note, Failure, EXIT_INTERRUPTED};
use super::live::LiveLine;
use super::progress::paint;
use super::summary;

/// A channel that receives a message when the user presses Ctrl-C. The session then stops
/// cleanly (trackers hear `stopped`, the writer finishes); a second Ctrl-C ends the process at
/// once, as a kill would (the next run checks the data again, so no verified piece is lost).
fn ctrl_c() -> Result<Receiver<()>, Failure> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let mut pressed = false;
    ctrlc::set_handler(move || {
        if pressed {
            paint("\r\x1b[2K");
            note!("strand: stopped at once by a second Ctrl-C");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        pressed = true;
        let _ = tx.try_send(());
    })
    .map_err(|e| Failure::error(format!("cannot catch Ctrl-C: {e}")))?;
    Ok(rx)
}

/// Runs a session with its live line, then prints the summary.
pub(crate) fn run_session(
    meta: Metainfo,
    output_dir: PathBuf,
    files: Files,
    seed: SeedPolicy,
    peer: SessionArgs,
) -> Result<(), Failure> {
    let quiet = peer.quiet;
    let cx = summary::Context {
        saved: output_dir.join(&meta.name),
        seed,
        torrent_len: meta.geometry.total_len(),
    };
    let opts = peer.options(output_dir, files, seed, ctrl_c()?);
    let show_progress = !quiet && std::io::stderr().is_terminal();
    let mut line = LiveLine::new(&meta.name);
    let result = session::download(meta, opts, &mut |p| {
        if show_progress {
            line.draw(p);
        }
    });
    line.clear();
    let summary = result?;
    if !quiet {
        note!("{}", summary::line(&summary, &cx));
    }
    if summary.interrupted {
        return Err(Failure::interrupted());
    }
    Ok(())
}
