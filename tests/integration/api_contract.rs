//! The REST contract at its edges: request bodies are JSON objects only, with errors worded
//! without internal type names; a known path asked with another method is 405 with `Allow`;
//! `HEAD` works wherever `GET` does; emails refuse invisible characters as usernames do.

use banter_tests::{TestApp, TestBackend, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn raw(app: &TestApp, method: Method, path: &str, body: Value) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_must_be_json_objects() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let alice = app.register("alice").await;
    // serde's sequence form of the request structs is refused, whatever the route.
    let res = app
        .post_json(
            "/api/videos/v1/comments",
            Some(&alice.access_token),
            &json!(["body"]),
        )
        .await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object")
    );
    let five = json!(["a@example.com", "mallory", "long enough pw", null, null]);
    assert_error(
        raw(&app, Method::POST, "/api/auth/register", five).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    for not_an_object in [
        json!([]),
        json!("login"),
        json!(7),
        json!(null),
        json!(true),
    ] {
        let res = raw(&app, Method::POST, "/api/auth/login", not_an_object.clone()).await;
        let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("LoginRequest") && !message.contains("struct"),
            "{message}"
        );
    }
    // Wrong field types are named in JSON's terms, not Rust's.
    let res = raw(
        &app,
        Method::POST,
        "/api/auth/login",
        json!({"login": 5, "password": "x"}),
    )
    .await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expected a string")
    );
    let res = app.get("/api/videos/v1/comments?limit=many", None).await;
    let body = assert_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(!message.contains("u32"), "{message}");
    // Nothing was created by the refused bodies.
    let page: Value = app
        .get("/api/videos/v1/comments", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["comments"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_path_with_another_method_is_405_with_allow() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    for (method, path, allow) in [
        (Method::DELETE, "/api/auth/login", "POST"),
        (Method::GET, "/api/auth/login", "POST"),
        (Method::TRACE, "/api/me", "GET, PATCH, HEAD"),
        (Method::PUT, "/api/videos/v1/comments", "GET, POST, HEAD"),
        (Method::POST, "/metrics", "GET, HEAD"),
        (Method::TRACE, "/", "GET, HEAD"),
    ] {
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()
                .get("allow")
                .map(|v| v.to_str().unwrap().to_owned()),
            Some(allow.to_owned()),
            "{method} {path}"
        );
        assert_error(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    }
    let res = app
        .client
        .request(Method::TRACE, app.url("/no/such/path"))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_works_wherever_get_does() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    for path in [
        "/",
        "/metrics",
        "/healthz",
        "/readyz",
        "/api/videos/v1/comments",
        "/api/openapi.json",
        "/videos/v1",
    ] {
        let res = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "HEAD {path}");
        assert!(
            res.bytes().await.unwrap().is_empty(),
            "HEAD {path} sent a body"
        );
    }
    // The same connection goes on serving normally after them.
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let res = app.client.head(app.url("/api/me")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_refuse_the_invisible_characters_usernames_refuse() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    for email in [
        "al\u{200B}ice@example.com",
        "alice\u{202E}@example.com",
        "alice\u{FFFF}@example.com",
    ] {
        let res = app
            .post_json(
                "/api/auth/register",
                None,
                &json!({"email": email, "username": "alice", "password": "long enough pw"}),
            )
            .await;
        assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_email").await;
    }
}
