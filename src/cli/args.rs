//! Parsing helpers shared by the subcommands, and the one place where the flags every session
//! takes (`download` and `seed`: how we meet peers) are parsed and turned into
//! [`session::Options`].
//!
//! Runs on the main thread before any other thread starts. To add a session flag: a field in
//! [`SessionArgs`], its parsing in [`SessionArgs::parse`], its use in [`SessionArgs::options`],
//! and a line in `help::SESSION_OPTIONS`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::Receiver;
use strand::bitfield::Bitfield;
use strand::dht::DhtLink;
use strand::session::{Options, SeedPolicy};

use super::dht::DhtArgs;
use super::errors::{usage_err, Failure};

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

/// The `.torrent` file given as the free argument.
pub(crate) fn torrent_arg(args: &mut pico_args::Arguments) -> Result<PathBuf, Failure> {
    let path: Option<PathBuf> = args.opt_free_from_str().map_err(usage_err)?;
    path.ok_or_else(|| Failure::usage("missing the .torrent file"))
}

/// `-d, --data DIR` of `seed` and `verify` [default: .].
pub(crate) fn data_dir(args: &mut pico_args::Arguments) -> Result<PathBuf, Failure> {
    Ok(args
        .opt_value_from_str(["-d", "--data"])
        .map_err(usage_err)?
        .unwrap_or_else(|| PathBuf::from(".")))
}

/// `-q, --quiet`, taken by every command.
pub(crate) fn quiet(args: &mut pico_args::Arguments) -> bool {
    args.contains(["-q", "--quiet"])
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
    pub(crate) quiet: bool,
    pub(crate) dht: DhtArgs,
}

impl SessionArgs {
    pub(crate) fn parse(args: &mut pico_args::Arguments) -> Result<SessionArgs, Failure> {
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
        Ok(SessionArgs {
            listen: SocketAddr::new(bind, port),
            tracker_timeout: Duration::from_secs_f64(timeout),
            peers,
            max_peers,
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
            verified: files.verified,
            chosen: files.chosen,
            preallocate: files.preallocate,
            seed,
            stop: Some(stop),
            tracker_timeout: self.tracker_timeout,
            dht,
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
