//! `RedisBus`: delivery between nodes through Redis pub/sub. Choose it whenever more than one
//! node serves the same videos. Two transports: one Redis (`connect`, plain PUBLISH/SUBSCRIBE,
//! this file) or a Redis Cluster (`connect_cluster`, sharded SPUBLISH/SSUBSCRIBE, `sharded.rs`);
//! what follows holds for both unless said.
//!
//! - One Redis channel per video (`<prefix>:comments:<video_id>`); a node subscribes only while
//!   it has local viewers of that video, so traffic grows with the videos in use.
//! - A node delivers its own events locally at once and skips them when Redis echoes them back.
//! - One Redis: the subscriber connection reconnects with backoff (100 ms doubling to 5 s) and
//!   resubscribes to every current video. Messages published while it was down are lost here;
//!   channels repair them from the database by `seq` (on the next event, and periodically).
//! - Publishing never blocks the caller: it runs on a task; a failure is logged and, again,
//!   repaired by `seq` on the receiving side.
//! - Access changes go on one channel (`<prefix>:access`) every node always subscribes to;
//!   the publishing node handles its own at once and skips the echo.
//! - When the subscriber connection is back after a loss, the node's reconnect handler runs:
//!   anything published meanwhile was missed here, and the node catches up at once.
//!
//! Bounds: interest changes queue in a bounded channel (1024); when full the change is dropped
//! and logged, and the node keeps its previous interest (extra messages are ignored; missing
//! ones are repaired).

use crate::inbound::{Handlers, Inbound};
use crate::metrics as m;
use crate::trace;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tracing::Instrument;

use crate::sharded::Shards;
use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use banter_core::AccessChange;

use crate::{
    AccessHandler, Bus, BusEvent, BusHandler, NodeLoad, NodeLoadHandler, PresenceHandler,
    PresenceSnapshot, ReconnectHandler, wire,
};

/// A change of the node's interest in one channel, queued to the task that owns subscriptions.
pub(crate) enum Interest {
    Subscribe(String),
    Unsubscribe(String),
}

/// Where publishes go: one Redis, or the shard that owns the channel's slot.
#[derive(Clone)]
enum Publisher {
    Single(ConnectionManager),
    Sharded(Arc<Shards>),
}

impl Publisher {
    async fn publish(&mut self, channel: &str, payload: String) -> redis::RedisResult<()> {
        match self {
            Publisher::Single(c) => c.publish(channel, payload).await,
            Publisher::Sharded(shards) => {
                let result = shards.connection().spublish(channel, payload).await;
                if result.is_err() {
                    // A shard may have failed over: the connection's slot map needs renewing.
                    shards.renew_soon();
                }
                result
            }
        }
    }
}

pub struct RedisBus {
    inbound: Inbound,
    publisher: Publisher,
    interest: mpsc::Sender<Interest>,
    connected: Arc<AtomicBool>,
    runtime: Handle,
}

impl RedisBus {
    /// Connects to one Redis (the first connection must succeed; later outages are survived).
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let publisher = ConnectionManager::new(client.clone()).await?;
        let (interest, rx) = mpsc::channel(1024);
        let bus = Self::new(prefix, Publisher::Single(publisher), interest);
        tokio::spawn(subscriber(
            client,
            bus.inbound.clone(),
            rx,
            bus.connected.clone(),
        ));
        Ok(bus)
    }

    /// Connects to a Redis Cluster through any of its nodes (`redis://host:port` each) and
    /// uses sharded pub/sub: each channel lives on the shard that owns its slot. Needs Redis 7.
    pub async fn connect_cluster(nodes: &[String], prefix: &str) -> anyhow::Result<Self> {
        let (shards, pushes) = Shards::connect(nodes).await?;
        let (interest, interest_rx) = mpsc::channel(1024);
        let bus = Self::new(prefix, Publisher::Sharded(shards.clone()), interest);
        tokio::spawn(crate::sharded::subscriber(
            shards,
            pushes,
            bus.inbound.clone(),
            interest_rx,
            bus.connected.clone(),
        ));
        Ok(bus)
    }

    fn new(prefix: &str, publisher: Publisher, interest: mpsc::Sender<Interest>) -> Self {
        let handlers: Handlers = Arc::new(RwLock::new(Default::default()));
        Self {
            inbound: Inbound {
                node: uuid::Uuid::new_v4().simple().to_string(),
                prefix: prefix.to_owned(),
                handlers,
            },
            publisher,
            interest,
            connected: Arc::new(AtomicBool::new(false)),
            runtime: Handle::current(),
        }
    }

    /// Whether the subscriptions are up (for readiness).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn handlers(&self) -> &Handlers {
        &self.inbound.handlers
    }

    fn deliver_locally(&self, event: BusEvent) {
        let handler = self
            .handlers()
            .read()
            .expect("bus handler lock")
            .events
            .clone();
        if let Some(handler) = handler {
            handler(event);
        }
    }

    fn send(&self, channel: String, payload: String, span: tracing::Span) {
        let mut publisher = self.publisher.clone();
        let publish = async move {
            let started = std::time::Instant::now();
            if let Err(e) = publisher.publish(&channel, payload).await {
                metrics::counter!(m::PUBLISH_FAILURES).increment(1);
                tracing::warn!(error = %e, "redis publish failed; receivers will repair");
            } else {
                metrics::histogram!(m::PUBLISH).record(started.elapsed());
            }
        };
        self.runtime.spawn(publish.instrument(span));
    }
}

impl Bus for RedisBus {
    fn publish(&self, mut event: BusEvent) {
        let channel = self
            .inbound
            .comments_channel(event.comment.video_id.as_ref());
        let span = tracing::info_span!(
            "bus.publish",
            otel.kind = "producer",
            messaging.system = "redis"
        );
        trace::continue_from(&span, event.trace.as_deref());
        event.trace = trace::of(&span).or(event.trace);
        let payload = wire::encode(&self.inbound.node, &event);
        self.deliver_locally(event);
        self.send(channel, payload, span);
    }

    fn set_handler(&self, handler: BusHandler) {
        self.handlers().write().expect("bus handler lock").events = Some(handler);
    }

    fn subscribe(&self, video: &str) {
        for channel in [
            self.inbound.comments_channel(video),
            self.inbound.presence_channel(video),
        ] {
            if self
                .interest
                .try_send(Interest::Subscribe(channel))
                .is_err()
            {
                tracing::warn!("bus interest queue full; subscription dropped");
            }
        }
    }

    fn unsubscribe(&self, video: &str) {
        for channel in [
            self.inbound.comments_channel(video),
            self.inbound.presence_channel(video),
        ] {
            let _ = self.interest.try_send(Interest::Unsubscribe(channel));
        }
    }

    fn publish_presence(&self, snapshot: PresenceSnapshot) {
        let channel = self.inbound.presence_channel(snapshot.video.as_ref());
        self.send(
            channel,
            wire::encode_presence(&self.inbound.node, &snapshot),
            tracing::Span::none(),
        );
    }

    fn set_presence_handler(&self, handler: PresenceHandler) {
        self.handlers().write().expect("bus handler lock").presence = Some(handler);
    }

    fn publish_load(&self, load: NodeLoad) {
        self.send(
            self.inbound.nodes_channel(),
            wire::encode_load(&self.inbound.node, &load),
            tracing::Span::none(),
        );
    }

    fn set_load_handler(&self, handler: NodeLoadHandler) {
        self.handlers().write().expect("bus handler lock").loads = Some(handler);
    }

    fn publish_access(&self, change: AccessChange) {
        let payload = wire::encode_access(&self.inbound.node, &change);
        let handler = self
            .handlers()
            .read()
            .expect("bus handler lock")
            .access
            .clone();
        if let Some(handler) = handler {
            handler(change);
        }
        self.send(
            self.inbound.access_channel(),
            payload,
            tracing::Span::none(),
        );
    }

    fn set_access_handler(&self, handler: AccessHandler) {
        self.handlers().write().expect("bus handler lock").access = Some(handler);
    }

    fn set_reconnect_handler(&self, handler: ReconnectHandler) {
        self.handlers()
            .write()
            .expect("bus handler lock")
            .reconnected = Some(handler);
    }
}

/// One Redis: owns the subscriber connection, reconnecting and resubscribing after a loss.
async fn subscriber(
    client: redis::Client,
    inbound: Inbound,
    mut interest: mpsc::Receiver<Interest>,
    connected: Arc<AtomicBool>,
) {
    // Node loads and access changes are always wanted; video channels come and go with local
    // viewers.
    let mut channels: HashSet<String> =
        HashSet::from([inbound.nodes_channel(), inbound.access_channel()]);
    let mut backoff = Duration::from_millis(100);
    // Whether a connection was up before: the next one may have missed access changes.
    let mut resubscribing = false;
    loop {
        let pubsub = match client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "redis subscriber connection failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let mut ok = true;
        for channel in &channels {
            ok &= sink.subscribe(channel).await.is_ok();
        }
        if !ok {
            continue;
        }
        backoff = Duration::from_millis(100);
        connected.store(true, Ordering::Relaxed);
        tracing::info!(
            prefix = inbound.prefix,
            topics = channels.len(),
            "redis bus subscribed"
        );
        if std::mem::replace(&mut resubscribing, true) {
            inbound.reconnected();
        }
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { break };
                    let Ok(text) = message.get_payload::<String>() else { continue };
                    inbound.receive(message.get_channel_name(), &text);
                }
                change = interest.recv() => {
                    let Some(change) = change else { return };
                    let result = match change {
                        Interest::Subscribe(channel) => {
                            let r = sink.subscribe(&channel).await;
                            channels.insert(channel);
                            r
                        }
                        Interest::Unsubscribe(channel) => {
                            let r = sink.unsubscribe(&channel).await;
                            channels.remove(&channel);
                            r
                        }
                    };
                    if result.is_err() {
                        break;
                    }
                }
            }
        }
        connected.store(false, Ordering::Relaxed);
        metrics::counter!(m::RECONNECTS).increment(1);
        tracing::warn!("redis bus connection lost; reconnecting");
        tokio::time::sleep(backoff).await;
    }
}
