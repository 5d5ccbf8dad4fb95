//! `Fanout`: one topic's subscribers on this node and the broadcast to all of them.
//!
//! A broadcast is encoded once (`SharedFrame`: the whole WebSocket frame per serializer) and a
//! reference to the same buffer is offered to each subscriber's `Outq`: here for subscribers
//! whose socket runs on the channel's own worker, and through that worker's shard
//! (`shard.rs`) for the others, so a hot video's offers run on every core. An offer never
//! waits: a subscriber over its budget is being closed as a slow consumer and leaves the
//! topic. The cost per viewer is one mutex-guarded push and, when its queue was empty, one
//! wake-up of its socket on the same thread; the write itself happens on the socket's worker.
//!
//! Kept out: what is broadcast and when (the channel), ordering, presence.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread::ThreadId;

use banter_protocol::Vsn;
use serde_json::Value;

use crate::metrics as m;
use crate::outq::{Close, Outq, SLOW_CONSUMER};
use crate::shard::{Home, ReportSlow, Shard, ShardMessage};
use crate::wire::SharedFrame;

pub(crate) struct Subscriber {
    /// The socket's outbound queue, and the serializer its frames are encoded with.
    pub outq: Arc<Outq>,
    pub vsn: Vsn,
    /// `(user id, username)` of a signed-in viewer; anonymous viewers are not members.
    pub member: Option<(String, String)>,
    pub phx_ref: String,
    /// The worker the socket runs on; `None` (or the channel's own): offered to directly.
    pub home: Option<Home>,
}

pub(crate) struct Fanout {
    topic: String,
    /// The channel's thread: its subscribers are offered to in place.
    own: ThreadId,
    subscribers: HashMap<u64, Subscriber>,
    /// The subscribers offered to in place (on the channel's own thread, or of unknown home).
    local: HashSet<u64>,
    /// The subscribers held by a live shard, and that shard's worker.
    remote: HashMap<u64, ThreadId>,
    /// One shard per other worker with subscribers, and how many it holds.
    shards: HashMap<ThreadId, (Shard, usize)>,
    /// Signed-in subscribers by user id, for what only its author is sent.
    by_user: HashMap<String, Vec<u64>>,
    report_slow: Option<ReportSlow>,
}

impl Fanout {
    pub fn new(topic: String) -> Self {
        Self {
            topic,
            own: std::thread::current().id(),
            subscribers: HashMap::new(),
            local: HashSet::new(),
            remote: HashMap::new(),
            shards: HashMap::new(),
            by_user: HashMap::new(),
            report_slow: None,
        }
    }

    /// Called on the channel's thread once it runs: how shards report slow consumers. Until
    /// then every subscriber is offered to in place.
    pub fn set_report_slow(&mut self, report: ReportSlow) {
        self.own = std::thread::current().id();
        self.report_slow = Some(report);
    }

    pub fn len(&self) -> usize {
        self.subscribers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
    }

    /// Adds a subscriber; one on another worker goes to that worker's shard. Returns the
    /// subscribers closed as slow consumers because a shard lagged (see `shard.rs`).
    #[must_use = "slow consumers must leave the topic"]
    pub fn insert(&mut self, sid: u64, subscriber: Subscriber) -> Vec<u64> {
        let home = subscriber
            .home
            .clone()
            .filter(|home| home.thread != self.own);
        let add = ShardMessage::Add(sid, subscriber.outq.clone(), subscriber.vsn);
        if let Some((user, _)) = &subscriber.member {
            self.by_user.entry(user.clone()).or_default().push(sid);
        }
        self.subscribers.insert(sid, subscriber);
        let (Some(home), Some(report)) = (home, &self.report_slow) else {
            self.local.insert(sid);
            return Vec::new();
        };
        let thread = home.thread;
        let entry = match self.shards.entry(thread) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(vacant) => {
                match Shard::start(&home, report.clone()) {
                    Some(shard) => vacant.insert((shard, 0)),
                    None => {
                        // The worker is gone (the node is stopping): offer in place.
                        self.local.insert(sid);
                        return Vec::new();
                    }
                }
            }
        };
        let (shard, members) = entry;
        *members += 1;
        self.remote.insert(sid, thread);
        if shard.send(add) {
            Vec::new()
        } else {
            self.drop_shard(thread)
        }
    }

    pub fn remove(&mut self, sid: u64) -> Option<Subscriber> {
        let subscriber = self.subscribers.remove(&sid)?;
        self.local.remove(&sid);
        if let Some((user, _)) = &subscriber.member
            && let Some(sids) = self.by_user.get_mut(user)
        {
            sids.retain(|s| *s != sid);
            if sids.is_empty() {
                self.by_user.remove(user);
            }
        }
        if let Some(thread) = self.remote.remove(&sid)
            && let Some((shard, members)) = self.shards.get_mut(&thread)
        {
            *members -= 1;
            if *members == 0 {
                self.shards.remove(&thread); // its task ends with its queue
            } else if !shard.send(ShardMessage::Remove(sid)) {
                // Lagging: its subscribers are closed, and leave as their sockets end.
                let _ = self.drop_shard(thread);
            }
        }
        Some(subscriber)
    }

    pub fn clear(&mut self) {
        self.subscribers.clear();
        self.local.clear();
        self.remote.clear();
        self.shards.clear();
        self.by_user.clear();
    }

    pub fn outqs(&self) -> impl Iterator<Item = &Arc<Outq>> {
        self.subscribers.values().map(|s| &s.outq)
    }

    /// Forgets a lagging shard; returns its subscribers, closed as slow consumers (they get
    /// nothing more and leave the topic).
    fn drop_shard(&mut self, thread: ThreadId) -> Vec<u64> {
        self.shards.remove(&thread);
        let sids: Vec<u64> = self
            .remote
            .iter()
            .filter(|(_, t)| **t == thread)
            .map(|(sid, _)| *sid)
            .collect();
        for sid in &sids {
            self.remote.remove(sid);
            if let Some(s) = self.subscribers.get(sid) {
                s.outq.close(slow_consumer());
            }
        }
        tracing::warn!(
            topic = %self.topic,
            viewers = sids.len(),
            "a fan-out shard fell behind; its viewers are closed as slow consumers"
        );
        sids
    }

    /// Encodes once, offers the shared frame to the local subscribers and hands it to each
    /// shard; returns the slow consumers found here (their sockets are being closed), still
    /// subscribed. Shards report theirs to the channel themselves.
    #[must_use = "slow consumers must leave the topic"]
    pub fn broadcast(&mut self, event: &'static str, payload: &Value) -> Vec<u64> {
        self.offer_all(SharedFrame::new(&self.topic, event, payload.to_string()))
    }

    /// Like `broadcast`, for several broadcasts at once: one buffer of consecutive frames, so
    /// each socket takes the burst in one offer and one write.
    #[must_use = "slow consumers must leave the topic"]
    pub fn broadcast_burst(&mut self, items: &[(&'static str, Value)]) -> Vec<u64> {
        let items = items
            .iter()
            .map(|(event, payload)| (*event, payload.to_string()))
            .collect();
        self.offer_all(SharedFrame::burst(&self.topic, items))
    }

    fn offer_all(&mut self, frame: Arc<SharedFrame>) -> Vec<u64> {
        let started = std::time::Instant::now();
        let mut slow: Vec<u64> = self
            .local
            .iter()
            .filter(|sid| {
                self.subscribers
                    .get(sid)
                    .is_some_and(|s| !s.outq.offer(frame.bytes(s.vsn)))
            })
            .copied()
            .collect();
        let delivered = ((self.local.len() - slow.len()) * frame.len()) as u64;
        let lagging: Vec<ThreadId> = self
            .shards
            .iter()
            .filter(|(_, (shard, _))| !shard.send(ShardMessage::Offer(frame.clone())))
            .map(|(thread, _)| *thread)
            .collect();
        for thread in lagging {
            slow.extend(self.drop_shard(thread));
        }
        metrics::counter!(m::FANOUT_DELIVERIES).increment(delivered);
        metrics::counter!(m::MESSAGES_OUT).increment(delivered);
        metrics::histogram!(m::FANOUT).record(started.elapsed());
        slow
    }

    /// Whether any subscriber here is signed in as `user`.
    pub fn has_user(&self, user: &str) -> bool {
        self.by_user.contains_key(user)
    }

    /// Sends to the subscribers signed in as `user` only, in order with every broadcast (a
    /// subscriber on another worker is offered to by that worker's shard, behind what it
    /// already queued). Returns the slow consumers found here, as `broadcast` does.
    #[must_use = "slow consumers must leave the topic"]
    pub fn send_to_user(&mut self, user: &str, event: &'static str, payload: &Value) -> Vec<u64> {
        let Some(sids) = self.by_user.get(user) else {
            return Vec::new();
        };
        let frame = SharedFrame::new(&self.topic, event, payload.to_string());
        let mut slow = Vec::new();
        let mut by_shard: HashMap<ThreadId, Vec<u64>> = HashMap::new();
        for sid in sids {
            if let Some(thread) = self.remote.get(sid) {
                by_shard.entry(*thread).or_default().push(*sid);
            } else if let Some(s) = self.subscribers.get(sid) {
                if s.outq.offer(frame.bytes(s.vsn)) {
                    metrics::counter!(m::FANOUT_DELIVERIES).increment(1);
                    metrics::counter!(m::MESSAGES_OUT).increment(1);
                } else {
                    slow.push(*sid);
                }
            }
        }
        for (thread, sids) in by_shard {
            let sent = self
                .shards
                .get(&thread)
                .is_some_and(|(shard, _)| shard.send(ShardMessage::OfferTo(sids, frame.clone())));
            if !sent {
                slow.extend(self.drop_shard(thread));
            }
        }
        slow
    }
}

fn slow_consumer() -> Close {
    Close::new(banter_protocol::reasons::close::POLICY, SLOW_CONSUMER)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::shard::SHARD_QUEUE;

    /// A worker kept busy (a storm's writes, say) until `release` is sent: its shards cannot run.
    async fn busy_worker() -> (actix_rt::Arbiter, Home, std::sync::mpsc::Sender<()>) {
        let worker = actix_rt::Arbiter::new();
        let (home_tx, home_rx) = tokio::sync::oneshot::channel();
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        worker.spawn(async move {
            let _ = home_tx.send(Home::current());
            let _ = blocked.recv();
        });
        (worker, home_rx.await.unwrap().unwrap(), release)
    }

    fn subscriber(outq: &Arc<Outq>, home: Option<Home>) -> Subscriber {
        Subscriber {
            outq: outq.clone(),
            vsn: Vsn::V2,
            member: None,
            phx_ref: "r".into(),
            home,
        }
    }

    #[actix_rt::test]
    async fn a_subscriber_on_another_worker_is_offered_to_by_that_workers_shard() {
        let worker = actix_rt::Arbiter::new();
        let (home_tx, home_rx) = tokio::sync::oneshot::channel();
        worker.spawn(async move {
            let _ = home_tx.send(Home::current());
        });
        let home = home_rx.await.unwrap().unwrap();
        let reported = Arc::new(Mutex::new(Vec::new()));
        let mut fanout = Fanout::new("comments:v".into());
        let sink = reported.clone();
        fanout.set_report_slow(Arc::new(move |sid| sink.lock().unwrap().push(sid)));
        let here = Arc::new(Outq::new(8, 1 << 20));
        let there = Arc::new(Outq::new(8, 1 << 20));
        let slow = Arc::new(Outq::new(1, 1 << 20));
        assert!(fanout.insert(1, subscriber(&here, None)).is_empty());
        assert!(
            fanout
                .insert(2, subscriber(&there, Some(home.clone())))
                .is_empty()
        );
        assert!(fanout.insert(3, subscriber(&slow, Some(home))).is_empty());
        assert_eq!(
            (fanout.local.len(), fanout.shards.len()),
            (1, 1),
            "one shard for 2 and 3"
        );
        for i in 0..3 {
            let slow_here = fanout.broadcast("comment_created", &serde_json::json!({ "seq": i }));
            assert!(slow_here.is_empty());
        }
        let mut frames = crate::outq::Receiver::new(there.clone());
        for i in 0..3 {
            let frame = tokio::time::timeout(std::time::Duration::from_secs(5), frames.recv())
                .await
                .unwrap()
                .unwrap();
            assert!(crate::wire::text_of(&frame).contains(&format!("\"seq\":{i}")));
        }
        // The shard closed the slow one and reported it, on its own worker.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(*reported.lock().unwrap(), vec![3]);
        assert!(slow.is_closing());
        // Leaving the last of a shard's subscribers ends it.
        fanout.remove(2);
        fanout.remove(3);
        assert!(fanout.shards.is_empty());
        worker.stop();
    }

    #[actix_rt::test]
    async fn a_burst_of_joins_and_leaves_does_not_make_a_shard_lag() {
        let (worker, home, release) = busy_worker().await;
        let reported = Arc::new(Mutex::new(Vec::new()));
        let mut fanout = Fanout::new("comments:v".into());
        let sink = reported.clone();
        fanout.set_report_slow(Arc::new(move |sid| sink.lock().unwrap().push(sid)));
        let stays = Arc::new(Outq::new(8, 1 << 20));
        assert!(
            fanout
                .insert(0, subscriber(&stays, Some(home.clone())))
                .is_empty()
        );
        // More joins, then leaves, than the shard's queue holds offers.
        let burst = SHARD_QUEUE as u64 + 100;
        let mut gone = Vec::new();
        for sid in 1..=burst {
            let outq = Arc::new(Outq::new(8, 1 << 20));
            assert!(
                fanout
                    .insert(sid, subscriber(&outq, Some(home.clone())))
                    .is_empty(),
                "join {sid} made the shard lag"
            );
            gone.push(outq);
        }
        for sid in 1..=burst {
            fanout.remove(sid);
        }
        assert_eq!(fanout.shards.len(), 1, "the shard was kept");
        assert!(
            fanout
                .broadcast("comment_created", &serde_json::json!({ "seq": 1 }))
                .is_empty()
        );
        release.send(()).unwrap();
        let mut frames = crate::outq::Receiver::new(stays.clone());
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), frames.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(crate::wire::text_of(&frame).contains("\"seq\":1"));
        assert!(!stays.is_closing(), "the viewer who stayed was not closed");
        assert!(reported.lock().unwrap().is_empty());
        worker.stop();
    }

    #[actix_rt::test]
    async fn a_shard_with_a_full_queue_of_offers_closes_its_viewers() {
        let (worker, home, release) = busy_worker().await;
        let mut fanout = Fanout::new("comments:v".into());
        fanout.set_report_slow(Arc::new(|_| {}));
        let viewer = Arc::new(Outq::new(8, 1 << 20));
        assert!(fanout.insert(1, subscriber(&viewer, Some(home))).is_empty());
        for seq in 0..SHARD_QUEUE {
            let slow = fanout.broadcast("comment_created", &serde_json::json!({ "seq": seq }));
            assert!(slow.is_empty(), "offer {seq} fits in the queue");
        }
        let slow = fanout.broadcast("comment_created", &serde_json::json!({ "seq": -1 }));
        assert_eq!(slow, vec![1], "one offer too many: the shard lags");
        assert!(viewer.is_closing());
        assert!(fanout.shards.is_empty());
        release.send(()).unwrap();
        worker.stop();
    }
}
