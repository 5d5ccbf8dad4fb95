//! The OpenAPI document as served: what utoipa generates from the handlers' annotations,
//! completed with what annotations do not say, so that strict validators and code generators
//! accept it and it describes every answer the server can give:
//!
//! - a `description` on every response, and the error envelope as the schema of every error;
//! - the statuses every kind of operation can return (400/413/415/422 for bodies, 400/422 for
//!   queries, 404/422 for path ids, 401 where a token is read, 429 and 503 with `Retry-After`
//!   where limits apply, 500);
//! - the rules the server enforces on request fields (lengths, patterns, ranges, enums);
//! - the optional bearer of public reads, and the operational paths (`/healthz`, `/readyz`,
//!   `/metrics`, the socket upgrade, this document).
//!
//! Kept out: the rules themselves (`banter-core`), the handlers.

use banter_core::{
    BAN_MAX_SECONDS, BAN_MIN_SECONDS, BLOCKED_TERM_MAX_CHARS, BLOCKED_TERMS_MAX,
    COMMENT_BODY_MAX_CHARS, DEVICE_ID_MAX_LEN, EMAIL_MAX_LEN, MODERATION_REASON_MAX_CHARS,
    PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS, SLOW_MODE_MAX_SECONDS, USERNAME_MAX_LEN,
    USERNAME_MIN_LEN, VIDEO_ID_MAX_LEN,
};
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::routes::openapi::ApiDoc;

/// Operations limited per IP, account, user or device: 429 with `Retry-After`.
const RATE_LIMITED: &[(&str, &str)] = &[
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("patch", "/api/me"),
    ("post", "/api/videos/{video_id}/comments"),
];

/// Operations that hash a password: 503 `busy` with `Retry-After` past the node's bound (every
/// database-backed operation may also answer 503 `busy` when the pool is saturated).
const HASHING: &[(&str, &str)] = &[
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("patch", "/api/me"),
];

/// Public reads that take a token when one is sent (it must then be valid).
const OPTIONAL_BEARER: &[(&str, &str)] = &[
    ("get", "/api/videos/{video_id}"),
    ("get", "/api/videos/{video_id}/comments"),
];

pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    add_components(&mut doc);
    constrain_schemas(&mut doc);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                complete_operation(method, path, op);
            }
        }
        add_operational_paths(paths);
    }
    doc
}

fn reason(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "No content",
        "400" => {
            "Malformed: the body is not JSON, or the query string is invalid or has an unknown parameter (`malformed_json`, `invalid_request`)"
        }
        "401" => {
            "No token, or a token that is invalid, expired or whose session ended (`unauthenticated`, `invalid_token`, `token_expired`, …)"
        }
        "403" => {
            "Signed in, but not allowed (`forbidden`; on posting also `banned`, `timed_out`, `members_only_chat`)"
        }
        "404" => "No such resource (`not_found`)",
        "409" => {
            "Conflicts with what exists (`email_taken`, `username_taken`, `video_exists`, `video_id_reserved`, `comment_unavailable`)"
        }
        "413" => "The body is larger than 32 KiB (`payload_too_large`)",
        "415" => "The body is not `application/json` (`unsupported_media_type`)",
        "422" => {
            "A value breaks a rule, or the body is not a JSON object (`invalid_field`, `invalid_request`, `invalid_email`, …)"
        }
        "429" => "Rate limited (`rate_limited`): retry after `Retry-After` seconds",
        "500" => "Internal error (`internal_error`); nothing internal is said",
        "503" => {
            "Busy or unavailable (`busy`, `service_unavailable`): retry after `Retry-After` seconds"
        }
        _ => "Response",
    }
}

fn add_components(doc: &mut Value) {
    let components = doc["components"]
        .as_object_mut()
        .expect("the document has components");
    let schemas = components
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("schemas is an object");
    schemas.insert(
        "ErrorEnvelope".into(),
        json!({
            "type": "object",
            "description": "Every error: a stable `code` to branch on, a message for people, and the request id.",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message", "request_id"],
                "properties": {
                    "code": {"type": "string", "description": "Stable; see the codes in the README."},
                    "message": {"type": "string"},
                    "request_id": {"type": "string"},
                    "retry_after": {"type": "integer", "minimum": 1, "description": "Whole seconds to wait before trying again, where known: rate limits, slow mode, timeouts, busy."}
                }
            }}
        }),
    );
    components.insert(
        "headers".into(),
        json!({"Retry-After": {
            "description": "Whole seconds to wait before retrying.",
            "required": true,
            "schema": {"type": "integer", "minimum": 1}
        }}),
    );
}

/// Sets `schema.properties.<field>` keys (on both branches of a nullable field's type).
fn constrain(doc: &mut Value, schema: &str, field: &str, rules: Value) {
    let Some(property) = doc["components"]["schemas"][schema]["properties"].get_mut(field) else {
        panic!("the document has no {schema}.{field}")
    };
    let property = property.as_object_mut().expect("a property is an object");
    for (k, v) in rules.as_object().expect("rules are an object") {
        property.insert(k.clone(), v.clone());
    }
}

fn constrain_schemas(doc: &mut Value) {
    let email = json!({
        "maxLength": EMAIL_MAX_LEN,
        "pattern": r"^[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
    });
    let username = json!({
        "minLength": USERNAME_MIN_LEN,
        "maxLength": USERNAME_MAX_LEN,
        "pattern": format!("^[A-Za-z0-9][A-Za-z0-9_.-]{{{},{}}}$", USERNAME_MIN_LEN - 1, USERNAME_MAX_LEN - 1),
    });
    let password = json!({"minLength": PASSWORD_MIN_CHARS, "maxLength": PASSWORD_MAX_CHARS});
    let device_id = json!({
        "minLength": 1,
        "maxLength": DEVICE_ID_MAX_LEN,
        "pattern": format!("^[A-Za-z0-9._:-]{{1,{DEVICE_ID_MAX_LEN}}}$"),
    });
    let device_info = json!({
        "description": "Free-form facts about the device, shown in the device list: at most 16 entries, names of 1–64 characters, values strings of at most 256 characters, numbers, booleans or null.",
        "maxProperties": crate::routes::auth::DEVICE_INFO_MAX_ENTRIES,
        "propertyNames": {"minLength": 1, "maxLength": 64},
        "additionalProperties": {"type": ["string", "number", "boolean", "null"], "maxLength": 256},
    });
    for schema in ["RegisterRequest", "LoginRequest"] {
        constrain(doc, schema, "device_id", device_id.clone());
        constrain(doc, schema, "device_info", device_info.clone());
    }
    constrain(doc, "RegisterRequest", "email", email.clone());
    constrain(doc, "RegisterRequest", "username", username.clone());
    constrain(doc, "RegisterRequest", "password", password.clone());
    constrain(doc, "UpdateMeRequest", "email", email);
    constrain(doc, "UpdateMeRequest", "username", username.clone());
    constrain(doc, "UpdateMeRequest", "password", password);
    // A new password needs the current one (`null` means "no new password").
    doc["components"]["schemas"]["UpdateMeRequest"]["if"] =
        json!({"required": ["password"], "properties": {"password": {"type": "string"}}});
    doc["components"]["schemas"]["UpdateMeRequest"]["then"] = json!({"required": ["current_password"], "properties": {"current_password": {"type": "string"}}});
    let comment = json!({
        "minLength": 1,
        "maxLength": COMMENT_BODY_MAX_CHARS,
        "pattern": r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$",
        "description": "At most 2000 characters as sent, at least 1 after trimming white space; no control characters but newline, anywhere.",
    });
    constrain(doc, "NewCommentRequest", "body", comment);
    let video_id = json!({
        "minLength": 1,
        "maxLength": VIDEO_ID_MAX_LEN,
        "pattern": format!("^[A-Za-z0-9_-]{{1,{VIDEO_ID_MAX_LEN}}}$"),
    });
    constrain(doc, "CreateVideoRequest", "id", video_id.clone());
    let visibility = json!({"enum": ["public", "private", "members", null]});
    constrain(doc, "CreateVideoRequest", "visibility", visibility);
    constrain(
        doc,
        "UpdateVideoRequest",
        "visibility",
        json!({"enum": ["public", "private", "members"]}),
    );
    constrain(
        doc,
        "AdminUpdateUserRequest",
        "role",
        json!({"enum": ["user", "moderator", "admin", null]}),
    );
    constrain(
        doc,
        "UserDto",
        "role",
        json!({"enum": ["user", "moderator", "admin"]}),
    );
    constrain(
        doc,
        "VideoDto",
        "visibility",
        json!({"enum": ["public", "private", "members"]}),
    );
    let duration = json!({"minimum": BAN_MIN_SECONDS, "maximum": BAN_MAX_SECONDS});
    let reason = json!({"maxLength": MODERATION_REASON_MAX_CHARS});
    for schema in ["BanRequest", "SiteBanRequest"] {
        constrain(doc, schema, "duration_seconds", duration.clone());
        constrain(doc, schema, "reason", reason.clone());
    }
    constrain(
        doc,
        "UpdateChatRequest",
        "slow_mode_seconds",
        json!({"minimum": 0, "maximum": SLOW_MODE_MAX_SECONDS}),
    );
    constrain(
        doc,
        "UpdateChatRequest",
        "chat_mode",
        json!({"enum": ["everyone", "members", null]}),
    );
    constrain(
        doc,
        "AuthorDto",
        "role",
        json!({"enum": ["owner", "moderator", "admin", null]}),
    );
    constrain(
        doc,
        "ChatDto",
        "chat_mode",
        json!({"enum": ["everyone", "members"]}),
    );
    constrain(
        doc,
        "UpdateChatRequest",
        "blocked_terms_action",
        json!({"enum": ["refuse", "hold", null]}),
    );
    constrain(
        doc,
        "ChatDto",
        "blocked_terms_action",
        json!({"enum": ["refuse", "hold"]}),
    );
    constrain(
        doc,
        "BlockedTermsRequest",
        "terms",
        json!({"maxItems": BLOCKED_TERMS_MAX, "items": {
            "type": "string",
            "maxLength": BLOCKED_TERM_MAX_CHARS,
            "pattern": r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$",
        }}),
    );
    constrain(
        doc,
        "CreateApiKeyRequest",
        "name",
        json!({"minLength": 1, "maxLength": crate::routes::api_keys::NAME_MAX,
            "pattern": r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"}),
    );
    constrain(doc, "CreateApiKeyRequest", "author", username);
    constrain(
        doc,
        "CreateApiKeyRequest",
        "scopes",
        json!({"minItems": 1, "maxItems": 10, "items": {"type": "string", "enum": ["post", "announce", "moderate"]}}),
    );
    constrain(
        doc,
        "CreateWebhookRequest",
        "url",
        json!({"maxLength": crate::routes::webhooks::URL_MAX_LEN, "pattern": crate::routes::webhooks::URL_PATTERN}),
    );
    constrain(
        doc,
        "CreateWebhookRequest",
        "events",
        json!({"minItems": 1, "maxItems": crate::routes::webhooks::EVENTS_MAX, "items": {
            "type": "string", "pattern": crate::routes::webhooks::EVENT_PATTERN,
        }}),
    );
    // Path and query parameters.
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let deliveries = path == "/api/webhooks/{webhook_id}/deliveries";
            for op in item
                .as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
            {
                let params = op.get_mut("parameters").and_then(Value::as_array_mut);
                for param in params.into_iter().flatten() {
                    let name = param["name"].as_str().unwrap_or_default().to_owned();
                    let schema = &mut param["schema"];
                    match name.as_str() {
                        "video_id" => *schema = json!({"type": "string"}).merged(&video_id),
                        "device_id" => *schema = json!({"type": "string"}).merged(&device_id),
                        "delivery_id" => {
                            *schema = json!({"type": "integer", "minimum": 1, "format": "int64"})
                        }
                        "after" if deliveries => {
                            *schema = json!({"type": "integer", "minimum": 0, "format": "int64"})
                        }
                        "state" if deliveries => {
                            *schema = json!({"type": "string", "enum": ["dead", "pending"]})
                        }
                        "user_id" | "comment_id" | "webhook_id" | "key_id" => {
                            *schema = json!({"type": "string", "format": "uuid"})
                        }
                        "limit" => {
                            *schema = json!({"type": "integer", "minimum": 1, "maximum": 100})
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

trait Merged {
    fn merged(self, other: &Value) -> Value;
}

impl Merged for Value {
    fn merged(mut self, other: &Value) -> Value {
        if let (Some(a), Some(b)) = (self.as_object_mut(), other.as_object()) {
            for (k, v) in b {
                a.insert(k.clone(), v.clone());
            }
        }
        self
    }
}

fn error_response(status: &str) -> Value {
    let mut response = json!({
        "description": reason(status),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    });
    if status == "429" || status == "503" {
        response["headers"] = json!({"Retry-After": {"$ref": "#/components/headers/Retry-After"}});
    }
    response
}

fn complete_operation(method: &str, path: &str, op: &mut Value) {
    let Some(op_map) = op.as_object_mut() else {
        return;
    };
    let has_body = op_map.contains_key("requestBody");
    let params: Vec<(String, String)> = op_map
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["in"].as_str().unwrap_or_default().to_owned(),
                p["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let key = (method, path);
    let optional_bearer = OPTIONAL_BEARER.contains(&key);
    if optional_bearer {
        op_map.insert("security".into(), json!([{}, {"bearer": []}]));
    }
    let secured = op_map.contains_key("security");
    let mut statuses: Vec<&str> = vec!["500"];
    if has_body {
        statuses.extend(["400", "413", "415", "422"]);
    }
    if params.iter().any(|(kind, _)| kind == "query") {
        statuses.extend(["400", "422"]);
    }
    if params.iter().any(|(kind, _)| kind == "path") {
        statuses.extend(["404", "422"]);
    }
    if secured {
        statuses.push("401");
    }
    if RATE_LIMITED.contains(&key) {
        statuses.push("429");
    }
    // Past the node's bound on password hashes, or when no database connection comes free
    // within the acquire timeout (every operation but the document itself reads the database).
    if HASHING.contains(&key) || (path.starts_with("/api/") && path != "/api/openapi.json") {
        statuses.push("503");
    }
    let responses = op_map
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    for status in statuses {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| json!({}));
    }
    for (status, response) in responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        if is_error {
            let full = error_response(status);
            let described = response.get("description").cloned();
            *response = full.as_object().cloned().unwrap_or_else(Map::new);
            if let Some(described) = described.filter(|d| d.as_str().is_some_and(|s| !s.is_empty()))
            {
                response.insert("description".into(), described);
            }
        } else if !response.contains_key("description") {
            response.insert("description".into(), json!(reason(status)));
        }
    }
}

fn add_operational_paths(paths: &mut Map<String, Value>) {
    let text = |description: &str| json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}});
    let probe = |summary: &str, ok: &str, failing: Option<&str>| {
        let mut responses = json!({"200": {"description": ok, "content": {"application/json": {"schema": {"type": "object"}}}}});
        if let Some(failing) = failing {
            responses["503"] = json!({"description": failing, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        json!({"get": {"tags": ["operations"], "summary": summary, "operationId": summary.to_lowercase().replace(' ', "_"), "responses": responses}})
    };
    paths.insert(
        "/healthz".into(),
        probe("Liveness", "The process is alive", None),
    );
    paths.insert(
        "/readyz".into(),
        probe(
            "Readiness",
            "Ready: database and bus reachable, not draining",
            Some("Not ready (draining, database or bus unreachable)"),
        ),
    );
    paths.insert(
        "/metrics".into(),
        json!({"get": {"tags": ["operations"], "summary": "Prometheus metrics", "operationId": "metrics", "responses": {"200": text("Prometheus text exposition format")}}}),
    );
    paths.insert(
        "/api/openapi.json".into(),
        json!({"get": {"tags": ["operations"], "summary": "This document", "operationId": "openapi", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}}),
    );
    paths.insert(
        "/socket/websocket".into(),
        json!({"get": {
            "tags": ["realtime"],
            "summary": "Phoenix Channels v2 WebSocket",
            "operationId": "socket",
            "description": "Upgrade to a WebSocket speaking Phoenix Channels (`vsn=2.0.0`). A token goes in the `token` query parameter or the `base64url.bearer.phx.<token>` subprotocol. Refusals happen before the upgrade.",
            "parameters": [
                {"name": "vsn", "in": "query", "required": true, "schema": {"type": "string", "enum": ["2.0.0", "1.0.0"]}},
                {"name": "token", "in": "query", "required": false, "schema": {"type": "string"}}
            ],
            "responses": {
                "101": {"description": "Switching protocols"},
                "400": {"description": "Not a WebSocket upgrade"},
                "403": {"description": "Bad `vsn`, bad token, anonymous sockets off, or origin not allowed"},
                "429": {"description": "Too many sockets from this client IP"},
                "503": {"description": "The node is draining"}
            }
        }}),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_response_is_described_and_every_error_has_the_envelope() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    assert!(
                        response["description"]
                            .as_str()
                            .is_some_and(|d| !d.is_empty()),
                        "{method} {path} {status}"
                    );
                    if path.starts_with("/api/") && status.starts_with('4') {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorEnvelope",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
        let login = &doc["paths"]["/api/auth/login"]["post"]["responses"];
        assert!(login["429"]["headers"]["Retry-After"].is_object());
        assert!(login["415"].is_object() && login["413"].is_object() && login["400"].is_object());
        assert_eq!(
            doc["paths"]["/api/videos/{video_id}/comments"]["get"]["security"],
            json!([{}, {"bearer": []}])
        );
        assert!(doc["paths"]["/metrics"]["get"].is_object());
    }
}
