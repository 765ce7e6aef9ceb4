//! Finding peers: announce requests and replies, and the tracker thread that re-announces.
//!
//! [`announce`] performs one blocking announce on the calling thread and dispatches on the
//! URL's scheme: HTTP(S) lives in [`http`], UDP (BEP 15) in [`udp`] (its datagrams in
//! [`udp_wire`], shared with the built-in tracker). [`spawn`] starts the
//! thread named `tracker`, which owns the torrent's tiers of trackers (BEP 12: each tier
//! shuffled once, a tracker that answers moved to the front of its tier), the UDP client state
//! (session key, connection ids), the transfer totals last reported by the main thread, the
//! announce schedule and the set of trackers told `started`. It announces, sends
//! [`TrackerEvent`]s to the main thread and obeys [`TrackerCommand`]s until told to stop.

pub mod http;
mod http_get;
mod request;
#[cfg(test)]
mod testutil;
pub mod udp;
pub mod udp_wire;

pub use request::{
    AnnounceEvent, AnnounceRequest, AnnounceResponse, Announcer, SwarmCounts, TrackerError, Until,
};

use std::collections::VecDeque;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

pub use crate::messages::Totals;
use crate::messages::{Event, TrackerCommand, TrackerEvent};
use crate::rng::Rng;

/// Longest one HTTP announce may take, end to end, whatever the deadline (an HTTP request
/// cannot be interrupted, so this also bounds how long a stop waits for one in flight).
pub(crate) const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the farewell `stopped` announces may take, all trackers together; shutdown (and
/// so Ctrl-C) waits for them, so this is short whatever the trackers do.
pub(crate) const STOPPED_TIMEOUT: Duration = Duration::from_secs(1);
/// How often an HTTP announce in flight checks whether the caller wants it interrupted.
const INTERRUPT_POLL: Duration = Duration::from_millis(50);
/// How long the tracker thread gives the last tracker it can try in a round before giving up
/// on the round, unless [`spawn_with_timeout`] says otherwise: the UDP schedule sends at 0,
/// 15 and 45 s within it.
pub(crate) const DEFAULT_GIVE_UP: Duration = Duration::from_secs(60);
/// How long the tracker thread gives a tracker that is not the last option in its round
/// before falling through to the next one, so that a dead tier costs seconds, not minutes.
pub(crate) const FALLBACK_TRY: Duration = Duration::from_secs(4);
/// Shortest wait between regular announces, whatever the tracker asks for; also the least
/// time between announces that [`TrackerCommand::NeedPeers`] waits when the tracker gave no
/// `min interval`.
pub(crate) const MIN_REANNOUNCE: Duration = Duration::from_secs(30);
/// Longest wait between regular announces, whatever the tracker asks for.
pub(crate) const MAX_REANNOUNCE: Duration = Duration::from_secs(30 * 60);
/// Wait before the first retry after every tracker failed; doubles on each further failure.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_secs(5);
/// Longest wait between retries after failures.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// How many peers each announce asks for.
pub(crate) const NUMWANT: u32 = 50;

/// The announce protocols strand speaks.
enum Protocol {
    /// `http://` and `https://` (BEP 3).
    Http,
    /// `udp://` (BEP 15).
    Udp,
}

/// Which protocol announces to `url`, by its scheme (in any case); `None` for any other.
fn protocol(url: &str) -> Option<Protocol> {
    let (scheme, _) = url.split_once("://")?;
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => Some(Protocol::Http),
        "udp" => Some(Protocol::Udp),
        _ => None,
    }
}

/// Whether strand can announce to `url`: an `http://`, `https://` or `udp://` URL (the scheme
/// in any case). [`announce`] refuses every other one.
pub fn speaks(url: &str) -> bool {
    protocol(url).is_some()
}

/// Announces `req` to the tracker at `url`, waiting as long as `until` allows at most.
///
/// `http://` and `https://` URLs go to [`http::announce`] (also capped at
/// [`ANNOUNCE_TIMEOUT`]) on a thread of their own, so that the wait can be cut short;
/// `udp://` URLs to `udp`'s [`udp::Client::announce`], which keeps its connection ids in
/// `udp`. Anything else is [`TrackerError::UnsupportedScheme`].
pub fn announce(
    url: &str,
    req: &AnnounceRequest,
    udp: &mut udp::Client,
    until: Until,
) -> Result<AnnounceResponse, TrackerError> {
    match protocol(url) {
        Some(Protocol::Http) => http_announce(url, req, until),
        Some(Protocol::Udp) => udp.announce(url, req, until),
        None => Err(TrackerError::UnsupportedScheme {
            url: url.to_string(),
        }),
    }
}

/// An HTTP announce on a thread named `tracker-http`, which owns the connection and sends its
/// one result over a channel of one. The caller waits as long as `until` allows, asking
/// whether it is interrupted every [`INTERRUPT_POLL`]; when it gives up first, the thread is
/// left to end at its own timeout (at most [`ANNOUNCE_TIMEOUT`]) and its result is dropped.
fn http_announce(
    url: &str,
    req: &AnnounceRequest,
    mut until: Until,
) -> Result<AnnounceResponse, TrackerError> {
    let timeout = until
        .deadline()
        .saturating_duration_since(Instant::now())
        .min(ANNOUNCE_TIMEOUT);
    let (tx, rx) = crossbeam_channel::bounded(1);
    let (owned_url, owned_req) = (url.to_string(), req.clone());
    let spawned = std::thread::Builder::new()
        .name("tracker-http".into())
        .spawn(move || {
            let _ = tx.send(http::announce(&owned_url, &owned_req, timeout));
        });
    if spawned.is_err() {
        return http::announce(url, req, timeout);
    }
    let end = Instant::now() + timeout;
    loop {
        let wait = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait.min(INTERRUPT_POLL)) {
            Ok(result) => return result,
            Err(RecvTimeoutError::Timeout) if until.interrupted() => {
                return Err(TrackerError::Interrupted {
                    url: url.to_string(),
                })
            }
            Err(RecvTimeoutError::Timeout) if !wait.is_zero() => {}
            // The thread ends at the same timeout; give it a moment to say why.
            Err(RecvTimeoutError::Timeout) => {
                return rx.recv_timeout(INTERRUPT_POLL).unwrap_or_else(|_| {
                    Err(TrackerError::Transport {
                        url: url.to_string(),
                        reason: "timed out".into(),
                    })
                })
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(TrackerError::Transport {
                    url: url.to_string(),
                    reason: "the announce thread ended without a reply".into(),
                })
            }
        }
    }
}

/// What the tracker thread needs to know about the torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Announce URLs grouped in tiers, most preferred first (`announce-list`, or the single
    /// `announce` as one tier of one).
    pub tiers: Vec<Vec<String>>,
    /// Who announces.
    pub announcer: Announcer,
    /// Bytes missing when the session starts.
    pub left: u64,
}

/// Starts the tracker thread (named `tracker`) with the [`DEFAULT_GIVE_UP`] timeout; see
/// [`spawn_with_timeout`].
pub fn spawn(
    config: TrackerConfig,
    events: Sender<Event>,
) -> (Sender<TrackerCommand>, JoinHandle<()>) {
    spawn_with_timeout(config, DEFAULT_GIVE_UP, events)
}

/// Starts the tracker thread (named `tracker`).
///
/// It shuffles each tier once, then announces `started` at once. Each round tries the
/// trackers tier by tier, in order, and stops at the first that answers (BEP 12: the first
/// working tracker overall; later tiers are fallbacks only), which moves to the front of its
/// tier. Every tracker but the last of the round gets [`FALLBACK_TRY`] (or `timeout`, if
/// shorter); the last gets `timeout`, the give-up time (`--tracker-timeout`). Every reply is
/// reported as [`TrackerEvent::Peers`] (plus [`TrackerEvent::Warning`] when the tracker sent
/// one); it re-announces at the tracker's interval, or earlier on
/// [`TrackerCommand::NeedPeers`]. When every tracker failed it reports
/// [`TrackerEvent::Failed`] with each one's error and retries with backoff.
///
/// Send [`TrackerCommand`]s on the returned sender; [`TrackerCommand::Stop`] or dropping the
/// sender makes it announce `stopped` (waiting at most [`STOPPED_TIMEOUT`] per tracker) and
/// return; a UDP announce in flight is interrupted, an HTTP one finishes first (at most
/// [`ANNOUNCE_TIMEOUT`]). It also returns at once when `tiers` holds no URL, and when `events`
/// is closed.
pub(crate) fn spawn_with_timeout(
    config: TrackerConfig,
    timeout: Duration,
    events: Sender<Event>,
) -> (Sender<TrackerCommand>, JoinHandle<()>) {
    let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
    let handle = std::thread::Builder::new()
        .name("tracker".to_string())
        .spawn(move || TrackerThread::new(config, timeout, cmd_rx, events).run())
        .expect("the OS refused to start the tracker thread");
    (cmd_tx, handle)
}

/// Shuffles the trackers within each tier (BEP 12), leaving the tiers' order alone.
fn shuffle_tiers(tiers: &mut [Vec<String>], random: &mut Rng) {
    for tier in tiers {
        random.shuffle(tier);
    }
}

/// Moves the tracker at `tiers[tier][index]` to the front of its tier, keeping the others'
/// order (BEP 12: a tracker that answers is tried first next time).
fn promote(tiers: &mut [Vec<String>], tier: usize, index: usize) {
    if let Some(urls) = tiers.get_mut(tier) {
        if index < urls.len() {
            urls[..=index].rotate_right(1);
        }
    }
}

/// The order a round tries trackers in: `(tier, index)` pairs, tier by tier.
fn try_order(tiers: &[Vec<String>]) -> Vec<(usize, usize)> {
    tiers
        .iter()
        .enumerate()
        .flat_map(|(t, urls)| (0..urls.len()).map(move |i| (t, i)))
        .collect()
}

/// How long one try may take: `give_up` for the round's last option, otherwise
/// [`FALLBACK_TRY`] (capped at `give_up`).
fn try_budget(is_last: bool, give_up: Duration) -> Duration {
    if is_last {
        give_up
    } else {
        FALLBACK_TRY.min(give_up)
    }
}

/// The text of [`TrackerEvent::Failed`]: a header line, then one line per tracker with its
/// error.
fn failure_summary(errors: &[TrackerError]) -> String {
    let mut text = match errors.len() {
        1 => "the tracker failed:".to_string(),
        n => format!("all {n} trackers failed:"),
    };
    for error in errors {
        text.push_str("\n  ");
        text.push_str(&error.to_string());
    }
    text
}

/// The earliest time [`TrackerCommand::NeedPeers`] may trigger an announce: `min_interval`
/// after the last one (capped at [`MAX_REANNOUNCE`]), or [`MIN_REANNOUNCE`] if the tracker
/// gave none.
fn early_announce_at(last: Instant, min_interval: Option<Duration>) -> Instant {
    last + min_interval.unwrap_or(MIN_REANNOUNCE).min(MAX_REANNOUNCE)
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

/// The command channel, plus commands read early while an announce checked for a stop.
struct Inbox {
    commands: Receiver<TrackerCommand>,
    queued: VecDeque<TrackerCommand>,
    closed: bool,
}

impl Inbox {
    /// Moves waiting commands into the queue; true when one is a stop or the sender is gone.
    fn stop_requested(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(command) => self.queued.push_back(command),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.closed = true;
                    break;
                }
            }
        }
        self.closed || self.queued.contains(&TrackerCommand::Stop)
    }

    fn try_recv(&mut self) -> Result<TrackerCommand, TryRecvError> {
        match self.queued.pop_front() {
            Some(command) => Ok(command),
            None if self.closed => Err(TryRecvError::Disconnected),
            None => self.commands.try_recv(),
        }
    }

    fn recv_timeout(&mut self, timeout: Duration) -> Result<TrackerCommand, RecvTimeoutError> {
        match self.queued.pop_front() {
            Some(command) => Ok(command),
            None if self.closed => Err(RecvTimeoutError::Disconnected),
            None => self.commands.recv_timeout(timeout),
        }
    }
}

/// The tracker thread's state.
struct TrackerThread {
    config: TrackerConfig,
    /// The give-up time for the last tracker of a round.
    timeout: Duration,
    inbox: Inbox,
    events: Sender<Event>,
    udp: udp::Client,
    totals: Totals,
    /// Trackers that accepted a `started` announce, in the order they did.
    started: Vec<String>,
    /// A `completed` announce is owed to the current tracker.
    completed_pending: bool,
    backoff: Duration,
    /// When the last round started.
    last_round: Option<Instant>,
    /// The `min interval` of the last reply.
    min_interval: Option<Duration>,
    /// An early announce that [`TrackerCommand::NeedPeers`] asked for, when it is allowed.
    early: Option<Instant>,
}

impl TrackerThread {
    fn new(
        mut config: TrackerConfig,
        timeout: Duration,
        commands: Receiver<TrackerCommand>,
        events: Sender<Event>,
    ) -> Self {
        shuffle_tiers(&mut config.tiers, &mut Rng::from_entropy());
        let totals = Totals {
            left: config.left,
            ..Totals::default()
        };
        TrackerThread {
            config,
            timeout,
            inbox: Inbox {
                commands,
                queued: VecDeque::new(),
                closed: false,
            },
            events,
            udp: udp::Client::new(),
            totals,
            started: Vec::new(),
            completed_pending: false,
            backoff: INITIAL_BACKOFF,
            last_round: None,
            min_interval: None,
            early: None,
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
            TrackerCommand::Progress(totals) => {
                self.totals = totals;
                Next::Wait
            }
            TrackerCommand::Completed => {
                self.totals.left = 0;
                if self.started.is_empty() {
                    // No tracker knows us yet: the pending `started` will carry left = 0.
                    Next::Wait
                } else {
                    self.completed_pending = true;
                    Next::AnnounceNow
                }
            }
            TrackerCommand::NeedPeers => {
                let Some(last) = self.last_round else {
                    return Next::Wait;
                };
                let at = early_announce_at(last, self.min_interval);
                if at <= Instant::now() {
                    Next::AnnounceNow
                } else {
                    self.early = Some(at);
                    Next::Wait
                }
            }
            TrackerCommand::Stop => Next::Stop,
        }
    }

    /// Handles commands until `deadline` (or an earlier allowed `NeedPeers` announce), a
    /// command that needs an announce, or a stop.
    fn wait_until(&mut self, deadline: Instant) -> Next {
        loop {
            let until = self.early.map_or(deadline, |early| early.min(deadline));
            let timeout = until.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(timeout) {
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
            match self.inbox.try_recv() {
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
            announcer: self.config.announcer,
            totals: self.totals,
            event,
            numwant: if event == Some(AnnounceEvent::Stopped) {
                0
            } else {
                NUMWANT
            },
        }
    }

    /// Announces to `url`, giving up at `deadline` or when a stop arrives.
    fn announce_to(
        &mut self,
        url: &str,
        req: &AnnounceRequest,
        deadline: Instant,
    ) -> Result<AnnounceResponse, TrackerError> {
        let TrackerThread { udp, inbox, .. } = self;
        let stop_requested = &mut || inbox.stop_requested();
        announce(url, req, udp, Until::at(deadline).or_when(stop_requested))
    }

    /// Tries the trackers in tier order until one answers, and reports the outcome.
    fn announce_round(&mut self) -> Round {
        self.last_round = Some(Instant::now());
        self.early = None;
        let order = try_order(&self.config.tiers);
        let mut errors = Vec::new();
        for (n, &(tier, index)) in order.iter().enumerate() {
            if self.drain_commands() == Next::Stop {
                return Round::Stop;
            }
            let url = self.config.tiers[tier][index].clone();
            let event = if !self.started.contains(&url) {
                Some(AnnounceEvent::Started)
            } else if self.completed_pending {
                Some(AnnounceEvent::Completed)
            } else {
                None
            };
            let budget = try_budget(n + 1 == order.len(), self.timeout);
            let tried = Instant::now();
            match self.announce_to(&url, &self.request(event), tried + budget) {
                Ok(response) => {
                    log::info!(
                        "tracker {url}: {} peers after {:.1} s",
                        response.peers.len(),
                        tried.elapsed().as_secs_f64()
                    );
                    if event == Some(AnnounceEvent::Started) {
                        self.started.push(url);
                    }
                    promote(&mut self.config.tiers, tier, index);
                    self.completed_pending = false;
                    self.backoff = INITIAL_BACKOFF;
                    self.min_interval = response.min_interval;
                    return self.report(response);
                }
                Err(TrackerError::Interrupted { .. }) => return Round::Stop,
                Err(error) => {
                    // The round's TrackerEvent::Failed carries every tracker's error to the
                    // main thread, which shows it; warning here too would print it twice.
                    log::debug!("{error}");
                    errors.push(error);
                }
            }
        }
        if self.send(TrackerEvent::Failed(failure_summary(&errors))) {
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
        // Before the peers, so that none is dialed in a way it will refuse.
        if !response.requires_crypto.is_empty()
            && !self.send(TrackerEvent::RequiresCrypto(response.requires_crypto))
        {
            return Round::Stop;
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

    /// Tells every tracker that heard `started` that we stop. A `completed` that a stop
    /// overtook (the download ended just before the session did) goes out first, so the
    /// trackers still count the completion.
    fn say_goodbye(&mut self) {
        let completed = self.request(Some(AnnounceEvent::Completed));
        let stopped = self.request(Some(AnnounceEvent::Stopped));
        let mut farewells = Vec::new();
        for url in &self.started {
            if self.completed_pending {
                farewells.push((url.clone(), &completed));
            }
            farewells.push((url.clone(), &stopped));
        }
        let deadline = Instant::now() + STOPPED_TIMEOUT;
        for (url, req) in farewells {
            if Instant::now() >= deadline {
                log::info!("tracker {url}: no time left to say `stopped`");
                continue;
            }
            if let Err(error) = announce(&url, req, &mut self.udp, Until::at(deadline)) {
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
    use std::net::SocketAddr;

    use super::testutil::{Reply, TestServer};
    use super::udp_wire::tests::announcer;
    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    fn config(tiers: Vec<Vec<String>>) -> TrackerConfig {
        TrackerConfig {
            tiers,
            announcer: announcer(),
            left: 1000,
        }
    }

    /// A reply with one compact peer, 10.0.0.1:6881.
    const ONE_PEER: &[u8] = b"d8:intervali1800e5:peers6:\x0a\x00\x00\x01\x1a\xe1e";

    fn request() -> AnnounceRequest {
        AnnounceRequest {
            announcer: announcer(),
            totals: Totals {
                left: 1000,
                ..Totals::default()
            },
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

    /// A tracker giving one peer, and the tracker thread spawned on it once its started
    /// announce and the peer it brings back have been seen.
    fn started_with_peers() -> (
        TestServer,
        Sender<TrackerCommand>,
        JoinHandle<()>,
        Receiver<Event>,
    ) {
        let server = TestServer::start(|_| Reply::Ok(ONE_PEER.to_vec()));
        let (events, events_rx) = crossbeam_channel::unbounded();
        let (cmd, handle) = spawn(config(vec![vec![server.url()]]), events);
        assert!(server.next_request(WAIT).contains("event=started"));
        assert!(matches!(
            expect_tracker_event(&events_rx),
            TrackerEvent::Peers(_)
        ));
        (server, cmd, handle, events_rx)
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

    fn announce_within(url: &str, limit: Duration) -> Result<AnnounceResponse, TrackerError> {
        let deadline = Instant::now() + limit;
        announce(
            url,
            &request(),
            &mut udp::Client::new(),
            Until::at(deadline),
        )
    }

    #[test]
    fn dispatches_on_scheme() {
        let server = crate::tracker_server::start(crate::tracker_server::ServerConfig::new(
            ([127, 0, 0, 1], 0).into(),
        ))
        .unwrap();
        let udp = announce_within(&server.udp_announce_url(), WAIT).unwrap();
        assert_eq!(udp.interval, crate::tracker_server::DEFAULT_INTERVAL);
        assert_eq!(udp.counts.incomplete, Some(1));
        let http = announce_within(&server.announce_url(), WAIT).unwrap();
        assert_eq!(http.counts.incomplete, Some(1));
        let no_port = announce_within("udp://127.0.0.1/announce", WAIT).unwrap_err();
        assert!(matches!(no_port, TrackerError::Transport { .. }));
        let wss = announce_within("wss://tracker.example/announce", WAIT).unwrap_err();
        assert!(matches!(wss, TrackerError::UnsupportedScheme { .. }));
        let bare = announce_within("tracker.example/announce", WAIT).unwrap_err();
        assert!(matches!(bare, TrackerError::UnsupportedScheme { .. }));
        server.stop();
    }

    #[test]
    fn shuffle_keeps_tiers_and_their_members() {
        let original: Vec<Vec<String>> = vec![
            (0..5).map(|i| format!("a{i}")).collect(),
            vec!["b0".to_string()],
            (0..4).map(|i| format!("c{i}")).collect(),
        ];
        let mut random = Rng::from_entropy();
        let mut orders = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut tiers = original.clone();
            shuffle_tiers(&mut tiers, &mut random);
            assert_eq!(tiers.len(), 3);
            for (shuffled, tier) in tiers.iter().zip(&original) {
                let mut sorted = shuffled.clone();
                sorted.sort();
                assert_eq!(&sorted, tier, "a tier lost or gained a tracker");
            }
            orders.insert(tiers[0].clone());
        }
        assert!(orders.len() > 5, "the shuffle hardly varies: {orders:?}");
    }

    #[test]
    fn promote_moves_to_the_front_of_its_tier_only() {
        let mut tiers = vec![
            vec!["a".to_string(), "b".to_string(), "c".to_string()],
            vec!["d".to_string(), "e".to_string()],
        ];
        promote(&mut tiers, 0, 2);
        assert_eq!(tiers[0], ["c", "a", "b"]);
        promote(&mut tiers, 1, 1);
        assert_eq!(tiers[1], ["e", "d"]);
        assert_eq!(tiers[0], ["c", "a", "b"]);
        promote(&mut tiers, 0, 0);
        promote(&mut tiers, 5, 0);
        promote(&mut tiers, 1, 9);
        assert_eq!(tiers, [vec!["c", "a", "b"], vec!["e", "d"]]);
    }

    #[test]
    fn fallback_order_is_tier_by_tier_and_only_the_last_gets_the_full_budget() {
        let tiers = vec![
            vec!["a".to_string(), "b".to_string()],
            vec![],
            vec!["c".to_string()],
        ];
        assert_eq!(try_order(&tiers), [(0, 0), (0, 1), (2, 0)]);
        let give_up = Duration::from_secs(60);
        assert_eq!(try_budget(false, give_up), FALLBACK_TRY);
        assert_eq!(try_budget(true, give_up), give_up);
        let short = Duration::from_secs(1);
        assert_eq!(try_budget(false, short), short);
    }

    #[test]
    fn failure_summary_has_a_line_per_tracker() {
        let errors = [
            TrackerError::Transport {
                url: "udp://a:1".into(),
                reason: "no reply".into(),
            },
            TrackerError::Failure {
                url: "http://b/announce".into(),
                reason: "unregistered\ntorrent".into(),
            },
        ];
        let text = failure_summary(&errors);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "all 2 trackers failed:");
        assert!(lines[1].contains("udp://a:1") && lines[1].contains("no reply"));
        assert!(
            lines[2].contains("http://b/announce") && lines[2].contains("unregistered torrent")
        );
        assert_eq!(failure_summary(&errors[..1]).lines().count(), 2);
    }

    #[test]
    fn early_announce_waits_for_min_interval_or_30_s() {
        let last = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(early_announce_at(last, None), last + MIN_REANNOUNCE);
        assert_eq!(early_announce_at(last, Some(s(5))), last + s(5));
        assert_eq!(
            early_announce_at(last, Some(s(86_400))),
            last + MAX_REANNOUNCE
        );
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
        let mut thread = TrackerThread::new(config(vec![]), DEFAULT_GIVE_UP, rx, events);
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

        let progress = TrackerCommand::Progress(Totals {
            uploaded: 7,
            downloaded: 1000,
            left: 0,
        });
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
        let (server, cmd, handle, _events_rx) = started_with_peers();
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
                assert!(text.starts_with("all 2 trackers failed:\n"), "{text}");
                assert_eq!(text.lines().count(), 3, "{text}");
                assert!(text.contains("not here"), "{text}");
                assert!(text.contains("udp://127.0.0.1:1/announce"), "{text}");
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

    #[test]
    fn need_peers_respects_min_interval() {
        // min interval 1 s: an early announce is allowed one second after the last.
        let server = TestServer::start(|_| {
            Reply::Ok(b"d8:intervali1800e12:min intervali1e5:peers0:e".to_vec())
        });
        let (events, events_rx) = crossbeam_channel::unbounded();
        let (cmd, handle) = spawn(config(vec![vec![server.url()]]), events);
        assert!(server.next_request(WAIT).contains("event=started"));
        let first = Instant::now();
        assert!(matches!(
            expect_tracker_event(&events_rx),
            TrackerEvent::Peers(_)
        ));
        assert!(cmd.send(TrackerCommand::NeedPeers).is_ok());
        let second = server.next_request(WAIT);
        let gap = first.elapsed();
        assert!(!second.contains("event="), "{second}");
        assert!(gap >= Duration::from_millis(900), "announced after {gap:?}");
        assert!(gap < Duration::from_secs(5), "announced after {gap:?}");
        // Right after that one, another NeedPeers waits again.
        assert!(matches!(
            expect_tracker_event(&events_rx),
            TrackerEvent::Peers(_)
        ));
        let asked = Instant::now();
        assert!(cmd.send(TrackerCommand::NeedPeers).is_ok());
        assert!(server.next_request(WAIT).contains("numwant"));
        assert!(asked.elapsed() >= Duration::from_millis(800));
        assert!(cmd.send(TrackerCommand::Stop).is_ok());
        assert!(server.next_request(WAIT).contains("event=stopped"));
        join_within(handle, WAIT);
    }

    #[test]
    fn need_peers_without_min_interval_waits_30_s() {
        let (server, cmd, handle, _events_rx) = started_with_peers();
        assert!(cmd.send(TrackerCommand::NeedPeers).is_ok());
        std::thread::sleep(Duration::from_millis(1500));
        assert!(server.try_next_request().is_none(), "announced before 30 s");
        assert!(cmd.send(TrackerCommand::Stop).is_ok());
        assert!(server.next_request(WAIT).contains("event=stopped"));
        join_within(handle, WAIT);
    }

    #[test]
    fn dead_first_tier_falls_back_within_seconds() {
        // A silent UDP tracker (blackholed: the worst case) and a refused HTTP port.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dead_udp = format!("udp://{}/announce", silent.local_addr().unwrap());
        let dead_http = testutil::closed_port_url();
        let server = TestServer::start(|_| Reply::Ok(ONE_PEER.to_vec()));
        let (events, events_rx) = crossbeam_channel::unbounded();
        let started = Instant::now();
        let tiers = vec![vec![dead_udp, dead_http], vec![server.url()]];
        let (cmd, handle) = spawn(config(tiers), events);
        match events_rx.recv_timeout(Duration::from_secs(15)) {
            Ok(Event::Tracker(TrackerEvent::Peers(peers))) => assert_eq!(peers.len(), 1),
            other => panic!("expected peers, got {other:?}"),
        }
        let elapsed = started.elapsed();
        println!("fallback [[silent udp, refused http], [http]]: first peers after {elapsed:?}");
        assert!(elapsed <= Duration::from_secs(15), "{elapsed:?}");
        assert!(
            elapsed >= FALLBACK_TRY - Duration::from_millis(200),
            "{elapsed:?}"
        );
        assert!(server.next_request(WAIT).contains("event=started"));
        drop(cmd);
        join_within(handle, WAIT);
    }

    #[test]
    fn udp_tracker_thread_lifecycle_against_the_embedded_tracker() {
        let server = crate::tracker_server::start(crate::tracker_server::ServerConfig::new(
            ([127, 0, 0, 1], 0).into(),
        ))
        .unwrap();
        let other = AnnounceRequest {
            announcer: Announcer {
                peer_id: *b"-XX0001-000000000000",
                port: 7001,
                ..announcer()
            },
            ..request()
        };
        let deadline = Instant::now() + WAIT;
        let url = server.udp_announce_url();
        let mut client = udp::Client::new();
        client.announce(&url, &other, Until::at(deadline)).unwrap();
        let (events, events_rx) = crossbeam_channel::unbounded();
        let started = Instant::now();
        let (cmd, handle) = spawn(config(vec![vec![url.clone()]]), events);
        match expect_tracker_event(&events_rx) {
            TrackerEvent::Peers(peers) => {
                assert_eq!(peers, vec![SocketAddr::from(([127, 0, 0, 1], 7001))])
            }
            other => panic!("expected peers, got {other:?}"),
        }
        println!(
            "udp announce to the embedded tracker: {:?}",
            started.elapsed()
        );
        assert!(cmd.send(TrackerCommand::Stop).is_ok());
        join_within(handle, WAIT);
        // `stopped` removed us: the other peer now sees nobody.
        let reply = client.announce(&url, &other, Until::at(deadline)).unwrap();
        assert!(reply.peers.is_empty(), "{:?}", reply.peers);
        assert_eq!(reply.counts.incomplete, Some(1));
        server.stop();
    }
}
