//! `Principal`: the signed-in user of a request, extracted from `Authorization: Bearer <jwt>`.
//! The token is Banter's own (HS256, `iss: banter`: a session of a device) or one of a
//! configured external issuer's (`external.rs`: verified against its JWKS, its subject mapped
//! to a local user created on first sight). Beyond the token's signature and expiry, the user
//! must still be active and, for Banter's tokens, the device not revoked and the session not
//! ended; that is checked on the primary on every request so it takes effect at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use banter_core::{AccessChange, DeviceId, User};

use super::api_key::{PresentedKey, required_scope};
use super::external::{ExternalError, ExternalIdentity, LOCAL_ISSUER};
use super::{TokenError, Verified};
use crate::{ApiError, ApiState, codes};

/// How a principal signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// Banter's own access token: a session (refresh-token family) of a device.
    Session {
        device: DeviceId,
        session: uuid::Uuid,
    },
    /// A token of an external identity provider, by its `iss`.
    External { issuer: Arc<str> },
    /// A trusted backend's API key (REST only).
    ApiKey(KeyCredential),
}

/// The key a request came with, and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyCredential {
    pub id: uuid::Uuid,
    pub name: String,
    pub scopes: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Principal {
    pub user: User,
    pub credential: Credential,
    /// When the access token expires, in Unix seconds.
    pub expires_at: i64,
}

impl Principal {
    /// `Ok` for an admin, else 403 "only admins may {action}". (An API key never acts as an
    /// admin: its principal's role is moderator at most.)
    pub fn require_admin(&self, action: &str) -> Result<(), ApiError> {
        if self.user.role.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("only admins may {action}")))
        }
    }

    /// The session this principal's token belongs to, for Banter's own tokens.
    pub fn session(&self) -> Option<uuid::Uuid> {
        match &self.credential {
            Credential::Session { session, .. } => Some(*session),
            Credential::External { .. } | Credential::ApiKey(_) => None,
        }
    }

    /// The API key this request came with, if it did.
    pub fn api_key(&self) -> Option<&KeyCredential> {
        match &self.credential {
            Credential::ApiKey(key) => Some(key),
            _ => None,
        }
    }

    /// What per-device limits count this principal as: the device, or the issuer.
    pub fn device_key(&self) -> String {
        match &self.credential {
            Credential::Session { device, .. } => format!("{}/{}", self.user.id, device.as_ref()),
            Credential::External { issuer } => format!("{}/external:{issuer}", self.user.id),
            Credential::ApiKey(key) => format!("{}/key:{}", self.user.id, key.id),
        }
    }
}

/// A token whose signature, issuer and expiry hold: who it names, not yet looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    Local(Verified),
    External(ExternalIdentity),
    /// An API key (`bk_…`); checked against the store when loaded.
    ApiKey(PresentedKey),
}

impl Token {
    /// Unix seconds.
    pub fn expires_at(&self) -> i64 {
        match self {
            Token::Local(v) => v.expires_at,
            Token::External(e) => e.expires_at,
            Token::ApiKey(_) => i64::MAX,
        }
    }
}

/// Verifies an access token and loads its user, for any transport (HTTP or WebSocket).
pub async fn verify_access_token(state: &ApiState, token: &str) -> Result<Principal, ApiError> {
    load_principal(state, verify_token(state, token).await?).await
}

#[derive(serde::Deserialize)]
struct UnverifiedIssuer {
    iss: Option<String>,
}

/// The token's signature, issuer and expiry only: who it names, with no database read (an
/// external issuer's keys may be fetched). A caller that keeps principals (the socket
/// gateway's bounded cache) follows with [`load_principal`].
pub async fn verify_token(state: &ApiState, token: &str) -> Result<Token, ApiError> {
    if token.starts_with(super::api_key::PREFIX) {
        return PresentedKey::parse(token)
            .map(Token::ApiKey)
            .ok_or_else(|| {
                ApiError::unauthorized(codes::INVALID_TOKEN, "this is not a well-formed API key")
            });
    }
    if !state.external.is_empty()
        && let Ok(UnverifiedIssuer { iss: Some(iss) }) =
            jsonwebtoken::dangerous::insecure_decode_claims::<UnverifiedIssuer>(token)
        && iss != LOCAL_ISSUER
        && state.external.knows(&iss)
    {
        return state
            .external
            .verify(&iss, token)
            .await
            .map(Token::External)
            .map_err(|e| match e {
                ExternalError::Expired => {
                    ApiError::unauthorized(codes::TOKEN_EXPIRED, e.to_string())
                }
                ExternalError::Invalid(_) => {
                    ApiError::unauthorized(codes::INVALID_TOKEN, e.to_string())
                }
                ExternalError::Unavailable(issuer) => {
                    ApiError::IdentityProviderUnavailable { issuer }
                }
            });
    }
    state
        .jwt
        .verify(token)
        .map(Token::Local)
        .map_err(|e| match e {
            TokenError::Expired => ApiError::unauthorized(codes::TOKEN_EXPIRED, e.to_string()),
            TokenError::Invalid => ApiError::unauthorized(codes::INVALID_TOKEN, e.to_string()),
        })
}

/// The user behind a verified token, read on the primary: still active and, for Banter's own
/// tokens, the device not revoked and the session not ended. An external subject seen for the
/// first time becomes a local user; where the issuer's roles claim is configured, the user's
/// role follows it.
pub async fn load_principal(state: &ApiState, token: Token) -> Result<Principal, ApiError> {
    match token {
        Token::Local(verified) => load_session(state, verified).await,
        Token::External(identity) => load_external(state, identity).await,
        Token::ApiKey(key) => load_key(state, key).await,
    }
}

/// A live key whose secret matches, and its author, with a site moderator's standing when the
/// key may `moderate` (and a viewer's otherwise), whatever the author's own role.
async fn load_key(state: &ApiState, presented: PresentedKey) -> Result<Principal, ApiError> {
    let refused =
        || ApiError::unauthorized(codes::INVALID_TOKEN, "this API key is revoked or unknown");
    let key = state
        .store
        .primary()
        .api_key(presented.id)
        .await?
        .filter(|k| k.revoked_at.is_none() && presented.matches(&k.secret_hash))
        .ok_or_else(refused)?;
    if !key.author.is_active {
        return Err(ApiError::unauthorized(
            codes::ACCOUNT_INACTIVE,
            "this API key's author is deactivated",
        ));
    }
    let mut user = key.author;
    user.role = if key.scopes.iter().any(|s| s == "moderate") {
        banter_core::Role::Moderator
    } else {
        banter_core::Role::User
    };
    Ok(Principal {
        user,
        credential: Credential::ApiKey(KeyCredential {
            id: key.id,
            name: key.name,
            scopes: key.scopes,
        }),
        expires_at: i64::MAX,
    })
}

/// Holds an API key to its route's scope and writes the use to the moderation log.
async fn admit_key(
    state: &ApiState,
    principal: &Principal,
    key: &KeyCredential,
    method: &actix_web::http::Method,
    route: Option<&str>,
    video: Option<&str>,
) -> Result<(), ApiError> {
    let route = route.unwrap_or("?");
    let scope = required_scope(method, route)
        .ok_or_else(|| ApiError::Forbidden(format!("API keys may not call {method} {route}")))?;
    if scope != "read" && !key.scopes.iter().any(|s| s == scope) {
        return Err(ApiError::Forbidden(format!(
            "this API key lacks the '{scope}' scope"
        )));
    }
    let video = video.and_then(|v| banter_core::VideoId::parse(v).ok());
    let details = serde_json::json!({
        "key_id": key.id, "key_name": key.name, "scope": scope,
        "method": method.as_str(), "route": route,
    });
    state
        .store
        .primary()
        .record_api_key_use(
            key.id,
            banter_store::NewLogEntry {
                video: video.as_ref(),
                actor: principal.user.id,
                action: "api_key",
                target_user: None,
                target_comment: None,
                reason: None,
                details: details.to_string(),
            },
        )
        .await?;
    Ok(())
}

async fn load_session(state: &ApiState, verified: Verified) -> Result<Principal, ApiError> {
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
        credential: Credential::Session {
            device: verified.device,
            session: verified.session,
        },
        expires_at: verified.expires_at,
    })
}

async fn load_external(
    state: &ApiState,
    identity: ExternalIdentity,
) -> Result<Principal, ApiError> {
    let primary = state.store.primary();
    let mut user = match primary
        .external_user(&identity.issuer, &identity.subject)
        .await?
    {
        Some(user) => user,
        None => {
            let user = primary
                .provision_external_user(
                    &identity.issuer,
                    &identity.subject,
                    &identity.usernames,
                    identity.role.unwrap_or(banter_core::Role::User),
                )
                .await?;
            tracing::info!(user_id = %user.id, issuer = %identity.issuer, username = %user.username, "external user provisioned");
            user
        }
    };
    if !user.is_active {
        return Err(ApiError::unauthorized(
            codes::ACCOUNT_INACTIVE,
            "this account is deactivated",
        ));
    }
    if let Some(role) = identity.role
        && role != user.role
    {
        user = primary
            .update_standing(user.id, Some(role), None)
            .await?
            .ok_or_else(|| ApiError::unauthorized(codes::INVALID_TOKEN, "this account is gone"))?;
        // Moderation rights follow the role on every node.
        state.publisher.access_changed(AccessChange::User(user.id));
    }
    Ok(Principal {
        user,
        credential: Credential::External {
            issuer: identity.issuer,
        },
        expires_at: identity.expires_at,
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
        let method = req.method().clone();
        let route = req.match_pattern();
        let video = req.match_info().get("video_id").map(str::to_owned);
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
            let principal = verify_access_token(&state, token).await?;
            if let Some(key) = principal.api_key() {
                admit_key(
                    &state,
                    &principal,
                    key,
                    &method,
                    route.as_deref(),
                    video.as_deref(),
                )
                .await?;
            }
            Ok(principal)
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
