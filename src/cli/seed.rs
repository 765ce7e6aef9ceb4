//! `strand seed`: check the data in a folder, then seed it (fetching what is missing of the
//! files there).
//!
//! Runs on the main thread: parses the flags, hashes the data, then runs the session.

use std::io::IsTerminal;

use strand::session::SeedPolicy;
use strand::storage::{check, parts, FileMap};

use super::args::{
    cores, existing_folder, finish, folder, load_torrent, seed_policy, torrent_arg, Files,
    FolderFlag, SessionArgs,
};
use super::errors::{note, Failure};
use super::progress::TaskLine;
use super::run::run_session;

pub(crate) fn seed(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let data_dir = folder(&mut args, FolderFlag::Data)?;
    let policy = match seed_policy(&mut args)? {
        SeedPolicy::No => SeedPolicy::Forever,
        until => until,
    };
    let peer = SessionArgs::parse(&mut args)?;
    let torrent = torrent_arg(&mut args)?;
    finish(args)?;
    let meta = load_torrent(&torrent, peer.quiet)?;
    existing_folder(&data_dir)?;
    // Files not in the folder (a selective download's) are not fetched: the others are
    // seeded, their shared pieces read from the parts file or the `.kept` records.
    let present: Vec<bool> = meta
        .files
        .iter()
        .map(|f| data_dir.join(&f.path).exists())
        .collect();
    let listed: Vec<usize> = meta
        .listed_files()
        .filter(|(_, f)| f.on_disk())
        .map(|(i, _)| i)
        .collect();
    let here: Vec<usize> = listed.iter().copied().filter(|&i| present[i]).collect();
    let selective = !here.is_empty() && here.len() < listed.len();
    let chosen = if selective {
        present
    } else {
        vec![true; meta.files.len()]
    };
    let show = !peer.quiet && std::io::stderr().is_terminal();
    let mut line = TaskLine::new("checking", show);
    let map = FileMap::selective(&data_dir, &meta, &chosen);
    let have = check::check(&map, &meta, cores(), &mut |done, total| {
        line.draw(u64::from(done), u64::from(total));
    })?;
    line.clear();
    let pieces = meta.geometry.piece_count();
    let names = || {
        let mut names: Vec<String> = here
            .iter()
            .take(3)
            .map(|&i| meta.files[i].path.display().to_string())
            .collect();
        if here.len() > 3 {
            names.push("…".into());
        }
        names.join(", ")
    };
    let fetch_first = format!(
        "to fetch the rest first, run `strand download {} -o {} --seed`",
        torrent.display(),
        data_dir.display()
    );
    if have.count() == 0 && pieces > 0 {
        let kept = parts::kept(&data_dir, &meta, &map, &chosen, &have);
        if selective && kept.count() > 0 {
            return Err(Failure::error(format!(
                "{} holds {} of the torrent's {} files ({}), but no whole piece to seed: \
                 each piece of them is shared with a file that is not there; {fetch_first}",
                data_dir.display(),
                here.len(),
                listed.len(),
                names()
            )));
        }
        return Err(Failure::error(format!(
            "{} holds none of the torrent's data (looked for {}); {fetch_first}",
            data_dir.display(),
            data_dir.join(&meta.name).display(),
        )));
    }
    if !peer.quiet {
        if have.is_full() {
            note!("all {pieces} pieces present and verified; seeding");
        } else if selective {
            note!(
                "seeding {} of {pieces} pieces: the {} of {} files in {} ({}); the files not \
                 there are not fetched",
                have.count(),
                here.len(),
                listed.len(),
                data_dir.display(),
                names()
            );
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
        chosen: selective.then_some(chosen),
        preallocate: false,
    };
    run_session(meta, data_dir, files, policy, peer, None)
}
