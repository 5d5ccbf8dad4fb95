//! `ApiError`: every failure of the HTTP API, and the one envelope it is sent in:
//! `{"error":{"code":"…","message":"…","request_id":"…"}}`.
//!
//! The status is chosen by matching on the variant, never defaulted, so a database outage can
//! not look like a client fault. 5xx bodies carry a generic message; the cause goes to the log.

use std::fmt;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use banter_core::{
    CommentBodyError, DeviceIdError, EmailError, PasswordError, UsernameError, VideoIdError,
};
use banter_store::StoreError;

use crate::{codes, request_id};

#[derive(thiserror::Error)]
pub enum ApiError {
    /// The request body or query could not be parsed at all (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// Well-formed, but a value breaks a rule (422).
    #[error("{message}")]
    Validation { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("too many requests; retry in {} s", whole_seconds(*retry_after))]
    RateLimited { retry_after: Duration },
    /// Slow mode: this poster's last comment on the video is too recent (429).
    #[error("slow mode is on: you can comment again in {} s", whole_seconds(*retry_after))]
    SlowMode { retry_after: Duration },
    /// The chat's rules refuse this poster (a ban, a timeout, members-only chat) (403); a
    /// timeout says when it ends.
    #[error("{message}")]
    ChatRefused {
        code: &'static str,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The node is at its bound for some costly work (password hashing); retry shortly (503).
    #[error("the server is busy; retry in {} s", whole_seconds(*retry_after))]
    Busy { retry_after: Duration },
    #[error("service unavailable")]
    Unavailable,
    /// An external issuer's keys cannot be fetched and the cached ones have expired (503): the
    /// token may be fine, so this is not a 401 that would sign the user out.
    #[error("the identity provider '{issuer}' cannot be reached; try again shortly")]
    IdentityProviderUnavailable { issuer: String },
    #[error("internal error")]
    Unexpected(#[source] anyhow::Error),
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unexpected(e) => write!(f, "Unexpected({e:?})"),
            other => write!(f, "{other}"),
        }
    }
}

impl ApiError {
    pub fn validation(code: &'static str, err: impl fmt::Display) -> Self {
        ApiError::Validation {
            code,
            message: err.to_string(),
        }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            code,
            message: message.into(),
        }
    }

    /// Whole seconds the client should wait before trying again, where that is known.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after }
            | ApiError::SlowMode { retry_after }
            | ApiError::Busy { retry_after } => Some(whole_seconds(*retry_after)),
            ApiError::ChatRefused { retry_after, .. } => retry_after.map(whole_seconds),
            ApiError::IdentityProviderUnavailable { .. } => Some(5),
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Validation { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::ChatRefused { code, .. } => code,
            ApiError::Forbidden(_) => codes::FORBIDDEN,
            ApiError::NotFound(_) => codes::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } => codes::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => codes::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed => codes::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => codes::RATE_LIMITED,
            ApiError::SlowMode { .. } => codes::SLOW_MODE,
            ApiError::Busy { .. } => codes::BUSY,
            ApiError::Unavailable => codes::UNAVAILABLE,
            ApiError::IdentityProviderUnavailable { .. } => codes::IDENTITY_PROVIDER_UNAVAILABLE,
            ApiError::Unexpected(_) => codes::INTERNAL,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::ChatRefused { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } | ApiError::SlowMode { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable
            | ApiError::Busy { .. }
            | ApiError::IdentityProviderUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = request_id::current();
        if let ApiError::Unexpected(cause) = self {
            tracing::error!(request_id = %request_id, error = ?cause, "request failed");
        }
        let mut body = serde_json::json!({
            "error": {
                "code": self.code(),
                "message": self.to_string(),
                "request_id": request_id,
            }
        });
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if let Some(seconds) = self.retry_after() {
            body["error"]["retry_after"] = serde_json::json!(seconds);
            response.insert_header((RETRY_AFTER, seconds.to_string()));
        }
        response.json(body)
    }
}

/// A wait in whole seconds, rounded up (a client that waits the advertised time must then be
/// let through) and at least 1. The message and `Retry-After` both use it, so they agree.
pub(crate) fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict("email") => ApiError::Conflict {
                code: codes::EMAIL_TAKEN,
                message: "email is already registered".into(),
            },
            StoreError::Conflict("username") => ApiError::Conflict {
                code: codes::USERNAME_TAKEN,
                message: "username is taken".into(),
            },
            StoreError::Conflict("video") => ApiError::Conflict {
                code: codes::VIDEO_EXISTS,
                message: "video already exists".into(),
            },
            StoreError::Conflict(field) => ApiError::Conflict {
                code: codes::CONFLICT,
                message: format!("{field} conflicts with an existing record"),
            },
            // Saturated, not broken: the client retries shortly.
            StoreError::Busy => ApiError::Busy {
                retry_after: Duration::from_secs(1),
            },
            StoreError::Unexpected(e) => ApiError::Unexpected(e),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        ApiError::Unexpected(err)
    }
}

impl From<CommentBodyError> for ApiError {
    fn from(err: CommentBodyError) -> Self {
        let code = match err {
            CommentBodyError::Empty => codes::COMMENT_EMPTY,
            CommentBodyError::TooLong { .. } => codes::COMMENT_TOO_LONG,
            CommentBodyError::ControlCharacter => codes::COMMENT_CONTROL_CHARACTER,
        };
        ApiError::validation(code, err)
    }
}

macro_rules! validation_from {
    ($($err:ty => $code:expr),* $(,)?) => {
        $(impl From<$err> for ApiError {
            fn from(err: $err) -> Self {
                ApiError::validation($code, err)
            }
        })*
    };
}

validation_from!(
    VideoIdError => codes::INVALID_VIDEO_ID,
    UsernameError => codes::INVALID_USERNAME,
    EmailError => codes::INVALID_EMAIL,
    PasswordError => codes::INVALID_PASSWORD,
    DeviceIdError => codes::INVALID_DEVICE_ID,
    banter_core::RoleError => codes::INVALID_ROLE,
    banter_core::VisibilityError => codes::INVALID_VISIBILITY,
    banter_core::ChatModeError => codes::INVALID_CHAT_MODE,
    banter_core::SlowModeError => codes::INVALID_FIELD,
    banter_core::BanDurationError => codes::INVALID_FIELD,
    banter_core::BlockedTermError => codes::INVALID_FIELD,
    banter_core::BlockedTermsActionError => codes::INVALID_FIELD,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_message_and_retry_after_agree() {
        for (wait, secs) in [(1500, "2"), (1000, "1"), (10, "1"), (59_001, "60")] {
            let err = ApiError::RateLimited {
                retry_after: Duration::from_millis(wait),
            };
            let response = err.error_response();
            assert_eq!(response.headers().get(RETRY_AFTER).unwrap(), secs);
            assert_eq!(
                err.to_string(),
                format!("too many requests; retry in {secs} s")
            );
        }
        let busy = ApiError::Busy {
            retry_after: Duration::from_millis(200),
        };
        assert_eq!(busy.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            busy.error_response().headers().get(RETRY_AFTER).unwrap(),
            "1"
        );
    }
}
