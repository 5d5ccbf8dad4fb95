//! Benchmark support, not API: drives a real channel with in-process subscribers so
//! `benches/fanout.rs` measures the code that runs in production.

use std::sync::Arc;
use std::time::{Duration, Instant};

use banter_bus::{BusEvent, ChangeKind};
use banter_core::{Comment, CommentBody, UserId, VideoId};
use banter_protocol::{Vsn, encode_broadcast, events, payloads};
use banter_store::Store;
use tokio::sync::{mpsc, oneshot};

use crate::RealtimeConfig;
use crate::channel::{Channel, Command, Subscriber};
use crate::outbox::{Outbound, Outbox};

pub struct FanoutReport {
    pub deliveries: u64,
    pub elapsed: Duration,
}

/// Joins `subscribers` viewers to the (empty) channel of `video`, commits `count` comments by
/// `author`, then publishes them as bus events and times until every subscriber has taken
/// every frame off its outbox as the text it would write. Returns the report and the comments.
pub async fn fanout(
    store: Store,
    video: VideoId,
    author: UserId,
    subscribers: usize,
    count: usize,
) -> (FanoutReport, Vec<Comment>) {
    let config = RealtimeConfig {
        outbox_capacity: count + 64,
        // No viewer_count broadcasts during the run.
        viewer_count_interval: Duration::from_secs(3600),
        repair_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    let (tx, rx) = mpsc::channel(subscribers + count + 16);
    let channel = Channel::new(
        video.clone(),
        store.clone(),
        Arc::new(config),
        Arc::new(banter_bus::MemoryBus::new()),
    );
    tokio::spawn(channel.run(rx, || {}));
    let mut receivers = Vec::with_capacity(subscribers);
    for sid in 0..subscribers as u64 {
        let (outbox, frames, _control) = Outbox::new(count + 64);
        let (reply, joined) = oneshot::channel();
        let subscriber = Subscriber {
            rechecks: Default::default(),
            outbox,
            member: None,
            phx_ref: sid.to_string(),
        };
        tx.send(Command::Join {
            sid,
            subscriber,
            since_seq: None,
            reply,
        })
        .await
        .unwrap();
        assert!(joined.await.unwrap().is_ok(), "join");
        receivers.push(frames);
    }
    let mut comments = Vec::with_capacity(count);
    for i in 0..count {
        let body = CommentBody::parse(&format!("comment {i} {}", "x".repeat(120))).expect("valid");
        comments.push(
            store
                .primary()
                .create_comment(&video, author, &body)
                .await
                .expect("commit"),
        );
    }
    let expected = comments.len();
    let started = Instant::now();
    let drains: Vec<_> = receivers
        .into_iter()
        .map(|mut frames| {
            tokio::spawn(async move {
                let mut bytes = 0usize;
                for _ in 0..expected {
                    let Some(Outbound::Shared(frame)) = frames.recv().await else {
                        break;
                    };
                    bytes += frame.text(Vsn::V2).len();
                }
                bytes
            })
        })
        .collect();
    for comment in &comments {
        let event = BusEvent::new(ChangeKind::Created, comment.clone());
        tx.send(Command::Event(event)).await.unwrap();
    }
    for drain in drains {
        drain.await.unwrap();
    }
    let report = FanoutReport {
        deliveries: (subscribers * expected) as u64,
        elapsed: started.elapsed(),
    };
    (report, comments)
}

/// The alternative the channel avoids: serializing the payload and frame once per subscriber.
pub fn serialize_per_subscriber(subscribers: usize, comments: &[Comment]) -> FanoutReport {
    let started = Instant::now();
    let mut bytes = 0usize;
    for comment in comments {
        for _ in 0..subscribers {
            let payload = payloads::comment(comment).to_string();
            let frame =
                encode_broadcast(Vsn::V2, "comments:bench", events::COMMENT_CREATED, &payload);
            bytes += frame.as_text().map_or(0, str::len);
        }
    }
    assert!(bytes > 0);
    FanoutReport {
        deliveries: (subscribers * comments.len()) as u64,
        elapsed: started.elapsed(),
    }
}
