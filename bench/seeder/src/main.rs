//! A light BitTorrent v1 test seeder for `make bench-scale` (standard library only).
//!
//! It listens on COUNT consecutive ports of one address; each port is a separate peer with
//! its own peer id and a bitfield holding a subset of the pieces. Every accepted connection
//! gets its own thread (small stack), which answers the handshake, sends the bitfield and an
//! unchoke, then serves REQUESTs from the payload file with `pread`. Pieces are not
//! hashed here: the data is the torrent's own file. It announces nothing.
//!
//! usage: strand-bench-seeder --file PATH --info-hash HEX --piece-length N
//!                            [--ip 127.0.0.1] [--port 30000] [--count 300] [--share 40]
//!                            [--rate-kib 0]   (per connection; 0 = unlimited)
//!
//! Peer k (port = PORT + k) holds piece p when a hash of (p, k) falls under SHARE percent,
//! and always holds the pieces p with p % COUNT == k, so every piece is somewhere.
//! Prints "ready" on stdout once every port listens; runs until killed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const MAX_BLOCK: u32 = 128 * 1024;

struct Torrent {
    file: File,
    len: u64,
    piece_len: u64,
    pieces: u32,
    info_hash: [u8; 20],
}

fn holds(piece: u32, peer: u32, count: u32, share: u32) -> bool {
    if piece % count == peer {
        return true;
    }
    let mut x = (piece as u64) << 32 | peer as u64;
    // splitmix64
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x % 100) < share as u64
}

fn bitfield(t: &Torrent, peer: u32, count: u32, share: u32) -> Vec<u8> {
    let mut bf = vec![0u8; t.pieces.div_ceil(8) as usize];
    for p in 0..t.pieces {
        if holds(p, peer, count, share) {
            bf[(p / 8) as usize] |= 0x80 >> (p % 8);
        }
    }
    bf
}

fn serve(mut s: TcpStream, t: Arc<Torrent>, bf: Arc<Vec<u8>>, peer: u32, rate: u64) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut hs = [0u8; 68];
    s.read_exact(&mut hs)?;
    if hs[0] != 19 || &hs[1..20] != b"BitTorrent protocol" || hs[28..48] != t.info_hash {
        return Ok(());
    }
    let mut out = Vec::with_capacity(68 + 5 + bf.len() + 5);
    out.push(19);
    out.extend_from_slice(b"BitTorrent protocol");
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&t.info_hash);
    let id = format!("-SB0001-{peer:012}");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&(1 + bf.len() as u32).to_be_bytes());
    out.push(5);
    out.extend_from_slice(&bf);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.push(1); // unchoke
    s.write_all(&out)?;

    let mut rd = io::BufReader::with_capacity(16 * 1024, s.try_clone()?);
    let mut buf = vec![0u8; 13 + MAX_BLOCK as usize];
    let start = Instant::now();
    let mut sent: u64 = 0;
    loop {
        let mut len = [0u8; 4];
        rd.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            continue; // keep-alive
        }
        if len > 1 << 20 {
            return Ok(());
        }
        let mut msg = vec![0u8; len];
        rd.read_exact(&mut msg)?;
        if msg[0] != 6 || len != 13 {
            continue; // only REQUEST matters to a seeder that always unchokes
        }
        let index = u32::from_be_bytes(msg[1..5].try_into().unwrap());
        let begin = u32::from_be_bytes(msg[5..9].try_into().unwrap());
        let blen = u32::from_be_bytes(msg[9..13].try_into().unwrap());
        let off = index as u64 * t.piece_len + begin as u64;
        if index >= t.pieces
            || bf[(index / 8) as usize] & (0x80 >> (index % 8)) == 0
            || blen == 0
            || blen > MAX_BLOCK
            || begin as u64 + blen as u64 > t.piece_len
            || off + blen as u64 > t.len
        {
            return Ok(()); // a bad request: drop the peer
        }
        let n = 13 + blen as usize;
        buf[0..4].copy_from_slice(&(9 + blen).to_be_bytes());
        buf[4] = 7;
        buf[5..9].copy_from_slice(&index.to_be_bytes());
        buf[9..13].copy_from_slice(&begin.to_be_bytes());
        t.file.read_exact_at(&mut buf[13..n], off)?;
        s.write_all(&buf[..n])?;
        sent += blen as u64;
        if rate > 0 {
            // pace this connection to `rate` bytes/s
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            let spent = start.elapsed();
            if due > spent {
                thread::sleep(due - spent);
            }
        }
    }
}

fn parse_hex(h: &str) -> Option<[u8; 20]> {
    if h.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| -> Option<String> {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
    };
    let usage = "usage: strand-bench-seeder --file PATH --info-hash HEX --piece-length N [--ip IP] [--port P] [--count N] [--share PCT] [--rate-kib N]";
    let (Some(path), Some(hash), Some(plen)) = (get("--file"), get("--info-hash"), get("--piece-length")) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let ip: IpAddr = get("--ip").unwrap_or("127.0.0.1".into()).parse().expect("--ip");
    let port0: u16 = get("--port").unwrap_or("30000".into()).parse().expect("--port");
    let count: u32 = get("--count").unwrap_or("300".into()).parse().expect("--count");
    let share: u32 = get("--share").unwrap_or("40".into()).parse().expect("--share");
    let rate: u64 = get("--rate-kib").unwrap_or("0".into()).parse::<u64>().expect("--rate-kib") * 1024;
    let piece_len: u64 = plen.parse().expect("--piece-length");
    let info_hash = parse_hex(&hash).expect("--info-hash: 40 hex digits");
    let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let len = file.metadata().unwrap().len();
    let pieces = len.div_ceil(piece_len) as u32;
    let t = Arc::new(Torrent { file, len, piece_len, pieces, info_hash });

    let mut listeners = Vec::new();
    for k in 0..count {
        let addr = SocketAddr::new(ip, port0 + k as u16);
        let l = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        listeners.push((k, l));
    }
    for (k, l) in listeners {
        let t = t.clone();
        let bf = Arc::new(bitfield(&t, k, count, share));
        thread::Builder::new()
            .name(format!("accept-{k}"))
            .stack_size(64 * 1024)
            .spawn(move || {
                for s in l.incoming().flatten() {
                    let (t, bf) = (t.clone(), bf.clone());
                    let _ = thread::Builder::new()
                        .stack_size(256 * 1024)
                        .spawn(move || {
                            let _ = serve(s, t, bf, k, rate);
                        });
                }
            })
            .expect("spawn");
    }
    println!("ready: {count} peers on {ip}:{port0}..{}, {pieces} pieces", port0 as u32 + count - 1);
    io::stdout().flush().ok();
    loop {
        thread::park();
    }
}
