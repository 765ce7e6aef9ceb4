//! Write tokens (BEP 5): what we hand a `get_peers` querier so that only it, from its own
//! address, can `announce_peer` to us afterwards.
//!
//! Pure: the DHT thread owns one [`Tokens`]. A token is the first 8 bytes of SHA-1 of the
//! querier's IP and a secret; the secret changes every [`ROTATE_EVERY`] and the previous
//! one is still accepted, so a token lives 5 to 10 minutes.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

/// How often the secret changes.
pub(crate) const ROTATE_EVERY: Duration = Duration::from_secs(5 * 60);
/// Bytes in a token we hand out.
pub(crate) const TOKEN_LEN: usize = 8;

/// The current and previous secrets.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    current: [u8; 16],
    previous: [u8; 16],
    rotated: Instant,
}

/// 16 secret bytes: from the OS (`/dev/urandom`), or, failing that, from std's randomly
/// keyed hasher (itself seeded by the OS). Not [`crate::rng::Rng`]: a token secret is a key
/// an attacker must not guess.
fn fresh_secret() -> [u8; 16] {
    let mut secret = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut secret));
    if from_os.is_err() {
        for half in secret.chunks_mut(8) {
            let mut h = RandomState::new().build_hasher();
            h.write_u64(0x5eed);
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    secret
}

fn token_for(secret: &[u8; 16], ip: IpAddr) -> Vec<u8> {
    let mut hasher = Sha1::new();
    match ip {
        IpAddr::V4(v4) => hasher.update(v4.octets()),
        IpAddr::V6(v6) => hasher.update(v6.octets()),
    }
    hasher.update(secret);
    hasher.finalize()[..TOKEN_LEN].to_vec()
}

impl Tokens {
    /// Fresh secrets.
    pub fn new(now: Instant) -> Tokens {
        Tokens {
            current: fresh_secret(),
            previous: fresh_secret(),
            rotated: now,
        }
    }

    fn rotate(&mut self, now: Instant) {
        while now.saturating_duration_since(self.rotated) >= ROTATE_EVERY {
            self.previous = self.current;
            self.current = fresh_secret();
            self.rotated += ROTATE_EVERY;
            if now.saturating_duration_since(self.rotated) >= ROTATE_EVERY {
                // Asleep for more than two periods: both secrets are stale.
                self.previous = fresh_secret();
                self.rotated = now;
            }
        }
    }

    /// The token for a querier at `ip`.
    pub fn make(&mut self, ip: IpAddr, now: Instant) -> Vec<u8> {
        self.rotate(now);
        token_for(&self.current, ip)
    }

    /// Whether `token` is one we gave `ip` under the current or previous secret.
    pub fn check(&mut self, ip: IpAddr, token: &[u8], now: Instant) -> bool {
        self.rotate(now);
        token == token_for(&self.current, ip).as_slice()
            || token == token_for(&self.previous, ip).as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_lives_one_to_two_rotations_and_is_bound_to_the_ip() {
        let t0 = Instant::now();
        let mut tokens = Tokens::new(t0);
        let ip: IpAddr = "127.0.0.5".parse().unwrap();
        let other: IpAddr = "127.0.0.6".parse().unwrap();
        let token = tokens.make(ip, t0);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(tokens.check(ip, &token, t0));
        assert!(!tokens.check(other, &token, t0));
        assert!(tokens.check(ip, &token, t0 + ROTATE_EVERY));
        assert!(!tokens.check(ip, &token, t0 + ROTATE_EVERY * 2));
        let late = tokens.make(ip, t0 + ROTATE_EVERY * 10);
        assert!(tokens.check(ip, &late, t0 + ROTATE_EVERY * 10));
        assert!(!tokens.check(ip, &token, t0 + ROTATE_EVERY * 10));
    }
}
