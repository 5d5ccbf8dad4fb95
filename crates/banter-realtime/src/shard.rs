//! Fan-out shards: the part of one topic's delivery that runs on another worker.
//!
//! A topic's channel runs on one worker, but its viewers' sockets run on all of them. For each
//! other worker that has viewers of the topic, the channel keeps one `Shard`: an ordered queue
//! to a task on that worker, which holds that worker's subscribers and offers each broadcast to
//! them there. So one broadcast costs the channel one queue push per worker instead of one
//! offer (a lock and a cross-thread wake-up) per viewer, and the offers of a hot video run on
//! every core. Each viewer belongs to exactly one shard and each shard's queue is FIFO, so every
//! viewer sees the topic's order.
//!
//! Bounded in offers: a shard may have [`SHARD_QUEUE`] broadcasts queued and not yet offered. A
//! shard that falls that far behind (its worker is saturated) is dropped and its viewers are
//! closed as slow consumers; they reconnect and recover with `since_seq`. Membership changes
//! (a viewer added or removed) do not count: there is at most one of each per join, and a burst
//! of them (half a worker's viewers dropped by a network blip, or rejoining after it) must not
//! close the viewers who stayed.
//!
//! Kept out: which viewers are where (`fanout.rs`), encoding (`wire.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::ThreadId;

use actix_rt::ArbiterHandle;
use banter_protocol::Vsn;
use tokio::sync::mpsc;

use crate::metrics as m;
use crate::outq::Outq;
use crate::wire::SharedFrame;

/// Broadcasts a shard may have queued and not yet offered before it counts as lagging.
pub(crate) const SHARD_QUEUE: usize = 4096;

/// How a shard reports a subscriber it found to be a slow consumer (a leave to the channel).
pub(crate) type ReportSlow = Arc<dyn Fn(u64) + Send + Sync>;

/// Where a socket's task runs: its worker thread and that thread's arbiter.
#[derive(Clone)]
pub(crate) struct Home {
    pub thread: ThreadId,
    arbiter: ArbiterHandle,
}

impl Home {
    /// The current thread, if it runs an actix arbiter (the HTTP workers do).
    pub fn current() -> Option<Home> {
        actix_rt::Arbiter::try_current().map(|arbiter| Home {
            thread: std::thread::current().id(),
            arbiter,
        })
    }
}

pub(crate) enum ShardMessage {
    Add(u64, Arc<Outq>, Vsn),
    Remove(u64),
    Offer(Arc<SharedFrame>),
    /// Offer to these subscribers only (an author's own comment that the budget skipped).
    OfferTo(Vec<u64>, Arc<SharedFrame>),
}

impl ShardMessage {
    /// Whether the message is a broadcast to offer (what counts towards [`SHARD_QUEUE`]).
    fn is_offer(&self) -> bool {
        matches!(self, ShardMessage::Offer(_) | ShardMessage::OfferTo(..))
    }
}

/// The channel's end of one shard.
pub(crate) struct Shard {
    tx: mpsc::UnboundedSender<ShardMessage>,
    /// Offers queued and not yet made (membership changes are not counted).
    offers: Arc<AtomicUsize>,
}

impl Shard {
    /// Starts the shard's task on `home`'s worker; `None` if that worker is gone.
    pub fn start(home: &Home, report_slow: ReportSlow) -> Option<Shard> {
        let (tx, rx) = mpsc::unbounded_channel();
        let offers = Arc::new(AtomicUsize::new(0));
        home.arbiter
            .spawn(run(rx, offers.clone(), report_slow))
            .then_some(Shard { tx, offers })
    }

    /// Queues a message; `false` when the shard lags (an offer with [`SHARD_QUEUE`] offers
    /// already queued) or its worker is gone.
    pub fn send(&self, message: ShardMessage) -> bool {
        if message.is_offer() {
            // Only the channel sends, so the check and the count cannot race another sender.
            if self.offers.load(Ordering::Acquire) >= SHARD_QUEUE {
                return false;
            }
            self.offers.fetch_add(1, Ordering::AcqRel);
        }
        self.tx.send(message).is_ok()
    }
}

/// The shard's task: applies membership changes and offers broadcasts, in queue order. Ends
/// when the channel drops its end.
async fn run(
    mut rx: mpsc::UnboundedReceiver<ShardMessage>,
    offers: Arc<AtomicUsize>,
    report_slow: ReportSlow,
) {
    let mut subscribers: HashMap<u64, (Arc<Outq>, Vsn)> = HashMap::new();
    while let Some(message) = rx.recv().await {
        if message.is_offer() {
            offers.fetch_sub(1, Ordering::AcqRel);
        }
        match message {
            ShardMessage::Add(sid, outq, vsn) => {
                subscribers.insert(sid, (outq, vsn));
            }
            ShardMessage::Remove(sid) => {
                subscribers.remove(&sid);
            }
            ShardMessage::Offer(frame) => {
                let slow: Vec<u64> = subscribers
                    .iter()
                    .filter(|(_, (outq, vsn))| !outq.offer(frame.bytes(*vsn)))
                    .map(|(sid, _)| *sid)
                    .collect();
                count_delivered(((subscribers.len() - slow.len()) * frame.len()) as u64);
                for sid in slow {
                    subscribers.remove(&sid);
                    report_slow(sid);
                }
            }
            ShardMessage::OfferTo(sids, frame) => {
                let mut delivered = 0;
                for sid in sids {
                    let Some((outq, vsn)) = subscribers.get(&sid) else {
                        continue;
                    };
                    if outq.offer(frame.bytes(*vsn)) {
                        delivered += 1;
                    } else {
                        subscribers.remove(&sid);
                        report_slow(sid);
                    }
                }
                count_delivered(delivered);
            }
        }
    }
}

fn count_delivered(delivered: u64) {
    metrics::counter!(m::FANOUT_DELIVERIES).increment(delivered);
    metrics::counter!(m::MESSAGES_OUT).increment(delivered);
}
