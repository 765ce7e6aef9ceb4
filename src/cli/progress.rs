//! What a command draws on stderr while it works: the progress line of local work (hashing,
//! checking), and the drawing primitives the live line shares.
//!
//! Runs on the main thread; draws only when stderr is a terminal and `--quiet` is not given.

use std::io::Write;
use std::time::{Duration, Instant};

/// Columns of the terminal on stderr (80 when it cannot be told).
pub(crate) fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ writes one `winsize` into the zeroed struct we own; no other memory.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

/// Writes `s` to stderr as it is (no newline) and flushes; a closed stderr is ignored.
pub(crate) fn paint(s: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(s.as_bytes());
    let _ = err.flush();
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
        paint(&format!("\r\x1b[2K{} {percent:5.1}%", self.what));
    }

    pub(crate) fn clear(&mut self) {
        if self.show && self.last.is_some() {
            paint("\r\x1b[2K");
        }
    }
}
