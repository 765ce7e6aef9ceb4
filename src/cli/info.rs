//! `strand info`: show what a torrent holds, and its magnet link; or, for a magnet link, what
//! the link itself names.
//!
//! Runs on the main thread; prints to stdout.

use std::path::Path;

use strand::magnet::{self, Magnet};
use strand::metainfo::FileKind;

use super::args::{finish, load_torrent, quiet, source_arg};
use super::errors::{say, Failure};
use super::units::{size, utc_date};

pub(crate) fn info(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let quiet = quiet(&mut args);
    let source = source_arg(&mut args)?;
    finish(args)?;
    if source.starts_with("magnet:") {
        return link_info(&magnet::parse(&source)?, quiet);
    }
    let meta = load_torrent(Path::new(&source), quiet)?;
    let g = meta.geometry;
    let link = Magnet {
        info_hash: meta.info_hash,
        name: Some(meta.name.clone()),
        trackers: meta.trackers.iter().flatten().cloned().collect(),
        peers: Vec::new(),
        select_only: Vec::new(),
        web_seeds: meta.web_seeds.clone(),
    };
    say!("Name:         {}", meta.name);
    say!("Info hash:    {}", meta.info_hash_hex());
    say!("Version:      {}", meta.version);
    say!("Magnet:       {}", link.to_link());
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
        say!("Created:      {} ({date})", utc_date(date));
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
    if !meta.web_seeds.is_empty() {
        say!("Web seeds:");
        for url in &meta.web_seeds {
            say!("  {url}");
        }
    }
    if quiet {
        return Ok(());
    }
    // Pad files (BEP 47) are left out: they are never on disk, and `--only` numbers the
    // files as listed here.
    let pads = meta.files.iter().filter(|f| f.is_padding()).count();
    match pads {
        0 => say!("Files:"),
        1 => say!("Files:        (and 1 pad file, not listed, never on disk)"),
        n => say!("Files:        (and {n} pad files, not listed, never on disk)"),
    }
    for (n, (_, f)) in meta.listed_files().enumerate() {
        let note = match f.kind {
            FileKind::Symlink => ", symbolic link, not created",
            FileKind::Data | FileKind::Padding => "",
        };
        say!(
            "{:>4}. {} ({}{note})",
            n + 1,
            f.path.display(),
            size(f.length)
        );
    }
    Ok(())
}

/// What a magnet link names; the files and sizes come only with the metadata, from peers
/// (said unless `quiet`).
fn link_info(m: &Magnet, quiet: bool) -> Result<(), Failure> {
    let hex: String = m.info_hash.iter().map(|b| format!("{b:02x}")).collect();
    say!(
        "Name:         {}",
        m.name.as_deref().unwrap_or("(not in the link)")
    );
    say!("Info hash:    {hex}");
    say!("Trackers:");
    if m.trackers.is_empty() {
        say!("  (none)");
    }
    for url in &m.trackers {
        say!("  {url}");
    }
    if !m.peers.is_empty() {
        say!("Peers:");
        for peer in &m.peers {
            say!("  {peer}");
        }
    }
    if !quiet {
        say!("Files:        not in a magnet link; `strand download` fetches them from peers");
    }
    Ok(())
}
