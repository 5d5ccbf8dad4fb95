//! The `Bus` contract.

use std::sync::Arc;

use banter_core::{AccessChange, Comment, VideoId};
use banter_protocol::payloads::Meta;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

/// A committed change to one comment. `comment.seq` orders creations within a video.
#[derive(Clone, Debug)]
pub struct BusEvent {
    pub kind: ChangeKind,
    pub comment: Comment,
    /// The W3C `traceparent` of the span that produced this event (see `trace`).
    pub trace: Option<String>,
}

impl BusEvent {
    /// An event carrying the current span's trace context.
    pub fn new(kind: ChangeKind, comment: Comment) -> BusEvent {
        BusEvent {
            kind,
            comment,
            trace: crate::trace::current(),
        }
    }
}

/// Receives every event for the topics this node is subscribed to.
pub type BusHandler = Arc<dyn Fn(BusEvent) + Send + Sync>;

/// One node's presence in one video: how many viewers it has and its signed-in members.
/// Nodes publish these as heartbeats; a node absent for the timeout is dropped by receivers.
#[derive(Clone, Debug, PartialEq)]
pub struct PresenceSnapshot {
    /// The publishing node (set by the bus on receipt; ignored on publish).
    pub node: String,
    pub video: VideoId,
    pub viewers: usize,
    /// `(user id, metas)` of signed-in viewers on that node.
    pub members: Vec<(String, Vec<Meta>)>,
}

/// Receives other nodes' presence snapshots for subscribed topics.
pub type PresenceHandler = Arc<dyn Fn(PresenceSnapshot) + Send + Sync>;

/// One node's open sockets, published by every realtime node as a heartbeat so that each knows
/// the cluster's average (for rebalancing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLoad {
    /// The publishing node (set by the bus on receipt; ignored on publish).
    pub node: String,
    pub connections: usize,
    /// The node is shutting down: its sockets are leaving, and it takes no new ones.
    pub draining: bool,
}

/// Receives other nodes' loads.
pub type NodeLoadHandler = Arc<dyn Fn(NodeLoad) + Send + Sync>;

/// Receives every node's committed access changes (this node's own included).
pub type AccessHandler = Arc<dyn Fn(AccessChange) + Send + Sync>;

/// Called when the node's bus connection is back after a loss: whatever was published
/// meanwhile (comments, access changes) may have been missed.
pub type ReconnectHandler = Arc<dyn Fn() + Send + Sync>;

/// Guarantees an implementation must give:
///
/// - `publish` is called only after the change committed, and never blocks the caller.
/// - Delivery is at most once and best effort: events may be lost (a dropped connection) or
///   arrive out of order across publishers. Consumers repair both from the database using
///   `seq`, so an implementation must never invent or alter events.
/// - The handler is called for events of every topic the node subscribed to (`subscribe`),
///   from any thread; it must not block.
pub trait Bus: Send + Sync + 'static {
    fn publish(&self, event: BusEvent);

    /// Registers the node's single handler for incoming events (called once at start-up).
    fn set_handler(&self, handler: BusHandler);

    /// Starts receiving events of `video` (called when the node gets its first viewer of it).
    fn subscribe(&self, video: &str);

    /// Stops receiving events of `video` (called after its last viewer leaves).
    fn unsubscribe(&self, video: &str);

    /// Shares this node's presence in a video with the other nodes (never delivered back to
    /// this node). Best effort, like `publish`.
    fn publish_presence(&self, snapshot: PresenceSnapshot);

    /// Registers the node's handler for other nodes' presence snapshots.
    fn set_presence_handler(&self, handler: PresenceHandler);

    /// Publishes this node's load to every other node (a single node has no one to tell).
    fn publish_load(&self, _load: NodeLoad) {}

    /// Registers the receiver of other nodes' loads.
    fn set_load_handler(&self, _handler: NodeLoadHandler) {}

    /// Tells every node (this one at once, the others through the bus) that access changed,
    /// so each re-checks the sockets it concerns. Called after commit; best effort like
    /// `publish` (a lost one is caught when the socket next joins, refreshes its token or
    /// reaches its token's expiry).
    fn publish_access(&self, change: AccessChange);

    /// Registers the node's handler for access changes (called once at start-up).
    fn set_access_handler(&self, handler: AccessHandler);

    /// Registers what to do when the bus reconnects after a loss (a bus that cannot lose
    /// messages never calls it).
    fn set_reconnect_handler(&self, _handler: ReconnectHandler) {}
}
