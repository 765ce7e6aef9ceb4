//! How many queries one source address may make us answer per second.
//!
//! Pure: each DHT socket's receiving thread owns one [`QueryLimiter`] and checks every
//! query against it before the query reaches the DHT thread, so that a flood from one
//! address costs a hash lookup per datagram and cannot crowd out other nodes' queries.
//! At most [`MAX_TRACKED_SOURCES`] addresses are tracked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Queries per second answered for one source IP; the rest are dropped.
pub const MAX_QUERIES_PER_SECOND: u32 = 100;
/// Source addresses counted at once; when full of addresses active this second, new ones
/// are dropped until the second ends.
pub const MAX_TRACKED_SOURCES: usize = 4096;

const WINDOW: Duration = Duration::from_secs(1);

/// Per-source counters over one-second windows.
#[derive(Debug, Default)]
pub(crate) struct QueryLimiter {
    sources: HashMap<IpAddr, (Instant, u32)>,
}

impl QueryLimiter {
    /// Whether a query from `ip` at `now` may go through (and counts it).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.sources.contains_key(&ip) && self.sources.len() >= MAX_TRACKED_SOURCES {
            self.sources
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < WINDOW);
            if self.sources.len() >= MAX_TRACKED_SOURCES {
                return false;
            }
        }
        let (start, count) = self.sources.entry(ip).or_insert((now, 0));
        if now.saturating_duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        *count += 1;
        *count <= MAX_QUERIES_PER_SECOND
    }
}

/// Whether a datagram looks like a KRPC query (`1:y1:q`), for limiting before decoding.
pub(crate) fn looks_like_query(packet: &[u8]) -> bool {
    packet.windows(6).any(|w| w == b"1:y1:q")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_flooder_is_cut_off_and_others_are_not() {
        let t0 = Instant::now();
        let mut limiter = QueryLimiter::default();
        let flooder: IpAddr = "127.0.0.66".parse().unwrap();
        let honest: IpAddr = "127.0.0.2".parse().unwrap();
        let allowed = (0..10_000).filter(|_| limiter.allow(flooder, t0)).count();
        assert_eq!(allowed, MAX_QUERIES_PER_SECOND as usize);
        assert!(limiter.allow(honest, t0));
        assert!(limiter.allow(flooder, t0 + WINDOW));
    }

    #[test]
    fn tracked_sources_are_capped() {
        let t0 = Instant::now();
        let mut limiter = QueryLimiter::default();
        for n in 0..(MAX_TRACKED_SOURCES as u32 + 100) {
            limiter.allow(IpAddr::from((n | 0x0a00_0000).to_be_bytes()), t0);
        }
        assert_eq!(limiter.sources.len(), MAX_TRACKED_SOURCES);
        assert!(limiter.allow("10.0.0.1".parse().unwrap(), t0 + WINDOW));
        assert!(limiter.sources.len() <= MAX_TRACKED_SOURCES);
    }

    #[test]
    fn queries_are_told_from_replies() {
        assert!(looks_like_query(
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
        ));
        assert!(!looks_like_query(
            b"d1:rd2:id20:abcdefghij0123456789e1:t2:aa1:y1:re"
        ));
    }
}
