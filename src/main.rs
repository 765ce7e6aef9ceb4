//! The `strand` command: parses the command line, runs a subcommand, draws the progress line.
//!
//! Runs on the program's main thread, which becomes the session's main loop during a download.
//! Every error ends here as one line on stderr and a non-zero exit status.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crossbeam_channel::Receiver;
use strand::bitfield::Bitfield;
use strand::create::CreateOptions;
use strand::metadata::{self, FetchRequest};
use strand::metainfo::Metainfo;
use strand::session::{self, Options, Progress, SeedPolicy, Summary};
use strand::storage::resume::{self, Found};
use strand::storage::{check, FileMap};
use strand::tracker_server::{self as server, ServerConfig};
use strand::{magnet, select};

const HELP: &str = "\
strand — a thread-per-peer BitTorrent client

USAGE:
    strand download FILE.torrent [OPTIONS]   fetch every file of a torrent
    strand download 'magnet:?xt=…' [OPTIONS] the same, from a magnet link
    strand seed FILE.torrent [-d DIR]        check the data in DIR, then seed it
    strand verify FILE.torrent [-d DIR]      check the data in DIR, file by file
    strand create PATH -t URL [OPTIONS]      make a torrent of a file or folder
    strand info FILE.torrent                 show what a torrent holds
    strand tracker [--port N] [--bind ADDR]  run a small HTTP and UDP tracker (until Ctrl-C)

DOWNLOAD OPTIONS:
    -o, --output DIR      folder to write the torrent's files under [default: .]
    --only LIST           download only these files, numbered as `strand info`
                          shows them: e.g. 1,3-5
    --exclude GLOB        skip files whose path matches GLOB (* matches any run of
                          characters, / included; ? one character); repeatable
    --recheck             hash the data already in DIR instead of trusting the
                          resume file (DIR/.strand/HASH.resume)
    --save-torrent FILE   also write the torrent's metainfo to FILE (for a magnet
                          link: once its metadata has been fetched from peers)
    --preallocate         reserve the files' full size on disk at start, and fail at
                          once if the space is not there [default: sparse files]
    --seed                keep seeding after the download, until Ctrl-C
    --seed-ratio R        keep seeding until uploaded = R × the torrent's size
    --seed-time MINUTES   keep seeding for this long after the download
                          (with both, whichever comes first; without either,
                          strand exits once the files are complete)

SEED AND VERIFY OPTIONS:
    -d, --data DIR        folder holding the torrent's files [default: .]
    --seed-ratio R, --seed-time MINUTES
                          stop seeding at that ratio or after that long
                          [default: seed until Ctrl-C]

CREATE OPTIONS:
    -t, --tracker URL     announce URL; repeat for backups (one tier each)
    -o, --output FILE     where to write the torrent [default: NAME.torrent]
    --piece-length N      piece size in bytes, a power of two from 16 KiB to
                          16 MiB [default: chosen for 1,000–2,000 pieces]
    --private             mark the torrent private (trackers only, no DHT/PEX)
    --comment TEXT        a comment stored in the torrent

PEER OPTIONS (download and seed):
    --port N              port to accept peers on; the next free port is used if
                          it is taken [default: 6881]
    --bind ADDR           address to accept peers on [default: 0.0.0.0]
    --peer ADDR           also dial this peer (IP:PORT); may be given more than once
    --max-peers N         most peer connections at once; more are refused [default: 100]
    --tracker-timeout S   seconds a tracker round may take; with no peer and no
                          tracker answering for this long, strand gives up [default: 60]

TRACKER OPTIONS:
    --port N              port for `strand tracker`, HTTP and UDP [default: 6969]
    --bind ADDR           address for `strand tracker` [default: 127.0.0.1; use
                          0.0.0.0 to serve other machines]

GENERAL:
    -q, --quiet           no progress line and no summary (every command)
    -h, --help            show this help
    -V, --version         show the version

Logging goes to stderr through RUST_LOG, e.g. RUST_LOG=strand=debug;
RUST_LOG=strand=trace prints every wire message sent and received, per peer.
A download run again with the same -o continues where it stopped: pieces recorded in the
resume file (or found by hashing, when the files changed since) are not fetched again.
Ctrl-C stops cleanly: the trackers hear `stopped`, the writer finishes, the summary is shown.
Exit status: 0 when every piece is verified and written, 1 on an error, 2 on bad usage,
130 when stopped by Ctrl-C.
";

/// Exit status for an error.
const EXIT_ERROR: u8 = 1;
/// Exit status for a bad command line.
const EXIT_USAGE: u8 = 2;
/// Exit status after Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

/// A failure to report: one line, and the exit status.
struct Failure {
    message: String,
    status: u8,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: EXIT_USAGE,
        }
    }

    fn error(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: EXIT_ERROR,
        }
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::error(e.to_string())
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_micros()
        .init();
    match run(pico_args::Arguments::from_env()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("strand: {}", f.message);
            if f.status == EXIT_USAGE {
                eprintln!("Try 'strand --help'.");
            }
            ExitCode::from(f.status)
        }
    }
}

/// Caps glibc's malloc arenas at one per core. By default glibc gives threads that contend
/// for malloc arenas of their own, up to eight per core, and keeps each arena's freed pages;
/// with a thread per connection, new peers keep touching fresh arenas. Measured with
/// `make soak` (a seed under churn, 2 cores): anonymous memory rose from 0.4 to 3.2 MiB over
/// 13 minutes before levelling off; with two arenas it levelled off at 1.6 MiB within 3
/// minutes. A 512 MiB loopback download was not slower (median of 10 interleaved runs:
/// 1.38 s and 0.96 CPU seconds, against 1.65 s and 1.25 without the cap).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cores = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only changes a malloc tuning parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, cores);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn run(mut args: pico_args::Arguments) -> Result<(), Failure> {
    if args.contains(["-h", "--help"]) {
        print!("{HELP}");
        return Ok(());
    }
    if args.contains(["-V", "--version"]) {
        println!("strand {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    match args
        .subcommand()
        .map_err(|e| Failure::usage(e.to_string()))?
    {
        Some(cmd) if cmd == "download" => download(args),
        Some(cmd) if cmd == "seed" => seed(args),
        Some(cmd) if cmd == "verify" => verify(args),
        Some(cmd) if cmd == "create" => create(args),
        Some(cmd) if cmd == "info" => info(args),
        Some(cmd) if cmd == "tracker" => tracker(args),
        Some(cmd) => Err(Failure::usage(format!("unknown command '{cmd}'"))),
        None => Err(Failure::usage("no command given")),
    }
}

/// Fails on anything left on the command line: pico-args ignores unknown flags otherwise.
fn finish(args: pico_args::Arguments) -> Result<(), Failure> {
    let rest = args.finish();
    match rest.first() {
        None => Ok(()),
        Some(arg) => Err(Failure::usage(format!(
            "unexpected argument '{}'",
            arg.to_string_lossy()
        ))),
    }
}

fn usage_err(e: pico_args::Error) -> Failure {
    Failure::usage(e.to_string())
}

fn torrent_arg(args: &mut pico_args::Arguments) -> Result<PathBuf, Failure> {
    let path: Option<PathBuf> = args.opt_free_from_str().map_err(usage_err)?;
    path.ok_or_else(|| Failure::usage("missing the .torrent file"))
}

/// Options shared by `download` and `seed`: how we meet peers.
struct PeerArgs {
    listen: SocketAddr,
    tracker_timeout: Duration,
    peers: Vec<SocketAddr>,
    max_peers: usize,
    quiet: bool,
}

fn peer_args(args: &mut pico_args::Arguments) -> Result<PeerArgs, Failure> {
    let port: u16 = args
        .opt_value_from_str("--port")
        .map_err(usage_err)?
        .unwrap_or(6881);
    let bind: IpAddr = args
        .opt_value_from_str("--bind")
        .map_err(usage_err)?
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let peers: Vec<SocketAddr> = args.values_from_str("--peer").map_err(usage_err)?;
    let max_peers: usize = args
        .opt_value_from_str("--max-peers")
        .map_err(usage_err)?
        .unwrap_or(100);
    if max_peers == 0 {
        return Err(Failure::usage("--max-peers must be at least 1"));
    }
    let timeout: f64 = args
        .opt_value_from_str("--tracker-timeout")
        .map_err(usage_err)?
        .unwrap_or(60.0);
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(Failure::usage(
            "--tracker-timeout must be a number of seconds above 0",
        ));
    }
    Ok(PeerArgs {
        listen: SocketAddr::new(bind, port),
        tracker_timeout: Duration::from_secs_f64(timeout),
        peers,
        max_peers,
        quiet: args.contains(["-q", "--quiet"]),
    })
}

fn seed_policy(args: &mut pico_args::Arguments) -> Result<SeedPolicy, Failure> {
    let forever = args.contains("--seed");
    let ratio: Option<f64> = args.opt_value_from_str("--seed-ratio").map_err(usage_err)?;
    let minutes: Option<f64> = args.opt_value_from_str("--seed-time").map_err(usage_err)?;
    if ratio.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err(Failure::usage("--seed-ratio must be a number above 0"));
    }
    if minutes.is_some_and(|m| !(m.is_finite() && m >= 0.0)) {
        return Err(Failure::usage(
            "--seed-time must be a number of minutes, 0 or more",
        ));
    }
    Ok(match (ratio, minutes) {
        (None, None) if forever => SeedPolicy::Forever,
        (None, None) => SeedPolicy::No,
        (ratio, minutes) => SeedPolicy::Until {
            ratio,
            time: minutes.map(|m| Duration::from_secs_f64(m * 60.0)),
        },
    })
}

/// A channel that receives a message when the user presses Ctrl-C.
fn ctrl_c() -> Result<Receiver<()>, Failure> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    })
    .map_err(|e| Failure::error(format!("cannot catch Ctrl-C: {e}")))?;
    Ok(rx)
}

/// Worker threads for hashing: one per core.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn seed(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let data_dir: PathBuf = args
        .opt_value_from_str(["-d", "--data"])
        .map_err(usage_err)?
        .unwrap_or_else(|| PathBuf::from("."));
    let policy = match seed_policy(&mut args)? {
        SeedPolicy::No => SeedPolicy::Forever,
        until => until,
    };
    let peer = peer_args(&mut args)?;
    let torrent = torrent_arg(&mut args)?;
    finish(args)?;
    let meta = Metainfo::load(&torrent)?;
    let show = !peer.quiet && std::io::stderr().is_terminal();
    let mut line = TaskLine::new("checking", show);
    let map = FileMap::plain(&data_dir, &meta);
    let have = check::check(&map, &meta, cores(), &mut |done, total| {
        line.draw(u64::from(done), u64::from(total));
    })?;
    line.clear();
    let pieces = meta.geometry.piece_count() as usize;
    if !peer.quiet {
        if have.is_full() {
            eprintln!("all {pieces} pieces present and verified; seeding");
        } else {
            eprintln!(
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
    run_session(meta, data_dir, files, policy, peer)
}

fn verify(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let data_dir: PathBuf = args
        .opt_value_from_str(["-d", "--data"])
        .map_err(usage_err)?
        .unwrap_or_else(|| PathBuf::from("."));
    let quiet = args.contains(["-q", "--quiet"]);
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
        println!(
            "{:>4}. {} ({}): {state}",
            i + 1,
            f.path.display(),
            size(f.length)
        );
        start = end;
    }
    if incomplete == 0 {
        println!("all {} files complete", meta.files.len());
        Ok(())
    } else {
        Err(Failure::error(format!(
            "{incomplete} of {} files incomplete in {}",
            meta.files.len(),
            data_dir.display()
        )))
    }
}

fn create(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let trackers: Vec<String> = args
        .values_from_str(["-t", "--tracker"])
        .map_err(usage_err)?;
    let output: Option<PathBuf> = args
        .opt_value_from_str(["-o", "--output"])
        .map_err(usage_err)?;
    let piece_length: Option<u32> = args
        .opt_value_from_str("--piece-length")
        .map_err(usage_err)?;
    let private = args.contains("--private");
    let comment: Option<String> = args.opt_value_from_str("--comment").map_err(usage_err)?;
    let quiet = args.contains(["-q", "--quiet"]);
    let path: PathBuf = args
        .opt_free_from_str()
        .map_err(usage_err)?
        .ok_or_else(|| Failure::usage("missing the file or folder to share"))?;
    finish(args)?;
    if trackers.is_empty() {
        return Err(Failure::usage(
            "give at least one tracker with -t URL (peers find each other through it)",
        ));
    }
    let opts = CreateOptions {
        trackers,
        piece_length,
        private,
        comment,
        threads: cores(),
    };
    let mut line = TaskLine::new("hashing", !quiet && std::io::stderr().is_terminal());
    let bytes = strand::create::create(&path, &opts, &mut |done, total| line.draw(done, total))?;
    line.clear();
    let out = match output {
        Some(out) => out,
        None => {
            let meta = Metainfo::from_bytes(&bytes)?;
            PathBuf::from(format!("{}.torrent", meta.name))
        }
    };
    std::fs::write(&out, &bytes)
        .map_err(|e| Failure::error(format!("cannot write {}: {e}", out.display())))?;
    if !quiet {
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

fn download(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let output_dir: PathBuf = args
        .opt_value_from_str(["-o", "--output"])
        .map_err(usage_err)?
        .unwrap_or_else(|| PathBuf::from("."));
    let only: Option<String> = args.opt_value_from_str("--only").map_err(usage_err)?;
    let exclude: Vec<String> = args.values_from_str("--exclude").map_err(usage_err)?;
    let recheck = args.contains("--recheck");
    let preallocate = args.contains("--preallocate");
    let save_torrent: Option<PathBuf> = args
        .opt_value_from_str("--save-torrent")
        .map_err(usage_err)?;
    let seed = seed_policy(&mut args)?;
    let mut peer = peer_args(&mut args)?;
    let source: String = args
        .opt_free_from_str()
        .map_err(usage_err)?
        .ok_or_else(|| Failure::usage("missing the .torrent file or magnet link"))?;
    finish(args)?;
    let meta = if source.starts_with("magnet:") {
        fetch_magnet(&source, &mut peer)?
    } else {
        Metainfo::load(Path::new(&source))?
    };
    if let Some(path) = &save_torrent {
        std::fs::write(path, meta.to_torrent_bytes())
            .map_err(|e| Failure::error(format!("cannot write {}: {e}", path.display())))?;
    }
    let paths: Vec<String> = meta
        .files
        .iter()
        .map(|f| f.path.to_string_lossy().into_owned())
        .collect();
    let chosen = select::choose(&paths, only.as_deref(), &exclude)
        .map_err(|e| Failure::usage(e.to_string()))?;
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
    if !peer.quiet {
        let pieces = meta.geometry.piece_count();
        match found {
            Found::Fresh => {}
            Found::Resumed => eprintln!(
                "resuming: {} of {pieces} pieces already on disk",
                have.count()
            ),
            Found::Checked(why) => eprintln!(
                "checked the data on disk ({why}): {} of {pieces} pieces good",
                have.count()
            ),
        }
    }
    let all = chosen.iter().all(|&c| c);
    let files = Files {
        verified: Some(have),
        chosen: (!all).then_some(chosen),
        preallocate,
    };
    run_session(meta, output_dir, files, seed, peer)
}

/// What a session starts from on disk.
struct Files {
    verified: Option<Bitfield>,
    chosen: Option<Vec<bool>>,
    preallocate: bool,
}

/// Fetches a magnet link's metadata from peers (BEP 9) and returns the checked metainfo. The
/// link's `x.pe` peers join `peer.peers` for the download that follows.
fn fetch_magnet(link: &str, peer: &mut PeerArgs) -> Result<Metainfo, Failure> {
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
        max_peers: peer.max_peers,
        tracker_timeout: peer.tracker_timeout,
        timeout: peer.tracker_timeout,
    };
    let show = !peer.quiet && std::io::stderr().is_terminal();
    let info = metadata::fetch(request, &mut |peers| {
        if show {
            eprint!("\r\x1b[2Kfetching metadata from {peers} peers");
        }
    })?;
    if show {
        eprint!("\r\x1b[2K");
    }
    let meta = Metainfo::from_info_bytes(&info, tiers)?;
    if !peer.quiet {
        eprintln!(
            "metadata: {} ({} in {} files)",
            meta.name,
            size(meta.geometry.total_len()),
            meta.files.len()
        );
    }
    Ok(meta)
}

/// Runs a session with a progress line, then prints the summary.
fn run_session(
    meta: Metainfo,
    output_dir: PathBuf,
    files: Files,
    seed: SeedPolicy,
    peer: PeerArgs,
) -> Result<(), Failure> {
    let opts = Options {
        output_dir,
        peers: peer.peers,
        max_peers: peer.max_peers,
        listen: Some(peer.listen),
        verified: files.verified,
        chosen: files.chosen,
        preallocate: files.preallocate,
        seed,
        stop: Some(ctrl_c()?),
        tracker_timeout: peer.tracker_timeout,
    };
    let show_progress = !peer.quiet && std::io::stderr().is_terminal();
    let mut line = ProgressLine::default();
    let summary = session::download(meta, opts, &mut |p| {
        if show_progress {
            line.draw(p);
        }
    })?;
    if show_progress {
        line.clear();
    }
    if !peer.quiet {
        eprintln!("{}", summary_line(&summary));
    }
    if summary.interrupted {
        return Err(Failure {
            message: "stopped by Ctrl-C".into(),
            status: EXIT_INTERRUPTED,
        });
    }
    Ok(())
}

fn info(mut args: pico_args::Arguments) -> Result<(), Failure> {
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

fn tracker(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let port: u16 = args
        .opt_value_from_str("--port")
        .map_err(usage_err)?
        .unwrap_or(server::DEFAULT_PORT);
    let bind: IpAddr = args
        .opt_value_from_str("--bind")
        .map_err(usage_err)?
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    finish(args)?;
    let addr = SocketAddr::new(bind, port);
    let tracker = server::start(ServerConfig::new(addr))
        .map_err(|e| Failure::error(format!("cannot start the tracker on {addr}: {e}")))?;
    eprintln!(
        "strand tracker: announce URLs {} and {}",
        tracker.announce_url(),
        tracker.udp_announce_url()
    );
    tracker.wait();
    Ok(())
}

/// Human size with binary units: 1.5 MiB.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn summary_line(s: &Summary) -> String {
    let secs = s.elapsed.as_secs_f64().max(0.001);
    let rate = size((s.received_bytes as f64 / secs) as u64);
    let up = size(s.uploaded_bytes);
    if s.bytes == s.total_bytes {
        format!(
            "{} complete in {secs:.1} s (received {} at {rate}/s), uploaded {up}",
            size(s.total_bytes),
            size(s.received_bytes)
        )
    } else {
        format!(
            "{} of {} verified after {secs:.1} s (received {} at {rate}/s), uploaded {up}",
            size(s.bytes),
            size(s.total_bytes),
            size(s.received_bytes)
        )
    }
}

/// A progress line for local work (hashing, checking), redrawn at most 10 times a second.
struct TaskLine {
    what: &'static str,
    show: bool,
    last: Option<std::time::Instant>,
}

impl TaskLine {
    fn new(what: &'static str, show: bool) -> TaskLine {
        TaskLine {
            what,
            show,
            last: None,
        }
    }

    fn draw(&mut self, done: u64, total: u64) {
        let due = self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if !self.show || !(due || done == total) {
            return;
        }
        self.last = Some(std::time::Instant::now());
        let percent = if total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / total as f64
        };
        eprint!("\r\x1b[2K{} {percent:5.1}%", self.what);
    }

    fn clear(&mut self) {
        if self.show && self.last.is_some() {
            eprint!("\r\x1b[2K");
        }
    }
}

/// The live progress line, redrawn in place on stderr.
#[derive(Default)]
struct ProgressLine {
    drawn: bool,
}

impl ProgressLine {
    fn draw(&mut self, p: &Progress) {
        let percent = if p.total_bytes == 0 {
            100.0
        } else {
            p.verified_bytes as f64 * 100.0 / p.total_bytes as f64
        };
        let left = p.total_bytes - p.verified_bytes;
        let eta = if p.download_rate >= 1.0 {
            duration(Duration::from_secs_f64(left as f64 / p.download_rate))
        } else {
            "--:--".to_string()
        };
        let state = if left == 0 {
            "seeding".to_string()
        } else {
            format!(
                "{percent:5.1}%  ↓ {}/s  ETA {eta}",
                size(p.download_rate as u64)
            )
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{state}  ↑ {}/s ({} sent)  peers {}/{}",
            size(p.upload_rate as u64),
            size(p.uploaded_bytes),
            p.peers_connected,
            p.peers_known
        );
        let _ = err.flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }
}
