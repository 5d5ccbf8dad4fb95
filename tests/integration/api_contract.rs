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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_the_document_states_are_the_rules_the_server_applies() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let alice = app.register("alice").await;
    for i in 1..=5 {
        app.post_comment(&alice.access_token, "v1", &format!("c{i}"))
            .await;
    }
    // after and before together: the comments between them.
    let page: Value = app
        .get("/api/videos/v1/comments?after=1&before=5", None)
        .await
        .json()
        .await
        .unwrap();
    let seqs: Vec<i64> = page["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 3, 4]);
    // device_info: a flat object of at most 16 entries.
    let login = |info: Value| {
        let app = &app;
        async move {
            app.post_json(
                "/api/auth/login",
                None,
                &json!({"login": "alice", "password": "password-alice", "device_info": info}),
            )
            .await
        }
    };
    let many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!(i))).collect();
    for bad in [
        Value::Object(many),
        json!({"nested": {"a": 1}}),
        json!({"list": [1]}),
        json!({"": 1}),
        json!({"long": "x".repeat(257)}),
    ] {
        assert_error(
            login(bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
    }
    let res = login(json!({"platform": "web", "version": 3, "beta": true, "model": null})).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Emails: nothing around the address.
    let res = app
        .post_json(
            "/api/auth/register",
            None,
            &json!({"email": " bob@example.com", "username": "bob", "password": "long enough pw"}),
        )
        .await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_email").await;
    // The admin listing's limit is checked, not clamped.
    app.set_role("alice", banter_core::Role::Admin).await;
    for limit in [0, 101] {
        assert_error(
            app.get(
                &format!("/api/admin/users?limit={limit}"),
                Some(&alice.access_token),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
    }
}
