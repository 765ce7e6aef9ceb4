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
