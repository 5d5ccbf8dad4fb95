//! `/api/videos/{video_id}/held-comments`: the comments held for review on a video (those that
//! matched a blocked term while it holds rather than refuses them), for its moderators to
//! approve or reject. An approved comment is committed then, like any new comment: it takes the
//! video's next `seq` and reaches viewers live.

use actix_web::{HttpResponse, delete, get, post, web};
use banter_core::{CommentBody, CommentId, VideoId};
use banter_store::NewLogEntry;

use crate::auth::Principal;
use crate::dto::{CommentDto, HeldCommentDto, HeldCommentsList};
use crate::moderation::{MODERATION_ACTIONS_METRIC, require_moderator};
use crate::publish::CommentEvent;
use crate::{ApiError, ApiState};

/// The comments held for review on a video, oldest first (its moderators).
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path)),
    responses((status = 200, body = HeldCommentsList), (status = 401), (status = 403)),
    security(("bearer" = []))
)]
#[get("/api/videos/{video_id}/held-comments")]
pub async fn list_held(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let video = VideoId::parse(&path)?;
    require_moderator(&state, &video, &principal.user).await?;
    let held = state.store.primary().held_comments(&video).await?;
    Ok(HttpResponse::Ok().json(HeldCommentsList {
        held_comments: held.iter().map(HeldCommentDto::from).collect(),
    }))
}

/// Takes a held comment off the queue, logged as `action`; 404 when it is not held.
async fn take(
    state: &ApiState,
    principal: &Principal,
    raw: &str,
    id: uuid::Uuid,
    action: &'static str,
) -> Result<banter_core::HeldComment, ApiError> {
    let video = VideoId::parse(raw)?;
    require_moderator(state, &video, &principal.user).await?;
    let id = CommentId::from_uuid(id);
    let held = state
        .store
        .primary()
        .take_held_comment(
            &video,
            id,
            NewLogEntry {
                video: Some(&video),
                actor: principal.user.id,
                action,
                target_user: None,
                target_comment: Some(id),
                reason: None,
                details: "{}".into(),
            },
        )
        .await?
        .ok_or_else(|| ApiError::NotFound("no such held comment".into()))?;
    metrics::counter!(MODERATION_ACTIONS_METRIC, "action" => action).increment(1);
    Ok(held)
}

/// Approve a held comment (the video's moderators): it is committed now and takes the next `seq`.
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path), ("comment_id" = uuid::Uuid, Path)),
    responses((status = 201, body = CommentDto), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = []))
)]
#[post("/api/videos/{video_id}/held-comments/{comment_id}/approve")]
pub async fn approve_held(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<(String, uuid::Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (raw, id) = path.into_inner();
    let held = take(&state, &principal, &raw, id, "approve").await?;
    let body = CommentBody::parse(&held.body)?;
    let primary = state.store.primary();
    let comment = match primary
        .create_comment(&held.video_id, held.user_id, &body)
        .await
    {
        Ok(comment) => comment,
        Err(e) => {
            // Not committed: back on the queue, to approve again.
            primary.restore_held_comment(&held).await?;
            return Err(e.into());
        }
    };
    state
        .publisher
        .publish(CommentEvent::Created(comment.clone()));
    Ok(HttpResponse::Created().json(CommentDto::from(&comment)))
}

/// Reject a held comment (the video's moderators): it is dropped and never shown.
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path), ("comment_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = []))
)]
#[delete("/api/videos/{video_id}/held-comments/{comment_id}")]
pub async fn reject_held(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<(String, uuid::Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (raw, id) = path.into_inner();
    take(&state, &principal, &raw, id, "reject").await?;
    Ok(HttpResponse::NoContent().finish())
}
