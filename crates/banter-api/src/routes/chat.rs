//! `/api/videos/{video_id}/chat` (the chat's settings (slow mode, who may post, what becomes
//! of blocked terms) and pinned comment: anyone who may see the video reads them, its
//! moderators change them) and `/api/videos/{video_id}/pin`. Every
//! change reaches joined viewers live (`chat_settings`, `comment_pinned`, `comment_unpinned`).

use actix_web::{HttpResponse, delete, get, patch, put, web};
use banter_core::{BlockedTermsAction, ChatMode, ChatSettings, CommentId, Video, VideoId};
use banter_store::NewLogEntry;
use serde_json::json;

use crate::access::visible_video;
use crate::auth::{MaybePrincipal, Principal};
use crate::dto::{ChatDto, CommentDto, PinRequest, UpdateChatRequest};
use crate::json_body::JsonBody;
use crate::moderation::{announce, require_moderator};
use crate::{ApiError, ApiState, codes};

async fn chat_dto(state: &ApiState, video: Option<&Video>) -> Result<ChatDto, ApiError> {
    let settings = video.map(|v| v.chat).unwrap_or_default();
    let pinned = match video.and_then(|v| v.pinned_comment) {
        Some(id) => state
            .store
            .primary()
            .get_comment(id)
            .await?
            .filter(|c| c.deleted_at.is_none()),
        None => None,
    };
    Ok(ChatDto {
        slow_mode_seconds: settings.slow_mode_seconds,
        chat_mode: settings.chat_mode.as_str().to_owned(),
        blocked_terms_action: settings.blocked_terms.as_str().to_owned(),
        pinned_comment: pinned.as_ref().map(CommentDto::from),
    })
}

/// A video's chat settings and pinned comment.
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path)),
    responses((status = 200, body = ChatDto), (status = 401), (status = 403))
)]
#[get("/api/videos/{video_id}/chat")]
pub async fn get_chat(
    viewer: MaybePrincipal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, found) = visible_video(&state, &viewer, &path).await?;
    Ok(HttpResponse::Ok().json(chat_dto(&state, found.as_ref()).await?))
}

/// Change a video's chat settings (its moderators): slow mode and who may post.
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path)),
    request_body = UpdateChatRequest,
    responses((status = 200, body = ChatDto), (status = 401), (status = 403), (status = 422)),
    security(("bearer" = []))
)]
#[patch("/api/videos/{video_id}/chat")]
pub async fn update_chat(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: JsonBody<UpdateChatRequest>,
) -> Result<HttpResponse, ApiError> {
    let video = VideoId::parse(&path)?;
    let slow_mode = body
        .slow_mode_seconds
        .map(ChatSettings::slow_mode)
        .transpose()?;
    let chat_mode = body
        .chat_mode
        .as_deref()
        .map(str::parse::<ChatMode>)
        .transpose()?;
    let blocked_terms = body
        .blocked_terms_action
        .as_deref()
        .map(str::parse::<BlockedTermsAction>)
        .transpose()?;
    let (found, _) = require_moderator(&state, &video, &principal.user).await?;
    let current = found.map(|v| v.chat).unwrap_or_default();
    let settings = ChatSettings {
        slow_mode_seconds: slow_mode.unwrap_or(current.slow_mode_seconds),
        chat_mode: chat_mode.unwrap_or(current.chat_mode),
        blocked_terms: blocked_terms.unwrap_or(current.blocked_terms),
    };
    let log = NewLogEntry {
        video: Some(&video),
        actor: principal.user.id,
        action: "chat_settings",
        target_user: None,
        target_comment: None,
        reason: None,
        details: json!({
            "slow_mode_seconds": settings.slow_mode_seconds,
            "chat_mode": settings.chat_mode.as_str(),
            "blocked_terms_action": settings.blocked_terms.as_str(),
        })
        .to_string(),
    };
    let updated = state
        .store
        .primary()
        .set_chat_settings(&video, settings, log)
        .await?;
    announce(&state, "chat_settings", Some(&video));
    Ok(HttpResponse::Ok().json(chat_dto(&state, Some(&updated)).await?))
}

/// Pin one of the video's comments above its chat (its moderators); replaces any pinned one.
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path)),
    request_body = PinRequest,
    responses((status = 200, body = ChatDto), (status = 401), (status = 403), (status = 409, description = "The comment is not a live comment of this video (`comment_unavailable`)")),
    security(("bearer" = []))
)]
#[put("/api/videos/{video_id}/pin")]
pub async fn pin_comment(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: JsonBody<PinRequest>,
) -> Result<HttpResponse, ApiError> {
    let video = VideoId::parse(&path)?;
    require_moderator(&state, &video, &principal.user).await?;
    let id = CommentId::from_uuid(body.comment_id);
    let primary = state.store.primary();
    primary
        .get_comment(id)
        .await?
        .filter(|c| c.video_id == video && c.deleted_at.is_none())
        .ok_or_else(|| ApiError::Conflict {
            code: codes::COMMENT_UNAVAILABLE,
            message: "that is not a live comment of this video".into(),
        })?;
    let log = NewLogEntry {
        video: Some(&video),
        actor: principal.user.id,
        action: "pin",
        target_user: None,
        target_comment: Some(id),
        reason: None,
        details: "{}".into(),
    };
    let updated = primary.set_pinned(&video, Some(id), log).await?;
    announce(&state, "pin", Some(&video));
    Ok(HttpResponse::Ok().json(chat_dto(&state, Some(&updated)).await?))
}

/// Unpin the pinned comment (its moderators); with nothing pinned there is nothing to do (204).
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path)),
    responses((status = 204), (status = 401), (status = 403)),
    security(("bearer" = []))
)]
#[delete("/api/videos/{video_id}/pin")]
pub async fn unpin_comment(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let video = VideoId::parse(&path)?;
    let (found, _) = require_moderator(&state, &video, &principal.user).await?;
    let Some(pinned) = found.and_then(|v| v.pinned_comment) else {
        return Ok(HttpResponse::NoContent().finish());
    };
    let log = NewLogEntry {
        video: Some(&video),
        actor: principal.user.id,
        action: "unpin",
        target_user: None,
        target_comment: Some(pinned),
        reason: None,
        details: "{}".into(),
    };
    state.store.primary().set_pinned(&video, None, log).await?;
    announce(&state, "unpin", Some(&video));
    Ok(HttpResponse::NoContent().finish())
}
