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
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError};
use banter_core::{Comment, VideoId};
use banter_protocol::reasons::{self, close};
use banter_protocol::{
    Frame, Message, PHOENIX_TOPIC, Payload, Vsn, decode_binary, decode_text, encode_push,
    encode_reply, events,
};
use bytestring::ByteString;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::channel::{Command, JoinError, Subscriber};
use crate::gateway::BoxFuture;
use crate::hub::{ChannelHandle, ConnectionGuard, Drain, HubInner};
use crate::metrics as names;
use crate::outbox::{Control, Outbound, Outbox};
use crate::recheck::{Pending, Rechecks};
use crate::{Refusal, Viewer};
use tracing::Instrument;

/// Posts committing concurrently with the rest of the session's work.
type PendingPosts = FuturesUnordered<BoxFuture<'static, (Message, Result<Comment, Refusal>)>>;

/// A session with this many posts in flight stops reading until one completes (back-pressure
/// to the client through TCP).
const MAX_POSTS_IN_FLIGHT: usize = 32;

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
    ClosedByClient(Option<CloseReason>),
    Gone,
}

pub(crate) struct Session {
    hub: Arc<HubInner>,
    vsn: Vsn,
    viewer: Option<Viewer>,
    ws: actix_ws::Session,
    outbox: Outbox,
    joined: HashMap<String, Joined>,
    window_start: Instant,
    window_count: u32,
    posts: PendingPosts,
    messages_in: metrics::Counter,
    messages_out: metrics::Counter,
    rechecks: Arc<Rechecks>,
    /// Fires when the signed-in viewer's token expires (`None`: anonymous).
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// When a token that expires at `unix_secs` expires, on the runtime's clock.
fn deadline(unix_secs: i64) -> tokio::time::Instant {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let left = u64::try_from(unix_secs.saturating_sub(now)).unwrap_or(0);
    tokio::time::Instant::now() + Duration::from_secs(left)
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

pub(crate) async fn run(
    hub: Arc<HubInner>,
    vsn: Vsn,
    viewer: Option<Viewer>,
    ws: actix_ws::Session,
    mut stream: AggregatedMessageStream,
    _guard: ConnectionGuard,
) {
    let (outbox, mut rx, control) = Outbox::new(hub.config.outbox_capacity);
    metrics::gauge!(names::CONNECTIONS).increment(1.0);
    let idle_timeout = hub.config.idle_timeout;
    let rechecks = Arc::new(Rechecks::default());
    let user_id = viewer.as_ref().map(|v| v.user.id);
    let expiry = viewer
        .as_ref()
        .map(|v| Box::pin(tokio::time::sleep_until(deadline(v.expires_at))));
    let mut session = Session {
        hub,
        vsn,
        viewer,
        ws: ws.clone(),
        outbox,
        joined: HashMap::new(),
        window_start: Instant::now(),
        window_count: 0,
        posts: FuturesUnordered::new(),
        messages_in: metrics::counter!(names::MESSAGES_IN),
        messages_out: metrics::counter!(names::MESSAGES_OUT),
        rechecks: rechecks.clone(),
        expiry,
    };
    let mut shutdown = session.hub.shutdown.subscribe();
    let mut draining = session.hub.draining.subscribe();
    let session_id = session.hub.next_id();
    session.hub.register_session(
        session_id,
        crate::hub::SessionEntry {
            control: control.clone(),
            rechecks: rechecks.clone(),
            user: user_id,
        },
    );
    let mut last_inbound = Instant::now();
    // A quarter of the timeout (at most 5 s): precise enough for a 60 s timeout, and 10k idle
    // sockets cost 2k timer wake-ups a second instead of 10k.
    let check_every = (idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut idle_check = tokio::time::interval(check_every);
    let end = loop {
        tokio::select! {
            biased;
            (code, reason) = closed(&control) => break End::Close(code, reason),
            _ = shutdown.wait_for(|down| *down) => break End::Close(close::RESTART, "server restarting".into()),
            _ = drain_turn(&mut draining, session_id) => {
                session.finish_posts().await;
                break End::Close(close::RESTART, "server draining".into());
            }
            // Output first: what is queued for the client is written before more is read.
            Some(outbound) = rx.recv() => {
                if session.write(outbound).await.is_err() {
                    break End::Gone;
                }
            }
            () = expired(&mut session.expiry) => {
                metrics::counter!(names::ACCESS_REVOKED, "action" => "socket_closed").increment(1);
                break End::Close(close::TOKEN_EXPIRED, "access token expired: refresh it and reconnect".into());
            }
            pending = rechecks.next() => {
                if let Some(end) = session.recheck(pending).await {
                    break end;
                }
            }
            Some((message, result)) = session.posts.next(), if !session.posts.is_empty() => {
                if let Some(end) = session.post_reply(&message, result).await {
                    break end;
                }
            }
            message = stream.recv(), if session.posts.len() < MAX_POSTS_IN_FLIGHT => {
                last_inbound = Instant::now();
                match message {
                    None => break End::Gone,
                    Some(Ok(message)) => {
                        if let Some(end) = session.on_message(message).await {
                            break end;
                        }
                    }
                    Some(Err(ProtocolError::Overflow)) => {
                        break End::Close(close::TOO_BIG, "frame too large".into());
                    }
                    Some(Err(e)) => break End::Close(close::PROTOCOL, format!("websocket protocol error: {e}")),
                }
            }
            _ = idle_check.tick() => {
                if last_inbound.elapsed() >= idle_timeout {
                    break End::Close(close::IDLE, "idle timeout".into());
                }
            }
        }
    };
    session.leave_all();
    session.hub.unregister_session(session_id);
    metrics::gauge!(names::CONNECTIONS).decrement(1.0);
    if let End::ClosedByClient(reason) = end {
        // Echo the client's code (1000 if it gave none) so its close handshake completes.
        let echo = reason.map(|r| CloseReason {
            code: r.code,
            description: r.description,
        });
        let _ = ws
            .close(echo.or(Some(CloseReason::from(CloseCode::Normal))))
            .await;
        return;
    }
    if let End::Close(code, reason) = end {
        tracing::debug!(code, reason, "closing socket");
        metrics::counter!(names::CLOSES, "code" => code.to_string()).increment(1);
        if reason == crate::outbox::SLOW_CONSUMER {
            metrics::counter!(names::SLOW_CONSUMERS).increment(1);
        }
        let _ = ws
            .close(Some(CloseReason {
                code: CloseCode::from(code),
                description: Some(reason),
            }))
            .await;
    }
}

/// Completes when the node is draining and this socket's batch is due.
async fn drain_turn(draining: &mut tokio::sync::watch::Receiver<Option<Drain>>, session_id: u64) {
    let drain: Option<Drain> = match draining.wait_for(Option::is_some).await {
        Ok(current) => *current,
        Err(_) => None,
    };
    match drain {
        Some(drain) => tokio::time::sleep_until(drain.turn_of(session_id)).await,
        None => std::future::pending().await,
    }
}

async fn closed(control: &Arc<Control>) -> (u16, String) {
    control.closed().await
}

/// Completes when the token expires; never for an anonymous socket.
async fn expired(expiry: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match expiry {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

impl Session {
    async fn write(&mut self, outbound: Outbound) -> Result<(), actix_ws::Closed> {
        self.messages_out.increment(1);
        match outbound {
            Outbound::Shared(frame) => self.ws.text(frame.text(self.vsn)).await,
        }
    }

    async fn send(&mut self, frame: Frame) -> Option<End> {
        self.messages_out.increment(1);
        let result = match frame {
            Frame::Text(text) => self.ws.text(ByteString::from(text)).await,
            Frame::Binary(bytes) => self.ws.binary(bytes).await,
        };
        result.err().map(|_| End::Gone)
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

    async fn on_message(&mut self, message: AggregatedMessage) -> Option<End> {
        self.messages_in.increment(1);
        let decoded = match message {
            AggregatedMessage::Text(text) => decode_text(self.vsn, &text),
            AggregatedMessage::Binary(bytes) => decode_binary(self.vsn, &bytes),
            AggregatedMessage::Ping(bytes) => {
                return self.ws.pong(&bytes).await.err().map(|_| End::Gone);
            }
            AggregatedMessage::Pong(_) => return None,
            AggregatedMessage::Close(reason) => return Some(End::ClosedByClient(reason)),
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
                outbox: self.outbox.clone(),
                rechecks: self.rechecks.clone(),
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
        if let Some(expiry) = &mut self.expiry {
            expiry.as_mut().reset(deadline(expires_at));
        }
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
