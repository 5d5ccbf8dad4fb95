//! `/api/admin/api-keys`: admins create API keys for trusted backends (a name, the system
//! author it posts as, its scopes; the key itself is in the creation answer only), list them
//! (with their last use) and revoke them (at once: every use reads the key on the primary).

use actix_web::{HttpResponse, delete, get, post, web};
use banter_core::Username;
use banter_store::{ApiKey, NewApiKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Principal, api_key};
use crate::json_body::JsonBody;
use crate::{ApiError, ApiState, codes};

pub const NAME_MAX: usize = 64;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// What the key is for (unique), 1–64 characters.
    pub name: String,
    /// The username the key's comments and actions appear under: a system user, created with
    /// the first key naming it (a username of an ordinary account is refused).
    pub author: String,
    /// Any of `post`, `announce`, `moderate`.
    pub scopes: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyDto {
    pub id: Uuid,
    pub name: String,
    pub author: String,
    pub scopes: Vec<String>,
    /// The bearer token: only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl ApiKeyDto {
    fn from(key: &ApiKey, token: Option<String>) -> Self {
        Self {
            id: key.id,
            name: key.name.clone(),
            author: key.author.username.as_ref().to_owned(),
            scopes: key.scopes.clone(),
            key: token,
            created_at: key.created_at,
            last_used_at: key.last_used_at,
            revoked_at: key.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeysList {
    pub api_keys: Vec<ApiKeyDto>,
}

/// Create an API key (admins). The answer holds the key; it is not shown again.
#[utoipa::path(
    tag = "admin",
    request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyDto), (status = 401), (status = 403), (status = 409), (status = 422)),
    security(("bearer" = []))
)]
#[post("/api/admin/api-keys")]
pub async fn create_api_key(
    principal: Principal,
    state: web::Data<ApiState>,
    body: JsonBody<CreateApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin("manage API keys")?;
    let name = body.name.as_str();
    if name.trim().is_empty()
        || name.chars().count() > NAME_MAX
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::validation(
            codes::INVALID_FIELD,
            format!(
                "name must be 1 to {NAME_MAX} characters, not only spaces, without control characters"
            ),
        ));
    }
    let author = Username::parse(&body.author)?;
    let mut scopes = body.scopes.clone();
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() || !scopes.iter().all(|s| api_key::SCOPES.contains(&s.as_str())) {
        return Err(ApiError::validation(
            codes::INVALID_FIELD,
            "scopes must list some of post, announce, moderate",
        ));
    }
    let (id, token, hash) = api_key::generate()?;
    let created = state
        .store
        .primary()
        .create_api_key(NewApiKey {
            id,
            name,
            secret_hash: &hash,
            scopes: &scopes,
            author: &author,
            created_by: principal.user.id,
        })
        .await
        .map_err(|e| match e {
            banter_store::StoreError::Conflict("username") => ApiError::Conflict {
                code: codes::USERNAME_TAKEN,
                message: "that username is an ordinary account's; name another author".into(),
            },
            banter_store::StoreError::Conflict(_) => ApiError::Conflict {
                code: codes::CONFLICT,
                message: "an API key with that name exists".into(),
            },
            other => other.into(),
        })?;
    tracing::info!(key = %created.id, name = %created.name, "API key created");
    Ok(HttpResponse::Created().json(ApiKeyDto::from(&created, Some(token))))
}

/// Every API key (admins), newest first.
#[utoipa::path(
    tag = "admin",
    responses((status = 200, body = ApiKeysList), (status = 401), (status = 403)),
    security(("bearer" = []))
)]
#[get("/api/admin/api-keys")]
pub async fn list_api_keys(
    principal: Principal,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin("manage API keys")?;
    let keys = state.store.primary().api_keys().await?;
    Ok(HttpResponse::Ok().json(ApiKeysList {
        api_keys: keys.iter().map(|k| ApiKeyDto::from(k, None)).collect(),
    }))
}

/// Revoke an API key (admins): it stops working at once.
#[utoipa::path(
    tag = "admin",
    params(("key_id" = Uuid, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = []))
)]
#[delete("/api/admin/api-keys/{key_id}")]
pub async fn revoke_api_key(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin("manage API keys")?;
    if !state.store.primary().revoke_api_key(*path).await? {
        return Err(ApiError::NotFound("no such live API key".into()));
    }
    Ok(HttpResponse::NoContent().finish())
}
