//! `/api/videos/{video_id}/moderators`: the moderators a video's owner appoints for it. Listing
//! is open to anyone who may see the video (clients badge their comments); appointing and
//! removing is for the owner and admins.

use actix_web::{HttpResponse, delete, get, put, web};
use banter_core::{UserId, VideoId};
use banter_store::NewLogEntry;

use crate::access::visible_video;
use crate::auth::{MaybePrincipal, Principal};
use crate::dto::{ModeratorDto, ModeratorsList};
use crate::moderation::{announce, role_on};
use crate::{ApiError, ApiState};

/// The moderators appointed for a video.
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path)),
    responses((status = 200, body = ModeratorsList), (status = 401), (status = 403))
)]
#[get("/api/videos/{video_id}/moderators")]
pub async fn list_moderators(
    viewer: MaybePrincipal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (video, _) = visible_video(&state, &viewer, &path).await?;
    let moderators = state
        .store
        .primary()
        .video_moderators(&video)
        .await?
        .into_iter()
        .map(|(id, username)| ModeratorDto {
            id: id.as_uuid(),
            username,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ModeratorsList { moderators }))
}

async fn set_moderator(
    state: &ApiState,
    principal: &Principal,
    raw: &str,
    user: uuid::Uuid,
    appointed: bool,
) -> Result<HttpResponse, ApiError> {
    let video = VideoId::parse(raw)?;
    let user = UserId::from_uuid(user);
    let (found, role) = role_on(state, &video, &principal.user).await?;
    if found.is_none() {
        return Err(ApiError::NotFound("no such video".into()));
    }
    if !role.is_some_and(|r| r.manages_moderators()) {
        return Err(ApiError::Forbidden(
            "only the video's owner or an admin may appoint its moderators".into(),
        ));
    }
    let primary = state.store.primary();
    if primary.get_user(user).await?.is_none() {
        return Err(ApiError::NotFound("no such user".into()));
    }
    let action = if appointed {
        "appoint_moderator"
    } else {
        "remove_moderator"
    };
    let log = NewLogEntry {
        video: Some(&video),
        actor: principal.user.id,
        action,
        target_user: Some(user),
        target_comment: None,
        reason: None,
        details: "{}".into(),
    };
    if primary
        .set_video_moderator(&video, user, appointed, log)
        .await?
    {
        announce(state, action, Some(&video));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Appoint a moderator of a video (its owner or an admin).
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = []))
)]
#[put("/api/videos/{video_id}/moderators/{user_id}")]
pub async fn add_moderator(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<(String, uuid::Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (video, user) = path.into_inner();
    set_moderator(&state, &principal, &video, user, true).await
}

/// Remove a moderator of a video (its owner or an admin).
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = []))
)]
#[delete("/api/videos/{video_id}/moderators/{user_id}")]
pub async fn remove_moderator(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<(String, uuid::Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (video, user) = path.into_inner();
    set_moderator(&state, &principal, &video, user, false).await
}
