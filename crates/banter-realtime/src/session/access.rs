//! Access that holds while a socket is open: re-authentication, re-checks of joined topics
//! when access changes anywhere in the cluster, closing a topic the viewer may no longer watch,
//! and the in-band `access_token` refresh.
//!
//! Kept out: when re-checks are owed (`recheck.rs`, queued through the socket's `Outq`), the
//! checks themselves (the `Gateway`).

use banter_core::VideoId;
use banter_protocol::reasons::{self, close};
use banter_protocol::{Message, Payload};
use serde_json::{Value, json};

use super::join::{encode_close, leave_channel};
use super::{End, Reauth, Session};
use crate::Refusal;
use crate::metrics as names;
use crate::recheck::Pending;

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

impl Session {
    /// Works off queued re-checks: re-authenticates when the account changed (closing the
    /// socket if its sign-in ended), then re-checks the topics concerned, closing each one the
    /// viewer may no longer watch. A check that cannot be made (database down) keeps access as
    /// it was; the next join, refresh or change checks again.
    pub(super) async fn recheck(&mut self, pending: Pending) -> Option<End> {
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
    pub(super) async fn reauthenticate(&mut self) -> Reauth {
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

    pub(super) fn joined_videos(&self) -> Vec<VideoId> {
        self.joined
            .keys()
            .filter_map(|t| t.strip_prefix("comments:"))
            .filter_map(|v| VideoId::parse(v).ok())
            .collect()
    }

    /// Ends this socket's subscription to `topic` from the server side: it leaves the channel
    /// (nothing more is delivered) and the client gets `phx_close` with the reason, which the
    /// stock client treats as final (it does not rejoin).
    pub(super) async fn close_topic(&mut self, topic: &str, refusal: &Refusal) -> Option<End> {
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
    pub(super) async fn refresh_token(&mut self, m: Message) -> Option<End> {
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
}
