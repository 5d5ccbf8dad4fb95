//! `MemoryBus`: delivery within one process. Choose it for a single node (the embedded
//! default); it cannot reach other nodes. Events are handed to the handler synchronously in
//! publish order, which is cheap and keeps the bus itself unbounded-free: the handler is
//! responsible for queuing within its own bounds.

use std::sync::RwLock;

use banter_core::AccessChange;

use crate::{AccessHandler, Bus, BusEvent, BusHandler};

#[derive(Default)]
pub struct MemoryBus {
    handler: RwLock<Option<BusHandler>>,
    access: RwLock<Option<AccessHandler>>,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Bus for MemoryBus {
    fn publish(&self, event: BusEvent) {
        let handler = self.handler.read().expect("bus handler lock").clone();
        if let Some(handler) = handler {
            handler(event);
        }
    }

    fn set_handler(&self, handler: BusHandler) {
        *self.handler.write().expect("bus handler lock") = Some(handler);
    }

    // A single process receives every topic; interest needs no bookkeeping.
    fn subscribe(&self, _video: &str) {}

    fn unsubscribe(&self, _video: &str) {}

    // A single node has no other nodes to share presence with.
    fn publish_presence(&self, _snapshot: crate::PresenceSnapshot) {}

    fn set_presence_handler(&self, _handler: crate::PresenceHandler) {}

    fn publish_access(&self, change: AccessChange) {
        let handler = self.access.read().expect("bus access lock").clone();
        if let Some(handler) = handler {
            handler(change);
        }
    }

    fn set_access_handler(&self, handler: AccessHandler) {
        *self.access.write().expect("bus access lock") = Some(handler);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use banter_core::{Comment, CommentId, UserId, VideoId};
    use time::OffsetDateTime;

    use super::*;
    use crate::ChangeKind;

    fn event(seq: i64) -> BusEvent {
        let now = OffsetDateTime::now_utc();
        BusEvent {
            kind: ChangeKind::Created,
            comment: Comment {
                id: CommentId::generate(),
                video_id: VideoId::parse("v").unwrap(),
                seq,
                user_id: UserId::generate(),
                username: "u".into(),
                body: Some("b".into()),
                created_at: now,
                updated_at: now,
                deleted_at: None,
                author_role: None,
            },
            trace: None,
        }
    }

    #[test]
    fn events_reach_the_handler_in_publish_order() {
        let bus = MemoryBus::new();
        bus.publish(event(0)); // no handler yet: dropped, not queued
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        bus.set_handler(Arc::new(move |e: BusEvent| {
            sink.lock().unwrap().push(e.comment.seq)
        }));
        for seq in 1..=3 {
            bus.publish(event(seq));
        }
        assert_eq!(*seen.lock().unwrap(), vec![1, 2, 3]);
    }
}
