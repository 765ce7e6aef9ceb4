//! Small socket vocabulary shared by every thread that owns a socket (peer threads, the
//! metadata phase, tracker clients, the built-in tracker, the DHT).
//!
//! Plain functions; no thread of its own, owns nothing. `--bind ADDR` reaches every socket
//! through here: a thread that opens a socket passes the local address it was given
//! ([`local_ip`] of `--bind`) to [`tcp_connect`] or [`udp_socket`], and skips a remote address
//! of the other family ([`same_family`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// `peers` in compact form (BEP 23, BEP 7, BEP 11: address bytes, then the port big-endian),
/// split by family: (IPv4 entries of 6 bytes, IPv6 entries of 18).
pub(crate) fn compact_by_family<'a>(
    peers: impl IntoIterator<Item = &'a SocketAddr>,
) -> (Vec<u8>, Vec<u8>) {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for peer in peers {
        let out = if peer.is_ipv4() { &mut v4 } else { &mut v6 };
        match peer.ip() {
            IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
        }
        out.extend_from_slice(&peer.port().to_be_bytes());
    }
    (v4, v6)
}

/// Whether `e` is a socket timeout expiring: a read or write timeout armed on a socket
/// reports `WouldBlock` on Unix and `TimedOut` on Windows.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The local address outgoing sockets bind to for `--bind ADDR`: `None` (the system chooses, as
/// without `--bind`) when `ADDR` is unspecified (`0.0.0.0` or `::`).
pub fn local_ip(bind: IpAddr) -> Option<IpAddr> {
    (!bind.is_unspecified()).then_some(bind)
}

/// Whether a socket bound to `local` can reach `remote`: always when `local` is `None`,
/// otherwise only an address of the same family.
pub(crate) fn same_family(local: Option<IpAddr>, remote: &SocketAddr) -> bool {
    local.is_none_or(|ip| ip.is_ipv4() == remote.is_ipv4())
}

/// Opens a TCP connection to `remote` from `local` (any port), giving up after `timeout`.
///
/// std's `TcpStream` cannot bind before it connects, so with a local address the socket is
/// made with `socket2`: bind to `local:0`, then connect. Without one this is
/// `TcpStream::connect_timeout`.
pub fn tcp_connect(
    remote: SocketAddr,
    local: Option<IpAddr>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let Some(ip) = local else {
        return TcpStream::connect_timeout(&remote, timeout);
    };
    check_family(ip, &remote)?;
    let socket = Socket::new(
        Domain::for_address(remote),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
    socket.connect_timeout(&SockAddr::from(remote), timeout)?;
    Ok(socket.into())
}

/// A UDP socket to talk to `remote` from, bound to `local` (any port), or to the unspecified
/// address of `remote`'s family when `local` is `None`.
pub(crate) fn udp_socket(remote: &SocketAddr, local: Option<IpAddr>) -> io::Result<UdpSocket> {
    let ip = match local {
        Some(ip) => {
            check_family(ip, remote)?;
            ip
        }
        None if remote.is_ipv6() => Ipv6Addr::UNSPECIFIED.into(),
        None => Ipv4Addr::UNSPECIFIED.into(),
    };
    UdpSocket::bind(SocketAddr::new(ip, 0))
}

/// Refuses to dial `remote` from `local` when their families differ.
fn check_family(local: IpAddr, remote: &SocketAddr) -> io::Result<()> {
    if same_family(Some(local), remote) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!("{remote} is not reachable from --bind {local} (another address family)"),
    ))
}

/// Asks the kernel for a receive buffer of `bytes` on a UDP socket (capped by
/// `net.core.rmem_max`), so that a burst is absorbed while the reading thread drops what it
/// must, rather than pushing other senders' datagrams out.
pub(crate) fn grow_receive_buffer(socket: &UdpSocket, bytes: usize) -> io::Result<()> {
    socket2::SockRef::from(socket).set_recv_buffer_size(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_told_from_failures() {
        assert!(is_timeout(&io::ErrorKind::WouldBlock.into()));
        assert!(is_timeout(&io::ErrorKind::TimedOut.into()));
        assert!(!is_timeout(&io::ErrorKind::ConnectionReset.into()));
        assert!(!is_timeout(&io::ErrorKind::UnexpectedEof.into()));
    }

    #[test]
    fn unspecified_bind_leaves_the_choice_to_the_system() {
        assert_eq!(local_ip(Ipv4Addr::UNSPECIFIED.into()), None);
        assert_eq!(local_ip(Ipv6Addr::UNSPECIFIED.into()), None);
        let ip: IpAddr = [127, 0, 0, 77].into();
        assert_eq!(local_ip(ip), Some(ip));
    }

    #[test]
    fn a_bound_connection_comes_from_the_bound_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let remote = listener.local_addr().unwrap();
        let local: IpAddr = [127, 0, 0, 77].into();
        let _stream = tcp_connect(remote, Some(local), Duration::from_secs(5)).unwrap();
        let (_, from) = listener.accept().unwrap();
        assert_eq!(from.ip(), local);

        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = udp_socket(&server.local_addr().unwrap(), Some(local)).unwrap();
        client.send_to(b"x", server.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 4];
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (_, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(from.ip(), local);
    }

    #[test]
    fn the_other_family_is_refused_before_any_packet() {
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let v4: IpAddr = [127, 0, 0, 77].into();
        assert!(!same_family(Some(v4), &v6));
        assert!(same_family(None, &v6));
        let err = tcp_connect(v6, Some(v4), Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrNotAvailable);
        assert!(err.to_string().contains("--bind 127.0.0.77"), "{err}");
        assert!(udp_socket(&v6, Some(v4)).is_err());
    }
}
