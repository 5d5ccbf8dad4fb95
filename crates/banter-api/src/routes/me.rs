//! `/api/me*`: the signed-in user's account and devices.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, web};
use banter_core::{AccessChange, DeviceId, Email, Password, Username};
use banter_store::ProfileChanges;
use time::OffsetDateTime;

use crate::auth::Principal;
use crate::client_ip::client_ip;
use crate::dto::{DeviceDto, UpdateMeRequest, UserDto};
use crate::json_body::JsonBody;
use crate::{ApiError, ApiState, codes};

/// The signed-in user.
#[utoipa::path(tag = "me", responses((status = 200, body = UserDto), (status = 401)), security(("bearer" = [])))]
#[get("/api/me")]
pub async fn get_me(principal: Principal) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(UserDto::from(&principal.user)))
}

/// Change email, username or password (a new password needs `current_password`, which is
/// checked under the same per-IP and per-account limits as a login). A new password ends every
/// other session of the account: their tokens stop working and their sockets are closed.
#[utoipa::path(
    tag = "me",
    request_body = UpdateMeRequest,
    responses((status = 200, body = UserDto), (status = 401), (status = 409), (status = 422), (status = 429), (status = 503)),
    security(("bearer" = []))
)]
#[patch("/api/me")]
pub async fn update_me(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<ApiState>,
    body: JsonBody<UpdateMeRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut changes = ProfileChanges {
        email: body.email.as_deref().map(Email::parse).transpose()?,
        username: body.username.as_deref().map(Username::parse).transpose()?,
        password_hash: None,
    };
    if let Some(new_password) = body.password {
        let new_password = Password::parse(&new_password)?;
        let current = body.current_password.ok_or_else(|| {
            ApiError::validation(
                codes::INVALID_FIELD,
                "current_password is required to change the password",
            )
        })?;
        state
            .limits
            .login_per_ip
            .check(&client_ip(&req, &state.config.client_ip))?;
        state
            .limits
            .login_per_account
            .check(&principal.user.id.to_string())?;
        let hash = state
            .store
            .primary()
            .password_hash(principal.user.id)
            .await?;
        if !state.passwords.verify(current, hash).await? {
            return Err(ApiError::unauthorized(
                codes::INVALID_CREDENTIALS,
                "current password is wrong",
            ));
        }
        changes.password_hash = Some(
            state
                .passwords
                .hash(new_password.expose().to_owned())
                .await?,
        );
    }
    let password_changed = changes.password_hash.is_some();
    let primary = state.store.primary();
    let user = primary
        .update_profile(principal.user.id, changes)
        .await?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))?;
    if password_changed {
        // Whoever knew the old password is signed out everywhere but here.
        let ended = primary
            .revoke_other_sessions(user.id, principal.session().unwrap_or_default())
            .await?;
        tracing::info!(user_id = %user.id, ended, "password changed; other sessions ended");
    }
    // A new username shows in presence; a new password ends sessions: sockets re-check.
    state.publisher.access_changed(AccessChange::User(user.id));
    Ok(HttpResponse::Ok().json(UserDto::from(&user)))
}

/// The devices this account has signed in from.
#[utoipa::path(tag = "me", responses((status = 200, body = [DeviceDto]), (status = 401)), security(("bearer" = [])))]
#[get("/api/me/devices")]
pub async fn list_devices(
    principal: Principal,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let devices = state
        .store
        .primary()
        .list_devices(principal.user.id)
        .await?;
    Ok(HttpResponse::Ok().json(devices.iter().map(DeviceDto::from).collect::<Vec<_>>()))
}

/// Sign a device out: its refresh tokens are revoked, its access tokens stop working and its
/// open sockets are closed (4001).
#[utoipa::path(
    tag = "me",
    params(("device_id" = String, Path)),
    responses((status = 204), (status = 401), (status = 404)),
    security(("bearer" = []))
)]
#[delete("/api/me/devices/{device_id}")]
pub async fn revoke_device(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device_id =
        DeviceId::parse(&path).map_err(|_| ApiError::NotFound("no such device".into()))?;
    let found = state
        .store
        .primary()
        .revoke_device(principal.user.id, &device_id, OffsetDateTime::now_utc())
        .await?;
    if !found {
        return Err(ApiError::NotFound("no such device".into()));
    }
    state
        .publisher
        .access_changed(AccessChange::User(principal.user.id));
    Ok(HttpResponse::NoContent().finish())
}
