//! Sign-in hardening over real HTTP and sockets: one login budget per account, password
//! changes under the login limits, a per-node bound on Argon2 work, client IPs only from the
//! configured load-balancer header (REST and sockets alike), reserved demo video ids, and a
//! case-insensitive `Bearer` scheme.

use banter_tests::{TestApp, TestBackend, WsClient, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn login_with_headers(
    app: &TestApp,
    login: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/auth/login"))
        .json(&json!({"login": login, "password": "wrong-password"}));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn username_and_email_share_one_login_budget() {
    // 6 a minute per IP (burst 2) and 2 a minute per account (burst 1).
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[("BANTER_RATE_LOGIN_PER_MINUTE", "6")],
    )
    .await;
    app.register("alice").await;
    assert_error(
        app.login("alice", "wrong", "d").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    // The same account by its email: the same budget, already spent.
    assert_error(
        app.login("ALICE@example.com", "wrong", "d").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_is_limited_like_a_login() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[("BANTER_RATE_LOGIN_PER_MINUTE", "6")],
    )
    .await;
    let alice = app.register("alice").await;
    let guess = json!({"password": "a brand new password", "current_password": "guess"});
    let change = || app.send_json(Method::PATCH, "/api/me", Some(&alice.access_token), &guess);
    assert_error(
        change().await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let limited = assert_error(
        change().await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    assert!(
        limited["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retry in")
    );
    // Other changes need no password check and are not limited.
    let res = app
        .send_json(
            Method::PATCH,
            "/api/me",
            Some(&alice.access_token),
            &json!({"username": "alice2"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_beyond_the_node_bound_get_503_with_retry_after() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[
            ("BANTER_PASSWORD_HASHES_IN_FLIGHT", "1"),
            ("BANTER_PASSWORD_HASH_WAIT_MS", "0"),
        ],
    )
    .await;
    let attempts = (0..12).map(|i| {
        let app = &app;
        async move {
            app.login(&format!("nobody{i}"), "wrong password", "d")
                .await
        }
    });
    let responses = futures_util::future::join_all(attempts).await;
    let mut busy = 0;
    let mut refused = 0;
    for res in responses {
        match res.status() {
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                let retry = res.headers()["retry-after"].to_str().unwrap().to_owned();
                assert!(retry.parse::<u64>().unwrap() >= 1);
                assert_error(res, StatusCode::SERVICE_UNAVAILABLE, "busy").await;
            }
            StatusCode::UNAUTHORIZED => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        busy > 0,
        "12 concurrent hashes on a bound of 1 with no wait: some must be busy"
    );
    assert!(refused > 0, "the hash that got the slot answers normally");
    // The node is fine afterwards.
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    assert_error(
        app.login("nobody", "wrong password", "d").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_forwarding_header_names_the_client() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[
            ("BANTER_RATE_LOGIN_PER_MINUTE", "6"),
            ("BANTER_CLIENT_IP_HEADER", "X-Forwarded-For"),
        ],
    )
    .await;
    // A client rotating `Forwarded: for=` (which actix would prefer) stays one client.
    let mut statuses = Vec::new();
    for i in 0..3 {
        let forwarded = format!("for=203.0.113.{i}");
        let res = login_with_headers(
            &app,
            &format!("someone{i}"),
            &[
                ("forwarded", &forwarded),
                ("x-forwarded-for", "198.51.100.1"),
            ],
        )
        .await;
        statuses.push(res.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // A spoofed first entry does not help either: the load balancer's entry is the last one.
    let res = login_with_headers(
        &app,
        "someone9",
        &[("x-forwarded-for", "203.0.113.50, 198.51.100.1")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same balancer has its own budget.
    let res = login_with_headers(&app, "someone8", &[("x-forwarded-for", "198.51.100.2")]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_limit_per_ip_counts_clients_not_the_load_balancer() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[
            ("BANTER_WS_MAX_CONNECTIONS_PER_IP", "1"),
            ("BANTER_TRUST_FORWARDED_FOR", "true"),
        ],
    )
    .await;
    let connect = |ip: &'static str| {
        let address = app.address.clone();
        async move { WsClient::connect_with(&address, "vsn=2.0.0", &[("x-forwarded-for", ip)]).await }
    };
    let _first = connect("198.51.100.1").await.expect("first client");
    let _second = connect("198.51.100.2")
        .await
        .expect("a second client behind the same proxy");
    assert_eq!(
        connect("198.51.100.1").await.err(),
        Some(429),
        "the first client's second socket"
    );
    // `Forwarded` is not the configured header: it cannot pick a fresh address.
    let spoofed = WsClient::connect_with(
        &app.address,
        "vsn=2.0.0",
        &[
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=203.0.113.7"),
        ],
    )
    .await;
    assert_eq!(spoofed.err(), Some(429));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_video_ids_cannot_be_registered() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let mallory = app.register("mallory").await;
    for id in ["intro", "launch-party", "ask-me-anything"] {
        assert_error(
            app.post_json(
                "/api/videos",
                Some(&mallory.access_token),
                &json!({"id": id, "visibility": "private"}),
            )
            .await,
            StatusCode::CONFLICT,
            "video_id_reserved",
        )
        .await;
    }
    let res = app
        .post_json(
            "/api/videos",
            Some(&mallory.access_token),
            &json!({"id": "my-own", "visibility": "private"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_matched_case_insensitively() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let alice = app.register("alice").await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let res = app
            .client
            .get(app.url("/api/me"))
            .header("authorization", format!("{scheme} {}", alice.access_token))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{scheme}");
    }
    let res = app
        .client
        .get(app.url("/api/me"))
        .header("authorization", format!("Basic {}", alice.access_token))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}
