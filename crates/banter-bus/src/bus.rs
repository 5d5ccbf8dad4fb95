//! The `Bus` contract.

use std::sync::Arc;

use banter_core::Comment;

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
}

/// Receives every event for the topics this node is subscribed to.
pub type BusHandler = Arc<dyn Fn(BusEvent) + Send + Sync>;

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
}
