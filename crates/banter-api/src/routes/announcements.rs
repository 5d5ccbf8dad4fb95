//! `POST /api/videos/{video_id}/announcements`: an announcement to a video's viewers, by an
//! API key with the `announce` scope (a backend's "the match starts in 5 minutes") or by the
//! video's moderators. It is a comment by the poster, committed with the next `seq` (so it
//! reaches every viewer live, in order, and after a reconnect), posted with a moderator's
//! standing (slow mode and members-only chat do not hold it), and pinned above the chat.

use actix_web::{HttpResponse, post, web};
use banter_core::{CommentBody, PostOutcome, Role, VideoId};
use banter_store::NewLogEntry;

use crate::auth::Principal;
use crate::dto::{CommentDto, NewCommentRequest};
use crate::json_body::JsonBody;
use crate::moderation::{announce, require_moderator};
use crate::routes::comments::post_comment;
use crate::{ApiError, ApiState};

/// Post an announcement: a comment pinned above the chat (API keys with `announce`, the
/// video's moderators).
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path)),
    request_body = NewCommentRequest,
    responses((status = 201, body = CommentDto), (status = 401), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = []))
)]
#[post("/api/videos/{video_id}/announcements")]
pub async fn create_announcement(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: JsonBody<NewCommentRequest>,
) -> Result<HttpResponse, ApiError> {
    let video = VideoId::parse(&path)?;
    let text = CommentBody::parse(&body.body)?;
    match principal.api_key() {
        // The key's scope was checked when it was presented (`required_scope`).
        Some(_) => {}
        None => {
            require_moderator(&state, &video, &principal.user).await?;
        }
    }
    let mut poster = principal.clone();
    if poster.user.role == Role::User {
        poster.user.role = Role::Moderator;
    }
    let comment = match post_comment(&state, &poster, &video, &text).await? {
        PostOutcome::Committed(comment) => comment,
        PostOutcome::Held(_) => {
            return Err(anyhow::anyhow!("a moderator's announcement was held for review").into());
        }
    };
    let log = NewLogEntry {
        video: Some(&video),
        actor: principal.user.id,
        action: "announce",
        target_user: None,
        target_comment: Some(comment.id),
        reason: None,
        details: "{}".into(),
    };
    state
        .store
        .primary()
        .set_pinned(&video, Some(comment.id), log)
        .await?;
    announce(&state, "announce", Some(&video));
    Ok(HttpResponse::Created().json(CommentDto::from(&comment)))
}
