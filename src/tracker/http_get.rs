//! A small HTTP/1.1 GET for `http://` tracker announces, on a socket we open ourselves so that
//! it binds to `--bind` like every other socket (ureq 2 opens its own sockets and cannot bind
//! them; see ARCHITECTURE.md, "Why our own HTTP GET for http:// trackers").
//!
//! Runs on the calling thread (a `tracker-http` thread); owns its one connection for the one
//! request. One GET with `Connection: close`; the reply's body is read by `Content-Length`,
//! `chunked` or to the end, never past the caller's limit; redirects to `http://` URLs are
//! followed a few times. The whole exchange, connect included, ends by one deadline.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::http::io_reason;
use crate::net;
use crate::peer::dial::DeadlineReader;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 3;
/// Longest status line and header block accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Why a GET failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GetError {
    /// No connection, a broken one, a malformed reply, or the deadline passed.
    Transport(String),
    /// The server answered with a status other than 2xx (and not a redirect we follow).
    Status(u16),
    /// The body is longer than the limit.
    TooLarge,
}

/// GETs `url` (`http://host[:port]/path?query`) from `local` (`None` lets the system choose)
/// and returns the body of a 2xx reply, at most `max_body` bytes, all within `timeout`.
pub(crate) fn get(
    url: &str,
    local: Option<IpAddr>,
    timeout: Duration,
    max_body: usize,
) -> Result<Vec<u8>, GetError> {
    let deadline = Instant::now() + timeout;
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        match get_once(&url, local, deadline, max_body)? {
            Reply::Body(body) => return Ok(body),
            Reply::Redirect(location) => url = resolve(&url, &location)?,
        }
    }
    Err(GetError::Transport(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

enum Reply {
    Body(Vec<u8>),
    Redirect(String),
}

/// The parts of an `http://` URL a request needs.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// `host` or `host:port`, as the `Host` header carries it.
    authority: String,
    host: String,
    port: u16,
    /// Path and query, starting with `/`.
    path: String,
}

fn parse_url(url: &str) -> Result<Target, GetError> {
    let bad = || GetError::Transport("bad URL: expected http://host[:port]/path".into());
    let rest = url
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("http://"))
        .map(|_| &url[7..])
        .ok_or_else(bad)?;
    let rest = rest.split('#').next().unwrap_or(rest);
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => 80,
            None => return Err(bad()),
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, p)) => (host.to_string(), p.parse().map_err(|_| bad())?),
            None => (authority.to_string(), 80),
        }
    };
    if host.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    Ok(Target {
        authority: authority.to_string(),
        host,
        port,
        path,
    })
}

/// The URL a `Location` header points to: absolute `http://`, or a path on the same server.
fn resolve(base: &str, location: &str) -> Result<String, GetError> {
    if location.len() > 7 && location[..7].eq_ignore_ascii_case("http://") {
        return Ok(location.to_string());
    }
    if location.starts_with('/') && !location.starts_with("//") {
        let target = parse_url(base)?;
        return Ok(format!("http://{}{location}", target.authority));
    }
    Err(GetError::Transport(format!(
        "redirected to {location}, which is not followed"
    )))
}

fn get_once(
    url: &str,
    local: Option<IpAddr>,
    deadline: Instant,
    max_body: usize,
) -> Result<Reply, GetError> {
    let target = parse_url(url)?;
    let stream = connect(&target, local, deadline)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: strand/{}\r\nAccept-Encoding: identity\r\n\
         Connection: close\r\n\r\n",
        target.path,
        target.authority,
        env!("CARGO_PKG_VERSION")
    );
    let io = |what: &str, e: io::Error| {
        if net::is_timeout(&e) {
            GetError::Transport("timed out".into())
        } else {
            GetError::Transport(format!("{what}: {}", io_reason(&e)))
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    stream
        .set_write_timeout(Some(left.max(Duration::from_millis(1))))
        .map_err(|e| io("cannot send the request", e))?;
    (&stream)
        .write_all(request.as_bytes())
        .map_err(|e| io("cannot send the request", e))?;
    let mut reader = BufReader::new(DeadlineReader::new(&stream, left));
    let head = read_head(&mut reader).map_err(|e| io("reading the reply", e))?;
    let reply = parse_head(&head)?;
    if (300..400).contains(&reply.status) {
        if let Some(location) = reply.location {
            return Ok(Reply::Redirect(location));
        }
    }
    if !(200..300).contains(&reply.status) {
        return Err(GetError::Status(reply.status));
    }
    let body = if reply.chunked {
        read_chunked(&mut reader, max_body)
    } else {
        let limit = reply.length.unwrap_or(u64::MAX).min(max_body as u64 + 1);
        let mut body = Vec::new();
        reader
            .take(limit)
            .read_to_end(&mut body)
            .map(|_| body)
            .and_then(|body| match reply.length {
                Some(n) if (body.len() as u64) < n && n <= max_body as u64 => {
                    Err(io::ErrorKind::UnexpectedEof.into())
                }
                _ => Ok(body),
            })
    }
    .map_err(|e| io("reading the reply", e))?;
    if body.len() > max_body {
        return Err(GetError::TooLarge);
    }
    Ok(Reply::Body(body))
}

/// Connects to the first address of `target` that answers, skipping the other family than
/// `local`.
fn connect(
    target: &Target,
    local: Option<IpAddr>,
    deadline: Instant,
) -> Result<TcpStream, GetError> {
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| GetError::Transport(format!("cannot resolve {}: {e}", target.host)))?
        .filter(|a| net::same_family(local, a))
        .collect();
    let mut last = format!("{} has no address to reach from here", target.host);
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(GetError::Transport("timed out".into()));
        }
        match net::tcp_connect(addr, local, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = io_reason(&e),
        }
    }
    Err(GetError::Transport(last))
}

/// Reads the status line and headers, up to the blank line.
fn read_head(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = r
            .by_ref()
            .take(MAX_HEAD as u64)
            .read_until(b'\n', &mut head)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if head.len() > MAX_HEAD {
            return Err(io::Error::other("reply head too long"));
        }
        if matches!(&head[before..], b"\r\n" | b"\n") && before > 0 {
            return Ok(head);
        }
    }
}

/// What the head says about the body.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    length: Option<u64>,
    chunked: bool,
    location: Option<String>,
}

fn parse_head(head: &[u8]) -> Result<Head, GetError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines();
    let status_line = lines.next().unwrap_or("");
    let malformed = || GetError::Transport(format!("malformed status line {status_line:?}"));
    let mut words = status_line.split_whitespace();
    if !words.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(malformed());
    }
    let status: u16 = words
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(malformed)?;
    let mut parsed = Head {
        status,
        length: None,
        chunked: false,
        location: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            parsed.length =
                Some(value.parse().map_err(|_| {
                    GetError::Transport(format!("malformed Content-Length {value:?}"))
                })?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            parsed.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("location") {
            parsed.location = Some(value.to_string());
        }
    }
    Ok(parsed)
}

/// Reads a `chunked` body, stopping once it is past `max_body` bytes.
fn read_chunked(r: &mut impl BufRead, max_body: usize) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        r.by_ref().take(1024).read_until(b'\n', &mut line)?;
        let text = String::from_utf8_lossy(&line);
        let size = text.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| io::Error::other(format!("malformed chunk size {size:?}")))?;
        if size == 0 {
            return Ok(body);
        }
        if body.len() + size > max_body {
            // The caller reports it as too large.
            body.resize(max_body + 1, 0);
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::net::TcpListener;

    #[test]
    fn urls_are_split_into_host_port_and_path() {
        let t = parse_url("http://tracker.example:6969/announce?x=1").unwrap();
        assert_eq!(
            t,
            Target {
                authority: "tracker.example:6969".into(),
                host: "tracker.example".into(),
                port: 6969,
                path: "/announce?x=1".into(),
            }
        );
        let t = parse_url("HTTP://[::1]/a#frag").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 80, "/a")
        );
        let t = parse_url("http://h?info_hash=1").unwrap();
        assert_eq!(t.path, "/?info_hash=1");
        for bad in [
            "https://h/",
            "http://",
            "http://h:port/",
            "http://u@h/",
            "http://[::1/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirects_resolve_to_http_urls_only() {
        assert_eq!(resolve("http://a:1/x", "/y?z").unwrap(), "http://a:1/y?z");
        assert_eq!(resolve("http://a/x", "http://b/y").unwrap(), "http://b/y");
        assert!(resolve("http://a/x", "https://b/y").is_err());
        assert!(resolve("http://a/x", "//b/y").is_err());
    }

    #[test]
    fn heads_and_chunked_bodies() {
        let head = parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nTransfer-Encoding: Chunked\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (head.status, head.length, head.chunked),
            (200, Some(12), true)
        );
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
        let mut r = Cursor::new(b"4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\n".to_vec());
        assert_eq!(read_chunked(&mut r, 100).unwrap(), b"abcdefg");
        let mut r = Cursor::new(b"ffffffff\r\n".to_vec());
        assert_eq!(read_chunked(&mut r, 100).unwrap().len(), 101);
        let mut r = Cursor::new(b"zz\r\n".to_vec());
        assert!(read_chunked(&mut r, 100).is_err());
    }

    /// Serves one connection with `reply` and returns the request head it read.
    fn serve(reply: &'static [u8]) -> (String, std::thread::JoinHandle<(String, IpAddr)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/announce?a=1", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut s, from) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let head = read_head(&mut BufReader::new(&s)).unwrap();
            s.write_all(reply).unwrap();
            (String::from_utf8(head).unwrap(), from.ip())
        });
        (url, server)
    }

    #[test]
    fn a_get_from_a_bound_address() {
        let (url, server) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        let local: IpAddr = [127, 0, 0, 77].into();
        let body = get(&url, Some(local), Duration::from_secs(5), 100).unwrap();
        assert_eq!(body, b"hello");
        let (head, from) = server.join().unwrap();
        assert!(head.starts_with("GET /announce?a=1 HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
        assert_eq!(from, local);
    }

    #[test]
    fn statuses_limits_and_truncation_are_errors() {
        let (url, server) = serve(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            get(&url, None, Duration::from_secs(5), 100),
            Err(GetError::Status(404))
        );
        server.join().unwrap();
        let (url, server) = serve(b"HTTP/1.0 200 OK\r\n\r\n0123456789");
        assert_eq!(
            get(&url, None, Duration::from_secs(5), 5),
            Err(GetError::TooLarge)
        );
        server.join().unwrap();
        let (url, server) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort");
        assert!(matches!(
            get(&url, None, Duration::from_secs(5), 100),
            Err(GetError::Transport(_))
        ));
        server.join().unwrap();
    }

    #[test]
    fn a_silent_server_costs_the_timeout_only() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let started = Instant::now();
        let result = get(&url, None, Duration::from_millis(500), 100);
        assert_eq!(result, Err(GetError::Transport("timed out".into())));
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
    }
}
