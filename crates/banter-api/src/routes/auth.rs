//! `/api/auth/*`: register, login, refresh (rotation with reuse detection), logout.

use actix_web::{HttpRequest, HttpResponse, post, web};
use banter_core::{AccessChange, DeviceId, Email, Password, Role, User, Username};
use banter_store::{NewRefreshToken, NewUser, RotateOutcome};
use time::OffsetDateTime;

use crate::auth::{RefreshToken, hash_refresh_token};
use crate::client_ip::client_ip;
use crate::dto::{AuthResponse, LoginRequest, RefreshRequest, RegisterRequest, UserDto};
use crate::json_body::JsonBody;
use crate::{ApiError, ApiState, codes};

/// `device_info`: at most this many entries, named by 1–64 characters, each a string of at most
/// 256 characters, a number, a boolean or null (the OpenAPI document says the same).
pub(crate) const DEVICE_INFO_MAX_ENTRIES: usize = 16;
const DEVICE_INFO_MAX_NAME: usize = 64;
const DEVICE_INFO_MAX_VALUE: usize = 256;

fn parse_device(
    device_id: Option<&str>,
    info: Option<serde_json::Value>,
) -> Result<(DeviceId, serde_json::Value), ApiError> {
    let device_id = match device_id {
        Some(raw) => DeviceId::parse(raw)?,
        None => DeviceId::parse(&uuid::Uuid::new_v4().to_string())?,
    };
    let info = info.unwrap_or_else(|| serde_json::json!({}));
    let invalid = || {
        ApiError::validation(
            codes::INVALID_FIELD,
            format!(
                "device_info must be an object of at most {DEVICE_INFO_MAX_ENTRIES} entries, named \
                 by 1–{DEVICE_INFO_MAX_NAME} characters, whose values are strings of at most \
                 {DEVICE_INFO_MAX_VALUE} characters, numbers, booleans or null"
            ),
        )
    };
    let entries = info.as_object().ok_or_else(invalid)?;
    let entry_ok = |(name, value): (&String, &serde_json::Value)| {
        (1..=DEVICE_INFO_MAX_NAME).contains(&name.chars().count())
            && match value {
                serde_json::Value::String(s) => s.chars().count() <= DEVICE_INFO_MAX_VALUE,
                serde_json::Value::Number(_)
                | serde_json::Value::Bool(_)
                | serde_json::Value::Null => true,
                _ => false,
            }
    };
    if entries.len() > DEVICE_INFO_MAX_ENTRIES || !entries.iter().all(entry_ok) {
        return Err(invalid());
    }
    Ok((device_id, info))
}

/// Records the device and issues a fresh token pair (a new refresh-token family).
async fn start_session(
    state: &ApiState,
    user: &User,
    device_id: DeviceId,
    info: serde_json::Value,
) -> Result<AuthResponse, ApiError> {
    let now = OffsetDateTime::now_utc();
    let primary = state.store.primary();
    primary
        .upsert_device(user.id, &device_id, info, now)
        .await?;
    primary.record_login(user.id, now).await?;
    let token = RefreshToken::generate()?;
    let session = primary
        .insert_refresh_token(NewRefreshToken {
            token_hash: &token.hash,
            user_id: user.id,
            device_id: &device_id,
            family_id: None,
            expires_at: now + state.config.refresh_token_ttl,
        })
        .await?;
    token_response(state, user, &device_id, session, token.token)
}

fn token_response(
    state: &ApiState,
    user: &User,
    device_id: &DeviceId,
    session: uuid::Uuid,
    refresh_token: String,
) -> Result<AuthResponse, ApiError> {
    Ok(AuthResponse {
        user: UserDto::from(user),
        access_token: state.jwt.issue(user.id, device_id, session)?,
        token_type: "Bearer",
        expires_in: state.jwt.ttl().as_secs(),
        refresh_token,
        device_id: device_id.as_ref().to_owned(),
    })
}

/// Create an account and sign in on this device.
#[utoipa::path(
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = AuthResponse),
        (status = 409, description = "email_taken or username_taken"),
        (status = 422, description = "invalid_email, invalid_username, invalid_password, …"),
        (status = 429, description = "rate_limited"),
        (status = 503, description = "busy: too many password checks in progress"),
    )
)]
#[post("/api/auth/register")]
pub async fn register(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonBody<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .limits
        .register_per_ip
        .check(&client_ip(&req, &state.config.client_ip))?;
    let body = body.into_inner();
    let email = Email::parse(&body.email)?;
    let username = Username::parse(&body.username)?;
    let password = Password::parse(&body.password)?;
    let (device_id, info) = parse_device(body.device_id.as_deref(), body.device_info)?;
    let password_hash = state.passwords.hash(password.expose().to_owned()).await?;
    let user = state
        .store
        .primary()
        .create_user(NewUser {
            email,
            username,
            password_hash,
            role: Role::User,
        })
        .await?;
    tracing::info!(user_id = %user.id, "user registered");
    let session = start_session(&state, &user, device_id, info).await?;
    Ok(HttpResponse::Created().json(session))
}

/// Sign in with an email or username and a password.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = AuthResponse),
        (status = 401, description = "invalid_credentials or account_inactive"),
        (status = 429, description = "rate_limited"),
        (status = 503, description = "busy: too many password checks in progress"),
    )
)]
#[post("/api/auth/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonBody<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    state
        .limits
        .login_per_ip
        .check(&client_ip(&req, &state.config.client_ip))?;
    let (device_id, info) = parse_device(body.device_id.as_deref(), body.device_info)?;
    let found = if body.login.len() <= 254 && body.password.len() <= 1024 {
        state
            .store
            .primary()
            .find_credentials(body.login.trim())
            .await?
    } else {
        None
    };
    // One budget per account, whether it is named by email or username; unknown logins get
    // one each, so probing them costs the same as guessing a password.
    let account_key = match &found {
        Some((user, _)) => user.id.to_string(),
        None => format!("login:{}", body.login.trim().to_lowercase()),
    };
    state.limits.login_per_account.check(&account_key)?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    // Always run one verification, against a dummy hash for unknown users.
    let verified = state.passwords.verify(body.password, hash).await?;
    let user = match user {
        Some(user) if verified => user,
        _ => {
            return Err(ApiError::unauthorized(
                codes::INVALID_CREDENTIALS,
                "wrong login or password",
            ));
        }
    };
    if !user.is_active {
        return Err(ApiError::unauthorized(
            codes::ACCOUNT_INACTIVE,
            "this account is deactivated",
        ));
    }
    let session = start_session(&state, &user, device_id, info).await?;
    Ok(HttpResponse::Ok().json(session))
}

/// Exchange a refresh token for a new token pair. Each refresh token works once; presenting a
/// used one signs that session out everywhere, except within the grace window after its use
/// (`BANTER_REFRESH_REUSE_GRACE_SECS`, 10 s by default), when it gets the same new pair's
/// refresh token again, so two tabs refreshing at once both stay signed in.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = AuthResponse),
        (status = 401, description = "invalid_refresh_token, refresh_token_reused, session_ended or account_inactive"),
    )
)]
#[post("/api/auth/refresh")]
pub async fn refresh(
    state: web::Data<ApiState>,
    body: JsonBody<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let old_hash = hash_refresh_token(&body.refresh_token);
    let new = state.successors.successor(&body.refresh_token);
    let expires = OffsetDateTime::now_utc() + state.config.refresh_token_ttl;
    let primary = state.store.primary();
    let (user_id, device_id, session) = match primary
        .rotate_refresh_token(
            &old_hash,
            &new.hash,
            expires,
            state.config.refresh_reuse_grace,
        )
        .await?
    {
        RotateOutcome::Rotated {
            user_id,
            device_id,
            family_id,
        } => (user_id, device_id, family_id),
        RotateOutcome::Reused { user_id } => {
            tracing::warn!("refresh token reuse detected; token family revoked");
            state.publisher.access_changed(AccessChange::User(user_id));
            return Err(ApiError::unauthorized(
                codes::REFRESH_TOKEN_REUSED,
                "this refresh token was already used; the session has been signed out",
            ));
        }
        RotateOutcome::Revoked => {
            return Err(ApiError::unauthorized(
                codes::SESSION_ENDED,
                "this session was signed out; sign in again",
            ));
        }
        RotateOutcome::Expired | RotateOutcome::Unknown => {
            return Err(ApiError::unauthorized(
                codes::INVALID_REFRESH_TOKEN,
                "refresh token is invalid or expired",
            ));
        }
    };
    let device_id = DeviceId::parse(&device_id)?;
    let user = primary
        .active_principal(user_id, &device_id, session)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized(
                codes::ACCOUNT_INACTIVE,
                "the account or device is no longer active",
            )
        })?;
    Ok(HttpResponse::Ok().json(token_response(
        &state, &user, &device_id, session, new.token,
    )?))
}

/// Sign out: ends the refresh token's session. Its refresh tokens and its access tokens stop
/// working at once, and sockets opened with them are closed.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204), (status = 401, description = "invalid_refresh_token"))
)]
#[post("/api/auth/logout")]
pub async fn logout(
    state: web::Data<ApiState>,
    body: JsonBody<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let hash = hash_refresh_token(&body.refresh_token);
    let Some(user) = state.store.primary().revoke_token_family(&hash).await? else {
        return Err(ApiError::unauthorized(
            codes::INVALID_REFRESH_TOKEN,
            "refresh token is invalid",
        ));
    };
    state.publisher.access_changed(AccessChange::User(user));
    Ok(HttpResponse::NoContent().finish())
}
