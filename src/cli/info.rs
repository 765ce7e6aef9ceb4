//! `strand info`: show what a torrent holds.
//!
//! Runs on the main thread; prints to stdout.

use strand::metainfo::Metainfo;

use super::args::{finish, torrent_arg};
use super::errors::Failure;
use super::units::size;

pub(crate) fn info(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let torrent = torrent_arg(&mut args)?;
    finish(args)?;
    let meta = Metainfo::load(&torrent)?;
    let g = meta.geometry;
    println!("Name:         {}", meta.name);
    println!("Info hash:    {}", meta.info_hash_hex());
    println!(
        "Pieces:       {} × {}",
        g.piece_count(),
        size(u64::from(g.piece_len()))
    );
    println!(
        "Total size:   {} ({} bytes)",
        size(g.total_len()),
        g.total_len()
    );
    println!("Private:      {}", if meta.private { "yes" } else { "no" });
    if let Some(date) = meta.creation_date {
        println!("Created:      {date} (Unix time)");
    }
    if let Some(by) = &meta.created_by {
        println!("Created by:   {by}");
    }
    if let Some(comment) = &meta.comment {
        println!("Comment:      {comment}");
    }
    println!("Trackers:");
    if meta.trackers.is_empty() {
        println!("  (none)");
    }
    for (tier, urls) in meta.trackers.iter().enumerate() {
        for url in urls {
            println!("  tier {}: {url}", tier + 1);
        }
    }
    println!("Files:");
    for (i, f) in meta.files.iter().enumerate() {
        println!("{:>4}. {} ({})", i + 1, f.path.display(), size(f.length));
    }
    Ok(())
}
