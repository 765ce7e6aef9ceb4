//! The address book: every peer address the session has heard of, what it holds against each,
//! and which to dial next.
//!
//! Pure logic, owned by the main thread (session): no I/O, no threads; the caller passes the
//! time. Trackers, peer exchange and the user add addresses; connections that end add failures
//! and a back-off; pieces that fail their hash add strikes. The book never holds more than
//! [`MAX_KNOWN_PEERS`] addresses, whatever strangers send: when it is full, addresses we have
//! given up on are forgotten to make room, and if none can be, new ones are ignored.
//!
//! It also remembers what each address told us, or showed us, of its encryption (MSE/PE),
//! and [`dial_policy`] turns that and `--encryption` into how to dial it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::peer::mse::{Encryption, Link};

/// Peer addresses remembered at once (libtorrent's `max_peerlist_size` is 3000).
pub const MAX_KNOWN_PEERS: usize = 2000;
/// Strikes (pieces that failed with this peer as their only source) before we stop talking
/// to a peer; a peer caught sending a bad block gets them all at once.
pub const MAX_STRIKES: u32 = 3;
/// Connections in a row that end before their handshake before we stop dialing an address.
pub(crate) const MAX_CONNECT_FAILURES: u32 = 5;

/// What we remember about one address across connections.
#[derive(Debug, Default, Clone)]
struct Address {
    /// We may dial it (a tracker, peer exchange or the user gave it; not just a peer that
    /// dialed us).
    dialable: bool,
    /// A connection to it is open or being opened.
    busy: bool,
    /// Connections in a row that ended before the handshake.
    failures: u32,
    /// Not dialed before this time.
    retry_at: Option<Instant>,
    /// Hash failures it took part in.
    strikes: u32,
    /// It had every piece when last connected: once we do too, there is no point dialing it.
    seed: bool,
    /// What we know of its encryption.
    crypto: Crypto,
}

/// What we know of a peer's encryption (MSE/PE).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Crypto {
    /// Nothing yet.
    #[default]
    Unknown,
    /// It speaks MSE: we reached it over MSE, or it said so (`e` in its extension
    /// handshake, flag 0x01 in a peer exchange message).
    Supported,
    /// A tracker says it requires encryption (`crypto_flags`).
    Required,
    /// Our MSE exchange with it failed and a plaintext dial worked: it speaks plaintext only.
    PlaintextOnly,
}

/// How to dial a peer we know `crypto` of, under `--encryption policy`; `None`: not at all.
///
/// `prefer` dials a peer that needed the plaintext fallback once in plaintext directly,
/// sparing it (and us) an MSE exchange it will refuse; `off` does not dial a peer that
/// requires encryption (it would close our plaintext handshake); `require` is unchanged, it
/// never falls back.
pub(crate) fn dial_policy(policy: Encryption, crypto: Crypto) -> Option<Encryption> {
    match (policy, crypto) {
        (Encryption::Prefer, Crypto::PlaintextOnly) => Some(Encryption::Off),
        (Encryption::Off, Crypto::Required) => None,
        (policy, _) => Some(policy),
    }
}

impl Address {
    /// Nothing worth remembering: we will not dial it again and hold nothing against it.
    fn forgettable(&self) -> bool {
        !self.busy && self.strikes == 0 && (!self.dialable || self.failures >= MAX_CONNECT_FAILURES)
    }
}

/// The session's table of peer addresses.
#[derive(Debug)]
pub(crate) struct AddressBook {
    entries: HashMap<SocketAddr, Address>,
    capacity: usize,
}

impl Default for AddressBook {
    fn default() -> AddressBook {
        AddressBook::with_capacity(MAX_KNOWN_PEERS)
    }
}

impl AddressBook {
    /// A book that holds at most `capacity` addresses.
    pub fn with_capacity(capacity: usize) -> AddressBook {
        AddressBook {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// The record of `addr`, created if there is room (forgetting what can be forgotten when
    /// the book is full).
    fn entry(&mut self, addr: SocketAddr) -> Option<&mut Address> {
        if !self.entries.contains_key(&addr) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, a| !a.forgettable());
            if self.entries.len() >= self.capacity {
                return None;
            }
        }
        Some(self.entries.entry(addr).or_default())
    }

    /// Records that `addr` may be dialed. Returns false if the book is full.
    pub(crate) fn learn(&mut self, addr: SocketAddr) -> bool {
        match self.entry(addr) {
            Some(a) => {
                a.dialable = true;
                true
            }
            None => false,
        }
    }

    /// Addresses to dial now, in no particular order, each with the `--encryption` to dial it
    /// with ([`dial_policy`]): dialable, not connected, not banned, not given up on, past
    /// their back-off, not a seed when `complete` (we have every piece), and not one `policy`
    /// says not to dial.
    pub(crate) fn to_dial(
        &self,
        now: Instant,
        complete: bool,
        policy: Encryption,
    ) -> Vec<(SocketAddr, Encryption)> {
        self.entries
            .iter()
            .filter(|(_, a)| {
                a.dialable
                    && !a.busy
                    && !(a.seed && complete)
                    && a.strikes < MAX_STRIKES
                    && a.failures < MAX_CONNECT_FAILURES
                    && a.retry_at.is_none_or(|t| t <= now)
            })
            .filter_map(|(&addr, a)| Some((addr, dial_policy(policy, a.crypto)?)))
            .collect()
    }

    /// We connected to `addr` over `link`: an MSE exchange shows it speaks MSE, a plaintext
    /// fallback that it does not (both override what others said); a plain dial shows
    /// nothing.
    pub(crate) fn reached(&mut self, addr: SocketAddr, link: Link) {
        if let Some(a) = self.entries.get_mut(&addr) {
            match link {
                Link::Mse => a.crypto = Crypto::Supported,
                Link::PlaintextFallback => a.crypto = Crypto::PlaintextOnly,
                Link::Plaintext => {}
            }
        }
    }

    /// `addr` said it speaks MSE (or another peer said so for it). What we saw ourselves,
    /// or a tracker's "requires", stands.
    pub(crate) fn supports_encryption(&mut self, addr: SocketAddr) {
        if let Some(a) = self.entries.get_mut(&addr) {
            if a.crypto == Crypto::Unknown {
                a.crypto = Crypto::Supported;
            }
        }
    }

    /// A tracker said `addr` requires encryption. A plaintext connection we made to it
    /// ourselves stands against it.
    pub(crate) fn requires_encryption(&mut self, addr: SocketAddr) {
        if let Some(a) = self.entry(addr) {
            if a.crypto != Crypto::PlaintextOnly {
                a.crypto = Crypto::Required;
            }
        }
    }

    /// We started dialing `addr`.
    pub fn dialing(&mut self, addr: SocketAddr) {
        if let Some(a) = self.entries.get_mut(&addr) {
            a.busy = true;
        }
    }

    /// A connection to `addr` completed its handshake.
    pub(crate) fn handshaken(&mut self, addr: SocketAddr) {
        if let Some(a) = self.entries.get_mut(&addr) {
            a.failures = 0;
        }
    }

    /// `addr` has every piece.
    pub(crate) fn mark_seed(&mut self, addr: SocketAddr) {
        if let Some(a) = self.entries.get_mut(&addr) {
            a.seed = true;
        }
    }

    /// A connection to `addr` ended at `now`, after its handshake or before. It may be dialed
    /// again 2 s after a connection that worked, then 4, 8, 16, 32 s after failed ones; after
    /// [`MAX_CONNECT_FAILURES`] failures in a row, never.
    pub fn closed(&mut self, addr: SocketAddr, handshaken: bool, now: Instant) {
        if let Some(a) = self.entries.get_mut(&addr) {
            a.busy = false;
            if !handshaken {
                a.failures += 1;
            }
            let backoff = Duration::from_secs(2 << a.failures.min(MAX_CONNECT_FAILURES));
            a.retry_at = Some(now + backoff);
        }
    }

    /// Adds `count` strikes to `addr`. Returns true if that makes it banned (it was not
    /// before). With no room to remember it, the strikes count on their own.
    pub fn strike(&mut self, addr: SocketAddr, count: u32) -> bool {
        let (before, after) = match self.entry(addr) {
            Some(a) => {
                let before = a.strikes;
                a.strikes = before.saturating_add(count);
                (before, a.strikes)
            }
            None => (0, count),
        };
        before < MAX_STRIKES && after >= MAX_STRIKES
    }

    /// Whether `addr` has [`MAX_STRIKES`]: never dialed or accepted again.
    pub(crate) fn is_banned(&self, addr: SocketAddr) -> bool {
        self.entries
            .get(&addr)
            .is_some_and(|a| a.strikes >= MAX_STRIKES)
    }

    /// How many addresses we may dial (whether or not now).
    pub(crate) fn dialable_count(&self) -> usize {
        self.entries.values().filter(|a| a.dialable).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl AddressBook {
        /// [`AddressBook::to_dial`] under `prefer`, addresses only.
        fn dialable_now(&self, now: Instant, complete: bool) -> Vec<SocketAddr> {
            let dial = self.to_dial(now, complete, Encryption::Prefer);
            dial.into_iter().map(|(addr, _)| addr).collect()
        }

        /// What the book knows of `addr`'s encryption.
        fn crypto(&self, addr: SocketAddr) -> Crypto {
            self.entries
                .get(&addr)
                .map_or(Crypto::Unknown, |a| a.crypto)
        }
    }

    fn addr(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 1024 + n))
    }

    fn fail(book: &mut AddressBook, a: SocketAddr, times: u32, now: Instant) {
        for _ in 0..times {
            book.dialing(a);
            book.closed(a, false, now);
        }
    }

    #[test]
    fn learned_addresses_are_dialed_once_at_a_time() {
        let mut book = AddressBook::default();
        let now = Instant::now();
        assert!(book.learn(addr(1)));
        assert!(book.learn(addr(1)));
        assert_eq!(book.entries.len(), 1);
        assert_eq!(book.dialable_now(now, false), vec![addr(1)]);
        book.dialing(addr(1));
        assert!(book.dialable_now(now, false).is_empty());
    }

    /// A book that has learnt `addr(1)`, and the time to ask it at.
    fn knowing_one() -> (AddressBook, Instant) {
        let mut book = AddressBook::default();
        book.learn(addr(1));
        (book, Instant::now())
    }

    /// Checks that `addr(1)`, the one address of `book`, waits exactly `secs` after `now`
    /// before it is dialed again.
    fn assert_dialable_again_after(book: &AddressBook, now: Instant, secs: u64) {
        let at = |secs| book.dialable_now(now + Duration::from_secs(secs), false);
        assert!(at(secs - 1).is_empty());
        assert_eq!(at(secs), vec![addr(1)]);
    }

    #[test]
    fn failures_back_off_and_then_stop_dialing() {
        let (mut book, now) = knowing_one();
        fail(&mut book, addr(1), 1, now);
        assert_dialable_again_after(&book, now, 4);
        fail(&mut book, addr(1), MAX_CONNECT_FAILURES - 1, now);
        assert!(book
            .dialable_now(now + Duration::from_secs(3600), false)
            .is_empty());
    }

    #[test]
    fn a_handshake_resets_the_failures() {
        let (mut book, now) = knowing_one();
        fail(&mut book, addr(1), MAX_CONNECT_FAILURES - 1, now);
        book.dialing(addr(1));
        book.handshaken(addr(1));
        book.closed(addr(1), true, now);
        assert_dialable_again_after(&book, now, 2);
    }

    #[test]
    fn seeds_are_not_dialed_once_complete() {
        let (mut book, now) = knowing_one();
        book.mark_seed(addr(1));
        assert_eq!(book.dialable_now(now, false), vec![addr(1)]);
        assert!(book.dialable_now(now, true).is_empty());
    }

    #[test]
    fn strikes_ban_once() {
        let (mut book, now) = knowing_one();
        assert!(!book.strike(addr(1), 1));
        assert!(!book.is_banned(addr(1)));
        assert!(book.strike(addr(1), MAX_STRIKES - 1));
        assert!(book.is_banned(addr(1)));
        assert!(!book.strike(addr(1), 1), "already banned");
        assert!(book.dialable_now(now, false).is_empty());
        // An address only ever seen as an incoming connection can be banned too.
        assert!(book.strike(addr(2), MAX_STRIKES));
        assert!(book.is_banned(addr(2)));
        assert_eq!(book.dialable_count(), 1);
    }

    #[test]
    fn a_flood_of_addresses_is_capped() {
        let mut book = AddressBook::with_capacity(100);
        let learned = (0..10_000).filter(|&n| book.learn(addr(n))).count();
        assert_eq!(learned, 100);
        assert_eq!(book.entries.len(), 100);
        // Known addresses are still updated when the book is full.
        assert!(book.learn(addr(5)));
    }

    #[test]
    fn a_full_book_forgets_addresses_given_up_on() {
        let mut book = AddressBook::with_capacity(10);
        let now = Instant::now();
        for n in 0..10 {
            book.learn(addr(n));
        }
        fail(&mut book, addr(3), MAX_CONNECT_FAILURES, now);
        fail(&mut book, addr(4), MAX_CONNECT_FAILURES, now);
        book.strike(addr(4), 1);
        book.dialing(addr(5));
        assert!(book.learn(addr(100)), "room made by forgetting addr 3");
        assert!(
            !book.learn(addr(101)),
            "addr 4 has a strike, addr 5 is busy"
        );
        assert_eq!(book.entries.len(), 10);
        assert!(book.dialable_now(now, false).contains(&addr(100)));
    }

    #[test]
    fn a_full_book_still_acts_on_strikes() {
        let mut book = AddressBook::with_capacity(1);
        book.learn(addr(1));
        assert!(
            book.strike(addr(2), MAX_STRIKES),
            "banned now, though not remembered"
        );
        assert!(!book.strike(addr(3), 1));
        assert_eq!(book.entries.len(), 1);
    }

    #[test]
    fn how_to_dial_follows_the_policy_and_what_we_know() {
        use Crypto::*;
        use Encryption::*;
        for crypto in [Unknown, Supported, Required, PlaintextOnly] {
            assert_eq!(dial_policy(Require, crypto), Some(Require), "{crypto:?}");
        }
        assert_eq!(dial_policy(Prefer, Unknown), Some(Prefer));
        assert_eq!(dial_policy(Prefer, Supported), Some(Prefer));
        assert_eq!(dial_policy(Prefer, Required), Some(Prefer));
        assert_eq!(
            dial_policy(Prefer, PlaintextOnly),
            Some(Off),
            "no second MSE attempt"
        );
        assert_eq!(dial_policy(Off, Unknown), Some(Off));
        assert_eq!(dial_policy(Off, Supported), Some(Off));
        assert_eq!(dial_policy(Off, PlaintextOnly), Some(Off));
        assert_eq!(
            dial_policy(Off, Required),
            None,
            "it would close a plaintext handshake"
        );
    }

    #[test]
    fn a_peer_that_needed_the_plaintext_fallback_is_redialed_in_plaintext() {
        let (mut book, now) = knowing_one();
        book.dialing(addr(1));
        book.reached(addr(1), Link::PlaintextFallback);
        book.closed(addr(1), true, now);
        let later = now + Duration::from_secs(2);
        assert_eq!(
            book.to_dial(later, false, Encryption::Prefer),
            [(addr(1), Encryption::Off)]
        );
        assert_eq!(
            book.to_dial(later, false, Encryption::Require),
            [(addr(1), Encryption::Require)]
        );
        // Hearsay does not undo what we saw; an MSE connection does.
        book.supports_encryption(addr(1));
        book.requires_encryption(addr(1));
        assert_eq!(book.crypto(addr(1)), Crypto::PlaintextOnly);
        book.reached(addr(1), Link::Plaintext);
        assert_eq!(book.crypto(addr(1)), Crypto::PlaintextOnly);
        book.reached(addr(1), Link::Mse);
        assert_eq!(book.crypto(addr(1)), Crypto::Supported);
        assert_eq!(
            book.to_dial(later, false, Encryption::Prefer),
            [(addr(1), Encryption::Prefer)]
        );
    }

    #[test]
    fn a_peer_that_requires_encryption_is_not_dialed_under_off() {
        let (mut book, now) = knowing_one();
        book.learn(addr(2));
        book.requires_encryption(addr(1));
        book.supports_encryption(addr(2));
        assert_eq!(book.crypto(addr(2)), Crypto::Supported);
        assert_eq!(
            book.to_dial(now, false, Encryption::Off),
            [(addr(2), Encryption::Off)]
        );
        let mut prefer = book.to_dial(now, false, Encryption::Prefer);
        prefer.sort_by_key(|(a, _)| *a);
        assert_eq!(
            prefer,
            [(addr(1), Encryption::Prefer), (addr(2), Encryption::Prefer)]
        );
        // A tracker's word arrives before the address itself: it is kept for when it does.
        book.requires_encryption(addr(3));
        book.learn(addr(3));
        assert_eq!(book.crypto(addr(3)), Crypto::Required);
        assert_eq!(book.dialable_now(now, false).len(), 3);
    }
}
