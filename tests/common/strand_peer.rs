//! Strand sessions as test peers: a seeder over data written from a `TestTorrent`, and
//! leechers, each running `strand::session::download` in its own thread until stopped.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use strand::bitfield::Bitfield;
use strand::peer::mse::Encryption;
use strand::session::{Options, SeedPolicy, Summary};

use super::{wait_until, RawPeer, TestTorrent};

/// A free port on 127.0.0.1 (bound, read, released; the session binds it again).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Writes every file of `t` under `dir`, as a finished download would have.
pub fn write_payload(t: &TestTorrent, dir: &Path) {
    for (rel, data) in &t.files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dirs");
        std::fs::write(&path, data).expect("write payload");
    }
}

/// Where a test session listens (and dials from), and its `--encryption`.
struct Listen {
    addr: SocketAddr,
    encryption: Encryption,
}

impl Listen {
    /// Plaintext: RC4 is slow in debug builds (about 1 MB/s), and most tests move MiB.
    fn plaintext(addr: SocketAddr) -> Listen {
        Listen {
            addr,
            encryption: Encryption::Off,
        }
    }
}

/// A strand session running in a thread.
pub struct StrandPeer {
    /// Where it accepts peers.
    pub addr: SocketAddr,
    stop: Sender<()>,
    result: mpsc::Receiver<Result<Summary, String>>,
}

impl StrandPeer {
    /// Starts a session for `t` writing to `dir`. `verified` marks pieces already on disk.
    pub fn start(
        t: &TestTorrent,
        dir: &Path,
        peers: Vec<SocketAddr>,
        verified: Option<Bitfield>,
        seed: SeedPolicy,
    ) -> StrandPeer {
        StrandPeer::start_on(t, dir, peers, verified, seed, free_port())
    }

    /// A session downloading only the `chosen` files, listening on 127.0.0.1:`port`.
    pub fn start_with(
        t: &TestTorrent,
        dir: &Path,
        peers: Vec<SocketAddr>,
        chosen: Option<Vec<bool>>,
        seed: SeedPolicy,
        port: u16,
    ) -> StrandPeer {
        StrandPeer::spawn(
            t,
            dir,
            peers,
            None,
            chosen,
            seed,
            Listen::plaintext(([127, 0, 0, 1], port).into()),
        )
    }

    /// Like [`StrandPeer::start`], listening on 127.0.0.1:`port`.
    pub fn start_on(
        t: &TestTorrent,
        dir: &Path,
        peers: Vec<SocketAddr>,
        verified: Option<Bitfield>,
        seed: SeedPolicy,
        port: u16,
    ) -> StrandPeer {
        StrandPeer::spawn(
            t,
            dir,
            peers,
            verified,
            None,
            seed,
            Listen::plaintext(([127, 0, 0, 1], port).into()),
        )
    }

    fn spawn(
        t: &TestTorrent,
        dir: &Path,
        peers: Vec<SocketAddr>,
        verified: Option<Bitfield>,
        chosen: Option<Vec<bool>>,
        seed: SeedPolicy,
        listen: Listen,
    ) -> StrandPeer {
        let Listen { addr, encryption } = listen;
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let opts = Options {
            output_dir: dir.to_path_buf(),
            peers,
            max_peers: 50,
            listen: Some(addr),
            encryption,
            verified,
            chosen,
            preallocate: false,
            seed,
            stop: Some(stop_rx),
            tracker_timeout: Duration::from_secs(10),
            dht: None,
            flow: strand::session::Flow::default(),
        };
        let meta = strand::metainfo::Metainfo::from_bytes(&t.bytes).expect("a valid torrent");
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name(format!("strand {addr}"))
            .spawn(move || {
                let r = strand::session::download(meta, opts, &mut |_| {});
                let _ = tx.send(r.map_err(|e| e.to_string()));
            })
            .expect("spawn session thread");
        StrandPeer {
            addr,
            stop: stop_tx,
            result: rx,
        }
    }

    /// A leecher listening on `ip` (any free port), so that it also dials and announces from
    /// `ip`.
    pub fn leecher_at(
        t: &TestTorrent,
        dir: &Path,
        peers: Vec<SocketAddr>,
        ip: std::net::IpAddr,
    ) -> StrandPeer {
        let listen = Listen::plaintext(SocketAddr::new(ip, free_port()));
        StrandPeer::spawn(t, dir, peers, None, None, SeedPolicy::No, listen)
    }

    /// A leecher on 127.0.0.1 with `--encryption encryption`.
    pub fn leecher_encrypted(
        t: &TestTorrent,
        dir: &Path,
        peers: Vec<SocketAddr>,
        encryption: Encryption,
    ) -> StrandPeer {
        let listen = Listen {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            encryption,
        };
        StrandPeer::spawn(t, dir, peers, None, None, SeedPolicy::No, listen)
    }

    /// A seeder like [`StrandPeer::seeder`], with `--encryption encryption`.
    pub fn seeder_encrypted(t: &TestTorrent, dir: &Path, encryption: Encryption) -> StrandPeer {
        write_payload(t, dir);
        let all = Bitfield::full(t.piece_count());
        let listen = Listen {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            encryption,
        };
        StrandPeer::spawn(t, dir, vec![], Some(all), None, SeedPolicy::Forever, listen)
    }

    /// A seeder over `t`'s payload, written into `dir` first; it seeds until stopped.
    pub fn seeder(t: &TestTorrent, dir: &Path) -> StrandPeer {
        write_payload(t, dir);
        let all = Bitfield::full(t.piece_count());
        StrandPeer::start(t, dir, vec![], Some(all), SeedPolicy::Forever)
    }

    /// Waits up to `limit` for the session to end on its own.
    pub fn wait(&self, limit: Duration) -> Result<Summary, String> {
        self.result
            .recv_timeout(limit)
            .map_err(|e| format!("session did not end within {limit:?}: {e}"))?
    }

    /// Stops the session (as Ctrl-C would) and returns its summary.
    pub fn stop(self) -> Result<Summary, String> {
        let _ = self.stop.try_send(());
        self.wait(Duration::from_secs(20))
    }
}

/// Handshakes with `seeder`, says interested and waits for its unchoke.
pub fn unchoked_peer(seeder: &StrandPeer, t: &TestTorrent) -> RawPeer {
    let mut p = None;
    // The listener may need a moment to come up.
    assert!(wait_until(Duration::from_secs(10), || {
        p = RawPeer::connect(seeder.addr).ok();
        p.is_some()
    }));
    let mut p = p.expect("connected");
    let hs = p.handshake(&t.info_hash).expect("handshake");
    assert_eq!(&hs[28..48], &t.info_hash);
    p.send(2, &[]).expect("interested");
    p.recv_id(1).expect("unchoke");
    p
}

/// Whether the other side closes the connection within 10 s.
pub fn hung_up(p: &mut RawPeer) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match p.recv() {
            Ok(_) => continue,
            Err(e) if strand::net::is_timeout(&e) => continue,
            Err(_) => return true,
        }
    }
    false
}
