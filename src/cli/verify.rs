//! `strand verify`: hash the data in a folder and say, file by file, what is complete.
//!
//! Runs on the main thread (the hashing itself on one worker thread per core).

use std::io::IsTerminal;

use strand::metainfo::Metainfo;
use strand::storage::{check, FileMap};

use super::args::{cores, data_dir, finish, quiet, torrent_arg};
use super::errors::{say, Failure};
use super::progress::TaskLine;
use super::units::size;

pub(crate) fn verify(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let data_dir = data_dir(&mut args)?;
    let quiet = quiet(&mut args);
    let torrent = torrent_arg(&mut args)?;
    finish(args)?;
    let meta = Metainfo::load(&torrent)?;
    let map = FileMap::plain(&data_dir, &meta);
    let mut line = TaskLine::new("checking", !quiet && std::io::stderr().is_terminal());
    let have = check::check(&map, &meta, cores(), &mut |done, total| {
        line.draw(u64::from(done), u64::from(total));
    })?;
    line.clear();
    let g = meta.geometry;
    let mut start = 0u64;
    let mut incomplete = 0;
    for (i, f) in meta.files.iter().enumerate() {
        let end = start + f.length;
        // Bytes of this file inside pieces that are missing or bad.
        let mut missing = 0u64;
        if f.length > 0 {
            let piece_len = u64::from(g.piece_len());
            for p in start / piece_len..=(end - 1) / piece_len {
                if !have.has(p as usize) {
                    let p_start = p * piece_len;
                    let p_end = p_start + u64::from(g.piece_size(p as u32));
                    missing += p_end.min(end) - p_start.max(start);
                }
            }
        }
        let state = if missing == 0 {
            "complete".to_string()
        } else {
            incomplete += 1;
            format!("{:.1}% missing", missing as f64 * 100.0 / f.length as f64)
        };
        say!(
            "{:>4}. {} ({}): {state}",
            i + 1,
            f.path.display(),
            size(f.length)
        );
        start = end;
    }
    if incomplete == 0 {
        say!("all {} files complete", meta.files.len());
        Ok(())
    } else {
        Err(Failure::error(format!(
            "{incomplete} of {} files incomplete in {}",
            meta.files.len(),
            data_dir.display()
        )))
    }
}
