//! Auth over HTTP: register, login, refresh rotation and reuse, logout, devices, and every way a
//! token can be bad.

use banter_tests::{JWT_SECRET, TestApp, assert_error, session_from};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;

both_backends!(register_login_refresh_logout);
async fn register_login_refresh_logout(app: TestApp) {
    let alice = app.register("alice").await;
    let me: Value = app
        .get("/api/me", Some(&alice.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["email"], "alice@example.com");
    assert!(me.get("password_hash").is_none());

    // Login by email (any case) and by username.
    for login in ["ALICE@example.com", "alice"] {
        let res = app.login(login, "password-alice", "laptop").await;
        assert_eq!(res.status(), StatusCode::OK, "login {login}");
    }

    let res = app
        .post_json(
            "/api/auth/refresh",
            None,
            &json!({"refresh_token": alice.refresh_token}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let rotated = session_from(res.json().await.unwrap());
    assert_ne!(rotated.refresh_token, alice.refresh_token);
    assert_eq!(
        app.get("/api/me", Some(&rotated.access_token))
            .await
            .status(),
        StatusCode::OK
    );

    let res = app
        .post_json(
            "/api/auth/logout",
            None,
            &json!({"refresh_token": rotated.refresh_token}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .post_json(
            "/api/auth/refresh",
            None,
            &json!({"refresh_token": rotated.refresh_token}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

both_backends!(reusing_a_refresh_token_signs_the_device_out);
async fn reusing_a_refresh_token_signs_the_device_out(app: TestApp) {
    let alice = app.register("alice").await;
    let refresh = |token: String| {
        let app = &app;
        async move {
            app.post_json("/api/auth/refresh", None, &json!({"refresh_token": token}))
                .await
        }
    };
    let first = refresh(alice.refresh_token.clone()).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = session_from(first.json().await.unwrap());
    // The legitimate holder refreshes again: the first token's successor is spent, so the
    // grace window for two tabs no longer covers the first token.
    let again = refresh(second.refresh_token.clone()).await;
    assert_eq!(again.status(), StatusCode::OK);
    let legit = session_from(again.json().await.unwrap());
    // An attacker replays the old token: refused, and the family is revoked...
    assert_error(
        refresh(alice.refresh_token.clone()).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    )
    .await;
    // ...so the legitimate holder's newer token is dead too, as is its access token.
    assert_error(
        refresh(legit.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "session_ended",
    )
    .await;
    assert_error(
        app.get("/api/me", Some(&legit.access_token)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_error(
        refresh("not-a-token".into()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
}

both_backends!(wrong_password_and_unknown_user_get_the_same_answer);
async fn wrong_password_and_unknown_user_get_the_same_answer(app: TestApp) {
    app.register("alice").await;
    let wrong = assert_error(
        app.login("alice", "wrong-password", "d").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_error(
        app.login("nobody", "wrong-password", "d").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);
}

both_backends!(registration_is_validated_and_conflicts_are_409);
async fn registration_is_validated_and_conflicts_are_409(app: TestApp) {
    app.register("alice").await;
    let register = |email: &str, username: &str, password: &str| {
        let body = json!({"email": email, "username": username, "password": password});
        let app = &app;
        async move { app.post_json("/api/auth/register", None, &body).await }
    };
    assert_error(
        register("alice@example.com", "alice2", "long enough pw").await,
        StatusCode::CONFLICT,
        "email_taken",
    )
    .await;
    assert_error(
        register("a2@example.com", "Alice", "long enough pw").await,
        StatusCode::CONFLICT,
        "username_taken",
    )
    .await;
    assert_error(
        register("not-an-email", "bob", "long enough pw").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_email",
    )
    .await;
    assert_error(
        register("b@example.com", "b'; DROP TABLE users;--", "long enough pw").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_username",
    )
    .await;
    assert_error(
        register("b@example.com", "böb", "long enough pw").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_username",
    )
    .await;
    assert_error(
        register("b@example.com", "bob", "short").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_password",
    )
    .await;
    assert_error(
        register("b'--@example.com", "bob", "long enough pw").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_email",
    )
    .await;
    let res = app
        .post_json(
            "/api/auth/register",
            None,
            &json!({"email": 1, "username": [], "password": null}),
        )
        .await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let res = app
        .post_json("/api/auth/register", None, &json!({"email": "c@example.com", "username": "carol", "password": "long enough pw", "device_info": "not an object"}))
        .await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    // Unicode passwords work byte for byte.
    let res = register("d@example.com", "dave", "pässwörd 🔑 ünïcode").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        app.login("dave", "pässwörd 🔑 ünïcode", "d").await.status(),
        StatusCode::OK
    );
}

/// The (unverified) claims of a JWT.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn forge(claims: Value, secret: &str, alg: Algorithm) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

both_backends!(bad_tokens_are_refused);
async fn bad_tokens_are_refused(app: TestApp) {
    let alice = app.register("alice").await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let sid = claims_of(&alice.access_token)["sid"].clone();
    let claims = |exp: i64| json!({"sub": alice.user_id, "did": alice.device_id, "sid": sid, "iat": now, "exp": exp, "iss": "banter"});

    let expired = forge(claims(now - 3600), JWT_SECRET, Algorithm::HS256);
    assert_error(
        app.get("/api/me", Some(&expired)).await,
        StatusCode::UNAUTHORIZED,
        "token_expired",
    )
    .await;

    let wrong_key = forge(
        claims(now + 600),
        "another-secret-0123456789abcdef0123",
        Algorithm::HS256,
    );
    assert_error(
        app.get("/api/me", Some(&wrong_key)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    let hs512 = forge(claims(now + 600), JWT_SECRET, Algorithm::HS512);
    assert_error(
        app.get("/api/me", Some(&hs512)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(now + 600).to_string())
    );
    assert_error(
        app.get("/api/me", Some(&none)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    let mut parts: Vec<&str> = alice.access_token.split('.').collect();
    let tampered_claims = URL_SAFE_NO_PAD.encode(json!({"sub": uuid::Uuid::now_v7(), "did": alice.device_id, "iat": now, "exp": now + 600, "iss": "banter"}).to_string());
    parts[1] = &tampered_claims;
    assert_error(
        app.get("/api/me", Some(&parts.join("."))).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    assert_error(
        app.get("/api/me", Some("garbage")).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_error(
        app.get("/api/me", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let res = app
        .client
        .get(app.url("/api/me"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // A correctly signed token for a device that never signed in is refused too.
    let other_device = forge(
        json!({"sub": alice.user_id, "did": "never-seen", "sid": sid, "iat": now, "exp": now + 600, "iss": "banter"}),
        JWT_SECRET,
        Algorithm::HS256,
    );
    assert_error(
        app.get("/api/me", Some(&other_device)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

both_backends!(devices_are_recorded_and_revocable);
async fn devices_are_recorded_and_revocable(app: TestApp) {
    let alice = app.register("alice").await;
    let laptop = session_from(
        app.login("alice", "password-alice", "laptop")
            .await
            .json()
            .await
            .unwrap(),
    );
    let devices: Value = app
        .get("/api/me/devices", Some(&alice.access_token))
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"laptop") && ids.contains(&"dev-alice"));
    assert!(devices[0]["last_seen_at"].is_string());

    let res = app
        .send_json(
            Method::DELETE,
            "/api/me/devices/laptop",
            Some(&alice.access_token),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // The laptop's access and refresh tokens stop working; the other device is unaffected.
    assert_error(
        app.get("/api/me", Some(&laptop.access_token)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let res = app
        .post_json(
            "/api/auth/refresh",
            None,
            &json!({"refresh_token": laptop.refresh_token}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/api/me", Some(&alice.access_token)).await.status(),
        StatusCode::OK
    );
    let res = app
        .send_json(
            Method::DELETE,
            "/api/me/devices/unknown",
            Some(&alice.access_token),
            &json!({}),
        )
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    // Signing in again from the revoked device brings it back.
    assert_eq!(
        app.login("alice", "password-alice", "laptop")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_rate_limited_per_account_with_retry_after() {
    let app = TestApp::spawn_with(
        banter_tests::TestBackend::Sqlite,
        &[("BANTER_RATE_LOGIN_PER_MINUTE", "6")],
    )
    .await;
    app.register("alice").await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(app.login("alice", "wrong-password", "d").await.status());
    }
    assert_eq!(statuses[..1], [StatusCode::UNAUTHORIZED]);
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_error(
        app.login("alice", "password-alice", "d").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_rate_limited_per_ip() {
    let app = TestApp::spawn_with(
        banter_tests::TestBackend::Sqlite,
        &[("BANTER_RATE_REGISTER_PER_MINUTE", "2")],
    )
    .await;
    let mut last = StatusCode::OK;
    for i in 0..3 {
        let body = json!({"email": format!("u{i}@example.com"), "username": format!("user{i}"), "password": "long enough pw"});
        last = app
            .post_json("/api/auth/register", None, &body)
            .await
            .status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}
