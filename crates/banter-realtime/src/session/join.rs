//! Joining and leaving a topic: the join's checks (topic, payload, `since_seq`, the channel
//! limit, the token, the video), registering with the topic's channel, the reply and
//! `presence_state`, and `phx_close` for a replaced or left channel instance.
//!
//! Kept out: the channel's side of a join (history cut at the delivered `seq`: `channel.rs`).

use banter_core::VideoId;
use banter_protocol::reasons;
use banter_protocol::{Frame, Message, Vsn, encode_push, events};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{End, Joined, Reauth, Session};
use crate::Refusal;
use crate::channel::{Announce, Command, Subscriber};
use crate::hub::ChannelHandle;
use crate::metrics as names;

impl Session {
    pub(super) async fn join(&mut self, m: Message) -> Option<End> {
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
        let join_ref = m.join_ref.clone().or_else(|| m.msg_ref.clone());
        let announce = announce(
            self.vsn,
            join_ref.clone(),
            m.msg_ref.clone(),
            m.topic.clone(),
        );
        let result = self
            .join_channel(&video, sid, since_seq, user, announce)
            .await;
        let (_joined_ok, channel) = match result {
            Ok(ok) => ok,
            Err(refusal) => {
                return self
                    .refuse(&m, &refusal.reason, Some(&refusal.message))
                    .await;
            }
        };
        metrics::counter!(names::JOINS, "result" => "ok").increment(1);
        // The channel queued the reply and presence_state on this socket (see `announce`).
        self.messages_out.increment(2);
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
        announce: impl Fn() -> Announce,
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
                home: crate::shard::Home::current(),
            };
            let command = Command::Join {
                sid,
                subscriber,
                since_seq,
                announce: Some(announce()),
                reply: tx,
            };
            match channel.tx.try_send(command) {
                Ok(()) => {}
                Err(actix::prelude::SendError::Closed(_)) => continue,
                Err(actix::prelude::SendError::Full(_)) => break,
            }
            match rx.await {
                Ok(Ok(ok)) => return Ok((ok, channel)),
                Ok(Err(refusal)) => return Err(refusal),
                // The channel stopped with this join still queued: join its successor.
                Err(_) => continue,
            }
        }
        Err(Refusal::new(
            reasons::UNAVAILABLE,
            "the channel is busy; retrying",
        ))
    }

    pub(super) async fn leave(&mut self, m: Message) -> Option<End> {
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
}

/// A join's reply frames, encoded by the channel when it admits the subscriber (so they are on
/// the socket before any broadcast): `phx_reply` ok with the response, then `presence_state`.
fn announce(
    vsn: Vsn,
    join_ref: Option<String>,
    msg_ref: Option<String>,
    topic: String,
) -> impl Fn() -> Announce {
    move || {
        let (join_ref, msg_ref, topic) = (join_ref.clone(), msg_ref.clone(), topic.clone());
        Box::new(move |ok: &crate::channel::JoinOk| {
            let reply = banter_protocol::encode_reply(
                vsn,
                join_ref.as_deref(),
                msg_ref.as_deref(),
                &topic,
                "ok",
                &ok.response,
            );
            let state = encode_push(
                vsn,
                join_ref.as_deref(),
                &topic,
                events::PRESENCE_STATE,
                &ok.presence_state,
            );
            vec![crate::wire::encode(reply), crate::wire::encode(state)]
        })
    }
}

/// `phx_close` for a channel instance: `[jr, jr, topic, "phx_close", {}]`.
pub(super) fn encode_reply_close(vsn: Vsn, join_ref: Option<&str>, topic: &str) -> Frame {
    encode_close(vsn, join_ref, topic, &json!({}))
}

/// `phx_close` for a channel instance with a payload: `[jr, jr, topic, "phx_close", payload]`.
pub(super) fn encode_close(
    vsn: Vsn,
    join_ref: Option<&str>,
    topic: &str,
    payload: &Value,
) -> Frame {
    match vsn {
        Vsn::V2 => {
            let jr = join_ref.map_or(Value::Null, |r| Value::String(r.to_owned()));
            Frame::Text(json!([jr, jr, topic, events::CLOSE, payload]).to_string())
        }
        Vsn::V1 => encode_push(vsn, join_ref, topic, events::CLOSE, payload),
    }
}

/// Leaving must not be lost: queued even past the mailbox's bound (at most one per
/// subscriber).
pub(super) fn leave_channel(channel: &ChannelHandle, sid: u64) {
    channel.tx.do_send(Command::Leave { sid });
}
