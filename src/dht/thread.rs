//! The DHT thread and its receiving threads: the only DHT code that touches sockets, the
//! clock, names and files.
//!
//! The `dht` thread owns the [`Node`] and the sending side of the socket(s); it waits on
//! its command channel, the datagrams its receivers pass on, and a 100 ms tick. Each socket
//! has a `dht recv` thread that blocks in `recv_from`, drops queries over a source's rate
//! ([`QueryLimiter`]) and forwards the rest over a channel bounded to [`INBOX`] datagrams
//! (dropping when full, so a flood cannot grow memory). The thread's clock is the system's
//! plus whatever [`DhtCommand::AdvanceClock`] added, so tests can age tokens and peers.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender, TryRecvError, TrySendError};

use crate::dht::id::NodeId;
use crate::dht::krpc::{self, MAX_DATAGRAM};
use crate::dht::node::{Node, NodeConfig, Output};
use crate::dht::ratelimit::{looks_like_query, QueryLimiter};
use crate::dht::state::{self, Saved};
use crate::dht::{is_loopback, Dht, DhtCommand, DhtConfig, DhtError, DhtEvent, DhtReport};
use crate::rng::Rng;

/// Datagrams waiting for the DHT thread, per socket.
pub const INBOX: usize = 1024;
/// Events waiting for the session; more are dropped.
const EVENTS: usize = 256;
const TICK: Duration = Duration::from_millis(100);
const RECV_TIMEOUT: Duration = Duration::from_millis(250);
/// Kernel receive buffer asked for each socket: room for a few thousand datagrams, so a
/// burst from one address is absorbed while the receiving thread drops it.
const RECEIVE_BUFFER: usize = 2 * 1024 * 1024;

enum Inbound {
    Datagram(SocketAddr, Vec<u8>),
    Dropped(u64),
}

/// The sending halves, and how to reach each family.
struct Sockets {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    /// The IPv6 socket also carries IPv4 (as mapped addresses).
    dual: bool,
}

impl Sockets {
    fn send(&self, to: SocketAddr, bytes: &[u8]) {
        let result = match (to.is_ipv4(), &self.v4, &self.v6) {
            (true, Some(s), _) => s.send_to(bytes, to),
            (true, None, Some(s)) if self.dual => s.send_to(bytes, krpc::map_v6(to)),
            (false, _, Some(s)) => s.send_to(bytes, to),
            _ => return,
        };
        if let Err(e) = result {
            log::trace!("DHT: sending to {to} failed: {e}");
        }
    }
}

fn bind(config: &DhtConfig) -> io::Result<(Sockets, u16)> {
    let (v4, v6, dual) = match config.bind {
        Some(IpAddr::V4(ip)) => (Some(UdpSocket::bind((ip, config.port))?), None, false),
        Some(IpAddr::V6(ip)) => (
            None,
            Some(UdpSocket::bind((ip, config.port))?),
            ip.is_unspecified(),
        ),
        None => match UdpSocket::bind((Ipv6Addr::UNSPECIFIED, config.port)) {
            Ok(s6) => {
                let port = s6.local_addr()?.port();
                match UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)) {
                    Ok(s4) => (Some(s4), Some(s6), false),
                    // Taken by our own dual-stack IPv6 socket.
                    Err(_) => (None, Some(s6), true),
                }
            }
            Err(_) => (
                Some(UdpSocket::bind((Ipv4Addr::UNSPECIFIED, config.port))?),
                None,
                false,
            ),
        },
    };
    let port = match (&v4, &v6) {
        (Some(s), _) | (None, Some(s)) => s.local_addr()?.port(),
        (None, None) => return Err(io::Error::other("no socket")),
    };
    Ok((Sockets { v4, v6, dual }, port))
}

pub(super) fn spawn(config: DhtConfig) -> Result<Dht, DhtError> {
    let (sockets, port) = bind(&config).map_err(|e| {
        let at = config
            .bind
            .map_or("every address".to_string(), |ip| ip.to_string());
        DhtError(format!("cannot bind UDP port {} on {at}: {e}", config.port))
    })?;
    let local = match (&sockets.v4, &sockets.v6) {
        (Some(s), _) | (None, Some(s)) => s.local_addr(),
        (None, None) => Err(io::Error::other("no socket")),
    }
    .map_err(|e| DhtError(e.to_string()))?;
    let (packets_tx, packets_rx) = crossbeam_channel::bounded(INBOX);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    for socket in [&sockets.v4, &sockets.v6].into_iter().flatten() {
        if let Err(e) = crate::net::grow_receive_buffer(socket, RECEIVE_BUFFER) {
            log::debug!("DHT: SO_RCVBUF not raised: {e}");
        }
        let socket = socket.try_clone().map_err(|e| DhtError(e.to_string()))?;
        socket
            .set_read_timeout(Some(RECV_TIMEOUT))
            .map_err(|e| DhtError(e.to_string()))?;
        let (tx, stop) = (packets_tx.clone(), stop_rx.clone());
        std::thread::Builder::new()
            .name("dht recv".to_string())
            .stack_size(256 * 1024)
            .spawn(move || receive(socket, tx, stop))
            .map_err(|e| DhtError(format!("cannot start a thread: {e}")))?;
    }
    let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
    let (event_tx, event_rx) = crossbeam_channel::bounded(EVENTS);
    let handle = std::thread::Builder::new()
        .name("dht".to_string())
        .spawn(move || run(config, sockets, port, cmd_rx, packets_rx, event_tx, stop_tx))
        .map_err(|e| DhtError(format!("cannot start a thread: {e}")))?;
    Ok(Dht {
        commands: cmd_tx,
        events: event_rx,
        local,
        handle,
    })
}

/// A receiving thread: forwards datagrams until the DHT thread drops `stop`'s sender.
fn receive(socket: UdpSocket, packets: Sender<Inbound>, stop: Receiver<()>) {
    let mut limiter = QueryLimiter::default();
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut dropped = 0u64;
    loop {
        if matches!(stop.try_recv(), Err(TryRecvError::Disconnected)) {
            return;
        }
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => continue,
        };
        let packet = &buf[..len];
        let from = krpc::unmap(from);
        if looks_like_query(packet) && !limiter.allow(from.ip(), Instant::now()) {
            dropped += 1;
            continue;
        }
        if dropped > 0 && packets.try_send(Inbound::Dropped(dropped)).is_ok() {
            dropped = 0;
        }
        match packets.try_send(Inbound::Datagram(from, packet.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => dropped += 1,
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

/// Resolves the bootstrap names (IP literals only under `loopback_only`).
fn resolve(names: &[String], loopback_only: bool, refused: &mut u64) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for name in names {
        if let Ok(addr) = name.parse::<SocketAddr>() {
            out.push(addr);
            continue;
        }
        if loopback_only {
            log::warn!("DHT: not resolving {name}: loopback-only");
            *refused += 1;
            continue;
        }
        match name.to_socket_addrs() {
            Ok(addrs) => out.extend(addrs),
            Err(e) => log::warn!("DHT: cannot resolve bootstrap node {name}: {e}"),
        }
    }
    out.retain(|a| {
        let ok = !loopback_only || is_loopback(a);
        if !ok {
            *refused += 1;
        }
        ok
    });
    out
}

fn run(
    config: DhtConfig,
    sockets: Sockets,
    port: u16,
    commands: Receiver<DhtCommand>,
    packets: Receiver<Inbound>,
    events: Sender<DhtEvent>,
    _stop_receivers: Sender<()>,
) -> DhtReport {
    let mut skew = Duration::ZERO;
    let now = |skew: Duration| Instant::now() + skew;
    let mut refused = 0u64;
    let mut dropped = 0u64;
    let saved = config.state_file.as_deref().and_then(state::load);
    let mut rng = Rng::from_entropy();
    let id = match (config.id, &saved) {
        (Some(id), _) => NodeId(id),
        (None, Some(saved)) => saved.id,
        (None, None) => NodeId::random(&mut rng),
    };
    let saved_nodes: Vec<_> = saved
        .map(|s| s.nodes)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !config.loopback_only || is_loopback(&n.addr))
        .collect();
    let bootstrap = resolve(&config.bootstrap, config.loopback_only, &mut refused);
    log::debug!(
        "DHT: node {id} on UDP port {port}, {} saved nodes, {} bootstrap addresses",
        saved_nodes.len(),
        bootstrap.len()
    );
    let node_config = NodeConfig {
        id,
        port,
        v4: sockets.v4.is_some() || sockets.dual,
        v6: sockets.v6.is_some(),
        bootstrap,
        saved: saved_nodes.clone(),
        own_ip: config.bind.filter(|ip| !ip.is_unspecified()),
    };
    let mut node = Node::new(node_config, rng, now(skew));
    let mut next_tick = now(skew) + TICK;
    let mut reported_nodes = usize::MAX;
    let mut next_nodes_event = Instant::now();
    loop {
        let wait = next_tick.saturating_duration_since(now(skew));
        select! {
            recv(commands) -> command => match command {
                Ok(DhtCommand::GetPeers(hash)) => node.get_peers(NodeId(hash), now(skew)),
                Ok(DhtCommand::Announce(hash, tcp_port)) => node.announce(NodeId(hash), tcp_port, now(skew)),
                Ok(DhtCommand::AddNode(addr)) => {
                    if !config.loopback_only || is_loopback(&addr) {
                        node.add_node(addr, now(skew));
                    } else {
                        refused += 1;
                    }
                }
                Ok(DhtCommand::Report(reply)) => {
                    let _ = reply.try_send(report(&node, refused, dropped));
                }
                Ok(DhtCommand::AdvanceClock(by)) => {
                    skew += by;
                    node.tick(now(skew));
                }
                Ok(DhtCommand::Stop) | Err(_) => break,
            },
            recv(packets) -> inbound => match inbound {
                Ok(Inbound::Datagram(from, bytes)) => node.receive(from, &bytes, now(skew)),
                Ok(Inbound::Dropped(n)) => dropped += n,
                Err(_) => break,
            },
            default(wait) => {}
        }
        if now(skew) >= next_tick {
            node.tick(now(skew));
            next_tick = now(skew) + TICK;
        }
        for output in node.drain() {
            match output {
                Output::Send(to, bytes) => {
                    if config.loopback_only && !is_loopback(&to) {
                        log::warn!("DHT: not sending to {to}: loopback-only");
                        refused += 1;
                    } else {
                        sockets.send(to, &bytes);
                    }
                }
                Output::Peers(hash, peers) => {
                    let _ = events.try_send(DhtEvent::Peers(hash.0, peers));
                }
                Output::LookupDone {
                    info_hash, peers, ..
                } => {
                    let _ = events.try_send(DhtEvent::LookupDone(info_hash.0, peers));
                }
            }
        }
        let count = node.node_count();
        // At most once a second, except the first node, which is news at once.
        let first = reported_nodes == 0 && count > 0;
        if count != reported_nodes && (first || Instant::now() >= next_nodes_event) {
            if events.try_send(DhtEvent::Nodes(count)).is_ok() {
                reported_nodes = count;
            }
            next_nodes_event = Instant::now() + Duration::from_secs(1);
        }
    }
    if let Some(path) = &config.state_file {
        let mut nodes = node.good_nodes(now(skew));
        if nodes.is_empty() {
            nodes = saved_nodes;
        }
        let saved = Saved {
            id: node.id(),
            nodes,
        };
        match state::save(path, &saved) {
            Ok(()) => log::debug!(
                "DHT: saved {} nodes to {}",
                saved.nodes.len(),
                path.display()
            ),
            Err(e) => log::warn!("DHT: cannot save {}: {e}", path.display()),
        }
    }
    report(&node, refused, dropped)
}

fn report(node: &Node, refused: u64, dropped: u64) -> DhtReport {
    let stats = node.stats();
    DhtReport {
        nodes: node.node_count(),
        malformed: stats.malformed,
        unsolicited: stats.unsolicited,
        answered: stats.answered,
        stored: node.stored(),
        refused,
        dropped,
    }
}
