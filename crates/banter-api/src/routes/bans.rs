//! Bans and timeouts: `/api/videos/{video_id}/bans` (the video's moderators) and `/api/bans`
//! (site-wide, admins), and `/api/videos/{video_id}/users/{user_id}/comments` (remove one
//! user's comments from a video at once). Nobody bans an admin, only an admin bans a video's
//! owner, and only the owner or an admin bans one of its moderators.

use actix_web::{HttpResponse, delete, get, put, web};
use banter_core::{BanDuration, ChatRole, MODERATION_REASON_MAX_CHARS, User, UserId, VideoId};
use banter_store::{BanScope, NewLogEntry};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::dto::{BanDto, BanRequest, BanResponse, BansList, RemovedComments};
use crate::json_body::JsonBody;
use crate::moderation::{announce, require_moderator, role_on};
use crate::publish::CommentEvent;
use crate::{ApiError, ApiState, codes};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteBanRequest {
    /// A timeout of 10 to 86400 seconds; absent or `null` bans permanently.
    #[serde(default, deserialize_with = "crate::dto::whole_number")]
    pub duration_seconds: Option<i64>,
    /// Why, for the log and for the banned user (at most 500 characters).
    pub reason: Option<String>,
}

/// A moderator's reason: trimmed, empty is none, at most 500 characters.
fn reason(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    if raw.is_some_and(|r| r.chars().count() > MODERATION_REASON_MAX_CHARS) {
        return Err(ApiError::validation(
            codes::INVALID_FIELD,
            format!("reason must be at most {MODERATION_REASON_MAX_CHARS} characters"),
        ));
    }
    Ok(raw
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned))
}

async fn target(state: &ApiState, actor: &Principal, user: uuid::Uuid) -> Result<User, ApiError> {
    let user = state
        .store
        .primary()
        .get_user(UserId::from_uuid(user))
        .await?
        .ok_or_else(|| ApiError::NotFound("no such user".into()))?;
    if user.id == actor.user.id {
        return Err(ApiError::Forbidden("you cannot ban yourself".into()));
    }
    Ok(user)
}

/// Checks that `actor` may ban or remove the comments of `user` on `video`.
async fn may_act_on(
    state: &ApiState,
    actor: &Principal,
    video: &VideoId,
    user: &User,
) -> Result<ChatRole, ApiError> {
    let (_, role) = require_moderator(state, video, &actor.user).await?;
    let (_, target_role) = role_on(state, video, user).await?;
    if !role.may_ban(target_role) {
        return Err(ApiError::Forbidden(format!(
            "a {role} cannot ban or remove the comments of the video's {}",
            target_role.map_or("viewers", |r| r.as_str())
        )));
    }
    Ok(role)
}

struct BanOrder<'a> {
    scope: BanScope,
    user: &'a User,
    duration: BanDuration,
    reason: Option<String>,
}

async fn write_ban(
    state: &ApiState,
    actor: &Principal,
    order: BanOrder<'_>,
) -> Result<banter_store::Ban, ApiError> {
    let (action, expires_at, seconds) = match order.duration {
        BanDuration::Permanent => ("ban", None, None),
        BanDuration::Timeout(d) => (
            "timeout",
            Some(OffsetDateTime::now_utc() + d),
            Some(d.as_secs()),
        ),
    };
    let video = match &order.scope {
        BanScope::Video(video) => Some(video),
        BanScope::Site => None,
    };
    let log = NewLogEntry {
        video,
        actor: actor.user.id,
        action,
        target_user: Some(order.user.id),
        target_comment: None,
        reason: order.reason.as_deref(),
        details: json!({"duration_seconds": seconds, "site_wide": video.is_none()}).to_string(),
    };
    let ban = state
        .store
        .primary()
        .ban(&order.scope, order.user.id, expires_at, log)
        .await?;
    announce(state, action, video);
    Ok(ban)
}

/// Deletes `user`'s comments on `video`, tells the viewers, and logs it; how many.
async fn remove_comments(
    state: &ApiState,
    actor: &Principal,
    video: &VideoId,
    user: &User,
) -> Result<usize, ApiError> {
    let removed = state
        .store
        .primary()
        .remove_user_comments(
            video,
            user.id,
            NewLogEntry {
                video: Some(video),
                actor: actor.user.id,
                action: "remove_comments",
                target_user: Some(user.id),
                target_comment: None,
                reason: None,
                details: "{}".into(),
            },
        )
        .await?;
    let count = removed.len();
    for comment in removed {
        state.publisher.publish(CommentEvent::Deleted(comment));
    }
    announce(state, "remove_comments", Some(video));
    Ok(count)
}

/// The bans and timeouts in force on a video (its moderators).
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path)),
    responses((status = 200, body = BansList), (status = 401), (status = 403)),
    security(("bearer" = []))
)]
#[get("/api/videos/{video_id}/bans")]
pub async fn list_video_bans(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let video = VideoId::parse(&path)?;
    require_moderator(&state, &video, &principal.user).await?;
    let bans = state
        .store
        .primary()
        .bans(&BanScope::Video(video.clone()))
        .await?;
    Ok(HttpResponse::Ok().json(BansList {
        bans: bans.iter().map(|b| BanDto::new(b, Some(&video))).collect(),
    }))
}

/// Ban or time out a user on a video (its moderators), optionally deleting their comments there.
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path), ("user_id" = uuid::Uuid, Path)),
    request_body = BanRequest,
    responses((status = 200, body = BanResponse), (status = 401), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = []))
)]
#[put("/api/videos/{video_id}/bans/{user_id}")]
pub async fn ban_on_video(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<(String, uuid::Uuid)>,
    body: JsonBody<BanRequest>,
) -> Result<HttpResponse, ApiError> {
    let (raw, user) = path.into_inner();
    let video = VideoId::parse(&raw)?;
    let duration = BanDuration::parse(body.duration_seconds)?;
    let reason = reason(body.reason.as_deref())?;
    let user = target(&state, &principal, user).await?;
    may_act_on(&state, &principal, &video, &user).await?;
    let order = BanOrder {
        scope: BanScope::Video(video.clone()),
        user: &user,
        duration,
        reason,
    };
    let ban = write_ban(&state, &principal, order).await?;
    let removed_comments = if body.remove_comments.unwrap_or(false) {
        remove_comments(&state, &principal, &video, &user).await?
    } else {
        0
    };
    Ok(HttpResponse::Ok().json(BanResponse {
        ban: BanDto::new(&ban, Some(&video)),
        removed_comments,
    }))
}

/// Lift a ban or timeout on a video (its moderators).
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = []))
)]
#[delete("/api/videos/{video_id}/bans/{user_id}")]
pub async fn unban_on_video(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<(String, uuid::Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (raw, user) = path.into_inner();
    let video = VideoId::parse(&raw)?;
    require_moderator(&state, &video, &principal.user).await?;
    lift(&state, &principal, BanScope::Video(video), user).await
}

async fn lift(
    state: &ApiState,
    principal: &Principal,
    scope: BanScope,
    user: uuid::Uuid,
) -> Result<HttpResponse, ApiError> {
    let user = UserId::from_uuid(user);
    let video = match &scope {
        BanScope::Video(video) => Some(video),
        BanScope::Site => None,
    };
    let log = NewLogEntry {
        video,
        actor: principal.user.id,
        action: "unban",
        target_user: Some(user),
        target_comment: None,
        reason: None,
        details: json!({"site_wide": video.is_none()}).to_string(),
    };
    if !state.store.primary().lift_ban(&scope, user, log).await? {
        return Err(ApiError::NotFound("no ban in force".into()));
    }
    announce(state, "unban", video);
    Ok(HttpResponse::NoContent().finish())
}

/// Delete every comment a user has on a video (its moderators); viewers see the deletions live.
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 200, body = RemovedComments), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = []))
)]
#[delete("/api/videos/{video_id}/users/{user_id}/comments")]
pub async fn remove_user_comments(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<(String, uuid::Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (raw, user) = path.into_inner();
    let video = VideoId::parse(&raw)?;
    let user = state
        .store
        .primary()
        .get_user(UserId::from_uuid(user))
        .await?
        .ok_or_else(|| ApiError::NotFound("no such user".into()))?;
    if user.id != principal.user.id {
        may_act_on(&state, &principal, &video, &user).await?;
    } else {
        require_moderator(&state, &video, &principal.user).await?;
    }
    let removed = remove_comments(&state, &principal, &video, &user).await?;
    Ok(HttpResponse::Ok().json(RemovedComments { removed }))
}

/// The site-wide bans and timeouts in force (admins).
#[utoipa::path(
    tag = "moderation",
    responses((status = 200, body = BansList), (status = 401), (status = 403)),
    security(("bearer" = []))
)]
#[get("/api/bans")]
pub async fn list_site_bans(
    principal: Principal,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin("ban site-wide")?;
    let bans = state.store.primary().bans(&BanScope::Site).await?;
    Ok(HttpResponse::Ok().json(BansList {
        bans: bans.iter().map(|b| BanDto::new(b, None)).collect(),
    }))
}

/// Ban or time out a user on every video (admins).
#[utoipa::path(
    tag = "moderation",
    params(("user_id" = uuid::Uuid, Path)),
    request_body = SiteBanRequest,
    responses((status = 200, body = BanResponse), (status = 401), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = []))
)]
#[put("/api/bans/{user_id}")]
pub async fn ban_site_wide(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<uuid::Uuid>,
    body: JsonBody<SiteBanRequest>,
) -> Result<HttpResponse, ApiError> {
    let duration = BanDuration::parse(body.duration_seconds)?;
    let reason = reason(body.reason.as_deref())?;
    principal.require_admin("ban site-wide")?;
    let user = target(&state, &principal, path.into_inner()).await?;
    if !ChatRole::Admin.may_ban(ChatRole::of(&user, None, false)) {
        return Err(ApiError::Forbidden("nobody may ban an admin".into()));
    }
    let order = BanOrder {
        scope: BanScope::Site,
        user: &user,
        duration,
        reason,
    };
    let ban = write_ban(&state, &principal, order).await?;
    Ok(HttpResponse::Ok().json(BanResponse {
        ban: BanDto::new(&ban, None),
        removed_comments: 0,
    }))
}

/// Lift a site-wide ban or timeout (admins).
#[utoipa::path(
    tag = "moderation",
    params(("user_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = []))
)]
#[delete("/api/bans/{user_id}")]
pub async fn unban_site_wide(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin("ban site-wide")?;
    lift(&state, &principal, BanScope::Site, path.into_inner()).await
}
