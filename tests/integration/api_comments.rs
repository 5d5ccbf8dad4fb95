//! Comments over HTTP: posting, paging, editing, deleting, private videos, and bad input.

use banter_core::Role;
use banter_tests::{TestApp, TestBackend, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;

async fn page(app: &TestApp, query: &str) -> Value {
    let res = app
        .get(&format!("/api/videos/v1/comments{query}"), None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

fn seqs(page: &Value) -> Vec<i64> {
    page["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect()
}

both_backends!(posting_returns_the_comment_with_its_seq_and_paging_works_both_ways);
async fn posting_returns_the_comment_with_its_seq_and_paging_works_both_ways(app: TestApp) {
    let alice = app.register("alice").await;
    for i in 1..=12 {
        let res = app
            .post_comment(&alice.access_token, "v1", &format!("comment {i}"))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["seq"], i);
        assert_eq!(body["author"]["username"], "alice");
        assert_eq!(body["body"], format!("comment {i}"));
    }
    let latest = page(&app, "?limit=5").await;
    assert_eq!(seqs(&latest), vec![8, 9, 10, 11, 12]);
    assert_eq!(latest["last_seq"], 12);
    assert_eq!(latest["next_before"], 8);
    assert!(latest["next_after"].is_null());
    let older = page(&app, "?limit=5&before=8").await;
    assert_eq!(seqs(&older), vec![3, 4, 5, 6, 7]);
    assert_eq!(older["next_after"], 7);
    let oldest = page(&app, "?limit=5&before=3").await;
    assert_eq!(seqs(&oldest), vec![1, 2]);
    assert!(oldest["next_before"].is_null());
    assert_eq!(seqs(&page(&app, "?after=10").await), vec![11, 12]);
    assert_eq!(seqs(&page(&app, "?after=0&limit=3").await), vec![1, 2, 3]);
    let empty: Value = app
        .get("/api/videos/no-comments/comments", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty["last_seq"], 0);
    assert_eq!(empty["comments"], json!([]));

    for query in ["?limit=0", "?limit=101"] {
        assert_error(
            app.get(&format!("/api/videos/v1/comments{query}"), None)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
    }
    for query in ["?limit=abc", "?after=x", "?unknown=1"] {
        assert_error(
            app.get(&format!("/api/videos/v1/comments{query}"), None)
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
}

both_backends!(bodies_are_validated_and_stored_verbatim);
async fn bodies_are_validated_and_stored_verbatim(app: TestApp) {
    let alice = app.register("alice").await;
    let t = &alice.access_token;
    assert_error(
        app.post_comment(t, "v1", "   \n ").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "comment_empty",
    )
    .await;
    assert_error(
        app.post_comment(t, "v1", &"x".repeat(2001)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "comment_too_long",
    )
    .await;
    assert_error(
        app.post_comment(t, "v1", "bell\u{7}").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "comment_control_character",
    )
    .await;
    assert_error(
        app.post_comment(t, "v1", "nul\u{0}byte").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "comment_control_character",
    )
    .await;
    assert_eq!(
        app.post_comment(t, "v1", &"é".repeat(2000)).await.status(),
        StatusCode::CREATED
    );
    for raw in [
        "<script>alert(1)</script>",
        "'; DROP TABLE comments; --",
        "Robert'); DELETE FROM users;--",
        "emoji 👩‍👩‍👧 zwj, RTL \u{202e} override, combining é",
        "two\nlines",
    ] {
        let res = app.post_comment(t, "v1", raw).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{raw}");
        let created: Value = res.json().await.unwrap();
        assert_eq!(created["body"], raw);
    }
    let listed = page(&app, "?limit=5").await;
    assert_eq!(listed["comments"][0]["body"], "<script>alert(1)</script>");
    assert_eq!(listed["comments"][4]["body"], "two\nlines");
    // Bad video ids, including SQL and path metacharacters.
    for video in ["a'b", "a%20b", "%E2%9C%93", &"v".repeat(65)] {
        let res = app.post_comment(t, video, "hi").await;
        assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_video_id").await;
    }
}

both_backends!(malformed_requests_get_the_envelope_and_lose_nothing);
async fn malformed_requests_get_the_envelope_and_lose_nothing(app: TestApp) {
    let alice = app.register("alice").await;
    let url = app.url("/api/videos/v1/comments");
    let send = |body: String, content_type: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(&alice.access_token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_error(
        send("{\"body\":".into(), "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    assert_error(
        send("not json".into(), "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    assert_error(
        send("{\"body\": 42}".into(), "application/json")
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_error(
        send("{}".into(), "application/json").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_error(
        send("{\"body\":\"x\",\"extra\":1}".into(), "application/json")
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_error(
        send("[1,2]".into(), "application/json").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    assert_error(
        send("{\"body\":\"x\"}".into(), "text/plain").await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let huge = format!("{{\"body\":\"{}\"}}", "x".repeat(100_000));
    assert_error(
        send(huge, "application/json").await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    assert_error(
        app.post_comment("", "v1", "hi").await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    // Nothing was stored by any of that, and the server still serves.
    assert_eq!(page(&app, "").await["last_seq"], 0);
    assert_eq!(
        app.post_comment(&alice.access_token, "v1", "fine")
            .await
            .status(),
        StatusCode::CREATED
    );
}

both_backends!(only_authors_edit_and_moderators_may_delete);
async fn only_authors_edit_and_moderators_may_delete(app: TestApp) {
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let moderator = app.register("mod").await;
    app.set_role("mod", Role::Moderator).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let c: Value = app
            .post_comment(&alice.access_token, "v1", &format!("c{i}"))
            .await
            .json()
            .await
            .unwrap();
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let patch = |id: &str, token: &str, body: &str| {
        let (path, token, body) = (
            format!("/api/comments/{id}"),
            token.to_owned(),
            json!({"body": body}),
        );
        let app = &app;
        async move {
            app.send_json(Method::PATCH, &path, Some(&token), &body)
                .await
        }
    };
    let delete = |id: &str, token: &str| {
        let (path, token) = (format!("/api/comments/{id}"), token.to_owned());
        let app = &app;
        async move {
            app.send_json(Method::DELETE, &path, Some(&token), &json!({}))
                .await
        }
    };
    assert_error(
        patch(&ids[0], &bob.access_token, "hacked").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        patch(&ids[0], &moderator.access_token, "mod edit").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let edited: Value = patch(&ids[0], &alice.access_token, "edited")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            edited["body"].as_str(),
            edited["edited"].as_bool(),
            edited["seq"].as_i64()
        ),
        (Some("edited"), Some(true), Some(1))
    );
    assert_error(
        patch(&ids[0], &alice.access_token, "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "comment_empty",
    )
    .await;

    assert_error(
        delete(&ids[1], &bob.access_token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        delete(&ids[1], &alice.access_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(&ids[2], &moderator.access_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        delete(&ids[2], &moderator.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        patch(&ids[2], &alice.access_token, "revive").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        delete("not-a-uuid", &alice.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        delete(&uuid::Uuid::now_v7().to_string(), &alice.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let listed = page(&app, "").await;
    assert_eq!(
        seqs(&listed),
        vec![1, 2, 3],
        "deleted comments keep their seq"
    );
    assert_eq!(listed["comments"][1]["deleted"], true);
    assert!(listed["comments"][1]["body"].is_null());
    let next: Value = app
        .post_comment(&alice.access_token, "v1", "after deletes")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["seq"], 4);
}

both_backends!(private_videos_are_for_owners_and_members);
async fn private_videos_are_for_owners_and_members(app: TestApp) {
    let owner = app.register("owner").await;
    let member = app.register("member").await;
    let stranger = app.register("stranger").await;
    let res = app
        .post_json(
            "/api/videos",
            Some(&owner.access_token),
            &json!({"id": "secret", "visibility": "members"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .post_json(
            "/api/videos",
            Some(&owner.access_token),
            &json!({"id": "secret"}),
        )
        .await;
    assert_error(res, StatusCode::CONFLICT, "video_exists").await;
    let res = app
        .post_json(
            "/api/videos",
            Some(&owner.access_token),
            &json!({"id": "x", "visibility": "hidden"}),
        )
        .await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_visibility").await;

    assert_eq!(
        app.post_comment(&owner.access_token, "secret", "owner only")
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_error(
        app.get("/api/videos/secret/comments", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_error(
        app.get("/api/videos/secret/comments", Some(&stranger.access_token))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        app.post_comment(&member.access_token, "secret", "let me in")
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let res = app
        .send_json(
            Method::PUT,
            &format!("/api/videos/secret/members/{}", member.user_id),
            Some(&stranger.access_token),
            &json!({}),
        )
        .await;
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .send_json(
            Method::PUT,
            &format!("/api/videos/secret/members/{}", member.user_id),
            Some(&owner.access_token),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.post_comment(&member.access_token, "secret", "thanks")
            .await
            .status(),
        StatusCode::CREATED
    );
    let res = app
        .get("/api/videos/secret/comments", Some(&member.access_token))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["last_seq"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_is_rate_limited_per_user_with_retry_after() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[
            ("BANTER_RATE_COMMENT_PER_MINUTE", "60"),
            ("BANTER_RATE_COMMENT_BURST", "3"),
        ],
    )
    .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    for i in 0..3 {
        assert_eq!(
            app.post_comment(&alice.access_token, "v1", &format!("c{i}"))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let res = app
        .post_comment(&alice.access_token, "v1", "one too many")
        .await;
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "retry-after {retry_after}");
    assert_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Other users are not affected, and the refused comment was not stored.
    assert_eq!(
        app.post_comment(&bob.access_token, "v1", "bob")
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(page(&app, "").await["last_seq"], 4);
}

/// A saturated write path answers at once with 503 `busy` and `Retry-After`, loses nothing and
/// recovers: here the node has one primary connection, which a post holds while the video's row
/// is locked from outside, so the next request finds no connection within the acquire timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_database_is_answered_with_busy_at_once_not_a_hang() {
    let app = TestApp::spawn_with(
        TestBackend::Postgres,
        &[
            ("BANTER_DATABASE_MAX_CONNECTIONS", "1"),
            ("BANTER_DATABASE_ACQUIRE_TIMEOUT_MS", "300"),
        ],
    )
    .await;
    let alice = app.register("alice").await;
    assert_eq!(
        app.post_comment(&alice.access_token, "v1", "first")
            .await
            .status(),
        StatusCode::CREATED
    );
    let db = app.database.clone().expect("a PostgreSQL database");
    let url = banter_tests::PgCluster::shared().primary_url(&db);
    let mut outside = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut outside).await.unwrap();
    sqlx::query("SELECT last_seq FROM videos WHERE id = 'v1' FOR UPDATE")
        .execute(&mut outside)
        .await
        .unwrap();
    // This post takes the node's only connection and waits on the row.
    let held = {
        let app_client = app.client.clone();
        let url = app.url("/api/videos/v1/comments");
        let token = alice.access_token.clone();
        tokio::spawn(async move {
            app_client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"body": "waits on the lock"}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let res = app.post_comment(&alice.access_token, "v1", "no room").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "answered after {:?}",
        started.elapsed()
    );
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, StatusCode::SERVICE_UNAVAILABLE, "busy").await;
    // The lock goes; the waiting post commits, and the refused one was not stored.
    sqlx::query("COMMIT").execute(&mut outside).await.unwrap();
    assert_eq!(held.await.unwrap(), StatusCode::CREATED);
    let last: Value = app
        .get("/api/videos/v1/comments", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(last["last_seq"], 2);
    assert_eq!(
        app.post_comment(&alice.access_token, "v1", "after")
            .await
            .status(),
        StatusCode::CREATED
    );
}
