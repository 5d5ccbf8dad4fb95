//! `RedisBus`: delivery between nodes through Redis pub/sub. Choose it whenever more than one
//! node serves the same videos.
//!
//! - One Redis channel per video (`<prefix>:comments:<video_id>`); a node subscribes only while
//!   it has local viewers of that video, so traffic grows with the videos in use.
//! - A node delivers its own events locally at once and skips them when Redis echoes them back.
//! - The subscriber connection reconnects with backoff (100 ms doubling to 5 s) and
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

use crate::metrics as m;
use crate::trace;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tracing::Instrument;

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

#[derive(Default)]
struct HandlerSet {
    events: Option<BusHandler>,
    presence: Option<PresenceHandler>,
    loads: Option<NodeLoadHandler>,
    access: Option<AccessHandler>,
    reconnected: Option<ReconnectHandler>,
}

type Handlers = Arc<RwLock<HandlerSet>>;

enum Interest {
    Subscribe(String),
    Unsubscribe(String),
}

pub struct RedisBus {
    node: String,
    prefix: String,
    publisher: ConnectionManager,
    handlers: Handlers,
    interest: mpsc::Sender<Interest>,
    connected: Arc<AtomicBool>,
    runtime: Handle,
}

impl RedisBus {
    /// Connects (the first connection must succeed; later outages are survived).
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let publisher = ConnectionManager::new(client.clone()).await?;
        let handlers: Handlers = Arc::new(RwLock::new(HandlerSet::default()));
        let (interest, rx) = mpsc::channel(1024);
        let connected = Arc::new(AtomicBool::new(false));
        let node = uuid::Uuid::new_v4().simple().to_string();
        tokio::spawn(subscriber(
            client,
            prefix.to_owned(),
            node.clone(),
            handlers.clone(),
            rx,
            connected.clone(),
        ));
        Ok(Self {
            node,
            prefix: prefix.to_owned(),
            publisher,
            handlers,
            interest,
            connected,
            runtime: Handle::current(),
        })
    }

    /// Whether the subscriber connection is up (for readiness).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn channel_name(&self, video: &str) -> String {
        format!("{}:comments:{video}", self.prefix)
    }

    fn presence_channel(&self, video: &str) -> String {
        format!("{}:presence:{video}", self.prefix)
    }

    fn deliver_locally(&self, event: BusEvent) {
        let handler = self
            .handlers
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
            if let Err(e) = publisher.publish::<_, _, ()>(&channel, payload).await {
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
        let channel = self.channel_name(event.comment.video_id.as_ref());
        let span = tracing::info_span!(
            "bus.publish",
            otel.kind = "producer",
            messaging.system = "redis"
        );
        trace::continue_from(&span, event.trace.as_deref());
        event.trace = trace::of(&span).or(event.trace);
        let payload = wire::encode(&self.node, &event);
        self.deliver_locally(event);
        self.send(channel, payload, span);
    }

    fn set_handler(&self, handler: BusHandler) {
        self.handlers.write().expect("bus handler lock").events = Some(handler);
    }

    fn subscribe(&self, video: &str) {
        for channel in [self.channel_name(video), self.presence_channel(video)] {
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
        for channel in [self.channel_name(video), self.presence_channel(video)] {
            let _ = self.interest.try_send(Interest::Unsubscribe(channel));
        }
    }

    fn publish_presence(&self, snapshot: PresenceSnapshot) {
        let channel = self.presence_channel(snapshot.video.as_ref());
        self.send(
            channel,
            wire::encode_presence(&self.node, &snapshot),
            tracing::Span::none(),
        );
    }

    fn set_presence_handler(&self, handler: PresenceHandler) {
        self.handlers.write().expect("bus handler lock").presence = Some(handler);
    }

    fn publish_load(&self, load: NodeLoad) {
        self.send(
            format!("{}:nodes", self.prefix),
            wire::encode_load(&self.node, &load),
            tracing::Span::none(),
        );
    }

    fn set_load_handler(&self, handler: NodeLoadHandler) {
        self.handlers.write().expect("bus handler lock").loads = Some(handler);
    }

    fn publish_access(&self, change: AccessChange) {
        let payload = wire::encode_access(&self.node, &change);
        let handler = self
            .handlers
            .read()
            .expect("bus handler lock")
            .access
            .clone();
        if let Some(handler) = handler {
            handler(change);
        }
        self.send(
            format!("{}:access", self.prefix),
            payload,
            tracing::Span::none(),
        );
    }

    fn set_access_handler(&self, handler: AccessHandler) {
        self.handlers.write().expect("bus handler lock").access = Some(handler);
    }

    fn set_reconnect_handler(&self, handler: ReconnectHandler) {
        self.handlers.write().expect("bus handler lock").reconnected = Some(handler);
    }
}

async fn subscriber(
    client: redis::Client,
    prefix: String,
    node: String,
    handlers: Handlers,
    mut interest: mpsc::Receiver<Interest>,
    connected: Arc<AtomicBool>,
) {
    // Node loads and access changes are always wanted; video channels come and go with local
    // viewers.
    let access_channel = format!("{prefix}:access");
    let mut channels: HashSet<String> =
        HashSet::from([format!("{prefix}:nodes"), access_channel.clone()]);
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
        tracing::info!(prefix, topics = channels.len(), "redis bus subscribed");
        if std::mem::replace(&mut resubscribing, true) {
            let handler = handlers
                .read()
                .expect("bus handler lock")
                .reconnected
                .clone();
            if let Some(handler) = handler {
                handler();
            }
        }
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { break };
                    let Ok(text) = message.get_payload::<String>() else { continue };
                    if message.get_channel_name() == access_channel {
                        match wire::decode_access(&text) {
                            Some((from, _)) if from == node => {}
                            Some((_, change)) => {
                                metrics::counter!(m::RECEIVED, "kind" => "access").increment(1);
                                let handler = handlers.read().expect("bus handler lock").access.clone();
                                if let Some(handler) = handler {
                                    handler(change);
                                }
                            }
                            None => tracing::warn!("undecodable access change ignored"),
                        }
                        continue;
                    }
                    if message.get_channel_name() == format!("{prefix}:nodes") {
                        match wire::decode_load(&text) {
                            Some(load) if load.node == node => {}
                            Some(load) => {
                                let handler = handlers.read().expect("bus handler lock").loads.clone();
                                if let Some(handler) = handler {
                                    handler(load);
                                }
                            }
                            None => tracing::warn!("undecodable node load ignored"),
                        }
                        continue;
                    }
                    if message.get_channel_name().starts_with(&format!("{prefix}:presence:")) {
                        match wire::decode_presence(&text) {
                            Some(snapshot) if snapshot.node == node => {}
                            Some(snapshot) => {
                                metrics::counter!(m::RECEIVED, "kind" => "presence").increment(1);
                                let handler = handlers.read().expect("bus handler lock").presence.clone();
                                if let Some(handler) = handler {
                                    handler(snapshot);
                                }
                            }
                            None => tracing::warn!("undecodable presence message ignored"),
                        }
                        continue;
                    }
                    match wire::decode(&text) {
                        Some((from, _)) if from == node => {}
                        Some((_, mut event)) => {
                            metrics::counter!(m::RECEIVED, "kind" => "comment").increment(1);
                            let span = tracing::info_span!("bus.receive", otel.kind = "consumer", messaging.system = "redis");
                            trace::continue_from(&span, event.trace.as_deref());
                            event.trace = trace::of(&span).or(event.trace);
                            let _entered = span.enter();
                            let handler = handlers.read().expect("bus handler lock").events.clone();
                            if let Some(handler) = handler {
                                handler(event);
                            }
                        }
                        None => tracing::warn!("undecodable bus message ignored"),
                    }
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
