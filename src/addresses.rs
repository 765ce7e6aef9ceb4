//! The address book: every peer address the session has heard of, what it holds against each,
//! and which to dial next.
//!
//! Pure logic, owned by the main thread (session): no I/O, no threads; the caller passes the
//! time. Trackers, peer exchange and the user add addresses; connections that end add failures
//! and a back-off; pieces that fail their hash add strikes. The book never holds more than
//! [`MAX_KNOWN_PEERS`] addresses, whatever strangers send: when it is full, addresses we have
//! given up on are forgotten to make room, and if none can be, new ones are ignored.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

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

    /// Addresses to dial now, in no particular order: dialable, not connected, not banned, not
    /// given up on, past their back-off, and not a seed when `complete` (we have every piece).
    pub(crate) fn to_dial(&self, now: Instant, complete: bool) -> Vec<SocketAddr> {
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
            .map(|(&addr, _)| addr)
            .collect()
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
        assert_eq!(book.to_dial(now, false), vec![addr(1)]);
        book.dialing(addr(1));
        assert!(book.to_dial(now, false).is_empty());
    }

    /// A book that has learnt `addr(1)`, and the time to ask it at.
    fn knowing_one() -> (AddressBook, Instant) {
        let mut book = AddressBook::default();
        book.learn(addr(1));
        (book, Instant::now())
    }

    #[test]
    fn failures_back_off_and_then_stop_dialing() {
        let (mut book, now) = knowing_one();
        fail(&mut book, addr(1), 1, now);
        assert!(book.to_dial(now + Duration::from_secs(3), false).is_empty());
        assert_eq!(
            book.to_dial(now + Duration::from_secs(4), false),
            vec![addr(1)]
        );
        fail(&mut book, addr(1), MAX_CONNECT_FAILURES - 1, now);
        assert!(book
            .to_dial(now + Duration::from_secs(3600), false)
            .is_empty());
    }

    #[test]
    fn a_handshake_resets_the_failures() {
        let (mut book, now) = knowing_one();
        fail(&mut book, addr(1), MAX_CONNECT_FAILURES - 1, now);
        book.dialing(addr(1));
        book.handshaken(addr(1));
        book.closed(addr(1), true, now);
        assert!(book.to_dial(now + Duration::from_secs(1), false).is_empty());
        assert_eq!(
            book.to_dial(now + Duration::from_secs(2), false),
            vec![addr(1)]
        );
    }

    #[test]
    fn seeds_are_not_dialed_once_complete() {
        let (mut book, now) = knowing_one();
        book.mark_seed(addr(1));
        assert_eq!(book.to_dial(now, false), vec![addr(1)]);
        assert!(book.to_dial(now, true).is_empty());
    }

    #[test]
    fn strikes_ban_once() {
        let (mut book, now) = knowing_one();
        assert!(!book.strike(addr(1), 1));
        assert!(!book.is_banned(addr(1)));
        assert!(book.strike(addr(1), MAX_STRIKES - 1));
        assert!(book.is_banned(addr(1)));
        assert!(!book.strike(addr(1), 1), "already banned");
        assert!(book.to_dial(now, false).is_empty());
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
        assert!(book.to_dial(now, false).contains(&addr(100)));
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
}
