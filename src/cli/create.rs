//! `strand create`: make a `.torrent` of a file or folder.
//!
//! Runs on the main thread (the hashing itself on one worker thread per core).

use std::fs::OpenOptions;
use std::io::{ErrorKind, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use strand::create::CreateOptions;
use strand::metainfo::Metainfo;

use super::args::{cores, finish, free_arg, path, quiet, value};
use super::errors::{note, usage_err, Failure};
use super::progress::TaskLine;
use super::units::parse_size;

pub(crate) fn create(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let trackers: Vec<String> = args
        .values_from_str(["-t", "--tracker"])
        .map_err(usage_err)?;
    let output = path(&mut args, ["-o", "--output"])?;
    let piece_length = value(
        &mut args,
        "--piece-length",
        "a size in bytes, with K or M for KiB or MiB (e.g. 256K)",
        |s| parse_size(s).and_then(|n| u32::try_from(n).ok()),
    )?;
    let private = args.contains("--private");
    let overwrite = args.contains(["-f", "--overwrite"]);
    let comment: Option<String> = args.opt_value_from_str("--comment").map_err(usage_err)?;
    let quiet = quiet(&mut args);
    let path: PathBuf = free_arg(&mut args, "missing the file or folder to share")?;
    finish(args)?;
    // Without a tracker, peers find each other over the DHT, which private torrents
    // (BEP 27) may not use.
    if trackers.is_empty() && private {
        return Err(Failure::usage(
            "a --private torrent needs a tracker: give one with -t URL",
        ));
    }
    for url in &trackers {
        check_tracker(url)?;
    }
    // `-o` names the torrent file, or a folder to put NAME.torrent in.
    let (into, named) = match output {
        Some(dir) if dir.is_dir() => (dir, None),
        named => (PathBuf::new(), named),
    };
    // A named output in the way is refused before the hashing, which may take long.
    if let Some(out) = named.as_deref().filter(|_| !overwrite) {
        refuse_existing(out)?;
    }
    // As mktorrent and transmission-create do; a clock before 1970 leaves the date out.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok();
    let opts = CreateOptions {
        trackers,
        piece_length,
        private,
        comment,
        creation_date: now.and_then(|d| i64::try_from(d.as_secs()).ok()),
        threads: cores(),
    };
    let mut line = TaskLine::new("hashing", !quiet && std::io::stderr().is_terminal());
    let bytes = strand::create::create(&path, &opts, &mut |done, total| line.draw(done, total))?;
    line.clear();
    let out = match named {
        Some(out) => out,
        None => {
            let meta = Metainfo::from_bytes(&bytes)?;
            into.join(format!("{}.torrent", meta.name))
        }
    };
    let mut file = OpenOptions::new();
    file.write(true);
    if overwrite {
        file.create(true).truncate(true);
    } else {
        refuse_existing(&out)?;
        file.create_new(true);
    }
    file.open(&out)
        .and_then(|mut f| f.write_all(&bytes))
        .map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => exists(&out),
            _ => Failure::error(format!("cannot write {}: {e}", out.display())),
        })?;
    // The one-line result: shown under `--quiet` too.
    note!("wrote {}", out.display());
    Ok(())
}

/// Fails, naming `out`, when something is already there.
fn refuse_existing(out: &Path) -> Result<(), Failure> {
    if out.symlink_metadata().is_ok() {
        return Err(exists(out));
    }
    Ok(())
}

fn exists(out: &Path) -> Failure {
    Failure::error(format!(
        "{} already exists; give --overwrite (or -f) to replace it",
        out.display()
    ))
}

/// Refuses a `-t` that is not a URL (`SCHEME://HOST…`); warns of one strand cannot announce
/// to, which other clients may (`wss://`, say), and keeps it.
fn check_tracker(url: &str) -> Result<(), Failure> {
    let is_url = url.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !rest.is_empty()
    });
    if !is_url {
        return Err(Failure::usage(format!(
            "-t {url}: not a tracker URL (e.g. http://HOST:PORT/announce or udp://HOST:PORT)"
        )));
    }
    if !strand::tracker::speaks(url) {
        note!(
            "strand: warning: tracker {url}: strand announces only to http, https and udp trackers"
        );
    }
    Ok(())
}
