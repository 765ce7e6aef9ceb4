//! The table of open HTTP connections and the rule that decides, for each new connection,
//! whether it gets a thread and which stalled connection makes room for it.
//!
//! Owned by the `tracker accept` thread, the only one that reads or writes it. Pure: time
//! comes in as arguments, and each entry carries whatever the thread needs to close that
//! connection (`T`), so the rule is unit-tested without sockets.
//!
//! The rule: at most [`MAX_CONNECTIONS_PER_SOURCE`] connections from one source (an IPv4
//! address, or an IPv6 /64, which one host usually holds whole) and [`MAX_CONNECTIONS`] in
//! all. A new connection over either cap takes the place of the oldest *idle* connection (one
//! still sending its request head) of that source, or of all sources; when none is idle (all
//! are being answered, which takes milliseconds) the new one is refused. A slow client so
//! only ever delays itself: its stalled connections make room for everyone else's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Open HTTP connections from one source address (or IPv6 /64) at once; the oldest idle one
/// is closed to make room for another.
pub const MAX_CONNECTIONS_PER_SOURCE: usize = 8;
/// Open HTTP connections at once, each with its own thread; the oldest idle one is closed to
/// make room for another.
pub const MAX_CONNECTIONS: usize = 512;

/// Connections are counted per source: an IPv4 address (IPv4-mapped IPv6 included), or the
/// /64 network of an IPv6 address.
pub(crate) fn source(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// What to do with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// There is room: give it a thread.
    Admit,
    /// Close connection `id` (removed from the table already), then give it a thread.
    Shed(u64),
    /// Every connection in its way is being answered: close the new one.
    Refuse,
}

/// One open connection.
#[derive(Debug)]
struct Conn<T> {
    source: IpAddr,
    opened: Instant,
    /// Its request head has arrived: it is being answered, and is not shed.
    answering: bool,
    handle: T,
}

/// The open connections; see the module docs.
#[derive(Debug)]
pub(crate) struct Conns<T> {
    open: HashMap<u64, Conn<T>>,
    per_source: HashMap<IpAddr, usize>,
    next_id: u64,
    max_total: usize,
    max_per_source: usize,
}

impl<T> Conns<T> {
    /// An empty table with the given caps (at least one each).
    pub(crate) fn new(max_total: usize, max_per_source: usize) -> Conns<T> {
        Conns {
            open: HashMap::new(),
            per_source: HashMap::new(),
            next_id: 0,
            max_total: max_total.max(1),
            max_per_source: max_per_source.max(1),
        }
    }

    /// Open connections.
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    /// Decides about a new connection from `ip`. On [`Admission::Shed`] the victim has been
    /// removed; its handle is returned so the caller can close it.
    pub(crate) fn admit(&mut self, ip: IpAddr) -> (Admission, Option<T>) {
        let source = source(ip);
        let victim = if self.per_source.get(&source).copied().unwrap_or(0) >= self.max_per_source {
            Some(self.oldest_idle(Some(source)))
        } else if self.open.len() >= self.max_total {
            Some(self.oldest_idle(None))
        } else {
            None
        };
        match victim {
            None => (Admission::Admit, None),
            Some(None) => (Admission::Refuse, None),
            Some(Some(id)) => (Admission::Shed(id), self.remove(id)),
        }
    }

    /// Records a connection from `ip` opened at `now`; returns its id.
    pub(crate) fn insert(&mut self, ip: IpAddr, now: Instant, handle: T) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let source = source(ip);
        *self.per_source.entry(source).or_insert(0) += 1;
        self.open.insert(
            id,
            Conn {
                source,
                opened: now,
                answering: false,
                handle,
            },
        );
        id
    }

    /// Connection `id` has sent its request head (no-op if it is gone).
    pub(crate) fn answering(&mut self, id: u64) {
        if let Some(conn) = self.open.get_mut(&id) {
            conn.answering = true;
        }
    }

    /// Forgets connection `id`; returns its handle if it was open.
    pub(crate) fn remove(&mut self, id: u64) -> Option<T> {
        let conn = self.open.remove(&id)?;
        if let Some(count) = self.per_source.get_mut(&conn.source) {
            *count -= 1;
            if *count == 0 {
                self.per_source.remove(&conn.source);
            }
        }
        Some(conn.handle)
    }

    /// The oldest idle connection, of `source` only when given. Shed only when a cap is
    /// reached, so the linear scan is over at most [`MAX_CONNECTIONS`] entries.
    pub(crate) fn oldest_idle(&self, source: Option<IpAddr>) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, conn)| !conn.answering && source.is_none_or(|s| s == conn.source))
            .min_by_key(|(id, conn)| (conn.opened, **id))
            .map(|(id, _)| *id)
    }

    /// Removes every connection, returning their handles (to close them at shutdown).
    pub(crate) fn drain(&mut self) -> Vec<T> {
        self.per_source.clear();
        self.open.drain().map(|(_, conn)| conn.handle).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rng::Rng;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    /// Checks the table's invariants: counts match the entries and respect the caps.
    fn check(conns: &Conns<u64>) {
        let mut counted: HashMap<IpAddr, usize> = HashMap::new();
        for conn in conns.open.values() {
            *counted.entry(conn.source).or_insert(0) += 1;
        }
        assert_eq!(counted, conns.per_source);
        assert!(conns.open.len() <= conns.max_total);
        assert!(counted.values().all(|&n| n <= conns.max_per_source));
    }

    #[test]
    fn a_source_at_its_cap_sheds_its_own_oldest_idle_connection() {
        let t0 = Instant::now();
        let mut conns = Conns::new(100, 3);
        let ids: Vec<u64> = (0..3)
            .map(|n| conns.insert(ip(1), t0 + Duration::from_secs(n), n))
            .collect();
        let other = conns.insert(ip(2), t0, 99);
        conns.answering(ids[0]);
        // The oldest idle one of 127.0.0.1 goes, not its answering one, not 127.0.0.2's.
        assert_eq!(conns.admit(ip(1)), (Admission::Shed(ids[1]), Some(1)));
        conns.insert(ip(1), t0 + Duration::from_secs(9), 3);
        check(&conns);
        // Another source still has room.
        assert_eq!(conns.admit(ip(3)), (Admission::Admit, None));
        conns.answering(ids[2]);
        conns.answering(other);
        assert_eq!(conns.admit(ip(1)).0, Admission::Shed(4));
        conns.insert(ip(1), t0, 5);
        conns.answering(5);
        conns.answering(6);
        // Every connection of 127.0.0.1 is being answered: the new one is refused.
        assert_eq!(conns.admit(ip(1)), (Admission::Refuse, None));
        check(&conns);
    }

    #[test]
    fn the_total_cap_sheds_the_oldest_idle_connection_of_any_source() {
        let t0 = Instant::now();
        let mut conns = Conns::new(3, 10);
        conns.insert(ip(1), t0 + Duration::from_secs(2), 0);
        let oldest = conns.insert(ip(2), t0 + Duration::from_secs(1), 1);
        conns.insert(ip(3), t0 + Duration::from_secs(3), 2);
        assert_eq!(conns.admit(ip(4)), (Admission::Shed(oldest), Some(1)));
        conns.insert(ip(4), t0 + Duration::from_secs(4), 3);
        assert_eq!(conns.len(), 3);
        check(&conns);
    }

    #[test]
    fn ipv6_sources_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source(a), source(b));
        assert_ne!(source(a), source(c));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(source(mapped), IpAddr::from([10, 1, 2, 3]));
    }

    #[test]
    fn random_floods_keep_the_counts_and_caps() {
        let mut rng = Rng::seeded(12);
        let t0 = Instant::now();
        let mut conns = Conns::new(20, 4);
        let mut open: Vec<u64> = Vec::new();
        for step in 0..5_000u64 {
            let now = t0 + Duration::from_millis(step);
            match rng.below(4) {
                0 | 1 => {
                    let from = ip(rng.below(8) as u8);
                    let admitted = match conns.admit(from) {
                        (Admission::Refuse, None) => false,
                        (Admission::Admit, None) => true,
                        (Admission::Shed(id), Some(handle)) => {
                            assert_eq!(id, handle);
                            open.retain(|&o| o != id);
                            true
                        }
                        other => panic!("inconsistent admission {other:?}"),
                    };
                    if admitted {
                        let id = conns.next_id;
                        open.push(conns.insert(from, now, id));
                    }
                }
                2 if !open.is_empty() => {
                    let id = open.swap_remove(rng.index(open.len()));
                    assert_eq!(conns.remove(id), Some(id));
                }
                _ if !open.is_empty() => conns.answering(open[rng.index(open.len())]),
                _ => {}
            }
            check(&conns);
            assert_eq!(conns.len(), open.len());
        }
    }
}
