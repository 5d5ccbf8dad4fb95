//! `Principal`: the signed-in user of a request, extracted from `Authorization: Bearer <jwt>`.
//! Beyond the token's signature and expiry, the user must still be active, the device not
//! revoked and the token's session not ended; that is checked on the primary on every request
//! so it takes effect at once.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use banter_core::{DeviceId, User};

use super::{TokenError, Verified};
use crate::{ApiError, ApiState, codes};

#[derive(Clone, Debug)]
pub struct Principal {
    pub user: User,
    pub device_id: DeviceId,
    /// The session (refresh-token family) the token belongs to.
    pub session_id: uuid::Uuid,
    /// When the access token expires, in Unix seconds.
    pub expires_at: i64,
}

/// Verifies an access token and loads its user, for any transport (HTTP or WebSocket).
pub async fn verify_access_token(state: &ApiState, token: &str) -> Result<Principal, ApiError> {
    load_principal(state, verify_token(state, token)?).await
}

/// The token's signature and expiry only: who it names, with no database read. A caller that
/// keeps principals (the socket gateway's bounded cache) follows with [`load_principal`].
pub fn verify_token(state: &ApiState, token: &str) -> Result<Verified, ApiError> {
    state.jwt.verify(token).map_err(|e| match e {
        TokenError::Expired => ApiError::unauthorized(codes::TOKEN_EXPIRED, e.to_string()),
        TokenError::Invalid => ApiError::unauthorized(codes::INVALID_TOKEN, e.to_string()),
    })
}

/// The user behind a verified token, read on the primary: still active, device not revoked,
/// session not ended.
pub async fn load_principal(state: &ApiState, verified: Verified) -> Result<Principal, ApiError> {
    let user = state
        .store
        .primary()
        .active_principal(verified.user, &verified.device, verified.session)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized(
                codes::INVALID_TOKEN,
                "this session has ended (signed out, device revoked, password changed or \
                 account deactivated): sign in again",
            )
        })?;
    Ok(Principal {
        user,
        device_id: verified.device,
        session_id: verified.session,
        expires_at: verified.expires_at,
    })
}

/// The token of an `Authorization: Bearer <token>` header. The scheme is matched
/// case-insensitively (RFC 9110 §11.1), and any amount of space may separate it from the token.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<ApiState>>().cloned();
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| anyhow::anyhow!("ApiState is not registered"))?;
            let header = header.ok_or_else(|| {
                ApiError::unauthorized(codes::UNAUTHENTICATED, "sign in: this needs a bearer token")
            })?;
            let token = bearer_token(&header).ok_or_else(|| {
                ApiError::unauthorized(
                    codes::INVALID_TOKEN,
                    "Authorization must be 'Bearer <token>'",
                )
            })?;
            verify_access_token(&state, token).await
        })
    }
}

/// An optional sign-in: `None` without an `Authorization` header, an error for a bad token
/// (a client that sends a token wants to know it is not accepted, not be served anonymously).
pub struct MaybePrincipal(pub Option<Principal>);

impl FromRequest for MaybePrincipal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        if !req.headers().contains_key(AUTHORIZATION) {
            return Box::pin(async { Ok(MaybePrincipal(None)) });
        }
        let principal = Principal::from_request(req, payload);
        Box::pin(async move { Ok(MaybePrincipal(Some(principal.await?))) })
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer abc", "bearer abc", "BEARER abc", "BeArEr   abc "] {
            assert_eq!(bearer_token(header), Some("abc"), "{header}");
        }
        for header in ["Basic abc", "Bearer", "Bearer   ", "Bearerabc", "abc"] {
            assert_eq!(bearer_token(header), None, "{header}");
        }
    }
}
