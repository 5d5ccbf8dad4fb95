//! Blocked terms: `/api/videos/{video_id}/blocked-terms` (the video's moderators) and
//! `/api/blocked-terms` (site-wide, admins). A list is read and replaced whole; terms are kept
//! folded, as they are matched (`banter_core::BlockedTerm`), and the lists are not shown to
//! viewers, so trolls do not learn what to get round.

use actix_web::{HttpResponse, get, put, web};
use banter_core::{BLOCKED_TERMS_MAX, BlockedTerm, VideoId};
use banter_store::{BanScope, NewLogEntry};
use serde_json::json;

use crate::auth::Principal;
use crate::dto::{BlockedTermsList, BlockedTermsRequest};
use crate::json_body::JsonBody;
use crate::moderation::{announce, require_moderator};
use crate::{ApiError, ApiState, codes};

async fn list(state: &ApiState, scope: &BanScope) -> Result<HttpResponse, ApiError> {
    let terms = state.store.primary().blocked_terms(scope).await?;
    Ok(HttpResponse::Ok().json(BlockedTermsList {
        terms: terms.iter().map(|t| t.as_ref().to_owned()).collect(),
    }))
}

/// Replaces the list of `scope` (the caller's right to was checked) and answers it.
async fn replace(
    state: &ApiState,
    principal: &Principal,
    scope: BanScope,
    raw: &[String],
) -> Result<HttpResponse, ApiError> {
    if raw.len() > BLOCKED_TERMS_MAX {
        return Err(ApiError::validation(
            codes::INVALID_FIELD,
            format!("at most {BLOCKED_TERMS_MAX} blocked terms"),
        ));
    }
    // A term of only invisible characters folds to nothing and is left out.
    let mut terms: Vec<BlockedTerm> = raw
        .iter()
        .map(|t| BlockedTerm::parse(t))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    terms.sort();
    terms.dedup();
    let video = match &scope {
        BanScope::Video(video) => Some(video),
        BanScope::Site => None,
    };
    let log = NewLogEntry {
        video,
        actor: principal.user.id,
        action: "blocked_terms",
        target_user: None,
        target_comment: None,
        reason: None,
        details: json!({"count": terms.len(), "site_wide": video.is_none()}).to_string(),
    };
    state
        .store
        .primary()
        .set_blocked_terms(&scope, &terms, log)
        .await?;
    announce(state, "blocked_terms", video);
    list(state, &scope).await
}

/// A video's blocked terms (its moderators).
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path)),
    responses((status = 200, body = BlockedTermsList), (status = 401), (status = 403)),
    security(("bearer" = []))
)]
#[get("/api/videos/{video_id}/blocked-terms")]
pub async fn get_video_terms(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let video = VideoId::parse(&path)?;
    require_moderator(&state, &video, &principal.user).await?;
    list(&state, &BanScope::Video(video)).await
}

/// Replace a video's blocked terms (its moderators).
#[utoipa::path(
    tag = "moderation",
    params(("video_id" = String, Path)),
    request_body = BlockedTermsRequest,
    responses((status = 200, body = BlockedTermsList), (status = 401), (status = 403), (status = 422)),
    security(("bearer" = []))
)]
#[put("/api/videos/{video_id}/blocked-terms")]
pub async fn put_video_terms(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: JsonBody<BlockedTermsRequest>,
) -> Result<HttpResponse, ApiError> {
    let video = VideoId::parse(&path)?;
    require_moderator(&state, &video, &principal.user).await?;
    replace(&state, &principal, BanScope::Video(video), &body.terms).await
}

/// The site-wide blocked terms (admins).
#[utoipa::path(
    tag = "moderation",
    responses((status = 200, body = BlockedTermsList), (status = 401), (status = 403)),
    security(("bearer" = []))
)]
#[get("/api/blocked-terms")]
pub async fn get_site_terms(
    principal: Principal,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin("change the site's blocked terms")?;
    list(&state, &BanScope::Site).await
}

/// Replace the site-wide blocked terms (admins); they apply on every video.
#[utoipa::path(
    tag = "moderation",
    request_body = BlockedTermsRequest,
    responses((status = 200, body = BlockedTermsList), (status = 401), (status = 403), (status = 422)),
    security(("bearer" = []))
)]
#[put("/api/blocked-terms")]
pub async fn put_site_terms(
    principal: Principal,
    state: web::Data<ApiState>,
    body: JsonBody<BlockedTermsRequest>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin("change the site's blocked terms")?;
    replace(&state, &principal, BanScope::Site, &body.terms).await
}
