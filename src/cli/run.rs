//! Runs a session (for `download` and `seed`) with its live line, then prints the summary.
//!
//! Runs on the main thread, which becomes the session's main loop until the session ends.

use std::io::IsTerminal;
use std::path::PathBuf;

use crossbeam_channel::Receiver;
use strand::dht::Dht;
use strand::metainfo::Metainfo;
use strand::session::{self, SeedPolicy};

use super::args::{Files, SessionArgs};
use super::errors::Failure;
use super::progress::{summary_line, ProgressLine};

/// A channel that receives a message when the user presses Ctrl-C.
fn ctrl_c() -> Result<Receiver<()>, Failure> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    })
    .map_err(|e| Failure::error(format!("cannot catch Ctrl-C: {e}")))?;
    Ok(rx)
}

/// Runs a session with a progress line, then prints the summary. `dht` is the DHT started
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
    let result = run(meta, opts, quiet);
    super::dht::stop(dht);
    result
}

fn run(meta: Metainfo, opts: session::Options, quiet: bool) -> Result<(), Failure> {
    let show_progress = !quiet && std::io::stderr().is_terminal();
    let mut line = ProgressLine::default();
    let summary = session::download(meta, opts, &mut |p| {
        if show_progress {
            line.draw(p);
        }
    })?;
    if show_progress {
        line.clear();
    }
    if !quiet {
        eprintln!("{}", summary_line(&summary));
    }
    if summary.interrupted {
        return Err(Failure::interrupted());
    }
    Ok(())
}
