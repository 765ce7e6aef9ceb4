//! Load generator for `strand tracker`: many announces per second from many loopback source
//! addresses (127.77.x.y), over UDP (BEP 15 connect, then announces) or HTTP (one connection
//! per announce). Each worker thread owns its share of the source addresses and keeps one
//! request in flight; the report gives answered announces per second, latency percentiles,
//! failures, and, with `--pid`, the tracker's peak resident memory and threads sampled from
//! /proc. Loopback only. Run through `bench/tracker_load.sh`, or:
//!
//!     cargo run --release --example tracker_load -- --tracker 127.0.0.1:6969 \
//!         [--udp | --http] [--seconds 10] [--threads 8] [--sources 2000] [--torrents 100] [--pid N]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strand::rng::Rng;
use strand::tracker::udp_wire::{Request, Response};
use strand::tracker::{AnnounceRequest, Announcer, Totals};

/// Longest one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a UDP connection id is reused (BEP 15: a minute).
const ID_LIFETIME: Duration = Duration::from_secs(55);

struct Options {
    tracker: SocketAddr,
    http: bool,
    seconds: u64,
    threads: usize,
    sources: usize,
    torrents: usize,
    pid: Option<u32>,
}

/// One worker thread's share of the load.
struct Work {
    tracker: SocketAddr,
    /// Its source addresses, by number (see [`source_ip`]).
    sources: Vec<usize>,
    torrents: usize,
    deadline: Instant,
}

/// What one worker saw.
#[derive(Default)]
struct Tally {
    /// Microseconds per answered announce.
    latencies: Vec<u32>,
    failures: u64,
    /// Datagrams or connections sent, announces and connects together.
    sent: u64,
}

fn main() {
    let options = match parse() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("tracker_load: {error}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = options.pid.map(|pid| {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || sample(pid, &stop))
    });
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let workers: Vec<_> = (0..options.threads)
        .map(|worker| {
            let work = Work {
                tracker: options.tracker,
                sources: (worker..options.sources).step_by(options.threads).collect(),
                torrents: options.torrents,
                deadline,
            };
            let http = options.http;
            std::thread::spawn(move || {
                let mut rng = Rng::seeded(worker as u64);
                if http {
                    http_worker(&work, &mut rng)
                } else {
                    udp_worker(&work, &mut rng)
                }
            })
        })
        .collect();
    let mut total = Tally::default();
    for worker in workers {
        let tally = worker.join().expect("a worker thread");
        total.latencies.extend(tally.latencies);
        total.failures += tally.failures;
        total.sent += tally.sent;
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.map(|s| s.join().expect("the sampler thread"));
    total.latencies.sort_unstable();
    let percentile = |p: f64| {
        let n = total.latencies.len();
        if n == 0 {
            return 0.0;
        }
        f64::from(total.latencies[((n - 1) as f64 * p) as usize]) / 1000.0
    };
    println!(
        "{} announces from {} addresses, {} threads: {} answered in {elapsed:.1} s = {:.0}/s \
         ({} {} sent), {} failed; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms{}",
        if options.http { "HTTP" } else { "UDP" },
        options.sources,
        options.threads,
        total.latencies.len(),
        total.latencies.len() as f64 / elapsed,
        total.sent,
        if options.http {
            "connections"
        } else {
            "datagrams"
        },
        total.failures,
        percentile(0.5),
        percentile(0.99),
        percentile(1.0),
        match peak {
            Some((rss, hwm, threads)) => format!(
                "; tracker RSS peak {hwm} KiB (sampled max {rss} KiB), threads max {threads}"
            ),
            None => String::new(),
        }
    );
}

const USAGE: &str = "usage: tracker_load --tracker ADDR:PORT [--udp | --http] [--seconds 10] \
                     [--threads 8] [--sources 2000] [--torrents 100] [--pid TRACKER_PID]";

fn parse() -> Result<Options, pico_args::Error> {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        println!("{USAGE}");
        std::process::exit(0);
    }
    let options = Options {
        tracker: args.value_from_str("--tracker")?,
        http: args.contains("--http"),
        seconds: args.opt_value_from_str("--seconds")?.unwrap_or(10),
        threads: args.opt_value_from_str("--threads")?.unwrap_or(8).max(1),
        sources: args
            .opt_value_from_str("--sources")?
            .unwrap_or(2000usize)
            .clamp(1, 65_000),
        torrents: args.opt_value_from_str("--torrents")?.unwrap_or(100).max(1),
        pid: args.opt_value_from_str("--pid")?,
    };
    let _ = args.contains("--udp");
    Ok(options)
}

/// Source address `n`: 127.77.x.y, never 127.77.x.0.
fn source_ip(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 77, (n / 255) as u8, (n % 255 + 1) as u8))
}

/// The announce of source `n` for a random torrent: half seeds, half leechers.
fn announce(n: usize, torrents: usize, rng: &mut Rng) -> AnnounceRequest {
    let mut info_hash = [0u8; 20];
    info_hash[..8].copy_from_slice(&(rng.index(torrents) as u64).to_be_bytes());
    let mut peer_id = *b"-LG0001-000000000000";
    peer_id[12..20].copy_from_slice(&(n as u64).to_be_bytes());
    AnnounceRequest {
        announcer: Announcer {
            info_hash,
            peer_id,
            port: 6881 + (n % 1000) as u16,
            local: Some(source_ip(n)),
            encryption: strand::peer::mse::Encryption::Off,
        },
        totals: Totals {
            left: if rng.below(2) == 0 { 0 } else { 1 << 20 },
            ..Totals::default()
        },
        event: None,
        numwant: 50,
    }
}

/// One source's UDP socket and connection id.
struct UdpSource {
    n: usize,
    socket: UdpSocket,
    id: Option<(u64, Instant)>,
}

fn udp_worker(work: &Work, rng: &mut Rng) -> Tally {
    let mut tally = Tally::default();
    let mut sockets: Vec<UdpSource> = work
        .sources
        .iter()
        .filter_map(|&n| {
            let socket = UdpSocket::bind(SocketAddr::new(source_ip(n), 0)).ok()?;
            socket.connect(work.tracker).ok()?;
            socket.set_read_timeout(Some(REQUEST_TIMEOUT)).ok()?;
            Some(UdpSource {
                n,
                socket,
                id: None,
            })
        })
        .collect();
    let mut buf = [0u8; 2048];
    'run: while Instant::now() < work.deadline {
        for source in &mut sockets {
            if Instant::now() >= work.deadline {
                break 'run;
            }
            let connection_id = match source.id {
                Some((id, at)) if at.elapsed() < ID_LIFETIME => id,
                _ => {
                    let transaction_id = rng.next_u32();
                    tally.sent += 1;
                    match exchange(
                        &source.socket,
                        &Request::Connect { transaction_id },
                        &mut buf,
                    ) {
                        Some(Response::Connect { connection_id, .. }) => {
                            source.id = Some((connection_id, Instant::now()));
                            connection_id
                        }
                        _ => {
                            tally.failures += 1;
                            continue;
                        }
                    }
                }
            };
            let request = Request::Announce {
                connection_id,
                transaction_id: rng.next_u32(),
                request: announce(source.n, work.torrents, rng),
                key: source.n as u32,
            };
            let started = Instant::now();
            tally.sent += 1;
            match exchange(&source.socket, &request, &mut buf) {
                Some(Response::Announce { .. }) => tally.latencies.push(micros(started)),
                _ => {
                    tally.failures += 1;
                    source.id = None;
                }
            }
        }
    }
    tally
}

/// Sends `request` and waits for the reply with its transaction id.
fn exchange(socket: &UdpSocket, request: &Request, buf: &mut [u8]) -> Option<Response> {
    socket.send(&request.encode()).ok()?;
    let until = Instant::now() + REQUEST_TIMEOUT;
    while Instant::now() < until {
        let n = socket.recv(buf).ok()?;
        match Response::decode(&buf[..n], false) {
            Ok(reply) if reply.transaction_id() == request.transaction_id() => return Some(reply),
            _ => {}
        }
    }
    None
}

fn http_worker(work: &Work, rng: &mut Rng) -> Tally {
    let mut tally = Tally::default();
    let mut reply = Vec::with_capacity(4096);
    'run: while Instant::now() < work.deadline {
        for &n in &work.sources {
            if Instant::now() >= work.deadline {
                break 'run;
            }
            let a = announce(n, work.torrents, rng);
            let head = format!(
                "GET /announce?info_hash={}&peer_id={}&port={}&uploaded=0&downloaded=0\
                 &left={}&compact=1&numwant=50 HTTP/1.1\r\nHost: t\r\n\r\n",
                escape(&a.announcer.info_hash),
                escape(&a.announcer.peer_id),
                a.announcer.port,
                a.totals.left
            );
            let started = Instant::now();
            tally.sent += 1;
            reply.clear();
            let answered =
                strand::net::tcp_connect(work.tracker, Some(source_ip(n)), REQUEST_TIMEOUT)
                    .and_then(|mut stream| {
                        stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
                        stream.write_all(head.as_bytes())?;
                        stream.read_to_end(&mut reply)
                    })
                    .is_ok()
                    && reply.starts_with(b"HTTP/1.1 200")
                    && !reply.windows(14).any(|w| w == b"failure reason");
            if answered {
                tally.latencies.push(micros(started));
            } else {
                tally.failures += 1;
            }
        }
    }
    tally
}

fn escape(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

fn micros(since: Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

/// Samples the tracker's VmRSS and thread count every 100 ms until `stop`; returns the largest
/// sampled RSS, the kernel's VmHWM at the end (KiB), and the most threads seen.
fn sample(pid: u32, stop: &AtomicBool) -> (u64, u64, u64) {
    let field = |status: &str, name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let (mut rss, mut hwm, mut threads) = (0, 0, 0);
    while !stop.load(Ordering::Relaxed) {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            rss = rss.max(field(&status, "VmRSS:"));
            hwm = field(&status, "VmHWM:");
            threads = threads.max(field(&status, "Threads:"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (rss, hwm, threads)
}
