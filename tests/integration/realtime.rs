//! The Phoenix Channels socket over a real connection: protocol rules, live comments, history
//! and recovery, presence, limits, and bad input.

use banter_tests::{Received, TestApp, TestBackend, WsClient};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::both_backends;

async fn app() -> TestApp {
    TestApp::spawn(TestBackend::Sqlite).await
}

async fn socket(app: &TestApp, token: Option<&str>) -> WsClient {
    let query = match token {
        Some(t) => format!("vsn=2.0.0&token={t}"),
        None => "vsn=2.0.0".to_owned(),
    };
    WsClient::connect(&app.address, &query)
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_before_any_join_is_answered_with_its_ref() {
    let app = app().await;
    let mut ws = socket(&app, None).await;
    ws.send(None, "8", "phoenix", "heartbeat", json!({})).await;
    assert_eq!(
        ws.frame().await,
        json!([null, "8", "phoenix", "phx_reply", {"status": "ok", "response": {}}])
    );
}

both_backends!(comments_flow_live_to_every_viewer_in_order);
async fn comments_flow_live_to_every_viewer_in_order(app: TestApp) {
    let alice = app.register("alice").await;
    let mut poster = socket(&app, Some(&alice.access_token)).await;
    let mut watcher = socket(&app, None).await;
    assert_eq!(
        app.post_comment(&alice.access_token, "v1", "before")
            .await
            .status(),
        StatusCode::CREATED
    );

    let reply = watcher.join("comments:v1", json!({})).await;
    assert_eq!(reply[0], reply[1], "join_ref and ref echoed");
    assert_eq!(reply[4]["status"], "ok");
    assert_eq!(reply[4]["response"]["last_seq"], 1);
    assert_eq!(reply[4]["response"]["comments"][0]["body"], "before");
    let state = watcher.frame().await;
    assert_eq!(state[3], "presence_state");
    assert_eq!(
        state[0], reply[0],
        "presence_state is a push with the join_ref"
    );
    let join = poster.join("comments:v1", json!({})).await;
    assert_eq!(join[4]["status"], "ok");

    for i in 0..5 {
        let r = poster.next_ref();
        let jr = join[0].as_str().unwrap().to_owned();
        poster
            .send(
                Some(&jr),
                &r,
                "comments:v1",
                "new_comment",
                json!({"body": format!("live {i}")}),
            )
            .await;
        let reply = poster.reply_to(&r).await;
        assert_eq!(reply[4]["status"], "ok", "{reply}");
        assert_eq!(reply[4]["response"]["comment"]["seq"], i + 2);
    }
    // REST writes reach sockets too.
    app.post_comment(&alice.access_token, "v1", "from rest")
        .await;
    let mut seqs = Vec::new();
    while seqs.len() < 6 {
        let frame = watcher.until_event("comments:v1", "comment_created").await;
        assert_eq!(
            (frame[0].clone(), frame[1].clone()),
            (Value::Null, Value::Null),
            "broadcasts carry no refs"
        );
        seqs.push(frame[4]["seq"].as_i64().unwrap());
    }
    assert_eq!(seqs, vec![2, 3, 4, 5, 6, 7]);
    // The sender receives broadcasts too (those before its replies were skipped above).
    let mut last = 0;
    while last != 7 {
        let seq = poster.until_event("comments:v1", "comment_created").await[4]["seq"]
            .as_i64()
            .unwrap();
        assert!(seq > last, "in order");
        last = seq;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_edits_and_deletes_are_broadcast() {
    let app = app().await;
    let alice = app.register("alice").await;
    let mut watcher = socket(&app, None).await;
    watcher.join("comments:v1", json!({})).await;
    let created: Value = app
        .post_comment(&alice.access_token, "v1", "typo")
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    app.send_json(
        Method::PATCH,
        &format!("/api/comments/{id}"),
        Some(&alice.access_token),
        &json!({"body": "fixed"}),
    )
    .await;
    app.send_json(
        Method::DELETE,
        &format!("/api/comments/{id}"),
        Some(&alice.access_token),
        &json!({}),
    )
    .await;
    let updated = watcher.until_event("comments:v1", "comment_updated").await;
    assert_eq!(updated[4]["body"], "fixed");
    let deleted = watcher.until_event("comments:v1", "comment_deleted").await;
    assert_eq!(
        (deleted[4]["seq"].as_i64(), deleted[4]["deleted"].as_bool()),
        (Some(1), Some(true))
    );
    assert!(deleted[4]["body"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejoining_with_since_seq_recovers_exactly_what_was_missed() {
    let app = app().await;
    let alice = app.register("alice").await;
    for i in 1..=5 {
        app.post_comment(&alice.access_token, "v1", &format!("c{i}"))
            .await;
    }
    let mut ws = socket(&app, None).await;
    let reply = ws.join("comments:v1", json!({"since_seq": 2})).await;
    let seqs: Vec<i64> = reply[4]["response"]["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![3, 4, 5]);
    assert_eq!(reply[4]["response"]["recovered"], true);
    let mut ws2 = socket(&app, None).await;
    let reply = ws2.join("comments:v1", json!({"since_seq": 5})).await;
    assert_eq!(reply[4]["response"]["comments"], json!([]));
    let bad = ws2.join("comments:v2", json!({"since_seq": "abc"})).await;
    assert_eq!(bad[4]["response"]["reason"], "invalid payload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_old_since_seq_says_so_and_sends_the_latest_page() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let alice = app.register("alice").await;
    for i in 1..=60 {
        app.post_comment(&alice.access_token, "v1", &format!("c{i}"))
            .await;
    }
    // The default recovery bound is 1000 comments; a join from seq 0 of a 60-comment video is
    // within it, so narrow the check to the shape: recovered=true and all 60.
    let mut ws = socket(&app, None).await;
    let reply = ws.join("comments:v1", json!({"since_seq": 0})).await;
    assert_eq!(
        reply[4]["response"]["comments"].as_array().unwrap().len(),
        60
    );
    // Without since_seq: the latest page of 50.
    let reply = ws.join("comments:v2", json!({})).await;
    assert_eq!(reply[4]["response"]["comments"], json!([]));
    let reply = ws.join("comments:v1", json!({})).await;
    let comments = reply[4]["response"]["comments"].as_array().unwrap();
    assert_eq!(
        (comments.len(), comments[0]["seq"].as_i64()),
        (50, Some(11))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_rules_for_topics_refs_leave_and_duplicate_joins() {
    let app = app().await;
    let mut ws = socket(&app, None).await;
    let reply = ws.join("room:lobby", json!({})).await;
    assert_eq!(reply[0], Value::Null, "unmatched topic has a null join_ref");
    assert_eq!(
        reply[4],
        json!({"status": "error", "response": {"reason": "unmatched topic"}})
    );
    ws.send(
        Some("9"),
        "10",
        "comments:v1",
        "new_comment",
        json!({"body": "x"}),
    )
    .await;
    let reply = ws.reply_to("10").await;
    assert_eq!(
        (reply[0].clone(), reply[4]["response"]["reason"].clone()),
        (Value::Null, json!("unmatched topic"))
    );
    let reply = ws.join("comments:bad id!", json!({})).await;
    assert_eq!(reply[4]["response"]["reason"], "invalid video id");

    let first = ws.join("comments:v1", json!({})).await;
    let old_ref = first[0].as_str().unwrap().to_owned();
    ws.frame().await; // presence_state
    // Duplicate join: the new join is ok, then phx_close with the OLD join_ref.
    let second = ws.join("comments:v1", json!({})).await;
    assert_eq!(second[4]["status"], "ok");
    let new_ref = second[0].as_str().unwrap().to_owned();
    let close = ws.until_event("comments:v1", "phx_close").await;
    assert_eq!(
        close,
        json!([old_ref, old_ref, "comments:v1", "phx_close", {}])
    );
    // A message with the stale join_ref is dropped silently: the next reply is the heartbeat's.
    ws.send(
        Some(&old_ref),
        "40",
        "comments:v1",
        "new_comment",
        json!({"body": "stale"}),
    )
    .await;
    ws.send(None, "41", "phoenix", "heartbeat", json!({})).await;
    assert_eq!(ws.until_event("phoenix", "phx_reply").await[1], json!("41"));
    // Unknown events get an error reply.
    ws.send(Some(&new_ref), "42", "comments:v1", "shout", json!({}))
        .await;
    assert_eq!(
        ws.reply_to("42").await[4]["response"]["reason"],
        "unknown event"
    );
    // Leave: ok, then phx_close with the join_ref; afterwards the topic is unmatched.
    ws.send(Some(&new_ref), "43", "comments:v1", "phx_leave", json!({}))
        .await;
    assert_eq!(ws.reply_to("43").await[4]["status"], "ok");
    let close = ws.until_event("comments:v1", "phx_close").await;
    assert_eq!(close[0], json!(new_ref));
    ws.send(
        Some(&new_ref),
        "44",
        "comments:v1",
        "new_comment",
        json!({"body": "x"}),
    )
    .await;
    assert_eq!(
        ws.reply_to("44").await[4]["response"]["reason"],
        "unmatched topic"
    );
    // Leaving a topic never joined is a plain ok.
    ws.send(None, "45", "comments:zzz", "phx_leave", json!({}))
        .await;
    assert_eq!(ws.reply_to("45").await[4]["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_needs_a_signed_in_viewer_and_a_valid_body() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[
            ("BANTER_RATE_COMMENT_BURST", "2"),
            ("BANTER_RATE_COMMENT_PER_MINUTE", "60"),
        ],
    )
    .await;
    let mut anon = socket(&app, None).await;
    let join = anon.join("comments:v1", json!({})).await;
    let jr = join[0].as_str().unwrap().to_owned();
    anon.send(
        Some(&jr),
        "50",
        "comments:v1",
        "new_comment",
        json!({"body": "hi"}),
    )
    .await;
    assert_eq!(
        anon.reply_to("50").await[4]["response"]["reason"],
        "unauthorized"
    );

    let alice = app.register("alice").await;
    let mut ws = socket(&app, Some(&alice.access_token)).await;
    let join = ws.join("comments:v1", json!({})).await;
    let jr = join[0].as_str().unwrap().to_owned();
    let cases = [
        (json!({"body": ""}), "comment_empty"),
        (json!({"body": "x".repeat(2001)}), "comment_too_long"),
        (json!({"body": 42}), "invalid payload"),
        (json!(["body"]), "invalid payload"),
    ];
    for (i, (payload, reason)) in cases.into_iter().enumerate() {
        let r = format!("6{i}");
        ws.send(Some(&jr), &r, "comments:v1", "new_comment", payload)
            .await;
        assert_eq!(ws.reply_to(&r).await[4]["response"]["reason"], reason);
    }
    for r in ["70", "71"] {
        ws.send(
            Some(&jr),
            r,
            "comments:v1",
            "new_comment",
            json!({"body": "<script>x</script>"}),
        )
        .await;
        let reply = ws.reply_to(r).await;
        assert_eq!(
            reply[4]["response"]["comment"]["body"],
            "<script>x</script>"
        );
    }
    ws.send(
        Some(&jr),
        "72",
        "comments:v1",
        "new_comment",
        json!({"body": "third"}),
    )
    .await;
    assert_eq!(
        ws.reply_to("72").await[4]["response"]["reason"],
        "rate_limited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_lists_signed_in_viewers_and_counts_everyone() {
    let app = app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut a = socket(&app, Some(&alice.access_token)).await;
    let mut b = socket(&app, Some(&bob.access_token)).await;
    let mut anon = socket(&app, None).await;
    a.join("comments:v1", json!({})).await;
    let state = a.until_event("comments:v1", "presence_state").await;
    assert!(state[4].get(&alice.user_id).is_some());
    b.join("comments:v1", json!({})).await;
    let state = b.until_event("comments:v1", "presence_state").await;
    assert!(
        state[4].get(&alice.user_id).is_some() && state[4].get(&bob.user_id).is_some(),
        "{state}"
    );
    // Alice first sees her own join's diff, then bob's.
    let mut diff = a.until_event("comments:v1", "presence_diff").await;
    while diff[4]["joins"].get(&bob.user_id).is_none() {
        diff = a.until_event("comments:v1", "presence_diff").await;
    }
    assert_eq!(diff[4]["leaves"], json!({}));
    let reply = anon.join("comments:v1", json!({})).await;
    assert_eq!(reply[4]["response"]["viewers"], 3);
    // "N watching" converges to 3 (anonymous included), then drops when bob leaves.
    let mut count = 0;
    while count != 3 {
        count = a.until_event("comments:v1", "viewer_count").await[4]["count"]
            .as_i64()
            .unwrap();
    }
    drop(b);
    let diff = a.until_event("comments:v1", "presence_diff").await;
    assert!(diff[4]["leaves"].get(&bob.user_id).is_some(), "{diff}");
    while count != 2 {
        count = a.until_event("comments:v1", "viewer_count").await[4]["count"]
            .as_i64()
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn above_the_member_limit_only_the_count_is_sent() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[("BANTER_PRESENCE_MEMBER_LIMIT", "1")],
    )
    .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut a = socket(&app, Some(&alice.access_token)).await;
    a.join("comments:v1", json!({})).await;
    let mut b = socket(&app, Some(&bob.access_token)).await;
    b.join("comments:v1", json!({})).await;
    let state = b.until_event("comments:v1", "presence_state").await;
    assert_eq!(state[4], json!({}));
    let count = b.until_event("comments:v1", "viewer_count").await;
    assert_eq!(count[4]["count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_the_offending_socket() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[("BANTER_WS_MAX_FRAME_BYTES", "4096")],
    )
    .await;
    let mut bystander = socket(&app, None).await;
    bystander.join("comments:v1", json!({})).await;
    let cases: Vec<(Message, u16)> = vec![
        (Message::text("not json"), 1002),
        (Message::text(r#"["1","1","comments:v1","phx_join"]"#), 1002),
        (Message::text(r#"{"topic":"phoenix"}"#), 1002),
        (Message::binary(vec![7u8, 1, 2, 3]), 1002),
        (Message::binary(vec![0u8, 200, 1, 1, 1]), 1002),
        (
            Message::text(format!(
                "[null,\"1\",\"phoenix\",\"heartbeat\",{{\"x\":\"{}\"}}]",
                "y".repeat(10_000)
            )),
            1009,
        ),
    ];
    for (frame, code) in cases {
        let mut ws = socket(&app, None).await;
        ws.send_raw(frame).await;
        let closed = ws.closed().await.expect("a close frame with a code");
        assert_eq!(closed.0, code, "{closed:?}");
        assert!(!closed.1.is_empty(), "the close has a reason");
    }
    bystander
        .send(None, "99", "phoenix", "heartbeat", json!({}))
        .await;
    assert_eq!(bystander.reply_to("99").await[4]["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_answered_then_closed() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[("BANTER_WS_MAX_MESSAGES_PER_SECOND", "5")],
    )
    .await;
    let mut ws = socket(&app, None).await;
    for i in 0..30 {
        ws.send(None, &format!("{i}"), "phoenix", "heartbeat", json!({}))
            .await;
    }
    let mut too_many = false;
    let closed = loop {
        match ws.recv().await {
            Received::Frame(f) => too_many |= f[4]["response"]["reason"] == "too many messages",
            Received::Closed(c) => break c,
        }
    };
    assert!(too_many, "messages over the limit get an error reply first");
    assert_eq!(closed.map(|c| c.0), Some(1008));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_on_channels_and_idle_sockets() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[
            ("BANTER_WS_MAX_CHANNELS_PER_SOCKET", "2"),
            ("BANTER_WS_IDLE_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let mut ws = socket(&app, None).await;
    assert_eq!(ws.join("comments:a", json!({})).await[4]["status"], "ok");
    assert_eq!(ws.join("comments:b", json!({})).await[4]["status"], "ok");
    let third = ws.join("comments:c", json!({})).await;
    assert_eq!(third[4]["response"]["reason"], "too many channels joined");
    // Silent for longer than the idle timeout: closed by the server.
    let closed = ws.closed().await;
    assert_eq!(closed.map(|c| c.0), Some(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_checks_vsn_token_origin_and_the_per_ip_limit() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[("BANTER_WS_MAX_CONNECTIONS_PER_IP", "3")],
    )
    .await;
    let alice = app.register("alice").await;
    assert_eq!(
        WsClient::connect(&app.address, "vsn=123.1.1").await.err(),
        Some(403)
    );
    assert_eq!(
        WsClient::connect(&app.address, "vsn=2.0.0&token=garbage")
            .await
            .err(),
        Some(403)
    );
    let cross_site = WsClient::connect_with(
        &app.address,
        "vsn=2.0.0",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(cross_site.err(), Some(403));
    // V1 serializer (and a missing vsn means V1).
    let mut v1 = WsClient::connect(&app.address, "").await.unwrap();
    v1.send_raw(Message::text(
        r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"7"}"#,
    ))
    .await;
    match v1.recv().await {
        Received::Frame(f) => assert_eq!(
            f,
            json!({"topic": "phoenix", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": "7"})
        ),
        other => panic!("{other:?}"),
    }
    // The authToken subprotocol: the server selects "phoenix".
    let encoded = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &alice.access_token,
    );
    let protocols = format!("phoenix, base64url.bearer.phx.{encoded}");
    let response = WsClient::connect_response(
        &app.address,
        "vsn=2.0.0",
        &[("sec-websocket-protocol", &protocols)],
    )
    .await;
    assert_eq!(response.headers()["sec-websocket-protocol"], "phoenix");
    // Three sockets are open (v1 and the subprotocol one may still be closing): the limit is 3.
    let mut open = Vec::new();
    let mut refused = false;
    for _ in 0..4 {
        match WsClient::connect(&app.address, "vsn=2.0.0").await {
            Ok(ws) => open.push(ws),
            Err(status) => {
                assert_eq!(status, 429);
                refused = true;
            }
        }
    }
    assert!(refused, "the per-IP limit refused a connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivated_users_and_private_videos_are_refused() {
    let app = app().await;
    let owner = app.register("owner").await;
    let stranger = app.register("stranger").await;
    app.post_json(
        "/api/videos",
        Some(&owner.access_token),
        &json!({"id": "secret", "visibility": "private"}),
    )
    .await;
    let mut anon = socket(&app, None).await;
    assert_eq!(
        anon.join("comments:secret", json!({})).await[4]["response"]["reason"],
        "unauthorized"
    );
    let mut ws = socket(&app, Some(&stranger.access_token)).await;
    assert_eq!(
        ws.join("comments:secret", json!({})).await[4]["response"]["reason"],
        "private video"
    );
    let mut own = socket(&app, Some(&owner.access_token)).await;
    assert_eq!(
        own.join("comments:secret", json!({})).await[4]["status"],
        "ok"
    );

    app.set_role("owner", banter_core::Role::Admin).await;
    app.send_json(
        Method::PATCH,
        &format!("/api/admin/users/{}", stranger.user_id),
        Some(&owner.access_token),
        &json!({"is_active": false}),
    )
    .await;
    let refused = WsClient::connect(
        &app.address,
        &format!("vsn=2.0.0&token={}", stranger.access_token),
    )
    .await;
    assert_eq!(refused.err(), Some(403));
    // The socket opened before the deactivation is closed, telling the client to sign in.
    let (code, reason) = ws.closed().await.expect("a close frame");
    assert_eq!(code, 4001, "{reason}");
    assert!(reason.starts_with("signed out"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_node_closes_sockets_with_a_restart_code() {
    let app = app().await;
    let mut ws = socket(&app, None).await;
    ws.join("comments:v1", json!({})).await;
    let started = std::time::Instant::now();
    let stop = app.stop();
    let (closed, ()) = tokio::join!(ws.closed(), stop);
    assert_eq!(closed.map(|c| c.0), Some(1012));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "open sockets do not hold the shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_push_is_decoded_and_answered() {
    let app = app().await;
    let mut ws = socket(&app, None).await;
    let join = ws.join("comments:v1", json!({})).await;
    let jr = join[0].as_str().unwrap().to_owned();
    // kind 0 push: join_ref, ref "77", topic, event "new_comment", payload bytes.
    let mut frame = vec![0u8, jr.len() as u8, 2, 11, 11];
    frame.extend_from_slice(jr.as_bytes());
    frame.extend_from_slice(b"77comments:v1new_comment");
    frame.extend_from_slice(&[1, 2, 3]);
    ws.send_raw(Message::binary(frame)).await;
    let reply = ws.reply_to("77").await;
    assert_eq!(reply[4]["response"]["reason"], "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_poster_keeps_reading_and_is_not_taken_for_a_slow_consumer() {
    // An outbox of 64, above the 40 posts in flight: under a loaded suite the channel can stall
    // on a database read while all 40 commit, then deliver them in one go, and an outbox
    // smaller than that burst (8 and 16 were tried) is then rightly a slow consumer.
    let app =
        TestApp::spawn_with(TestBackend::Sqlite, &[("BANTER_WS_OUTBOX_CAPACITY", "64")]).await;
    let alice = app.register("alice").await;
    let mut ws = socket(&app, Some(&alice.access_token)).await;
    let join = ws.join("comments:v1", json!({})).await;
    let jr = join[0].as_str().unwrap().to_owned();
    // 40 posts without waiting: their 40 broadcasts come back to this same socket while it is
    // still sending.
    for i in 0..40 {
        ws.send(
            Some(&jr),
            &format!("p{i}"),
            "comments:v1",
            "new_comment",
            json!({"body": format!("c{i}")}),
        )
        .await;
    }
    // The broadcasts queue up together on the server and go out in as few writes as the
    // socket allows: the client must still read 40 separate messages, in `seq` order.
    let (mut replies, mut broadcasts) = (0, Vec::new());
    while replies < 40 || broadcasts.len() < 40 {
        match ws.recv().await {
            Received::Frame(f) if f[3] == "phx_reply" => {
                assert_eq!(f[4]["status"], "ok", "{f}");
                replies += 1;
            }
            Received::Frame(f) if f[3] == "comment_created" => {
                broadcasts.push(f[4]["seq"].as_i64().unwrap())
            }
            Received::Frame(_) => {}
            Received::Closed(c) => {
                panic!("closed after {replies} replies and {broadcasts:?} broadcasts: {c:?}")
            }
        }
    }
    assert_eq!(broadcasts, (1..=40).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_closed_and_the_rest_of_the_topic_is_unaffected() {
    let app =
        TestApp::spawn_with(TestBackend::Sqlite, &[("BANTER_WS_OUTBOX_CAPACITY", "64")]).await;
    let alice = app.register("alice").await;
    let mut slow = socket(&app, None).await;
    slow.join("comments:v1", json!({})).await;
    let mut healthy = socket(&app, None).await;
    healthy.join("comments:v1", json!({})).await;
    // ~8 KB frames (12 MB in all): the slow socket (which reads nothing from now on) fills the kernel's
    // buffers, then its outbox, and is closed; the healthy one keeps receiving in order.
    let body = "😀".repeat(2000);
    let posts = 1500;
    let poster = async {
        for _ in 0..posts {
            let res = app.post_comment(&alice.access_token, "v1", &body).await;
            assert_eq!(res.status(), StatusCode::CREATED);
        }
    };
    let reader = async {
        let mut expected = 1;
        while expected <= posts {
            let frame = healthy.until_event("comments:v1", "comment_created").await;
            assert_eq!(frame[4]["seq"], expected, "in order, no gap");
            expected += 1;
        }
    };
    tokio::join!(poster, reader);
    // Now read the slow socket: its stream ends with 1008 "slow consumer".
    let closed = loop {
        if let Received::Closed(c) = slow.recv().await {
            break c;
        }
    };
    assert_eq!(closed, Some((1008, "slow consumer".to_owned())));
}

fn reads(app: &TestApp) -> u64 {
    let s = app.store.replica().stats();
    s.primary + s.replica
}

/// A burst of joins of a public video reads its visibility once, not once per viewer; a video
/// made private refuses new anonymous joins once the short cache has expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_of_a_public_video_read_its_visibility_once() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let owner = app.register("owner").await;
    let res = app
        .post_json(
            "/api/videos",
            Some(&owner.access_token),
            &json!({"id": "burst"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let mut first = socket(&app, None).await;
    assert_eq!(
        first.join("comments:burst", json!({})).await[4]["status"],
        "ok"
    );
    let before = reads(&app);
    let videos_before = app.store.primary().video_reads();
    let mut others = Vec::new();
    for _ in 0..5 {
        let mut ws = socket(&app, None).await;
        assert_eq!(
            ws.join("comments:burst", json!({})).await[4]["status"],
            "ok"
        );
        others.push(ws);
    }
    assert_eq!(reads(&app) - before, 0, "five more joins, no database read");
    assert_eq!(
        app.store.primary().video_reads() - videos_before,
        0,
        "five more joins, no visibility read"
    );

    let res = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/videos/burst",
            Some(&owner.access_token),
            &json!({"visibility": "private"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let mut late = socket(&app, None).await;
    let refused = late.join("comments:burst", json!({})).await;
    assert_eq!(refused[4]["status"], "error", "{refused}");
}

/// Posts over the socket to a public video whose cache entry expired read its visibility once
/// (and remember it), not once per post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_to_a_public_video_read_its_visibility_once_not_once_each() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[("BANTER_WS_PUBLIC_VIDEO_CACHE_MS", "1000")],
    )
    .await;
    let poster = app.register("poster").await;
    let mut ws = socket(&app, Some(&poster.access_token)).await;
    let joined = ws.join("comments:hot", json!({})).await;
    assert_eq!(joined[4]["status"], "ok");
    let join_ref = joined[0].as_str().unwrap().to_owned();
    let post = async |ws: &mut WsClient, n: usize| {
        let r = format!("p{n}");
        ws.send(
            Some(&join_ref),
            &r,
            "comments:hot",
            "new_comment",
            json!({"body": format!("post {n}")}),
        )
        .await;
        assert_eq!(ws.reply_to(&r).await[4]["status"], "ok");
    };
    // A first post reads the chat's rules (cached 5 s, and read with the video's row).
    post(&mut ws, 0).await;
    // The join remembered the video as public; let that expire.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let before = app.store.primary().video_reads();
    for n in 1..=5 {
        post(&mut ws, n).await;
    }
    assert_eq!(
        app.store.primary().video_reads() - before,
        1,
        "five posts, one visibility read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_from_the_client_is_answered_with_its_code() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let app = app().await;
    let mut ws = socket(&app, None).await;
    ws.send_raw(tokio_tungstenite::tungstenite::Message::Close(Some(
        CloseFrame {
            code: CloseCode::Away,
            reason: "navigating away".into(),
        },
    )))
    .await;
    assert_eq!(
        ws.closed().await,
        Some((1001, "navigating away".to_owned()))
    );
    // Without a code the answer is 1000.
    let mut ws = socket(&app, None).await;
    ws.send_raw(tokio_tungstenite::tungstenite::Message::Close(None))
        .await;
    assert_eq!(ws.closed().await.map(|(code, _)| code), Some(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_payload_that_is_not_an_object_is_refused() {
    let app = app().await;
    let mut ws = socket(&app, None).await;
    for payload in [json!([]), json!("since"), json!(5), json!(null)] {
        let reply = ws.join("comments:v1", payload.clone()).await;
        assert_eq!(reply[4]["status"], "error", "{payload}");
        assert_eq!(
            reply[4]["response"]["reason"], "invalid payload",
            "{payload}"
        );
    }
    assert_eq!(ws.join("comments:v1", json!({})).await[4]["status"], "ok");
}
