//! `strand info`: show what a torrent holds.
//!
//! Runs on the main thread; prints to stdout.

use strand::metainfo::Metainfo;

use super::args::{finish, torrent_arg};
use super::errors::{say, Failure};
use super::units::size;

pub(crate) fn info(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let torrent = torrent_arg(&mut args)?;
    finish(args)?;
    let meta = Metainfo::load(&torrent)?;
    let g = meta.geometry;
    say!("Name:         {}", meta.name);
    say!("Info hash:    {}", meta.info_hash_hex());
    say!(
        "Pieces:       {} × {}",
        g.piece_count(),
        size(u64::from(g.piece_len()))
    );
    say!(
        "Total size:   {} ({} bytes)",
        size(g.total_len()),
        g.total_len()
    );
    say!("Private:      {}", if meta.private { "yes" } else { "no" });
    if let Some(date) = meta.creation_date {
        say!("Created:      {date} (Unix time)");
    }
    if let Some(by) = &meta.created_by {
        say!("Created by:   {by}");
    }
    if let Some(comment) = &meta.comment {
        say!("Comment:      {comment}");
    }
    say!("Trackers:");
    if meta.trackers.is_empty() {
        say!("  (none)");
    }
    for (tier, urls) in meta.trackers.iter().enumerate() {
        for url in urls {
            say!("  tier {}: {url}", tier + 1);
        }
    }
    say!("Files:");
    for (i, f) in meta.files.iter().enumerate() {
        say!("{:>4}. {} ({})", i + 1, f.path.display(), size(f.length));
    }
    Ok(())
}
