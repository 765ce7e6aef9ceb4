//! The `strand` binary as a new user meets it (issue 17): each test runs the built program on
//! loopback only, bounded in time, and checks what the user sees.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const KIB: usize = 1024;

fn strand() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strand"));
    c.env("RUST_LOG", "off").env_remove("RUST_BACKTRACE");
    c
}

/// Waits at most `limit` for `child`, killing it (by its own handle) when it overstays.
fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("strand did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
            .spawn()
            .expect("spawn strand");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty(), "{args:?} printed nothing");
        let status = wait_bounded(&mut child, Duration::from_secs(20));
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

/// Item 2: `verify` after `download --only 2` sees the pieces kept in the parts file and
/// exits 0 for the chosen file; a later download of every file keeps those pieces.
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
    let fetch = [
        "download",
        torrent,
        "-o",
        out,
        "--peer",
        &peer,
        "--bind",
        "127.0.0.1",
    ];
    let fetch = |extra: &[&str]| run(&[&fetch[..], extra, &["--port", "0"]].concat(), limit);

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
    assert!(
        err.contains("2 of 4 pieces"),
        "pieces 1 and 2 were kept: {err}"
    );
    assert_eq!(
        seeder.blocks_served() - served,
        4,
        "only pieces 0 and 3 (two blocks each) are fetched again"
    );
    assert_output_matches(&t, std::path::Path::new(out));
}
