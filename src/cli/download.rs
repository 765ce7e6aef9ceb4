//! `strand download`: fetch a torrent (from a `.torrent` file or a magnet link) into a folder,
//! resuming what is already there.
//!
//! Runs on the main thread: parses the flags, fetches a magnet's metadata, checks the disk,
//! then runs the session.

use std::io::IsTerminal;
use std::path::Path;

use strand::bitfield::Bitfield;
use strand::dht::Dht;
use strand::magnet;
use strand::metadata::{self, FetchRequest};
use strand::metainfo::Metainfo;
use strand::session;
use strand::storage::layout::Layout;
use strand::storage::resume::{self, Found};
use strand::storage::{parts, FileMap, STATE_DIR};

use super::args::{
    cores, finish, folder, load_torrent, path, seed_policy, source_arg, Files, FolderFlag,
    Selection, SessionArgs,
};
use super::disk::{refuse_foreign, Created};
use super::errors::{note, Failure};
use super::progress::{paint, TaskLine};
use super::run::run_session;
use super::units::size;

pub(crate) fn download(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let output_dir = folder(&mut args, FolderFlag::Output)?;
    let selection = Selection::parse(&mut args)?;
    let recheck = args.contains("--recheck");
    let overwrite = args.contains("--overwrite");
    let preallocate = args.contains("--preallocate");
    let sequential = args.contains("--sequential");
    let save_torrent = path(&mut args, "--save-torrent")?;
    let seed = seed_policy(&mut args)?;
    let mut peer = SessionArgs::parse(&mut args)?;
    peer.flow.sequential = sequential;
    let source = source_arg(&mut args)?;
    finish(args)?;
    // A folder that does not exist yet is made; a file in its place is refused here, before
    // anything is fetched or written under it.
    if std::fs::metadata(&output_dir).is_ok_and(|m| !m.is_dir()) {
        return Err(Failure::error(format!(
            "{}: not a folder",
            output_dir.display()
        )));
    }
    let (meta, so, dht) = if source.starts_with("magnet:") {
        // The DHT starts before the metadata phase, and goes on into the session.
        let dht = peer.dht.start(peer.listen)?;
        match fetch_magnet(&source, &mut peer, dht.as_ref()) {
            Ok((meta, so)) => (meta, so, dht),
            Err(e) => {
                super::dht::stop(dht);
                return Err(e);
            }
        }
    } else {
        (
            load_torrent(Path::new(&source), peer.quiet)?,
            Vec::new(),
            None,
        )
    };
    usable_trackers(&meta, &peer)?;
    if let Some(path) = &save_torrent {
        std::fs::write(path, meta.to_torrent_bytes())
            .map_err(|e| Failure::error(format!("cannot write {}: {e}", path.display())))?;
    }
    let chosen = selection.choose(&meta, &so)?;
    let adopted = parts::adopt(&output_dir, &meta, &chosen)?;
    if adopted > 0 && !peer.quiet {
        note!(
            "{adopted} newly chosen files start from the pieces kept in {}",
            STATE_DIR
        );
    }
    let map = FileMap::selective(&output_dir, &meta, &chosen);
    let mut line = TaskLine::new("checking", !peer.quiet && std::io::stderr().is_terminal());
    let (have, found) = resume::startup(
        &output_dir,
        &meta,
        &map,
        recheck,
        cores(),
        &mut |done, total| line.draw(u64::from(done), u64::from(total)),
    )?;
    line.clear();
    if no_source_of_peers(&meta, &peer) && !complete(&output_dir, &meta, &map, &chosen, &have) {
        return Err(Failure::error(format!(
            "no peers: the torrent names no tracker, no --peer was given and the DHT is off ({})",
            if meta.private {
                "a private torrent"
            } else {
                "--no-dht"
            }
        )));
    }
    // No file of the torrent exists yet, so none can be in the way.
    let fresh = matches!(found, Found::Fresh);
    if !peer.quiet {
        let pieces = meta.geometry.piece_count();
        // Pieces a finished selective download no longer holds whole (the session finds
        // them too, and fetches none of them).
        let more = match parts::kept(&output_dir, &meta, &map, &chosen, &have).count() {
            0 => String::new(),
            n => format!(", {n} more kept for the chosen files"),
        };
        match found {
            Found::Fresh => {}
            Found::Resumed => note!(
                "resuming: {} of {pieces} pieces already on disk{more}",
                have.count()
            ),
            Found::Checked(why) => note!(
                "checked the data on disk ({why}): {} of {pieces} pieces good{more}",
                have.count()
            ),
        }
    }
    if !overwrite && !fresh {
        refuse_foreign(&output_dir, &meta, &map, &have)?;
    }
    let created = Created::before(&output_dir, &meta, &map);
    // Pad files are never chosen; every other file chosen means a plain download.
    let all = meta.listed_files().all(|(i, _)| chosen[i]);
    let files = Files {
        verified: Some(have),
        chosen: (!all).then_some(chosen),
        preallocate,
    };
    let result = run_session(meta, output_dir, files, seed, peer, dht);
    if result.is_err() {
        created.remove_if_empty();
    }
    result
}

/// Fetches a magnet link's metadata from peers (BEP 9) and returns the checked metainfo, with
/// the link's `ws=` web seeds added, and its BEP 53 `so=` selection. The link's `x.pe` peers
/// join `peer.peers` for the download that follows.
fn fetch_magnet(
    link: &str,
    peer: &mut SessionArgs,
    dht: Option<&Dht>,
) -> Result<(Metainfo, Vec<(usize, usize)>), Failure> {
    let magnet = magnet::parse(link)?;
    // One tier per tracker keeps the link's order (a single tier would be shuffled).
    let tiers: Vec<Vec<String>> = magnet.trackers.iter().map(|t| vec![t.clone()]).collect();
    peer.peers.extend(magnet.peers.iter().copied());
    let request = FetchRequest {
        info_hash: magnet.info_hash,
        our_id: session::new_peer_id(),
        trackers: tiers.clone(),
        peers: peer.peers.clone(),
        listen_port: peer.listen.port(),
        local: strand::net::local_ip(peer.listen.ip()),
        encryption: peer.encryption,
        max_peers: peer.max_peers,
        tracker_timeout: peer.tracker_timeout,
        timeout: peer.tracker_timeout,
        dht: dht.map(Dht::link),
    };
    let show = !peer.quiet && std::io::stderr().is_terminal();
    let info = metadata::fetch(request, &mut |peers| {
        if show {
            paint(&format!("\r\x1b[2Kfetching metadata from {peers} peers"));
        }
    })?;
    if show {
        paint("\r\x1b[2K");
    }
    let mut meta = Metainfo::from_info_bytes(&info, tiers)?;
    meta.web_seeds = magnet.web_seeds;
    if !peer.quiet {
        for w in &meta.warnings {
            note!("warning: metadata: {w}");
        }
        note!(
            "metadata: {} ({} in {} files)",
            meta.name,
            size(meta.geometry.total_len()),
            meta.listed_files().count()
        );
    }
    Ok((meta, magnet.select_only))
}

/// True when only the torrent's trackers can find peers: no `--peer` was given and the DHT
/// is off (`--no-dht`, or a private torrent).
fn trackers_only(meta: &Metainfo, peer: &SessionArgs) -> bool {
    peer.peers.is_empty() && (!peer.dht.enabled || meta.private)
}

/// True when nothing can find peers: the torrent names no tracker, and only trackers could.
/// Waiting for the tracker timeout would change nothing.
fn no_source_of_peers(meta: &Metainfo, peer: &SessionArgs) -> bool {
    meta.trackers.iter().all(Vec::is_empty) && trackers_only(meta, peer)
}

/// True when every piece of the chosen files is on disk (whole, or kept for them alone):
/// the session has nothing to fetch.
fn complete(root: &Path, meta: &Metainfo, map: &FileMap, chosen: &[bool], have: &Bitfield) -> bool {
    let layout = Layout::new(&meta.files);
    let mut missing = meta
        .listed_files()
        .filter(|&(i, _)| chosen[i])
        .flat_map(|(i, _)| layout.file_pieces(i, &meta.geometry))
        .filter(|&p| !have.has(p))
        .peekable();
    if missing.peek().is_none() {
        return true;
    }
    let kept = parts::kept(root, meta, map, chosen, have);
    missing.all(|p| kept.has(p))
}

/// Warns of each tracker whose URL scheme strand cannot speak, and fails at once when no
/// tracker is left and nothing else can find peers (no `--peer`, and no DHT: turned off, or a
/// private torrent): waiting for the tracker timeout would change nothing.
fn usable_trackers(meta: &Metainfo, peer: &SessionArgs) -> Result<(), Failure> {
    let all: Vec<&String> = meta.trackers.iter().flatten().collect();
    let bad: Vec<&&String> = all.iter().filter(|u| !strand::tracker::speaks(u)).collect();
    if bad.is_empty() {
        return Ok(());
    }
    if bad.len() == all.len() && trackers_only(meta, peer) {
        return Err(Failure::error(format!(
            "no peers: tracker {}: unsupported URL scheme",
            bad[0]
        )));
    }
    for url in bad {
        note!(
            "strand: warning: tracker {url}: unsupported URL scheme (http, https or udp); skipped"
        );
    }
    Ok(())
}
