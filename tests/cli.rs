//! The `strand` binary as a new user meets it (issue 17): each test runs the built program on
//! loopback only, bounded in time, and checks what the user sees.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const KIB: usize = 1024;

/// `spawn`, after checking that the command line keeps off the public DHT.
trait SpawnChecked {
    fn spawn_checked(&mut self) -> std::io::Result<Child>;
}

impl SpawnChecked for Command {
    fn spawn_checked(&mut self) -> std::io::Result<Child> {
        assert_no_public_dht(self.get_args().filter_map(|a| a.to_str()));
        self.spawn()
    }
}

/// Where a test's strand listens: loopback, a free port, no DHT.
const LISTEN: [&str; 5] = ["--bind", "127.0.0.1", "--port", "0", "--no-dht"];

fn strand() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strand"));
    c.env("RUST_LOG", "off")
        .env("STRAND_DHT_LOOPBACK_ONLY", "1")
        .env_remove("RUST_BACKTRACE");
    c
}

/// A multi-file torrent with `n` one-byte files, written into `dir` as `many.torrent`.
fn many_files_torrent(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let names: Vec<String> = (0..n)
        .map(|i| format!("dir{}/file{i:05}.txt", i % 7))
        .collect();
    let data: Vec<Vec<u8>> = (0..n).map(|i| vec![b'a' + (i % 26) as u8]).collect();
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&data)
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let t = make_torrent(&files, 16 * KIB as u32, "many", None, true);
    let path = dir.join("many.torrent");
    std::fs::write(&path, &t.bytes).unwrap();
    path
}

/// Item 1: a reader that closes the pipe after one line (`| head -1`) ends strand quietly,
/// for `info` and `verify`, with no panic message and not with status 101.
#[test]
fn closed_stdout_ends_quietly() {
    let dir = TempDir::new("epipe");
    let torrent = many_files_torrent(dir.path(), 4000);
    for args in [
        vec!["info".to_string(), torrent.display().to_string()],
        vec![
            "verify".to_string(),
            torrent.display().to_string(),
            "-d".to_string(),
            dir.path().display().to_string(),
        ],
    ] {
        let mut child = strand()
            .args(&args)
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn_checked()
            .expect("spawn strand");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty(), "{args:?} printed nothing");
        let status = wait_child(&mut child, Duration::from_secs(20));
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_ne!(status.code(), Some(101), "{args:?} panicked: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?} said: {err}"
        );
        assert_eq!(status.code(), Some(141), "{args:?}: {err}");
    }
}

/// Runs strand to completion (at most `limit`), returning (exit code, stdout, stderr).
fn run(args: &[&str], limit: Duration) -> (Option<i32>, String, String) {
    let os: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let (_, code, out, err) = run_bin(&os, limit);
    (code, out, err)
}

/// `strand download TORRENT -o OUT --peer PEER` on 127.0.0.1 with `extra` flags, within 60 s.
fn download(torrent: &str, out: &str, peer: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let base = ["download", torrent, "-o", out, "--peer", peer];
    run(
        &[&base[..], &LISTEN, extra].concat(),
        Duration::from_secs(60),
    )
}

/// Three files (40, 50, 30 KiB) over 32 KiB pieces: file 2 shares piece 1 with file 1 and
/// piece 2 with file 3, so a download of file 2 alone keeps those neighbours' bytes in
/// `.strand/HASH.parts`.
fn three_files() -> TestTorrent {
    let (a, b, c) = (
        payload(40 * KIB, 1),
        payload(50 * KIB, 2),
        payload(30 * KIB, 3),
    );
    make_torrent(
        &[("a.bin", &a), ("b.bin", &b), ("c.bin", &c)],
        32 * KIB as u32,
        "three",
        None,
        true,
    )
}

/// Item 2: `verify` after `download --only 2` sees the pieces kept for the chosen file and
/// exits 0 for it; a later download of every file completes (fetching again the pieces the
/// chosen file shared with the others: item 10c removed them with the parts file).
#[test]
fn verify_and_widen_after_a_selective_download() {
    let t = three_files();
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    let dir = TempDir::new("selective");
    let torrent = dir.path().join("three.torrent");
    std::fs::write(&torrent, &t.bytes).unwrap();
    let out = dir.path().join("out");
    let (torrent, out) = (torrent.to_str().unwrap(), out.to_str().unwrap());
    let peer = seeder.addr().to_string();
    let limit = Duration::from_secs(60);
    let fetch = |extra: &[&str]| download(torrent, out, &peer, extra);

    let (code, _, err) = fetch(&["--only", "2"]);
    assert_eq!(code, Some(0), "download --only 2: {err}");

    let (code, stdout, err) = run(&["verify", torrent, "-d", out, "--only", "2"], limit);
    assert_eq!(code, Some(0), "verify --only 2: {stdout}{err}");
    assert!(stdout.contains("b.bin (50.0 KiB): complete"), "{stdout}");
    assert!(
        !stdout.contains("a.bin"),
        "verify --only 2 shows file 2 alone: {stdout}"
    );
    let (code, stdout, _) = run(
        &["verify", torrent, "-d", out, "--exclude", "*/a.bin"],
        limit,
    );
    assert_eq!(code, Some(1), "c.bin is not on disk: {stdout}");
    assert!(stdout.contains("b.bin (50.0 KiB): complete"), "{stdout}");
    let (code, stdout, _) = run(&["verify", torrent, "-d", out], limit);
    assert_eq!(code, Some(1), "files 1 and 3 are not on disk: {stdout}");
    assert!(stdout.contains("b.bin (50.0 KiB): complete"), "{stdout}");

    let served = seeder.blocks_served();
    let (code, _, err) = fetch(&[]);
    assert_eq!(code, Some(0), "download of every file: {err}");
    assert!(err.contains("0 of 4 pieces"), "{err}");
    assert_eq!(
        seeder.blocks_served() - served,
        8,
        "every piece (two blocks each) is fetched: none was whole on disk"
    );
    assert_output_matches(&t, std::path::Path::new(out));
    // Every file is at its own path now: no parts file and no record of one stay behind.
    let (parts, kept) = state_files(&t, std::path::Path::new(out));
    assert!(!parts.exists() && !kept.exists(), "strand's leftovers stay");
}

/// An HTTP tracker on 127.0.0.1 that accepts every connection; it answers announces with no
/// peers, except those it holds open without a word until dropped: all of them when
/// `answer` is false, else only `stopped`.
struct HungTracker {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl HungTracker {
    fn start(answer: bool) -> HungTracker {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, a) = (stop.clone(), accepted.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                a.fetch_add(1, Ordering::SeqCst);
                if !answer {
                    held.push(conn);
                    continue;
                }
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                if String::from_utf8_lossy(&buf[..n]).contains("event=stopped") {
                    held.push(conn);
                    continue;
                }
                let body = b"d8:intervali1800e5:peers0:e";
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(body);
            }
        });
        HungTracker {
            addr,
            stop,
            accepted,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/announce", self.addr)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for HungTracker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Starts `strand download` of a one-file torrent announced to `tracker`, with no peer.
fn download_from(tracker: &HungTracker, dir: &TempDir) -> Child {
    let data = payload(64 * KIB, 9);
    let t = make_torrent(
        &[("f", &data)],
        16 * KIB as u32,
        "hung",
        Some(&tracker.url()),
        false,
    );
    let torrent = dir.path().join("hung.torrent");
    std::fs::write(&torrent, &t.bytes).unwrap();
    strand()
        .args(["download", torrent.to_str().unwrap(), "-o"])
        .arg(dir.path().join("out"))
        .args(LISTEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn_checked()
        .expect("spawn strand")
}

fn interrupt(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) sends a signal to the process we started; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
}

/// Item 3: with a tracker that never answers, Ctrl-C ends strand within 2 s (status 130).
#[test]
fn ctrl_c_with_a_hung_tracker_ends_at_once() {
    let tracker = HungTracker::start(false);
    let dir = TempDir::new("hung");
    let mut child = download_from(&tracker, &dir);
    assert!(
        wait_until(Duration::from_secs(10), || tracker.accepted() >= 1),
        "strand never announced"
    );
    std::thread::sleep(Duration::from_millis(300));
    let pressed = Instant::now();
    interrupt(&child);
    let status = wait_child(&mut child, Duration::from_secs(30));
    let took = pressed.elapsed();
    assert_eq!(status.code(), Some(130));
    assert!(took < Duration::from_secs(2), "Ctrl-C took {took:?}");
}

/// Item 3: a tracker that heard `started` but hangs on `stopped` holds strand at most the
/// farewell's own short deadline, and a second Ctrl-C (600 ms after the first) ends it at
/// once.
#[test]
fn second_ctrl_c_exits_at_once() {
    let tracker = HungTracker::start(true);
    for presses in [1, 2] {
        let dir = TempDir::new("hung2");
        let before = tracker.accepted();
        let mut child = download_from(&tracker, &dir);
        assert!(
            wait_until(Duration::from_secs(10), || tracker.accepted() > before),
            "strand never announced"
        );
        std::thread::sleep(Duration::from_millis(500));
        let pressed = Instant::now();
        interrupt(&child);
        if presses == 2 {
            std::thread::sleep(Duration::from_millis(600));
            interrupt(&child);
        }
        let (status, err) = ended(&mut child);
        let took = pressed.elapsed();
        assert_eq!(status.code(), Some(130), "{err}");
        assert!(
            took < Duration::from_millis(2000),
            "{presses} Ctrl-C took {took:?}"
        );
        assert_eq!(
            err.contains("stopped at once by a second Ctrl-C"),
            presses == 2,
            "{presses} Ctrl-C: {err}"
        );
    }
}

/// User finding: under `timeout`, one Ctrl-C reaches strand twice within milliseconds (the
/// child and its group). That is one Ctrl-C: the clean stop, not "stopped at once"; and no
/// clear-line escape is written to a stderr that is not a terminal.
#[test]
fn two_signals_within_milliseconds_are_one_ctrl_c() {
    let tracker = HungTracker::start(true);
    let dir = TempDir::new("hung-twice");
    let mut child = download_from(&tracker, &dir);
    assert!(
        wait_until(Duration::from_secs(10), || tracker.accepted() >= 1),
        "strand never announced"
    );
    std::thread::sleep(Duration::from_millis(500));
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(5));
    interrupt(&child);
    let (status, err) = ended(&mut child);
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        !err.contains("stopped at once"),
        "one Ctrl-C counted twice: {err}"
    );
    assert!(!err.contains("\x1b[2K"), "escape on a pipe: {err:?}");
    assert!(
        err.contains("verified after") && err.contains("stopped by Ctrl-C"),
        "the clean stop shows the summary: {err}"
    );
}

/// Item 6: a bad flag value is refused before anything starts, with one line naming the flag
/// and what it takes.
#[test]
fn bad_flag_values_name_the_flag() {
    let dir = TempDir::new("flags");
    let t = three_files();
    let torrent = dir.path().join("three.torrent");
    std::fs::write(&torrent, &t.bytes).unwrap();
    let torrent = torrent.to_str().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--max-peers", "abc"], "--max-peers"),
        (&["--port", "99999"], "--port"),
        (&["--seed-ratio", "abc"], "--seed-ratio"),
        (&["--seed-time", "soon"], "--seed-time"),
        (&["--tracker-timeout", "x"], "--tracker-timeout"),
        (&["--bind", "nowhere"], "--bind"),
        (&["--peer", "256.1.1.1:80"], "--peer"),
        (&["--only", "3-2"], "reversed"),
    ];
    for (flags, want) in cases {
        let args = [
            &["download", torrent, "-o", out, "-q", "--no-dht"][..],
            flags,
        ]
        .concat();
        let (code, _, err) = run(&args, Duration::from_secs(20));
        assert_eq!(code, Some(2), "{flags:?}: {err}");
        let first = err.lines().next().unwrap_or("");
        assert!(first.contains(want), "{flags:?} said: {err}");
        assert!(
            !err.contains("invalid digit") && !err.contains("failed to parse"),
            "{err}"
        );
    }
}

/// Item 6: `--peer localhost:PORT` is accepted, and `--piece-length` takes K and M.
#[test]
fn peer_host_names_and_size_suffixes() {
    let t = three_files();
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    let dir = TempDir::new("localhost");
    let torrent = dir.path().join("three.torrent");
    std::fs::write(&torrent, &t.bytes).unwrap();
    let out = dir.path().join("out");
    let peer = format!("localhost:{}", seeder.addr().port());
    let (torrent, out) = (torrent.to_str().unwrap(), out.to_str().unwrap());
    let (code, _, err) = download(torrent, out, &peer, &["-q"]);
    assert_eq!(code, Some(0), "--peer {peer}: {err}");
    assert_output_matches(&t, std::path::Path::new(out));

    let made = dir.path().join("made.torrent");
    let (code, _, err) = run(
        &[
            "create",
            &format!("{out}/three"),
            "-t",
            "http://127.0.0.1:1/announce",
            "--piece-length",
            "64K",
            "-o",
            made.to_str().unwrap(),
            "-q",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(0), "--piece-length 64K: {err}");
    let (_, info, _) = run(&["info", made.to_str().unwrap()], Duration::from_secs(20));
    assert!(info.contains("× 64.0 KiB"), "{info}");
}

/// Item 7: `--exclude` takes a folder or a bare file name, and a pattern that matches no file
/// is a warning.
#[test]
fn exclude_takes_folders_and_warns_on_no_match() {
    let dir = TempDir::new("exclude");
    let torrent = many_files_torrent(dir.path(), 14);
    let torrent = torrent.to_str().unwrap();
    let data = dir.path().to_str().unwrap();
    let verify = |pattern: &str| {
        run(
            &[
                "verify",
                torrent,
                "-d",
                data,
                "--exclude",
                pattern,
                "--exclude",
                "dir3",
            ],
            Duration::from_secs(20),
        )
    };
    for pattern in ["many/dir0", "dir0/*", "dir0"] {
        let (_, stdout, err) = verify(pattern);
        assert!(!stdout.contains("dir0/"), "--exclude {pattern}: {stdout}");
        assert!(!stdout.contains("dir3/"), "--exclude dir3: {stdout}");
        assert!(stdout.contains("dir1/"), "{stdout}");
        assert!(!err.contains("warning"), "{err}");
    }
    let (_, stdout, _) = verify("file00005.txt");
    assert!(!stdout.contains("file00005"), "{stdout}");
    let (_, _, err) = verify("nosuch");
    assert!(
        err.contains("warning: --exclude 'nosuch' matches no file"),
        "{err}"
    );
}

/// Item 9: each command has its own help (`CMD --help` and `help CMD`).
#[test]
fn per_command_help() {
    let global = run(&["--help"], Duration::from_secs(10)).1;
    for cmd in ["download", "seed", "verify", "create", "info", "tracker"] {
        let (code, a, _) = run(&[cmd, "--help", "--no-dht"], Duration::from_secs(10));
        assert_eq!(code, Some(0), "{cmd} --help");
        let (_, b, _) = run(&["help", cmd], Duration::from_secs(10));
        assert_eq!(a, b, "{cmd} --help and help {cmd}");
        assert_ne!(a, global, "{cmd} --help is the global help");
        assert!(a.starts_with(&format!("strand {cmd} — ")), "{a}");
    }
    let download = run(&["help", "download"], Duration::from_secs(10)).1;
    assert!(download.contains("--only") && download.contains("--max-peers"));
    for text in [&global, &download] {
        let flush_left: Vec<&str> = text.lines().filter(|l| l.starts_with('-')).collect();
        assert!(flush_left.is_empty(), "flags not indented: {flush_left:?}");
    }
    assert!(!download.contains("--piece-length"), "{download}");
    let (code, _, err) = run(&["help", "nope"], Duration::from_secs(10));
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown command 'nope'"), "{err}");
}

/// Item 9: `info` prints the magnet link, and reads a magnet link.
#[test]
fn info_prints_and_reads_magnet_links() {
    let dir = TempDir::new("info");
    let t = make_torrent(
        &[("f", b"hello")],
        16 * KIB as u32,
        "hello.txt",
        Some("http://127.0.0.1:6969/announce"),
        false,
    );
    let torrent = dir.path().join("t.torrent");
    std::fs::write(&torrent, &t.bytes).unwrap();
    let hex: String = t.info_hash.iter().map(|b| format!("{b:02x}")).collect();
    let (code, out, err) = run(
        &["info", torrent.to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(0), "{err}");
    let link = out
        .lines()
        .find_map(|l| l.strip_prefix("Magnet:"))
        .unwrap_or_else(|| panic!("no magnet link: {out}"))
        .trim()
        .to_string();
    assert!(
        link.starts_with(&format!("magnet:?xt=urn:btih:{hex}&dn=hello.txt&tr=http")),
        "{link}"
    );
    let (code, out, err) = run(&["info", &link], Duration::from_secs(10));
    assert_eq!(code, Some(0), "info on a magnet link: {err}");
    assert!(out.contains(&hex) && out.contains("hello.txt"), "{out}");
    assert!(out.contains("http://127.0.0.1:6969/announce"), "{out}");
}

/// Item 8: the summary names where the files are; `verify` draws the piece map.
#[test]
fn summary_names_the_output_and_verify_draws_the_map() {
    let t = three_files();
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    let dir = TempDir::new("summary");
    let torrent = dir.path().join("three.torrent");
    std::fs::write(&torrent, &t.bytes).unwrap();
    let out = dir.path().join("out");
    let (torrent, out) = (torrent.to_str().unwrap(), out.to_str().unwrap());
    let peer = seeder.addr().to_string();
    let (code, _, err) = download(torrent, out, &peer, &[]);
    assert_eq!(code, Some(0), "{err}");
    let summary = err.lines().last().unwrap_or("");
    assert!(summary.contains("120.0 KiB complete in"), "{err}");
    assert!(summary.contains(&format!("{out}/three")), "{err}");
    let (code, stdout, _) = run(&["verify", torrent, "-d", out], Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("pieces: 4 of 4 on disk ▕████▏"), "{stdout}");
}

/// Item 5: a dead tracker ends the download with one line, `strand: no peers: tracker URL:
/// connection refused`, and no log line; a tracker with a scheme strand cannot speak is
/// refused at once.
#[test]
fn tracker_errors_are_one_line() {
    let dir = TempDir::new("dead");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/announce", closed.local_addr().unwrap());
    drop(closed);
    for (announce, timeout, want) in [
        (
            url.as_str(),
            "1",
            format!("strand: no peers: tracker {url}: connection refused"),
        ),
        (
            "ftp://127.0.0.1:1/announce",
            "30",
            "strand: no peers: tracker ftp://127.0.0.1:1/announce: unsupported URL scheme"
                .to_string(),
        ),
    ] {
        let t = make_torrent(
            &[("f", b"data")],
            16 * KIB as u32,
            "dead",
            Some(announce),
            false,
        );
        let torrent = dir.path().join("dead.torrent");
        std::fs::write(&torrent, &t.bytes).unwrap();
        let started = Instant::now();
        let mut child = strand()
            .args(["download", torrent.to_str().unwrap(), "-o"])
            .arg(dir.path().join("out"))
            .args(LISTEN)
            .args(["--tracker-timeout", timeout])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn_checked()
            .unwrap();
        let status = wait_child(&mut child, Duration::from_secs(40));
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(1), "{err}");
        assert_eq!(
            err.lines().collect::<Vec<_>>(),
            vec![want.as_str()],
            "{err}"
        );
        if announce.starts_with("ftp") {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "not refused at once"
            );
        }
    }
}

/// Item 4: a file in the way that holds none of the torrent's data, with no resume file, is
/// refused by name unless `--overwrite` is given.
#[test]
fn a_users_own_file_is_not_overwritten() {
    let data = payload(100 * KIB, 4);
    let t = make_torrent(&[("f", &data)], 32 * KIB as u32, "notes.txt", None, false);
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    let dir = TempDir::new("overwrite");
    let torrent = dir.path().join("t.torrent");
    std::fs::write(&torrent, &t.bytes).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mine = out.join("notes.txt");
    std::fs::write(&mine, b"my own notes, not a torrent\n").unwrap();
    let (torrent, out_s) = (torrent.to_str().unwrap(), out.to_str().unwrap());
    let peer = seeder.addr().to_string();

    let (code, _, err) = download(torrent, out_s, &peer, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{} holds none of the torrent's data",
            mine.display()
        )) && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&mine).unwrap(),
        b"my own notes, not a torrent\n"
    );

    let (code, _, err) = download(torrent, out_s, &peer, &["--overwrite"]);
    assert_eq!(code, Some(0), "{err}");
    assert_output_matches(&t, &out);
}

/// Item 10: `seed` with a folder that holds none of the data says so, and how to download,
/// instead of quietly downloading the whole torrent into it.
#[test]
fn seed_with_nothing_to_seed_says_so() {
    let dir = TempDir::new("seed-nothing");
    let t = three_files();
    let torrent = dir.path().join("three.torrent");
    std::fs::write(&torrent, &t.bytes).unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, _, err) = run(
        &[
            &[
                "seed",
                torrent.to_str().unwrap(),
                "-d",
                empty.to_str().unwrap(),
            ][..],
            &LISTEN,
        ]
        .concat(),
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("holds none of the torrent's data"), "{err}");
    assert!(err.contains("strand download"), "{err}");
    assert_eq!(list_files(&empty), Vec::<String>::new());
}

/// Item 9: `RUST_LOG=strand=debug` tells each peer's story: connect, handshake with the
/// client's name, choke changes, and why it left, never a raw "failed to fill whole buffer".
#[test]
fn debug_log_tells_each_peers_story() {
    let t = three_files();
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    let dir = TempDir::new("debuglog");
    let torrent = dir.path().join("three.torrent");
    std::fs::write(&torrent, &t.bytes).unwrap();
    let mut child = strand()
        .args(["download", torrent.to_str().unwrap(), "-o"])
        .arg(dir.path().join("out"))
        .args(["--peer", &seeder.addr().to_string()])
        .args(LISTEN)
        .env("RUST_LOG", "strand=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn_checked()
        .unwrap();
    let status = wait_child(&mut child, Duration::from_secs(60));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    let addr = seeder.addr();
    for want in [
        format!("{addr}: connecting"),
        format!("{addr}: handshake done: strand test kit 0.0.0.1"),
        format!("{addr}: unchoked us"),
        format!("{addr}: left: "),
    ] {
        assert!(err.contains(&want), "no '{want}' in:\n{err}");
    }
    assert!(!err.contains("failed to fill whole buffer"), "{err}");
}

/// Item 10: a `--preallocate` that fails (here: the file-size limit, as a full disk would)
/// leaves no file behind.
#[test]
fn a_failed_preallocate_leaves_nothing() {
    use std::os::unix::process::CommandExt;
    let data = payload(4 << 20, 6);
    let t = make_torrent(&[("f", &data)], 256 * KIB as u32, "big.bin", None, false);
    let dir = TempDir::new("prealloc");
    let torrent = dir.path().join("t.torrent");
    std::fs::write(&torrent, &t.bytes).unwrap();
    let out = dir.path().join("out");
    let mut cmd = strand();
    cmd.args(["download", torrent.to_str().unwrap(), "-o"])
        .arg(&out)
        .args([
            "--preallocate",
            "--peer",
            "127.0.0.1:9",
            "--tracker-timeout",
            "5",
        ])
        .args(LISTEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the child only calls async-signal-safe setrlimit and
    // signal; SIGXFSZ ignored makes a write past the limit fail with EFBIG instead of killing.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1 << 20,
                rlim_max: 1 << 20,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn_checked().unwrap();
    let status = wait_child(&mut child, Duration::from_secs(30));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("big.bin"), "the error names the file: {err}");
    assert_eq!(list_files(&out), Vec::<String>::new(), "{err}");
}

/// `create` without `-t` makes a trackerless torrent (peers meet over the DHT), as
/// mktorrent and transmission-create do; a private torrent still needs a tracker.
#[test]
fn create_without_a_tracker_is_trackerless_unless_private() {
    let dir = TempDir::new("create-trackerless");
    let file = dir.path().join("f.bin");
    std::fs::write(&file, payload(40 * KIB, 9)).unwrap();
    let out = dir.path().join("f.torrent");
    let (code, _, err) = run(
        &[
            "create",
            file.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-q",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(0), "{err}");
    let meta = strand::metainfo::Metainfo::load(&out).unwrap();
    assert!(meta.trackers.is_empty());
    let private = dir.path().join("p.torrent");
    let (code, _, err) = run(
        &[
            "create",
            file.to_str().unwrap(),
            "-o",
            private.to_str().unwrap(),
            "--private",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--private") && err.contains("-t URL"), "{err}");
}

/// Writes `t` into `dir` as `NAME.torrent` and returns the path as a string.
fn torrent_in(t: &TestTorrent, dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(format!("{name}.torrent"));
    std::fs::write(&path, &t.bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// The three-file torrent served by an honest test seeder, written into a fresh folder,
/// with `out` (not yet made) to download into.
struct Served {
    t: TestTorrent,
    seeder: TestSeeder,
    _dir: TempDir,
    torrent: String,
    out: std::path::PathBuf,
    peer: String,
}

impl Served {
    fn three(tag: &str) -> Served {
        let t = three_files();
        let seeder = TestSeeder::start(&t, Behaviour::Honest);
        let dir = TempDir::new(tag);
        let torrent = torrent_in(&t, dir.path(), "three");
        let out = dir.path().join("out");
        let peer = seeder.addr().to_string();
        Served {
            t,
            seeder,
            _dir: dir,
            torrent,
            out,
            peer,
        }
    }

    fn out(&self) -> &str {
        self.out.to_str().unwrap()
    }

    /// `download` into `out` from the seeder, with `extra` flags.
    fn download(&self, extra: &[&str]) -> (Option<i32>, String, String) {
        download(&self.torrent, self.out(), &self.peer, extra)
    }
}

/// Starts `strand ARGS` on 127.0.0.1 with no DHT, its stderr piped.
fn start(args: &[&str]) -> Child {
    strand()
        .args(args)
        .args(LISTEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn_checked()
        .expect("spawn strand")
}

/// Waits at most 20 s for `child` to end; its status and what it wrote on stderr.
fn ended(child: &mut Child) -> (std::process::ExitStatus, String) {
    let status = wait_child(child, Duration::from_secs(20));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

/// Retry finding: `2MiB`, `2MB`, `512KiB` are rates and sizes like `2M` and `512K`.
#[test]
fn rates_and_sizes_take_iec_and_si_spellings() {
    let sv = Served::three("rates");
    let (code, _, err) =
        sv.download(&["-q", "--download-limit", "2MiB", "--upload-limit", "512KiB"]);
    assert_eq!(code, Some(0), "{err}");
    let out2 = sv.out.with_file_name("out2");
    let out2 = out2.to_str().unwrap();
    let (code, _, err) = download(
        &sv.torrent,
        out2,
        &sv.peer,
        &["-q", "--download-limit", "2MB"],
    );
    assert_eq!(code, Some(0), "{err}");
    let bad = ["-q", "--download-limit", "2 parsecs"];
    let (code, _, err) = download(&sv.torrent, out2, &sv.peer, &bad);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--download-limit"), "{err}");
}

/// Retry finding: `-o` and `-d` name the folder for every command (one canonical, one alias).
#[test]
fn output_and_data_folder_flags_are_aliases() {
    let sv = Served::three("alias");
    let (t, torrent, out, peer) = (&sv.t, &sv.torrent, sv.out(), &sv.peer);
    let args = [
        &["download", torrent, "-d", out, "--peer", peer, "-q"][..],
        &LISTEN,
    ]
    .concat();
    let (code, _, err) = run(&args, Duration::from_secs(60));
    assert_eq!(code, Some(0), "download -d: {err}");
    assert_output_matches(t, &sv.out);
    for flag in ["-o", "--output"] {
        let (code, stdout, err) = run(&["verify", torrent, flag, out], Duration::from_secs(20));
        assert_eq!(code, Some(0), "verify {flag}: {stdout}{err}");
    }
    for cmd in ["download", "seed", "verify"] {
        let (_, help, _) = run(&["help", cmd], Duration::from_secs(10));
        assert!(
            help.contains("-o, --output") && help.contains("-d, --data"),
            "{cmd} help names both spellings: {help}"
        );
    }
}

/// Retry finding: `verify -d /nonexistent` says the folder is missing, in one line.
#[test]
fn verify_names_a_missing_folder() {
    let dir = TempDir::new("nofolder");
    let torrent = torrent_in(&three_files(), dir.path(), "three");
    let missing = dir.path().join("nonexistent");
    let (code, stdout, err) = run(
        &["verify", &torrent, "-d", missing.to_str().unwrap()],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(1), "{stdout}{err}");
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        vec![format!("strand: {}: no such folder", missing.display())],
        "{stdout}"
    );
}

/// Retry finding: `create` refuses to replace its output unless `--overwrite` (or `-f`), and
/// writes a creation date.
#[test]
fn create_refuses_to_overwrite_and_dates_the_torrent() {
    let dir = TempDir::new("create-over");
    let file = dir.path().join("f.bin");
    std::fs::write(&file, payload(40 * KIB, 9)).unwrap();
    let out = dir.path().join("f.torrent");
    std::fs::write(&out, b"precious").unwrap();
    let create = |extra: &[&str]| {
        let base = [
            "create",
            file.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        run(&[&base[..], extra].concat(), Duration::from_secs(20))
    };
    let (code, _, err) = create(&["-q"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("{} already exists", out.display())) && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    for flag in ["--overwrite", "-f"] {
        let (code, _, err) = create(&[flag, "-q"]);
        assert_eq!(code, Some(0), "{flag}: {err}");
    }
    let meta = strand::metainfo::Metainfo::load(&out).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let date = meta.creation_date.expect("a creation date");
    assert!((now - 60..=now + 1).contains(&date), "{date} vs {now}");
}

/// Second retry finding: `create -t notaurl` wrote a torrent whose tracker nobody can reach.
/// A tracker that is not a URL is refused, naming the flag; a URL strand cannot announce to
/// (other clients may: wss://) is written with a warning.
#[test]
fn create_refuses_a_tracker_that_is_not_a_url() {
    let dir = TempDir::new("create-tracker-url");
    let file = dir.path().join("f.bin");
    std::fs::write(&file, payload(20 * KIB, 4)).unwrap();
    let out = dir.path().join("f.torrent");
    let create = |tracker: &str| {
        let args = [
            "create",
            file.to_str().unwrap(),
            "-t",
            tracker,
            "-o",
            out.to_str().unwrap(),
            "-f",
        ];
        run(&args, Duration::from_secs(20))
    };
    for bad in ["notaurl", "http://", "127.0.0.1:6969/announce"] {
        let (code, _, err) = create(bad);
        assert_eq!(code, Some(2), "{bad}: {err}");
        assert!(err.contains("-t") && err.contains(bad), "{bad}: {err}");
        assert!(!out.exists(), "{bad}: a torrent was written");
    }
    let (code, _, err) = create("ftp://127.0.0.1/x");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("warning") && err.contains("ftp://127.0.0.1/x"),
        "{err}"
    );
    let meta = strand::metainfo::Metainfo::load(&out).unwrap();
    assert_eq!(meta.trackers, vec![vec!["ftp://127.0.0.1/x".to_string()]]);
}

/// Second retry finding: `create -o DIR` refused DIR as existing, and with `-f` failed to
/// write it. Into a folder, the torrent goes in as NAME.torrent.
#[test]
fn create_into_a_folder_names_the_torrent_inside_it() {
    let dir = TempDir::new("create-into-dir");
    let file = dir.path().join("f.bin");
    std::fs::write(&file, payload(20 * KIB, 6)).unwrap();
    let into = dir.path().join("torrents");
    std::fs::create_dir(&into).unwrap();
    let args = [
        "create",
        file.to_str().unwrap(),
        "-t",
        "http://127.0.0.1:1/announce",
        "-o",
        into.to_str().unwrap(),
    ];
    let (code, _, err) = run(&args, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    let out = into.join("f.bin.torrent");
    assert!(err.contains(&format!("wrote {}", out.display())), "{err}");
    assert_eq!(
        strand::metainfo::Metainfo::load(&out).unwrap().name,
        "f.bin"
    );
}

/// Retry finding: a bare 40-hex info hash is a magnet link for `info` and `download`.
#[test]
fn a_bare_info_hash_is_a_magnet_link() {
    use common::strand_peer::StrandPeer;
    let t = three_files();
    let seed_dir = TempDir::new("bare-seed");
    let seeder = StrandPeer::seeder(&t, seed_dir.path());
    let hex: String = t.info_hash.iter().map(|b| format!("{b:02x}")).collect();
    let (code, stdout, err) = run(&["info", &hex], Duration::from_secs(10));
    assert_eq!(code, Some(0), "{err}");
    assert!(stdout.contains(&format!("Info hash:    {hex}")), "{stdout}");
    let v2 = "ab".repeat(32);
    let (code, _, err) = run(&["info", &v2], Duration::from_secs(10));
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        "strand: v2 (btmh) magnet links are not supported yet\n"
    );
    let dir = TempDir::new("bare-out");
    let out = dir.path().join("out");
    let upper = hex.to_uppercase();
    let (code, _, err) = download(
        &upper,
        out.to_str().unwrap(),
        &seeder.addr.to_string(),
        &["-q"],
    );
    assert_eq!(code, Some(0), "download HASH: {err}");
    assert_output_matches(&t, &out);
}

/// Retry finding: with `--only`, the summary counts the chosen files' bytes, not the whole
/// pieces they share with other files.
#[test]
fn selective_summary_counts_the_chosen_files_bytes() {
    let sv = Served::three("sel-summary");
    let (code, _, err) = sv.download(&["--only", "2"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        sv.seeder.blocks_served(),
        4,
        "pieces 1 and 2, two blocks each"
    );
    let summary = err.lines().last().unwrap_or("");
    assert!(summary.starts_with("50.0 KiB complete in"), "{err}");
}

/// Retry finding: `download --seed` stopped by Ctrl-C after the download completed exits 0
/// (the download succeeded; seeding is open-ended), and says it seeded until Ctrl-C.
#[test]
fn ctrl_c_while_seeding_after_a_download_exits_zero() {
    let sv = Served::three("seed-ctrlc");
    let (out, peer) = (&sv.out, &sv.peer);
    let mut child = start(&[
        "download",
        &sv.torrent,
        "-o",
        sv.out(),
        "--seed",
        "--peer",
        peer,
    ]);
    let complete = || {
        let same = |name: &str, want: &[u8]| {
            std::fs::read(out.join("three").join(name)).ok().as_deref() == Some(want)
        };
        same("a.bin", &payload(40 * KIB, 1)) && same("c.bin", &payload(30 * KIB, 3))
    };
    assert!(wait_until(Duration::from_secs(30), complete), "no download");
    std::thread::sleep(Duration::from_millis(1500));
    interrupt(&child);
    let (status, err) = ended(&mut child);
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("until Ctrl-C"), "{err}");
}

/// Retry finding: `seed` on the folder of a selective download seeds the files there instead
/// of saying it holds none of the data.
#[test]
fn seed_after_a_selective_download_seeds_what_is_there() {
    let sv = Served::three("seed-sel");
    let (code, _, err) = sv.download(&["--only", "1", "-q"]);
    assert_eq!(code, Some(0), "{err}");
    let mut child = start(&["seed", &sv.torrent, "-d", sv.out()]);
    std::thread::sleep(Duration::from_millis(1500));
    let running = child.try_wait().unwrap().is_none();
    if running {
        interrupt(&child);
    }
    let (status, err) = ended(&mut child);
    assert!(running, "seed ended at once: {status:?} {err}");
    assert!(!err.contains("holds none"), "{err}");
    assert!(err.contains("a.bin"), "names the file it seeds: {err}");
    assert!(
        !sv.out.join("three/b.bin").exists(),
        "seed fetched files the folder does not hold"
    );
}

/// The paths of the parts file and the `.kept` records of `t` under `out`.
fn state_files(t: &TestTorrent, out: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let resume = out.join(resume_file(t));
    (
        resume.with_extension("parts"),
        resume.with_extension("kept"),
    )
}

/// Item 10c: once the chosen files are complete the parts file goes; a rerun of the same
/// download receives nothing, and `verify --only` still passes (and still finds damage).
#[test]
fn parts_file_goes_once_the_chosen_files_are_complete() {
    let sv = Served::three("parts-go");
    let (torrent, out) = (&sv.torrent, sv.out());
    let (parts, kept) = state_files(&sv.t, &sv.out);

    let (code, _, err) = sv.download(&["--only", "2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !parts.exists(),
        "the parts file stays after the download: {err}"
    );
    assert!(
        kept.exists(),
        "no record of the chosen file's shared pieces"
    );
    let b = std::fs::read(sv.out.join("three/b.bin")).unwrap();
    assert_eq!(b, payload(50 * KIB, 2));

    let served = sv.seeder.blocks_served();
    let (code, _, err) = sv.download(&["--only", "2"]);
    assert_eq!(code, Some(0), "rerun: {err}");
    assert!(
        err.contains("0 of 4 pieces already on disk, 2 more kept for the chosen files"),
        "{err}"
    );
    assert_eq!(
        sv.seeder.blocks_served(),
        served,
        "the rerun fetched again: {err}"
    );
    let summary = err.lines().last().unwrap_or("");
    assert_eq!(
        summary,
        format!("50.0 KiB in {out}/three complete; uploaded 0 B"),
        "{err}"
    );
    assert!(!parts.exists());

    let limit = Duration::from_secs(20);
    let (code, stdout, err) = run(&["verify", torrent, "-d", out, "--only", "2"], limit);
    assert_eq!(code, Some(0), "verify --only 2: {stdout}{err}");
    assert!(stdout.contains("b.bin (50.0 KiB): complete"), "{stdout}");
    let (code, stdout, _) = run(&["verify", torrent, "-d", out], limit);
    assert_eq!(code, Some(1), "a.bin and c.bin are not there: {stdout}");

    // A changed byte of the chosen file is found, though its pieces are not whole.
    let mut bad = b.clone();
    bad[100] ^= 1;
    std::fs::write(sv.out.join("three/b.bin"), &bad).unwrap();
    let (code, stdout, _) = run(&["verify", torrent, "-d", out, "--only", "2"], limit);
    assert_eq!(code, Some(1), "a damaged b.bin passed: {stdout}");
}

/// A download of file 2 (b.bin, 2 MiB) of a three-file torrent over 64 KiB pieces, killed
/// (-9) about a third of the way: its seeder, folders, and the blocks served by then.
struct Killed {
    t: TestTorrent,
    b: Vec<u8>,
    seeder: TestSeeder,
    _dir: TempDir,
    torrent: String,
    out: std::path::PathBuf,
    peer: String,
    served: u64,
}

impl Killed {
    fn start(tag: &str, extra: &[&str]) -> Killed {
        let (a, b, c) = (
            payload(KIB * KIB + 5 * KIB, 11),
            payload(2 * KIB * KIB, 12),
            payload(KIB * KIB, 13),
        );
        let t = make_torrent(
            &[("a.bin", &a), ("b.bin", &b), ("c.bin", &c)],
            64 * KIB as u32,
            "big3",
            None,
            true,
        );
        let seeder = TestSeeder::start(&t, Behaviour::Honest);
        let dir = TempDir::new(tag);
        let torrent = torrent_in(&t, dir.path(), "big3");
        let out = dir.path().join("out");
        let peer = seeder.addr().to_string();
        let flags = ["--only", "2", "--download-limit", "512K", "-q"];
        let base = [
            "download",
            &torrent,
            "-o",
            out.to_str().unwrap(),
            "--peer",
            &peer,
        ];
        let mut child = start(&[&base[..], &flags, extra].concat());
        // b.bin's 33 pieces are 132 blocks: kill after about a third of them.
        assert!(
            wait_until(Duration::from_secs(20), || seeder.blocks_served() >= 40),
            "the download never got going"
        );
        std::thread::sleep(Duration::from_millis(500));
        child.kill().unwrap();
        let status = wait_child(&mut child, Duration::from_secs(10));
        assert!(status.code().is_none(), "not killed: {status:?}");
        let served = seeder.blocks_served();
        assert!(
            served < 130,
            "the download finished before the kill ({served} blocks)"
        );
        Killed {
            t,
            b,
            seeder,
            _dir: dir,
            torrent,
            out,
            peer,
            served,
        }
    }
}

/// N of "resuming: N of M pieces …" or "checked the data on disk (…): N of M pieces good".
fn good_pieces(stderr: &str) -> Option<u32> {
    let line = stderr
        .lines()
        .find(|l| l.contains(" of ") && l.contains(" pieces"))?;
    line.split(": ").last()?.split(' ').next()?.parse().ok()
}

/// Item 10c: a selective download killed (-9) in the middle resumes, and its parts file
/// still goes at the end.
#[test]
fn a_killed_selective_download_resumes_and_drops_its_parts() {
    let k = Killed::start("parts-kill", &[]);
    let (t, b, seeder, served) = (&k.t, &k.b, &k.seeder, k.served);
    let (torrent, out, out_s, peer) = (&k.torrent, &k.out, k.out.to_str().unwrap(), &k.peer);
    let (code, _, err) = download(torrent, out_s, peer, &["--only", "2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        good_pieces(&err).is_some_and(|n| n > 0),
        "nothing resumed: {err}"
    );
    assert!(
        seeder.blocks_served() - served < 130,
        "fetched it all again"
    );
    let (parts, _) = state_files(t, out);
    assert!(!parts.exists());
    assert_eq!(&std::fs::read(out.join("big3/b.bin")).unwrap(), b);
    let (code, stdout, _) = run(
        &["verify", torrent, "-d", out_s, "--only", "2"],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(0), "{stdout}");
}

/// Item 2 after 10c: widening a selective download that did not finish (its parts file is
/// still there) starts the newly chosen file from the bytes kept for it, and once every
/// file is complete no parts file or record stays.
#[test]
fn widening_an_unfinished_selective_download_keeps_its_shared_pieces() {
    // In order from b.bin's first piece, which it shares with a.bin.
    let k = Killed::start("parts-widen", &["--sequential"]);
    let out_s = k.out.to_str().unwrap();
    let (parts, kept) = state_files(&k.t, &k.out);
    assert!(
        parts.exists(),
        "an unfinished download keeps its parts file"
    );
    let (code, _, err) = download(&k.torrent, out_s, &k.peer, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("1 newly chosen files start from the pieces kept in .strand"),
        "{err}"
    );
    assert!(
        good_pieces(&err).is_some_and(|n| n > 0),
        "nothing kept: {err}"
    );
    assert_output_matches(&k.t, &k.out);
    assert!(!parts.exists() && !kept.exists(), "strand's leftovers stay");
}

/// User finding: `verify` calls a 0-byte file that is not on disk complete (after `rm` of
/// it, or in an empty folder). A file that does not exist is missing, whatever its length.
#[test]
fn verify_calls_a_missing_empty_file_missing() {
    let t = make_torrent(
        &[("a.bin", &payload(40 * KIB, 4)), ("empty.txt", &[])],
        32 * KIB as u32,
        "withempty",
        None,
        true,
    );
    let dir = TempDir::new("verify-empty");
    let torrent = torrent_in(&t, dir.path(), "withempty");
    let out = dir.path().join("out");
    common::strand_peer::write_payload(&t, &out);
    let out_s = out.to_str().unwrap();
    let limit = Duration::from_secs(20);
    let (code, stdout, err) = run(&["verify", &torrent, "-d", out_s], limit);
    assert_eq!(code, Some(0), "all there: {stdout}{err}");
    std::fs::remove_file(out.join("withempty/empty.txt")).unwrap();
    let (code, stdout, err) = run(&["verify", &torrent, "-d", out_s], limit);
    assert_eq!(code, Some(1), "empty.txt removed: {stdout}{err}");
    assert!(stdout.contains("empty.txt (0 B): missing"), "{stdout}");
    let empty = dir.path().join("nothing");
    std::fs::create_dir(&empty).unwrap();
    let (code, stdout, err) = run(&["verify", &torrent, "-d", empty.to_str().unwrap()], limit);
    assert_eq!(code, Some(1), "empty folder: {stdout}{err}");
    assert!(stdout.contains("empty.txt (0 B): missing"), "{stdout}");
    assert!(err.contains("2 of all 2 files incomplete"), "{stdout}{err}");
}

/// User finding: a torrent with no tracker, no `--peer` and `--no-dht` has no source of
/// peers at all: it fails at once, in one line, instead of after the 60 s tracker timeout.
#[test]
fn no_source_of_peers_fails_at_once() {
    let dir = TempDir::new("nosource");
    let torrent = torrent_in(&three_files(), dir.path(), "three");
    let out = dir.path().join("out");
    let args = [
        &["download", &torrent, "-o", out.to_str().unwrap()][..],
        &LISTEN,
    ]
    .concat();
    let started = Instant::now();
    let (code, stdout, err) = run(&args, Duration::from_secs(90));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}: {err}",
        started.elapsed()
    );
    assert_eq!(code, Some(1), "{stdout}{err}");
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        vec![
            "strand: no peers: the torrent names no tracker, no --peer was given and the DHT is off (--no-dht)"
        ],
        "{stdout}"
    );
}

/// Second retry finding: with `--peer` given and that peer unreachable, the end said "no peer
/// was given". It names the peer and why it could not be used.
#[test]
fn an_unreachable_peer_is_named_when_no_peer_is_left() {
    let dir = TempDir::new("deadpeer");
    let torrent = torrent_in(&three_files(), dir.path(), "three");
    let out = dir.path().join("out");
    // A port that was just free: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let args = [
        &["download", &torrent, "-o", out.to_str().unwrap()][..],
        &["--peer", &dead, "--tracker-timeout", "2"],
        &LISTEN,
    ]
    .concat();
    let (code, stdout, err) = run(&args, Duration::from_secs(60));
    assert_eq!(code, Some(1), "{stdout}{err}");
    let line = err.lines().last().unwrap_or_default();
    assert!(
        line.starts_with("strand: no peers:") && line.contains(&dead),
        "{err}"
    );
    assert!(!line.contains("no peer was given"), "{err}");
}

/// Second retry finding: `-o` naming a file failed on an internal `.strand/….parts` path.
#[test]
fn download_into_a_file_says_it_is_not_a_folder() {
    let dir = TempDir::new("out-is-file");
    let torrent = torrent_in(&three_files(), dir.path(), "three");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"mine").unwrap();
    let args = [
        &["download", &torrent, "-o", file.to_str().unwrap()][..],
        &["--peer", "127.0.0.1:1"],
        &LISTEN,
    ]
    .concat();
    let (code, stdout, err) = run(&args, Duration::from_secs(30));
    assert_eq!(code, Some(1), "{stdout}{err}");
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        vec![format!("strand: {}: not a folder", file.display())],
        "{stdout}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
}

/// ...but with every piece already on disk there is nothing to fetch: no such error.
#[test]
fn no_source_of_peers_is_fine_when_nothing_is_missing() {
    let t = three_files();
    let dir = TempDir::new("nosource-done");
    let torrent = torrent_in(&t, dir.path(), "three");
    let out = dir.path().join("out");
    common::strand_peer::write_payload(&t, &out);
    let args = [
        &["download", &torrent, "-o", out.to_str().unwrap()][..],
        &LISTEN,
    ]
    .concat();
    let (code, stdout, err) = run(&args, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stdout}{err}");
    assert!(!err.contains("no peers"), "{err}");
}

/// User finding: `-q` is "every command", but `info -q` and `tracker -q` were refused and
/// `verify -q` printed everything. Now every command takes it, and it means the same: no
/// live line, no notes, no per-file listing; errors and the one-line result stay.
#[test]
fn quiet_is_taken_by_every_command_and_means_the_same() {
    let t = three_files();
    let seeder = TestSeeder::start(&t, Behaviour::Honest);
    let dir = TempDir::new("quiet");
    let torrent = torrent_in(&t, dir.path(), "three");
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    let limit = Duration::from_secs(20);
    let (code, stdout, err) = run(&["info", &torrent, "-q"], limit);
    assert_eq!(code, Some(0), "info -q: {err}");
    assert!(stdout.contains("Name:         three"), "{stdout}");
    assert!(
        !stdout.contains("a.bin"),
        "info -q lists no files: {stdout}"
    );
    let made = dir.path().join("made.torrent");
    let made_s = made.to_str().unwrap();
    let (code, _, err) = run(
        &[
            "create",
            &torrent,
            "-t",
            "http://127.0.0.1:1/a",
            "-o",
            made_s,
            "-q",
        ],
        limit,
    );
    assert_eq!(code, Some(0), "create -q: {err}");
    assert_eq!(
        err,
        format!("wrote {made_s}\n"),
        "create -q: the one line stays"
    );
    let peer = seeder.addr().to_string();
    let (code, _, err) = download(&torrent, out_s, &peer, &["-q"]);
    assert_eq!(code, Some(0), "download -q: {err}");
    assert_eq!(
        err.lines().count(),
        1,
        "download -q: the summary alone: {err}"
    );
    assert!(err.contains("120.0 KiB complete in"), "{err}");
    let (code, stdout, err) = run(&["verify", &torrent, "-d", out_s, "-q"], limit);
    assert_eq!(code, Some(0), "verify -q: {err}");
    assert_eq!(stdout, "all 3 files complete\n", "verify -q: {err}");
    std::fs::remove_file(out.join("three/b.bin")).unwrap();
    let (code, stdout, err) = run(&["verify", &torrent, "-d", out_s, "-q"], limit);
    assert_eq!(code, Some(1), "verify -q, b.bin gone: {stdout}");
    assert_eq!(stdout, "", "verify -q, b.bin gone");
    assert!(err.contains("3 of all 3 files incomplete"), "{err}");
    let mut tracker = strand()
        .args(["tracker", "--bind", "127.0.0.1", "--port", "0", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn_checked()
        .expect("spawn strand tracker");
    let stderr = tracker.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stderr).read_line(&mut first);
        let _ = tx.send(first);
    });
    let first = rx.recv_timeout(limit).unwrap_or_default();
    let _ = tracker.kill();
    let _ = tracker.wait();
    assert!(first.contains("announce URLs"), "tracker -q: {first}");
    let (_, help, _) = run(&["help"], limit);
    assert!(
        help.contains("-q, --quiet           no live line, no notes, no per-file listing"),
        "{help}"
    );
}
