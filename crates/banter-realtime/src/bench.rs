//! Benchmark support, not API: drives a real channel actor with in-process subscribers (or
//! loopback sockets) so `benches/fanout.rs` measures the code that runs in production. Call it
//! inside an actix `System`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use banter_bus::{BusEvent, ChangeKind};
use banter_core::{Comment, CommentBody, UserId, VideoId};
use banter_protocol::{Vsn, encode_broadcast, events, payloads};
use banter_store::Store;
use tokio::sync::oneshot;

use crate::RealtimeConfig;
use crate::channel::{Channel, Command, Subscriber};
use crate::channel_actor::ChannelActor;
use crate::conn::Conn;
use crate::outq::{Outq, Receiver, Taken};

/// Where the subscribers' frames go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// Taken off each subscriber's outbound queue in process.
    Queue,
    /// Written to a loopback socket per subscriber by the production write path (one vectored
    /// write of everything queued), and read and decoded by clients on `clients` (another
    /// runtime, so the client's work is not on the measured core).
    Socket,
}

pub struct FanoutReport {
    pub deliveries: u64,
    pub elapsed: Duration,
}

/// Joins `subscribers` viewers to the (empty) channel of `video`, commits `count` comments by
/// `author`, then publishes them as bus events and times until every subscriber has taken
/// every frame off its outbound queue as the bytes it would write. Returns the report and the comments.
pub async fn fanout(
    store: Store,
    video: VideoId,
    author: UserId,
    subscribers: usize,
    count: usize,
    sink: Sink,
    clients: &tokio::runtime::Handle,
) -> (FanoutReport, Vec<Comment>) {
    let config = RealtimeConfig {
        outbox_capacity: count + 64,
        // No viewer_count broadcasts during the run.
        viewer_count_interval: Duration::from_secs(3600),
        repair_interval: Duration::from_secs(3600),
        channel_mailbox: subscribers + count + 16,
        // Every comment its own pass over the subscribers, as before pacing existed.
        max_writes_per_second_per_viewer: 0,
        ..Default::default()
    };

    let channel = Channel::new(
        video.clone(),
        store.clone(),
        Arc::new(config),
        Arc::new(banter_bus::MemoryBus::new()),
    );
    let tx = ChannelActor::start(channel, || {});
    let mut receivers = Vec::with_capacity(subscribers);
    let mut sockets = Vec::new();
    let mut pumped = Vec::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    for sid in 0..subscribers as u64 {
        let outq = Arc::new(Outq::new(count + 64, usize::MAX));
        match sink {
            Sink::Queue => receivers.push(Receiver::new(outq.clone())),
            Sink::Socket => {
                let client = clients
                    .spawn(tokio::net::TcpStream::connect(address))
                    .await
                    .unwrap()
                    .unwrap();
                let (server, _) = listener.accept().await.unwrap();
                let conn = Conn::new(server, bytes::BytesMut::new(), 1 << 16);
                tokio::spawn(pump(outq.clone(), conn));
                pumped.push(outq.clone());
                sockets.push(client);
            }
        }
        let (reply, joined) = oneshot::channel();
        let subscriber = Subscriber {
            outq,
            vsn: Vsn::V2,
            member: None,
            phx_ref: sid.to_string(),
            home: None,
        };
        tx.send(Command::Join {
            sid,
            subscriber,
            since_seq: None,
            announce: None,
            reply,
        })
        .await
        .unwrap();
        assert!(joined.await.unwrap().is_ok(), "join");
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
    let mut drains: Vec<_> = receivers
        .into_iter()
        .map(|mut frames| {
            tokio::spawn(async move {
                let mut bytes = 0usize;
                for _ in 0..expected {
                    let Some(frame) = frames.recv().await else {
                        break;
                    };
                    bytes += frame.len();
                }
                bytes
            })
        })
        .collect();
    drains.extend(
        sockets
            .into_iter()
            .map(|client| clients.spawn(read_frames(client, expected))),
    );
    for comment in &comments {
        let event = BusEvent::new(ChangeKind::Created, comment.clone());
        tx.send(Command::Event(event)).await.unwrap();
    }
    for drain in drains {
        drain.await.unwrap();
    }
    let elapsed = started.elapsed();
    // The pumps end and their sockets close; the channel ends with its last subscriber.
    for outq in pumped {
        outq.close(crate::outq::Close::new(1000, "done"));
    }
    for sid in 0..subscribers as u64 {
        let _ = tx.send(Command::Leave { sid }).await;
    }
    let report = FanoutReport {
        deliveries: (subscribers * expected) as u64,
        elapsed,
    };
    (report, comments)
}

/// The production write path without Phoenix: everything queued goes out in one vectored
/// write; waits for the socket when the kernel's buffer is full.
async fn pump(outq: Arc<Outq>, mut conn: Conn) {
    loop {
        match conn.flush() {
            Ok(flushed) => outq.written(flushed.bytes, flushed.frames),
            Err(_) => return,
        }
        if conn.has_pending() {
            if conn.writable().await.is_err() {
                return;
            }
            continue;
        }
        outq.ready().await;
        if let Some(Taken::Close(_)) = outq.try_take(&mut conn.pending) {
            return;
        }
    }
}

/// A client: reads and decodes `expected` text frames; returns their bytes.
async fn read_frames(mut io: tokio::net::TcpStream, expected: usize) -> usize {
    use actix_codec::Decoder;
    let mut codec = actix_http::ws::Codec::new().client_mode().max_size(1 << 20);
    let mut buf = bytes::BytesMut::with_capacity(64 * 1024);
    let (mut frames, mut bytes) = (0, 0);
    while frames < expected {
        match tokio::io::AsyncReadExt::read_buf(&mut io, &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        while let Ok(Some(actix_http::ws::Frame::Text(text))) = codec.decode(&mut buf) {
            frames += 1;
            bytes += text.len();
        }
    }
    bytes
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
