//! Accounts over HTTP: profile changes and admin management.

use banter_core::Role;
use banter_tests::{TestApp, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;

both_backends!(users_change_their_profile);
async fn users_change_their_profile(app: TestApp) {
    let alice = app.register("alice").await;
    app.register("bob").await;
    let t = Some(alice.access_token.as_str());
    let res = app
        .send_json(Method::PATCH, "/api/me", t, &json!({"username": "alice_b"}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["username"], "alice_b");
    let res = app
        .send_json(Method::PATCH, "/api/me", t, &json!({"username": "BOB"}))
        .await;
    assert_error(res, StatusCode::CONFLICT, "username_taken").await;
    let res = app
        .send_json(
            Method::PATCH,
            "/api/me",
            t,
            &json!({"email": "bob@example.com"}),
        )
        .await;
    assert_error(res, StatusCode::CONFLICT, "email_taken").await;
    let res = app
        .send_json(
            Method::PATCH,
            "/api/me",
            t,
            &json!({"password": "new password 1"}),
        )
        .await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let res = app
        .send_json(
            Method::PATCH,
            "/api/me",
            t,
            &json!({"password": "new password 1", "current_password": "nope"}),
        )
        .await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let res = app
        .send_json(
            Method::PATCH,
            "/api/me",
            t,
            &json!({"password": "new password 1", "current_password": "password-alice"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.login("alice_b", "new password 1", "d").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login("alice_b", "password-alice", "d").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = app
        .send_json(Method::PATCH, "/api/me", t, &json!({"role": "admin"}))
        .await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
}

both_backends!(admins_page_users_change_roles_and_deactivate);
async fn admins_page_users_change_roles_and_deactivate(app: TestApp) {
    let admin = app.register("admin").await;
    app.set_role("admin", Role::Admin).await;
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(app.register(&format!("user{i}")).await);
    }
    assert_error(
        app.get("/api/admin/users", Some(&users[0].access_token))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = match &after {
            Some(a) => format!("/api/admin/users?limit=2&after={a}"),
            None => "/api/admin/users?limit=2".to_owned(),
        };
        let page: Value = app
            .get(&query, Some(&admin.access_token))
            .await
            .json()
            .await
            .unwrap();
        for u in page["users"].as_array().unwrap() {
            seen.push(u["username"].as_str().unwrap().to_owned());
        }
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        vec!["admin", "user0", "user1", "user2", "user3", "user4"]
    );

    let path = format!("/api/admin/users/{}", users[1].user_id);
    let res = app
        .send_json(
            Method::PATCH,
            &path,
            Some(&admin.access_token),
            &json!({"role": "moderator"}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["role"], "moderator");
    let res = app
        .send_json(
            Method::PATCH,
            &path,
            Some(&admin.access_token),
            &json!({"role": "root"}),
        )
        .await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_role").await;
    let res = app
        .send_json(
            Method::PATCH,
            &path,
            Some(&users[0].access_token),
            &json!({"is_active": false}),
        )
        .await;
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;

    // Deactivation: the user's existing tokens stop working, and they cannot sign in.
    assert_eq!(
        app.get("/api/me", Some(&users[1].access_token))
            .await
            .status(),
        StatusCode::OK
    );
    let res = app
        .send_json(
            Method::PATCH,
            &path,
            Some(&admin.access_token),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_error(
        app.get("/api/me", Some(&users[1].access_token)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_error(
        app.post_comment(&users[1].access_token, "v1", "hi").await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let res = app
        .post_json(
            "/api/auth/refresh",
            None,
            &json!({"refresh_token": users[1].refresh_token}),
        )
        .await;
    assert_error(res, StatusCode::UNAUTHORIZED, "account_inactive").await;
    assert_error(
        app.login("user1", "password-user1", "d").await,
        StatusCode::UNAUTHORIZED,
        "account_inactive",
    )
    .await;

    let missing = format!("/api/admin/users/{}", uuid::Uuid::now_v7());
    let res = app
        .send_json(
            Method::PATCH,
            &missing,
            Some(&admin.access_token),
            &json!({"is_active": false}),
        )
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
}
