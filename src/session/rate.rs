//! A transfer rate: bytes counted as they pass, smoothed once per tick.
//!
//! Used by the main thread for the whole session and for each peer, both ways.

/// Bytes counted since the last tick, and a smoothed bytes-per-second rate that moves halfway
/// towards each tick's figure.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Rate {
    this_tick: u64,
    per_second: f64,
}

impl Rate {
    /// Counts `bytes` towards the current tick.
    pub(super) fn add(&mut self, bytes: u64) {
        self.this_tick += bytes;
    }

    /// Ends a tick of `secs` seconds: the rate moves halfway towards what this tick saw.
    pub(super) fn tick(&mut self, secs: f64) {
        self.per_second = 0.5 * self.per_second + 0.5 * self.this_tick as f64 / secs;
        self.this_tick = 0;
    }

    /// The smoothed rate, in bytes per second.
    pub(super) fn per_second(&self) -> f64 {
        self.per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_halfway_each_tick_and_decays_when_idle() {
        let mut r = Rate::default();
        assert_eq!(r.per_second(), 0.0);
        r.add(600);
        r.add(400);
        assert_eq!(r.per_second(), 0.0);
        r.tick(1.0);
        assert_eq!(r.per_second(), 500.0);
        r.add(1000);
        r.tick(2.0);
        assert_eq!(r.per_second(), 500.0);
        r.tick(1.0);
        assert_eq!(r.per_second(), 250.0);
    }
}
