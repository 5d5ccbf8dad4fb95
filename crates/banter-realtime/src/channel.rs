//! The channel of one topic on this node: a task owning the topic's subscribers, a window of
//! recent comments, the delivered `seq`, and presence.
//!
//! Ordering: creations are delivered strictly in `seq` order, each once. An event whose `seq`
//! is at or below the delivered one is a duplicate and dropped; one that skips ahead reveals a
//! gap (a lost or reordered bus message), which is filled from the primary before anything
//! after it is delivered. Because a video's `seq` is assigned under a row lock, every `seq`
//! below a committed one is committed too, so the fill always finds what is missing.
//!
//! A join's history is cut at the delivered `seq` while no other message is processed, so what
//! a joiner gets in its reply and what it gets live afterwards meet exactly: no gap, no overlap.
//!
//! Mailbox: bounded (`RealtimeConfig::channel_mailbox`). Joins that find it full are refused
//! with `unavailable`; bus events that find it full are dropped and repaired as gaps.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use banter_bus::{Bus, BusEvent, ChangeKind, PresenceSnapshot};
use banter_core::{Comment, VideoId};
use banter_protocol::events;
use banter_protocol::payloads::{self, Meta};
use banter_store::{CommentPage, Store};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::metrics as m;
use crate::outq::Outq;
use crate::presence::Presence;
use crate::wire::SharedFrame;
use crate::{RealtimeConfig, Refusal};
use tracing::Instrument;

/// Longest gap filled in one database read; larger gaps are filled in several.
const FILL_BATCH: u32 = 500;
/// A join re-reads the tail from the database at most this often (to repair lost tail events).
const JOIN_CATCH_UP_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Subscriber {
    /// The socket's outbound queue, and the serializer its frames are encoded with.
    pub outq: Arc<Outq>,
    pub vsn: banter_protocol::Vsn,
    /// `(user id, username)` of a signed-in viewer; anonymous viewers are not members.
    pub member: Option<(String, String)>,
    pub phx_ref: String,
}

pub(crate) struct JoinOk {
    pub response: Value,
    pub presence_state: Value,
}

pub(crate) enum JoinError {
    /// The channel is shutting down; join the topic's new channel instead.
    Retry,
    Refused(Refusal),
}

pub(crate) enum Command {
    Join {
        sid: u64,
        subscriber: Subscriber,
        since_seq: Option<i64>,
        reply: oneshot::Sender<Result<JoinOk, JoinError>>,
    },
    Leave {
        sid: u64,
    },
    Event(BusEvent),
    /// Another node's presence in this topic.
    Presence(PresenceSnapshot),
    /// Access to the video changed: every subscriber re-checks whether it may still watch.
    Recheck,
    /// Re-read the tail now (the bus was down: comments may have been missed).
    CatchUp,
}

/// What another node last said about this topic.
struct Remote {
    seen: Instant,
    viewers: usize,
    members: Vec<(String, Vec<Meta>)>,
}

pub(crate) struct Channel {
    video: VideoId,
    topic: String,
    store: Store,
    config: Arc<RealtimeConfig>,
    subscribers: HashMap<u64, Subscriber>,
    presence: Presence,
    window: VecDeque<Comment>,
    last_seq: i64,
    loaded: bool,
    /// Creations that arrived ahead of a gap that could not be filled yet.
    pending: BTreeMap<i64, Comment>,
    last_count_sent: usize,
    last_join_catch_up: Option<Instant>,
    bus: Arc<dyn Bus>,
    remote: HashMap<String, Remote>,
    /// Local presence changed since it was last published.
    presence_dirty: bool,
    last_presence_publish: Option<Instant>,
}

impl Channel {
    pub fn new(
        video: VideoId,
        store: Store,
        config: Arc<RealtimeConfig>,
        bus: Arc<dyn Bus>,
    ) -> Self {
        Self {
            topic: format!("comments:{video}"),
            video,
            store,
            config,
            subscribers: HashMap::new(),
            presence: Presence::default(),
            window: VecDeque::new(),
            last_seq: 0,
            loaded: false,
            pending: BTreeMap::new(),
            last_count_sent: 0,
            last_join_catch_up: None,
            bus,
            remote: HashMap::new(),
            presence_dirty: true,
            last_presence_publish: None,
        }
    }

    /// Runs until the last subscriber leaves; then `on_idle` unregisters the channel and the
    /// remaining mailbox is drained (joins told to retry on the new channel).
    pub async fn run(mut self, mut rx: mpsc::Receiver<Command>, on_idle: impl FnOnce()) {
        self.load().await;
        let mut tick = tokio::time::interval(self.config.viewer_count_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let period = self.config.repair_interval;
        let mut repair = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        repair.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = rx.recv() => {
                    let Some(command) = command else { break };
                    self.handle(command).await;
                    if self.subscribers.is_empty() {
                        break;
                    }
                }
                _ = tick.tick() => {
                    self.expire_remote_nodes();
                    self.publish_presence_if_due();
                    self.broadcast_count_if_changed();
                    if !self.pending.is_empty() {
                        self.catch_up().await;
                    }
                }
                _ = repair.tick() => self.catch_up().await,
            }
        }
        // Tell the other nodes this one has no viewers here any more.
        self.subscribers.clear();
        self.presence = Presence::default();
        self.publish_presence();
        on_idle();
        rx.close();
        while let Some(command) = rx.recv().await {
            if let Command::Join { reply, .. } = command {
                let _ = reply.send(Err(JoinError::Retry));
            }
        }
    }

    async fn load(&mut self) {
        let limit = self.config.history_page.max(1) as u32;
        match self
            .store
            .primary()
            .list_comments(&self.video, CommentPage::Latest, limit)
            .await
        {
            Ok(comments) => {
                self.last_seq = comments.last().map_or(0, |c| c.seq);
                self.window = comments.into();
                self.loaded = true;
            }
            Err(e) => {
                tracing::warn!(video = %self.video, error = ?e, "channel could not load history")
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Join {
                sid,
                subscriber,
                since_seq,
                reply,
            } => {
                let result = self.join(sid, subscriber, since_seq).await;
                let _ = reply.send(result);
            }
            Command::Leave { sid } => self.leave(sid),
            Command::Event(event) => {
                let span = tracing::info_span!(
                    "channel.deliver",
                    otel.kind = "consumer",
                    viewers = self.subscribers.len()
                );
                banter_bus::trace::continue_from(&span, event.trace.as_deref());
                self.on_event(event).instrument(span).await
            }
            Command::Presence(snapshot) => self.on_remote_presence(snapshot),
            Command::CatchUp => self.catch_up().await,
            Command::Recheck => {
                for subscriber in self.subscribers.values() {
                    subscriber.outq.recheck_video(self.video.clone());
                }
            }
        }
    }

    async fn join(
        &mut self,
        sid: u64,
        subscriber: Subscriber,
        since_seq: Option<i64>,
    ) -> Result<JoinOk, JoinError> {
        if !self.loaded {
            self.load().await;
            if !self.loaded {
                return Err(JoinError::Refused(Refusal::new(
                    banter_protocol::reasons::UNAVAILABLE,
                    "comments are unavailable right now; retrying",
                )));
            }
        }
        if self
            .last_join_catch_up
            .is_none_or(|t| t.elapsed() >= JOIN_CATCH_UP_EVERY)
        {
            self.last_join_catch_up = Some(Instant::now());
            self.catch_up().await;
        }
        let (comments, recovered) = self.history(since_seq).await;
        // Replace an earlier join of the same session (duplicate join).
        self.leave(sid);
        let member = subscriber.member.clone();
        let phx_ref = subscriber.phx_ref.clone();
        self.subscribers.insert(sid, subscriber);
        metrics::gauge!(m::VIEWERS).increment(1.0);
        self.presence_dirty = true;
        if let Some((user_id, username)) = member {
            let meta = Meta {
                phx_ref,
                username,
                online_at: time::OffsetDateTime::now_utc().unix_timestamp(),
            };
            let diff = self.presence.join(&user_id, meta);
            if self.presence_lists_enabled() {
                self.broadcast(events::PRESENCE_DIFF, &diff);
            }
        }
        let mut response = json!({
            "comments": comments.iter().map(payloads::comment).collect::<Vec<_>>(),
            "last_seq": self.last_seq,
            "viewers": self.total_viewers(),
        });
        if let Some(recovered) = recovered {
            response["recovered"] = json!(recovered);
        }
        let presence_state = if self.presence_lists_enabled() {
            self.merged_state()
        } else {
            json!({})
        };
        Ok(JoinOk {
            response,
            presence_state,
        })
    }

    /// The join's history: the latest page, or everything after `since_seq` (with whether the
    /// recovery was complete).
    async fn history(&self, since_seq: Option<i64>) -> (Vec<Comment>, Option<bool>) {
        let Some(since) = since_seq else {
            return (self.latest_page().await, None);
        };
        if since >= self.last_seq {
            return (Vec::new(), Some(true));
        }
        let missing = (self.last_seq - since.max(0)) as usize;
        if missing > self.config.max_recovery {
            return (self.latest_page().await, Some(false));
        }
        if self.window.front().is_some_and(|c| c.seq <= since + 1) {
            let from_window = self
                .window
                .iter()
                .filter(|c| c.seq > since)
                .cloned()
                .collect();
            return (from_window, Some(true));
        }
        match self
            .store
            .primary()
            .list_comments(
                &self.video,
                CommentPage::After(since.max(0)),
                missing as u32,
            )
            .await
        {
            Ok(mut comments) => {
                comments.retain(|c| c.seq <= self.last_seq);
                (comments, Some(true))
            }
            Err(e) => {
                tracing::warn!(video = %self.video, error = ?e, "recovery read failed");
                (self.latest_page().await, Some(false))
            }
        }
    }

    async fn latest_page(&self) -> Vec<Comment> {
        let page = self.config.history_page;
        let window_has_page =
            self.window.len() >= page || self.window.front().is_none_or(|c| c.seq == 1);
        if window_has_page {
            return self
                .window
                .iter()
                .skip(self.window.len().saturating_sub(page))
                .cloned()
                .collect();
        }
        match self
            .store
            .primary()
            .list_comments(
                &self.video,
                CommentPage::Before(self.last_seq + 1),
                page as u32,
            )
            .await
        {
            Ok(comments) => comments,
            Err(_) => self.window.iter().cloned().collect(),
        }
    }

    fn leave(&mut self, sid: u64) {
        let Some(subscriber) = self.subscribers.remove(&sid) else {
            return;
        };
        metrics::gauge!(m::VIEWERS).decrement(1.0);
        metrics::counter!(m::LEAVES).increment(1);
        if let Some((user_id, _)) = subscriber.member
            && let Some(diff) = self.presence.leave(&user_id, &subscriber.phx_ref)
            && self.presence_lists_enabled()
        {
            self.broadcast(events::PRESENCE_DIFF, &diff);
        }
    }

    async fn on_event(&mut self, event: BusEvent) {
        let comment = event.comment;
        match event.kind {
            ChangeKind::Created => {
                if comment.seq <= self.last_seq {
                    return;
                }
                if comment.seq == self.last_seq + 1 {
                    self.deliver(comment);
                    self.deliver_pending();
                } else {
                    self.pending.insert(comment.seq, comment);
                    self.catch_up().await;
                }
            }
            ChangeKind::Updated | ChangeKind::Deleted => {
                if comment.seq > self.last_seq {
                    self.catch_up().await;
                }
                if let Some(slot) = self.window.iter_mut().find(|c| c.seq == comment.seq) {
                    *slot = comment.clone();
                }
                let name = if event.kind == ChangeKind::Updated {
                    events::COMMENT_UPDATED
                } else {
                    events::COMMENT_DELETED
                };
                self.broadcast(name, &payloads::comment(&comment));
            }
        }
    }

    /// Delivers everything committed after `last_seq`, read from the primary.
    async fn catch_up(&mut self) {
        loop {
            let page = self
                .store
                .primary()
                .list_comments(&self.video, CommentPage::After(self.last_seq), FILL_BATCH)
                .await;
            match page {
                Ok(comments) => {
                    let full = comments.len() == FILL_BATCH as usize;
                    for comment in comments {
                        if comment.seq == self.last_seq + 1 {
                            self.pending.remove(&comment.seq);
                            self.deliver(comment);
                        }
                    }
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(video = %self.video, error = ?e, "gap fill failed; will retry");
                    break;
                }
            }
        }
        self.deliver_pending();
    }

    fn deliver_pending(&mut self) {
        while let Some(entry) = self.pending.first_entry() {
            let seq = *entry.key();
            if seq <= self.last_seq {
                entry.remove();
            } else if seq == self.last_seq + 1 {
                let comment = entry.remove();
                self.deliver(comment);
            } else {
                break;
            }
        }
    }

    fn deliver(&mut self, comment: Comment) {
        self.last_seq = comment.seq;
        self.broadcast(events::COMMENT_CREATED, &payloads::comment(&comment));
        self.window.push_back(comment);
        while self.window.len() > self.config.recovery_window.max(self.config.history_page) {
            self.window.pop_front();
        }
    }

    fn presence_lists_enabled(&self) -> bool {
        let remote: usize = self.remote.values().map(|r| r.members.len()).sum();
        self.presence.len() + remote <= self.config.presence_member_limit
    }

    fn total_viewers(&self) -> usize {
        self.subscribers.len() + self.remote.values().map(|r| r.viewers).sum::<usize>()
    }

    /// This node's members and every other node's, as one `presence_state`.
    fn merged_state(&self) -> Value {
        let mut merged: BTreeMap<&str, Vec<Meta>> = BTreeMap::new();
        for (key, metas) in self.presence.members() {
            merged.entry(key).or_default().extend_from_slice(metas);
        }
        for remote in self.remote.values() {
            for (key, metas) in &remote.members {
                merged
                    .entry(key.as_str())
                    .or_default()
                    .extend_from_slice(metas);
            }
        }
        payloads::presence_entries(merged.iter().map(|(k, v)| (*k, v.as_slice())))
    }

    fn snapshot(&self) -> PresenceSnapshot {
        PresenceSnapshot {
            node: String::new(),
            video: self.video.clone(),
            viewers: self.subscribers.len(),
            members: self
                .presence
                .members()
                .map(|(k, v)| (k.to_owned(), v.to_vec()))
                .collect(),
        }
    }

    fn publish_presence(&mut self) {
        self.bus.publish_presence(self.snapshot());
        self.presence_dirty = false;
        self.last_presence_publish = Some(Instant::now());
    }

    fn publish_presence_if_due(&mut self) {
        let heartbeat_due = self
            .last_presence_publish
            .is_none_or(|t| t.elapsed() >= self.config.presence_heartbeat);
        if self.presence_dirty || heartbeat_due {
            self.publish_presence();
        }
    }

    /// Merges another node's snapshot and tells local viewers which of its members came and went.
    fn on_remote_presence(&mut self, snapshot: PresenceSnapshot) {
        let gone = snapshot.viewers == 0 && snapshot.members.is_empty();
        let old = if gone {
            self.remote.remove(&snapshot.node)
        } else {
            self.remote.insert(
                snapshot.node.clone(),
                Remote {
                    seen: Instant::now(),
                    viewers: snapshot.viewers,
                    members: snapshot.members.clone(),
                },
            )
        };
        // A node we had not heard from (new, or restarted) learns our state at the next tick
        // rather than at our next heartbeat.
        if old.is_none() && !gone {
            self.presence_dirty = true;
        }
        let old_members = old.map(|r| r.members).unwrap_or_default();
        let new_members = if gone { Vec::new() } else { snapshot.members };
        self.broadcast_member_changes(&old_members, &new_members);
    }

    /// Drops nodes that stopped heart-beating (crashed or cut off): their viewers leave.
    fn expire_remote_nodes(&mut self) {
        let timeout = self.config.node_timeout;
        let dead: Vec<String> = self
            .remote
            .iter()
            .filter(|(_, r)| r.seen.elapsed() >= timeout)
            .map(|(node, _)| node.clone())
            .collect();
        for node in dead {
            if let Some(remote) = self.remote.remove(&node) {
                tracing::info!(video = %self.video, node, "node stopped heart-beating; dropping its viewers");
                self.broadcast_member_changes(&remote.members, &[]);
            }
        }
    }

    fn broadcast_member_changes(
        &mut self,
        old: &[(String, Vec<Meta>)],
        new: &[(String, Vec<Meta>)],
    ) {
        let refs = |members: &[(String, Vec<Meta>)]| -> std::collections::HashSet<String> {
            members
                .iter()
                .flat_map(|(_, metas)| metas.iter().map(|m| m.phx_ref.clone()))
                .collect()
        };
        let (old_refs, new_refs) = (refs(old), refs(new));
        let pick = |members: &[(String, Vec<Meta>)],
                    exclude: &std::collections::HashSet<String>|
         -> Vec<(String, Vec<Meta>)> {
            members
                .iter()
                .map(|(k, metas)| {
                    (
                        k.clone(),
                        metas
                            .iter()
                            .filter(|m| !exclude.contains(&m.phx_ref))
                            .cloned()
                            .collect::<Vec<_>>(),
                    )
                })
                .filter(|(_, metas)| !metas.is_empty())
                .collect()
        };
        let joins = pick(new, &old_refs);
        let leaves = pick(old, &new_refs);
        if (joins.is_empty() && leaves.is_empty()) || !self.presence_lists_enabled() {
            return;
        }
        let entries = |list: &[(String, Vec<Meta>)]| {
            payloads::presence_entries(list.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
        };
        let diff = payloads::presence_diff(entries(&joins), entries(&leaves));
        self.broadcast(events::PRESENCE_DIFF, &diff);
    }

    fn broadcast_count_if_changed(&mut self) {
        let count = self.total_viewers();
        if count != self.last_count_sent {
            self.last_count_sent = count;
            self.broadcast(events::VIEWER_COUNT, &json!({ "count": count }));
        }
    }

    /// Encodes once and offers the shared frame to every subscriber; slow consumers are
    /// dropped from the topic (their connection is being closed).
    fn broadcast(&mut self, event: &'static str, payload: &Value) {
        let started = std::time::Instant::now();
        let frame = SharedFrame::new(&self.topic, event, payload.to_string());
        let slow: Vec<u64> = self
            .subscribers
            .iter()
            .filter(|(_, s)| !s.outq.offer(frame.bytes(s.vsn)))
            .map(|(sid, _)| *sid)
            .collect();
        for sid in slow {
            self.leave(sid);
        }
        let delivered = self.subscribers.len() as u64;
        metrics::counter!(m::FANOUT_DELIVERIES).increment(delivered);
        metrics::counter!(m::MESSAGES_OUT).increment(delivered);
        metrics::histogram!(m::FANOUT).record(started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use banter_core::{CommentBody, Email, Role, UserId, Username};
    use banter_store::{NewUser, StoreConfig};

    use super::*;
    use crate::outq::{Outq, Receiver};

    async fn store() -> (Store, UserId, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&StoreConfig::new(format!(
            "sqlite://{}",
            dir.path().join("t.db").display()
        )))
        .await
        .unwrap();
        let user = store
            .primary()
            .create_user(NewUser {
                email: Email::parse("a@example.com").unwrap(),
                username: Username::parse("alice").unwrap(),
                password_hash: "x".into(),
                role: Role::User,
            })
            .await
            .unwrap();
        (store, user.id, dir)
    }

    /// Joins one anonymous subscriber (sid 1) and returns its outbox.
    async fn join_anonymous(tx: &mpsc::Sender<Command>) -> Receiver {
        join_since(tx, None).await.0
    }

    /// Joins one anonymous subscriber (sid 1); returns its outbox and the join's result.
    async fn join_since(tx: &mpsc::Sender<Command>, since_seq: Option<i64>) -> (Receiver, JoinOk) {
        let outq = Arc::new(Outq::new(64, 1 << 20));
        let frames = Receiver::new(outq.clone());
        let (reply_tx, reply_rx) = oneshot::channel();
        let subscriber = Subscriber {
            outq,
            vsn: banter_protocol::Vsn::V2,
            member: None,
            phx_ref: "r".into(),
        };
        let join = Command::Join {
            sid: 1,
            subscriber,
            since_seq,
            reply: reply_tx,
        };
        tx.send(join).await.unwrap();
        let Ok(ok) = reply_rx.await.unwrap() else {
            panic!("join refused")
        };
        (frames, ok)
    }

    fn seq_of(frame: bytes::Bytes) -> Option<i64> {
        let value: Value = serde_json::from_str(&crate::wire::text_of(&frame)).unwrap();
        (value[3] == events::COMMENT_CREATED).then(|| value[4]["seq"].as_i64().unwrap())
    }

    #[tokio::test]
    async fn lost_reordered_and_duplicated_bus_events_reach_viewers_in_seq_order_once() {
        let (store, author, _dir) = store().await;
        let video = VideoId::parse("v").unwrap();
        let (tx, rx) = mpsc::channel(64);
        let channel = Channel::new(
            video.clone(),
            store.clone(),
            Arc::new(RealtimeConfig::default()),
            Arc::new(banter_bus::MemoryBus::new()),
        );
        let task = tokio::spawn(channel.run(rx, || {}));
        let mut frames = join_anonymous(&tx).await;

        let mut committed = Vec::new();
        for i in 0..6 {
            let body = CommentBody::parse(&format!("c{i}")).unwrap();
            committed.push(
                store
                    .primary()
                    .create_comment(&video, author, &body)
                    .await
                    .unwrap(),
            );
        }
        let event =
            |i: usize| Command::Event(BusEvent::new(ChangeKind::Created, committed[i].clone()));
        // seq 1 arrives, 2 is lost, 4 arrives before 3, 4 is duplicated, 5 is lost, 6 arrives.
        for i in [0, 3, 2, 3, 5] {
            tx.send(event(i)).await.unwrap();
        }
        let mut seen = Vec::new();
        while seen.len() < 6 {
            let frame = tokio::time::timeout(Duration::from_secs(5), frames.recv())
                .await
                .unwrap()
                .unwrap();
            seen.extend(seq_of(frame));
        }
        assert_eq!(seen, vec![1, 2, 3, 4, 5, 6]);
        // Nothing more: the duplicate was dropped.
        tokio::time::sleep(Duration::from_millis(100)).await;
        while let Some(frame) = frames.try_recv() {
            assert_eq!(seq_of(frame), None, "no comment delivered twice");
        }
        tx.send(Command::Leave { sid: 1 }).await.unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_joiner_history_and_live_stream_meet_without_gap_or_overlap() {
        let (store, author, _dir) = store().await;
        let video = VideoId::parse("v").unwrap();
        for i in 0..3 {
            let body = CommentBody::parse(&format!("c{i}")).unwrap();
            store
                .primary()
                .create_comment(&video, author, &body)
                .await
                .unwrap();
        }
        let (tx, rx) = mpsc::channel(64);
        let channel = Channel::new(
            video.clone(),
            store.clone(),
            Arc::new(RealtimeConfig::default()),
            Arc::new(banter_bus::MemoryBus::new()),
        );
        tokio::spawn(channel.run(rx, || {}));
        // A comment committed whose bus event has not arrived yet when the viewer joins.
        let body = CommentBody::parse("in flight").unwrap();
        let in_flight = store
            .primary()
            .create_comment(&video, author, &body)
            .await
            .unwrap();
        let (mut frames, ok) = join_since(&tx, Some(1)).await;
        let history: Vec<i64> = ok.response["comments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(history, vec![2, 3, 4]);
        assert_eq!(ok.response["last_seq"], 4);
        // The late bus event is a duplicate now and is not delivered again.
        tx.send(Command::Event(BusEvent::new(
            ChangeKind::Created,
            in_flight,
        )))
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        while let Some(frame) = frames.try_recv() {
            assert_eq!(seq_of(frame), None);
        }
    }

    #[tokio::test]
    async fn other_nodes_count_and_list_until_they_stop_heart_beating() {
        let (store, _author, _dir) = store().await;
        let config = RealtimeConfig {
            viewer_count_interval: Duration::from_millis(50),
            node_timeout: Duration::from_millis(400),
            ..Default::default()
        };
        let (tx, rx) = mpsc::channel(64);
        let channel = Channel::new(
            VideoId::parse("v").unwrap(),
            store,
            Arc::new(config),
            Arc::new(banter_bus::MemoryBus::new()),
        );
        tokio::spawn(channel.run(rx, || {}));
        let mut frames = join_anonymous(&tx).await;
        let ghost = PresenceSnapshot {
            node: "ghost".into(),
            video: VideoId::parse("v").unwrap(),
            viewers: 3,
            members: vec![(
                "u9".into(),
                vec![Meta {
                    phx_ref: "g1".into(),
                    username: "gina".into(),
                    online_at: 0,
                }],
            )],
        };
        tx.send(Command::Presence(ghost)).await.unwrap();
        let mut saw_join = false;
        let mut saw_leave = false;
        let mut counts = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(saw_leave && counts.last() == Some(&1)) {
            assert!(
                Instant::now() < deadline,
                "joins {saw_join} leaves {saw_leave} counts {counts:?}"
            );
            let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(1), frames.recv()).await
            else {
                continue;
            };
            let value: Value = serde_json::from_str(&crate::wire::text_of(&frame)).unwrap();
            match value[3].as_str().unwrap() {
                events::PRESENCE_DIFF => {
                    saw_join |= value[4]["joins"].get("u9").is_some();
                    saw_leave |= value[4]["leaves"].get("u9").is_some();
                }
                events::VIEWER_COUNT => counts.push(value[4]["count"].as_i64().unwrap()),
                _ => {}
            }
        }
        assert!(saw_join, "the other node's member joined");
        assert!(
            counts.contains(&4),
            "1 local + 3 on the other node: {counts:?}"
        );
    }
}
