//! The DHT on the command line: `--no-dht` and `--dht-bootstrap`, starting the DHT thread for
//! `download` and `seed`, and `strand dht`, which joins, looks up one info hash and prints
//! the peers it finds.
//!
//! Runs on the main thread. This is the only place that names the public bootstrap routers:
//! the library knows none, and tests and scripts pass `--no-dht` or a loopback
//! `--dht-bootstrap`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use strand::dht::{self, Dht, DhtConfig, DhtEvent};
use strand::magnet;

use super::args::{finish, free_arg, quiet};
use super::errors::{usage_err, Failure};

/// The routers a node joins through when the user names none (`--dht-bootstrap`).
const DEFAULT_ROUTERS: [&str; 3] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
];
/// Set (to anything) by tests: the DHT then refuses, with a warning, every name and every
/// address that is not loopback (`DhtConfig::loopback_only`).
const LOOPBACK_ONLY_ENV: &str = "STRAND_DHT_LOOPBACK_ONLY";
/// Ports tried above the asked one when it is taken (as the TCP listener does).
const PORT_TRIES: u16 = 10;

/// `--no-dht` and `--dht-bootstrap HOST:PORT` (repeatable; replaces the default routers).
#[derive(Debug, Clone)]
pub(crate) struct DhtArgs {
    pub(crate) enabled: bool,
    pub(crate) bootstrap: Vec<String>,
}

impl DhtArgs {
    pub(crate) fn parse(args: &mut pico_args::Arguments) -> Result<DhtArgs, Failure> {
        let enabled = !args.contains("--no-dht");
        let bootstrap: Vec<String> = args.values_from_str("--dht-bootstrap").map_err(usage_err)?;
        for b in &bootstrap {
            let port_ok = b.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !port_ok {
                return Err(Failure::usage(format!(
                    "--dht-bootstrap {b}: expected HOST:PORT"
                )));
            }
        }
        Ok(DhtArgs { enabled, bootstrap })
    }

    /// Starts the DHT at the listener's address and port number (or the next free ones), or
    /// returns `None` when it is off.
    pub(crate) fn start(&self, listen: SocketAddr) -> Result<Option<Dht>, Failure> {
        if !self.enabled {
            return Ok(None);
        }
        let bootstrap = if self.bootstrap.is_empty() {
            DEFAULT_ROUTERS.iter().map(|r| r.to_string()).collect()
        } else {
            self.bootstrap.clone()
        };
        let bind = match listen.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => None,
            ip => Some(ip),
        };
        let state_file = dht::state::default_state_dir().map(|d| d.join(dht::state::STATE_FILE));
        let mut last = None;
        for offset in 0..PORT_TRIES {
            let port = match listen.port() {
                0 => 0,
                p => p.saturating_add(offset),
            };
            let config = DhtConfig {
                bind,
                port,
                bootstrap: bootstrap.clone(),
                state_file: state_file.clone(),
                id: None,
                loopback_only: std::env::var_os(LOOPBACK_ONLY_ENV).is_some(),
            };
            match dht::spawn(config) {
                Ok(dht) => return Ok(Some(dht)),
                Err(e) => last = Some(e),
            }
            if port == 0 {
                break;
            }
        }
        Err(Failure::error(format!(
            "{} (use --no-dht to go without)",
            last.map_or_else(|| "DHT: cannot start".to_string(), |e| e.to_string())
        )))
    }
}

/// Stops the DHT (saving its state) and logs what it saw.
pub(crate) fn stop(dht: Option<Dht>) {
    if let Some(dht) = dht {
        let report = dht.stop();
        log::debug!("DHT stopped: {report:?}");
    }
}

/// `strand dht HASH|MAGNET`: join the DHT, look the info hash up, print each peer found.
pub(crate) fn dht_command(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let port: u16 = args
        .opt_value_from_str("--port")
        .map_err(usage_err)?
        .unwrap_or(6881);
    let bind: IpAddr = args
        .opt_value_from_str("--bind")
        .map_err(usage_err)?
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let seconds: f64 = args
        .opt_value_from_str("--timeout")
        .map_err(usage_err)?
        .unwrap_or(60.0);
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(Failure::usage(
            "--timeout must be a number of seconds above 0",
        ));
    }
    let dht_args = DhtArgs::parse(&mut args)?;
    let quiet = quiet(&mut args);
    let target: String = free_arg(&mut args, "missing the info hash or magnet link")?;
    finish(args)?;
    if !dht_args.enabled {
        return Err(Failure::usage("strand dht needs the DHT: drop --no-dht"));
    }
    let link = if target.starts_with("magnet:") {
        target
    } else {
        format!("magnet:?xt=urn:btih:{target}")
    };
    let info_hash = magnet::parse(&link)?.info_hash;
    let dht = dht_args
        .start(SocketAddr::new(bind, port))?
        .ok_or_else(|| Failure::error("the DHT did not start"))?;
    let result = look_up(&dht, info_hash, Duration::from_secs_f64(seconds), quiet);
    stop(Some(dht));
    result
}

fn look_up(dht: &Dht, info_hash: [u8; 20], limit: Duration, quiet: bool) -> Result<(), Failure> {
    let hex: String = info_hash.iter().map(|b| format!("{b:02x}")).collect();
    let started = Instant::now();
    let end = started + limit;
    if !quiet {
        eprintln!("DHT node on {}; looking up {hex}", dht.local_addr());
    }
    // Asked at once: the DHT starts the lookup as soon as its first node answers.
    dht.get_peers(info_hash);
    let mut found = 0usize;
    let mut nodes = 0usize;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match dht.events.recv_timeout(left) {
            Ok(DhtEvent::Peers(hash, peers)) if hash == info_hash => {
                for peer in peers {
                    if found == 0 && !quiet {
                        eprintln!("first peer after {:.3} s", started.elapsed().as_secs_f64());
                    }
                    found += 1;
                    println!("{peer}");
                }
            }
            Ok(DhtEvent::LookupDone(hash, _)) if hash == info_hash => break,
            Ok(DhtEvent::Nodes(n)) => nodes = n,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    // The one-line result: shown under `--quiet` too.
    eprintln!(
        "{found} peers for {hex} in {:.2} s ({nodes} DHT nodes known)",
        started.elapsed().as_secs_f64()
    );
    if found == 0 && nodes == 0 {
        return Err(Failure::error(format!(
            "no DHT node answered within {:.0} s",
            limit.as_secs_f64()
        )));
    }
    Ok(())
}
