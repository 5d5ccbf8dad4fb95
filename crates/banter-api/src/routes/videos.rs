//! `/api/videos*`: registering a video with an owner and visibility, and managing the members
//! of a members-only video. (Public videos also come into being with their first comment.)

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use banter_core::{AccessChange, UserId, Video, VideoId, Visibility};

use crate::access::visible_video;
use crate::auth::{MaybePrincipal, Principal};
use crate::dto::{CreateVideoRequest, UpdateVideoRequest, VideoDto};
use crate::json_body::JsonBody;
use crate::{ApiError, ApiState, codes};

/// Register a video you own.
#[utoipa::path(
    tag = "videos",
    request_body = CreateVideoRequest,
    responses((status = 201, body = VideoDto), (status = 401), (status = 409, description = "video_exists or video_id_reserved"), (status = 422)),
    security(("bearer" = []))
)]
#[post("/api/videos")]
pub async fn create_video(
    principal: Principal,
    state: web::Data<ApiState>,
    body: JsonBody<CreateVideoRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = VideoId::parse(&body.id)?;
    if state
        .config
        .reserved_video_ids
        .iter()
        .any(|r| r == id.as_ref())
    {
        return Err(ApiError::Conflict {
            code: codes::VIDEO_ID_RESERVED,
            message: "this video id is reserved for the demo videos".into(),
        });
    }
    let visibility = body
        .visibility
        .as_deref()
        .map(str::parse::<Visibility>)
        .transpose()?
        .unwrap_or(Visibility::Public);
    let video = state
        .store
        .primary()
        .create_video(&id, principal.user.id, visibility)
        .await?;
    // Anyone already watching the id while it had no owner is re-checked against it.
    state
        .publisher
        .access_changed(AccessChange::Video(video.id.clone()));
    Ok(HttpResponse::Created().json(VideoDto::from(&video)))
}

/// A video's visibility and newest `seq`.
#[utoipa::path(
    tag = "videos",
    params(("video_id" = String, Path)),
    responses((status = 200, body = VideoDto), (status = 401), (status = 403), (status = 404))
)]
#[get("/api/videos/{video_id}")]
pub async fn get_video(
    viewer: MaybePrincipal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Read on the primary: a replica could still show a video made private a moment ago.
    let (_, video) = visible_video(&state, &viewer, &path).await?;
    let video = video.ok_or_else(|| ApiError::NotFound("no such video".into()))?;
    Ok(HttpResponse::Ok().json(VideoDto::from(&video)))
}

async fn owned_video(
    state: &ApiState,
    principal: &Principal,
    raw: &str,
) -> Result<Video, ApiError> {
    let id = VideoId::parse(raw)?;
    let video = state
        .store
        .primary()
        .get_video(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such video".into()))?;
    if video.owner_id != Some(principal.user.id) && !principal.user.role.is_admin() {
        return Err(ApiError::Forbidden(
            "only the video's owner may change it".into(),
        ));
    }
    Ok(video)
}

/// Change a video's visibility (owner or admin).
#[utoipa::path(
    tag = "videos",
    params(("video_id" = String, Path)),
    request_body = UpdateVideoRequest,
    responses((status = 200, body = VideoDto), (status = 401), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = []))
)]
#[patch("/api/videos/{video_id}")]
pub async fn update_video(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: JsonBody<UpdateVideoRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut video = owned_video(&state, &principal, &path).await?;
    video.visibility = body.visibility.parse()?;
    state
        .store
        .primary()
        .set_visibility(&video.id, video.visibility)
        .await?;
    state
        .publisher
        .access_changed(AccessChange::Video(video.id.clone()));
    Ok(HttpResponse::Ok().json(VideoDto::from(&video)))
}

/// Add a member to a video (owner or admin).
#[utoipa::path(
    tag = "videos",
    params(("video_id" = String, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = []))
)]
#[put("/api/videos/{video_id}/members/{user_id}")]
pub async fn add_member(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<(String, uuid::Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (raw, user) = path.into_inner();
    let video = owned_video(&state, &principal, &raw).await?;
    let user = UserId::from_uuid(user);
    if state.store.primary().get_user(user).await?.is_none() {
        return Err(ApiError::NotFound("no such user".into()));
    }
    state
        .store
        .primary()
        .set_member(&video.id, user, true)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove a member from a video (owner or admin).
#[utoipa::path(
    tag = "videos",
    params(("video_id" = String, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = []))
)]
#[delete("/api/videos/{video_id}/members/{user_id}")]
pub async fn remove_member(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<(String, uuid::Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (raw, user) = path.into_inner();
    let video = owned_video(&state, &principal, &raw).await?;
    state
        .store
        .primary()
        .set_member(&video.id, UserId::from_uuid(user), false)
        .await?;
    state.publisher.access_changed(AccessChange::Member {
        video: video.id,
        user: UserId::from_uuid(user),
    });
    Ok(HttpResponse::NoContent().finish())
}
