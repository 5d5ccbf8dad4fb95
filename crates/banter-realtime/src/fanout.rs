//! `Fanout`: one topic's local subscribers and the broadcast to all of them.
//!
//! A broadcast is encoded once (`SharedFrame`: the whole WebSocket frame per serializer) and a
//! reference to the same buffer is offered to each subscriber's `Outq`. An offer never waits:
//! a subscriber over its budget is being closed as a slow consumer, and the broadcast returns
//! it so the channel removes it from the topic. The cost per viewer is one mutex-guarded push
//! and, when its queue was empty, one wake-up; the write itself happens on the socket's worker.
//!
//! Kept out: what is broadcast and when (the channel), ordering, presence.

use std::collections::HashMap;
use std::sync::Arc;

use banter_protocol::Vsn;
use serde_json::Value;

use crate::metrics as m;
use crate::outq::Outq;
use crate::wire::SharedFrame;

pub(crate) struct Subscriber {
    /// The socket's outbound queue, and the serializer its frames are encoded with.
    pub outq: Arc<Outq>,
    pub vsn: Vsn,
    /// `(user id, username)` of a signed-in viewer; anonymous viewers are not members.
    pub member: Option<(String, String)>,
    pub phx_ref: String,
}

pub(crate) struct Fanout {
    topic: String,
    subscribers: HashMap<u64, Subscriber>,
}

impl Fanout {
    pub fn new(topic: String) -> Self {
        Self {
            topic,
            subscribers: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.subscribers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
    }

    pub fn insert(&mut self, sid: u64, subscriber: Subscriber) {
        self.subscribers.insert(sid, subscriber);
    }

    pub fn remove(&mut self, sid: u64) -> Option<Subscriber> {
        self.subscribers.remove(&sid)
    }

    pub fn clear(&mut self) {
        self.subscribers.clear();
    }

    pub fn outqs(&self) -> impl Iterator<Item = &Arc<Outq>> {
        self.subscribers.values().map(|s| &s.outq)
    }

    /// Encodes once and offers the shared frame to every subscriber; returns the slow
    /// consumers (their sockets are being closed), still subscribed.
    #[must_use = "slow consumers must leave the topic"]
    pub fn broadcast(&self, event: &'static str, payload: &Value) -> Vec<u64> {
        let started = std::time::Instant::now();
        let frame = SharedFrame::new(&self.topic, event, payload.to_string());
        let slow: Vec<u64> = self
            .subscribers
            .iter()
            .filter(|(_, s)| !s.outq.offer(frame.bytes(s.vsn)))
            .map(|(sid, _)| *sid)
            .collect();
        let delivered = (self.subscribers.len() - slow.len()) as u64;
        metrics::counter!(m::FANOUT_DELIVERIES).increment(delivered);
        metrics::counter!(m::MESSAGES_OUT).increment(delivered);
        metrics::histogram!(m::FANOUT).record(started.elapsed());
        slow
    }
}
