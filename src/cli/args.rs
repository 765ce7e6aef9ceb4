//! Parsing helpers shared by the subcommands, and the one place where the flags every session
//! takes (`download` and `seed`: how we meet peers) are parsed and turned into
//! [`session::Options`].
//!
//! Runs on the main thread before any other thread starts. To add a session flag: a field in
//! [`SessionArgs`], its parsing in [`SessionArgs::parse`], its use in [`SessionArgs::options`],
//! and a line in `help::SESSION_OPTIONS`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::Receiver;
use strand::bitfield::Bitfield;
use strand::dht::DhtLink;
use strand::metainfo::Metainfo;
use strand::peer::mse::Encryption;
use strand::select;
use strand::session::{Flow, Options, SeedPolicy};

use super::dht::DhtArgs;
use super::errors::{note, usage_err, Failure};
use super::units::parse_rate;

/// Fails on anything left on the command line: pico-args ignores unknown flags otherwise.
pub(crate) fn finish(args: pico_args::Arguments) -> Result<(), Failure> {
    let rest = args.finish();
    match rest.first() {
        None => Ok(()),
        Some(arg) => Err(Failure::usage(format!(
            "unexpected argument '{}'",
            arg.to_string_lossy()
        ))),
    }
}

/// The value of `flag`, read by `parse`; a value `parse` refuses is a usage error that names
/// the flag and what it `accepts` ("a whole number", ...).
pub(crate) fn value<T>(
    args: &mut pico_args::Arguments,
    flag: &'static str,
    accepts: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, Failure> {
    let raw: Option<String> = args.opt_value_from_str(flag).map_err(usage_err)?;
    raw.map(|s| parse(&s).ok_or_else(|| bad_value(flag, accepts, &s)))
        .transpose()
}

/// Every value of a repeatable `flag`, each read as [`value`] reads one.
pub(crate) fn values<T>(
    args: &mut pico_args::Arguments,
    flag: &'static str,
    accepts: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, Failure> {
    let raw: Vec<String> = args.values_from_str(flag).map_err(usage_err)?;
    raw.iter()
        .map(|s| parse(s).ok_or_else(|| bad_value(flag, accepts, s)))
        .collect()
}

fn bad_value(flag: &str, accepts: &str, got: &str) -> Failure {
    Failure::usage(format!("{flag} takes {accepts}, not '{got}'"))
}

/// `s` as a `T` through its `FromStr`.
pub(crate) fn parsed<T: std::str::FromStr>(s: &str) -> Option<T> {
    s.parse().ok()
}

/// A number above 0 (and not infinite).
fn positive(s: &str) -> Option<f64> {
    parsed::<f64>(s).filter(|v| v.is_finite() && *v > 0.0)
}

/// A peer address: `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT` (looked up, first address).
fn peer_addr(s: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    s.parse().ok().or_else(|| s.to_socket_addrs().ok()?.next())
}

/// The `.torrent` file given as the free argument.
pub(crate) fn torrent_arg(args: &mut pico_args::Arguments) -> Result<PathBuf, Failure> {
    free_arg(args, "missing the .torrent file")
}

/// The free argument of `download` and `info`: a `.torrent` file or a magnet link. A bare
/// info hash (40 hex digits, or 64 for a v2 hash) that names no file is taken as the magnet
/// link `magnet:?xt=urn:btih:HASH` (`urn:btmh:1220HASH` for v2).
pub(crate) fn source_arg(args: &mut pico_args::Arguments) -> Result<String, Failure> {
    let source: String = free_arg(args, "missing the .torrent file or magnet link")?;
    let hex = source.bytes().all(|b| b.is_ascii_hexdigit());
    let link = match source.len() {
        40 if hex => format!("magnet:?xt=urn:btih:{source}"),
        64 if hex => format!("magnet:?xt=urn:btmh:1220{source}"),
        _ => return Ok(source),
    };
    Ok(if Path::new(&source).exists() {
        source
    } else {
        link
    })
}

/// The free argument, read as a `T`; its absence is a usage error saying what is `missing`.
pub(crate) fn free_arg<T>(args: &mut pico_args::Arguments, missing: &str) -> Result<T, Failure>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let value: Option<T> = args.opt_free_from_str().map_err(usage_err)?;
    value.ok_or_else(|| Failure::usage(missing))
}

/// The path given with `keys` (one flag, or its short and long spellings), if given.
pub(crate) fn path(
    args: &mut pico_args::Arguments,
    keys: impl Into<pico_args::Keys>,
) -> Result<Option<PathBuf>, Failure> {
    args.opt_value_from_str(keys).map_err(usage_err)
}

/// Which spelling of the folder flag a command documents: `-o, --output` (`download`) or
/// `-d, --data` (`seed`, `verify`). Every command accepts the other as an alias.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FolderFlag {
    Output,
    Data,
}

/// The folder a command works in, given as `-o, --output DIR` or `-d, --data DIR` (either
/// spelling, once) [default: .].
pub(crate) fn folder(
    args: &mut pico_args::Arguments,
    canonical: FolderFlag,
) -> Result<PathBuf, Failure> {
    let output = path(args, ["-o", "--output"])?;
    let data = path(args, ["-d", "--data"])?;
    let flag = match canonical {
        FolderFlag::Output => "-o",
        FolderFlag::Data => "-d",
    };
    match (output, data) {
        (Some(_), Some(_)) => Err(Failure::usage(format!(
            "-o and -d both name the folder: give it once, with {flag} DIR"
        ))),
        (Some(dir), None) | (None, Some(dir)) => Ok(dir),
        (None, None) => Ok(PathBuf::from(".")),
    }
}

/// Fails with one line naming `dir` unless it is an existing folder.
pub(crate) fn existing_folder(dir: &Path) -> Result<(), Failure> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Failure::error(format!("{}: not a folder", dir.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Failure::error(format!("{}: no such folder", dir.display())))
        }
        Err(e) => Err(Failure::error(format!("{}: {e}", dir.display()))),
    }
}

/// `-q, --quiet`, taken by every command.
pub(crate) fn quiet(args: &mut pico_args::Arguments) -> bool {
    args.contains(["-q", "--quiet"])
}

/// `--only LIST` and `--exclude GLOB` (repeatable), of `download` and `verify`.
pub(crate) struct Selection {
    only: Option<String>,
    exclude: Vec<String>,
}

impl Selection {
    pub(crate) fn parse(args: &mut pico_args::Arguments) -> Result<Selection, Failure> {
        Ok(Selection {
            only: args.opt_value_from_str("--only").map_err(usage_err)?,
            exclude: args.values_from_str("--exclude").map_err(usage_err)?,
        })
    }

    /// Which files of `meta` are chosen, one flag per file. Files are chosen among those
    /// `info` lists (pad files are never chosen). A magnet link's BEP 53 `so` ranges count as
    /// `--only` when `--only` is not given.
    pub(crate) fn choose(
        &self,
        meta: &Metainfo,
        so: &[(usize, usize)],
    ) -> Result<Vec<bool>, Failure> {
        let usage = |e: select::SelectError| Failure::usage(e.to_string());
        let only = match &self.only {
            None if !so.is_empty() => {
                let listed: Vec<usize> = meta.listed_files().map(|(i, _)| i).collect();
                Some(select::only_from_so(so, &listed).map_err(usage)?)
            }
            only => only.clone(),
        };
        let paths: Vec<String> = meta
            .listed_files()
            .map(|(_, f)| f.path.to_string_lossy().into_owned())
            .collect();
        for pattern in select::unmatched(&paths, &self.exclude) {
            note!("strand: warning: --exclude '{pattern}' matches no file of the torrent");
        }
        let listed = select::choose(&paths, only.as_deref(), &self.exclude).map_err(usage)?;
        Ok(meta.choice_over_all_files(&listed))
    }
}

/// Loads a `.torrent` file and, unless `quiet`, prints on stderr the one-line warning of each
/// odd thing in it that was fixed (a renamed duplicate, a dropped empty path component, …).
pub(crate) fn load_torrent(path: &Path, quiet: bool) -> Result<Metainfo, Failure> {
    let meta = Metainfo::load(path)?;
    if !quiet {
        for w in &meta.warnings {
            note!("warning: {}: {w}", path.display());
        }
    }
    Ok(meta)
}

/// Worker threads for hashing: one per core.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Flags shared by `download` and `seed`: how we meet peers.
pub(crate) struct SessionArgs {
    pub(crate) listen: SocketAddr,
    pub(crate) tracker_timeout: Duration,
    pub(crate) peers: Vec<SocketAddr>,
    pub(crate) max_peers: usize,
    pub(crate) encryption: Encryption,
    pub(crate) quiet: bool,
    pub(crate) dht: DhtArgs,
    /// Rate limits (and, for `download`, `--sequential`, which the subcommand sets).
    pub(crate) flow: Flow,
}

impl SessionArgs {
    pub(crate) fn parse(args: &mut pico_args::Arguments) -> Result<SessionArgs, Failure> {
        let port = value(args, "--port", "a port number, 0-65535", parsed::<u16>)?;
        let bind = value(args, "--bind", "an IP address", parsed::<IpAddr>)?;
        let peers = values(
            args,
            "--peer",
            "an address, IP:PORT or HOST:PORT",
            peer_addr,
        )?;
        let max_peers = value(args, "--max-peers", "a whole number above 0", |s| {
            parsed::<usize>(s).filter(|&n| n > 0)
        })?;
        let timeout = value(
            args,
            "--tracker-timeout",
            "a number of seconds above 0",
            positive,
        )?;
        let encryption = value(
            args,
            "--encryption",
            "prefer, require or off",
            Encryption::parse,
        )?
        .unwrap_or_default();
        let mut rate = |flag: &'static str| -> Result<Option<u64>, Failure> {
            let accepts =
                "bytes per second, e.g. 500K, 8M, 2MiB, 1G (powers of 1024; 0 = no limit)";
            Ok(value(args, flag, accepts, parse_rate)?.flatten())
        };
        let flow = Flow {
            sequential: false,
            download_limit: rate("--download-limit")?,
            upload_limit: rate("--upload-limit")?,
        };
        Ok(SessionArgs {
            flow,
            listen: SocketAddr::new(
                bind.unwrap_or(IpAddr::from([0, 0, 0, 0])),
                port.unwrap_or(6881),
            ),
            tracker_timeout: Duration::from_secs_f64(timeout.unwrap_or(60.0)),
            peers,
            max_peers: max_peers.unwrap_or(100),
            encryption,
            quiet: quiet(args),
            dht: DhtArgs::parse(args)?,
        })
    }

    /// The session's options: these flags, plus what the subcommand found on disk.
    pub(crate) fn options(
        self,
        output_dir: PathBuf,
        files: Files,
        seed: SeedPolicy,
        stop: Receiver<()>,
        dht: Option<DhtLink>,
    ) -> Options {
        Options {
            output_dir,
            peers: self.peers,
            max_peers: self.max_peers,
            listen: Some(self.listen),
            encryption: self.encryption,
            verified: files.verified,
            chosen: files.chosen,
            preallocate: files.preallocate,
            seed,
            stop: Some(stop),
            tracker_timeout: self.tracker_timeout,
            dht,
            flow: self.flow,
        }
    }
}

/// What a session starts from on disk.
pub(crate) struct Files {
    pub(crate) verified: Option<Bitfield>,
    pub(crate) chosen: Option<Vec<bool>>,
    pub(crate) preallocate: bool,
}

/// `--seed`, `--seed-ratio R`, `--seed-time MINUTES`.
pub(crate) fn seed_policy(args: &mut pico_args::Arguments) -> Result<SeedPolicy, Failure> {
    let forever = args.contains("--seed");
    let ratio = value(args, "--seed-ratio", "a number above 0", positive)?;
    let minutes = value(args, "--seed-time", "a number of minutes, 0 or more", |s| {
        parsed::<f64>(s).filter(|m| m.is_finite() && *m >= 0.0)
    })?;
    Ok(match (ratio, minutes) {
        (None, None) if forever => SeedPolicy::Forever,
        (None, None) => SeedPolicy::No,
        (ratio, minutes) => SeedPolicy::Until {
            ratio,
            time: minutes.map(|m| Duration::from_secs_f64(m * 60.0)),
        },
    })
}
