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
//! - when access changes anywhere in the cluster ([`Rechecks`]), the socket re-authenticates
//!   and/or re-checks the topics concerned: a topic it may no longer watch gets `phx_close`
//!   with `{reason, message}` and stops receiving; a sign-in that ended closes the socket with
//!   4001;
//! - the token's expiry closes the socket with 4002 unless the client sent a fresh token on the
//!   `phoenix` topic (`access_token`), which also re-checks every joined topic.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use banter_core::{Comment, VideoId};
use banter_protocol::reasons::{self, close};
use banter_protocol::{
    Frame, Message, PHOENIX_TOPIC, Payload, Vsn, decode_binary, decode_text, encode_push,
    encode_reply, events,
};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::channel::{Command, JoinError, Subscriber};
use crate::conn::{Conn, Inbound, ReadError};
use crate::gateway::BoxFuture;
use crate::hub::{ChannelHandle, ConnectionGuard, HubInner};
use crate::metrics as names;
use crate::outq::{Outq, Taken};
use crate::recheck::Pending;
use crate::{Refusal, Viewer};
use tracing::Instrument;

/// Posts committing concurrently with the rest of the session's work.
type PendingPosts = FuturesUnordered<BoxFuture<'static, (Message, Result<Comment, Refusal>)>>;

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

/// Why a refused re-authentication ends the socket: 4002 for an expired token, 4001 for a
/// sign-in that ended; `None` when the check itself failed (kept open, checked again later).
fn signed_out(refusal: &Refusal) -> Option<End> {
    match refusal.reason.as_str() {
        reasons::UNAVAILABLE => None,
        "token_expired" => Some(End::Close(
            close::TOKEN_EXPIRED,
            "access token expired: refresh it and reconnect".into(),
        )),
        _ => Some(End::Close(
            close::SIGNED_OUT,
            format!("signed out: {}", refusal.message),
        )),
    }
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

    async fn join(&mut self, m: Message) -> Option<End> {
        let Some(raw_video) = m.topic.strip_prefix("comments:") else {
            return self.unmatched(&m).await;
        };
        let Ok(video) = VideoId::parse(raw_video) else {
            return self.refuse(&m, reasons::INVALID_VIDEO_ID, None).await;
        };
        if !matches!(m.payload.json(), Some(Value::Object(_))) {
            return self
                .refuse(
                    &m,
                    reasons::INVALID_PAYLOAD,
                    Some("the join payload must be a JSON object, e.g. {} or {\"since_seq\": 12}"),
                )
                .await;
        }
        let since_seq = match m.payload.json().and_then(|p| p.get("since_seq")) {
            None | Some(Value::Null) => None,
            Some(v) => match v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(seq) if seq >= 0 => Some(seq),
                _ => {
                    return self
                        .refuse(
                            &m,
                            reasons::INVALID_PAYLOAD,
                            Some("since_seq must be a non-negative integer"),
                        )
                        .await;
                }
            },
        };
        let previous = self.joined.remove(&m.topic);
        if let Some(previous) = &previous {
            leave_channel(&previous.channel, previous.sid);
        }
        if self.joined.len() >= self.hub.config.max_channels_per_socket {
            return self.refuse(&m, reasons::TOO_MANY_CHANNELS, None).await;
        }
        // The token's signature was checked at connect; the account, device and session may
        // have ended since.
        match self.reauthenticate().await {
            Reauth::Ok => {}
            Reauth::Ended(end) => return Some(end),
            Reauth::Failed(refusal) => {
                return self
                    .refuse(&m, &refusal.reason, Some(&refusal.message))
                    .await;
            }
        }
        let user = self.viewer.as_ref().map(|v| v.user.clone());
        if let Err(refusal) = self
            .hub
            .gateway
            .check_view(user.clone(), video.clone())
            .await
        {
            return self
                .refuse(&m, &refusal.reason, Some(&refusal.message))
                .await;
        }
        let sid = self.hub.next_id();
        let result = self.join_channel(&video, sid, since_seq, user).await;
        let (joined_ok, channel) = match result {
            Ok(ok) => ok,
            Err(refusal) => {
                return self
                    .refuse(&m, &refusal.reason, Some(&refusal.message))
                    .await;
            }
        };
        metrics::counter!(names::JOINS, "result" => "ok").increment(1);
        let join_ref = m.join_ref.clone().or_else(|| m.msg_ref.clone());
        if let Some(end) = self
            .reply(&m, join_ref.as_deref(), "ok", joined_ok.response)
            .await
        {
            return Some(end);
        }
        let state = encode_push(
            self.vsn,
            join_ref.as_deref(),
            &m.topic,
            events::PRESENCE_STATE,
            &joined_ok.presence_state,
        );
        if let Some(end) = self.send(state).await {
            return Some(end);
        }
        if let Some(previous) = previous {
            let jr = previous.join_ref.as_deref();
            let close = encode_reply_close(self.vsn, jr, &m.topic);
            if let Some(end) = self.send(close).await {
                return Some(end);
            }
        }
        self.joined.insert(
            m.topic.clone(),
            Joined {
                join_ref,
                sid,
                channel,
            },
        );
        None
    }

    async fn join_channel(
        &mut self,
        video: &VideoId,
        sid: u64,
        since_seq: Option<i64>,
        user: Option<banter_core::User>,
    ) -> Result<(crate::channel::JoinOk, ChannelHandle), Refusal> {
        for _ in 0..3 {
            let channel = self.hub.channel(video);
            let (tx, rx) = oneshot::channel();
            let subscriber = Subscriber {
                outq: self.outq.clone(),
                vsn: self.vsn,
                member: user
                    .as_ref()
                    .map(|u| (u.id.to_string(), u.username.to_string())),
                phx_ref: uuid::Uuid::now_v7().simple().to_string(),
            };
            let command = Command::Join {
                sid,
                subscriber,
                since_seq,
                reply: tx,
            };
            match channel.tx.try_send(command) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => continue,
                Err(mpsc::error::TrySendError::Full(_)) => break,
            }
            match rx.await {
                Ok(Ok(ok)) => return Ok((ok, channel)),
                Ok(Err(JoinError::Refused(refusal))) => return Err(refusal),
                Ok(Err(JoinError::Retry)) | Err(_) => continue,
            }
        }
        Err(Refusal::new(
            reasons::UNAVAILABLE,
            "the channel is busy; retrying",
        ))
    }

    async fn leave(&mut self, m: Message) -> Option<End> {
        match self.joined.get(&m.topic) {
            None => self.reply(&m, m.join_ref.as_deref(), "ok", json!({})).await,
            Some(joined) if m.join_ref.is_some() && m.join_ref != joined.join_ref => None,
            Some(_) => {
                let joined = self.joined.remove(&m.topic).expect("present");
                leave_channel(&joined.channel, joined.sid);
                if let Some(end) = self
                    .reply(&m, joined.join_ref.as_deref(), "ok", json!({}))
                    .await
                {
                    return Some(end);
                }
                let close = encode_reply_close(self.vsn, joined.join_ref.as_deref(), &m.topic);
                self.send(close).await
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

    async fn post_reply(&mut self, m: &Message, result: Result<Comment, Refusal>) -> Option<End> {
        match result {
            Ok(comment) => {
                let payload = json!({ "comment": banter_protocol::payloads::comment(&comment) });
                self.reply(m, m.join_ref.as_deref(), "ok", payload).await
            }
            Err(refusal) => {
                self.refuse(m, &refusal.reason, Some(&refusal.message))
                    .await
            }
        }
    }

    /// Works off queued re-checks: re-authenticates when the account changed (closing the
    /// socket if its sign-in ended), then re-checks the topics concerned, closing each one the
    /// viewer may no longer watch. A check that cannot be made (database down) keeps access as
    /// it was; the next join, refresh or change checks again.
    async fn recheck(&mut self, pending: Pending) -> Option<End> {
        let mut videos: Vec<VideoId> = pending.videos.into_iter().collect();
        if pending.account {
            match self.reauthenticate().await {
                Reauth::Ok => {}
                Reauth::Ended(end) => return Some(end),
                Reauth::Failed(refusal) => {
                    tracing::warn!(reason = %refusal.reason, "access re-check failed; kept as it was");
                }
            }
            videos = self.joined_videos();
        }
        for video in videos {
            let topic = format!("comments:{video}");
            if !self.joined.contains_key(&topic) {
                continue;
            }
            let user = self.viewer.as_ref().map(|v| v.user.clone());
            match self.hub.gateway.check_view(user, video).await {
                Ok(()) => {}
                Err(refusal) if refusal.reason == reasons::UNAVAILABLE => {
                    tracing::warn!("access re-check failed; kept as it was");
                }
                Err(refusal) => {
                    if let Some(end) = self.close_topic(&topic, &refusal).await {
                        return Some(end);
                    }
                }
            }
        }
        None
    }

    /// Checks the socket's token again (an anonymous socket has none to check) and keeps the
    /// fresh viewer it yields, whose role may have changed.
    async fn reauthenticate(&mut self) -> Reauth {
        let Some(viewer) = &self.viewer else {
            return Reauth::Ok;
        };
        match self.hub.gateway.authenticate(viewer.token.clone()).await {
            Ok(fresh) => {
                self.viewer = Some(fresh);
                Reauth::Ok
            }
            Err(refusal) => match signed_out(&refusal) {
                Some(end) => {
                    metrics::counter!(names::ACCESS_REVOKED, "action" => "socket_closed")
                        .increment(1);
                    Reauth::Ended(end)
                }
                None => Reauth::Failed(refusal),
            },
        }
    }

    fn joined_videos(&self) -> Vec<VideoId> {
        self.joined
            .keys()
            .filter_map(|t| t.strip_prefix("comments:"))
            .filter_map(|v| VideoId::parse(v).ok())
            .collect()
    }

    /// Ends this socket's subscription to `topic` from the server side: it leaves the channel
    /// (nothing more is delivered) and the client gets `phx_close` with the reason, which the
    /// stock client treats as final (it does not rejoin).
    async fn close_topic(&mut self, topic: &str, refusal: &Refusal) -> Option<End> {
        let joined = self.joined.remove(topic)?;
        leave_channel(&joined.channel, joined.sid);
        metrics::counter!(names::ACCESS_REVOKED, "action" => "topic_closed").increment(1);
        let jr = joined.join_ref.as_deref();
        let payload = json!({"reason": refusal.reason, "message": refusal.message});
        let frame = encode_close(self.vsn, jr, topic, &payload);
        self.send(frame).await
    }

    /// `access_token` on the `phoenix` topic: swaps in a fresh token of the same account, so
    /// the socket outlives the old token's expiry, and re-checks every joined topic with it.
    async fn refresh_token(&mut self, m: Message) -> Option<End> {
        let token = match &m.payload {
            Payload::Json(Value::Object(map)) => map.get("token").and_then(Value::as_str),
            _ => None,
        };
        let Some(token) = token.map(str::to_owned) else {
            return self
                .refuse(
                    &m,
                    reasons::INVALID_PAYLOAD,
                    Some("expected {\"token\": \"…\"}"),
                )
                .await;
        };
        let Some(current) = self.viewer.as_ref().map(|v| v.user.id) else {
            return self
                .refuse(
                    &m,
                    reasons::WRONG_ACCOUNT,
                    Some("this socket is anonymous: reconnect with the token to sign in"),
                )
                .await;
        };
        let fresh = match self.hub.gateway.authenticate(token).await {
            Ok(fresh) => fresh,
            Err(refusal) => {
                return self
                    .refuse(&m, &refusal.reason, Some(&refusal.message))
                    .await;
            }
        };
        if fresh.user.id != current {
            return self
                .refuse(
                    &m,
                    reasons::WRONG_ACCOUNT,
                    Some("the token is for another account: reconnect to switch accounts"),
                )
                .await;
        }
        let expires_at = fresh.expires_at;
        self.outq.set_expiry(expires_at);
        self.viewer = Some(fresh);
        if let Some(end) = self
            .reply(&m, None, "ok", json!({ "expires_at": expires_at }))
            .await
        {
            return Some(end);
        }
        let videos = self.joined_videos().into_iter().collect();
        self.recheck(Pending {
            account: false,
            videos,
        })
        .await
    }

    fn leave_all(&mut self) {
        for (_, joined) in self.joined.drain() {
            leave_channel(&joined.channel, joined.sid);
        }
    }
}

/// `phx_close` for a channel instance: `[jr, jr, topic, "phx_close", {}]`.
fn encode_reply_close(vsn: Vsn, join_ref: Option<&str>, topic: &str) -> Frame {
    encode_close(vsn, join_ref, topic, &json!({}))
}

/// `phx_close` for a channel instance with a payload: `[jr, jr, topic, "phx_close", payload]`.
fn encode_close(vsn: Vsn, join_ref: Option<&str>, topic: &str, payload: &Value) -> Frame {
    match vsn {
        Vsn::V2 => {
            let jr = join_ref.map_or(Value::Null, |r| Value::String(r.to_owned()));
            Frame::Text(json!([jr, jr, topic, events::CLOSE, payload]).to_string())
        }
        Vsn::V1 => encode_push(vsn, join_ref, topic, events::CLOSE, payload),
    }
}

/// Leaving must not be lost: if the mailbox is full, wait for room on a separate task.
fn leave_channel(channel: &ChannelHandle, sid: u64) {
    if let Err(mpsc::error::TrySendError::Full(command)) =
        channel.tx.try_send(Command::Leave { sid })
    {
        let tx = channel.tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(command).await;
        });
    }
}
