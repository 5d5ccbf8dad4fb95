//! API keys for trusted backends: created by admins (shown once, stored hashed), scoped
//! (`post` as a named system author, `announce` a pinned announcement, `moderate` like a site
//! moderator), refused outside their scope and on sockets, revoked at once, and every use in
//! the moderation log.

use banter_tests::{Session, TestApp, WsClient, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;

async fn create_key(
    app: &TestApp,
    admin: &Session,
    name: &str,
    author: &str,
    scopes: Value,
) -> Value {
    let res = app
        .post_json(
            "/api/admin/api-keys",
            Some(&admin.access_token),
            &json!({"name": name, "author": author, "scopes": scopes}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

both_backends!(keys_post_announce_and_moderate_within_their_scopes_and_every_use_is_logged);
async fn keys_post_announce_and_moderate_within_their_scopes_and_every_use_is_logged(app: TestApp) {
    let admin = app.register("admin").await;
    app.set_role("admin", banter_core::Role::Admin).await;
    let owner = app.register("owner").await;
    let troll = app.register("troll").await;
    app.create_video(&owner, "match", "public").await;

    // Only admins create keys; an ordinary account's name cannot be an author.
    let res = app
        .post_json(
            "/api/admin/api-keys",
            Some(&owner.access_token),
            &json!({"name": "x", "author": "x-bot", "scopes": ["post"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .post_json(
            "/api/admin/api-keys",
            Some(&admin.access_token),
            &json!({"name": "x", "author": "owner", "scopes": ["post"]}),
        )
        .await;
    assert_error(res, StatusCode::CONFLICT, "username_taken").await;
    let res = app
        .post_json(
            "/api/admin/api-keys",
            Some(&admin.access_token),
            &json!({"name": "x", "author": "x-bot", "scopes": ["everything"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let poster = create_key(&app, &admin, "scores", "score-bot", json!(["post"])).await;
    let poster_key = poster["key"].as_str().unwrap().to_owned();
    assert!(poster_key.starts_with("bk_"));
    let herald = create_key(&app, &admin, "herald", "score-bot", json!(["announce"])).await;
    let herald_key = herald["key"].as_str().unwrap().to_owned();
    let modbot = create_key(&app, &admin, "modbot", "mod-bot", json!(["moderate"])).await;
    let mod_key = modbot["key"].as_str().unwrap().to_owned();

    // The list never shows a key again.
    let list: Value = app
        .get("/api/admin/api-keys", Some(&admin.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["api_keys"].as_array().unwrap().len(), 3);
    assert!(!list.to_string().contains(&poster_key[10..]));

    // post: comments as the system author, seen live by a viewer.
    let mut viewer = WsClient::connect_as(&app.address, None).await;
    assert_eq!(
        viewer.join("comments:match", json!({})).await[4]["status"],
        "ok"
    );
    let res = app.post_comment(&poster_key, "match", "1-0").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let comment: Value = res.json().await.unwrap();
    assert_eq!(comment["author"]["username"], "score-bot");
    let event = viewer
        .until_event("comments:match", "comment_created")
        .await;
    assert_eq!(event[4]["body"], "1-0");
    // Not past its scope: no announcing, no moderating, no account routes.
    assert_eq!(
        app.post_json(
            "/api/videos/match/announcements",
            Some(&poster_key),
            &json!({"body": "x"})
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    for (method, path, body) in [
        (
            Method::PUT,
            format!("/api/videos/match/bans/{}", troll.user_id),
            json!({}),
        ),
        (
            Method::PATCH,
            "/api/me".to_owned(),
            json!({"username": "hijack"}),
        ),
        (
            Method::POST,
            "/api/videos".to_owned(),
            json!({"id": "bot-video", "visibility": "public"}),
        ),
    ] {
        let res = app
            .send_json(method.clone(), &path, Some(&poster_key), &body)
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
    assert_eq!(
        app.get("/api/me", Some(&poster_key)).await.status(),
        StatusCode::FORBIDDEN
    );
    // Reading is fine.
    assert_eq!(
        app.get("/api/videos/match/comments", Some(&poster_key))
            .await
            .status(),
        StatusCode::OK
    );
    // Not on sockets.
    let refused = WsClient::connect(&app.address, &format!("vsn=2.0.0&token={poster_key}")).await;
    assert!(refused.is_err());

    // announce: a comment pinned above the chat, live.
    let res = app
        .post_json(
            "/api/videos/match/announcements",
            Some(&herald_key),
            &json!({"body": "Kick-off in 5 minutes"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let announced: Value = res.json().await.unwrap();
    let pinned = viewer.until_event("comments:match", "comment_pinned").await;
    assert_eq!(pinned[4]["comment"]["id"], announced["id"]);
    let chat: Value = app
        .get("/api/videos/match/chat", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(chat["pinned_comment"]["body"], "Kick-off in 5 minutes");
    // The owner's moderators may announce too; others may not.
    assert_eq!(
        app.post_json(
            "/api/videos/match/announcements",
            Some(&troll.access_token),
            &json!({"body": "me too"})
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );

    // moderate: ban like a site moderator.
    let res = app
        .send_json(
            Method::PUT,
            &format!("/api/videos/match/bans/{}", troll.user_id),
            Some(&mod_key),
            &json!({"reason": "flagged by the classifier"}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_error(
        app.post_comment(&troll.access_token, "match", "hi").await,
        StatusCode::FORBIDDEN,
        "banned",
    )
    .await;

    // Every use is in the log: the key, its scope and route, on the video.
    let log: Value = app
        .get(
            "/api/videos/match/moderation-log",
            Some(&owner.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    let uses: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "api_key")
        .collect();
    let names: Vec<&str> = uses
        .iter()
        .map(|e| e["details"]["key_name"].as_str().unwrap())
        .collect();
    for name in ["scores", "herald", "modbot"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert!(log.to_string().contains("\"announce\""));

    // Revoked: refused at once; the list shows when.
    let res = app
        .delete(
            &format!("/api/admin/api-keys/{}", poster["id"].as_str().unwrap()),
            &admin.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.post_comment(&poster_key, "match", "2-0").await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    // A forged secret for a live key id is refused too.
    let forged = format!("{}{}", &herald_key[..herald_key.len() - 4], "0000");
    assert_eq!(
        app.post_json(
            "/api/videos/match/announcements",
            Some(&forged),
            &json!({"body": "x"})
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
}
