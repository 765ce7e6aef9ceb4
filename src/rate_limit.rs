//! Rate limits (`--download-limit`, `--upload-limit`): a token bucket (the command line
//! reads the rates, in `cli::units`).
//!
//! Pure: no clock of its own (the caller passes `now`), no threads. The main thread owns one
//! bucket per direction and spends it on the decisions it already makes alone: which blocks
//! to request (download) and which requested blocks to hand a sender thread (upload). So
//! the limit needs no lock and no shared counter on the hot path; see ARCHITECTURE.md.

use std::time::{Duration, Instant};

use crate::geometry::BLOCK_LEN;

/// How long a full bucket lasts at the limit: the largest burst, in seconds of the rate.
const BURST_SECONDS: f64 = 0.1;

/// A token bucket of bytes: `rate` bytes per second accrue, up to a burst of a tenth of a
/// second's worth (at least one block, so any block can always be afforded eventually).
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate` bytes per second (at least 1).
    pub fn new(rate: u64, now: Instant) -> TokenBucket {
        let rate = rate.max(1) as f64;
        let capacity = (rate * BURST_SECONDS).max(f64::from(BLOCK_LEN));
        TokenBucket {
            rate,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = now;
    }

    /// How many spends of `cost` bytes each the bucket affords now (without spending).
    pub(crate) fn affordable(&mut self, cost: u32, now: Instant) -> usize {
        self.refill(now);
        (self.tokens / f64::from(cost.max(1))) as usize
    }

    /// Spends `bytes` (the caller checked they were affordable; a little debt is allowed,
    /// since a short last block may have been counted as a whole one).
    pub(crate) fn spend(&mut self, bytes: u64, now: Instant) {
        self.refill(now);
        self.tokens -= bytes as f64;
    }

    /// Spends `bytes` if the bucket holds them; false (and nothing spent) otherwise.
    pub(crate) fn try_spend(&mut self, bytes: u64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }

    /// How long until the bucket holds `bytes` (zero if it does now).
    pub(crate) fn wait_for(&self, bytes: u64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let have = (self.tokens + elapsed * self.rate).min(self.capacity);
        let missing = (bytes as f64).min(self.capacity) - have;
        if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_holds_the_rate_with_bursts_of_a_tenth_of_a_second() {
        let t0 = Instant::now();
        let rate = 1 << 20;
        let mut b = TokenBucket::new(rate, t0);
        // Full at start: a tenth of a second's worth (6 blocks of 16 KiB fit in 102.4 KB).
        assert_eq!(b.affordable(BLOCK_LEN, t0), 6);
        // Spending as fast as it allows over 10 simulated seconds stays within the rate plus
        // the one burst.
        let mut spent = 0u64;
        let mut now = t0;
        while now < t0 + Duration::from_secs(10) {
            while b.try_spend(u64::from(BLOCK_LEN), now) {
                spent += u64::from(BLOCK_LEN);
            }
            now += b
                .wait_for(u64::from(BLOCK_LEN), now)
                .max(Duration::from_millis(1));
        }
        let limit = 10 * rate + rate / 10 + u64::from(BLOCK_LEN);
        assert!(spent <= limit, "{spent} > {limit}");
        assert!(spent >= 10 * rate - u64::from(BLOCK_LEN), "{spent}");
    }

    #[test]
    fn small_rates_still_afford_a_block_and_say_how_long_to_wait() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1024, t0);
        assert!(b.try_spend(u64::from(BLOCK_LEN), t0));
        assert!(!b.try_spend(1, t0));
        let wait = b.wait_for(u64::from(BLOCK_LEN), t0);
        assert_eq!(wait, Duration::from_secs(16));
        assert_eq!(b.affordable(BLOCK_LEN, t0 + wait), 1);
    }
}
