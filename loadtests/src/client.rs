//! One simulated viewer: a WebSocket from its source address, a join of its video's topic,
//! heartbeats, and, for posters, comments on a fixed schedule. It measures what it sees into the
//! shared `Recorder`, tracks its topic's `seq` for loss, and reconnects like the `phoenix`
//! client (same backoff, rejoining with `since_seq`).
//!
//! Kept out: the schedule of the whole run and the report (`run`); frame syntax (`wire`).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Duration,
};

use futures_util::{FutureExt, SinkExt, StreamExt};
use rand::Rng;
use tokio::{
    net::{TcpSocket, TcpStream},
    sync::watch,
    time::{Instant, sleep, sleep_until, timeout},
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{self, Message, protocol::WebSocketConfig},
};

use crate::{
    recorder::{Metric, Recorder, unix_micros},
    scenario::{Scenario, Via},
    seq_tracker::SeqTracker,
    topics::TopicPicker,
    wire::{self, Inbound, JoinOk},
};

/// Body prefix of comments this tool posts: `bl <run> <client> <n> t=<intended unix µs>`.
const MARKER: &str = "bl ";
/// tungstenite zeroes the free part of its read buffer before every read, the one that finds
/// nothing included; a budgeted burst (a marker and a few comments) fits in 4 KiB.
const READ_BUFFER: usize = 4 * 1024;
/// Frames taken from one socket before its other events get a look.
const BATCH: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REJOIN_AFTER: Duration = Duration::from_secs(1);
/// Posts more than this late after a disconnect are skipped rather than sent in a burst.
const SKIP_LATE_POSTS: Duration = Duration::from_secs(1);

/// What the run tells every client, as it changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Control {
    /// Bumped to make every client drop its socket and reconnect.
    pub storm: u64,
    pub stop: bool,
}

/// What all clients of a run share.
pub struct Shared {
    pub scenario: Scenario,
    pub recorder: Arc<Recorder>,
    pub target: SocketAddr,
    pub socket_url: String,
    pub api_base: String,
    pub http: reqwest::Client,
    pub run_tag: String,
    pub publish_from: Instant,
    pub publish_until: Instant,
    /// `Instant` ↔ Unix time, fixed once so every timestamp of the run uses the same mapping.
    pub epoch: (Instant, u64),
}

impl Shared {
    fn unix_us(&self, at: Instant) -> u64 {
        let (base, base_us) = self.epoch;
        if at >= base {
            base_us + (at - base).as_micros() as u64
        } else {
            base_us.saturating_sub((base - at).as_micros() as u64)
        }
    }
}

pub struct Poster {
    pub token: String,
    /// Seconds between this poster's comments.
    pub interval: Duration,
    /// Offset of its first comment into the publishing window, spreading posters evenly.
    pub offset: Duration,
}

pub struct ClientSpec {
    pub id: usize,
    pub source: Option<IpAddr>,
    pub start_at: Instant,
    pub video: String,
    pub poster: Option<Poster>,
}

/// What a client hands back at the end: its topic's `seq` tracker, if it ever joined.
pub struct ClientOutcome {
    pub video: String,
    pub tracker: Option<SeqTracker>,
}

/// One session's conversation with the server: the join in flight and what awaits a reply.
struct Talk {
    join_ref: u64,
    join_sent: Instant,
    joined: bool,
    rejoin_at: Option<Instant>,
    heartbeat_pending: Option<u64>,
    /// Posts awaiting their reply, by ref: the post's intended time (unix µs).
    pending_posts: HashMap<u64, u64>,
}

/// What the frames of one read added up to, recorded together.
#[derive(Default)]
struct Batch {
    frames: u64,
    deliveries: u64,
    /// Intended publish times (unix µs) of the delivered comments this tool posted.
    sent_us: Vec<u64>,
}

enum End {
    Stop,
    Storm,
    Lost(String),
    ConnectFailed,
}

struct Client {
    spec: ClientSpec,
    shared: Arc<Shared>,
    topic: String,
    tracker: Option<SeqTracker>,
    /// Set at a storm's drop until the rejoin succeeds.
    storm_drop: Option<Instant>,
    /// How this client's own comment bodies begin (`bl <run> <client> `): what it posts, and
    /// how it recognises its own comments among the deliveries.
    own_prefix: String,
    next_post: u64,
    next_ref: u64,
}

pub async fn run(
    spec: ClientSpec,
    shared: Arc<Shared>,
    control: watch::Receiver<Control>,
) -> ClientOutcome {
    let topic = TopicPicker::topic(&spec.video);
    let own_prefix = format!("{MARKER}{} {} ", shared.run_tag, spec.id);
    let mut client = Client {
        spec,
        shared,
        topic,
        tracker: None,
        storm_drop: None,
        own_prefix,
        next_post: 0,
        next_ref: 0,
    };
    client.lifecycle(control).await;
    ClientOutcome {
        video: client.spec.video,
        tracker: client.tracker,
    }
}

/// The `phoenix` client's reconnect schedule.
fn backoff(tries: u32, max_ms: u64) -> Duration {
    const STEPS: [u64; 9] = [10, 50, 100, 150, 200, 250, 500, 1000, 2000];
    let ms = STEPS
        .get(tries.saturating_sub(1) as usize)
        .copied()
        .unwrap_or(5000);
    Duration::from_millis(ms.min(max_ms))
}

impl Client {
    fn recorder(&self) -> &Recorder {
        &self.shared.recorder
    }

    fn take_ref(&mut self) -> u64 {
        self.next_ref += 1;
        self.next_ref
    }

    async fn lifecycle(&mut self, mut control: watch::Receiver<Control>) {
        sleep_until(self.spec.start_at).await;
        let mut attempt_start = self.spec.start_at;
        let mut tries = 0u32;
        let mut seen_storm = control.borrow().storm;
        loop {
            if control.borrow().stop {
                return;
            }
            let ws = tokio::select! {
                ws = self.connect() => ws,
                _ = wait_stop(&mut control) => return,
            };
            let end = match ws {
                Ok(ws) => {
                    tries = 0;
                    self.recorder()
                        .record(Metric::Connect, attempt_start.elapsed().as_micros() as u64);
                    self.recorder().counters.connects.fetch_add(1, Relaxed);
                    self.recorder().counters.open.fetch_add(1, Relaxed);
                    let end = self.session(ws, &mut control, &mut seen_storm).await;
                    self.recorder().counters.open.fetch_sub(1, Relaxed);
                    end
                }
                Err(reason) => {
                    self.recorder()
                        .counters
                        .connect_failures
                        .fetch_add(1, Relaxed);
                    self.recorder().error(reason);
                    End::ConnectFailed
                }
            };
            let delay = match end {
                End::Stop => return,
                End::Storm => {
                    let jitter = self
                        .shared
                        .scenario
                        .storm
                        .as_ref()
                        .map_or(0, |s| s.jitter_ms);
                    Duration::from_millis(if jitter > 0 {
                        rand::rng().random_range(0..jitter)
                    } else {
                        0
                    })
                }
                End::Lost(_) | End::ConnectFailed if !self.shared.scenario.reconnect.enabled => {
                    if let End::Lost(reason) = end {
                        self.recorder().disconnect(reason);
                    }
                    return;
                }
                End::Lost(_) | End::ConnectFailed => {
                    if let End::Lost(reason) = end {
                        self.recorder().disconnect(reason);
                    }
                    tries += 1;
                    backoff(tries, self.shared.scenario.reconnect.max_backoff_ms)
                }
            };
            tokio::select! {
                _ = sleep(delay) => {}
                _ = wait_stop(&mut control) => return,
            }
            self.recorder().counters.reconnects.fetch_add(1, Relaxed);
            attempt_start = Instant::now();
        }
    }

    async fn connect(&self) -> Result<WebSocketStream<TcpStream>, String> {
        let target = self.shared.target;
        let socket = if target.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| format!("socket: {}", e.kind()))?;
        if let Some(source) = self.spec.source {
            socket
                .bind(SocketAddr::new(source, 0))
                .map_err(|e| format!("bind {source}: {}", e.kind()))?;
        }
        let stream = timeout(CONNECT_TIMEOUT, socket.connect(target))
            .await
            .map_err(|_| "connect: timed out".to_owned())?
            .map_err(|e| format!("connect: {}", e.kind()))?;
        let _ = stream.set_nodelay(true);
        // Abortive close when dropped (a storm's drop): RST, like a lost network.
        let _ = stream.set_zero_linger();
        let mut url = format!("{}?vsn=2.0.0", self.shared.socket_url);
        if let Some(poster) = &self.spec.poster {
            url += &format!("&token={}", poster.token);
        }
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(4 << 20));
        let (ws, _) = timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::client_async_with_config(url, stream, Some(config)),
        )
        .await
        .map_err(|_| "handshake: timed out".to_owned())?
        .map_err(|e| match e {
            tungstenite::Error::Http(response) => format!("handshake: http {}", response.status()),
            other => format!("handshake: {other}"),
        })?;
        Ok(ws)
    }

    fn unix_us(&self, at: Instant) -> u64 {
        self.shared.unix_us(at)
    }

    /// The intended time of post number `n`.
    fn post_time(&self, n: u64) -> Option<Instant> {
        let poster = self.spec.poster.as_ref()?;
        let at = self.shared.publish_from + poster.offset + poster.interval.mul_f64(n as f64);
        (at < self.shared.publish_until).then_some(at)
    }

    async fn session(
        &mut self,
        mut ws: WebSocketStream<TcpStream>,
        control: &mut watch::Receiver<Control>,
        seen_storm: &mut u64,
    ) -> End {
        let heartbeat_every = Duration::from_secs_f64(self.shared.scenario.heartbeat_secs);
        let mut talk = Talk {
            join_ref: self.take_ref(),
            join_sent: Instant::now(),
            joined: false,
            rejoin_at: None,
            heartbeat_pending: None,
            pending_posts: HashMap::new(),
        };
        let since = self.tracker.as_ref().map(SeqTracker::resume_from);
        if let Err(e) = ws
            .send(Message::text(wire::join(talk.join_ref, &self.topic, since)))
            .await
        {
            return End::Lost(format!("send: {e}"));
        }
        let via = self.shared.scenario.publish.via;
        // The timers live across iterations and are moved only when their deadline changes: a
        // timer made per iteration is a timer-wheel insert and removal per received frame.
        let mut next_heartbeat = Instant::now() + heartbeat_every;
        let heartbeat = sleep_until(next_heartbeat);
        let rejoin = sleep_until(next_heartbeat);
        let post = sleep_until(next_heartbeat);
        tokio::pin!(heartbeat, rejoin, post);
        let mut rejoin_armed: Option<Instant> = None;
        let mut post_armed: Option<Instant> = None;
        let end = loop {
            let post_at = if talk.joined || via == Via::Rest {
                self.post_time(self.next_post)
            } else {
                None
            };
            if let Some(at) = post_at
                && post_at != post_armed
            {
                post.as_mut().reset(at);
            }
            post_armed = post_at;
            if let Some(at) = talk.rejoin_at
                && talk.rejoin_at != rejoin_armed
            {
                rejoin.as_mut().reset(at);
            }
            rejoin_armed = talk.rejoin_at;
            tokio::select! {
                changed = control.changed() => {
                    let c = *control.borrow();
                    if changed.is_err() || c.stop {
                        let _ = ws.close(None).await;
                        break End::Stop;
                    }
                    if c.storm != *seen_storm {
                        *seen_storm = c.storm;
                        self.storm_drop = Some(Instant::now());
                        self.recorder().counters.storm_dropped.fetch_add(1, Relaxed);
                        break End::Storm;
                    }
                }
                frame = ws.next() => {
                    // What is already readable arrived together: take it in one go (up to
                    // BATCH frames, so a flood cannot starve the timers), with one clock
                    // reading and one visit to the shared recorder.
                    let mut batch = Batch::default();
                    let mut frame = frame;
                    let mut taken = 1;
                    let end = loop {
                        if let Some(end) = self.frame(frame, &mut talk, &mut batch) {
                            break Some(end);
                        }
                        if taken == BATCH {
                            break None;
                        }
                        taken += 1;
                        match ws.next().now_or_never() {
                            Some(next) => frame = next,
                            None => break None,
                        }
                    };
                    self.settle(batch);
                    if let Some(end) = end {
                        break end;
                    }
                }
                _ = &mut heartbeat => {
                    if talk.heartbeat_pending.is_some() {
                        break End::Lost("heartbeat timeout".to_owned());
                    }
                    let r = self.take_ref();
                    talk.heartbeat_pending = Some(r);
                    next_heartbeat += heartbeat_every;
                    heartbeat.as_mut().reset(next_heartbeat);
                    if let Err(e) = ws.send(Message::text(wire::heartbeat(r))).await {
                        break End::Lost(format!("send: {e}"));
                    }
                }
                _ = &mut rejoin, if talk.rejoin_at.is_some() && !talk.joined => {
                    talk.rejoin_at = None;
                    talk.join_ref = self.take_ref();
                    talk.join_sent = Instant::now();
                    let since = self.tracker.as_ref().map(SeqTracker::resume_from);
                    if let Err(e) = ws.send(Message::text(wire::join(talk.join_ref, &self.topic, since))).await {
                        break End::Lost(format!("send: {e}"));
                    }
                }
                _ = &mut post, if post_at.is_some() => {
                    let intended = post_at.expect("guarded");
                    // Armed again by the next iteration, even if the next post's time is equal.
                    post_armed = None;
                    self.next_post += 1;
                    let intended_us = self.unix_us(intended);
                    let body = format!("{}{} t={intended_us}", self.own_prefix, self.next_post);
                    self.recorder().counters.published.fetch_add(1, Relaxed);
                    match via {
                        Via::Socket => {
                            let r = self.take_ref();
                            talk.pending_posts.insert(r, intended_us);
                            if let Err(e) = ws.send(Message::text(wire::new_comment(talk.join_ref, r, &self.topic, &body))).await {
                                break End::Lost(format!("send: {e}"));
                            }
                        }
                        Via::Rest => self.post_rest(body, intended_us),
                    }
                }
            }
        };
        if talk.joined {
            self.recorder().counters.joined.fetch_sub(1, Relaxed);
        }
        // Posts never answered are errors, not silently dropped.
        let unanswered = match end {
            End::Stop => "post: unanswered when the run stopped",
            _ => "post: unanswered when the socket ended",
        };
        for _ in talk.pending_posts.drain() {
            self.recorder()
                .counters
                .post_unanswered
                .fetch_add(1, Relaxed);
            self.recorder().error(unanswered);
        }
        self.skip_missed_posts();
        end
    }

    /// One received frame; `Some` ends the session.
    fn frame(
        &mut self,
        frame: Option<Result<Message, tungstenite::Error>>,
        talk: &mut Talk,
        batch: &mut Batch,
    ) -> Option<End> {
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                return Some(End::Lost(match frame {
                    Some(f) => format!("closed {} {}", u16::from(f.code), f.reason),
                    None => "closed without a code".to_owned(),
                }));
            }
            Some(Ok(_)) => return None,
            Some(Err(e)) => return Some(End::Lost(format!("read: {e}"))),
            None => return Some(End::Lost("connection ended".to_owned())),
        };
        batch.frames += 1;
        match wire::parse(&text) {
            Ok(Inbound::Comment { topic, seq, body }) => {
                if topic == self.topic {
                    self.delivered(seq, &body, batch);
                }
            }
            Ok(Inbound::Skipped { topic, from, to }) => {
                if topic == self.topic
                    && let Some(tracker) = &mut self.tracker
                {
                    tracker.skipped(from, to);
                }
            }
            Ok(Inbound::Reply {
                msg_ref: Some(r),
                ok,
                response,
            }) if r == talk.join_ref => {
                if ok {
                    talk.joined = true;
                    self.joined(talk.join_sent, response.get());
                } else {
                    let reason = wire::error_reason(response);
                    self.recorder().counters.join_errors.fetch_add(1, Relaxed);
                    self.recorder().error(format!("join: {reason}"));
                    talk.rejoin_at = Some(Instant::now() + REJOIN_AFTER);
                }
            }
            Ok(Inbound::Reply {
                msg_ref: Some(r),
                ok,
                response,
            }) => {
                if talk.heartbeat_pending == Some(r) {
                    talk.heartbeat_pending = None;
                } else if let Some(intended_us) = talk.pending_posts.remove(&r) {
                    self.acked(intended_us, ok, response.get());
                }
            }
            Ok(Inbound::ChannelClosed { topic }) if topic == self.topic => {
                if talk.joined {
                    talk.joined = false;
                    self.recorder().counters.joined.fetch_sub(1, Relaxed);
                }
                self.recorder().error("channel closed by the server");
                talk.rejoin_at = Some(Instant::now() + REJOIN_AFTER);
            }
            Ok(_) => {}
            Err(e) => self.recorder().error(format!("unparseable frame: {e}")),
        }
        None
    }

    /// Hands a batch's counts and latencies to the shared recorder.
    fn settle(&self, batch: Batch) {
        let counters = &self.recorder().counters;
        counters.frames_in.fetch_add(batch.frames, Relaxed);
        if batch.deliveries > 0 {
            counters.deliveries.fetch_add(batch.deliveries, Relaxed);
        }
        if !batch.sent_us.is_empty() {
            let now = unix_micros();
            let latencies = batch.sent_us.iter().map(|&sent| now.saturating_sub(sent));
            self.recorder().record_all(Metric::Delivery, latencies);
        }
    }

    /// After a disconnect, posts whose time passed long ago are skipped, not burst out.
    fn skip_missed_posts(&mut self) {
        while let Some(at) = self.post_time(self.next_post) {
            if at.elapsed() <= SKIP_LATE_POSTS {
                break;
            }
            self.next_post += 1;
            self.recorder().counters.post_skipped.fetch_add(1, Relaxed);
        }
    }

    fn delivered(&mut self, seq: i64, body: &str, batch: &mut Batch) {
        batch.deliveries += 1;
        let own = body.starts_with(&self.own_prefix);
        if let Some(tracker) = &mut self.tracker {
            if own {
                tracker.own(seq);
            } else {
                tracker.live(seq);
            }
        }
        if let Some(sent_us) = body
            .strip_prefix(MARKER)
            .and_then(|rest| rest.rsplit_once("t="))
            .and_then(|(_, t)| t.parse::<u64>().ok())
        {
            batch.sent_us.push(sent_us);
        }
    }

    fn joined(&mut self, join_sent: Instant, response: &str) {
        let recorder = Arc::clone(&self.shared.recorder);
        recorder.record(Metric::Join, join_sent.elapsed().as_micros() as u64);
        recorder.counters.joins.fetch_add(1, Relaxed);
        recorder.counters.joined.fetch_add(1, Relaxed);
        let reply: JoinOk = match serde_json::from_str(response) {
            Ok(r) => r,
            Err(e) => {
                recorder.error(format!("join reply unreadable: {e}"));
                return;
            }
        };
        let recovered = reply.recovered;
        match &mut self.tracker {
            None => self.tracker = Some(SeqTracker::new(reply.last_seq)),
            Some(tracker) => {
                if recovered == Some(false) {
                    let oldest = reply.comments.first().map_or(reply.last_seq + 1, |c| c.seq);
                    tracker.abandon_below(oldest);
                }
                // In seq order: replayed comments and the runs the budget left out between them.
                let mut runs = reply.skipped.iter().peekable();
                for c in &reply.comments {
                    while let Some(run) = runs.next_if(|r| r.from_seq < c.seq) {
                        tracker.skipped(run.from_seq, run.to_seq);
                    }
                    tracker.replayed(c.seq);
                }
                for run in runs {
                    tracker.skipped(run.from_seq, run.to_seq);
                }
            }
        }
        self.skip_missed_posts();
        if let Some(dropped) = self.storm_drop.take() {
            recorder.record(Metric::Rejoin, dropped.elapsed().as_micros() as u64);
            recorder.counters.storm_rejoined.fetch_add(1, Relaxed);
            if recovered == Some(true) {
                recorder.counters.storm_recovered.fetch_add(1, Relaxed);
            }
        }
    }

    fn acked(&self, intended_us: u64, ok: bool, response: &str) {
        let recorder = self.recorder();
        if ok {
            recorder.counters.acked.fetch_add(1, Relaxed);
            recorder.record(Metric::Ack, unix_micros().saturating_sub(intended_us));
        } else {
            recorder.counters.post_errors.fetch_add(1, Relaxed);
            let reason = serde_json::from_str::<&serde_json::value::RawValue>(response)
                .map(wire::error_reason)
                .unwrap_or_default();
            recorder.error(format!("post: {reason}"));
        }
    }

    fn post_rest(&self, body: String, intended_us: u64) {
        let shared = Arc::clone(&self.shared);
        let token = self
            .spec
            .poster
            .as_ref()
            .map(|p| p.token.clone())
            .unwrap_or_default();
        let url = format!(
            "{}/api/videos/{}/comments",
            shared.api_base, self.spec.video
        );
        tokio::spawn(async move {
            let recorder = &shared.recorder;
            let result = shared
                .http
                .post(&url)
                .bearer_auth(token)
                .json(&serde_json::json!({ "body": body }))
                .send()
                .await;
            match result {
                Ok(response) if response.status().is_success() => {
                    recorder.counters.acked.fetch_add(1, Relaxed);
                    recorder.record(Metric::Ack, unix_micros().saturating_sub(intended_us));
                    // Read the body so the connection can be reused.
                    let _ = response.bytes().await;
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let code = response
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    recorder.counters.post_errors.fetch_add(1, Relaxed);
                    recorder.error(format!("post: http {status} {code}"));
                }
                Err(e) => {
                    recorder.counters.post_errors.fetch_add(1, Relaxed);
                    recorder.error(format!(
                        "post: {}",
                        if e.is_timeout() {
                            "timeout"
                        } else {
                            "request failed"
                        }
                    ));
                }
            }
        });
    }
}

async fn wait_stop(control: &mut watch::Receiver<Control>) {
    loop {
        if control.borrow_and_update().stop {
            return;
        }
        if control.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_phoenix_client() {
        let ms: Vec<u64> = (1..=11)
            .map(|t| backoff(t, 5000).as_millis() as u64)
            .collect();
        assert_eq!(
            ms,
            [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000, 5000]
        );
        assert_eq!(backoff(10, 800).as_millis(), 800);
    }
}
