//! The live line of a session, redrawn in place on stderr about once a second: the torrent's
//! name, bytes done / total, a map of its pieces, rates, ETA and peers, fitted to the
//! terminal's width. The piece map is also what `strand verify` draws of the data on disk.
//!
//! Runs on the main thread (the session calls back into it). [`render`] and [`piece_map`]
//! are pure; [`LiveLine`] does the drawing.

use std::time::Duration;

use strand::bitfield::Bitfield;
use strand::session::Progress;

use super::progress::{paint, terminal_width};
use super::units::{duration, size};

/// Shades of a piece-map cell, from none of its pieces on disk to all of them.
const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];
/// A cell holding no piece the chosen files need.
const UNWANTED: char = '·';
/// Below this download rate (bytes per second) a download is called stalled.
const STALLED_BELOW: f64 = 1024.0;
/// The piece map's width on the live line: a multiple of `MAP_MIN`, at most `MAP_MAX`.
const MAP_MIN: usize = 10;
const MAP_MAX: usize = 50;

/// `cells` characters (fewer when there are fewer pieces), each standing for a run of
/// pieces and shaded by how many of its wanted pieces are on disk.
pub(crate) fn piece_map(have: &Bitfield, wanted: &Bitfield, cells: usize) -> String {
    let n = have.len();
    let cells = u32::try_from(cells).unwrap_or(u32::MAX).min(n);
    (0..cells)
        .map(|c| {
            let cut = |c: u32| (u64::from(c) * u64::from(n) / u64::from(cells)) as u32;
            let run = cut(c)..cut(c + 1);
            let want = run.clone().filter(|&p| wanted.has(p)).count();
            let got = run.filter(|&p| wanted.has(p) && have.has(p)).count();
            if want == 0 {
                UNWANTED
            } else if got == want {
                SHADES[4]
            } else {
                // 1..=3 for a partly present run, 0 for none: never full before it is.
                SHADES[(got * 3).div_ceil(want)]
            }
        })
        .collect()
}

/// The live line for `p`, at most `width - 1` characters wide (the last column is left
/// free so that the terminal never wraps).
pub(crate) fn render(name: &str, p: &Progress, width: usize) -> String {
    let room = width.saturating_sub(1);
    let left = p.total_bytes.saturating_sub(p.verified_bytes);
    let done = if left == 0 {
        format!("{} seeding", size(p.total_bytes))
    } else {
        let percent = p.verified_bytes as f64 * 100.0 / p.total_bytes.max(1) as f64;
        format!(
            "{}/{} ({percent:.1}%)",
            size(p.verified_bytes),
            size(p.total_bytes)
        )
    };
    let down = if left == 0 {
        String::new()
    } else if p.peers_connected == 0 {
        "↓ waiting for peers  ".to_string()
    } else if p.download_rate < STALLED_BELOW {
        "↓ stalled  ".to_string()
    } else {
        let eta = Duration::from_secs_f64(left as f64 / p.download_rate);
        format!(
            "↓ {}/s ETA {}  ",
            size(p.download_rate as u64),
            duration(eta)
        )
    };
    let dht = p
        .dht_nodes
        .map(|n| format!("  dht {n}"))
        .unwrap_or_default();
    let sent = if p.uploaded_bytes > 0 {
        format!(" ({} sent)", size(p.uploaded_bytes))
    } else {
        String::new()
    };
    let web = match p.web_seeds {
        0 => String::new(),
        1 => " + 1 web seed".to_string(),
        n => format!(" + {n} web seeds"),
    };
    let tail = format!(
        "{down}↑ {}/s{sent}  peers {}/{}{web}{dht}",
        size(p.upload_rate as u64),
        p.peers_connected,
        p.peers_known,
    );
    // The name gets up to a third of the room; the map what is left, if enough.
    let fixed = done.chars().count() + tail.chars().count() + 4;
    let name = fit(name, (room / 3).max(8).min(room.saturating_sub(fixed)));
    let spare = room.saturating_sub(fixed + name.chars().count() + 3);
    // In steps of MAP_MIN cells, so that the map keeps its width while the numbers change.
    let cells = spare.min(MAP_MAX) / MAP_MIN * MAP_MIN;
    let map = if cells > 0 && !p.have.is_empty() {
        format!("▕{}▏ ", piece_map(&p.have, &p.wanted, cells))
    } else {
        String::new()
    };
    let line = if name.is_empty() {
        format!("{done}  {map}{tail}")
    } else {
        format!("{name}  {done}  {map}{tail}")
    };
    fit(&line, room)
}

/// `s` cut to `max` characters, ending in `…` when cut.
fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else if max == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// The live line of a session on stderr, redrawn in place.
pub(crate) struct LiveLine {
    name: String,
    drawn: bool,
}

impl LiveLine {
    pub(crate) fn new(name: &str) -> LiveLine {
        LiveLine {
            name: name.to_string(),
            drawn: false,
        }
    }

    pub(crate) fn draw(&mut self, p: &Progress) {
        let line = render(&self.name, p, terminal_width());
        paint(&format!("\r\x1b[2K{line}"));
        self.drawn = true;
    }

    /// Removes the line, so that what is printed next starts on a clean line.
    pub(crate) fn clear(&mut self) {
        if self.drawn {
            paint("\r\x1b[2K");
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(n: u32, set: impl Iterator<Item = u32>) -> Bitfield {
        let mut b = Bitfield::new(n);
        for i in set {
            b.set(i);
        }
        b
    }

    fn progress(done: u64, total: u64, rate: f64) -> Progress {
        Progress {
            verified_bytes: done,
            total_bytes: total,
            download_rate: rate,
            peers_connected: 3,
            peers_known: 7,
            web_seeds: 0,
            uploaded_bytes: 0,
            upload_rate: 0.0,
            have: bits(100, 0..(done * 100 / total.max(1)) as u32),
            wanted: Bitfield::full(100),
            dht_nodes: None,
        }
    }

    #[test]
    fn map_shades_each_run_by_what_is_on_disk() {
        let wanted = Bitfield::full(8);
        let have = bits(8, [0, 1, 2, 3, 4].into_iter());
        assert_eq!(piece_map(&have, &wanted, 4), "██▒ ");
        assert_eq!(piece_map(&have, &wanted, 8), "█████   ");
        assert_eq!(piece_map(&have, &wanted, 100).chars().count(), 8);
        let wanted = bits(8, 4..8);
        assert_eq!(piece_map(&have, &wanted, 4), "··▒ ");
        let have = bits(8, [0].into_iter());
        assert_eq!(
            piece_map(&have, &Bitfield::full(8), 1),
            "░",
            "1 of 8: shaded"
        );
    }

    #[test]
    fn line_shows_name_bytes_rate_eta_peers_and_map() {
        let line = render(
            "ubuntu.iso",
            &progress(105 << 20, 200 << 20, 5.0 * 1048576.0),
            120,
        );
        for part in [
            "ubuntu.iso",
            "105.0 MiB/200.0 MiB (52.5%)",
            "↓ 5.0 MiB/s ETA 0:19",
            "peers 3/7",
            "▕█",
        ] {
            assert!(line.contains(part), "{part} missing from {line}");
        }
    }

    #[test]
    fn a_stall_says_stalled_not_an_absurd_eta() {
        let line = render("x", &progress(1 << 20, 200 << 30, 5.0), 120);
        assert!(line.contains("↓ stalled"), "{line}");
        assert!(!line.contains("ETA"), "{line}");
        let mut alone = progress(1 << 20, 200 << 30, 0.0);
        alone.peers_connected = 0;
        let line = render("x", &alone, 120);
        assert!(line.contains("↓ waiting for peers"), "{line}");
    }

    #[test]
    fn line_fits_every_width() {
        let p = progress(105 << 20, 200 << 20, 5.0 * 1048576.0);
        let name = "a rather long torrent name that goes on and on.mkv";
        for width in 0..200 {
            let line = render(name, &p, width);
            assert!(line.chars().count() < width.max(1), "{width}: {line}");
        }
        assert!(
            !render(name, &p, 60).contains('▕'),
            "no room for a map at 60"
        );
    }
}
