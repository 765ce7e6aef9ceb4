//! Finding peers: announce requests and replies, and the tracker thread that re-announces.
//!
//! [`announce`] performs one blocking announce on the calling thread and dispatches on the
//! URL's scheme (HTTP(S) lives in [`http`]; UDP is not supported yet). [`spawn`] starts the
//! thread named `tracker`, which owns the torrent's tracker list, the transfer totals last
//! reported by the main thread and the set of trackers told `started`. It announces, sends
//! [`TrackerEvent`]s to the main thread and obeys [`TrackerCommand`]s until told to stop.

pub mod http;
pub mod server;
#[cfg(test)]
mod testutil;

use std::fmt;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use crate::messages::{Event, TrackerCommand, TrackerEvent};

/// How long one regular announce may take, end to end.
pub const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the farewell `stopped` announce may take; shutdown waits for it.
pub const STOPPED_TIMEOUT: Duration = Duration::from_secs(3);
/// Shortest wait between regular announces, whatever the tracker asks for.
pub const MIN_REANNOUNCE: Duration = Duration::from_secs(30);
/// Longest wait between regular announces, whatever the tracker asks for.
pub const MAX_REANNOUNCE: Duration = Duration::from_secs(30 * 60);
/// Wait before the first retry after every tracker failed; doubles on each further failure.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(5);
/// Longest wait between retries after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// How many peers each announce asks for.
pub const NUMWANT: u32 = 50;

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

/// Everything an announce tells the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// SHA-1 of the torrent's info dictionary.
    pub info_hash: [u8; 20],
    /// Our peer id.
    pub peer_id: [u8; 20],
    /// The TCP port we accept peers on.
    pub port: u16,
    /// Payload bytes sent to peers so far.
    pub uploaded: u64,
    /// Payload bytes received and verified so far.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
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
    /// A message for the user (`warning message`).
    pub warning: Option<String>,
    /// Number of seeders, if the tracker said.
    pub complete: Option<u64>,
    /// Number of leechers, if the tracker said.
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
    /// A `udp://` tracker; support comes later.
    UdpUnsupported {
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
    /// The tracker refused the announce (`failure reason`).
    Failure {
        /// The announce URL.
        url: String,
        /// The tracker's text.
        reason: String,
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
            TrackerError::UdpUnsupported { url } => {
                (url, "UDP trackers are not supported yet".to_string())
            }
            TrackerError::Transport { url, reason } => (url, reason.clone()),
            TrackerError::Status { url, status } => (url, format!("HTTP status {status}")),
            TrackerError::TooLarge { url, limit } => {
                (url, format!("reply larger than {limit} bytes"))
            }
            TrackerError::Malformed { url, reason } => (url, format!("malformed reply: {reason}")),
            TrackerError::Failure { url, reason } => (url, format!("tracker refused: {reason}")),
        };
        write!(f, "tracker ")?;
        write_one_line(f, url)?;
        write!(f, ": ")?;
        write_one_line(f, &detail)
    }
}

impl std::error::Error for TrackerError {}

/// Announces `req` to the tracker at `url`, blocking for at most about `timeout`.
///
/// `http://` and `https://` URLs are supported; `udp://` and anything else are errors.
pub fn announce(
    url: &str,
    req: &AnnounceRequest,
    timeout: Duration,
) -> Result<AnnounceResponse, TrackerError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http") | Some("https") => http::announce(url, req, timeout),
        Some("udp") => Err(TrackerError::UdpUnsupported {
            url: url.to_string(),
        }),
        _ => Err(TrackerError::UnsupportedScheme {
            url: url.to_string(),
        }),
    }
}

/// What the tracker thread needs to know about the torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Announce URLs grouped in tiers, most preferred first (`announce-list`, or the single
    /// `announce` as one tier of one).
    pub tiers: Vec<Vec<String>>,
    /// SHA-1 of the torrent's info dictionary.
    pub info_hash: [u8; 20],
    /// Our peer id.
    pub peer_id: [u8; 20],
    /// The TCP port we accept peers on.
    pub port: u16,
    /// Bytes missing when the session starts.
    pub left: u64,
}

/// Starts the tracker thread (named `tracker`).
///
/// It announces `started` at once, reports every reply as [`TrackerEvent::Peers`] (plus
/// [`TrackerEvent::Warning`] when the tracker sent one), re-announces at the tracker's interval
/// and reports [`TrackerEvent::Failed`] when every tracker failed, retrying with backoff.
/// Send [`TrackerCommand`]s on the returned sender; [`TrackerCommand::Stop`] or dropping the
/// sender makes it announce `stopped` (waiting at most [`STOPPED_TIMEOUT`] per tracker) and
/// return; an announce already in flight finishes first (at most [`ANNOUNCE_TIMEOUT`]). It
/// also returns at once when `tiers` holds no URL, and when `events` is closed.
pub fn spawn(
    config: TrackerConfig,
    events: Sender<Event>,
) -> (Sender<TrackerCommand>, JoinHandle<()>) {
    let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
    let handle = std::thread::Builder::new()
        .name("tracker".to_string())
        .spawn(move || TrackerThread::new(config, cmd_rx, events).run())
        .expect("the OS refused to start the tracker thread");
    (cmd_tx, handle)
}

/// What the thread should do after handling a command from the main thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Keep waiting for the current deadline.
    Wait,
    /// Announce now.
    AnnounceNow,
    /// Say goodbye and return.
    Stop,
}

/// How one round of announces ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// A tracker answered; re-announce after this long.
    Answered(Duration),
    /// Every tracker failed (already reported); retry after the backoff.
    AllFailed,
    /// The main thread asked us to stop or has gone away.
    Stop,
}

/// The tracker thread's state.
struct TrackerThread {
    config: TrackerConfig,
    commands: Receiver<TrackerCommand>,
    events: Sender<Event>,
    uploaded: u64,
    downloaded: u64,
    left: u64,
    /// Trackers that accepted a `started` announce, in the order they did.
    started: Vec<String>,
    /// A `completed` announce is owed to the current tracker.
    completed_pending: bool,
    backoff: Duration,
}

impl TrackerThread {
    fn new(
        config: TrackerConfig,
        commands: Receiver<TrackerCommand>,
        events: Sender<Event>,
    ) -> Self {
        let left = config.left;
        TrackerThread {
            config,
            commands,
            events,
            uploaded: 0,
            downloaded: 0,
            left,
            started: Vec::new(),
            completed_pending: false,
            backoff: INITIAL_BACKOFF,
        }
    }

    fn run(mut self) {
        if self.config.tiers.iter().all(|tier| tier.is_empty()) {
            return;
        }
        loop {
            let deadline = match self.announce_round() {
                Round::Answered(wait) => Instant::now() + wait,
                Round::AllFailed => Instant::now() + self.next_backoff(),
                Round::Stop => break,
            };
            if self.wait_until(deadline) == Next::Stop {
                break;
            }
        }
        self.say_goodbye();
    }

    /// Applies one command from the main thread.
    fn apply(&mut self, command: TrackerCommand) -> Next {
        match command {
            TrackerCommand::Progress {
                uploaded,
                downloaded,
                left,
            } => {
                self.uploaded = uploaded;
                self.downloaded = downloaded;
                self.left = left;
                Next::Wait
            }
            TrackerCommand::Completed => {
                self.left = 0;
                if self.started.is_empty() {
                    // No tracker knows us yet: the pending `started` will carry left = 0.
                    Next::Wait
                } else {
                    self.completed_pending = true;
                    Next::AnnounceNow
                }
            }
            TrackerCommand::Stop => Next::Stop,
        }
    }

    /// Handles commands until `deadline`, a command that needs an announce, or a stop.
    fn wait_until(&mut self, deadline: Instant) -> Next {
        loop {
            let timeout = deadline.saturating_duration_since(Instant::now());
            match self.commands.recv_timeout(timeout) {
                Ok(command) => match self.apply(command) {
                    Next::Wait => continue,
                    next => return next,
                },
                Err(RecvTimeoutError::Timeout) => return Next::AnnounceNow,
                Err(RecvTimeoutError::Disconnected) => return Next::Stop,
            }
        }
    }

    /// Applies the commands already queued; reports a stop.
    fn drain_commands(&mut self) -> Next {
        loop {
            match self.commands.try_recv() {
                Ok(command) => {
                    if self.apply(command) == Next::Stop {
                        return Next::Stop;
                    }
                }
                Err(TryRecvError::Empty) => return Next::Wait,
                Err(TryRecvError::Disconnected) => return Next::Stop,
            }
        }
    }

    fn request(&self, event: Option<AnnounceEvent>) -> AnnounceRequest {
        AnnounceRequest {
            info_hash: self.config.info_hash,
            peer_id: self.config.peer_id,
            port: self.config.port,
            uploaded: self.uploaded,
            downloaded: self.downloaded,
            left: self.left,
            event,
            numwant: if event == Some(AnnounceEvent::Stopped) {
                0
            } else {
                NUMWANT
            },
        }
    }

    /// Tries the trackers in tier order until one answers, and reports the outcome.
    fn announce_round(&mut self) -> Round {
        let urls: Vec<String> = self.config.tiers.iter().flatten().cloned().collect();
        let mut last_error = None;
        for url in &urls {
            if self.drain_commands() == Next::Stop {
                return Round::Stop;
            }
            let event = if !self.started.contains(url) {
                Some(AnnounceEvent::Started)
            } else if self.completed_pending {
                Some(AnnounceEvent::Completed)
            } else {
                None
            };
            match announce(url, &self.request(event), ANNOUNCE_TIMEOUT) {
                Ok(response) => {
                    if event == Some(AnnounceEvent::Started) {
                        self.started.push(url.clone());
                    }
                    self.completed_pending = false;
                    self.backoff = INITIAL_BACKOFF;
                    return self.report(response);
                }
                Err(error) => {
                    log::warn!("{error}");
                    last_error = Some(error);
                }
            }
        }
        let summary = match (&last_error, urls.len()) {
            (Some(error), 1) => error.to_string(),
            (Some(error), n) => format!("all {n} trackers failed; last: {error}"),
            (None, _) => "no tracker answered".to_string(),
        };
        if self.send(TrackerEvent::Failed(summary)) {
            Round::AllFailed
        } else {
            Round::Stop
        }
    }

    /// Sends a reply's news to the main thread and returns the wait before the next announce.
    fn report(&self, response: AnnounceResponse) -> Round {
        if let Some(warning) = response.warning {
            if !self.send(TrackerEvent::Warning(warning)) {
                return Round::Stop;
            }
        }
        if !self.send(TrackerEvent::Peers(response.peers)) {
            return Round::Stop;
        }
        Round::Answered(reannounce_wait(response.interval, response.min_interval))
    }

    /// Sends `event` to the main thread; false when it has gone away.
    fn send(&self, event: TrackerEvent) -> bool {
        self.events.send(Event::Tracker(event)).is_ok()
    }

    /// The current backoff; doubles the next one, up to [`MAX_BACKOFF`].
    fn next_backoff(&mut self) -> Duration {
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        wait
    }

    /// Announces `stopped` to every tracker that was told `started`.
    /// Tells every tracker that heard `started` that we stop. A `completed` that a stop
    /// overtook (the download ended just before the session did) goes out first, so the
    /// trackers still count the completion.
    fn say_goodbye(&self) {
        let completed = self.request(Some(AnnounceEvent::Completed));
        let stopped = self.request(Some(AnnounceEvent::Stopped));
        for url in &self.started {
            if self.completed_pending {
                if let Err(error) = announce(url, &completed, STOPPED_TIMEOUT) {
                    log::info!("{error}");
                }
            }
            if let Err(error) = announce(url, &stopped, STOPPED_TIMEOUT) {
                log::info!("{error}");
            }
        }
    }
}

/// The wait before the next regular announce: `interval` clamped to
/// [[`MIN_REANNOUNCE`], [`MAX_REANNOUNCE`]], raised to `min_interval` (itself capped at
/// [`MAX_REANNOUNCE`]).
fn reannounce_wait(interval: Duration, min_interval: Option<Duration>) -> Duration {
    let wait = interval.clamp(MIN_REANNOUNCE, MAX_REANNOUNCE);
    match min_interval {
        Some(min) => wait.max(min.min(MAX_REANNOUNCE)),
        None => wait,
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{Reply, TestServer};
    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    fn config(tiers: Vec<Vec<String>>) -> TrackerConfig {
        TrackerConfig {
            tiers,
            info_hash: [0xAB; 20],
            peer_id: *b"-ST0001-abcdefghijkl",
            port: 6881,
            left: 1000,
        }
    }

    /// A reply with one compact peer, 10.0.0.1:6881.
    const ONE_PEER: &[u8] = b"d8:intervali1800e5:peers6:\x0a\x00\x00\x01\x1a\xe1e";

    fn request() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: [0xAB; 20],
            peer_id: *b"-ST0001-abcdefghijkl",
            port: 6881,
            uploaded: 0,
            downloaded: 0,
            left: 1000,
            event: None,
            numwant: NUMWANT,
        }
    }

    fn expect_tracker_event(events: &Receiver<Event>) -> TrackerEvent {
        match events.recv_timeout(WAIT) {
            Ok(Event::Tracker(event)) => event,
            other => panic!("expected a tracker event, got {other:?}"),
        }
    }

    fn join_within(handle: JoinHandle<()>, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !handle.is_finished() {
            assert!(
                Instant::now() < deadline,
                "tracker thread did not end within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(handle.join().is_ok(), "tracker thread panicked");
    }

    #[test]
    fn dispatches_on_scheme() {
        let req = request();
        let udp = announce("udp://tracker.example:1337/announce", &req, WAIT).unwrap_err();
        assert!(matches!(udp, TrackerError::UdpUnsupported { .. }));
        assert!(udp
            .to_string()
            .contains("UDP trackers are not supported yet"));
        assert!(udp
            .to_string()
            .contains("udp://tracker.example:1337/announce"));
        let wss = announce("wss://tracker.example/announce", &req, WAIT).unwrap_err();
        assert!(matches!(wss, TrackerError::UnsupportedScheme { .. }));
        let bare = announce("tracker.example/announce", &req, WAIT).unwrap_err();
        assert!(matches!(bare, TrackerError::UnsupportedScheme { .. }));
    }

    #[test]
    fn error_display_is_one_line_naming_the_url() {
        let error = TrackerError::Failure {
            url: "http://t.example/a".to_string(),
            reason: "bad\ntorrent\r\n".to_string(),
        };
        let text = error.to_string();
        assert!(!text.contains('\n') && !text.contains('\r'), "{text:?}");
        assert!(text.contains("http://t.example/a"));
        assert!(text.contains("bad torrent"));
    }

    #[test]
    fn reannounce_wait_is_clamped_and_respects_min_interval() {
        let s = Duration::from_secs;
        assert_eq!(reannounce_wait(s(1), None), MIN_REANNOUNCE);
        assert_eq!(reannounce_wait(s(86_400), None), MAX_REANNOUNCE);
        assert_eq!(reannounce_wait(s(600), None), s(600));
        assert_eq!(reannounce_wait(s(600), Some(s(900))), s(900));
        assert_eq!(reannounce_wait(s(600), Some(s(60))), s(600));
        assert_eq!(reannounce_wait(s(600), Some(s(86_400))), MAX_REANNOUNCE);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (_tx, rx) = crossbeam_channel::unbounded();
        let (events, _events_rx) = crossbeam_channel::unbounded();
        let mut thread = TrackerThread::new(config(vec![]), rx, events);
        let waits: Vec<Duration> = (0..10).map(|_| thread.next_backoff()).collect();
        assert_eq!(waits[0], INITIAL_BACKOFF);
        assert_eq!(waits[1], INITIAL_BACKOFF * 2);
        assert_eq!(waits[9], MAX_BACKOFF);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn no_trackers_returns_at_once() {
        let (events, events_rx) = crossbeam_channel::unbounded();
        let (_cmd, handle) = spawn(config(vec![vec![]]), events);
        join_within(handle, Duration::from_secs(2));
        assert!(events_rx.try_recv().is_err(), "no event expected");
    }

    #[test]
    fn started_completed_stopped_lifecycle() {
        let server = TestServer::start(|_| Reply::Ok(ONE_PEER.to_vec()));
        let (events, events_rx) = crossbeam_channel::unbounded();
        let (cmd, handle) = spawn(config(vec![vec![server.url()]]), events);

        let first = server.next_request(WAIT);
        assert!(first.contains("event=started"), "{first}");
        assert!(first.contains("left=1000"), "{first}");
        match expect_tracker_event(&events_rx) {
            TrackerEvent::Peers(peers) => {
                assert_eq!(peers, vec!["10.0.0.1:6881".parse().unwrap()])
            }
            other => panic!("expected peers, got {other:?}"),
        }

        let progress = TrackerCommand::Progress {
            uploaded: 7,
            downloaded: 1000,
            left: 0,
        };
        assert!(cmd.send(progress).is_ok());
        assert!(cmd.send(TrackerCommand::Completed).is_ok());
        let second = server.next_request(WAIT);
        assert!(second.contains("event=completed"), "{second}");
        assert!(second.contains("uploaded=7"), "{second}");
        assert!(second.contains("downloaded=1000"), "{second}");
        assert!(second.contains("left=0"), "{second}");
        assert!(matches!(
            expect_tracker_event(&events_rx),
            TrackerEvent::Peers(_)
        ));

        assert!(cmd.send(TrackerCommand::Stop).is_ok());
        let third = server.next_request(WAIT);
        assert!(third.contains("event=stopped"), "{third}");
        join_within(handle, WAIT);
    }

    #[test]
    fn completed_overtaken_by_stop_is_still_announced() {
        let server = TestServer::start(|_| Reply::Ok(ONE_PEER.to_vec()));
        let (events, events_rx) = crossbeam_channel::unbounded();
        let (cmd, handle) = spawn(config(vec![vec![server.url()]]), events);
        assert!(server.next_request(WAIT).contains("event=started"));
        assert!(matches!(
            expect_tracker_event(&events_rx),
            TrackerEvent::Peers(_)
        ));
        // The session completes and shuts down at once: both commands are queued together.
        assert!(cmd.send(TrackerCommand::Completed).is_ok());
        assert!(cmd.send(TrackerCommand::Stop).is_ok());
        let second = server.next_request(WAIT);
        assert!(second.contains("event=completed"), "{second}");
        let third = server.next_request(WAIT);
        assert!(third.contains("event=stopped"), "{third}");
        join_within(handle, WAIT);
    }

    #[test]
    fn falls_through_to_the_next_tracker_and_warns() {
        let dead = testutil::closed_port_url();
        let server = TestServer::start(|_| {
            Reply::Ok(b"d8:intervali1800e5:peers0:15:warning message4:slowe".to_vec())
        });
        let (events, events_rx) = crossbeam_channel::unbounded();
        let (cmd, handle) = spawn(config(vec![vec![dead], vec![server.url()]]), events);
        assert!(server.next_request(WAIT).contains("event=started"));
        match expect_tracker_event(&events_rx) {
            TrackerEvent::Warning(text) => assert_eq!(text, "slow"),
            other => panic!("expected a warning, got {other:?}"),
        }
        match expect_tracker_event(&events_rx) {
            TrackerEvent::Peers(peers) => assert!(peers.is_empty()),
            other => panic!("expected peers, got {other:?}"),
        }
        drop(cmd);
        assert!(server.next_request(WAIT).contains("event=stopped"));
        join_within(handle, WAIT);
    }

    #[test]
    fn reports_failure_when_every_tracker_fails() {
        let server = TestServer::start(|_| Reply::Ok(b"d14:failure reason8:not heree".to_vec()));
        let tiers = vec![vec!["udp://127.0.0.1:1/announce".to_string(), server.url()]];
        let (events, events_rx) = crossbeam_channel::unbounded();
        let (cmd, handle) = spawn(config(tiers), events);
        match expect_tracker_event(&events_rx) {
            TrackerEvent::Failed(text) => {
                assert!(text.contains("all 2 trackers failed"), "{text}");
                assert!(text.contains("not here"), "{text}");
                assert!(!text.contains('\n'));
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        assert!(cmd.send(TrackerCommand::Stop).is_ok());
        join_within(handle, WAIT);
        // Nobody accepted `started`, so nobody is told `stopped`.
        assert!(server.next_request(WAIT).contains("event=started"));
        assert!(server.try_next_request().is_none());
    }

    #[test]
    fn returns_when_the_events_channel_is_closed() {
        let server = TestServer::start(|_| Reply::Ok(ONE_PEER.to_vec()));
        let (events, events_rx) = crossbeam_channel::unbounded();
        drop(events_rx);
        let (_cmd, handle) = spawn(config(vec![vec![server.url()]]), events);
        assert!(server.next_request(WAIT).contains("event=started"));
        join_within(handle, WAIT);
    }
}
