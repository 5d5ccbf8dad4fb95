//! `GET /api/videos/{video_id}/moderation-log`: every moderation action on a video, newest
//! first, keyset-paginated by entry id; for the video's owner and admins.

use actix_web::{HttpResponse, get, web};
use banter_core::VideoId;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Principal;
use crate::dto::{LogEntryDto, ModerationLogPage};
use crate::moderation::role_on;
use crate::routes::comments::{DEFAULT_PAGE, MAX_PAGE};
use crate::{ApiError, ApiState, codes};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Entries older than this id (the previous page's `next_before`).
    before: Option<i64>,
    /// 1 to 100, default 50.
    limit: Option<u32>,
}

/// A video's moderation log (its owner and admins).
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path), LogQuery),
    responses((status = 200, body = ModerationLogPage), (status = 401), (status = 403), (status = 422)),
    security(("bearer" = []))
)]
#[get("/api/videos/{video_id}/moderation-log")]
pub async fn moderation_log(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    let video = VideoId::parse(&path)?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation(
            codes::INVALID_FIELD,
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let (_, role) = role_on(&state, &video, &principal.user).await?;
    if !role.is_some_and(|r| r.manages_moderators()) {
        return Err(ApiError::Forbidden(
            "only the video's owner or an admin may read its moderation log".into(),
        ));
    }
    let entries = state
        .store
        .primary()
        .moderation_log(&video, query.before, limit)
        .await?;
    let next_before = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(HttpResponse::Ok().json(ModerationLogPage {
        entries: entries.iter().map(LogEntryDto::from).collect(),
        next_before,
    }))
}
