//! `Gateway`: the services this crate borrows from the rest of Banter. `banter-server`
//! implements it with the REST API's own functions, so a comment posted over a socket is
//! validated, rate-limited, committed and published exactly like one posted over REST.

use std::future::Future;
use std::pin::Pin;

use banter_core::{AccessChange, PostOutcome, User, VideoId};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A signed-in viewer: the user and the token they connected with (or refreshed in-band),
/// re-checked when posting, when joining and whenever their access changes, so a deactivated
/// account or revoked device cannot read or post from a socket opened earlier.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub user: User,
    pub token: String,
    /// When `token` expires, in Unix seconds: the socket closes then unless refreshed.
    pub expires_at: i64,
}

/// A refusal with a stable reason code (the REST API's error codes) and a human message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub message: String,
    /// Whole seconds to wait before trying again, where known (rate limits, slow mode,
    /// timeouts); sent as `retry_after` in the error reply.
    pub retry_after: Option<u64>,
}

impl Refusal {
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after = seconds;
        self
    }
}

pub trait Gateway: Send + Sync + 'static {
    /// Verifies an access token (signature, expiry, active user, unrevoked device, live
    /// session). Refusal reasons: `token_expired`, `invalid_token`, or `unavailable` when the
    /// check itself could not be made.
    fn authenticate(&self, token: String) -> BoxFuture<'static, Result<Viewer, Refusal>>;

    /// May this viewer (or an anonymous one) watch this video? Reads the current state: after
    /// `access_changed` no earlier answer may be reused.
    fn check_view(
        &self,
        viewer: Option<User>,
        video: VideoId,
    ) -> BoxFuture<'static, Result<(), Refusal>>;

    /// Validates, checks against the chat's rules, rate-limits, commits and publishes a
    /// comment; returns it as stored, or as held for the video's moderators to review.
    fn post_comment(
        &self,
        viewer: Viewer,
        video: VideoId,
        body: String,
    ) -> BoxFuture<'static, Result<PostOutcome, Refusal>>;

    /// Access changed somewhere in the cluster: forget whatever was cached about it.
    fn access_changed(&self, change: &AccessChange);

    /// Changes may have been missed (the bus was down): forget everything cached about access.
    fn forget_cached_access(&self);
}
