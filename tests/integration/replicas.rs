//! Read routing against a real streaming replica: reads go to the replica, writes to the
//! primary, a lagging replica is skipped and a stopped one falls back to the primary without
//! an error reaching the client.

use std::time::Duration;

use banter_tests::{PgCluster, TestApp, TestBackend};
use reqwest::StatusCode;
use serde_json::Value;

async fn comment_count(app: &TestApp, video: &str) -> usize {
    let res = app
        .get(&format!("/api/videos/{video}/comments"), None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["comments"].as_array().unwrap().len()
}

/// Waits until the replica is healthy and has replayed enough (the schema, the test's data)
/// to answer a listing of `video` with `expected` comments.
async fn wait_for_replica_serving(app: &TestApp, video: &str, expected: usize) {
    // Up to 30 s: under the whole suite's load a fresh database's replay can take a while.
    for _ in 0..1200 {
        let before = app.store.replica().stats();
        let count = comment_count(app, video).await;
        let after = app.store.replica().stats();
        if after.replica > before.replica
            && after.fallbacks == before.fallbacks
            && count == expected
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the replica never served the expected listing");
}

async fn wait_for_healthy_replica(app: &TestApp) {
    wait_for_replica_serving(app, "probe", 0).await;
}

/// Spawns an app on a dedicated cluster, reading from its replica.
async fn app_on(cluster: &PgCluster, extra: &[(&str, &str)]) -> TestApp {
    let db = cluster.create_database().await;
    let mut env: std::collections::HashMap<String, String> = [
        ("BANTER_HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("BANTER_JWT_SECRET", banter_tests::JWT_SECRET.to_owned()),
        ("BANTER_DATABASE_URL", cluster.primary_url(&db)),
        ("BANTER_DATABASE_REPLICA_URLS", cluster.replica_url(&db)),
        ("BANTER_RATE_COMMENT_BURST", "1000".to_owned()),
        ("BANTER_RATE_COMMENT_PER_MINUTE", "1000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    TestApp::spawn_env(env, None, Some(db)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_read_from_the_replica_and_writes_go_to_the_primary() {
    let cluster = PgCluster::start();
    // A lag bound far above the pause below, so the paused replica stays in use.
    let app = app_on(
        &cluster,
        &[("BANTER_DATABASE_MAX_REPLICA_LAG_MS", "600000")],
    )
    .await;
    let db = app.database.clone().unwrap();
    let alice = app.register("alice").await;
    wait_for_healthy_replica(&app).await;
    assert_eq!(
        app.post_comment(&alice.access_token, "v1", "one")
            .await
            .status(),
        StatusCode::CREATED
    );
    wait_for_replica_serving(&app, "v1", 1).await;

    // Freeze the replica: a write now succeeds (it went to the primary, as the replica is
    // read-only) but a listing does not show it (it was read from the replica).
    cluster
        .on_replica(&db, "SELECT pg_wal_replay_pause()")
        .await;
    let before = app.store.replica().stats();
    assert_eq!(
        app.post_comment(&alice.access_token, "v1", "two")
            .await
            .status(),
        StatusCode::CREATED
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        comment_count(&app, "v1").await,
        1,
        "the listing came from the frozen replica"
    );
    let after = app.store.replica().stats();
    assert!(after.replica > before.replica, "{before:?} -> {after:?}");
    assert_eq!(after.fallbacks, before.fallbacks);

    cluster
        .on_replica(&db, "SELECT pg_wal_replay_resume()")
        .await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while comment_count(&app, "v1").await != 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the replica caught up after resuming");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_lagging_past_the_bound_is_skipped() {
    let cluster = PgCluster::start();
    let app = app_on(&cluster, &[("BANTER_DATABASE_MAX_REPLICA_LAG_MS", "500")]).await;
    let db = app.database.clone().unwrap();
    let alice = app.register("alice").await;
    wait_for_healthy_replica(&app).await;
    cluster
        .on_replica(&db, "SELECT pg_wal_replay_pause()")
        .await;
    assert_eq!(
        app.post_comment(&alice.access_token, "v1", "during lag")
            .await
            .status(),
        StatusCode::CREATED
    );
    // Once the lag exceeds 500 ms the checker marks the replica unhealthy and reads go to the
    // primary, which has the comment.
    tokio::time::timeout(Duration::from_secs(15), async {
        while app.store.replica().healthy_replicas() != 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the lagging replica was never skipped");
    assert_eq!(comment_count(&app, "v1").await, 1);
    cluster
        .on_replica(&db, "SELECT pg_wal_replay_resume()")
        .await;
    wait_for_healthy_replica(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_replica_falls_back_to_the_primary_without_errors() {
    let cluster = PgCluster::start();
    let app = app_on(&cluster, &[]).await;
    let alice = app.register("alice").await;
    wait_for_healthy_replica(&app).await;
    assert_eq!(
        app.post_comment(&alice.access_token, "v1", "hello")
            .await
            .status(),
        StatusCode::CREATED
    );
    cluster.stop_replica();
    // Immediately, before any health check notices: the failed replica read is retried on
    // the primary, and the client sees a normal answer, without waiting out the primary's
    // 5 s acquire timeout on the dead replica (a bound far above the 0.5 s replica timeout,
    // so a busy machine does not fail it).
    for _ in 0..5 {
        let started = std::time::Instant::now();
        assert_eq!(comment_count(&app, "v1").await, 1);
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "a read took {:?} with the replica stopped",
            started.elapsed()
        );
    }
    assert!(app.store.replica().stats().primary > 0);
    assert_eq!(
        app.post_comment(&alice.access_token, "v1", "still writable")
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(comment_count(&app, "v1").await, 2);
    cluster.start_replica();
    wait_for_healthy_replica(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_replica_serves_reads_for_a_normal_app() {
    let app = TestApp::spawn(TestBackend::PostgresWithReplica).await;
    wait_for_healthy_replica(&app).await;
    // Reaching here means listings were answered by the replica without a fallback.
    assert!(app.store.replica().stats().replica > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_is_decided_on_the_primary_while_the_replica_lags() {
    let cluster = PgCluster::start();
    let app = app_on(
        &cluster,
        &[("BANTER_DATABASE_MAX_REPLICA_LAG_MS", "600000")],
    )
    .await;
    let db = app.database.clone().unwrap();
    let owner = app.register("owner").await;
    let member = app.register("member").await;
    app.create_video(&owner, "show", "members").await;
    app.set_member(&owner, "show", &member, true).await;
    app.post_comment(&owner.access_token, "show", "hello").await;
    wait_for_healthy_replica(&app).await;
    let listing = |token: Option<String>| {
        let app = &app;
        async move {
            app.get("/api/videos/show/comments", token.as_deref())
                .await
                .status()
        }
    };
    assert_eq!(
        listing(Some(member.access_token.clone())).await,
        StatusCode::OK
    );

    // Freeze the replica, then take the member out and make the video private: the replica
    // still says "member of a members-only video", the primary does not.
    cluster
        .on_replica(&db, "SELECT pg_wal_replay_pause()")
        .await;
    app.set_member(&owner, "show", &member, false).await;
    assert_eq!(
        listing(Some(member.access_token.clone())).await,
        StatusCode::FORBIDDEN
    );
    let res = app
        .get("/api/videos/show", Some(&member.access_token))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(listing(None).await, StatusCode::UNAUTHORIZED);
    // The owner still reads, and the listing itself may come from the frozen replica.
    assert_eq!(
        listing(Some(owner.access_token.clone())).await,
        StatusCode::OK
    );
    cluster
        .on_replica(&db, "SELECT pg_wal_replay_resume()")
        .await;
}
