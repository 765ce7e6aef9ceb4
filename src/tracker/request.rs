//! What an announce says and what comes back: the request, the reply, the errors, and
//! [`Until`], how long an exchange may wait. Plain data, used on whichever thread announces
//! (the `tracker` thread, the metadata phase, `strand dht`'s callers); owns nothing.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::messages::Totals;
use crate::peer::mse::Encryption;

/// The `event` parameter of an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceEvent {
    /// First announce to this tracker.
    Started,
    /// The download just finished.
    Completed,
    /// We are leaving the swarm.
    Stopped,
}

impl AnnounceEvent {
    /// The parameter's value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnounceEvent::Started => "started",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Stopped => "stopped",
        }
    }
}

/// Who announces: what every announce of one session says the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcer {
    /// SHA-1 of the torrent's info dictionary.
    pub info_hash: [u8; 20],
    /// Our peer id.
    pub peer_id: [u8; 20],
    /// The TCP port we accept peers on.
    pub port: u16,
    /// The address announces are sent from (`--bind`; see [`crate::net::local_ip`]); `None`
    /// lets the system choose. Not a field of the announce: the tracker sees it.
    pub local: Option<IpAddr>,
    /// `--encryption`: `prefer` adds `supportcrypto=1` to HTTP announces, `require` also
    /// `requirecrypto=1`.
    pub encryption: Encryption,
}

/// Everything an announce tells the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// Who announces.
    pub announcer: Announcer,
    /// What we sent, received and still miss.
    pub totals: Totals,
    /// The event, or `None` for a regular re-announce.
    pub event: Option<AnnounceEvent>,
    /// How many peers we would like.
    pub numwant: u32,
}

/// A tracker's successful reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// How long the tracker wants us to wait before the next regular announce.
    pub interval: Duration,
    /// The shortest wait the tracker tolerates, if it said.
    pub min_interval: Option<Duration>,
    /// Peers to try, IPv4 and IPv6, without duplicates removed and without port 0.
    pub peers: Vec<SocketAddr>,
    /// Those of `peers` the tracker says require encryption (`crypto_flags`).
    pub requires_crypto: Vec<SocketAddr>,
    /// A message for the user (`warning message`).
    pub warning: Option<String>,
    /// The swarm's size, as far as the tracker said.
    pub counts: SwarmCounts,
}

/// How many peers a tracker counts in a swarm; each `None` if it did not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmCounts {
    /// Seeders (`complete`).
    pub complete: Option<u64>,
    /// Leechers (`incomplete`).
    pub incomplete: Option<u64>,
}

/// Why an announce failed. Every variant names the tracker's announce URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerError {
    /// The URL's scheme is not one strand speaks.
    UnsupportedScheme {
        /// The announce URL.
        url: String,
    },
    /// The request did not complete: bad URL, DNS, connect, TLS, timeout or I/O error.
    Transport {
        /// The announce URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The tracker answered with a non-2xx HTTP status.
    Status {
        /// The announce URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The reply body exceeded the size cap.
    TooLarge {
        /// The announce URL.
        url: String,
        /// The cap, in bytes.
        limit: usize,
    },
    /// The reply was not a valid announce response.
    Malformed {
        /// The announce URL.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The tracker refused the announce (HTTP `failure reason`, UDP error reply).
    Failure {
        /// The announce URL.
        url: String,
        /// The tracker's text.
        reason: String,
    },
    /// The caller asked the announce to stop waiting (the session is stopping).
    Interrupted {
        /// The announce URL.
        url: String,
    },
}

/// Writes `text` with control characters (newlines included) replaced by spaces.
fn write_one_line(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        write!(f, "{c}")?;
    }
    Ok(())
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (url, detail) = match self {
            TrackerError::UnsupportedScheme { url } => (url, "unsupported URL scheme".to_string()),
            TrackerError::Transport { url, reason } => (url, reason.clone()),
            TrackerError::Status { url, status } => (url, format!("HTTP status {status}")),
            TrackerError::TooLarge { url, limit } => {
                (url, format!("reply larger than {limit} bytes"))
            }
            TrackerError::Malformed { url, reason } => (url, format!("malformed reply: {reason}")),
            TrackerError::Failure { url, reason } => (url, format!("tracker refused: {reason}")),
            TrackerError::Interrupted { url } => (url, "announce interrupted".to_string()),
        };
        write!(f, "tracker ")?;
        write_one_line(f, url)?;
        write!(f, ": ")?;
        write_one_line(f, &detail)
    }
}

impl std::error::Error for TrackerError {}

/// How long an exchange with a tracker may wait: until a deadline at the latest, and, when
/// the caller gave one, until its `interrupted` says true (asked every 100 ms at most while
/// waiting; the exchange then ends with [`TrackerError::Interrupted`]).
pub struct Until<'a> {
    deadline: Instant,
    interrupted: Option<&'a mut dyn FnMut() -> bool>,
}

impl<'a> Until<'a> {
    /// Until `deadline`, uninterrupted.
    pub fn at(deadline: Instant) -> Until<'a> {
        Until {
            deadline,
            interrupted: None,
        }
    }

    /// The same wait, also ended when `interrupted` says true.
    pub fn or_when(self, interrupted: &'a mut dyn FnMut() -> bool) -> Until<'a> {
        Until {
            interrupted: Some(interrupted),
            ..self
        }
    }

    /// The latest time to give up.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the caller wants the wait to end now.
    pub(crate) fn interrupted(&mut self) -> bool {
        self.interrupted
            .as_mut()
            .is_some_and(|interrupted| interrupted())
    }

    /// The same wait, ending at `deadline` if that comes first.
    pub(crate) fn sooner(&mut self, deadline: Instant) -> Until<'_> {
        let interrupted: Option<&mut dyn FnMut() -> bool> = match &mut self.interrupted {
            Some(interrupted) => Some(&mut **interrupted),
            None => None,
        };
        Until {
            deadline: deadline.min(self.deadline),
            interrupted,
        }
    }
}
