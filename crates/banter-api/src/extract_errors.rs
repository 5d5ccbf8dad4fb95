//! Turns actix-web's own extractor failures (JSON body, query string, path) into `ApiError`s, so
//! every failure leaves in the one envelope. (Unrouted requests: `banter-server`'s `methods`.)

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::web;

use crate::{ApiError, codes};

/// The largest JSON body accepted, in bytes. A 2000-character comment of 4-byte characters is
/// 8000 bytes; this leaves room for escaping and the other fields.
pub const JSON_LIMIT: usize = 32 * 1024;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(|err, _req| json_error(err).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::BadRequest {
            code: codes::INVALID_REQUEST,
            message: format!("invalid query string: {err}"),
        }
        .into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req| {
        ApiError::NotFound(format!("no such resource: {err}")).into()
    })
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => {
            ApiError::UnsupportedMediaType("request body must be application/json".into())
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::Validation {
            code: codes::INVALID_FIELD,
            message: e.to_string(),
        },
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest {
            code: codes::MALFORMED_JSON,
            message: format!("request body is not valid JSON: {e}"),
        },
        other => ApiError::BadRequest {
            code: codes::MALFORMED_JSON,
            message: format!("could not read the request body: {other}"),
        },
    }
}
