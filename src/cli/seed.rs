//! `strand seed`: check the data in a folder, then seed it (fetching what is missing).
//!
//! Runs on the main thread: parses the flags, hashes the data, then runs the session.

use std::io::IsTerminal;

use strand::session::SeedPolicy;
use strand::storage::{check, FileMap};

use super::args::{
    cores, data_dir, finish, load_torrent, seed_policy, torrent_arg, Files, SessionArgs,
};
use super::errors::{note, Failure};
use super::progress::TaskLine;
use super::run::run_session;

pub(crate) fn seed(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let data_dir = data_dir(&mut args)?;
    let policy = match seed_policy(&mut args)? {
        SeedPolicy::No => SeedPolicy::Forever,
        until => until,
    };
    let peer = SessionArgs::parse(&mut args)?;
    let torrent = torrent_arg(&mut args)?;
    finish(args)?;
    let meta = load_torrent(&torrent, peer.quiet)?;
    let show = !peer.quiet && std::io::stderr().is_terminal();
    let mut line = TaskLine::new("checking", show);
    let map = FileMap::plain(&data_dir, &meta);
    let have = check::check(&map, &meta, cores(), &mut |done, total| {
        line.draw(u64::from(done), u64::from(total));
    })?;
    line.clear();
    let pieces = meta.geometry.piece_count();
    if have.count() == 0 && pieces > 0 {
        return Err(Failure::error(format!(
            "{} holds none of the torrent's data (looked for {}); to fetch it first, \
             run `strand download {} -o {} --seed`",
            data_dir.display(),
            data_dir.join(&meta.name).display(),
            torrent.display(),
            data_dir.display()
        )));
    }
    if !peer.quiet {
        if have.is_full() {
            note!("all {pieces} pieces present and verified; seeding");
        } else {
            note!(
                "{} of {pieces} pieces missing in {}; seeding the {} present (and fetching the rest)",
                pieces - have.count(),
                data_dir.display(),
                have.count()
            );
        }
    }
    let files = Files {
        verified: Some(have),
        chosen: None,
        preallocate: false,
    };
    run_session(meta, data_dir, files, policy, peer, None)
}
