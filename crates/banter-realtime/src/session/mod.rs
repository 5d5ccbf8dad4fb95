//! One task per WebSocket connection: reads frames, answers heartbeats, joins and leaves
//! channels, posts comments, and writes everything queued for the connection.
//!
//! Rules, per `phoenix-protocol.md`: refs are echoed as the client's strings; a message for a
//! topic not joined gets `unmatched topic` with a null join_ref; a message with a stale
//! join_ref is dropped silently; a duplicate join replaces the old one and closes it with the
//! old join_ref; a frame that is not a Phoenix message closes the socket with 1002 and a reason.
//!
//! Access holds for as long as the socket is open, not just at connect time:
//! - every join re-authenticates a signed-in socket's token (account active, device and session
//!   alive) before checking the video;
//! - when access changes anywhere in the cluster (`Rechecks`), the socket re-authenticates
//!   and/or re-checks the topics concerned: a topic it may no longer watch gets `phx_close`
//!   with `{reason, message}` and stops receiving; a sign-in that ended closes the socket with
//!   4001;
//! - the token's expiry closes the socket with 4002 unless the client sent a fresh token on the
//!   `phoenix` topic (`access_token`), which also re-checks every joined topic.
//!
//! Here: the loop, dispatch, limits and posting; `join.rs`: joining and leaving topics;
//! `access.rs`: re-authentication, re-checks and the in-band token refresh.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use banter_core::{PostOutcome, VideoId};
use banter_protocol::reasons::{self, close};
use banter_protocol::{
    Frame, Message, PHOENIX_TOPIC, Payload, Vsn, decode_binary, decode_text, encode_reply, events,
};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Value, json};

use crate::conn::{Conn, Inbound, ReadError};
use crate::gateway::BoxFuture;
use crate::hub::{ChannelHandle, ConnectionGuard, HubInner};
use crate::metrics as names;
use crate::outq::{Outq, Taken};
use crate::{Refusal, Viewer};
use join::leave_channel;
use tracing::Instrument;

mod access;
mod join;

/// Posts committing concurrently with the rest of the session's work.
type PendingPosts = FuturesUnordered<BoxFuture<'static, (Message, Result<PostOutcome, Refusal>)>>;

/// A session with this many posts in flight stops reading until one completes (back-pressure
/// to the client through TCP).
const MAX_POSTS_IN_FLIGHT: usize = 32;

/// How long a closed socket may take to read the rest of its frames and the close frame.
const CLIENT_CLOSE_LINGER: Duration = Duration::from_secs(2);

struct Joined {
    join_ref: Option<String>,
    sid: u64,
    channel: ChannelHandle,
}

/// What re-checking the socket's token found.
enum Reauth {
    Ok,
    /// The sign-in ended: the socket closes with this.
    Ended(End),
    /// The check could not be made; access stays as it was.
    Failed(Refusal),
}

/// Why the loop ended, and what to tell the client.
enum End {
    Close(u16, String),
    /// The client sent a Close frame: answer it with the same code (RFC 6455 §5.5.1).
    ClosedByClient(Option<actix_http::ws::CloseReason>),
    Gone,
}

pub(crate) struct Session {
    hub: Arc<HubInner>,
    vsn: Vsn,
    viewer: Option<Viewer>,
    outq: Arc<Outq>,
    joined: HashMap<String, Joined>,
    window_start: Instant,
    window_count: u32,
    posts: PendingPosts,
    messages_in: metrics::Counter,
    messages_out: metrics::Counter,
}

/// Drives one upgraded connection until it closes. The task holds no timer: the hub's sweep
/// closes idle sockets and expired tokens, and shutdown and drain close sockets through their
/// [`Outq`].
pub(crate) async fn run(
    hub: Arc<HubInner>,
    vsn: Vsn,
    viewer: Option<Viewer>,
    mut conn: Conn,
    guard: ConnectionGuard,
) {
    let outq = Arc::new(Outq::new(
        hub.config.outbox_capacity,
        hub.config.outbox_bytes,
    ));
    outq.touch(hub.now_secs());
    metrics::gauge!(names::CONNECTIONS).increment(1.0);
    let user_id = viewer.as_ref().map(|v| v.user.id);
    if let Some(viewer) = &viewer {
        outq.set_expiry(viewer.expires_at);
    }
    let mut session = Session {
        hub,
        vsn,
        viewer,
        outq: outq.clone(),
        joined: HashMap::new(),
        window_start: Instant::now(),
        window_count: 0,
        posts: FuturesUnordered::new(),
        messages_in: metrics::counter!(names::MESSAGES_IN),
        messages_out: metrics::counter!(names::MESSAGES_OUT),
    };
    let session_id = session.hub.next_id();
    session.hub.register_session(
        session_id,
        crate::registry::SessionEntry {
            outq: outq.clone(),
            user: user_id,
        },
    );
    let mut inbound = Vec::new();
    let end = 'session: {
        // A client may send its first frame in the handshake's packet.
        if let Err(e) = conn.decode_buffered(&mut inbound) {
            break 'session read_end(e);
        }
        loop {
            for message in inbound.drain(..) {
                outq.touch(session.hub.now_secs());
                if let Some(end) = Box::pin(session.on_message(message)).await {
                    break 'session end;
                }
            }
            // Everything queued is written as one vectored write before waiting again.
            match conn.flush() {
                Ok(flushed) => outq.written(flushed.bytes, flushed.frames),
                Err(_) => break 'session End::Gone,
            }
            tokio::select! {
                biased;
                () = outq.ready() => {
                    if let Some(Taken::Close(close)) = outq.try_take(&mut conn.pending) {
                        if close.finish_posts {
                            Box::pin(session.finish_posts()).await;
                        }
                        break 'session End::Close(close.code, close.reason);
                    }
                    if let Some(pending) = outq.take_rechecks()
                        && let Some(end) = Box::pin(session.recheck(pending)).await
                    {
                        break 'session end;
                    }
                }
                ready = conn.writable(), if conn.has_pending() => {
                    if ready.is_err() {
                        break 'session End::Gone;
                    }
                }
                Some((message, result)) = session.posts.next(), if !session.posts.is_empty() => {
                    if let Some(end) = Box::pin(session.post_reply(&message, result)).await {
                        break 'session end;
                    }
                }
                ready = conn.readable(), if session.posts.len() < MAX_POSTS_IN_FLIGHT => {
                    if let Err(e) = ready.map_err(ReadError::Io).and_then(|()| conn.read(&mut inbound)) {
                        break 'session read_end(e);
                    }
                }
            }
        }
    };
    session.leave_all();
    session.hub.unregister_session(session_id);
    metrics::gauge!(names::CONNECTIONS).decrement(1.0);
    drop(guard);
    let linger = match end {
        End::Gone => return,
        End::ClosedByClient(reason) => {
            // Echo the client's code and reason (1000 if it gave none) so its close handshake
            // completes.
            let (code, text) = reason.map_or((1000, None), |r| (u16::from(r.code), r.description));
            outq.take_rest(&mut conn.pending);
            conn.pending.push_back(crate::wire::close(
                code,
                text.as_deref().unwrap_or_default(),
            ));
            CLIENT_CLOSE_LINGER
        }
        End::Close(code, reason) => {
            tracing::debug!(code, reason, "closing socket");
            metrics::counter!(names::CLOSES, "code" => code.to_string()).increment(1);
            if reason == crate::outq::SLOW_CONSUMER {
                metrics::counter!(names::SLOW_CONSUMERS).increment(1);
                conn.drop_unstarted();
            } else {
                outq.take_rest(&mut conn.pending);
            }
            conn.pending.push_back(crate::wire::close(code, &reason));
            session.hub.config.idle_timeout
        }
    };
    // Boxed: the close's state is allocated only while a socket closes.
    Box::pin(conn.finish(linger)).await;
}

fn read_end(error: ReadError) -> End {
    match error {
        ReadError::Eof => End::Gone,
        ReadError::Io(e) => {
            tracing::debug!(error = %e, "socket read failed");
            End::Gone
        }
        ReadError::TooBig => End::Close(close::TOO_BIG, "frame too large".into()),
        ReadError::Protocol(reason) => End::Close(close::PROTOCOL, reason),
    }
}

impl Session {
    fn push(&mut self, frame: bytes::Bytes) -> Option<End> {
        // Broadcasts are counted by their channel, once per broadcast.
        self.messages_out.increment(1);
        self.outq.push_own(frame);
        None
    }

    async fn send(&mut self, frame: Frame) -> Option<End> {
        self.push(crate::wire::encode(frame))
    }

    async fn reply(
        &mut self,
        m: &Message,
        join_ref: Option<&str>,
        status: &str,
        response: Value,
    ) -> Option<End> {
        let frame = encode_reply(
            self.vsn,
            join_ref,
            m.msg_ref.as_deref(),
            &m.topic,
            status,
            &response,
        );
        self.send(frame).await
    }

    async fn refuse(&mut self, m: &Message, reason: &str, message: Option<&str>) -> Option<End> {
        if m.event == events::JOIN {
            metrics::counter!(names::JOINS, "result" => "error").increment(1);
        }
        let mut response = json!({ "reason": reason });
        if let Some(message) = message {
            response["message"] = json!(message);
        }
        self.reply(m, m.join_ref.as_deref(), "error", response)
            .await
    }

    /// `unmatched topic`, with a null join_ref as Phoenix sends it.
    async fn unmatched(&mut self, m: &Message) -> Option<End> {
        self.reply(
            m,
            None,
            "error",
            json!({"reason": reasons::UNMATCHED_TOPIC}),
        )
        .await
    }

    async fn on_message(&mut self, message: Inbound) -> Option<End> {
        self.messages_in.increment(1);
        let decoded = match message {
            Inbound::Text(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => decode_text(self.vsn, text),
                Err(_) => {
                    return Some(End::Close(
                        close::INVALID_DATA,
                        "a text frame that is not UTF-8".into(),
                    ));
                }
            },
            Inbound::Binary(bytes) => decode_binary(self.vsn, &bytes),
            Inbound::Ping(bytes) => return self.push(crate::wire::pong(bytes)),
            Inbound::Pong => return None,
            Inbound::Close(reason) => return Some(End::ClosedByClient(reason)),
        };
        let message = match decoded {
            Ok(message) => message,
            Err(e) => return Some(End::Close(close::PROTOCOL, format!("malformed frame: {e}"))),
        };
        if let Some(end) = self.count_message() {
            return Some(end);
        }
        if self.window_count > self.hub.config.max_messages_per_second {
            return self
                .refuse(&message, reasons::TOO_MANY_MESSAGES, Some("slow down"))
                .await;
        }
        self.dispatch(message).await
    }

    /// Counts a message in the current one-second window; a flood far above the limit closes.
    fn count_message(&mut self) -> Option<End> {
        if self.window_start.elapsed() >= Duration::from_secs(1) {
            self.window_start = Instant::now();
            self.window_count = 0;
        }
        self.window_count += 1;
        (self.window_count > self.hub.config.max_messages_per_second.saturating_mul(4))
            .then(|| End::Close(close::POLICY, "message flood".into()))
    }

    async fn dispatch(&mut self, m: Message) -> Option<End> {
        if m.topic == PHOENIX_TOPIC {
            return match m.event.as_str() {
                events::HEARTBEAT => self.reply(&m, None, "ok", json!({})).await,
                events::ACCESS_TOKEN => self.refresh_token(m).await,
                _ => self.unmatched(&m).await,
            };
        }
        match m.event.as_str() {
            events::JOIN => self.join(m).await,
            events::LEAVE => self.leave(m).await,
            _ => {
                let Some(joined) = self.joined.get(&m.topic) else {
                    return self.unmatched(&m).await;
                };
                if m.join_ref.is_some() && m.join_ref != joined.join_ref {
                    return None; // stale: dropped silently
                }
                match m.event.as_str() {
                    events::NEW_COMMENT => self.new_comment(m).await,
                    _ => {
                        self.refuse(
                            &m,
                            reasons::UNKNOWN_EVENT,
                            Some("this channel does not handle that event"),
                        )
                        .await
                    }
                }
            }
        }
    }

    async fn new_comment(&mut self, m: Message) -> Option<End> {
        let Some(viewer) = self.viewer.clone() else {
            return self
                .refuse(&m, reasons::UNAUTHORIZED, Some("sign in to post comments"))
                .await;
        };
        let body = match &m.payload {
            Payload::Json(Value::Object(map)) => {
                map.get("body").and_then(Value::as_str).map(str::to_owned)
            }
            _ => None,
        };
        let Some(body) = body else {
            return self
                .refuse(
                    &m,
                    reasons::INVALID_PAYLOAD,
                    Some("expected {\"body\": \"…\"}"),
                )
                .await;
        };
        let video = VideoId::parse(m.topic.trim_start_matches("comments:"))
            .expect("joined topics are valid");
        // Committing takes a database round trip; meanwhile the session keeps writing what
        // the topic broadcasts, so a fast poster is never mistaken for a slow consumer.
        // The comment's trace starts here (as a REST request's starts at its HTTP span).
        let span = tracing::info_span!("socket.new_comment", otel.kind = "server");
        let post = self
            .hub
            .gateway
            .post_comment(viewer, video, body)
            .instrument(span);
        self.posts.push(Box::pin(async move { (m, post.await) }));
        None
    }

    /// Before a drain closes the socket: lets the comments already being written commit and
    /// answers them, so a poster is never left without a reply (at most 5 s).
    async fn finish_posts(&mut self) {
        let finish = async {
            while let Some((message, result)) = self.posts.next().await {
                if self.post_reply(&message, result).await.is_some() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), finish).await;
    }

    async fn post_reply(
        &mut self,
        m: &Message,
        result: Result<PostOutcome, Refusal>,
    ) -> Option<End> {
        match result {
            Ok(PostOutcome::Committed(comment)) => {
                let payload = json!({ "comment": banter_protocol::payloads::comment(&comment) });
                self.reply(m, m.join_ref.as_deref(), "ok", payload).await
            }
            Ok(PostOutcome::Held(held)) => {
                let payload =
                    json!({ "held_comment": banter_protocol::payloads::held_comment(&held) });
                self.reply(m, m.join_ref.as_deref(), "ok", payload).await
            }
            Err(refusal) => {
                let mut response = json!({ "reason": refusal.reason, "message": refusal.message });
                if let Some(seconds) = refusal.retry_after {
                    response["retry_after"] = json!(seconds);
                }
                self.reply(m, m.join_ref.as_deref(), "error", response)
                    .await
            }
        }
    }

    fn leave_all(&mut self) {
        for (_, joined) in self.joined.drain() {
            leave_channel(&joined.channel, joined.sid);
        }
    }
}
