//! Access that holds on open sockets: when an account, device, session, role, visibility or
//! membership changes, the sockets it concerns are re-checked at once; a topic the viewer may
//! no longer watch gets `phx_close` with a reason and stops receiving, and a socket whose
//! sign-in ended is closed with 4001. Joins re-check the token's account, device and session;
//! a token that expires on an open socket closes it (4002) unless a fresh one was sent
//! in-band with `access_token`.
//!
//! The same across nodes over Redis is in `cluster.rs`; REST access reads against a lagging
//! replica are in `replicas.rs`.

use banter_tests::{Session, TestApp, TestBackend, WsClient, assert_error, session_from};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;

async fn joined(app: &TestApp, token: Option<&str>, topic: &str) -> WsClient {
    let mut ws = WsClient::connect_as(&app.address, token).await;
    let reply = ws.join(topic, json!({})).await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    ws
}

/// Waits for the server's `phx_close` of `topic` and returns its payload.
async fn topic_closed(ws: &mut WsClient, topic: &str) -> Value {
    ws.until_event(topic, "phx_close").await[4].clone()
}

/// Sends a heartbeat and reads up to its reply: no comment of `topic` may arrive before it.
async fn receives_nothing_of(ws: &mut WsClient, topic: &str) {
    let r = ws.next_ref();
    ws.send(None, &r, "phoenix", "heartbeat", json!({})).await;
    loop {
        let frame = ws.frame().await;
        assert!(
            !(frame[2] == topic && frame[3] == "comment_created"),
            "a comment reached a viewer who lost access: {frame}"
        );
        if frame[3] == "phx_reply" && frame[1] == r.as_str() {
            return;
        }
    }
}

/// Sends `access_token` on the `phoenix` topic; returns the reply's payload.
async fn push_token(ws: &mut WsClient, payload: Value) -> Value {
    let r = ws.next_ref();
    ws.send(None, &r, "phoenix", "access_token", payload).await;
    ws.reply_to(&r).await[4].clone()
}

async fn set_visibility(app: &TestApp, owner: &Session, id: &str, visibility: &str) {
    let res = app
        .send_json(
            Method::PATCH,
            &format!("/api/videos/{id}"),
            Some(&owner.access_token),
            &json!({"visibility": visibility}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// Signs `session`'s device out through the API.
async fn revoke_own_device(app: &TestApp, session: &Session) {
    let path = format!("/api/me/devices/{}", session.device_id);
    let res = app.delete(&path, &session.access_token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

/// Neither the session's access token nor its refresh token works any more; refreshing says
/// the session ended (rather than reporting reuse).
async fn session_is_over(app: &TestApp, session: &Session) {
    assert_error(
        app.get("/api/me", Some(&session.access_token)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_error(
        app.refresh(&session.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "session_ended",
    )
    .await;
}

async fn signed_out(ws: &mut WsClient) -> String {
    let (code, reason) = ws.closed().await.expect("a close frame with a reason");
    assert_eq!(code, 4001, "{reason}");
    assert!(reason.starts_with("signed out"), "{reason}");
    reason
}

both_backends!(a_revoked_device_closes_its_open_socket);
async fn a_revoked_device_closes_its_open_socket(app: TestApp) {
    let alice = app.register("alice").await;
    let mut ws = joined(&app, Some(&alice.access_token), "comments:v1").await;
    revoke_own_device(&app, &alice).await;
    signed_out(&mut ws).await;
    // And it cannot come back with the same token.
    let again = WsClient::connect(
        &app.address,
        &format!("vsn=2.0.0&token={}", alice.access_token),
    )
    .await;
    assert_eq!(again.err(), Some(403));
}

both_backends!(logout_ends_the_access_token_and_its_sockets);
async fn logout_ends_the_access_token_and_its_sockets(app: TestApp) {
    let alice = app.register("alice").await;
    let mut ws = joined(&app, Some(&alice.access_token), "comments:v1").await;
    let res = app.logout(&alice.refresh_token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    signed_out(&mut ws).await;
    session_is_over(&app, &alice).await;
}

both_backends!(signing_in_again_on_a_revoked_device_does_not_revive_its_old_tokens);
async fn signing_in_again_on_a_revoked_device_does_not_revive_its_old_tokens(app: TestApp) {
    let alice = app.register("alice").await;
    revoke_own_device(&app, &alice).await;
    let res = app.login("alice", "password-alice", &alice.device_id).await;
    assert_eq!(res.status(), StatusCode::OK);
    let fresh = session_from(res.json().await.unwrap());
    session_is_over(&app, &alice).await;
    assert_eq!(
        app.get("/api/me", Some(&fresh.access_token)).await.status(),
        StatusCode::OK
    );
}

both_backends!(a_password_change_ends_the_other_sessions_and_their_sockets);
async fn a_password_change_ends_the_other_sessions_and_their_sockets(app: TestApp) {
    let here = app.register("alice").await;
    let res = app.login("alice", "password-alice", "laptop").await;
    let elsewhere = session_from(res.json().await.unwrap());
    let mut mine = joined(&app, Some(&here.access_token), "comments:v1").await;
    let mut theirs = joined(&app, Some(&elsewhere.access_token), "comments:v1").await;
    let res = app
        .send_json(
            Method::PATCH,
            "/api/me",
            Some(&here.access_token),
            &json!({"password": "a much better password", "current_password": "password-alice"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    signed_out(&mut theirs).await;
    session_is_over(&app, &elsewhere).await;
    // The session that changed the password goes on, socket included.
    assert_eq!(
        app.get("/api/me", Some(&here.access_token)).await.status(),
        StatusCode::OK
    );
    receives_nothing_of(&mut mine, "comments:none").await;
}

both_backends!(a_demoted_moderator_loses_the_private_video_they_watch);
async fn a_demoted_moderator_loses_the_private_video_they_watch(app: TestApp) {
    let owner = app.register("owner").await;
    let moderator = app.register("modder").await;
    let admin = app.register("admin").await;
    app.set_role("modder", banter_core::Role::Moderator).await;
    app.set_role("admin", banter_core::Role::Admin).await;
    app.create_video(&owner, "secret", "private").await;
    let mut ws = joined(&app, Some(&moderator.access_token), "comments:secret").await;
    let res = app
        .send_json(
            Method::PATCH,
            &format!("/api/admin/users/{}", moderator.user_id),
            Some(&admin.access_token),
            &json!({"role": "user"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let closed = topic_closed(&mut ws, "comments:secret").await;
    assert_eq!(closed["reason"], "private video", "{closed}");
    assert!(closed["message"].as_str().is_some_and(|m| !m.is_empty()));
    app.post_comment(&owner.access_token, "secret", "for owners only")
        .await;
    receives_nothing_of(&mut ws, "comments:secret").await;
    // The socket itself stays open for what the user may still watch.
    let reply = ws.join("comments:public", json!({})).await;
    assert_eq!(reply[4]["status"], "ok");
}

both_backends!(viewers_lose_a_video_made_private_while_the_owner_keeps_it);
async fn viewers_lose_a_video_made_private_while_the_owner_keeps_it(app: TestApp) {
    let owner = app.register("owner").await;
    let stranger = app.register("stranger").await;
    app.create_video(&owner, "show", "public").await;
    let mut anon = joined(&app, None, "comments:show").await;
    let mut other = joined(&app, Some(&stranger.access_token), "comments:show").await;
    let mut own = joined(&app, Some(&owner.access_token), "comments:show").await;
    set_visibility(&app, &owner, "show", "private").await;
    assert_eq!(
        topic_closed(&mut anon, "comments:show").await["reason"],
        "unauthorized"
    );
    assert_eq!(
        topic_closed(&mut other, "comments:show").await["reason"],
        "private video"
    );
    app.post_comment(&owner.access_token, "show", "after the switch")
        .await;
    let seen = own.until_event("comments:show", "comment_created").await;
    assert_eq!(seen[4]["body"], "after the switch");
    receives_nothing_of(&mut anon, "comments:show").await;
    receives_nothing_of(&mut other, "comments:show").await;
    // A rejoin is refused with the same reason.
    assert_eq!(
        anon.join("comments:show", json!({})).await[4]["response"]["reason"],
        "unauthorized"
    );
}

both_backends!(a_removed_member_loses_a_members_only_video);
async fn a_removed_member_loses_a_members_only_video(app: TestApp) {
    let owner = app.register("owner").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    app.create_video(&owner, "club", "members").await;
    app.set_member(&owner, "club", &bob, true).await;
    app.set_member(&owner, "club", &carol, true).await;
    let mut bob_ws = joined(&app, Some(&bob.access_token), "comments:club").await;
    let mut carol_ws = joined(&app, Some(&carol.access_token), "comments:club").await;
    app.set_member(&owner, "club", &bob, false).await;
    assert_eq!(
        topic_closed(&mut bob_ws, "comments:club").await["reason"],
        "private video"
    );
    app.post_comment(&owner.access_token, "club", "members only")
        .await;
    assert_eq!(
        carol_ws
            .until_event("comments:club", "comment_created")
            .await[4]["body"],
        "members only"
    );
    receives_nothing_of(&mut bob_ws, "comments:club").await;
}

both_backends!(an_id_watched_before_it_was_registered_private_is_closed_to_its_viewers);
async fn an_id_watched_before_it_was_registered_private_is_closed_to_its_viewers(app: TestApp) {
    let owner = app.register("owner").await;
    let mut anon = joined(&app, None, "comments:premiere").await;
    app.create_video(&owner, "premiere", "private").await;
    assert_eq!(
        topic_closed(&mut anon, "comments:premiere").await["reason"],
        "unauthorized"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_rechecks_the_account_even_when_no_change_was_announced() {
    // Sessions seen alive are trusted for the cache's lifetime; a join after it reads again.
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[("BANTER_WS_PRINCIPAL_CACHE_MS", "300")],
    )
    .await;
    let alice = app.register("alice").await;
    let mut ws = joined(&app, Some(&alice.access_token), "comments:v1").await;
    // Straight in the database: no access change goes out, as if its bus message was lost.
    let user = banter_core::UserId::from_uuid(alice.user_id.parse().unwrap());
    app.store
        .primary()
        .update_standing(user, None, Some(false))
        .await
        .unwrap();
    receives_nothing_of(&mut ws, "comments:v1").await; // still open: nobody told it
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let r = ws.next_ref();
    ws.send(Some(&r), &r, "comments:v2", "phx_join", json!({}))
        .await;
    signed_out(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_closes_the_socket_unless_refreshed_in_band() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[("BANTER_ACCESS_TOKEN_TTL_SECS", "6")],
    )
    .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut lapsing = joined(&app, Some(&bob.access_token), "comments:v1").await;
    let mut kept = joined(&app, Some(&alice.access_token), "comments:v1").await;

    // Bad in-band refreshes get an error reply and change nothing.
    let bad = push_token(&mut kept, json!({"token": "garbage"})).await;
    assert_eq!(bad["status"], "error");
    assert_eq!(bad["response"]["reason"], "invalid_token");
    let shapeless = push_token(&mut kept, json!(["token"])).await;
    assert_eq!(shapeless["response"]["reason"], "invalid payload");
    let foreign = push_token(&mut kept, json!({"token": bob.access_token})).await;
    assert_eq!(foreign["response"]["reason"], "wrong account");
    let mut anon = joined(&app, None, "comments:v1").await;
    let anonymous = push_token(&mut anon, json!({"token": alice.access_token})).await;
    assert_eq!(anonymous["response"]["reason"], "wrong account");

    // Halfway through the tokens' life, a fresh token of the same account, sent in-band,
    // keeps the socket past the old expiry.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let res = app.refresh(&alice.refresh_token).await;
    let renewed = session_from(res.json().await.unwrap());
    let ok = push_token(&mut kept, json!({"token": renewed.access_token})).await;
    assert_eq!(ok["status"], "ok", "{ok}");
    assert!(ok["response"]["expires_at"].as_i64().is_some());

    let (code, reason) = lapsing.closed().await.expect("a close frame");
    assert_eq!(code, 4002, "{reason}");
    // Bob's token expired at about the same moment alice's first one did; alice's socket is
    // still open and still receiving (her fresh token has about 3 s left).
    app.post_comment(&renewed.access_token, "v1", "still here")
        .await;
    assert_eq!(
        kept.until_event("comments:v1", "comment_created").await[4]["body"],
        "still here"
    );
}
