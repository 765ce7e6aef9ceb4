//! The session's decisions, driven by messages alone: no socket, no thread, no file.
//!
//! A [`Harness`] builds a [`Session`] with [`Session::new`] and no workers but a hash-job
//! channel the test reads. Fake peers are records added with `add_peer`, whose command
//! channel the test reads; the test plays every other thread by handing the session the
//! events those threads would send. After every event the piece store's invariants are
//! checked.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::store::{PieceState, PieceStore};
use super::{chosen_bytes, Options, SeedPolicy, Session, Workers};
use crate::bitfield::Bitfield;
use crate::geometry::{BlockRef, PieceIndex, BLOCK_LEN};
use crate::messages::{
    Command, DiskEvent, Event, HashJob, HashResult, PeerEvent, PeerKey, TheirHandshake,
};
use crate::metainfo::Metainfo;
use crate::peer::extension::{self, MetadataMsg};
use crate::peer::mse::{Encryption, Link};
use crate::storage::FileMap;

/// Two blocks a piece.
const PIECE: u32 = 2 * BLOCK_LEN;

/// A bencoded info dict: one file of `lengths[0]` bytes, or several files `f0`, `f1`, ….
fn info_dict(lengths: &[u64]) -> Vec<u8> {
    let total: u64 = lengths.iter().sum();
    let pieces = total.div_ceil(u64::from(PIECE));
    let mut d = Vec::new();
    if let [one] = lengths {
        d.extend(format!("d6:lengthi{one}e").bytes());
    } else {
        d.extend(b"d5:filesl");
        for (i, len) in lengths.iter().enumerate() {
            let name = format!("f{i}");
            d.extend(format!("d6:lengthi{len}e4:pathl{}:{name}ee", name.len()).bytes());
        }
        d.extend(b"e");
    }
    d.extend(format!("4:name1:t12:piece lengthi{PIECE}e6:pieces{}:", pieces * 20).bytes());
    d.extend(std::iter::repeat_n(0u8, pieces as usize * 20));
    d.extend(b"e");
    d
}

struct Harness {
    s: Session,
    hash_jobs: Receiver<HashJob>,
}

/// A fake peer: its key, its address and what the session told it.
struct FakePeer {
    key: PeerKey,
    addr: SocketAddr,
    commands: Receiver<Command>,
}

impl Harness {
    /// A session for files of `lengths` bytes, of which those in `chosen` are wanted.
    fn new(lengths: &[u64], chosen: Option<Vec<bool>>) -> Harness {
        Harness::build(lengths, chosen, false, super::Flow::default())
    }

    /// A session that has every piece of `lengths` bytes on disk and uploads at most
    /// `upload_limit` bytes a second.
    fn seeding(lengths: &[u64], upload_limit: Option<u64>) -> Harness {
        let flow = super::Flow {
            upload_limit,
            ..super::Flow::default()
        };
        Harness::build(lengths, None, true, flow)
    }

    fn build(
        lengths: &[u64],
        chosen: Option<Vec<bool>>,
        on_disk: bool,
        flow: super::Flow,
    ) -> Harness {
        let meta = Metainfo::from_info_bytes(&info_dict(lengths), Vec::new()).unwrap();
        let all = vec![true; meta.files.len()];
        let opts = Options {
            output_dir: PathBuf::from("/nonexistent/never-written"),
            peers: Vec::new(),
            max_peers: 50,
            listen: None,
            verified: None,
            chosen: chosen.clone(),
            preallocate: false,
            seed: SeedPolicy::No,
            stop: None,
            tracker_timeout: Duration::from_secs(60),
            dht: None,
            encryption: crate::peer::mse::Encryption::Off,
            flow,
        };
        let chosen = chosen.unwrap_or(all);
        let files = Arc::new(FileMap::selective(&opts.output_dir, &meta, &chosen));
        let g = meta.geometry;
        let had = if on_disk {
            Bitfield::full(g.piece_count())
        } else {
            Bitfield::new(g.piece_count())
        };
        let store = PieceStore::selective(g, chosen_bytes(&meta, &chosen), had, &Bitfield::new(0));
        let (hash_tx, hash_jobs) = crossbeam_channel::unbounded();
        let workers = Workers {
            hash_jobs: Some(hash_tx),
            hasher: None,
            writer: None,
            tracker: None,
            listener: None,
        };
        let events = crossbeam_channel::unbounded();
        let s = Session::new(meta, opts, [7; 20], store, files, events, workers);
        Harness { s, hash_jobs }
    }

    /// The store's invariants, and the picker telling the same story: a piece is `Complete`
    /// in the picker exactly while the store hashes it, and `Done` exactly while the store
    /// writes it, has it on disk or does not want it (ARCHITECTURE.md, "The states of a
    /// piece").
    fn check(&self) {
        self.s.store.check();
        for piece in 0..self.s.geometry.piece_count() {
            let state = self.s.store.state(piece);
            let (complete, done) = self.s.picker.is_complete_or_done(piece);
            assert_eq!(
                complete,
                matches!(state, PieceState::Hashing { .. }),
                "piece {piece}: {state:?}"
            );
            assert_eq!(
                done,
                matches!(
                    state,
                    PieceState::Writing | PieceState::OnDisk | PieceState::NotWanted
                ),
                "piece {piece}: {state:?}"
            );
        }
    }

    fn event(&mut self, key: PeerKey, event: PeerEvent) {
        self.s.handle(Event::Peer(key, event)).unwrap();
        self.check();
    }

    /// A connected peer at 127.0.0.`n` that has every piece and has unchoked us.
    fn seed(&mut self, n: u8) -> FakePeer {
        self.seed_over(n, Link::Plaintext)
    }

    /// [`Harness::seed`], dialed from the address book, its handshakes carried over `link`.
    fn seed_over(&mut self, n: u8, link: Link) -> FakePeer {
        let p = self.connect(n, false, link);
        self.event(p.key, PeerEvent::Bitfield(Bitfield::full(p.pieces(self))));
        assert_eq!(p.told(), vec![Command::Interested]);
        self.event(p.key, PeerEvent::Unchoked);
        p
    }

    /// A connected Fast peer at 127.0.0.`n` that sent `have all` (which its reading thread
    /// turns into a full bitfield) and still chokes us.
    fn fast_seed(&mut self, n: u8) -> FakePeer {
        let p = self.connect(n, true, Link::Plaintext);
        assert_eq!(p.told(), vec![Command::HaveNone]);
        self.event(p.key, PeerEvent::Bitfield(Bitfield::full(p.pieces(self))));
        assert_eq!(p.told(), vec![Command::Interested]);
        p
    }

    /// A peer at 127.0.0.`n` dialed from the address book, whose handshake is done over `link`,
    /// Fast or not.
    fn connect(&mut self, n: u8, fast: bool, link: Link) -> FakePeer {
        let addr = SocketAddr::from(([127, 0, 0, n], 6881));
        self.s.addresses.learn(addr);
        self.s.addresses.dialing(addr);
        let (key, commands) = self.s.add_peer(addr, false);
        self.event(
            key,
            PeerEvent::Connected {
                peer_id: [n; 20],
                extensions: false,
                fast,
                link,
            },
        );
        FakePeer {
            key,
            addr,
            commands,
        }
    }

    /// `peer` sends `block`, filled with `fill`.
    fn block(&mut self, peer: &FakePeer, block: BlockRef, fill: u8) {
        let data = vec![fill; block.len as usize];
        self.event(peer.key, PeerEvent::Block { block, data });
    }

    /// The hasher's verdict on the next job, which must be for `piece`; `digests` per block.
    fn hash(&mut self, piece: PieceIndex, ok: bool, digests: Option<Vec<[u8; 20]>>) -> HashJob {
        let job = self.hash_jobs.try_recv().expect("a hash job");
        assert_eq!(job.piece, piece);
        self.verdict(piece, ok, digests);
        job
    }

    /// The hasher's verdict on `piece`, whichever job it came from.
    fn verdict(&mut self, piece: PieceIndex, ok: bool, digests: Option<Vec<[u8; 20]>>) {
        let result = HashResult {
            piece,
            ok,
            block_digests: digests,
        };
        self.s.handle(Event::Hashed(result)).unwrap();
        self.check();
    }

    /// The writer reports `job`'s piece written.
    fn written(&mut self, job: HashJob) {
        let event = DiskEvent::PieceWritten(job.piece);
        self.s.handle(Event::Disk(event)).unwrap();
        self.check();
    }
}

impl FakePeer {
    /// The torrent's piece count.
    fn pieces(&self, h: &Harness) -> u32 {
        h.s.geometry.piece_count()
    }

    /// Everything the session has told this peer since the last look.
    fn told(&self) -> Vec<Command> {
        self.commands.try_iter().collect()
    }

    /// The blocks the session has asked this peer for since the last look (other commands
    /// are dropped).
    fn requests(&self) -> Vec<BlockRef> {
        self.told()
            .into_iter()
            .filter_map(|c| match c {
                Command::Request(b) => Some(b),
                _ => None,
            })
            .collect()
    }
}

fn block(piece: PieceIndex, index: u32) -> BlockRef {
    BlockRef {
        piece,
        offset: index * BLOCK_LEN,
        len: BLOCK_LEN,
    }
}

#[test]
fn a_block_asked_for_before_a_choke_is_taken_and_an_unasked_one_drops_the_peer() {
    let mut h = Harness::new(&[u64::from(4 * PIECE)], None);
    let p = h.seed(1);
    let asked = p.requests();
    assert_eq!(asked.len(), 8);
    h.event(p.key, PeerEvent::Choked);
    assert!(p.told().is_empty());
    // A block we asked for before the choke may still come, once: it is kept.
    h.block(&p, asked[0], 1);
    assert!(p.told().is_empty());
    assert!(matches!(
        h.s.store.state(asked[0].piece),
        PieceState::Assembling(_)
    ));
    assert_eq!(h.s.received_bytes, u64::from(BLOCK_LEN));
    // The same block again was never asked for a second time.
    h.block(&p, asked[0], 1);
    assert_eq!(p.told(), vec![Command::Disconnect]);
    // So is a block another peer was asked for and already sent.
    let q = h.seed(2);
    assert!(!q.requests().contains(&asked[0]));
    h.block(&q, asked[0], 2);
    assert_eq!(q.told(), vec![Command::Disconnect]);
}

#[test]
fn a_bad_piece_from_two_peers_bans_only_the_one_whose_block_differs() {
    let mut h = Harness::new(&[u64::from(PIECE)], None);
    let liar = h.seed(1);
    assert_eq!(liar.requests(), vec![block(0, 0), block(0, 1)]);
    // Endgame: the honest peer is asked for the same two blocks.
    let honest = h.seed(2);
    assert_eq!(honest.requests(), vec![block(0, 0), block(0, 1)]);
    h.block(&honest, block(0, 0), 1);
    assert_eq!(liar.told(), vec![Command::Cancel(block(0, 0))]);
    h.block(&liar, block(0, 1), 66);
    assert_eq!(honest.told(), vec![Command::Cancel(block(0, 1))]);
    let (good0, good1, bad1) = ([1; 20], [2; 20], [66; 20]);
    h.hash(0, false, Some(vec![good0, bad1]));
    assert_eq!(h.s.failed_pieces, 1);
    assert!(matches!(h.s.store.state(0), PieceState::Wanted));
    // Neither is blamed yet (two senders), and both are asked again.
    assert_eq!(liar.requests(), vec![block(0, 0), block(0, 1)]);
    assert_eq!(honest.requests(), vec![block(0, 0), block(0, 1)]);
    // The honest peer sends the whole piece; the liar's late blocks are canceled ones.
    h.block(&honest, block(0, 0), 1);
    h.block(&honest, block(0, 1), 2);
    assert_eq!(
        liar.told(),
        vec![Command::Cancel(block(0, 0)), Command::Cancel(block(0, 1))]
    );
    let job = h.hash(0, true, Some(vec![good0, good1]));
    assert_eq!(liar.told(), vec![Command::Disconnect]);
    assert!(honest.told().is_empty());
    assert!(h.s.addresses.is_banned(liar.addr));
    assert!(!h.s.addresses.is_banned(honest.addr));
    h.written(job);
    assert!(h.s.completed_at.is_some());
    assert_eq!(
        honest.told(),
        vec![Command::Have(0), Command::NotInterested]
    );
}

#[test]
fn a_bad_piece_from_one_peer_gives_it_a_strike() {
    let mut h = Harness::new(&[u64::from(2 * PIECE)], None);
    let p = h.seed(1);
    let asked = p.requests();
    for b in asked.iter().filter(|b| b.piece == asked[0].piece) {
        h.block(&p, *b, 9);
    }
    h.hash(asked[0].piece, false, Some(vec![[9; 20]; 2]));
    // One strike is not a ban: the peer stays and is asked for the piece again.
    assert!(!h.s.addresses.is_banned(p.addr));
    let again = p.told();
    assert!(!again.contains(&Command::Disconnect));
    assert!(again.contains(&Command::Request(block(asked[0].piece, 0))));
    // The good copy comes from the same peer: its one strike was the whole blame, so the
    // good copy's digests are not even asked for, and the peer stays.
    for b in asked.iter().filter(|b| b.piece == asked[0].piece) {
        h.block(&p, *b, 1);
    }
    let job = h.hash_jobs.try_recv().unwrap();
    assert!(!job.block_digests);
    h.verdict(job.piece, true, None);
    assert!(!p.told().contains(&Command::Disconnect));
    assert!(!h.s.addresses.is_banned(p.addr));
}

#[test]
fn a_peer_lost_mid_piece_leaves_its_blocks_to_the_others() {
    let mut h = Harness::new(&[u64::from(3 * PIECE)], None);
    let gone = h.seed(1);
    let asked = gone.requests();
    let piece = asked[0].piece;
    h.block(&gone, block(piece, 0), 1);
    h.event(
        gone.key,
        PeerEvent::Closed {
            reason: "test".into(),
        },
    );
    assert!(!h.s.peers.contains_key(&gone.key));
    assert!(matches!(h.s.store.state(piece), PieceState::Assembling(_)));
    let other = h.seed(2);
    let picked = other.requests();
    // The started piece is taken up, without the block already in.
    assert!(picked.contains(&block(piece, 1)));
    assert!(!picked.contains(&block(piece, 0)));
    assert_eq!(picked.len(), 5);
    h.block(&other, block(piece, 1), 2);
    let job = h.hash(piece, true, None);
    let mut expect = vec![1; BLOCK_LEN as usize];
    expect.extend(vec![2; BLOCK_LEN as usize]);
    assert_eq!(job.blocks.to_vec(), expect);
    assert!(matches!(h.s.store.state(piece), PieceState::Writing));
}

#[test]
fn endgame_cancels_the_duplicates_and_takes_a_late_canceled_block() {
    let mut h = Harness::new(&[u64::from(PIECE + BLOCK_LEN)], None);
    let a = h.seed(1);
    assert_eq!(a.requests().len(), 3);
    let b = h.seed(2);
    let dup = b.requests();
    assert_eq!(dup.len(), 3);
    for &blk in &dup {
        h.block(&a, blk, 3);
        assert_eq!(b.told(), vec![Command::Cancel(blk)]);
    }
    // The cancel crossed b's block on the wire: it arrives, and is not unsolicited.
    h.block(&b, dup[0], 3);
    assert!(b.told().is_empty());
    assert!(h.s.peers.contains_key(&b.key));
    for _ in 0..2 {
        let job = h.hash_jobs.try_recv().unwrap();
        h.verdict(job.piece, true, None);
        h.written(job);
    }
    assert!(h.s.finished());
}

#[test]
fn a_selective_download_fetches_the_boundary_pieces_of_the_chosen_file() {
    // Pieces of 32 KiB: f0 holds bytes [0, 48K) (pieces 0-1), f1 [48K, 80K) (pieces 1-2),
    // f2 [80K, 128K) (pieces 2-3). Only f1 is chosen: pieces 1 and 2, both shared.
    let k = u64::from(BLOCK_LEN);
    let mut h = Harness::new(&[3 * k, 2 * k, 3 * k], Some(vec![false, true, false]));
    assert_eq!(
        h.s.progress().total_bytes,
        2 * k,
        "f1's bytes, not its pieces'"
    );
    assert!(matches!(h.s.store.state(0), PieceState::NotWanted));
    assert!(matches!(h.s.store.state(3), PieceState::NotWanted));
    let p = h.seed(1);
    let mut asked = p.requests();
    asked.sort();
    assert_eq!(
        asked,
        vec![block(1, 0), block(1, 1), block(2, 0), block(2, 1)]
    );
    for &b in &asked {
        h.block(&p, b, 5);
    }
    for piece in [1, 2] {
        let job = h.hash(piece, true, None);
        h.written(job);
    }
    assert_eq!(h.s.progress().verified_bytes, 2 * k);
    assert!(h.s.completed_at.is_some());
    // Complete, yet not a seed: the unchosen pieces stay unfetched.
    assert!(!h.s.store.on_disk().is_full());
    assert!(p.requests().is_empty());
    assert!(h.s.finished());
}

#[test]
fn a_peer_gets_our_metadata_twice_over_and_then_rejects() {
    let mut h = Harness::new(&[u64::from(PIECE)], None);
    let p = h.seed(1);
    p.told();
    let theirs = TheirHandshake {
        ut_metadata: Some(3),
        ..TheirHandshake::default()
    };
    h.event(p.key, PeerEvent::ExtensionHandshake(theirs));
    let info = h.s.meta.info_bytes.clone();
    assert!(info.len() < extension::METADATA_PIECE_LEN);
    let mut answers = Vec::new();
    for _ in 0..3 {
        h.event(p.key, PeerEvent::MetadataRequested(0));
        for c in p.told() {
            let Command::Extended { id: 3, payload } = c else {
                panic!("unexpected {c:?}");
            };
            answers.push(extension::parse_metadata(&payload).unwrap());
        }
    }
    let data = MetadataMsg::Data {
        piece: 0,
        total_size: info.len() as u32,
        data: info,
    };
    assert_eq!(
        answers,
        vec![data.clone(), data, MetadataMsg::Reject { piece: 0 }]
    );
}

// ---------------------------------------------------------------------------------------------
// BEP 6, the Fast extension
// ---------------------------------------------------------------------------------------------

#[test]
fn a_reject_returns_the_block_to_the_picker_at_once() {
    let mut h = Harness::new(&[u64::from(100 * PIECE)], None);
    let a = h.fast_seed(1);
    h.event(a.key, PeerEvent::Unchoked);
    let asked = a.requests();
    assert_eq!(asked.len(), 32);
    // b has everything but chokes us, so it has asked nothing yet.
    let b = h.fast_seed(2);
    assert!(b.requests().is_empty());
    h.event(a.key, PeerEvent::Rejected(asked[0]));
    assert!(
        a.told().is_empty(),
        "a reject for a block we asked for is fine"
    );
    assert!(!h.s.picker.is_requested_from(a.key, asked[0]));
    // No timeout: the next peer able to take it gets it first.
    h.event(b.key, PeerEvent::Unchoked);
    let to_b = b.requests();
    assert_eq!(to_b.first(), Some(&asked[0]));
    assert!(!to_b.contains(&asked[1]));
    // The same reject again is for a request no longer outstanding: a protocol error.
    h.event(a.key, PeerEvent::Rejected(asked[0]));
    assert_eq!(a.told(), vec![Command::Disconnect]);
    // So is one for a block b was never asked for.
    h.event(b.key, PeerEvent::Rejected(asked[1]));
    assert_eq!(b.told(), vec![Command::Disconnect]);
}

#[test]
fn a_choking_fast_peer_is_asked_only_for_the_pieces_it_allows_fast() {
    let mut h = Harness::new(&[u64::from(20 * PIECE)], None);
    let p = h.fast_seed(1);
    assert!(p.requests().is_empty());
    h.event(p.key, PeerEvent::AllowedFast(3));
    h.event(p.key, PeerEvent::AllowedFast(3));
    assert_eq!(p.requests(), vec![block(3, 0), block(3, 1)]);
    // Unchoked, it is asked for the rest; choked again, the allowed requests stay out.
    h.event(p.key, PeerEvent::Unchoked);
    let more = p.requests();
    assert_eq!(more.len(), 30);
    assert!(!more.iter().any(|b| b.piece == 3));
    h.event(p.key, PeerEvent::Choked);
    assert!(p.requests().is_empty());
    assert!(h.s.picker.is_requested_from(p.key, block(3, 0)));
    assert_eq!(h.s.picker.requested_from(p.key), 2);
    // The choke withdrew the others: the peer rejects them, as BEP 6 asks, and may.
    for b in &more {
        h.event(p.key, PeerEvent::Rejected(*b));
    }
    assert!(p.told().is_empty());
    // It rejects an allowed piece too: it is not asked for it again while it chokes us.
    h.event(
        p.key,
        PeerEvent::Block {
            block: block(3, 0),
            data: vec![1; BLOCK_LEN as usize],
        },
    );
    h.check();
    h.event(p.key, PeerEvent::Rejected(block(3, 1)));
    assert!(p.requests().is_empty());
    assert!(h.s.peers.contains_key(&p.key));
}

#[test]
fn a_fast_peer_gets_have_all_allowed_fast_and_a_reject_for_what_we_do_not_serve() {
    let mut h = Harness::seeding(&[u64::from(20 * PIECE)], Some(1));
    let p = h.connect(1, true, Link::Plaintext);
    let allowed = crate::peer::fast::allowed_fast_set(
        p.addr.ip(),
        &h.s.meta.info_hash,
        20,
        crate::peer::fast::ALLOWED_FAST_COUNT,
    );
    assert_eq!(allowed.len(), 10);
    let mut expect = vec![Command::HaveAll];
    expect.extend(allowed.iter().map(|&piece| Command::AllowedFast(piece)));
    assert_eq!(p.told(), expect);
    let (fast, slow) = (allowed[0], (0..20).find(|i| !allowed.contains(i)).unwrap());
    // Choked: an allowed piece is served, any other rejected.
    h.event(p.key, PeerEvent::Requested(block(slow, 0)));
    assert_eq!(p.told(), vec![Command::Reject(block(slow, 0))]);
    h.event(p.key, PeerEvent::Requested(block(fast, 0)));
    assert_eq!(p.told(), vec![Command::Upload(block(fast, 0))]);
    // Unchoked: the upload limit (one block of burst) holds the next requests back.
    h.event(p.key, PeerEvent::Interested);
    assert_eq!(p.told(), vec![Command::Unchoke]);
    for b in [block(slow, 0), block(fast, 1), block(slow, 1)] {
        h.event(p.key, PeerEvent::Requested(b));
    }
    assert!(p.told().is_empty());
    // A cancel of a waiting request is answered with a reject.
    h.event(p.key, PeerEvent::Canceled(block(slow, 0)));
    assert_eq!(
        p.told(),
        vec![
            Command::Reject(block(slow, 0)),
            Command::SkipUpload(block(slow, 0))
        ]
    );
    // The choke: the sender keeps the allowed pieces' requests; of those waiting here,
    // the allowed one stays and the other is rejected.
    h.s.set_choking(p.key, true);
    assert_eq!(
        p.told(),
        vec![
            Command::Choke {
                keep: allowed.clone()
            },
            Command::Reject(block(slow, 1))
        ]
    );
    assert_eq!(h.s.limits.waiting_for(p.key), vec![block(fast, 1)]);
}

#[test]
fn a_plain_peer_gets_no_fast_messages() {
    let mut h = Harness::seeding(&[u64::from(4 * PIECE)], None);
    let p = h.connect(1, false, Link::Plaintext);
    assert_eq!(
        p.told(),
        vec![Command::Bitfield(h.s.store.on_disk().as_bytes().to_vec())]
    );
    // Choked: its requests are ignored; the choke keeps nothing.
    h.event(p.key, PeerEvent::Requested(block(0, 0)));
    assert!(p.told().is_empty());
    h.event(p.key, PeerEvent::Interested);
    assert_eq!(p.told(), vec![Command::Unchoke]);
    h.s.set_choking(p.key, true);
    assert_eq!(p.told(), vec![Command::Choke { keep: Vec::new() }]);
}

#[test]
fn a_piece_of_a_fast_peers_allowed_set_is_allowed_to_it_once_we_have_it() {
    let mut h = Harness::new(&[u64::from(20 * PIECE)], None);
    let p = h.fast_seed(1);
    let ours = h.s.peers[&p.key].allowed_to_them.clone();
    assert_eq!(ours.len(), 10);
    let (mine, other) = (ours[0], (0..20).find(|i| !ours.contains(i)).unwrap());
    // The peer allows us both pieces; we fetch them while it chokes us.
    h.event(p.key, PeerEvent::AllowedFast(mine));
    h.event(p.key, PeerEvent::AllowedFast(other));
    let mut asked = p.requests();
    asked.sort();
    let mut expect = vec![
        block(mine, 0),
        block(mine, 1),
        block(other, 0),
        block(other, 1),
    ];
    expect.sort();
    assert_eq!(asked, expect);
    for b in asked {
        h.block(&p, b, 4);
    }
    for _ in 0..2 {
        let job = h.hash_jobs.try_recv().unwrap();
        h.verdict(job.piece, true, None);
        let piece = job.piece;
        h.written(job);
        let told = p.told();
        assert!(told.contains(&Command::Have(piece)));
        assert_eq!(
            told.contains(&Command::AllowedFast(piece)),
            piece == mine,
            "piece {piece}: {told:?}"
        );
    }
}

#[test]
fn peer_exchange_flags_peers_that_speak_mse() {
    let mut h = Harness::new(&[u64::from(PIECE)], None);
    let over_mse = h.seed_over(1, Link::Mse);
    let says_e = h.seed(2);
    let plain = h.seed(3);
    let told = h.seed(4);
    let e = TheirHandshake {
        prefers_encryption: true,
        ..TheirHandshake::default()
    };
    h.event(says_e.key, PeerEvent::ExtensionHandshake(e));
    told.told();
    let pex = TheirHandshake {
        ut_pex: Some(7),
        ..TheirHandshake::default()
    };
    h.event(told.key, PeerEvent::ExtensionHandshake(pex));
    h.s.peers.get_mut(&told.key).unwrap().pex_due = Some(std::time::Instant::now());
    h.s.send_pex();
    let [Command::Extended { id: 7, payload }] = &told.told()[..] else {
        panic!("no peer exchange message");
    };
    let pex = extension::parse_pex(payload).unwrap();
    let mut added = pex.added.clone();
    added.sort();
    assert_eq!(added, [over_mse.addr, says_e.addr, plain.addr]);
    let mut encrypted = pex.encrypted;
    encrypted.sort();
    assert_eq!(encrypted, [over_mse.addr, says_e.addr]);
}

#[test]
fn a_peer_that_needed_the_plaintext_fallback_is_redialed_in_plaintext() {
    let mut h = Harness::new(&[u64::from(PIECE)], None);
    let fell_back = h.seed_over(1, Link::PlaintextFallback);
    let mse = h.seed_over(2, Link::Mse);
    for p in [&fell_back, &mse] {
        h.event(
            p.key,
            PeerEvent::Closed {
                reason: "test".into(),
            },
        );
    }
    let later = std::time::Instant::now() + Duration::from_secs(3);
    let mut next = h.s.addresses.to_dial(later, false, Encryption::Prefer);
    next.sort_by_key(|(a, _)| *a);
    assert_eq!(
        next,
        [
            (fell_back.addr, Encryption::Off),
            (mse.addr, Encryption::Prefer)
        ]
    );
}
