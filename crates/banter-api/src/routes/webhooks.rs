//! `/api/webhooks`: event hooks. A signed-in user subscribes a URL to events of the videos they
//! own (`comment.created`, `comment.updated`, `comment.deleted`, `moderation.*` or one action,
//! `comment.*`, `*`); the secret that signs them is shown once, at creation. The deliveries a
//! subscription is owed, and the dead ones, are listed, and a dead one can be replayed.
//! Admins see every subscription, including the deployment's configured ones (which are
//! changed in configuration, not here).
//!
//! Owners may not target `localhost` (or, unless the node allows private targets, anything
//! but a public host name); the URL's form is the OpenAPI pattern, checked with the same regex.

use std::sync::LazyLock;

use actix_web::{HttpResponse, delete, get, post, web};
use banter_store::{NewSubscription, Subscription};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Principal;
use crate::json_body::JsonBody;
use crate::webhooks::{new_secret, valid_pattern};
use crate::{ApiError, ApiState, codes};

/// The URL form owners may subscribe: http(s), a host name whose last label starts with a
/// letter (no IP literals), an optional port, a plain path.
pub const URL_PATTERN: &str = r"^https?://([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?(:[1-9][0-9]{0,4})?(/[A-Za-z0-9._~/-]*)?$";
pub const URL_MAX_LEN: usize = 2048;
pub const EVENTS_MAX: usize = 20;
pub const EVENT_PATTERN: &str = r"^(\*|comment\.(\*|created|updated|deleted)|video\.(\*|created|updated)|moderation\.(\*|[a-z_]+))$";
/// Subscriptions one user may hold.
pub const PER_OWNER_MAX: usize = 100;

static URL_RE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(URL_PATTERN).expect("URL pattern"));

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where events are posted (`POST`, JSON, signed as Standard Webhooks specifies).
    pub url: String,
    /// Event names or patterns: `comment.created`, `comment.updated`, `comment.deleted`,
    /// `comment.*`, `moderation.*`, `moderation.<action>`, `*`.
    pub events: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookDto {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    /// The deployment's subscription from configuration (hears every video).
    pub configured: bool,
    /// The signing secret: only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl WebhookDto {
    fn from(s: &Subscription, secret: Option<String>) -> Self {
        Self {
            id: s.id,
            url: s.url.clone(),
            events: s.events.clone(),
            configured: s.name.is_some(),
            secret,
            created_at: s.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhooksList {
    pub webhooks: Vec<WebhookDto>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryDto {
    pub id: i64,
    /// The event's id as receivers see it in `webhook-id` (`evt_<n>`).
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub video_id: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// `pending` or `dead`.
    pub state: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The event's data, as it is posted.
    pub data: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveriesList {
    pub deliveries: Vec<DeliveryDto>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next_after: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// `dead` (default) or `pending`.
    state: Option<String>,
    /// Deliveries after this id (the previous page's `next_after`).
    after: Option<i64>,
    /// 1 to 100, default 50.
    limit: Option<u32>,
}

fn validate(body: &CreateWebhookRequest, allow_private: bool) -> Result<(), ApiError> {
    if body.url.len() > URL_MAX_LEN || !URL_RE.is_match(&body.url) {
        return Err(ApiError::validation(
            codes::INVALID_FIELD,
            "url must be http(s)://host[:port][/path] with a host name (no IP address), \
             at most 2048 characters",
        ));
    }
    if body.events.is_empty()
        || body.events.len() > EVENTS_MAX
        || !body.events.iter().all(|e| valid_pattern(e))
    {
        return Err(ApiError::validation(
            codes::INVALID_FIELD,
            format!(
                "events must list 1 to {EVENTS_MAX} of comment.created, comment.updated, \
                 comment.deleted, comment.*, video.created, video.updated, video.*, moderation.*, moderation.<action>, *"
            ),
        ));
    }
    let host = body
        .url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split([':', '/']).next())
        .unwrap_or_default();
    if !allow_private && (host == "localhost" || host.ends_with(".localhost")) {
        return Err(ApiError::Forbidden(
            "webhooks may not target this server's own network".into(),
        ));
    }
    Ok(())
}

/// The subscription, if the principal may see it (its owner, or an admin); 404 otherwise.
async fn visible(
    state: &ApiState,
    principal: &Principal,
    id: Uuid,
) -> Result<Subscription, ApiError> {
    let found = state.store.primary().subscription(id).await?;
    found
        .filter(|s| principal.user.role.is_admin() || s.owner_id == Some(principal.user.id))
        .ok_or_else(|| ApiError::NotFound("no such webhook".into()))
}

/// Subscribe a URL to events of the videos you own.
#[utoipa::path(
    tag = "webhooks",
    request_body = CreateWebhookRequest,
    responses((status = 201, body = WebhookDto), (status = 401), (status = 403), (status = 409), (status = 422)),
    security(("bearer" = []))
)]
#[post("/api/webhooks")]
pub async fn create_webhook(
    principal: Principal,
    state: web::Data<ApiState>,
    body: JsonBody<CreateWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    validate(&body, state.config.webhooks.allow_private_targets)?;
    let primary = state.store.primary();
    let owned = primary.subscriptions(Some(principal.user.id)).await?;
    if owned.len() >= PER_OWNER_MAX {
        return Err(ApiError::Conflict {
            code: codes::CONFLICT,
            message: format!("at most {PER_OWNER_MAX} webhooks per account"),
        });
    }
    let secret = new_secret()?;
    let mut events = body.events.clone();
    events.dedup();
    let created = primary
        .create_subscription(NewSubscription {
            owner_id: Some(principal.user.id),
            name: None,
            url: &body.url,
            events: &events,
            secret: &secret,
        })
        .await?;
    Ok(HttpResponse::Created().json(WebhookDto::from(&created, Some(secret))))
}

/// Your webhooks (admins: every one, with the configured ones).
#[utoipa::path(
    tag = "webhooks",
    responses((status = 200, body = WebhooksList), (status = 401)),
    security(("bearer" = []))
)]
#[get("/api/webhooks")]
pub async fn list_webhooks(
    principal: Principal,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let owner = (!principal.user.role.is_admin()).then_some(principal.user.id);
    let all = state.store.primary().subscriptions(owner).await?;
    Ok(HttpResponse::Ok().json(WebhooksList {
        webhooks: all.iter().map(|s| WebhookDto::from(s, None)).collect(),
    }))
}

/// Delete a webhook and what it is still owed.
#[utoipa::path(
    tag = "webhooks",
    params(("webhook_id" = Uuid, Path)),
    responses((status = 204), (status = 401), (status = 404), (status = 409)),
    security(("bearer" = []))
)]
#[delete("/api/webhooks/{webhook_id}")]
pub async fn delete_webhook(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let subscription = visible(&state, &principal, *path).await?;
    if subscription.name.is_some() {
        return Err(ApiError::Conflict {
            code: codes::CONFLICT,
            message: "a configured webhook is removed from the configuration".into(),
        });
    }
    state
        .store
        .primary()
        .delete_subscription(subscription.id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A webhook's dead (or pending) deliveries, oldest first.
#[utoipa::path(
    tag = "webhooks",
    params(("webhook_id" = Uuid, Path), DeliveriesQuery),
    responses((status = 200, body = DeliveriesList), (status = 401), (status = 404), (status = 422)),
    security(("bearer" = []))
)]
#[get("/api/webhooks/{webhook_id}/deliveries")]
pub async fn list_deliveries(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<Uuid>,
    query: web::Query<DeliveriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let subscription = visible(&state, &principal, *path).await?;
    let wanted = query.state.as_deref().unwrap_or("dead");
    if !matches!(wanted, "dead" | "pending") {
        return Err(ApiError::validation(
            codes::INVALID_FIELD,
            "state must be dead or pending",
        ));
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation(
            codes::INVALID_FIELD,
            "limit must be 1 to 100",
        ));
    }
    if query.after.is_some_and(|after| after < 0) {
        return Err(ApiError::validation(
            codes::INVALID_FIELD,
            "after must be a delivery id (0 or more)",
        ));
    }
    let page = state
        .store
        .primary()
        .deliveries(subscription.id, wanted, query.after, limit)
        .await?;
    let next_after = (page.len() == limit as usize)
        .then(|| page.last().map(|d| d.id))
        .flatten();
    Ok(HttpResponse::Ok().json(DeliveriesList {
        deliveries: page
            .into_iter()
            .map(|d| DeliveryDto {
                id: d.id,
                event_id: format!("evt_{}", d.event_id),
                kind: d.kind,
                video_id: (!d.video_id.is_empty()).then_some(d.video_id),
                attempts: d.attempts,
                last_error: d.last_error,
                state: d.state,
                created_at: d.created_at,
                data: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
        next_after,
    }))
}

/// Send a dead delivery again: it is back in line, its attempts reset.
#[utoipa::path(
    tag = "webhooks",
    params(("webhook_id" = Uuid, Path), ("delivery_id" = i64, Path)),
    responses((status = 204), (status = 401), (status = 404)),
    security(("bearer" = []))
)]
#[post("/api/webhooks/{webhook_id}/deliveries/{delivery_id}/replay")]
pub async fn replay_delivery(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<(Uuid, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery) = path.into_inner();
    let subscription = visible(&state, &principal, id).await?;
    let now = crate::webhooks::now_ms();
    if !state
        .store
        .primary()
        .replay_delivery(subscription.id, delivery, now)
        .await?
    {
        return Err(ApiError::NotFound("no such dead delivery".into()));
    }
    Ok(HttpResponse::NoContent().finish())
}
