//! The one line a session ends with: what was done, how fast (the download alone, not the
//! seeding after it), where the files are, and why seeding stopped.
//!
//! Pure formatting, called on the main thread after the session.

use std::path::PathBuf;
use std::time::Duration;

use strand::session::{SeedPolicy, Summary};

use super::units::{duration, size};

/// What the summary needs to know besides the session's own [`Summary`].
pub(crate) struct Context {
    /// Where the torrent's files are: the file, or the folder of a multi-file torrent.
    pub(crate) saved: PathBuf,
    /// When seeding was asked to stop.
    pub(crate) seed: SeedPolicy,
    /// The whole torrent's size (what a ratio is counted against).
    pub(crate) torrent_len: u64,
}

/// The summary line.
pub(crate) fn line(s: &Summary, cx: &Context) -> String {
    let fetching = s.completed_after.unwrap_or(s.elapsed);
    let secs = fetching.as_secs_f64().max(0.001);
    let received = if s.received_bytes == 0 {
        String::new()
    } else {
        format!(
            " (received {} at {}/s)",
            size(s.received_bytes),
            size((s.received_bytes as f64 / secs) as u64)
        )
    };
    let saved = cx.saved.display();
    let mut out = match s.completed_after {
        Some(d) if d.is_zero() && s.received_bytes == 0 => {
            format!("{} in {saved} complete", size(s.total_bytes))
        }
        Some(_) => format!(
            "{} complete in {secs:.1} s{received}: {saved}",
            size(s.total_bytes)
        ),
        None => format!(
            "{} of {} verified after {secs:.1} s{received} in {saved}",
            size(s.bytes),
            size(s.total_bytes)
        ),
    };
    out.push_str(&format!("; uploaded {}", size(s.uploaded_bytes)));
    let Some(done) = s.completed_after else {
        return out;
    };
    let seeded = s.elapsed.saturating_sub(done);
    if matches!(cx.seed, SeedPolicy::No) || seeded < Duration::from_secs(1) {
        return out;
    }
    let ratio = s.uploaded_bytes as f64 / cx.torrent_len.max(1) as f64;
    out.push_str(&format!(
        " (ratio {ratio:.2}), seeded for {}",
        duration(seeded)
    ));
    let why = match cx.seed {
        _ if s.interrupted => " until Ctrl-C".to_string(),
        SeedPolicy::Until { ratio: Some(r), .. } if ratio >= r => {
            format!(": ratio {r} reached")
        }
        SeedPolicy::Until { time: Some(t), .. } if seeded >= t => {
            format!(": seed time {} reached", duration(t))
        }
        _ => String::new(),
    };
    out.push_str(&why);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(received: u64, elapsed: u64, completed: Option<u64>, up: u64) -> Summary {
        Summary {
            bytes: if completed.is_some() {
                100 << 20
            } else {
                40 << 20
            },
            total_bytes: 100 << 20,
            elapsed: Duration::from_secs(elapsed),
            uploaded_bytes: up,
            interrupted: false,
            received_bytes: received,
            failed_pieces: 0,
            completed_after: completed.map(Duration::from_secs),
        }
    }

    fn cx(seed: SeedPolicy) -> Context {
        Context {
            saved: PathBuf::from("/data/movie.mkv"),
            seed,
            torrent_len: 100 << 20,
        }
    }

    #[test]
    fn names_the_output_and_the_download_rate() {
        let s = summary(100 << 20, 10, Some(10), 0);
        let l = line(&s, &cx(SeedPolicy::No));
        assert_eq!(
            l,
            "100.0 MiB complete in 10.0 s (received 100.0 MiB at 10.0 MiB/s): \
             /data/movie.mkv; uploaded 0 B"
        );
        let l = line(&summary(40 << 20, 10, None, 0), &cx(SeedPolicy::No));
        assert!(l.contains("40.0 MiB of 100.0 MiB verified"), "{l}");
        assert!(l.contains("/data/movie.mkv"), "{l}");
    }

    #[test]
    fn seeding_time_is_not_in_the_rate_and_the_ratio_is_named() {
        let policy = SeedPolicy::Until {
            ratio: Some(1.0),
            time: None,
        };
        let l = line(&summary(100 << 20, 70, Some(10), 100 << 20), &cx(policy));
        assert!(l.contains("at 10.0 MiB/s"), "{l}");
        assert!(l.contains("seeded for 1:00: ratio 1 reached"), "{l}");
        let policy = SeedPolicy::Until {
            ratio: None,
            time: Some(Duration::from_secs(60)),
        };
        let l = line(&summary(100 << 20, 70, Some(10), 5 << 20), &cx(policy));
        assert!(
            l.contains("(ratio 0.05), seeded for 1:00: seed time 1:00 reached"),
            "{l}"
        );
    }
}
