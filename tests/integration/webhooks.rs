//! Event hooks against a real receiver the test starts (`banter_tests::WebhookReceiver`): the
//! events of an owner's videos arrive signed (checked here with an independent HMAC), in order
//! per video; a failing receiver is retried with the same event id until it answers, then the
//! next event goes; after `max_attempts` the delivery is dead, listed and replayable; a hung
//! receiver does not hold up another subscriber; a node stopped mid-delivery loses nothing
//! (another node resends with the same id).

use banter_tests::{Answer, HookRequest, Session, TestApp, TestBackend, WebhookReceiver};
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::both_backends;

/// Fast retries, short timeouts, loopback receivers allowed.
const SETTINGS: &[(&str, &str)] = &[
    ("BANTER_WEBHOOK_POLL_MS", "50"),
    ("BANTER_WEBHOOK_BACKOFF_BASE_MS", "50"),
    ("BANTER_WEBHOOK_MAX_ATTEMPTS", "3"),
    ("BANTER_WEBHOOK_TIMEOUT_MS", "1000"),
    ("BANTER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"),
];

async fn subscribe(app: &TestApp, owner: &Session, url: &str, events: Value) -> Value {
    let res = app
        .post_json(
            "/api/webhooks",
            Some(&owner.access_token),
            &json!({"url": url, "events": events}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

async fn post(app: &TestApp, who: &Session, video: &str, body: &str) -> Value {
    let res = app.post_comment(&who.access_token, video, body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

/// Checks the Standard Webhooks signature with the subscription's secret.
fn verify(secret: &str, hook: &HookRequest) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    let signed = format!(
        "{}.{}.{}",
        hook.header("webhook-id"),
        hook.header("webhook-timestamp"),
        hook.body
    );
    mac.update(signed.as_bytes());
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    assert_eq!(hook.header("webhook-signature"), expected, "{}", hook.body);
    let age = time::OffsetDateTime::now_utc().unix_timestamp()
        - hook.header("webhook-timestamp").parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "timestamp {age} s old");
}

fn types_and_bodies(hooks: &[HookRequest]) -> Vec<(String, Value)> {
    hooks
        .iter()
        .map(|h| {
            let event = h.json();
            let body = event["data"]["comment"]["body"].clone();
            (event["type"].as_str().unwrap().to_owned(), body)
        })
        .collect()
}

both_backends!(an_owners_events_arrive_signed_in_order_and_failures_retry_die_and_replay);
async fn an_owners_events_arrive_signed_in_order_and_failures_retry_die_and_replay(app: TestApp) {
    let backend = if app.database.is_some() {
        TestBackend::Postgres
    } else {
        TestBackend::Sqlite
    };
    drop(app);
    let app = TestApp::spawn_with(backend, SETTINGS).await;
    let receiver = WebhookReceiver::start().await;
    let owner = app.register("owner").await;
    let other = app.register("other").await;
    let viewer = app.register("viewer").await;
    app.create_video(&owner, "show", "public").await;
    app.create_video(&other, "elsewhere", "public").await;
    let hook = subscribe(
        &app,
        &owner,
        &receiver.url,
        json!(["comment.*", "moderation.*"]),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    // Comments on the owner's video, one on someone else's (not the owner's to hear).
    let first = post(&app, &viewer, "show", "one").await;
    post(&app, &viewer, "elsewhere", "not yours").await;
    post(&app, &viewer, "show", "two").await;
    let delivered = receiver.until_delivered(2).await;
    for hook in &delivered {
        verify(&secret, hook);
        assert_eq!(hook.header("content-type"), "application/json");
    }
    let event = delivered[0].json();
    assert_eq!(event["type"], "comment.created");
    assert_eq!(event["data"]["comment"]["id"], first["id"]);
    assert_eq!(event["data"]["comment"]["seq"], 1);
    assert_eq!(event["data"]["comment"]["author"]["username"], "viewer");
    assert_eq!(event["id"], delivered[0].header("webhook-id"));

    // An edit, a deletion and a ban.
    let path = format!("/api/comments/{}", first["id"].as_str().unwrap());
    let res = app
        .send_json(
            Method::PATCH,
            &path,
            Some(&viewer.access_token),
            &json!({"body": "one, edited"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.delete(&path, &viewer.access_token).await.status(),
        StatusCode::NO_CONTENT
    );
    let res = app
        .send_json(
            Method::PUT,
            &format!("/api/videos/show/bans/{}", viewer.user_id),
            Some(&owner.access_token),
            &json!({"reason": "spam"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let delivered = receiver.until_delivered(5).await;
    let seen = types_and_bodies(&delivered);
    assert_eq!(
        seen[..4],
        [
            ("comment.created".into(), json!("one")),
            ("comment.created".into(), json!("two")),
            ("comment.updated".into(), json!("one, edited")),
            ("comment.deleted".into(), Value::Null),
        ]
    );
    let ban = delivered[4].json();
    assert_eq!(ban["type"], "moderation.ban");
    assert_eq!(ban["data"]["target_user_id"], viewer.user_id.as_str());
    assert_eq!(ban["data"]["reason"], "spam");
    assert!(delivered.iter().all(|h| !h.body.contains("not yours")));

    // The receiver fails twice, then takes it: the same event id each time, and the next
    // comment waits for it (order per video).
    receiver.script(&[Answer::Status(500), Answer::Status(503)]);
    post(&app, &owner, "show", "three").await;
    post(&app, &owner, "show", "four").await;
    let delivered = receiver.until_delivered(7).await;
    assert_eq!(
        types_and_bodies(&delivered[5..])
            .into_iter()
            .map(|(_, b)| b)
            .collect::<Vec<_>>(),
        [json!("three"), json!("four")]
    );
    let tries: Vec<HookRequest> = receiver
        .received()
        .into_iter()
        .filter(|h| h.header("webhook-id") == delivered[5].header("webhook-id"))
        .collect();
    assert_eq!(
        tries.iter().map(|h| h.answered).collect::<Vec<_>>(),
        [Answer::Status(500), Answer::Status(503), Answer::Ok]
    );

    // Always failing: dead after 3 attempts, listed with its error; the video's next event
    // then goes; a replay delivers the dead one.
    receiver.script(&[Answer::Status(500); 3]);
    post(&app, &owner, "show", "five").await;
    post(&app, &owner, "show", "six").await;
    let delivered = receiver.until_delivered(8).await;
    assert_eq!(types_and_bodies(&delivered[7..])[0].1, json!("six"));
    let dead_path = format!(
        "/api/webhooks/{}/deliveries?state=dead",
        hook["id"].as_str().unwrap()
    );
    let dead: Value = app
        .get(&dead_path, Some(&owner.access_token))
        .await
        .json()
        .await
        .unwrap();
    let dead = &dead["deliveries"][0];
    assert_eq!(dead["attempts"], 3, "{dead}");
    // A cursor that cannot be a delivery id is refused, not read.
    for bad in ["after=-1", "limit=0"] {
        let res = app
            .get(&format!("{dead_path}&{bad}"), Some(&owner.access_token))
            .await;
        banter_tests::assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    }
    assert_eq!(dead["last_error"], "HTTP 500 Internal Server Error");
    assert_eq!(dead["data"]["comment"]["body"], "five");
    // Someone else cannot see or replay it.
    assert_eq!(
        app.get(&dead_path, Some(&other.access_token))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let replay = format!(
        "/api/webhooks/{}/deliveries/{}/replay",
        hook["id"].as_str().unwrap(),
        dead["id"]
    );
    let res = app
        .post_json(&replay, Some(&owner.access_token), &json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let delivered = receiver.until_delivered(9).await;
    assert_eq!(types_and_bodies(&delivered[8..])[0].1, json!("five"));
    assert_eq!(
        delivered[8].header("webhook-id"),
        dead["event_id"].as_str().unwrap()
    );
    let res = app
        .post_json(&replay, Some(&owner.access_token), &json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "only dead ones replay");

    // Deleting the subscription stops deliveries.
    let res = app
        .delete(
            &format!("/api/webhooks/{}", hook["id"].as_str().unwrap()),
            &owner.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    post(&app, &owner, "show", "seven").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        receiver
            .received()
            .iter()
            .filter(|h| h.body.contains("seven"))
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_subscriptions_are_refused_and_a_hung_receiver_does_not_hold_up_another() {
    let app = TestApp::spawn_with(TestBackend::Sqlite, SETTINGS).await;
    let owner = app.register("owner").await;
    for (body, status) in [
        (
            json!({"url": "ftp://example.com/x", "events": ["*"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"url": "http://10.0.0.1/x", "events": ["*"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"url": "https://example.com/x", "events": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"url": "https://example.com/x", "events": ["comment.posted"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"url": "https://example.com/x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let res = app
            .post_json("/api/webhooks", Some(&owner.access_token), &body)
            .await;
        assert_eq!(res.status(), status, "{body}");
    }
    let strict = TestApp::spawn_with(TestBackend::Sqlite, &[]).await;
    let someone = strict.register("someone").await;
    let res = strict
        .post_json(
            "/api/webhooks",
            Some(&someone.access_token),
            &json!({"url": "http://localhost:9/x", "events": ["*"]}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "loopback without the setting"
    );

    // Two owners: one's receiver hangs (every attempt times out), the other's works.
    let hung = WebhookReceiver::start().await;
    hung.set_default(Answer::Hang);
    let fine = WebhookReceiver::start().await;
    let other = app.register("other").await;
    app.create_video(&owner, "a", "public").await;
    app.create_video(&other, "b", "public").await;
    subscribe(&app, &owner, &hung.url, json!(["comment.created"])).await;
    subscribe(&app, &other, &fine.url, json!(["comment.created"])).await;
    for i in 0..5 {
        post(&app, &owner, "a", &format!("a{i}")).await;
        post(&app, &other, "b", &format!("b{i}")).await;
    }
    let delivered = fine.until_delivered(5).await;
    assert_eq!(
        types_and_bodies(&delivered)
            .into_iter()
            .map(|(_, b)| b)
            .collect::<Vec<_>>(),
        [
            json!("b0"),
            json!("b1"),
            json!("b2"),
            json!("b3"),
            json!("b4")
        ]
    );
    assert!(!hung.received().is_empty(), "the hung receiver was tried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_mid_delivery_loses_nothing_and_another_resends_with_the_same_id() {
    let node_a = TestApp::spawn_with(TestBackend::Postgres, SETTINGS).await;
    let receiver = WebhookReceiver::start().await;
    let owner = node_a.register("owner").await;
    node_a.create_video(&owner, "show", "public").await;
    subscribe(&node_a, &owner, &receiver.url, json!(["comment.created"])).await;
    // The first attempt hangs: node A holds the delivery when it stops.
    receiver.script(&[Answer::Hang]);
    post(&node_a, &owner, "show", "in flight").await;
    for _ in 0..200 {
        if !receiver.received().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(receiver.received().len(), 1, "node A is delivering");
    node_a.stop().await;
    // Node B, on the same database, takes over once A's lease runs out.
    let node_b = node_a.spawn_beside(SETTINGS).await;
    post(&node_b, &owner, "show", "after").await;
    let delivered = receiver.until_delivered(2).await;
    let first_id = receiver.received()[0].header("webhook-id").to_owned();
    assert_eq!(
        delivered[0].header("webhook-id"),
        first_id,
        "resent with the same id"
    );
    assert_eq!(
        types_and_bodies(&delivered)
            .into_iter()
            .map(|(_, b)| b)
            .collect::<Vec<_>>(),
        [json!("in flight"), json!("after")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_registrations_and_visibility_changes_are_events() {
    let app = TestApp::spawn_with(TestBackend::Sqlite, SETTINGS).await;
    let receiver = WebhookReceiver::start().await;
    let owner = app.register("owner").await;
    let hook = subscribe(&app, &owner, &receiver.url, json!(["video.*"])).await;
    app.create_video(&owner, "premiere", "public").await;
    let res = app
        .send_json(
            Method::PATCH,
            "/api/videos/premiere",
            Some(&owner.access_token),
            &json!({"visibility": "members"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // A comment is not a video event.
    post(&app, &owner, "premiere", "hello").await;
    let delivered = receiver.until_delivered(2).await;
    let events: Vec<Value> = delivered.iter().map(HookRequest::json).collect();
    assert_eq!(events[0]["type"], "video.created");
    assert_eq!(
        events[0]["data"]["video"]["owner_id"],
        owner.user_id.as_str()
    );
    assert_eq!(events[1]["type"], "video.updated");
    assert_eq!(events[1]["data"]["video"]["visibility"], "members");
    for hook_request in &delivered {
        verify(hook["secret"].as_str().unwrap(), hook_request);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2, "no comment events");
}

/// With no subscription at all nothing goes to the outbox (a comment, an edit, a video): an
/// event nobody can hear is not written; once one exists, events are. (Expansion is held off
/// so the outbox can be counted.)
async fn nothing_is_written_to_the_outbox_while_no_one_subscribes(app: TestApp) {
    let backend = if app.database.is_some() {
        TestBackend::Postgres
    } else {
        TestBackend::Sqlite
    };
    drop(app);
    let app = TestApp::spawn_with(
        backend,
        &[
            ("BANTER_WEBHOOK_POLL_MS", "3600000"),
            ("BANTER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"),
        ],
    )
    .await;
    let owner = app.register("owner").await;
    app.create_video(&owner, "quiet", "public").await;
    post(&app, &owner, "quiet", "nobody listens").await;
    let outbox = || async { app.store.primary().outbox_stats().await.unwrap().events };
    assert_eq!(outbox().await, 0);
    let receiver = WebhookReceiver::start().await;
    subscribe(&app, &owner, &receiver.url, json!(["comment.*"])).await;
    post(&app, &owner, "quiet", "now someone does").await;
    assert_eq!(outbox().await, 1);
}
both_backends!(nothing_is_written_to_the_outbox_while_no_one_subscribes);
