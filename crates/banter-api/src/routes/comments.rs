//! `/api/videos/{video_id}/comments` and `/api/comments/{id}`: reading, posting, editing and
//! deleting comments. Every committed change is handed to the publish hook after commit.

use actix_web::{HttpResponse, ResponseError, delete, get, patch, post, web};
use banter_core::{CommentBody, CommentId, PostOutcome, Video, VideoId};
use banter_store::{CommentPage, NewLogEntry};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::access::{check_view, visible_video};
use crate::auth::{MaybePrincipal, Principal};
use crate::dto::{CommentDto, CommentsPage, HeldCommentDto, NewCommentRequest};
use crate::json_body::JsonBody;
use crate::moderation::{COMMENTS_REFUSED_METRIC, announce, role_on};
use crate::publish::CommentEvent;
use crate::{ApiError, ApiState, codes};

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 100;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListCommentsQuery {
    /// Comments with a `seq` above this, oldest first (catching up).
    after: Option<i64>,
    /// Comments with a `seq` below this (scrolling back). With `after` too: the comments
    /// between the two, oldest first.
    before: Option<i64>,
    /// 1 to 100, default 50.
    limit: Option<u32>,
}

/// A page of a video's comments, in ascending `seq` order; the newest page by default.
/// Served from a read replica when one is healthy.
#[utoipa::path(
    tag = "comments",
    params(("video_id" = String, Path), ListCommentsQuery),
    responses((status = 200, body = CommentsPage), (status = 400), (status = 401), (status = 403), (status = 422))
)]
#[get("/api/videos/{video_id}/comments")]
pub async fn list_comments(
    viewer: MaybePrincipal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    query: web::Query<ListCommentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation(
            codes::INVALID_FIELD,
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let page = match (query.after, query.before) {
        (Some(after), Some(before)) => CommentPage::Between(after.max(0), before),
        (Some(after), None) => CommentPage::After(after.max(0)),
        (None, Some(before)) => CommentPage::Before(before),
        (None, None) => CommentPage::Latest,
    };
    // Access is decided on the primary (a replica may lag a visibility change); the page
    // itself may come from a replica.
    let (video_id, video) = visible_video(&state, &viewer, &path).await?;
    let reads = state.store.replica();
    let comments = reads.list_comments(&video_id, page, limit).await?;
    // The page itself is the freshest evidence of the newest seq the replica has.
    let last_seq = video
        .map(|v| v.last_seq)
        .unwrap_or(0)
        .max(comments.last().map_or(0, |c| c.seq));
    let first = comments.first().map(|c| c.seq);
    let last = comments.last().map(|c| c.seq);
    let next_before = first.filter(|&s| s > 1);
    let next_after = match (page, last) {
        (_, Some(last)) if last < last_seq => Some(last),
        _ => None,
    };
    Ok(HttpResponse::Ok().json(CommentsPage {
        comments: comments.iter().map(CommentDto::from).collect(),
        last_seq,
        next_before,
        next_after,
    }))
}

/// Post a comment. Rate-limited per user and per device; committed on the primary, which
/// assigns its `seq`; broadcast to live viewers after commit.
#[utoipa::path(
    tag = "comments",
    params(("video_id" = String, Path)),
    request_body = NewCommentRequest,
    responses((status = 201, body = CommentDto), (status = 202, body = HeldCommentDto, description = "Held for the video's moderators to review: it matched a blocked term on a video that holds such comments"), (status = 401), (status = 403, description = "Not allowed: a private video (`forbidden`), a ban (`banned`), a timeout (`timed_out`, with `retry_after`), or members-only chat (`members_only_chat`)"), (status = 413), (status = 422, description = "A value breaks a rule (`comment_empty`, `comment_too_long`, …) or the comment contains a blocked term (`blocked_term`)"), (status = 429, description = "Rate limited (`rate_limited`) or slow mode (`slow_mode`): retry after `Retry-After` seconds (also `retry_after` in the body)")),
    security(("bearer" = []))
)]
#[post("/api/videos/{video_id}/comments")]
pub async fn create_comment(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: JsonBody<NewCommentRequest>,
) -> Result<HttpResponse, ApiError> {
    let video_id = VideoId::parse(&path)?;
    let body = CommentBody::parse(&body.body)?;
    match post_comment(&state, &principal, &video_id, &body).await? {
        PostOutcome::Committed(comment) => {
            Ok(HttpResponse::Created().json(CommentDto::from(&comment)))
        }
        PostOutcome::Held(held) => Ok(HttpResponse::Accepted().json(HeldCommentDto::from(&held))),
    }
}

/// The one write path for new comments (REST here; the socket's `new_comment` too):
/// access check, rate limits, commit, then publish.
pub async fn post_comment(
    state: &ApiState,
    principal: &Principal,
    video_id: &VideoId,
    body: &CommentBody,
) -> Result<PostOutcome, ApiError> {
    let video = state.store.primary().get_video(video_id).await?;
    post_comment_to_seen(state, principal, video_id, video.as_ref(), body).await
}

/// [`post_comment`] with the video as the caller just read it from the primary (`None`: no row
/// yet), e.g. in a read shared by several posts: the access check on it, then the rest.
pub async fn post_comment_to_seen(
    state: &ApiState,
    principal: &Principal,
    video_id: &VideoId,
    video: Option<&Video>,
    body: &CommentBody,
) -> Result<PostOutcome, ApiError> {
    check_view(state.store.primary(), video, Some(&principal.user)).await??;
    post_comment_to_public(state, principal, video_id, body).await
}

/// [`post_comment`] without the visibility read, for a caller that knows the video is public
/// (the socket gateway's cache of public videos, which every access change clears): the chat's
/// rules (bans, timeouts, members-only chat, slow mode), rate limits, commit, then publish.
/// Every refusal is counted by its code.
pub async fn post_comment_to_public(
    state: &ApiState,
    principal: &Principal,
    video_id: &VideoId,
    body: &CommentBody,
) -> Result<PostOutcome, ApiError> {
    let started = std::time::Instant::now();
    let posted = commit_within_rules(state, principal, video_id, body).await;
    metrics::histogram!(crate::moderation::COMMENT_ACK_METRIC).record(started.elapsed());
    if let Ok(PostOutcome::Committed(_)) = &posted {
        metrics::counter!(crate::moderation::COMMENTS_COMMITTED_METRIC).increment(1);
    }
    if let Err(refused) = &posted
        && refused.status_code().is_client_error()
    {
        metrics::counter!(COMMENTS_REFUSED_METRIC, "reason" => refused.code()).increment(1);
    }
    posted
}

async fn commit_within_rules(
    state: &ApiState,
    principal: &Principal,
    video_id: &VideoId,
    body: &CommentBody,
) -> Result<PostOutcome, ApiError> {
    let primary = state.store.primary();
    let admission = state
        .chat
        .admit(primary, &principal.user, video_id, body)
        .await?;
    let slot = admission.slot;
    // A trusted backend's key is not held to a person's posting rate.
    let limited = if principal.api_key().is_some() {
        Ok(())
    } else {
        state
            .limits
            .comment_per_user
            .check(&principal.user.id.to_string())
            .and_then(|()| {
                state
                    .limits
                    .comment_per_device
                    .check(&principal.device_key())
            })
    };
    if let Err(limited) = limited {
        slot.release();
        return Err(limited);
    }
    if let Some(term) = admission.hold {
        let held = primary
            .hold_comment(video_id, principal.user.id, body.as_ref(), &term)
            .await;
        if held.is_err() {
            slot.release();
        }
        return Ok(PostOutcome::Held(held?));
    }
    let comment = match primary
        .create_comment(video_id, principal.user.id, body)
        .await
    {
        Ok(comment) => comment,
        Err(e) => {
            slot.release();
            return Err(e.into());
        }
    };
    state
        .publisher
        .publish(CommentEvent::Created(comment.clone()));
    Ok(PostOutcome::Committed(comment))
}

/// The comment with this id, unless it does not exist or is deleted (read on the primary: the
/// permission check must see the latest state).
async fn live_comment(state: &ApiState, id: CommentId) -> Result<banter_core::Comment, ApiError> {
    state
        .store
        .primary()
        .get_comment(id)
        .await?
        .filter(|c| c.deleted_at.is_none())
        .ok_or_else(|| ApiError::NotFound("no such comment".into()))
}

fn parse_comment_id(raw: &str) -> Result<CommentId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound("no such comment".into()))
}

/// Edit your own comment.
#[utoipa::path(
    tag = "comments",
    params(("comment_id" = String, Path)),
    request_body = NewCommentRequest,
    responses((status = 200, body = CommentDto), (status = 401), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = []))
)]
#[patch("/api/comments/{comment_id}")]
pub async fn update_comment(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: JsonBody<NewCommentRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_comment_id(&path)?;
    let body = CommentBody::parse(&body.body)?;
    let primary = state.store.primary();
    let existing = live_comment(&state, id).await?;
    if existing.user_id != principal.user.id {
        return Err(ApiError::Forbidden(
            "only the author may edit a comment".into(),
        ));
    }
    let comment = primary
        .update_comment(id, &body)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such comment".into()))?;
    state
        .publisher
        .publish(CommentEvent::Updated(comment.clone()));
    Ok(HttpResponse::Ok().json(CommentDto::from(&comment)))
}

/// Delete a comment (its author or the video's moderators: owner, appointed moderators, site
/// moderators, admins; logged when not the author's own). The `seq` stays taken; a pinned
/// comment is unpinned.
#[utoipa::path(
    tag = "comments",
    params(("comment_id" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = []))
)]
#[delete("/api/comments/{comment_id}")]
pub async fn delete_comment(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_comment_id(&path)?;
    let primary = state.store.primary();
    let existing = live_comment(&state, id).await?;
    let (video, role) = role_on(&state, &existing.video_id, &principal.user).await?;
    let by_author = existing.user_id == principal.user.id;
    if !by_author && role.is_none() {
        return Err(ApiError::Forbidden(
            "only the author or the video's moderators may delete a comment".into(),
        ));
    }
    let comment = primary
        .delete_comment(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such comment".into()))?;
    let pinned = video.is_some_and(|v| v.pinned_comment == Some(id));
    let log = |action: &'static str| NewLogEntry {
        video: Some(&existing.video_id),
        actor: principal.user.id,
        action,
        target_user: Some(existing.user_id),
        target_comment: Some(id),
        reason: None,
        details: "{}".into(),
    };
    if pinned {
        primary
            .set_pinned(&existing.video_id, None, log("unpin"))
            .await?;
    }
    if !by_author {
        primary.log_moderation(log("delete_comment")).await?;
        metrics::counter!(crate::MODERATION_ACTIONS_METRIC, "action" => "delete_comment")
            .increment(1);
    }
    state.publisher.publish(CommentEvent::Deleted(comment));
    if pinned {
        announce(&state, "unpin", Some(&existing.video_id));
    }
    Ok(HttpResponse::NoContent().finish())
}
