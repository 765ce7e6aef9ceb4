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
use super::units::{duration, size, size_short};

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
/// free so that the terminal never wraps). The fields are written in full when the line
/// still has room for a map of [`MAP_MIN`] cells; else shorter (`105MiB/200MiB 52%`,
/// `↓5.0MiB/s 0:19`), so that an 80-column terminal still shows the map; a line too
/// narrow even for those goes without it, and one narrower still gets the shortest line
/// that fits (`41% 1.2MiB/2.9MiB ↓300KiB/s`, down to `41%`).
pub(crate) fn render(name: &str, p: &Progress, width: usize) -> String {
    let room = width.saturating_sub(1);
    let full = fields(p, false);
    let short = fields(p, true);
    lay_out(name, p, &full, room, MAP_MIN)
        .or_else(|| lay_out(name, p, &short, room, MAP_MIN))
        .or_else(|| lay_out(name, p, &short, room, 0))
        .or_else(|| {
            shortest(p)
                .into_iter()
                .find(|line| line.chars().count() <= room)
        })
        .unwrap_or_default()
}

/// The lines for a terminal too narrow for the fields, longest first: percent, bytes and
/// download rate; percent and bytes; the percent alone (or `seeding`).
fn shortest(p: &Progress) -> Vec<String> {
    if p.verified_bytes >= p.total_bytes {
        return vec![
            format!("{} seeding", size_short(p.total_bytes)),
            "seeding".to_string(),
        ];
    }
    let percent = p.verified_bytes as f64 * 100.0 / p.total_bytes.max(1) as f64;
    let percent = format!("{percent:.0}%");
    let bytes = format!(
        "{percent} {}/{}",
        size_short(p.verified_bytes),
        size_short(p.total_bytes)
    );
    let rate = if p.peers_connected == 0 {
        "↓waiting".to_string()
    } else if p.download_rate < STALLED_BELOW {
        "↓stalled".to_string()
    } else {
        format!("↓{}/s", size_short(p.download_rate as u64))
    };
    vec![format!("{bytes} {rate}"), bytes, percent]
}

/// The line's fields but the name and the map: bytes done (or "seeding"), then the rates
/// and peers.
struct Fields {
    done: String,
    tail: String,
}

/// The fields of `p`, in full or `short`.
fn fields(p: &Progress, short: bool) -> Fields {
    let sz = |bytes: u64| {
        if short {
            size_short(bytes)
        } else {
            size(bytes)
        }
    };
    let left = p.total_bytes.saturating_sub(p.verified_bytes);
    let percent = p.verified_bytes as f64 * 100.0 / p.total_bytes.max(1) as f64;
    let done = match (left, short) {
        (0, _) => format!("{} seeding", sz(p.total_bytes)),
        (_, false) => format!(
            "{}/{} ({percent:.1}%)",
            size(p.verified_bytes),
            size(p.total_bytes)
        ),
        (_, true) => format!(
            "{}/{} {percent:.0}%",
            size_short(p.verified_bytes),
            size_short(p.total_bytes)
        ),
    };
    let (arrow, gap, eta) = if short {
        ("↓", " ", "")
    } else {
        ("↓ ", "  ", "ETA ")
    };
    let down = if left == 0 {
        String::new()
    } else if p.peers_connected == 0 && p.trackers_failing {
        // Why nothing comes: the error itself ends the session after --tracker-timeout.
        let failed = if short {
            "tracker failed"
        } else {
            "tracker failed, retrying"
        };
        format!("{arrow}waiting for peers ({failed}){gap}")
    } else if p.peers_connected == 0 {
        format!("{arrow}waiting for peers{gap}")
    } else if p.download_rate < STALLED_BELOW {
        format!("{arrow}stalled{gap}")
    } else {
        let time = Duration::from_secs_f64(left as f64 / p.download_rate);
        format!(
            "{arrow}{}/s {eta}{}{gap}",
            sz(p.download_rate as u64),
            duration(time)
        )
    };
    let up = format!(
        "{}{}/s",
        if short { "↑" } else { "↑ " },
        sz(p.upload_rate as u64)
    );
    let tail = if short {
        let web = if p.web_seeds > 0 {
            format!("+{}w", p.web_seeds)
        } else {
            String::new()
        };
        format!(
            "{down}{up} {}/{}{web} peers",
            p.peers_connected, p.peers_known
        )
    } else {
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
        format!(
            "{down}{up}{sent}  peers {}/{}{web}{dht}",
            p.peers_connected, p.peers_known,
        )
    };
    Fields { done, tail }
}

/// The line from `f` in `room` characters, with a map of at least `min_cells` cells (none
/// when 0), or `None` when that does not fit. The name gets up to a third of the room, less
/// when the map needs it; the map what is left, in steps of [`MAP_MIN`] cells so that it
/// keeps its width while the numbers change.
fn lay_out(name: &str, p: &Progress, f: &Fields, room: usize, min_cells: usize) -> Option<String> {
    let fixed = f.done.chars().count() + f.tail.chars().count() + 4;
    let map_room = if min_cells > 0 { min_cells + 3 } else { 0 };
    let name_room = room.checked_sub(fixed + map_room)?;
    // A name cut to fewer than 4 characters says nothing: left out.
    let budget = (room / 3).max(8).min(name_room);
    let name = if budget < 4 {
        String::new()
    } else {
        fit(name, budget)
    };
    let spare = room.saturating_sub(fixed + name.chars().count() + 3);
    let cells = spare.min(MAP_MAX) / MAP_MIN * MAP_MIN;
    if cells < min_cells {
        return None;
    }
    let map = if cells > 0 && !p.have.is_empty() {
        format!("▕{}▏ ", piece_map(&p.have, &p.wanted, cells))
    } else {
        String::new()
    };
    let line = if name.is_empty() {
        format!("{}  {map}{}", f.done, f.tail)
    } else {
        format!("{name}  {}  {map}{}", f.done, f.tail)
    };
    Some(fit(&line, room))
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
            trackers_failing: false,
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
        assert!(!line.contains("tracker"), "{line}");
        alone.trackers_failing = true;
        let line = render("x", &alone, 120);
        assert!(
            line.contains("↓ waiting for peers (tracker failed, retrying)"),
            "{line}"
        );
        // A failing tracker says nothing once peers come (from the DHT, PEX or --peer).
        alone.peers_connected = 1;
        assert!(!render("x", &alone, 120).contains("tracker"));
    }

    #[test]
    fn line_fits_every_width() {
        let p = progress(105 << 20, 200 << 20, 5.0 * 1048576.0);
        let name = "a rather long torrent name that goes on and on.mkv";
        let mut failing = p.clone();
        failing.peers_connected = 0;
        failing.trackers_failing = true;
        for width in 0..200 {
            for p in [&p, &failing] {
                let line = render(name, p, width);
                assert!(line.chars().count() < width.max(1), "{width}: {line}");
            }
        }
        assert!(
            !render(name, &p, 40).contains('▕'),
            "no room for a map at 40"
        );
    }

    #[test]
    fn a_narrow_terminal_still_gets_the_shortest_useful_line() {
        let p = progress(1_258_291, 3_040_870, 300.0 * 1024.0);
        let name = "a rather long torrent name that goes on and on.mkv";
        let at_40 = render(name, &p, 40);
        assert!(at_40.contains("41%"), "40 columns: {at_40:?}");
        assert!(at_40.contains("1.2MiB/2.9MiB"), "40 columns: {at_40:?}");
        assert!(at_40.contains("↓300KiB/s"), "40 columns: {at_40:?}");
        assert!(render(name, &p, 30).contains("41%"), "30 columns");
        assert_eq!(render(name, &p, 5), "41%");
        for width in 5..200 {
            assert!(!render(name, &p, width).is_empty(), "blank at {width}");
        }
        let mut seeding = progress(3 << 20, 3 << 20, 0.0);
        seeding.peers_connected = 0;
        assert!(render(name, &seeding, 12).contains("seeding"));
    }

    #[test]
    fn an_80_column_terminal_has_room_for_the_map() {
        let mut p = progress(105 << 20, 200 << 20, 5.0 * 1048576.0);
        p.peers_known = 120;
        p.peers_connected = 45;
        p.uploaded_bytes = 300 << 20;
        p.upload_rate = 2.5 * 1048576.0;
        p.dht_nodes = Some(250);
        let line = render("ubuntu-24.04-desktop-amd64.iso", &p, 80);
        assert!(line.contains('▕') && line.contains('▏'), "{line}");
        assert!(line.chars().count() < 80, "{line}");
        assert!(
            line.contains("↓5.0MiB/s 0:19") && line.contains("45/120"),
            "{line}"
        );
    }
}
