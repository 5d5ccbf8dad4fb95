//! The channel of one topic on this node: the state and the handling of each message, owning
//! the topic's subscribers (`Fanout`), its order (`Sequence`) and its presence
//! (`TopicPresence`). It runs inside an actix actor (`channel_actor.rs`: mailbox, timers,
//! supervision), which hands it one message at a time.
//!
//! Messages are handled one at a time, reads included: a join's history is cut at the delivered
//! `seq` while no other message is processed, so what a joiner gets in its reply and what it
//! gets live afterwards meet exactly: no gap, no overlap.
//!
//! A topic over the delivery budget of `budget.rs` holds its comment events for up to [`HOLD`]
//! and sends each run of them as one burst, at once when the slot's sample is complete
//! (nothing more of that slot is sent to everyone); a join first sends what is held, since its
//! history already includes it. Below the budget every event goes out at once, except on a big
//! topic (`RealtimeConfig::big_topic_viewers` viewers on this node), which holds each for up to
//! [`FIRST_HOLD`]: when a flood starts nothing has been skipped yet, and the first slot's
//! comments would otherwise cost every viewer one write each. So a flood costs each viewer one
//! write per slot, and a sample does not wait for the hold to end.
//!
//! Under the budget a topic with many viewers on this node is paced (`pace.rs`): a comment event
//! that comes sooner than one interval after the topic's last write to everyone is held until
//! that interval is over, or until the held events make a batch at the topic's recent rate, and
//! goes in one write with them. A comment after a quiet interval goes at once, so a slow video
//! pays nothing, and a busy one costs each viewer a bounded number of writes a second instead of
//! one per comment (the writes, not the bytes, are what a node runs out of).
//!
//! A `viewer_count` that moved rides with the topic's next broadcast (one write per socket, not
//! two); when nothing is broadcast before the next tick, it goes alone then. So a viewer learns
//! of a moved count within two ticks, and a storm of joins costs no extra write per viewer
//! per tick when comments are flowing.
//!
//! The chat's settings and pinned comment (`chat_state.rs`) are read when the channel starts
//! and again on every chat change of the video and after a bus outage; viewers get what changed
//! as events, and a joiner gets them in its reply.
//!
//! Kept out: the actor (`channel_actor.rs`), ordering and repair (`sequence.rs`), presence
//! bookkeeping (`topic_presence.rs`), encoding and offering frames (`fanout.rs`).

use std::sync::Arc;

use banter_bus::{Bus, BusEvent, ChangeKind, PresenceSnapshot};
use banter_core::{Comment, VideoId};
use banter_protocol::events;
use banter_protocol::payloads;
use banter_store::Store;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::budget::DeliveryBudget;
use crate::chat_state::ChatState;
use crate::fanout::Fanout;
pub(crate) use crate::fanout::Subscriber;
use crate::metrics as m;
use crate::pace::Pace;
use crate::sequence::Sequence;
use crate::topic_presence::TopicPresence;
use crate::{RealtimeConfig, Refusal};
use tracing::Instrument;

pub(crate) struct JoinOk {
    pub response: Value,
    /// Shared by the joins until the members change (`TopicPresence::merged_state`).
    pub presence_state: Arc<Value>,
}

/// Encodes a join's reply frames (the `phx_reply` and `presence_state`) for the joiner's socket.
/// The channel queues them on the socket before it adds the subscriber, so no broadcast can
/// reach the socket ahead of its join reply.
pub(crate) type Announce = Box<dyn FnOnce(&JoinOk) -> Vec<bytes::Bytes> + Send>;

pub(crate) enum Command {
    Join {
        sid: u64,
        subscriber: Subscriber,
        since_seq: Option<i64>,
        /// `None`: the caller sends the reply itself (tests, benches).
        announce: Option<Announce>,
        reply: oneshot::Sender<Result<JoinOk, Refusal>>,
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
    /// The video's chat rules changed: re-read its settings and pinned comment and tell the
    /// viewers what changed.
    ChatChanged,
    /// Panics inside the channel, to test its restart.
    #[cfg(test)]
    Panic,
}

/// While a topic is over the budget, its broadcasts are held and sent together: each socket
/// then takes a slot's marker and sample in one write. They go `HOLD` after the first comment
/// event for everyone was held (so no timer cuts a slot's sample in two), or `HOLD` after the
/// first event for an author when none is for everyone; sooner when the slot's sample is
/// complete.
pub(crate) const HOLD: std::time::Duration = std::time::Duration::from_millis(25);
/// A topic counts as over the budget this long after it last skipped a comment.
const HOT_FOR: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a big topic (`RealtimeConfig::big_topic_viewers`) under the budget holds a comment,
/// so that a flood's first comments go out together: at its start nothing has been skipped
/// yet, and without it every viewer would get one write per comment of the first slot.
pub(crate) const FIRST_HOLD: std::time::Duration = std::time::Duration::from_millis(10);

/// How long a join resuming after a `seq` this node has not delivered yet waits for it to
/// arrive on the bus before the channel reads it from the database instead.
const AHEAD_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// A join that resumes after a `seq` this node has not delivered yet (the viewer saw it on the
/// node it left: a rolling restart, a rebalance). It waits until the channel delivered that
/// far, so that the comments the viewer already has do not reach it again as broadcasts.
struct WaitingJoin {
    sid: u64,
    subscriber: Subscriber,
    since_seq: i64,
    announce: Option<Announce>,
    reply: oneshot::Sender<Result<JoinOk, Refusal>>,
    until: std::time::Instant,
}

/// A broadcast held back while the topic is over its budget, in order.
enum Held {
    Everyone(&'static str, Value),
    /// A skipped comment for its author's sockets only.
    Author(String, Value),
}

pub(crate) struct Channel {
    video: VideoId,
    config: Arc<RealtimeConfig>,
    bus: Arc<dyn Bus>,
    fanout: Fanout,
    sequence: Sequence,
    presence: TopicPresence,
    budget: DeliveryBudget,
    /// Until when the topic is over its budget (see `HOLD`).
    hot_until: Option<std::time::Instant>,
    held: Vec<Held>,
    /// When the oldest event held, and the oldest held for everyone, were held.
    held_since: Option<std::time::Instant>,
    everyone_since: Option<std::time::Instant>,
    /// When comment events last went to everyone, and how many come a second (`pace.rs`).
    pace: Pace,
    /// Presence changes since the last `presence_diff`, merged: a burst of joins is one diff
    /// per `HOLD` instead of one broadcast to every viewer per join.
    presence_diff: Option<Value>,
    last_count_sent: usize,
    /// The count moved at the last tick and has not been sent since: it rides with the next
    /// broadcast, or goes alone at the next tick.
    count_owed: bool,
    /// The last `seq` broadcast to the subscribers: where a restart resumes.
    delivered_seq: i64,
    store: Store,
    /// The chat settings and pinned comment the viewers were last told (`chat_state.rs`);
    /// `None` until read.
    chat: Option<ChatState>,
    /// Joins ahead of this node, waiting for it to catch up (see `WaitingJoin`).
    waiting: Vec<WaitingJoin>,
}

impl Channel {
    pub fn new(
        video: VideoId,
        store: Store,
        config: Arc<RealtimeConfig>,
        bus: Arc<dyn Bus>,
    ) -> Self {
        Self {
            fanout: Fanout::new(format!("comments:{video}")),
            sequence: Sequence::new(video.clone(), store.clone(), config.clone()),
            store,
            chat: None,
            presence: TopicPresence::new(video.clone(), config.clone()),
            budget: DeliveryBudget::new(
                config.max_comments_per_second_per_viewer,
                config.budget_slot,
            ),
            hot_until: None,
            held: Vec::new(),
            held_since: None,
            everyone_since: None,
            pace: Pace::new(
                config.max_writes_per_second_per_viewer,
                config.paced_topic_viewers,
            ),
            presence_diff: None,
            video,
            config,
            bus,
            last_count_sent: 0,
            count_owed: false,
            delivered_seq: 0,
            waiting: Vec::new(),
        }
    }

    pub fn config(&self) -> &RealtimeConfig {
        &self.config
    }

    /// Called on the actor's thread when it starts: how the topic's shards on other workers
    /// report slow consumers.
    pub fn set_report_slow(&mut self, report: crate::shard::ReportSlow) {
        self.fanout.set_report_slow(report);
    }

    /// Reads the topic's tail before the first message is handled.
    pub async fn start(&mut self) {
        self.sequence.load().await;
        self.delivered_seq = self.sequence.last_seq();
        self.refresh_chat().await;
    }

    /// Reads the chat's settings and pinned comment and sends the viewers what changed since
    /// they were last told (nothing the first time: joiners get it in their reply). A failed
    /// read keeps what they know; the next change, catch-up or join reads again.
    async fn refresh_chat(&mut self) {
        let new = match ChatState::read(&self.store, &self.video).await {
            Ok(new) => new,
            Err(e) => {
                tracing::warn!(video = %self.video, error = ?e, "could not read the chat settings");
                return;
            }
        };
        if let Some(old) = &self.chat {
            for (event, payload) in old.changes(&new) {
                self.emit(None, event, payload);
            }
        }
        self.chat = Some(new);
    }

    /// Whether the last subscriber left (the actor then stops).
    pub fn is_idle(&self) -> bool {
        self.fanout.is_empty() && self.waiting.is_empty()
    }

    /// The periodic work: other nodes' expiry, this node's presence heartbeat, the viewer
    /// count, and a retry of a gap that could not be filled.
    pub async fn tick(&mut self) {
        for diff in self.presence.expire() {
            self.queue_presence_diff(diff);
        }
        let waited = self.count_owed;
        self.count_owed = self.total_viewers() != self.last_count_sent;
        // A diff carries the count (members before the count, as a client that lists them
        // expects); a count owed since the last tick goes now, alone.
        self.flush_presence();
        if waited {
            self.send_owed_count();
        }
        self.presence
            .publish_if_due(self.bus.as_ref(), self.fanout.len());
        if let Some(run) = self.budget.flush_due(std::time::Instant::now()) {
            self.emit(None, events::COMMENTS_SKIPPED, run.payload());
        }
        if self.sequence.has_pending() {
            self.catch_up().await;
        }
        self.release_waiting().await;
    }

    /// Completes the waiting joins the channel has caught up with, and those whose wait is
    /// over (their join reads what is missing from the database).
    async fn release_waiting(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        let last = self.sequence.last_seq();
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.since_seq <= last || w.until <= now);
        self.waiting = waiting;
        for w in ready {
            let result = self
                .join(w.sid, w.subscriber, Some(w.since_seq), w.announce)
                .await;
            let _ = w.reply.send(result);
        }
    }

    /// After a panic: the order resumes from the last `seq` sent to the subscribers (the next
    /// catch-up re-reads the tail); subscribers and presence are kept.
    pub fn restart(&mut self) {
        metrics::counter!(m::CHANNEL_RESTARTS).increment(1);
        tracing::error!(video = %self.video, seq = self.delivered_seq, "channel panicked; restarting from the last seq sent");
        self.sequence.resume_after(self.delivered_seq);
    }

    /// The node leaves the topic: the other nodes are told it has no viewers here any more.
    pub fn leave_topic(&mut self) {
        self.presence_diff = None;
        self.fanout.clear();
        self.presence.clear_local();
        self.presence.publish(self.bus.as_ref(), 0);
    }

    pub async fn handle(&mut self, command: Command) {
        match command {
            Command::Join {
                sid,
                subscriber,
                since_seq,
                announce,
                reply,
            } => match since_seq {
                Some(since) if self.sequence.is_loaded() && since > self.sequence.last_seq() => {
                    self.waiting.push(WaitingJoin {
                        sid,
                        subscriber,
                        since_seq: since,
                        announce,
                        reply,
                        until: std::time::Instant::now() + AHEAD_WAIT,
                    });
                }
                _ => {
                    let result = self.join(sid, subscriber, since_seq, announce).await;
                    let _ = reply.send(result);
                }
            },
            Command::Leave { sid } => {
                self.waiting.retain(|w| w.sid != sid);
                self.leave(sid);
            }
            Command::Event(event) => {
                let span = tracing::info_span!(
                    "channel.deliver",
                    otel.kind = "consumer",
                    viewers = self.fanout.len()
                );
                banter_bus::trace::continue_from(&span, event.trace.as_deref());
                self.on_event(event).instrument(span).await;
                self.release_waiting().await;
            }
            Command::Presence(snapshot) => {
                if let Some(diff) = self.presence.on_remote(snapshot) {
                    self.queue_presence_diff(diff);
                }
            }
            Command::CatchUp => {
                self.catch_up().await;
                self.refresh_chat().await;
                self.release_waiting().await;
            }
            Command::ChatChanged => self.refresh_chat().await,
            Command::Recheck => {
                for outq in self.fanout.outqs() {
                    outq.recheck_video(self.video.clone());
                }
            }
            #[cfg(test)]
            Command::Panic => panic!("a bug in the channel"),
        }
    }

    async fn join(
        &mut self,
        sid: u64,
        subscriber: Subscriber,
        since_seq: Option<i64>,
        announce: Option<Announce>,
    ) -> Result<JoinOk, Refusal> {
        if !self.sequence.is_loaded() {
            self.sequence.load().await;
            if !self.sequence.is_loaded() {
                return Err(Refusal::new(
                    banter_protocol::reasons::UNAVAILABLE,
                    "comments are unavailable right now; retrying",
                ));
            }
        }
        if self.chat.is_none() {
            self.refresh_chat().await;
        }
        let caught_up = self.sequence.catch_up_for_join(since_seq).await;
        self.deliver(caught_up);
        // What is held is in the history already: send it before this subscriber joins.
        self.flush_held();
        let (comments, recovered) = self.sequence.history(since_seq).await;
        // A recovery replays within the budget too; what it leaves out is listed in the reply.
        let (comments, skipped) = match (since_seq, self.budget.is_on()) {
            (Some(_), true) => {
                let own = subscriber.member.as_ref().map(|(id, _)| id.clone());
                DeliveryBudget::sample(
                    self.config.max_comments_per_second_per_viewer,
                    self.config.budget_slot,
                    comments,
                    |c| (c.seq, c.created_at),
                    |c| own.as_deref() == Some(c.user_id.to_string().as_str()),
                )
            }
            _ => (comments, Vec::new()),
        };
        // Replace an earlier join of the same session (duplicate join).
        self.leave(sid);
        let member = subscriber.member.clone();
        let phx_ref = subscriber.phx_ref.clone();
        let diff = self.presence.join(member, phx_ref);
        let mut response = json!({
            "comments": comments.iter().map(payloads::comment).collect::<Vec<_>>(),
            "last_seq": self.sequence.last_seq(),
            // This subscriber included: it is added below.
            "viewers": self.total_viewers() + 1,
        });
        let chat = self.chat.clone().unwrap_or_default();
        response["chat_settings"] = chat.settings_payload();
        response["pinned_comment"] = chat.pinned_payload();
        if let Some(recovered) = recovered {
            response["recovered"] = json!(recovered);
        }
        if !skipped.is_empty() {
            response["skipped"] = skipped.iter().map(|run| run.payload()).collect();
        }
        let presence_state = if self.presence.lists_enabled() {
            self.presence.merged_state()
        } else {
            Arc::new(json!({}))
        };
        let ok = JoinOk {
            response,
            presence_state,
        };
        // The reply goes on the socket before the subscriber can be offered any broadcast.
        if let Some(announce) = announce {
            for frame in announce(&ok) {
                subscriber.outq.push_own(frame);
            }
        }
        for slow in self.fanout.insert(sid, subscriber) {
            self.leave(slow);
        }
        metrics::gauge!(m::VIEWERS).increment(1.0);
        if let Some(diff) = diff {
            self.queue_presence_diff(diff);
        }
        Ok(ok)
    }

    fn leave(&mut self, sid: u64) {
        let Some(subscriber) = self.fanout.remove(sid) else {
            return;
        };
        metrics::gauge!(m::VIEWERS).decrement(1.0);
        metrics::counter!(m::LEAVES).increment(1);
        if let Some(diff) = self
            .presence
            .leave(subscriber.member.as_ref(), &subscriber.phx_ref)
        {
            self.queue_presence_diff(diff);
        }
    }

    async fn on_event(&mut self, event: BusEvent) {
        let comment = event.comment;
        match event.kind {
            ChangeKind::Created => {
                let ready = self.sequence.created(comment).await;
                self.deliver(ready);
            }
            ChangeKind::Updated | ChangeKind::Deleted => {
                let caught_up = self.sequence.changed(&comment).await;
                self.deliver(caught_up);
                let name = if event.kind == ChangeKind::Updated {
                    events::COMMENT_UPDATED
                } else {
                    events::COMMENT_DELETED
                };
                self.emit(None, name, payloads::comment(&comment));
            }
        }
    }

    /// Delivers everything committed after the delivered `seq`, read from the primary.
    pub async fn catch_up(&mut self) {
        let caught_up = self.sequence.catch_up().await;
        self.deliver(caught_up);
    }

    /// Broadcasts creations the sequence released, in order, within the delivery budget: a
    /// skipped comment goes to its author only, and the run it is part of is announced before
    /// the next comment sent.
    fn deliver(&mut self, comments: Vec<Comment>) {
        for comment in comments {
            let verdict = self.budget.admit(comment.seq, comment.created_at);
            if verdict.marker.is_some() || !verdict.send {
                self.hot_until = Some(std::time::Instant::now() + HOT_FOR);
            }
            if let Some(run) = verdict.marker {
                self.emit(None, events::COMMENTS_SKIPPED, run.payload());
            }
            let author = (!verdict.send).then(|| comment.user_id.to_string());
            // A skipped comment whose author watches on another node costs nothing here.
            if author
                .as_deref()
                .is_none_or(|user| self.fanout.has_user(user))
            {
                self.emit(author, events::COMMENT_CREATED, payloads::comment(&comment));
            }
            self.delivered_seq = comment.seq;
            // The slot's sample is complete: the rest of the slot goes to authors only.
            if verdict.send && self.budget.slot_full() {
                self.flush_held();
            }
        }
    }

    /// Sends a comment event to everyone (or, `to` a user, to that author's sockets only); held
    /// back while the topic is over its budget (or big), so that the burst goes out together, or
    /// while it is paced (`pace.rs`), until its interval is over or the held make a batch.
    fn emit(&mut self, to: Option<String>, event: &'static str, payload: Value) {
        let now = std::time::Instant::now();
        let holding = self.over_budget(now) || self.is_big();
        let paced = !holding && self.paced_until().is_some_and(|until| now < until);
        let hot = holding || paced;
        if hot {
            self.held_since.get_or_insert(now);
        }
        if to.is_none() {
            self.pace.counted(now);
        }
        match (hot, to) {
            (true, None) => {
                self.everyone_since.get_or_insert(now);
                self.held.push(Held::Everyone(event, payload));
                // Paced only (events for an author alone are held only over the budget): a batch
                // goes without waiting for the interval to end.
                if paced && self.held.len() >= self.pace.batch() {
                    self.flush_held();
                }
            }
            (true, Some(user)) => self.held.push(Held::Author(user, payload)),
            (false, None) => {
                self.flush_held();
                self.pace.wrote(now);
                self.broadcast(event, payload);
            }
            (false, Some(user)) => {
                self.flush_held();
                self.send_to_author(&user, &payload);
            }
        }
    }

    /// Whether creations wait behind a gap (a repair is owed within `sequence::GAP_WAIT`).
    pub fn has_gap(&self) -> bool {
        self.sequence.has_pending()
    }

    /// When what is held is due: the held comment events at [`HOLD`]'s deadline while over the
    /// budget ([`FIRST_HOLD`]'s for a big topic not over it), and for a paced topic not before
    /// its interval is over; a presence diff alone `HOLD` after `now`.
    pub fn due(&self, now: std::time::Instant) -> Option<std::time::Instant> {
        let Some(since) = self.everyone_since.or(self.held_since) else {
            return self.presence_diff.is_some().then_some(now + HOLD);
        };
        let hold = if self.over_budget(now) {
            HOLD
        } else if self.is_big() {
            FIRST_HOLD
        } else {
            std::time::Duration::ZERO
        };
        let due = since + hold;
        match self.paced_until() {
            Some(until) if self.everyone_since.is_some() => Some(due.max(until)),
            _ => Some(due),
        }
    }

    /// Until when a paced topic's next comment event for everyone waits (`Pace::until`).
    fn paced_until(&self) -> Option<std::time::Instant> {
        self.pace.until(self.fanout.len())
    }

    /// Whether the topic skipped a comment within the last [`HOT_FOR`].
    fn over_budget(&self, now: std::time::Instant) -> bool {
        self.hot_until.is_some_and(|until| now < until)
    }

    /// Whether the topic has enough viewers on this node to hold even its first comments.
    fn is_big(&self) -> bool {
        let big = self.config.big_topic_viewers;
        big > 0 && self.budget.is_on() && self.fanout.len() >= big
    }

    /// Sends the merged presence diff, and the held comment events if they are due at `now`.
    pub fn flush_if_due(&mut self, now: std::time::Instant) {
        if self.due(now).is_some_and(|due| due <= now) {
            self.flush_held();
        }
        self.flush_presence();
    }

    fn flush_presence(&mut self) {
        if let Some(diff) = self.presence_diff.take() {
            self.broadcast(events::PRESENCE_DIFF, diff);
        }
    }

    fn queue_presence_diff(&mut self, diff: Value) {
        match &mut self.presence_diff {
            Some(pending) => payloads::merge_presence_diff(pending, diff),
            None => self.presence_diff = Some(diff),
        }
    }

    /// Sends what is held, in order: each run of broadcasts to everyone as one burst.
    pub fn flush_held(&mut self) {
        self.held_since = None;
        if self.everyone_since.take().is_some() {
            self.pace.wrote(std::time::Instant::now());
        }
        let mut burst: Vec<(&'static str, Value)> = Vec::new();
        for held in std::mem::take(&mut self.held) {
            match held {
                Held::Everyone(event, payload) => burst.push((event, payload)),
                Held::Author(user, payload) => {
                    self.send_burst(&mut burst);
                    self.send_to_author(&user, &payload);
                }
            }
        }
        self.send_burst(&mut burst);
    }

    /// Sends `burst` to everyone in one offer per socket, with the owed count last.
    fn send_burst(&mut self, burst: &mut Vec<(&'static str, Value)>) {
        if burst.is_empty() {
            return;
        }
        if let Some(count) = self.take_owed_count() {
            burst.push((events::VIEWER_COUNT, json!({ "count": count })));
        }
        for sid in self.fanout.broadcast_burst(burst) {
            self.leave(sid);
        }
        burst.clear();
    }

    fn send_to_author(&mut self, user: &str, payload: &Value) {
        for sid in self
            .fanout
            .send_to_user(user, events::COMMENT_CREATED, payload)
        {
            self.leave(sid);
        }
    }

    fn total_viewers(&self) -> usize {
        self.fanout.len() + self.presence.remote_viewers()
    }

    /// The count to send if one is owed and it still differs from the last sent (taken: it is
    /// then no longer owed).
    fn take_owed_count(&mut self) -> Option<usize> {
        if !std::mem::take(&mut self.count_owed) {
            return None;
        }
        let count = self.total_viewers();
        (count != self.last_count_sent).then(|| {
            self.last_count_sent = count;
            count
        })
    }

    fn send_owed_count(&mut self) {
        if let Some(count) = self.take_owed_count() {
            for sid in self
                .fanout
                .broadcast(events::VIEWER_COUNT, &json!({ "count": count }))
            {
                self.leave(sid);
            }
        }
    }

    /// Sends to every subscriber, with the owed count if there is one; slow consumers leave the
    /// topic (their sockets are closing).
    fn broadcast(&mut self, event: &'static str, payload: Value) {
        if self.count_owed {
            self.send_burst(&mut vec![(event, payload)]);
            return;
        }
        for sid in self.fanout.broadcast(event, &payload) {
            self.leave(sid);
        }
    }
}

#[cfg(test)]
#[path = "channel_tests.rs"]
mod tests;
