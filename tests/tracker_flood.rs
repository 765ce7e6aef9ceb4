//! `strand tracker` under floods, as an attacker on the same network would try it (issue 19).
//! Each test starts its own `strand tracker` process on 127.0.0.1, floods it from 127.0.0.1,
//! times one legitimate request from 127.0.0.9, then checks that the tracker's threads and
//! memory go back down. Loopback only; every wait is bounded and the tracker is killed by
//! its PID at the end.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strand::limits::{MAX_CONNECTIONS_PER_SOURCE, UDP_REPLIES_PER_SOURCE};
use strand::rng::Rng;
use strand::tracker::udp_wire::{Request, Response};

const FLOODER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const LEGITIMATE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 9);
/// The bound on the legitimate request's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// A `strand tracker` child process, killed on drop.
struct Tracker {
    child: Child,
    addr: SocketAddrV4,
    /// What the tracker wrote to stderr.
    lines: crossbeam_channel::Receiver<String>,
}

impl Tracker {
    fn start() -> Tracker {
        Tracker::start_with(Command::new(env!("CARGO_BIN_EXE_strand")))
    }

    /// Starts `command` (the strand binary) as a tracker on 127.0.0.1, port 0. Its stderr
    /// lines, bar the announce line, go to `lines`.
    fn start_with(mut command: Command) -> Tracker {
        let mut child = command
            .args(["tracker", "--bind", "127.0.0.1", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start strand tracker");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (lines_tx, lines) = crossbeam_channel::unbounded();
        // Reads the announce line, then keeps draining stderr so the tracker never blocks.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("announce URLs") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line);
                    }
                } else {
                    eprintln!("tracker: {line}");
                    let _ = lines_tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("strand tracker printed its announce URLs");
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .expect("an http URL");
        let addr = url["http://".len()..]
            .trim_end_matches("/announce")
            .parse()
            .expect("a socket address");
        Tracker { child, addr, lines }
    }

    /// The tracker's thread count and resident memory in KiB, from /proc.
    fn usage(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the tracker is running");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{name} in /proc status"))
        };
        (field("Threads:"), field("VmRSS:"))
    }

    /// Waits (up to `limit`) until the tracker has at most `threads` threads.
    fn settles_to(&self, threads: u64, limit: Duration) -> (u64, u64) {
        let deadline = Instant::now() + limit;
        loop {
            let usage = self.usage();
            if usage.0 <= threads || Instant::now() >= deadline {
                return usage;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP connection to `remote` from `local`, giving up after two seconds.
fn connect_from(local: Ipv4Addr, remote: SocketAddrV4) -> io::Result<TcpStream> {
    strand::net::tcp_connect(remote.into(), Some(local.into()), Duration::from_secs(2))
}

fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// Announces over HTTP from `local`; returns the time to a complete `200` reply.
fn timed_announce(local: Ipv4Addr, tracker: SocketAddrV4) -> Duration {
    let started = Instant::now();
    let mut stream = connect_from(local, tracker).expect("connect from 127.0.0.9");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "GET /announce?info_hash={}&peer_id={}&port=6881&left=0 HTTP/1.1\r\nHost: t\r\n\r\n",
        encode(&[7; 20]),
        encode(b"-TS0001-legitimate!!")
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("a reply");
    let elapsed = started.elapsed();
    assert!(reply.starts_with(b"HTTP/1.1 200"), "{reply:?}");
    assert!(
        reply.windows(8).any(|w| w == b"interval"),
        "an announce reply: {}",
        String::from_utf8_lossy(&reply)
    );
    elapsed
}

/// One slowloris round: 1,000 stalled connections from 127.0.0.1, one announce from
/// 127.0.0.9 while they are held, then the flood closes. Asserts the answer time and the
/// thread counts; returns the tracker's RSS in KiB at the end.
fn slowloris_round(tracker: &Tracker, round: u32) -> u64 {
    let (threads_before, rss_before) = tracker.usage();
    let flood_started = Instant::now();
    let mut stalled = Vec::with_capacity(1000);
    for _ in 0..1000 {
        // Each stalled client sends the start of a request and nothing more. The tracker may
        // already have closed older ones to make room; that is the point.
        if let Ok(mut stream) = connect_from(FLOODER, tracker.addr) {
            let _ = stream.write_all(b"GET /announce?info_hash=");
            stalled.push(stream);
        }
    }
    let flood_took = flood_started.elapsed();
    assert!(stalled.len() >= 900, "only {} connections", stalled.len());
    let (threads_peak, _) = tracker.usage();
    let answered_in = timed_announce(LEGITIMATE, tracker.addr);
    // With the flood still open, the connections that were shed end their threads: one
    // thread per connection, and no more than the per-source cap for the flooder's.
    let cap = threads_before + MAX_CONNECTIONS_PER_SOURCE as u64;
    let (threads_during, rss_during) = tracker.settles_to(cap, Duration::from_secs(5));
    drop(stalled);
    let (threads_after, rss_after) = tracker.settles_to(threads_before, Duration::from_secs(10));
    eprintln!(
        "round {round}: 1,000 stalled connections opened in {flood_took:?}; announce from \
         127.0.0.9 answered in {answered_in:?}; tracker threads {threads_before} -> \
         {threads_peak} (just after the flood) -> {threads_during} (flood held) -> \
         {threads_after}, RSS {rss_before} -> {rss_during} -> {rss_after} KiB"
    );
    assert!(answered_in < ANSWER_WITHIN, "answered in {answered_in:?}");
    assert!(
        threads_during <= cap,
        "{threads_during} threads with the flood held"
    );
    assert_eq!(threads_after, threads_before, "threads after the flood");
    rss_after
}

#[test]
fn an_http_announce_is_answered_while_1000_connections_stall() {
    strand::limits::raise_open_file_limit().expect("raise the open-file limit");
    let tracker = Tracker::start();
    let (_, rss_start) = tracker.usage();
    for round in 1..=3 {
        let rss = slowloris_round(&tracker, round);
        // Freed thread stacks and heap stay cached by the C library (2-4 MiB measured, more
        // when more shed threads happened to overlap); further floods reuse them.
        assert!(rss < rss_start + 8 * 1024, "RSS {rss_start} -> {rss} KiB");
    }
}

#[test]
fn out_of_descriptors_the_tracker_warns_once_and_keeps_answering() {
    // A hard limit of 40 descriptors in the tracker (strand can raise only its soft limit).
    let mut command = Command::new(env!("CARGO_BIN_EXE_strand"));
    // SAFETY: between fork and exec only `setrlimit`, which is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            let limit = libc::rlimit {
                rlim_cur: 40,
                rlim_max: 40,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let tracker = Tracker::start_with(command);
    // Stalled connections from ten addresses, 8 each: more than 40 descriptors' worth.
    let mut stalled = Vec::new();
    for n in 0..10u8 {
        for _ in 0..MAX_CONNECTIONS_PER_SOURCE {
            if let Ok(mut stream) = connect_from(Ipv4Addr::new(127, 0, 1, n), tracker.addr) {
                let _ = stream.write_all(b"GET /announce?info_hash=");
                stalled.push(stream);
            }
        }
    }
    let answered_in = timed_announce(LEGITIMATE, tracker.addr);
    let again = timed_announce(LEGITIMATE, tracker.addr);
    drop(stalled);
    std::thread::sleep(Duration::from_millis(300));
    let warnings: Vec<String> = tracker
        .lines
        .try_iter()
        .filter(|line| line.contains("out of file descriptors"))
        .collect();
    eprintln!(
        "80 stalled connections against 40 descriptors: announces answered in {answered_in:?} \
         and {again:?}; warnings: {warnings:?}"
    );
    assert!(answered_in < ANSWER_WITHIN && again < ANSWER_WITHIN);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

/// Sends a BEP 15 connect from `socket` and returns the time from the first send to its
/// answer. UDP may drop a datagram (a receive queue still full of the flood drops it in the
/// kernel), so, as a real client does, it sends the connect again every 200 ms, for 5 s at most.
fn timed_connect(socket: &UdpSocket, transaction_id: u32) -> Duration {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let request = Request::Connect { transaction_id }.encode();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    while started.elapsed() < Duration::from_secs(5) {
        socket.send(&request).unwrap();
        let resend_at = Instant::now() + Duration::from_millis(200);
        while Instant::now() < resend_at {
            let Ok(n) = socket.recv(&mut buf) else { break };
            if let Ok(Response::Connect {
                transaction_id: id, ..
            }) = Response::decode(&buf[..n], false)
            {
                if id == transaction_id {
                    return started.elapsed();
                }
            }
        }
    }
    panic!("no answer to the connect within 5 s");
}

fn udp_from(local: Ipv4Addr, tracker: SocketAddrV4) -> UdpSocket {
    let socket = UdpSocket::bind(SocketAddr::from((local, 0))).unwrap();
    socket.connect(tracker).unwrap();
    socket
}

#[test]
fn a_udp_connect_is_answered_after_a_flood_from_another_address() {
    let tracker = Tracker::start();
    let (threads_before, rss_before) = tracker.usage();
    let flooder = udp_from(FLOODER, tracker.addr);
    let legitimate = udp_from(LEGITIMATE, tracker.addr);

    // 200,000 datagrams of garbage: random bytes, random lengths.
    let mut rng = Rng::seeded(19);
    let mut datagram = [0u8; 120];
    let started = Instant::now();
    for _ in 0..200_000 {
        let len = 16 + rng.index(100);
        rng.fill(&mut datagram[..len]);
        let _ = flooder.send(&datagram[..len]);
    }
    let garbage_took = started.elapsed();
    let after_garbage = timed_connect(&legitimate, 1);

    // Then 50,000 valid connect requests from the flooder, each of which asks for a reply.
    let connect = Request::Connect { transaction_id: 2 }.encode();
    let started = Instant::now();
    for _ in 0..50_000 {
        let _ = flooder.send(&connect);
    }
    let connects_took = started.elapsed();
    let after_connects = timed_connect(&legitimate, 3);
    // The flooder got at most its budget for each second it flooded.
    flooder.set_nonblocking(true).unwrap();
    let mut replies = 0u32;
    let mut buf = [0u8; 64];
    let drain_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < drain_until {
        match flooder.recv(&mut buf) {
            Ok(_) => replies += 1,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let seconds = connects_took.as_secs() as u32 + 2;
    let (threads_after, rss_after) = tracker.usage();
    eprintln!(
        "200,000 garbage datagrams sent in {garbage_took:?}, connect from 127.0.0.9 answered \
         {after_garbage:?} later; 50,000 connects sent in {connects_took:?} got {replies} \
         replies, connect from 127.0.0.9 answered {after_connects:?} later; tracker threads \
         {threads_before} -> {threads_after}, RSS {rss_before} -> {rss_after} KiB"
    );
    assert!(after_garbage < ANSWER_WITHIN, "{after_garbage:?}");
    assert!(after_connects < ANSWER_WITHIN, "{after_connects:?}");
    assert!(
        replies <= UDP_REPLIES_PER_SOURCE * seconds,
        "{replies} replies to the flooder"
    );
    assert_eq!(threads_after, threads_before);
    assert!(
        rss_after < rss_before + 4 * 1024,
        "RSS {rss_before} -> {rss_after} KiB"
    );
}
