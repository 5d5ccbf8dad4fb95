//! Who may read and post on a video: anyone for public videos; the owner for private ones; the
//! owner and members for members-only ones. Admins and moderators see everything.
//! The realtime layer applies the same rule to channel joins and re-checks.
//!
//! The inputs (visibility, owner, membership) are read on the primary: a replica may still show
//! a video as public, or a viewer as a member, moments after that ended.

use banter_core::{User, Video, VideoId, Visibility};
use banter_store::PrimaryPool;

use crate::auth::MaybePrincipal;
use crate::{ApiError, ApiState, codes};

/// Why a viewer may not see a video.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// Anonymous viewer on a restricted video: signing in may help.
    SignInRequired,
    /// Signed in, but neither owner nor member.
    NotAllowed,
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::SignInRequired => {
                ApiError::unauthorized(codes::UNAUTHENTICATED, "this video is private: sign in")
            }
            Denied::NotAllowed => ApiError::Forbidden("this video is private".into()),
        }
    }
}

/// Checks `viewer` against `video` (`None`: the video does not exist yet, so it is public).
/// `video` must have been read on the primary too.
pub async fn check_view(
    primary: &PrimaryPool,
    video: Option<&Video>,
    viewer: Option<&User>,
) -> Result<Result<(), Denied>, ApiError> {
    let Some(video) = video else {
        return Ok(Ok(()));
    };
    if video.visibility == Visibility::Public {
        return Ok(Ok(()));
    }
    let Some(viewer) = viewer else {
        return Ok(Err(Denied::SignInRequired));
    };
    if viewer.role.can_moderate() || video.owner_id == Some(viewer.id) {
        return Ok(Ok(()));
    }
    if video.visibility == Visibility::Members && primary.is_member(&video.id, viewer.id).await? {
        return Ok(Ok(()));
    }
    Ok(Err(Denied::NotAllowed))
}

/// The video with this raw id as it is now (`None`: no row yet), if `viewer` may see it: the
/// prelude of every public read about a video.
pub(crate) async fn visible_video(
    state: &ApiState,
    viewer: &MaybePrincipal,
    raw: &str,
) -> Result<(VideoId, Option<Video>), ApiError> {
    let id = VideoId::parse(raw)?;
    let primary = state.store.primary();
    let video = primary.get_video(&id).await?;
    check_view(primary, video.as_ref(), viewer.0.as_ref().map(|p| &p.user)).await??;
    Ok((id, video))
}
