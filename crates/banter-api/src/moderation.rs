//! Who may moderate a video, read fresh from the primary for every moderation action (a
//! permission must see the latest appointments), how an action is announced and counted, and
//! the names of the moderation metrics.
//!
//! Kept out: the checks every post passes (`chat_rules.rs`) and the routes themselves.

use banter_core::{AccessChange, ChatRole, User, Video, VideoId};

use crate::{ApiError, ApiState};

/// Counter of moderation actions taken, by `action`.
pub const MODERATION_ACTIONS_METRIC: &str = "banter_moderation_actions_total";
/// Counter of comments refused before commit, by `reason` (the error code).
pub const COMMENTS_REFUSED_METRIC: &str = "banter_comments_refused_total";
/// Counter of comments committed (REST and socket posts, announcements, approvals excluded).
pub const COMMENTS_COMMITTED_METRIC: &str = "banter_comments_committed_total";
/// Histogram of a post's time from arrival at the API to its answer (committed or refused by
/// the write path), seconds.
pub const COMMENT_ACK_METRIC: &str = "banter_comment_ack_duration_seconds";

/// Every `action` of the log and of `MODERATION_ACTIONS_METRIC`.
pub const MODERATION_ACTIONS: &[&str] = &[
    "appoint_moderator",
    "remove_moderator",
    "ban",
    "timeout",
    "unban",
    "remove_comments",
    "delete_comment",
    "chat_settings",
    "pin",
    "unpin",
    "blocked_terms",
    "approve",
    "reject",
    "announce",
    "api_key",
];

/// The `reason` labels registered at start (any other refusal code adds its own, from the
/// fixed set in `codes`).
pub const REFUSAL_REASONS: &[&str] = &[
    crate::codes::BANNED,
    crate::codes::TIMED_OUT,
    crate::codes::SLOW_MODE,
    crate::codes::MEMBERS_ONLY_CHAT,
    crate::codes::BLOCKED_TERM,
    crate::codes::RATE_LIMITED,
];

/// `video` as it is now (`None`: no row yet) and `user`'s role on it.
pub(crate) async fn role_on(
    state: &ApiState,
    video: &VideoId,
    user: &User,
) -> Result<(Option<Video>, Option<ChatRole>), ApiError> {
    let primary = state.store.primary();
    let found = primary.get_video(video).await?;
    let appointed = match &found {
        Some(_) => primary
            .video_moderators(video)
            .await?
            .iter()
            .any(|(id, _)| *id == user.id),
        None => false,
    };
    let role = ChatRole::of(user, found.as_ref().and_then(|v| v.owner_id), appointed);
    Ok((found, role))
}

/// `user`'s role on `video`, or 403 when they do not moderate it.
pub(crate) async fn require_moderator(
    state: &ApiState,
    video: &VideoId,
    user: &User,
) -> Result<(Option<Video>, ChatRole), ApiError> {
    match role_on(state, video, user).await? {
        (found, Some(role)) => Ok((found, role)),
        (_, None) => Err(ApiError::Forbidden(
            "only the video's moderators may do this".into(),
        )),
    }
}

/// After a moderation action committed: counts it and tells every node that `video`'s chat
/// rules changed (`None`: the site's).
pub(crate) fn announce(state: &ApiState, action: &'static str, video: Option<&VideoId>) {
    metrics::counter!(MODERATION_ACTIONS_METRIC, "action" => action).increment(1);
    state.publisher.access_changed(match video {
        Some(video) => AccessChange::Chat(video.clone()),
        None => AccessChange::SiteChat,
    });
}
