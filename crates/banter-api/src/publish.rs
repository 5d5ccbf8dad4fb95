//! The hook through which REST writes announce committed comment changes to live viewers.
//! It is called after commit, never before, so a viewer can not see a comment that was then
//! rolled back. The realtime layer implements it on top of the bus; without one it is a no-op.

use banter_core::Comment;

#[derive(Clone, Debug)]
pub enum CommentEvent {
    Created(Comment),
    Updated(Comment),
    Deleted(Comment),
}

pub trait CommentPublisher: Send + Sync + 'static {
    /// Hands the event over for delivery. Must not block; delivery is asynchronous.
    fn publish(&self, event: CommentEvent);
}

/// Publishes nowhere (a node with no realtime layer).
pub struct NoopPublisher;

impl CommentPublisher for NoopPublisher {
    fn publish(&self, _event: CommentEvent) {}
}
