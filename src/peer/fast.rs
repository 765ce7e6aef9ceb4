//! BEP 6, the Fast extension: its pure parts.
//!
//! - [`allowed_fast_set`]: the BEP's canonical allowed-fast set for a peer's address. The
//!   main thread computes it once per Fast connection, sends `allowed fast` for the pieces of
//!   it we have, and serves requests for them even while it chokes the peer.
//! - [`FastRules`]: the order and range checks on what a peer sends, run by the connection's
//!   reading thread on every message before it becomes a `PeerEvent`. A break is a protocol
//!   error that ends the connection.
//!
//! A `reject` for a block we never asked for is the other strict check, but only the main
//! thread knows what we asked for: it asks the picker (`Picker::rejected`).
//! Nothing here owns state beyond one connection's [`FastRules`].

use std::net::IpAddr;

use sha1::{Digest, Sha1};

use super::wire::Message;
use crate::geometry::{Geometry, PieceIndex};

/// How many pieces we allow each Fast peer (the BEP's `k`, which libtorrent also uses).
pub(crate) const ALLOWED_FAST_COUNT: usize = 10;

/// Most SHA-1 rounds spent looking for `k` distinct pieces; with `k` at most the piece count
/// the set is found in a few rounds, this only bounds the loop.
const MAX_ROUNDS: usize = 1000;

/// The canonical allowed-fast set (BEP 6) of `k` pieces (fewer when the torrent has fewer)
/// for a peer at `ip`: the SHA-1 of the address's /24 and the info hash, rehashed until it
/// has named `k` distinct pieces, four bytes at a time.
///
/// BEP 6 defines the set for IPv4 only. An IPv4-mapped IPv6 address counts as its IPv4
/// address. For any other IPv6 address we return no set (so we allow nothing fast to it),
/// as the BEP leaves no canonical set for a peer to expect, and a /24 rule over IPv6 would
/// let one host collect a set per address it owns.
pub(crate) fn allowed_fast_set(
    ip: IpAddr,
    info_hash: &[u8; 20],
    pieces: u32,
    k: usize,
) -> Vec<PieceIndex> {
    let v4 = match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4,
            None => return Vec::new(),
        },
    };
    let k = k.min(pieces as usize);
    let mut x = (u32::from(v4) & 0xffff_ff00).to_be_bytes().to_vec();
    x.extend_from_slice(info_hash);
    let mut set = Vec::with_capacity(k);
    for _ in 0..MAX_ROUNDS {
        if set.len() >= k {
            break;
        }
        let digest: [u8; 20] = Sha1::digest(&x).into();
        for word in digest.chunks_exact(4) {
            let index = u32::from_be_bytes([word[0], word[1], word[2], word[3]]) % pieces;
            if set.len() < k && !set.contains(&index) {
                set.push(index);
            }
        }
        x = digest.to_vec();
    }
    set
}

/// One connection's checks of what the peer sends, as BEP 6 asks of a strict client:
/// - the five Fast messages (`suggest`, `have all`, `have none`, `reject`, `allowed fast`)
///   only when both handshakes set the Fast bit;
/// - `have none` only as the peer's first message, like a bitfield (keep-alives and BEP 10
///   extension messages, the extension handshake among them, may come first);
/// - their piece indexes within the torrent, and a `reject` naming a block that could have
///   been requested.
///
/// A late `have all` is accepted, as a late bitfield is: aria2 (1.36, in its `checkHave`)
/// sends one to a Fast peer in place of twenty or more `have`s once it has every piece, so
/// refusing it would drop every aria2 that finishes while connected to us (seen in the
/// interop matrix). It only adds pieces. A late `have none` could only take pieces away,
/// which no message may do, so it stays an error.
#[derive(Debug, Clone)]
pub(crate) struct FastRules {
    fast: bool,
    geometry: Geometry,
    /// No message but keep-alives and extension messages has arrived yet.
    opening: bool,
}

impl FastRules {
    /// Checks for a connection whose handshakes both set the Fast bit (`fast`) or not.
    pub(crate) fn new(fast: bool, geometry: Geometry) -> FastRules {
        FastRules {
            fast,
            geometry,
            opening: true,
        }
    }

    /// Whether `msg` may come now; `Err` says why not, in a few words for the log.
    pub(crate) fn check(&mut self, msg: &Message) -> Result<(), String> {
        let opening = self.opening;
        if !matches!(msg, Message::KeepAlive | Message::Extended { .. }) {
            self.opening = false;
        }
        let fast_only = matches!(
            msg,
            Message::Suggest(_)
                | Message::HaveAll
                | Message::HaveNone
                | Message::Reject(_)
                | Message::AllowedFast(_)
        );
        if fast_only && !self.fast {
            return Err(format!("{msg} without the Fast extension bit"));
        }
        let pieces = self.geometry.piece_count();
        match msg {
            Message::HaveNone if !opening => Err(format!("{msg} after other messages")),
            Message::Suggest(piece) | Message::AllowedFast(piece) if *piece >= pieces => {
                Err(format!("{msg} of a torrent of {pieces} pieces"))
            }
            Message::Reject(b) if !self.geometry.is_valid_request(b.piece, b.offset, b.len) => {
                Err(format!("{msg}: no such block"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{BlockRef, BLOCK_LEN};

    /// BEP 6's published vectors: 1313 pieces, an info hash of twenty 0xAA bytes, peer
    /// 80.4.4.200; k = 7 and k = 9.
    #[test]
    fn canonical_set_matches_the_bep_6_vectors() {
        let ip: IpAddr = "80.4.4.200".parse().unwrap();
        let hash = [0xaa; 20];
        assert_eq!(
            allowed_fast_set(ip, &hash, 1313, 7),
            [1059, 431, 808, 1217, 287, 376, 1188]
        );
        assert_eq!(
            allowed_fast_set(ip, &hash, 1313, 9),
            [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
        );
        // The same /24 gives the same set; a mapped IPv6 address counts as its IPv4 one.
        let same: IpAddr = "80.4.4.1".parse().unwrap();
        assert_eq!(
            allowed_fast_set(same, &hash, 1313, 9),
            allowed_fast_set(ip, &hash, 1313, 9)
        );
        let mapped: IpAddr = "::ffff:80.4.4.200".parse().unwrap();
        assert_eq!(
            allowed_fast_set(mapped, &hash, 1313, 7),
            allowed_fast_set(ip, &hash, 1313, 7)
        );
        let other: IpAddr = "80.4.5.200".parse().unwrap();
        assert_ne!(
            allowed_fast_set(other, &hash, 1313, 7),
            allowed_fast_set(ip, &hash, 1313, 7)
        );
    }

    #[test]
    fn small_torrents_get_every_piece_and_ipv6_gets_none() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut set = allowed_fast_set(ip, &[1; 20], 3, ALLOWED_FAST_COUNT);
        set.sort_unstable();
        assert_eq!(set, [0, 1, 2]);
        assert_eq!(allowed_fast_set(ip, &[1; 20], 1, 10), [0]);
        assert!(allowed_fast_set(ip, &[1; 20], 0, 10).is_empty());
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(allowed_fast_set(v6, &[1; 20], 1313, 10).is_empty());
        let set = allowed_fast_set(ip, &[1; 20], 50_000, ALLOWED_FAST_COUNT);
        assert_eq!(set.len(), ALLOWED_FAST_COUNT);
        assert!(set.iter().all(|&p| p < 50_000));
    }

    /// Four pieces of two blocks.
    fn rules(fast: bool) -> FastRules {
        FastRules::new(fast, Geometry::new(8 * u64::from(BLOCK_LEN), 2 * BLOCK_LEN))
    }

    fn block(piece: u32, offset: u32, len: u32) -> BlockRef {
        BlockRef { piece, offset, len }
    }

    #[test]
    fn fast_messages_without_the_bit_are_refused() {
        for msg in [
            Message::Suggest(0),
            Message::HaveAll,
            Message::HaveNone,
            Message::Reject(block(0, 0, BLOCK_LEN)),
            Message::AllowedFast(0),
        ] {
            let err = rules(false).check(&msg).unwrap_err();
            assert!(err.ends_with("without the Fast extension bit"), "{err}");
            assert_eq!(rules(true).check(&msg), Ok(()), "{msg}");
        }
        let mut plain = rules(false);
        for msg in [
            Message::Bitfield(vec![0xf0]),
            Message::Have(3),
            Message::Unchoke,
        ] {
            assert_eq!(plain.check(&msg), Ok(()));
        }
    }

    #[test]
    fn have_none_comes_first_or_not_at_all_and_have_all_whenever() {
        let mut r = rules(true);
        let ext = Message::Extended {
            id: 0,
            payload: b"de".to_vec(),
        };
        assert_eq!(r.check(&Message::KeepAlive), Ok(()));
        assert_eq!(r.check(&ext), Ok(()));
        assert_eq!(r.check(&Message::HaveNone), Ok(()));
        assert_eq!(
            r.check(&Message::HaveNone),
            Err("have-none after other messages".into())
        );
        for first in [
            Message::Bitfield(vec![0]),
            Message::Have(1),
            Message::AllowedFast(1),
            Message::Unchoke,
            Message::HaveAll,
        ] {
            let mut r = rules(true);
            assert_eq!(r.check(&first), Ok(()));
            let err = r.check(&Message::HaveNone).unwrap_err();
            assert_eq!(err, "have-none after other messages");
            // aria2 sends `have all` once it has every piece, whatever came before.
            assert_eq!(r.check(&Message::HaveAll), Ok(()));
        }
    }

    #[test]
    fn out_of_range_indexes_are_refused() {
        let mut r = rules(true);
        assert_eq!(r.check(&Message::AllowedFast(3)), Ok(()));
        assert_eq!(r.check(&Message::Suggest(3)), Ok(()));
        assert_eq!(
            r.check(&Message::AllowedFast(4)),
            Err("allowed-fast piece=4 of a torrent of 4 pieces".into())
        );
        assert!(r.check(&Message::Suggest(u32::MAX)).is_err());
        assert_eq!(
            r.check(&Message::Reject(block(3, BLOCK_LEN, BLOCK_LEN))),
            Ok(())
        );
        for bad in [
            block(4, 0, BLOCK_LEN),
            block(0, 2 * BLOCK_LEN, BLOCK_LEN),
            block(0, 0, BLOCK_LEN + 1),
            block(0, 0, 0),
        ] {
            let err = r.check(&Message::Reject(bad)).unwrap_err();
            assert!(err.ends_with("no such block"), "{err}");
        }
    }
}
