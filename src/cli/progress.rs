//! What a command draws on stderr while it works: the live line of a session, the progress
//! line of local work (hashing, checking), and the summary printed at the end.
//!
//! Runs on the main thread; draws only when stderr is a terminal and `--quiet` is not given.

use std::io::Write;
use std::time::{Duration, Instant};

use strand::session::{Progress, Summary};

use super::units::{duration, size};

/// The one line printed when a session ends.
pub(crate) fn summary_line(s: &Summary) -> String {
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
pub(crate) struct TaskLine {
    what: &'static str,
    show: bool,
    last: Option<Instant>,
}

impl TaskLine {
    pub(crate) fn new(what: &'static str, show: bool) -> TaskLine {
        TaskLine {
            what,
            show,
            last: None,
        }
    }

    pub(crate) fn draw(&mut self, done: u64, total: u64) {
        let due = self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if !self.show || !(due || done == total) {
            return;
        }
        self.last = Some(Instant::now());
        let percent = if total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / total as f64
        };
        eprint!("\r\x1b[2K{} {percent:5.1}%", self.what);
    }

    pub(crate) fn clear(&mut self) {
        if self.show && self.last.is_some() {
            eprint!("\r\x1b[2K");
        }
    }
}

/// The live progress line, redrawn in place on stderr.
#[derive(Default)]
pub(crate) struct ProgressLine {
    drawn: bool,
}

impl ProgressLine {
    pub(crate) fn draw(&mut self, p: &Progress) {
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
        if let Some(nodes) = p.dht_nodes {
            let _ = write!(err, "  dht {nodes}");
        }
        let _ = err.flush();
        self.drawn = true;
    }

    pub(crate) fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }
}
