//! `strand verify`: hash the data in a folder and say, file by file, what is complete.
//!
//! Runs on the main thread (the hashing itself on one worker thread per core).

use std::io::IsTerminal;

use strand::bitfield::Bitfield;
use strand::storage::layout::Layout;
use strand::storage::{check, parts, FileMap};

use super::args::{
    cores, existing_folder, finish, folder, load_torrent, quiet, torrent_arg, FolderFlag, Selection,
};
use super::errors::{say, Failure};
use super::live::piece_map;
use super::progress::TaskLine;
use super::units::size;

/// Width of the piece map `verify` prints.
const MAP_CELLS: usize = 50;

pub(crate) fn verify(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let data_dir = folder(&mut args, FolderFlag::Data)?;
    let quiet = quiet(&mut args);
    let selection = Selection::parse(&mut args)?;
    let torrent = torrent_arg(&mut args)?;
    finish(args)?;
    let meta = load_torrent(&torrent, quiet)?;
    existing_folder(&data_dir)?;
    let chosen = selection.choose(&meta, &[])?;
    // Each file's bytes are read where a download left them: at the file's own path, or in
    // the parts file when the file was not chosen (pieces it shares with chosen files).
    let at_home: Vec<bool> = meta
        .files
        .iter()
        .map(|f| data_dir.join(&f.path).exists())
        .collect();
    let map = FileMap::selective(&data_dir, &meta, &at_home);
    let mut line = TaskLine::new("checking", !quiet && std::io::stderr().is_terminal());
    let have = check::check(&map, &meta, cores(), &mut |done, total| {
        line.draw(u64::from(done), u64::from(total));
    })?;
    line.clear();
    // Pieces a finished selective download no longer holds whole: each chosen file's
    // bytes of them, hashed against the record made when the parts file was removed.
    let good = parts::confirmed(&data_dir, &meta, &map);
    let kept = parts::kept(&data_dir, &meta, &map, &chosen, &have);
    let layout = Layout::new(&meta.files);
    let g = meta.geometry;
    let mut incomplete = 0;
    let mut wanted = Bitfield::new(have.len());
    // Numbered as `info` lists them: pad files (never chosen, never on disk) are left out.
    for (n, (i, f)) in meta.listed_files().enumerate() {
        if !chosen[i] {
            continue;
        }
        let range = layout.file_range(i);
        // Bytes of this file inside pieces that are missing or bad.
        let pieces = layout.file_pieces(i, &g);
        for p in pieces.clone() {
            wanted.set(p);
        }
        let missing: u64 = pieces
            .filter(|&p| !have.has(p) && !good.contains(&(p, i)))
            .map(|p| {
                let piece = g.piece_offset(p)..g.piece_offset(p) + u64::from(g.piece_size(p));
                piece.end.min(range.end) - piece.start.max(range.start)
            })
            .sum();
        // A file not at its own path is missing, whatever its length or the parts file holds.
        let state = if !at_home[i] {
            incomplete += 1;
            "missing".to_string()
        } else if missing == 0 {
            "complete".to_string()
        } else {
            incomplete += 1;
            format!("{:.1}% missing", missing as f64 * 100.0 / f.length as f64)
        };
        if !quiet {
            say!(
                "{:>4}. {} ({}): {state}",
                n + 1,
                f.path.display(),
                size(f.length)
            );
        }
    }
    let on_disk = wanted.iter().filter(|&p| have.has(p)).count();
    let kept_here = wanted.iter().filter(|&p| kept.has(p)).count();
    let more = match kept_here {
        0 => String::new(),
        n => format!(", {n} more kept for the chosen files alone"),
    };
    let mut shown = have.clone();
    for p in kept.iter() {
        shown.set(p);
    }
    if !quiet {
        say!(
            "pieces: {on_disk} of {} on disk{more} ▕{}▏",
            wanted.count(),
            piece_map(&shown, &wanted, MAP_CELLS)
        );
    }
    let count = chosen.iter().filter(|&&c| c).count();
    let files = if count == meta.listed_files().count() {
        format!("all {count} files")
    } else {
        format!(
            "the {count} chosen file{}",
            if count == 1 { "" } else { "s" }
        )
    };
    if incomplete == 0 {
        say!("{files} complete");
        Ok(())
    } else {
        Err(Failure::error(format!(
            "{incomplete} of {files} incomplete in {}",
            data_dir.display()
        )))
    }
}
