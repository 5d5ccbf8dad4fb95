//! The receiving side shared by both Redis transports: the node's registered handlers and the
//! routing of one received message (channel name and payload) to the right one.
//!
//! Kept out: connections and subscriptions (`redis.rs` for one Redis, `sharded.rs` for a Redis
//! Cluster), and the message encoding (`wire.rs`).

use std::sync::{Arc, RwLock};

use crate::metrics as m;
use crate::{
    AccessHandler, BusHandler, NodeLoadHandler, PresenceHandler, ReconnectHandler, trace, wire,
};

#[derive(Default)]
pub(crate) struct HandlerSet {
    pub events: Option<BusHandler>,
    pub presence: Option<PresenceHandler>,
    pub loads: Option<NodeLoadHandler>,
    pub access: Option<AccessHandler>,
    pub reconnected: Option<ReconnectHandler>,
}

pub(crate) type Handlers = Arc<RwLock<HandlerSet>>;

/// The channel names of one deployment (`prefix`), and what this node does with a message on
/// each. Messages this node published itself (`node`) are skipped: it handled them at once.
#[derive(Clone)]
pub(crate) struct Inbound {
    pub node: String,
    pub prefix: String,
    pub handlers: Handlers,
}

impl Inbound {
    pub fn comments_channel(&self, video: &str) -> String {
        format!("{}:comments:{video}", self.prefix)
    }

    pub fn presence_channel(&self, video: &str) -> String {
        format!("{}:presence:{video}", self.prefix)
    }

    pub fn access_channel(&self) -> String {
        format!("{}:access", self.prefix)
    }

    pub fn nodes_channel(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    fn handlers(&self) -> std::sync::RwLockReadGuard<'_, HandlerSet> {
        self.handlers.read().expect("bus handler lock")
    }

    /// Runs the node's reconnect handler: whatever was published while a connection was down
    /// may have been missed.
    pub fn reconnected(&self) {
        let handler = self.handlers().reconnected.clone();
        if let Some(handler) = handler {
            handler();
        }
    }

    /// Hands one received message to its handler.
    pub fn receive(&self, channel: &str, text: &str) {
        let Some(topic) = channel
            .strip_prefix(self.prefix.as_str())
            .and_then(|c| c.strip_prefix(':'))
        else {
            tracing::warn!(channel, "message on a foreign channel ignored");
            return;
        };
        if topic == "access" {
            match wire::decode_access(text) {
                Some((from, _)) if from == self.node => {}
                Some((_, change)) => {
                    metrics::counter!(m::RECEIVED, "kind" => "access").increment(1);
                    let handler = self.handlers().access.clone();
                    if let Some(handler) = handler {
                        handler(change);
                    }
                }
                None => tracing::warn!("undecodable access change ignored"),
            }
        } else if topic == "nodes" {
            match wire::decode_load(text) {
                Some(load) if load.node == self.node => {}
                Some(load) => {
                    let handler = self.handlers().loads.clone();
                    if let Some(handler) = handler {
                        handler(load);
                    }
                }
                None => tracing::warn!("undecodable node load ignored"),
            }
        } else if topic.starts_with("presence:") {
            match wire::decode_presence(text) {
                Some(snapshot) if snapshot.node == self.node => {}
                Some(snapshot) => {
                    metrics::counter!(m::RECEIVED, "kind" => "presence").increment(1);
                    let handler = self.handlers().presence.clone();
                    if let Some(handler) = handler {
                        handler(snapshot);
                    }
                }
                None => tracing::warn!("undecodable presence message ignored"),
            }
        } else {
            match wire::decode(text) {
                Some((from, _)) if from == self.node => {}
                Some((_, mut event)) => {
                    metrics::counter!(m::RECEIVED, "kind" => "comment").increment(1);
                    let span = tracing::info_span!(
                        "bus.receive",
                        otel.kind = "consumer",
                        messaging.system = "redis"
                    );
                    trace::continue_from(&span, event.trace.as_deref());
                    event.trace = trace::of(&span).or(event.trace);
                    let _entered = span.enter();
                    let handler = self.handlers().events.clone();
                    if let Some(handler) = handler {
                        handler(event);
                    }
                }
                None => tracing::warn!("undecodable bus message ignored"),
            }
        }
    }
}
