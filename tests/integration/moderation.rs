//! Moderation and chat controls over real HTTP and real sockets, on both backends: an owner
//! running a live chat end to end, who may do what, bans and timeouts, slow mode, members-only
//! chat, the pinned comment, blocked terms and the review queue, the moderation log, and bad
//! input. (Across nodes: `cluster.rs`.)

use banter_core::Role;
use banter_tests::{Session, TestApp, WsClient, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    who: &Session,
    body: Value,
) -> reqwest::Response {
    app.send_json(method, path, Some(&who.access_token), &body)
        .await
}

/// `PUT /api/videos/{video}/bans/{user}` with `body`.
async fn ban(
    app: &TestApp,
    video: &str,
    by: &Session,
    user: &Session,
    body: Value,
) -> reqwest::Response {
    let path = format!("/api/videos/{video}/bans/{}", user.user_id);
    send(app, Method::PUT, &path, by, body).await
}

async fn appoint(app: &TestApp, video: &str, by: &Session, user: &Session) -> StatusCode {
    let path = format!("/api/videos/{video}/moderators/{}", user.user_id);
    send(app, Method::PUT, &path, by, json!({})).await.status()
}

async fn set_chat(app: &TestApp, video: &str, by: &Session, body: Value) -> reqwest::Response {
    send(
        app,
        Method::PATCH,
        &format!("/api/videos/{video}/chat"),
        by,
        body,
    )
    .await
}

async fn posted(app: &TestApp, who: &Session, video: &str, body: &str) -> Value {
    let res = app.post_comment(&who.access_token, video, body).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    res.json().await.unwrap()
}

/// Joins `comments:<video>` (as `token`, or anonymously); returns the socket and the reply.
async fn watch(app: &TestApp, token: Option<&str>, video: &str) -> (WsClient, Value) {
    let mut ws = WsClient::connect_as(&app.address, token).await;
    let reply = ws.join(&format!("comments:{video}"), json!({})).await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    (ws, reply)
}

/// Posts over the socket (joined to `comments:<video>` with join ref `join_ref`); the reply.
async fn socket_post(ws: &mut WsClient, join_ref: &str, video: &str, body: &str) -> Value {
    let r = ws.next_ref();
    ws.send(
        Some(join_ref),
        &r,
        &format!("comments:{video}"),
        "new_comment",
        json!({ "body": body }),
    )
    .await;
    ws.reply_to(&r).await[4].clone()
}

both_backends!(an_owner_runs_a_live_chat_and_every_viewer_sees_it_happen);
async fn an_owner_runs_a_live_chat_and_every_viewer_sees_it_happen(app: TestApp) {
    let owner = app.register("owner").await;
    let modo = app.register("modo").await;
    let troll = app.register("troll").await;
    let fan = app.register("fan").await;
    app.create_video(&owner, "live", "public").await;
    let (mut viewer, _) = watch(&app, None, "live").await;

    // The owner appoints a moderator, who is listed for everyone.
    assert_eq!(
        appoint(&app, "live", &owner, &modo).await,
        StatusCode::NO_CONTENT
    );
    let listed: Value = app
        .get("/api/videos/live/moderators", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["moderators"][0]["username"], "modo");

    // The moderator pins a fan's comment: viewers see it pinned.
    let welcome = posted(&app, &fan, "live", "welcome everyone").await;
    let res = send(
        &app,
        Method::PUT,
        "/api/videos/live/pin",
        &modo,
        json!({"comment_id": welcome["id"]}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let chat: Value = res.json().await.unwrap();
    assert_eq!(chat["pinned_comment"]["id"], welcome["id"]);
    let pinned = viewer.until_event("comments:live", "comment_pinned").await;
    assert_eq!(pinned[4]["comment"]["body"], "welcome everyone");

    // Slow mode: viewers are told, and a second comment within it is refused with the wait.
    let res = set_chat(&app, "live", &modo, json!({"slow_mode_seconds": 30})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let settings = viewer.until_event("comments:live", "chat_settings").await;
    assert_eq!(
        settings[4],
        json!({"slow_mode_seconds": 30, "chat_mode": "everyone", "blocked_terms_action": "refuse"})
    );
    let first = posted(&app, &troll, "live", "spam 1").await;
    let refused = app
        .post_comment(&troll.access_token, "live", "spam 2")
        .await;
    let retry_header: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "slow_mode").await;
    let wait = body["error"]["retry_after"].as_u64().unwrap();
    assert!((1..=30).contains(&wait), "{body}");
    assert_eq!(wait, retry_header);
    // Moderators are exempt.
    posted(&app, &modo, "live", "mods may talk freely").await;
    posted(&app, &modo, "live", "see?").await;

    // A joiner is told the settings and the pin in its join reply.
    let (_, reply) = watch(&app, None, "live").await;
    assert_eq!(
        reply[4]["response"]["chat_settings"]["slow_mode_seconds"],
        30
    );
    assert_eq!(reply[4]["response"]["pinned_comment"]["id"], welcome["id"]);

    // A timeout that removes the troll's comments: viewers see them deleted, posts are refused
    // with the remaining time.
    let res = ban(
        &app,
        "live",
        &modo,
        &troll,
        json!({"duration_seconds": 600, "reason": "spam", "remove_comments": true}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let banned: Value = res.json().await.unwrap();
    assert_eq!(banned["removed_comments"], 1);
    assert_eq!(banned["ban"]["reason"], "spam");
    assert!(banned["ban"]["expires_at"].is_string());
    let deleted = viewer.until_event("comments:live", "comment_deleted").await;
    assert_eq!(deleted[4]["id"], first["id"]);
    assert_eq!(deleted[4]["deleted"], true);
    assert!(deleted[4]["body"].is_null());
    let body = assert_error(
        app.post_comment(&troll.access_token, "live", "let me back")
            .await,
        StatusCode::FORBIDDEN,
        "timed_out",
    )
    .await;
    let left = body["error"]["retry_after"].as_u64().unwrap();
    assert!((590..=600).contains(&left), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("spam"));

    // Turning slow mode off is seen live too; the owner unpins.
    set_chat(&app, "live", &owner, json!({"slow_mode_seconds": 0})).await;
    let settings = viewer.until_event("comments:live", "chat_settings").await;
    assert_eq!(settings[4]["slow_mode_seconds"], 0);
    let res = app
        .delete("/api/videos/live/pin", &owner.access_token)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let unpinned = viewer
        .until_event("comments:live", "comment_unpinned")
        .await;
    assert_eq!(unpinned[4]["comment_id"], welcome["id"]);

    // Lifting the timeout lets the troll post again.
    let res = app
        .delete(
            &format!("/api/videos/live/bans/{}", troll.user_id),
            &modo.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    posted(&app, &troll, "live", "sorry").await;

    // The log lists every action, newest first, with who did it.
    let log: Value = app
        .get("/api/videos/live/moderation-log", Some(&owner.access_token))
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"]["username"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("unban", "modo"),
            ("unpin", "owner"),
            ("chat_settings", "owner"),
            ("remove_comments", "modo"),
            ("timeout", "modo"),
            ("chat_settings", "modo"),
            ("pin", "modo"),
            ("appoint_moderator", "owner"),
        ]
    );
    let timeout = &log["entries"][4];
    assert_eq!(timeout["target_user"]["username"], "troll");
    assert_eq!(timeout["reason"], "spam");
    assert_eq!(timeout["details"]["duration_seconds"], 600);
    // Keyset pages.
    let page: Value = app
        .get(
            "/api/videos/live/moderation-log?limit=3",
            Some(&owner.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["entries"].as_array().unwrap().len(), 3);
    let next = page["next_before"].as_i64().unwrap();
    let older: Value = app
        .get(
            &format!("/api/videos/live/moderation-log?limit=10&before={next}"),
            Some(&owner.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(older["entries"][0]["action"], "remove_comments");
    assert_eq!(older["entries"].as_array().unwrap().len(), 5);
    assert!(older["next_before"].is_null());
}

both_backends!(every_role_may_do_exactly_what_it_should);
async fn every_role_may_do_exactly_what_it_should(app: TestApp) {
    let admin = app.register("admin").await;
    let sitemod = app.register("sitemod").await;
    let owner = app.register("owner").await;
    let modo = app.register("modo").await;
    let other_modo = app.register("othermodo").await;
    let user = app.register("user").await;
    app.set_role("admin", Role::Admin).await;
    app.set_role("sitemod", Role::Moderator).await;
    app.create_video(&owner, "show", "public").await;

    // Appointing: the owner and admins, nobody else.
    for who in [&user, &modo, &sitemod] {
        assert_eq!(
            appoint(&app, "show", who, &other_modo).await,
            StatusCode::FORBIDDEN,
            "{}",
            who.username
        );
    }
    assert_eq!(
        appoint(&app, "show", &owner, &modo).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        appoint(&app, "show", &admin, &other_modo).await,
        StatusCode::NO_CONTENT
    );
    // Only for a video that exists, and a user who does.
    assert_eq!(
        appoint(&app, "nosuchvideo", &admin, &modo).await,
        StatusCode::NOT_FOUND
    );
    let ghost = format!("/api/videos/show/moderators/{}", uuid::Uuid::new_v4());
    assert_eq!(
        send(&app, Method::PUT, &ghost, &owner, json!({}))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Settings and pins: any moderator of the video; a plain user gets 403 and changes nothing.
    for who in [&modo, &sitemod, &admin, &owner] {
        assert_eq!(
            set_chat(&app, "show", who, json!({"slow_mode_seconds": 5}))
                .await
                .status(),
            StatusCode::OK,
            "{}",
            who.username
        );
    }
    assert_error(
        set_chat(&app, "show", &user, json!({"slow_mode_seconds": 0})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let chat: Value = app
        .get("/api/videos/show/chat", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(chat["slow_mode_seconds"], 5);
    let c = posted(&app, &user, "show", "hello").await;
    assert_eq!(
        send(
            &app,
            Method::PUT,
            "/api/videos/show/pin",
            &user,
            json!({"comment_id": c["id"]})
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );

    // Bans: a moderator bans a viewer but not the owner, an admin or another moderator.
    let status = |res: reqwest::Response| res.status();
    assert_eq!(
        status(ban(&app, "show", &modo, &user, json!({"duration_seconds": 60})).await),
        StatusCode::OK
    );
    for target in [&owner, &admin, &other_modo, &sitemod] {
        assert_eq!(
            status(ban(&app, "show", &modo, target, json!({})).await),
            StatusCode::FORBIDDEN,
            "{}",
            target.username
        );
    }
    // The owner bans a moderator; an admin bans the owner; nobody bans an admin or themselves.
    assert_eq!(
        status(
            ban(
                &app,
                "show",
                &owner,
                &other_modo,
                json!({"duration_seconds": 10})
            )
            .await
        ),
        StatusCode::OK
    );
    assert_eq!(
        status(ban(&app, "show", &owner, &admin, json!({})).await),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(
            ban(
                &app,
                "show",
                &admin,
                &owner,
                json!({"duration_seconds": 10})
            )
            .await
        ),
        StatusCode::OK
    );
    assert_eq!(
        status(ban(&app, "show", &owner, &owner, json!({})).await),
        StatusCode::FORBIDDEN
    );
    // A plain user bans nobody; reading bans is for moderators.
    assert_eq!(
        status(ban(&app, "show", &user, &modo, json!({})).await),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/videos/show/bans", Some(&user.access_token))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let bans: Value = app
        .get("/api/videos/show/bans", Some(&modo.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bans["bans"].as_array().unwrap().len(), 3);

    // Site-wide bans: admins only, never of an admin.
    let site = |target: &Session| format!("/api/bans/{}", target.user_id);
    for who in [&owner, &sitemod, &modo] {
        assert_eq!(
            send(&app, Method::PUT, &site(&user), who, json!({}))
                .await
                .status(),
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        send(&app, Method::PUT, &site(&admin), &admin, json!({}))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/bans", Some(&owner.access_token))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // Deleting someone else's comment: the video's moderators (logged), not a plain user.
    let mine = posted(&app, &admin, "show", "admin words").await;
    let res = app
        .delete(
            &format!("/api/comments/{}", mine["id"].as_str().unwrap()),
            &user.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .delete(
            &format!("/api/comments/{}", mine["id"].as_str().unwrap()),
            &modo.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // The log: the owner and admins; not moderators or users.
    for who in [&modo, &sitemod, &user] {
        assert_eq!(
            app.get("/api/videos/show/moderation-log", Some(&who.access_token))
                .await
                .status(),
            StatusCode::FORBIDDEN
        );
    }
    let log: Value = app
        .get("/api/videos/show/moderation-log", Some(&admin.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(log["entries"][0]["action"], "delete_comment");
    assert_eq!(log["entries"][0]["target_comment_id"], mine["id"]);
    // No signed-in user, no moderation.
    let res = app
        .client
        .patch(app.url("/api/videos/show/chat"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

both_backends!(bans_and_timeouts_refuse_posts_on_rest_and_socket_with_reason_and_time);
async fn bans_and_timeouts_refuse_posts_on_rest_and_socket_with_reason_and_time(app: TestApp) {
    let admin = app.register("admin").await;
    let troll = app.register("troll").await;
    app.set_role("admin", Role::Admin).await;
    posted(&app, &troll, "v1", "first").await;
    let (mut ws, reply) = watch(&app, Some(&troll.access_token), "v1").await;
    let join_ref = reply[0].as_str().unwrap().to_owned();

    // Permanent on one video: refused there with `banned`, allowed elsewhere.
    let res = ban(&app, "v1", &admin, &troll, json!({"reason": "abuse"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["ban"]["expires_at"].is_null());
    let refused = assert_error(
        app.post_comment(&troll.access_token, "v1", "x").await,
        StatusCode::FORBIDDEN,
        "banned",
    )
    .await;
    assert!(refused["error"].get("retry_after").is_none());
    let on_socket = socket_post(&mut ws, &join_ref, "v1", "x").await;
    assert_eq!(on_socket["status"], "error");
    assert_eq!(on_socket["response"]["reason"], "banned");
    assert!(
        on_socket["response"]["message"]
            .as_str()
            .unwrap()
            .contains("abuse")
    );
    posted(&app, &troll, "v2", "elsewhere is fine").await;

    // Replaced by a timeout: the socket's refusal carries the time left.
    ban(&app, "v1", &admin, &troll, json!({"duration_seconds": 120})).await;
    let on_socket = socket_post(&mut ws, &join_ref, "v1", "x").await;
    assert_eq!(on_socket["response"]["reason"], "timed_out");
    let left = on_socket["response"]["retry_after"].as_u64().unwrap();
    assert!((110..=120).contains(&left), "{on_socket}");

    // Lifted: posts go through again; lifting twice is 404.
    let lift = format!("/api/videos/v1/bans/{}", troll.user_id);
    assert_eq!(
        app.delete(&lift, &admin.access_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.delete(&lift, &admin.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let on_socket = socket_post(&mut ws, &join_ref, "v1", "back").await;
    assert_eq!(on_socket["status"], "ok", "{on_socket}");

    // Site-wide: refused on every video, listed for admins, lifted the same way.
    let site = format!("/api/bans/{}", troll.user_id);
    let res = send(
        &app,
        Method::PUT,
        &site,
        &admin,
        json!({"duration_seconds": 3600, "reason": "raid"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    for video in ["v1", "v2", "v3"] {
        let body = assert_error(
            app.post_comment(&troll.access_token, video, "x").await,
            StatusCode::FORBIDDEN,
            "timed_out",
        )
        .await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("this site")
        );
    }
    let listed: Value = app
        .get("/api/bans", Some(&admin.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["bans"][0]["username"], "troll");
    assert!(listed["bans"][0]["video_id"].is_null());
    assert_eq!(
        app.delete(&site, &admin.access_token).await.status(),
        StatusCode::NO_CONTENT
    );
    posted(&app, &troll, "v3", "free again").await;

    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains(r#"banter_comments_refused_total{reason="banned"}"#),
        "refusals are counted"
    );
    assert!(metrics.contains(r#"banter_moderation_actions_total{action="timeout"}"#));
}

both_backends!(members_only_chat_keeps_the_video_watchable_by_everyone);
async fn members_only_chat_keeps_the_video_watchable_by_everyone(app: TestApp) {
    let owner = app.register("owner").await;
    let member = app.register("member").await;
    let outsider = app.register("outsider").await;
    let modo = app.register("modo").await;
    app.create_video(&owner, "club", "public").await;
    app.set_member(&owner, "club", &member, true).await;
    assert_eq!(
        appoint(&app, "club", &owner, &modo).await,
        StatusCode::NO_CONTENT
    );
    let (mut anon, _) = watch(&app, None, "club").await;
    let res = set_chat(&app, "club", &owner, json!({"chat_mode": "members"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        anon.until_event("comments:club", "chat_settings").await[4]["chat_mode"],
        "members"
    );

    assert_error(
        app.post_comment(&outsider.access_token, "club", "hi").await,
        StatusCode::FORBIDDEN,
        "members_only_chat",
    )
    .await;
    posted(&app, &member, "club", "members talk").await;
    posted(&app, &modo, "club", "moderators too").await;
    posted(&app, &owner, "club", "and the owner").await;
    // Still readable by anyone, and joinable anonymously.
    let page: Value = app
        .get("/api/videos/club/comments", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["comments"].as_array().unwrap().len(), 3);
    let (_, reply) = watch(&app, Some(&outsider.access_token), "club").await;
    assert_eq!(
        reply[4]["response"]["chat_settings"]["chat_mode"],
        "members"
    );

    set_chat(&app, "club", &owner, json!({"chat_mode": "everyone"})).await;
    posted(&app, &outsider, "club", "open again").await;
}

both_backends!(bad_moderation_input_is_refused_clearly_and_changes_nothing);
async fn bad_moderation_input_is_refused_clearly_and_changes_nothing(app: TestApp) {
    let owner = app.register("owner").await;
    let user = app.register("user").await;
    app.create_video(&owner, "show", "public").await;
    app.create_video(&owner, "other", "public").await;
    for body in [
        json!({"duration_seconds": 9}),
        json!({"duration_seconds": 86_401}),
        json!({"duration_seconds": -5}),
        json!({"reason": "x".repeat(501)}),
    ] {
        assert_error(
            ban(&app, "show", &owner, &user, body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
    }
    assert_error(
        ban(&app, "show", &owner, &user, json!({"until": 5})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    for body in [
        json!({"slow_mode_seconds": 3601}),
        json!({"slow_mode_seconds": -1}),
    ] {
        assert_error(
            set_chat(&app, "show", &owner, body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
    }
    assert_error(
        set_chat(&app, "show", &owner, json!({"chat_mode": "signed_in"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_chat_mode",
    )
    .await;
    // Pinning a comment of another video, or a deleted one, or none.
    let elsewhere = posted(&app, &user, "other", "not here").await;
    let pin = |id: &Value| json!({"comment_id": id});
    assert_error(
        send(
            &app,
            Method::PUT,
            "/api/videos/show/pin",
            &owner,
            pin(&elsewhere["id"]),
        )
        .await,
        StatusCode::CONFLICT,
        "comment_unavailable",
    )
    .await;
    let here = posted(&app, &user, "show", "soon gone").await;
    app.delete(
        &format!("/api/comments/{}", here["id"].as_str().unwrap()),
        &user.access_token,
    )
    .await;
    assert_error(
        send(
            &app,
            Method::PUT,
            "/api/videos/show/pin",
            &owner,
            pin(&here["id"]),
        )
        .await,
        StatusCode::CONFLICT,
        "comment_unavailable",
    )
    .await;
    // Unpinning with nothing pinned has nothing to do, and logs nothing.
    assert_eq!(
        app.delete("/api/videos/show/pin", &owner.access_token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.get(
            "/api/videos/show/moderation-log?limit=0",
            Some(&owner.access_token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    // Nothing of that changed anything.
    let chat: Value = app
        .get("/api/videos/show/chat", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        chat,
        json!({"slow_mode_seconds": 0, "chat_mode": "everyone", "blocked_terms_action": "refuse", "pinned_comment": null})
    );
    let log: Value = app
        .get("/api/videos/show/moderation-log", Some(&owner.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(log["entries"], json!([]));
    posted(&app, &user, "show", "still allowed").await;
}

both_backends!(a_pinned_comment_that_is_deleted_is_unpinned_for_everyone);
async fn a_pinned_comment_that_is_deleted_is_unpinned_for_everyone(app: TestApp) {
    let owner = app.register("owner").await;
    let fan = app.register("fan").await;
    app.create_video(&owner, "show", "public").await;
    let c = posted(&app, &fan, "show", "pin me").await;
    send(
        &app,
        Method::PUT,
        "/api/videos/show/pin",
        &owner,
        json!({"comment_id": c["id"]}),
    )
    .await;
    let (mut ws, reply) = watch(&app, None, "show").await;
    assert_eq!(reply[4]["response"]["pinned_comment"]["body"], "pin me");
    app.delete(
        &format!("/api/comments/{}", c["id"].as_str().unwrap()),
        &fan.access_token,
    )
    .await;
    let unpinned = ws.until_event("comments:show", "comment_unpinned").await;
    assert_eq!(unpinned[4]["comment_id"], c["id"]);
    let chat: Value = app
        .get("/api/videos/show/chat", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(chat["pinned_comment"].is_null());
}

both_backends!(whole_numbers_written_as_floats_are_integers_as_json_schema_says);
async fn whole_numbers_written_as_floats_are_integers_as_json_schema_says(app: TestApp) {
    let owner = app.register("owner").await;
    let user = app.register("user").await;
    app.create_video(&owner, "show", "public").await;
    let res = ban(
        &app,
        "show",
        &owner,
        &user,
        json!({"duration_seconds": 467.0}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        set_chat(&app, "show", &owner, json!({"slow_mode_seconds": 20.0}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_error(
        ban(
            &app,
            "show",
            &owner,
            &user,
            json!({"duration_seconds": 60.5}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_error(
        ban(
            &app,
            "show",
            &owner,
            &user,
            json!({"duration_seconds": 1e300}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
}

async fn set_terms(app: &TestApp, path: &str, by: &Session, terms: &[&str]) -> reqwest::Response {
    send(app, Method::PUT, path, by, json!({ "terms": terms })).await
}

both_backends!(blocked_terms_refuse_look_alikes_on_rest_and_socket);
async fn blocked_terms_refuse_look_alikes_on_rest_and_socket(app: TestApp) {
    let owner = app.register("owner").await;
    let admin = app.register("admin").await;
    let troll = app.register("troll").await;
    app.set_role("admin", Role::Admin).await;
    app.create_video(&owner, "show", "public").await;
    let res = set_terms(
        &app,
        "/api/videos/show/blocked-terms",
        &owner,
        &["Scam", " scam ", "ＣＯＩＮ"],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let stored: Value = res.json().await.unwrap();
    assert_eq!(
        stored["terms"],
        json!(["coin", "scam"]),
        "folded, trimmed, deduplicated, sorted"
    );

    for body in [
        "SCAM",
        "ｓｃａｍ here",
        "𝐬𝐜𝐚𝐦",
        "s\u{200B}c\u{200C}am",
        "free COIN",
        "ⓢⓒⓐⓜ",
    ] {
        assert_error(
            app.post_comment(&troll.access_token, "show", body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "blocked_term",
        )
        .await;
    }
    posted(&app, &troll, "show", "a fine comment").await;
    let (mut ws, reply) = watch(&app, Some(&troll.access_token), "show").await;
    let join_ref = reply[0].as_str().unwrap().to_owned();
    let refused = socket_post(&mut ws, &join_ref, "show", "total ＳＣＡＭ").await;
    assert_eq!(refused["response"]["reason"], "blocked_term", "{refused}");
    // The video's moderators are exempt; other videos are not affected.
    posted(&app, &owner, "show", "this is not a scam, it is a warning").await;
    posted(&app, &troll, "other", "scam elsewhere").await;

    // Site-wide terms (admins) apply on every video.
    assert_eq!(
        set_terms(&app, "/api/blocked-terms", &owner, &["spoiler"])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        set_terms(&app, "/api/blocked-terms", &admin, &["Spoiler"])
            .await
            .status(),
        StatusCode::OK
    );
    for video in ["show", "other", "third"] {
        assert_error(
            app.post_comment(&troll.access_token, video, "SPOILER: he dies")
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "blocked_term",
        )
        .await;
    }
    // The lists are for moderators and admins, not viewers.
    assert_eq!(
        app.get("/api/videos/show/blocked-terms", Some(&troll.access_token))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/blocked-terms", Some(&troll.access_token))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let site: Value = app
        .get("/api/blocked-terms", Some(&admin.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(site["terms"], json!(["spoiler"]));

    // Bad lists change nothing.
    let long = "x".repeat(26);
    let many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    for terms in [vec!["   "], vec!["a\u{0}b"], vec![long.as_str()], many] {
        assert_error(
            set_terms(&app, "/api/videos/show/blocked-terms", &owner, &terms).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
    }
    let kept: Value = app
        .get("/api/videos/show/blocked-terms", Some(&owner.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["terms"], json!(["coin", "scam"]));
    // A term of only invisible characters could only match everything: it is left out.
    let res = set_terms(
        &app,
        "/api/videos/show/blocked-terms",
        &owner,
        &["\u{200B}", "scam"],
    )
    .await;
    let stored: Value = res.json().await.unwrap();
    assert_eq!(stored["terms"], json!(["scam"]));
    // An empty list clears it.
    set_terms(&app, "/api/videos/show/blocked-terms", &owner, &[]).await;
    posted(&app, &troll, "show", "scam talk is allowed now").await;
}

both_backends!(a_held_comment_waits_for_review_and_takes_the_next_seq_when_approved);
async fn a_held_comment_waits_for_review_and_takes_the_next_seq_when_approved(app: TestApp) {
    let owner = app.register("owner").await;
    let modo = app.register("modo").await;
    let fan = app.register("fan").await;
    app.create_video(&owner, "show", "public").await;
    assert_eq!(
        appoint(&app, "show", &owner, &modo).await,
        StatusCode::NO_CONTENT
    );
    set_terms(&app, "/api/videos/show/blocked-terms", &owner, &["link"]).await;
    let res = set_chat(&app, "show", &modo, json!({"blocked_terms_action": "hold"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (mut viewer, reply) = watch(&app, None, "show").await;
    assert_eq!(
        reply[4]["response"]["chat_settings"]["blocked_terms_action"],
        "hold"
    );

    posted(&app, &fan, "show", "one").await;
    let res = app
        .post_comment(&fan.access_token, "show", "check my LINK")
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let held: Value = res.json().await.unwrap();
    assert_eq!(held["matched_term"], "link");
    assert_eq!(held["body"], "check my LINK");
    // Over the socket too: an ok reply with the held comment instead of a comment.
    let (mut fan_ws, reply) = watch(&app, Some(&fan.access_token), "show").await;
    let join_ref = reply[0].as_str().unwrap().to_owned();
    let on_socket = socket_post(&mut fan_ws, &join_ref, "show", "another link").await;
    assert_eq!(on_socket["status"], "ok");
    assert_eq!(
        on_socket["response"]["held_comment"]["body"],
        "another link"
    );
    assert!(on_socket["response"].get("comment").is_none());
    posted(&app, &fan, "show", "two").await;

    // Nobody sees held comments; moderators list them.
    let page: Value = app
        .get("/api/videos/show/comments", None)
        .await
        .json()
        .await
        .unwrap();
    let bodies: Vec<&str> = page["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, vec!["one", "two"]);
    assert_eq!(
        app.get("/api/videos/show/held-comments", Some(&fan.access_token))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let queue: Value = app
        .get("/api/videos/show/held-comments", Some(&modo.access_token))
        .await
        .json()
        .await
        .unwrap();
    let queued: Vec<&str> = queue["held_comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["body"].as_str().unwrap())
        .collect();
    assert_eq!(queued, vec!["check my LINK", "another link"]);

    // Approved: committed now with the next seq, gap-free, and broadcast.
    let approve = format!(
        "/api/videos/show/held-comments/{}/approve",
        held["id"].as_str().unwrap()
    );
    let res = send(&app, Method::POST, &approve, &modo, json!({})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let approved: Value = res.json().await.unwrap();
    assert_eq!(approved["seq"], 3);
    assert_eq!(approved["author"]["username"], "fan");
    assert_eq!(approved["body"], "check my LINK");
    let live = loop {
        let frame = viewer.until_event("comments:show", "comment_created").await;
        if frame[4]["seq"] == 3 {
            break frame;
        }
    };
    assert_eq!(live[4]["body"], "check my LINK");
    // Approving twice does nothing; a viewer may not approve.
    assert_error(
        send(&app, Method::POST, &approve, &modo, json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let other = format!(
        "/api/videos/show/held-comments/{}",
        on_socket["response"]["held_comment"]["id"]
            .as_str()
            .unwrap()
    );
    assert_eq!(
        send(
            &app,
            Method::POST,
            &format!("{other}/approve"),
            &fan,
            json!({})
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    // Rejected: gone for good.
    assert_eq!(
        app.delete(&other, &owner.access_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.delete(&other, &owner.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let queue: Value = app
        .get("/api/videos/show/held-comments", Some(&modo.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(queue["held_comments"], json!([]));
    let page: Value = app
        .get("/api/videos/show/comments", None)
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
    assert_eq!(seqs, vec![1, 2, 3]);

    let log: Value = app
        .get("/api/videos/show/moderation-log", Some(&owner.access_token))
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "reject",
            "approve",
            "chat_settings",
            "blocked_terms",
            "appoint_moderator"
        ]
    );
}

both_backends!(comments_carry_their_authors_role_on_the_video_everywhere);
async fn comments_carry_their_authors_role_on_the_video_everywhere(app: TestApp) {
    let owner = app.register("owner").await;
    let modo = app.register("modo").await;
    let sitemod = app.register("sitemod").await;
    let admin = app.register("admin").await;
    let viewer = app.register("viewer").await;
    app.set_role("sitemod", Role::Moderator).await;
    app.set_role("admin", Role::Admin).await;
    app.create_video(&owner, "show", "public").await;
    assert_eq!(
        appoint(&app, "show", &owner, &modo).await,
        StatusCode::NO_CONTENT
    );
    let (mut ws, _) = watch(&app, None, "show").await;
    let expected = [
        (&owner, json!("owner")),
        (&modo, json!("moderator")),
        (&sitemod, json!("moderator")),
        (&admin, json!("admin")),
        (&viewer, Value::Null),
    ];
    for (who, role) in &expected {
        let c = posted(&app, who, "show", &format!("from {}", who.username)).await;
        assert_eq!(
            c["author"]["role"], *role,
            "REST answer for {}",
            who.username
        );
        let live = ws.until_event("comments:show", "comment_created").await;
        assert_eq!(
            live[4]["author"]["role"], *role,
            "live event for {}",
            who.username
        );
    }
    let page: Value = app
        .get("/api/videos/show/comments", None)
        .await
        .json()
        .await
        .unwrap();
    let (_, reply) = watch(&app, None, "show").await;
    for (i, (who, role)) in expected.iter().enumerate() {
        assert_eq!(
            page["comments"][i]["author"]["role"], *role,
            "page for {}",
            who.username
        );
        assert_eq!(
            reply[4]["response"]["comments"][i]["author"]["role"], *role,
            "history for {}",
            who.username
        );
    }
    // The badge is the role now: a removed moderator's comments lose it.
    let path = format!("/api/videos/show/moderators/{}", modo.user_id);
    assert_eq!(
        app.delete(&path, &owner.access_token).await.status(),
        StatusCode::NO_CONTENT
    );
    let page: Value = app
        .get("/api/videos/show/comments", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(page["comments"][1]["author"]["role"].is_null());
}

both_backends!(a_timeout_ends_by_itself);
async fn a_timeout_ends_by_itself(app: TestApp) {
    let owner = app.register("owner").await;
    let troll = app.register("troll").await;
    app.create_video(&owner, "show", "public").await;
    let res = ban(
        &app,
        "show",
        &owner,
        &troll,
        json!({"duration_seconds": 10}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = assert_error(
        app.post_comment(&troll.access_token, "show", "let me in")
            .await,
        StatusCode::FORBIDDEN,
        "timed_out",
    )
    .await;
    let wait = body["error"]["retry_after"].as_u64().unwrap();
    assert!((1..=10).contains(&wait), "{body}");
    // The advertised wait is enough: no lift, no cache to expire first.
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    posted(&app, &troll, "show", "back after the timeout").await;
    let bans: Value = app
        .get("/api/videos/show/bans", Some(&owner.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bans["bans"], json!([]), "an ended timeout is not listed");
}
