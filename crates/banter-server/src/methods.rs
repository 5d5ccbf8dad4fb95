//! Which methods each path serves, so that a known path asked with another method answers 405
//! with `Allow` (not 404), and `HEAD` is served wherever `GET` is (answered as a `GET` whose
//! body actix leaves out).
//!
//! The table lists every route a node can mount, by the part that mounts it; a unit test keeps
//! the API part equal to the OpenAPI document, so a new route cannot be forgotten here.
//! Kept out: the handlers themselves and their access rules.

use actix_web::body::MessageBody;
use actix_web::dev::{ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use banter_api::ApiError;

/// The REST API's routes (nodes with the `api` or `all` role).
const API: &[(&str, &[&str])] = &[
    ("/api/auth/register", &["POST"]),
    ("/api/auth/login", &["POST"]),
    ("/api/auth/refresh", &["POST"]),
    ("/api/auth/logout", &["POST"]),
    ("/api/me", &["GET", "PATCH"]),
    ("/api/me/devices", &["GET"]),
    ("/api/me/devices/{device_id}", &["DELETE"]),
    ("/api/admin/users", &["GET"]),
    ("/api/admin/users/{user_id}", &["PATCH"]),
    ("/api/videos", &["POST"]),
    ("/api/videos/{video_id}", &["GET", "PATCH"]),
    ("/api/videos/{video_id}/comments", &["GET", "POST"]),
    (
        "/api/videos/{video_id}/members/{user_id}",
        &["PUT", "DELETE"],
    ),
    ("/api/videos/{video_id}/moderators", &["GET"]),
    (
        "/api/videos/{video_id}/moderators/{user_id}",
        &["PUT", "DELETE"],
    ),
    ("/api/videos/{video_id}/bans", &["GET"]),
    ("/api/videos/{video_id}/bans/{user_id}", &["PUT", "DELETE"]),
    (
        "/api/videos/{video_id}/users/{user_id}/comments",
        &["DELETE"],
    ),
    ("/api/bans", &["GET"]),
    ("/api/bans/{user_id}", &["PUT", "DELETE"]),
    ("/api/videos/{video_id}/chat", &["GET", "PATCH"]),
    ("/api/videos/{video_id}/pin", &["PUT", "DELETE"]),
    ("/api/videos/{video_id}/moderation-log", &["GET"]),
    ("/api/videos/{video_id}/blocked-terms", &["GET", "PUT"]),
    ("/api/blocked-terms", &["GET", "PUT"]),
    ("/api/videos/{video_id}/held-comments", &["GET"]),
    (
        "/api/videos/{video_id}/held-comments/{comment_id}/approve",
        &["POST"],
    ),
    (
        "/api/videos/{video_id}/held-comments/{comment_id}",
        &["DELETE"],
    ),
    ("/api/comments/{comment_id}", &["PATCH", "DELETE"]),
    ("/api/admin/api-keys", &["GET", "POST"]),
    ("/api/admin/api-keys/{key_id}", &["DELETE"]),
    ("/api/videos/{video_id}/announcements", &["POST"]),
    ("/api/webhooks", &["GET", "POST"]),
    ("/api/webhooks/{webhook_id}", &["DELETE"]),
    ("/api/webhooks/{webhook_id}/deliveries", &["GET"]),
    (
        "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
        &["POST"],
    ),
    ("/api/openapi.json", &["GET"]),
];

/// Every node's operational routes.
const OPERATIONS: &[(&str, &[&str])] = &[
    ("/healthz", &["GET"]),
    ("/readyz", &["GET"]),
    ("/metrics", &["GET"]),
];

/// The socket upgrade (nodes that serve sockets).
const REALTIME: &[(&str, &[&str])] = &[("/socket/websocket", &["GET"])];

/// The video page (socket-serving nodes with the page on).
const WEB: &[(&str, &[&str])] = &[
    ("/", &["GET"]),
    ("/videos/{video_id}", &["GET"]),
    ("/assets/{name}", &["GET"]),
];

pub struct Routes(Vec<(ResourceDef, Vec<Method>)>);

impl Routes {
    pub fn for_node(api: bool, realtime: bool, web: bool) -> Routes {
        let parts = [
            (true, OPERATIONS),
            (api, API),
            (realtime, REALTIME),
            (web, WEB),
        ];
        let routes = parts
            .into_iter()
            .filter(|(mounted, _)| *mounted)
            .flat_map(|(_, table)| table.iter())
            .map(|(pattern, methods)| {
                let methods = methods
                    .iter()
                    .map(|m| Method::from_bytes(m.as_bytes()).expect("a method name"))
                    .collect();
                (ResourceDef::new(*pattern), methods)
            })
            .collect();
        Routes(routes)
    }

    /// The methods `path` is served with (empty for an unknown path), `HEAD` with `GET`.
    pub fn allowed(&self, path: &str) -> Vec<Method> {
        let mut allowed: Vec<Method> = Vec::new();
        for (def, methods) in &self.0 {
            if def.is_match(path) {
                for m in methods {
                    if !allowed.contains(m) {
                        allowed.push(m.clone());
                    }
                }
            }
        }
        if allowed.contains(&Method::GET) {
            allowed.push(Method::HEAD);
        }
        allowed
    }
}

/// Serves `HEAD` as `GET`: routing and handlers see a `GET`, and actix sends the response's
/// headers without its body because the request on the wire was a `HEAD`.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// The default service: 405 with `Allow` for a known path asked with another method, 404
/// otherwise, both in the error envelope.
pub async fn unrouted(req: HttpRequest, routes: web::Data<Routes>) -> HttpResponse {
    let allowed = routes.allowed(req.path());
    if allowed.is_empty() {
        return ApiError::NotFound(format!("no route for {} {}", req.method(), req.path()))
            .error_response();
    }
    let mut response = ApiError::MethodNotAllowed.error_response();
    let allow = allowed
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::OpenApi;

    use super::*;

    #[test]
    fn the_api_table_is_the_openapi_document() {
        let doc = serde_json::to_value(banter_api::ApiDoc::openapi()).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["get", "put", "post", "delete", "patch"] {
                if item.get(method).is_some() {
                    documented.insert((path.clone(), method.to_uppercase()));
                }
            }
        }
        let listed: BTreeSet<(String, String)> = API
            .iter()
            .filter(|(path, _)| *path != "/api/openapi.json")
            .flat_map(|(path, methods)| methods.iter().map(|m| (path.to_string(), m.to_string())))
            .collect();
        let documented: BTreeSet<(String, String)> = documented
            .into_iter()
            .filter(|(path, _)| path.starts_with("/api/"))
            .collect();
        assert_eq!(listed, documented);
    }

    #[test]
    fn known_paths_list_their_methods_and_head_comes_with_get() {
        let routes = Routes::for_node(true, true, true);
        assert_eq!(
            routes.allowed("/api/videos/v1/comments"),
            vec![Method::GET, Method::POST, Method::HEAD]
        );
        assert_eq!(routes.allowed("/api/auth/login"), vec![Method::POST]);
        assert!(routes.allowed("/nowhere").is_empty());
        // A realtime node without the API does not claim its paths.
        assert!(
            Routes::for_node(false, true, true)
                .allowed("/api/auth/login")
                .is_empty()
        );
    }
}
