//! The hook through which REST writes announce committed changes to live viewers: comment
//! changes, and changes of access (an account, session, role, visibility or membership) that
//! every node must re-check its open sockets against. It is called after commit, never
//! before, so a viewer can not see a comment that was then rolled back, and a re-check always
//! reads the new state. The realtime layer implements it on top of the bus; without one it is
//! a no-op.

use banter_core::{AccessChange, Comment};

#[derive(Clone, Debug)]
pub enum CommentEvent {
    Created(Comment),
    Updated(Comment),
    Deleted(Comment),
}

pub trait CommentPublisher: Send + Sync + 'static {
    /// Hands the event over for delivery. Must not block; delivery is asynchronous.
    fn publish(&self, event: CommentEvent);

    /// Announces a committed change of access. Must not block.
    fn access_changed(&self, change: AccessChange);
}

/// Publishes nowhere (a node with no realtime layer).
pub struct NoopPublisher;

impl CommentPublisher for NoopPublisher {
    fn publish(&self, _event: CommentEvent) {}

    fn access_changed(&self, _change: AccessChange) {}
}
