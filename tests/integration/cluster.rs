//! Several `banter` nodes sharing one PostgreSQL database and one Redis: comments cross nodes
//! through the Redis bus in `seq` order, and a Redis restart loses no comment for any viewer.

use std::collections::HashMap;

use banter_tests::{JWT_SECRET, PgCluster, RedisCluster, RedisServer, TestApp, WsClient};
use reqwest::StatusCode;
use serde_json::json;

/// How a node is pointed at a bus: one Redis or a Redis Cluster.
pub(crate) trait BusSetting {
    fn bus_env(&self) -> (&'static str, String);
}

impl BusSetting for RedisServer {
    fn bus_env(&self) -> (&'static str, String) {
        ("BANTER_REDIS_URL", self.url())
    }
}

impl BusSetting for RedisCluster {
    fn bus_env(&self) -> (&'static str, String) {
        ("BANTER_REDIS_CLUSTER_URLS", self.urls())
    }
}

/// The settings of a node on the shared database and `redis`, with `extra` on top.
fn node_env(
    db: &str,
    redis: &impl BusSetting,
    prefix: &str,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("BANTER_HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("BANTER_JWT_SECRET", JWT_SECRET.to_owned()),
        ("BANTER_DATABASE_URL", PgCluster::shared().primary_url(db)),
        redis.bus_env(),
        ("BANTER_REDIS_PREFIX", prefix.to_owned()),
        ("BANTER_RATE_COMMENT_PER_MINUTE", "100000".to_owned()),
        ("BANTER_RATE_COMMENT_BURST", "100000".to_owned()),
        (
            "BANTER_WS_MAX_COMMENTS_PER_SECOND_PER_VIEWER",
            "0".to_owned(),
        ),
        ("BANTER_SHUTDOWN_TIMEOUT_SECS", "1".to_owned()),
        ("BANTER_DRAIN_WINDOW_SECS", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

pub(crate) async fn node(
    db: &str,
    redis: &impl BusSetting,
    prefix: &str,
    role: &str,
    repair_secs: &str,
) -> TestApp {
    node_with(db, redis, prefix, role, repair_secs, &[]).await
}

pub(crate) async fn node_with(
    db: &str,
    redis: &impl BusSetting,
    prefix: &str,
    role: &str,
    repair_secs: &str,
    extra: &[(&str, &str)],
) -> TestApp {
    let mut settings = vec![
        ("BANTER_ROLE", role),
        ("BANTER_WS_REPAIR_INTERVAL_SECS", repair_secs),
    ];
    settings.extend_from_slice(extra);
    let env = node_env(db, redis, prefix, &settings);
    TestApp::spawn_env(env, None, Some(db.to_owned())).await
}

pub(crate) async fn watch(app: &TestApp) -> WsClient {
    let mut ws = WsClient::connect(&app.address, "vsn=2.0.0")
        .await
        .expect("connect");
    assert_eq!(ws.join("comments:v1", json!({})).await[4]["status"], "ok");
    ws
}

pub(crate) async fn seqs(ws: &mut WsClient, n: usize) -> Vec<i64> {
    let mut seen = Vec::with_capacity(n);
    while seen.len() < n {
        let frame = ws.until_event("comments:v1", "comment_created").await;
        seen.push(frame[4]["seq"].as_i64().unwrap());
    }
    seen
}

pub(crate) async fn wait_for_count(ws: &mut WsClient, count: i64) {
    while ws.until_event("comments:v1", "viewer_count").await[4]["count"] != count {}
}

/// Waits for a presence_diff listing `user` under `side` (`joins` or `leaves`).
async fn wait_for_diff(ws: &mut WsClient, side: &str, user: &str) {
    while ws.until_event("comments:v1", "presence_diff").await[4][side]
        .get(user)
        .is_none()
    {}
}

pub(crate) async fn wait_ready(app: &TestApp) {
    for _ in 0..100 {
        if app.get("/readyz", None).await.status() == StatusCode::OK {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("node never became ready");
}

/// A fresh database and prefix on `redis`: an `api` node and a `realtime` node, periodic repair
/// off (an hour), both ready.
async fn api_and_realtime(redis: &RedisServer) -> (TestApp, TestApp) {
    let db = PgCluster::shared().create_database().await;
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let api = node(&db, redis, &prefix, "api", "3600").await;
    let rt = node(&db, redis, &prefix, "realtime", "3600").await;
    for n in [&api, &rt] {
        wait_ready(n).await;
    }
    (api, rt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_posted_on_an_api_node_reaches_sockets_on_two_realtime_nodes_in_order() {
    let db = PgCluster::shared().create_database().await;
    let redis = RedisServer::start();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    // Repair off (an hour): only the bus can deliver within this test.
    let api = node(&db, &redis, &prefix, "api", "3600").await;
    let rt1 = node(&db, &redis, &prefix, "realtime", "3600").await;
    let rt2 = node(&db, &redis, &prefix, "realtime", "3600").await;
    for n in [&api, &rt1, &rt2] {
        wait_ready(n).await;
    }
    let alice = api.register("alice").await;
    let mut ws1 = watch(&rt1).await;
    let mut ws2 = watch(&rt2).await;
    // Let the nodes' SUBSCRIBE reach Redis.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for i in 0..10 {
        assert_eq!(
            api.post_comment(&alice.access_token, "v1", &format!("c{i}"))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let expected: Vec<i64> = (1..=10).collect();
    assert_eq!(seqs(&mut ws1, 10).await, expected);
    assert_eq!(seqs(&mut ws2, 10).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_two_nodes_give_every_viewer_the_same_sequence() {
    let db = PgCluster::shared().create_database().await;
    let redis = RedisServer::start();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let a = node(&db, &redis, &prefix, "all", "3600").await;
    let b = node(&db, &redis, &prefix, "all", "3600").await;
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let mut watch_a = watch(&a).await;
    let mut watch_b = watch(&b).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let post = |app: &TestApp, token: String, who: &'static str| {
        let client = app.client.clone();
        let url = app.url("/api/videos/v1/comments");
        async move {
            for i in 0..15 {
                let res = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"body": format!("{who} {i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::CREATED);
            }
        }
    };
    tokio::join!(
        post(&a, alice.access_token.clone(), "alice"),
        post(&b, bob.access_token.clone(), "bob")
    );
    let expected: Vec<i64> = (1..=30).collect();
    assert_eq!(seqs(&mut watch_a, 30).await, expected);
    assert_eq!(seqs(&mut watch_b, 30).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_stream_loses_no_comment_for_any_viewer() {
    let db = PgCluster::shared().create_database().await;
    let mut redis = RedisServer::start();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let api = node(&db, &redis, &prefix, "api", "1").await;
    let rt = node(&db, &redis, &prefix, "realtime", "1").await;
    let alice = api.register("alice").await;
    let mut ws = watch(&rt).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for i in 0..5 {
        api.post_comment(&alice.access_token, "v1", &format!("before {i}"))
            .await;
    }
    assert_eq!(seqs(&mut ws, 5).await, (1..=5).collect::<Vec<_>>());
    redis.stop();
    // Commits while Redis is down: the REST API keeps working; the bus messages are lost.
    for i in 0..5 {
        assert_eq!(
            api.post_comment(&alice.access_token, "v1", &format!("during {i}"))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    // The realtime node reports the bus as not ready.
    let mut unready = false;
    for _ in 0..100 {
        if rt.get("/readyz", None).await.status() == StatusCode::SERVICE_UNAVAILABLE {
            unready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(unready, "readiness reflects the lost bus");
    redis.restart();
    wait_ready(&rt).await;
    for i in 0..5 {
        api.post_comment(&alice.access_token, "v1", &format!("after {i}"))
            .await;
    }
    // Every comment exactly once, in order, with no gap.
    assert_eq!(seqs(&mut ws, 10).await, (6..=15).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_counts_merge_across_nodes_and_follow_a_node_that_leaves() {
    let db = PgCluster::shared().create_database().await;
    let redis = RedisServer::start();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let a = node(&db, &redis, &prefix, "all", "5").await;
    let b = node(&db, &redis, &prefix, "all", "5").await;
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let mut on_a = WsClient::connect(
        &a.address,
        &format!("vsn=2.0.0&token={}", alice.access_token),
    )
    .await
    .unwrap();
    assert_eq!(on_a.join("comments:v1", json!({})).await[4]["status"], "ok");
    let mut anon_a = watch(&a).await;
    let mut on_b = WsClient::connect(&b.address, &format!("vsn=2.0.0&token={}", bob.access_token))
        .await
        .unwrap();
    assert_eq!(on_b.join("comments:v1", json!({})).await[4]["status"], "ok");
    // Alice (node A) sees bob (node B) join, and everyone counts 3 on both nodes.
    wait_for_diff(&mut on_a, "joins", &bob.user_id).await;
    wait_for_count(&mut on_a, 3).await;
    wait_for_count(&mut on_b, 3).await;
    // Node B goes away: its viewer leaves alice's list and the count.
    b.stop().await;
    wait_for_diff(&mut on_a, "leaves", &bob.user_id).await;
    wait_for_count(&mut on_a, 2).await;
    anon_a
        .send(None, "1", "phoenix", "heartbeat", json!({}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_vanishes_from_counts_and_lists_after_the_timeout() {
    let cluster = PgCluster::shared();
    let db = cluster.create_database().await;
    let redis = RedisServer::start();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    // Node A (in process) drops silent nodes after 2 s instead of the default 15 s.
    let env = node_env(
        &db,
        &redis,
        &prefix,
        &[("BANTER_PRESENCE_NODE_TIMEOUT_SECS", "2")],
    );
    let a = TestApp::spawn_env(env, None, Some(db.clone())).await;
    let alice = a.register("alice").await;
    let bob = a.register("bob").await;
    // Node B is a real process, so it can be killed with SIGKILL.
    let port = banter_tests::free_port();
    let address = format!("127.0.0.1:{port}");
    let b_env = node_env(
        &db,
        &redis,
        &prefix,
        &[
            ("BANTER_HTTP_ADDR", &address),
            ("BANTER_MIGRATE_ON_START", "false"),
            ("BANTER_LOG_LEVEL", "warn"),
        ],
    );
    let mut b = tokio::process::Command::new(banter_tests::banter_binary())
        .envs(b_env)
        .kill_on_drop(true)
        .spawn()
        .expect("start node B");
    let b_address = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..200 {
        if a.client
            .get(format!("{b_address}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "node B became ready");
    let mut on_b = WsClient::connect(&b_address, &format!("vsn=2.0.0&token={}", bob.access_token))
        .await
        .unwrap();
    assert_eq!(on_b.join("comments:v1", json!({})).await[4]["status"], "ok");
    let mut on_a = WsClient::connect(
        &a.address,
        &format!("vsn=2.0.0&token={}", alice.access_token),
    )
    .await
    .unwrap();
    assert_eq!(on_a.join("comments:v1", json!({})).await[4]["status"], "ok");
    wait_for_count(&mut on_a, 2).await;
    std::process::Command::new("kill")
        .arg("-KILL")
        .arg(b.id().unwrap().to_string())
        .status()
        .unwrap();
    let _ = b.wait().await;
    // No goodbye from B: only the timeout can remove bob.
    wait_for_diff(&mut on_a, "leaves", &bob.user_id).await;
    wait_for_count(&mut on_a, 1).await;
    drop(on_b);
}

/// Subscribers of a Redis channel, asked with redis-cli.
fn numsub(redis: &RedisServer, channel: &str) -> i64 {
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "--raw",
            "PUBSUB",
            "NUMSUB",
            channel,
        ])
        .output()
        .expect("redis-cli (installed with redis-server)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .nth(1)
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_subscribes_to_a_video_only_while_it_has_viewers_of_it() {
    let db = PgCluster::shared().create_database().await;
    let redis = RedisServer::start();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let rt = node(&db, &redis, &prefix, "realtime", "5").await;
    wait_ready(&rt).await;
    let channel = format!("{prefix}:comments:v1");
    let eventually = |want: i64| {
        let (redis, channel) = (&redis, channel.clone());
        async move {
            for _ in 0..100 {
                if numsub(redis, &channel) == want {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!(
                "{channel} never had {want} subscribers (now {})",
                numsub(redis, &channel)
            );
        }
    };
    eventually(0).await;
    let mut ws = watch(&rt).await;
    eventually(1).await;
    assert_eq!(
        numsub(&redis, &format!("{prefix}:comments:other")),
        0,
        "no interest in other videos"
    );
    ws.send(None, "9", "comments:v1", "phx_leave", json!({}))
        .await;
    eventually(0).await;
}

/// A viewer that, like a client behind a load balancer, lands on the other node whenever one
/// closes it with 1012 "rebalancing". Returns the index of the node it ends on.
async fn rebalanced_viewer(
    nodes: [String; 2],
    start: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> (usize, u32) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut at = start;
    let mut moves = 0;
    loop {
        let url = format!(
            "{}/socket/websocket?vsn=2.0.0",
            nodes[at].replace("http://", "ws://")
        );
        let mut ws = match tokio_tungstenite::connect_async(url).await {
            Ok((ws, _)) => ws,
            // A node above its share refuses upgrades with 503: like a balancer that retries
            // on 503, go to the other one.
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) if res.status() == 503 => {
                assert_eq!(res.headers()["retry-after"], "1");
                at = 1 - at;
                continue;
            }
            Err(e) => panic!("connect: {e}"),
        };
        let join = json!(["1", "1", "comments:rb", "phx_join", {}]).to_string();
        ws.send(Message::text(join)).await.unwrap();
        let mut stop = stop.clone();
        let closed = loop {
            tokio::select! {
                frame = ws.next() => match frame {
                    Some(Ok(Message::Close(Some(f)))) => break Some((u16::from(f.code), f.reason.to_string())),
                    Some(Ok(_)) => continue,
                    _ => break None,
                },
                _ = stop.wait_for(|s| *s) => return (at, moves),
            }
        };
        assert_eq!(
            closed,
            Some((1012, "rebalancing".to_owned())),
            "only rebalancing closes"
        );
        at = 1 - at;
        moves += 1;
    }
}

/// Twenty sockets on node A, none on the new node B: A sheds down to the average a few per
/// heartbeat, its viewers land on B, and the two settle within the threshold of each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_node_sheds_sockets_until_the_cluster_is_even() {
    let settle = |enabled: &'static str| async move {
        let db = PgCluster::shared().create_database().await;
        let redis = RedisServer::start();
        let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
        let extra = [
            ("BANTER_REBALANCE_ENABLED", enabled),
            ("BANTER_REBALANCE_THRESHOLD", "0.2"),
            ("BANTER_REBALANCE_MAX_PER_SECOND", "5"),
            ("BANTER_REBALANCE_MIN_EXCESS", "0"),
            ("BANTER_PRESENCE_NODE_TIMEOUT_SECS", "2"),
        ];
        let a = TestApp::spawn_env(
            node_env(&db, &redis, &prefix, &extra),
            None,
            Some(db.clone()),
        )
        .await;
        let b = TestApp::spawn_env(
            node_env(&db, &redis, &prefix, &extra),
            None,
            Some(db.clone()),
        )
        .await;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let nodes = [a.address.clone(), b.address.clone()];
        let viewers: Vec<_> = (0..20)
            .map(|_| tokio::spawn(rebalanced_viewer(nodes.clone(), 0, stop_rx.clone())))
            .collect();
        // Within a heartbeat A knows it holds more than its share and refuses newcomers.
        let mut refused = false;
        for _ in 0..40 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let url = format!(
                "{}/socket/websocket?vsn=2.0.0",
                nodes[0].replace("http://", "ws://")
            );
            match tokio_tungstenite::connect_async(url).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(res)) if res.status() == 503 => {
                    assert_eq!(res.headers()["retry-after"], "1");
                    refused = true;
                    break;
                }
                Ok((mut ws, _)) => {
                    let _ = ws.close(None).await;
                }
                Err(e) => panic!("connect: {e}"),
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(6)).await;
        stop_tx.send_replace(true);
        let mut on_b = 0;
        let mut moves = 0;
        for v in viewers {
            let (at, m) = v.await.unwrap();
            on_b += at;
            moves += m;
        }
        (on_b, moves, refused)
    };
    let (on_b, moves, refused) = settle("true").await;
    assert!(refused, "the overloaded node refuses new sockets with 503");
    assert!(
        (8..=12).contains(&on_b),
        "{on_b} of 20 on the new node after {moves} moves"
    );
    assert!(
        moves <= 16,
        "shedding is gradual, not a stampede: {moves} moves"
    );
    // Off: nobody moves.
    let (on_b, moves, refused) = settle("false").await;
    assert_eq!((on_b, moves, refused), (0, 0, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_taken_away_on_one_node_ends_it_on_the_others_at_once() {
    let redis = RedisServer::start();
    let (a, b) = api_and_realtime(&redis).await;
    let owner = a.register("owner").await;
    let bob = a.register("bob").await;
    let carol = a.register("carol").await;
    a.create_video(&owner, "club", "members").await;
    a.create_video(&owner, "show", "public").await;
    a.set_member(&owner, "club", &bob, true).await;
    let on_b = |token: Option<String>, topic: &'static str| {
        let address = b.address.clone();
        async move {
            let mut ws = WsClient::connect_as(&address, token.as_deref()).await;
            assert_eq!(ws.join(topic, json!({})).await[4]["status"], "ok");
            ws
        }
    };
    let mut bob_ws = on_b(Some(bob.access_token.clone()), "comments:club").await;
    let mut carol_ws = on_b(Some(carol.access_token.clone()), "comments:show").await;
    // B has now seen `show` as public, and may cache that.
    let mut anon_ws = on_b(None, "comments:show").await;
    let within = std::time::Duration::from_secs(2);

    // A membership removed through node A closes the topic on node B.
    a.set_member(&owner, "club", &bob, false).await;
    let closed = tokio::time::timeout(within, bob_ws.until_event("comments:club", "phx_close"))
        .await
        .expect("bob lost the topic on the other node within 2 s");
    assert_eq!(closed[4]["reason"], "private video");

    // A video made private through A: B forgets it was public and closes it to the anonymous.
    let res = a
        .send_json(
            reqwest::Method::PATCH,
            "/api/videos/show",
            Some(&owner.access_token),
            &json!({"visibility": "members"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let closed = tokio::time::timeout(within, anon_ws.until_event("comments:show", "phx_close"))
        .await
        .expect("the anonymous viewer lost the topic within 2 s");
    assert_eq!(closed[4]["reason"], "unauthorized");
    let closed = tokio::time::timeout(within, carol_ws.until_event("comments:show", "phx_close"))
        .await
        .expect("carol lost the topic within 2 s");
    assert_eq!(closed[4]["reason"], "private video");

    // An account deactivated through A closes its socket on B.
    a.set_role("owner", banter_core::Role::Admin).await;
    let res = a
        .send_json(
            reqwest::Method::PATCH,
            &format!("/api/admin/users/{}", bob.user_id),
            Some(&owner.access_token),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (code, reason) = tokio::time::timeout(within, bob_ws.closed())
        .await
        .expect("bob's socket closed within 2 s")
        .expect("with a close frame");
    assert_eq!(code, 4001, "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_changes_missed_during_a_redis_outage_are_caught_up_on_reconnect() {
    let mut redis = RedisServer::start();
    let (a, b) = api_and_realtime(&redis).await;
    let owner = a.register("owner").await;
    let bob = a.register("bob").await;
    a.create_video(&owner, "club", "members").await;
    a.set_member(&owner, "club", &bob, true).await;
    let mut bob_ws = WsClient::connect_as(&b.address, Some(&bob.access_token)).await;
    assert_eq!(
        bob_ws.join("comments:club", json!({})).await[4]["status"],
        "ok"
    );

    // The removal's announcement is lost: Redis is down when it is made.
    redis.stop();
    a.set_member(&owner, "club", &bob, false).await;
    redis.restart();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        bob_ws.until_event_patiently("comments:club", "phx_close"),
    )
    .await
    .expect("bob lost the topic once node B's bus was back");
    assert_eq!(closed[4]["reason"], "private video");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_posted_during_a_redis_outage_arrive_as_soon_as_it_is_back() {
    let mut redis = RedisServer::start();
    // Periodic repair off (an hour): only the catch-up on reconnect can deliver them.
    let (api, rt) = api_and_realtime(&redis).await;
    let alice = api.register("alice").await;
    let mut ws = watch(&rt).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    redis.stop();
    // Committed with no bus message at all (as if each publish was lost with the connection;
    // a REST post's publish may instead be retried once Redis is back).
    let video = banter_core::VideoId::parse("v1").unwrap();
    let author = banter_core::UserId::from_uuid(alice.user_id.parse().unwrap());
    for i in 0..3 {
        let body = banter_core::CommentBody::parse(&format!("during {i}")).unwrap();
        api.store
            .primary()
            .create_comment(&video, author, &body)
            .await
            .unwrap();
    }
    redis.restart();
    let arrived = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let frame = ws
                .until_event_patiently("comments:v1", "comment_created")
                .await;
            seen.push(frame[4]["seq"].as_i64().unwrap());
        }
        seen
    })
    .await
    .expect("the comments made during the outage arrived once Redis was back");
    assert_eq!(arrived, vec![1, 2, 3]);
}

/// What a viewer was told of new comments, in order: `(seq, seq)` for a comment, `(from, to)`
/// for a `comments_skipped` run; read until every seq up to `last` is covered.
async fn told_until(ws: &mut WsClient, last: i64) -> Vec<(String, i64, i64)> {
    let mut told = Vec::new();
    let mut covered = 0;
    while covered < last {
        let frame = ws.frame().await;
        let (from, to) = match frame[3].as_str() {
            Some("comment_created") => (
                frame[4]["seq"].as_i64().unwrap(),
                frame[4]["seq"].as_i64().unwrap(),
            ),
            Some("comments_skipped") => {
                let (from, to) = (
                    frame[4]["from_seq"].as_i64().unwrap(),
                    frame[4]["to_seq"].as_i64().unwrap(),
                );
                assert_eq!(frame[4]["count"].as_i64(), Some(to - from + 1));
                (from, to)
            }
            _ => continue,
        };
        covered = covered.max(to);
        told.push((frame[3].as_str().unwrap().to_owned(), from, to));
    }
    told
}

/// The delivery budget across nodes: a flood posted on the api node reaches viewers on two
/// realtime nodes as the same sample with the same `comments_skipped` markers, which together
/// cover every seq exactly once and in order; the author's own socket gets all of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_budget_two_realtime_nodes_send_the_same_sample_and_markers() {
    let db = PgCluster::shared().create_database().await;
    let redis = RedisServer::start();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let budget = [("BANTER_WS_MAX_COMMENTS_PER_SECOND_PER_VIEWER", "20")];
    let api = node_with(&db, &redis, &prefix, "api", "3600", &budget).await;
    let rt1 = node_with(&db, &redis, &prefix, "realtime", "3600", &budget).await;
    let rt2 = node_with(&db, &redis, &prefix, "realtime", "3600", &budget).await;
    for n in [&api, &rt1, &rt2] {
        wait_ready(n).await;
    }
    let alice = api.register("alice").await;
    let mut ws1 = watch(&rt1).await;
    let mut ws2 = watch(&rt2).await;
    let mut own = WsClient::connect_as(&rt2.address, Some(&alice.access_token)).await;
    assert_eq!(own.join("comments:v1", json!({})).await[4]["status"], "ok");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // 80 comments as fast as REST takes them: far above 20/s.
    const N: i64 = 80;
    for i in 0..N {
        assert_eq!(
            api.post_comment(&alice.access_token, "v1", &format!("c{i}"))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let told1 = told_until(&mut ws1, N).await;
    let told2 = told_until(&mut ws2, N).await;
    assert_eq!(told1, told2, "the same sample and markers on both nodes");
    let mut next = 1;
    let mut sent = 0;
    for (event, from, to) in &told1 {
        assert_eq!(*from, next, "in order, each seq once: {told1:?}");
        next = to + 1;
        sent += usize::from(event == "comment_created");
    }
    assert_eq!(next, N + 1);
    assert!(sent < N as usize, "the flood was sampled: {told1:?}");
    // The author's socket got every one of its comments.
    let mine: Vec<i64> = told_until(&mut own, N)
        .await
        .into_iter()
        .filter(|(event, _, _)| event == "comment_created")
        .map(|(_, seq, _)| seq)
        .collect();
    assert_eq!(mine, (1..=N).collect::<Vec<_>>());
}

/// Posts over `ws` (joined to `topic` with `join_ref`) until the reply's status is `status`,
/// within `limit`; the last reply.
async fn post_until(
    ws: &mut WsClient,
    join_ref: &str,
    topic: &str,
    status: &str,
    limit: std::time::Duration,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let r = ws.next_ref();
        ws.send(
            Some(join_ref),
            &r,
            topic,
            "new_comment",
            json!({"body": "hi"}),
        )
        .await;
        let reply = ws.reply_to(&r).await[4].clone();
        if reply["status"] == status || tokio::time::Instant::now() >= deadline {
            return reply;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_on_the_api_node_holds_on_a_realtime_node_within_a_second() {
    let redis = RedisServer::start();
    let (a, b) = api_and_realtime(&redis).await;
    let owner = a.register("owner").await;
    let troll = a.register("troll").await;
    a.create_video(&owner, "live", "public").await;
    let mut troll_ws = WsClient::connect_as(&b.address, Some(&troll.access_token)).await;
    let reply = troll_ws.join("comments:live", json!({})).await;
    let join_ref = reply[0].as_str().unwrap().to_owned();
    let mut viewer = WsClient::connect_as(&b.address, None).await;
    assert_eq!(
        viewer.join("comments:live", json!({})).await[4]["status"],
        "ok"
    );
    let second = std::time::Duration::from_secs(1);
    // Node B has read (and cached) the rules: nothing stops the troll yet.
    let first = post_until(&mut troll_ws, &join_ref, "comments:live", "ok", second).await;
    assert_eq!(first["status"], "ok", "{first}");

    // A timeout through node A refuses the troll's next socket post on node B.
    let res = a
        .send_json(
            reqwest::Method::PUT,
            &format!("/api/videos/live/bans/{}", troll.user_id),
            Some(&owner.access_token),
            &json!({"duration_seconds": 300, "remove_comments": true}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let refused = post_until(&mut troll_ws, &join_ref, "comments:live", "error", second).await;
    assert_eq!(refused["response"]["reason"], "timed_out", "{refused}");
    assert!(refused["response"]["retry_after"].as_u64().unwrap() > 290);
    // The viewer on B saw the troll's comment go.
    let deleted = tokio::time::timeout(
        second,
        viewer.until_event("comments:live", "comment_deleted"),
    )
    .await
    .expect("the removal reached node B within a second");
    assert_eq!(deleted[4]["id"], first["response"]["comment"]["id"]);

    // Slow mode and a pin set through A reach the viewer on B.
    let res = a
        .send_json(
            reqwest::Method::PATCH,
            "/api/videos/live/chat",
            Some(&owner.access_token),
            &json!({"slow_mode_seconds": 15}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let settings =
        tokio::time::timeout(second, viewer.until_event("comments:live", "chat_settings"))
            .await
            .expect("the settings reached node B within a second");
    assert_eq!(settings[4]["slow_mode_seconds"], 15);
    let res = a
        .post_comment(&owner.access_token, "live", "rules: be kind")
        .await;
    let rules: serde_json::Value = res.json().await.unwrap();
    a.send_json(
        reqwest::Method::PUT,
        "/api/videos/live/pin",
        Some(&owner.access_token),
        &json!({"comment_id": rules["id"]}),
    )
    .await;
    let pinned = tokio::time::timeout(
        second,
        viewer.until_event("comments:live", "comment_pinned"),
    )
    .await
    .expect("the pin reached node B within a second");
    assert_eq!(pinned[4]["comment"]["body"], "rules: be kind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_change_missed_during_a_redis_outage_reaches_viewers_on_reconnect() {
    let mut redis = RedisServer::start();
    let (a, b) = api_and_realtime(&redis).await;
    let owner = a.register("owner").await;
    a.create_video(&owner, "live", "public").await;
    let mut viewer = WsClient::connect_as(&b.address, None).await;
    assert_eq!(
        viewer.join("comments:live", json!({})).await[4]["status"],
        "ok"
    );
    // The change's announcement is lost: Redis is down when it is made.
    redis.stop();
    let res = a
        .send_json(
            reqwest::Method::PATCH,
            "/api/videos/live/chat",
            Some(&owner.access_token),
            &json!({"chat_mode": "members"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    redis.restart();
    let settings = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        viewer.until_event_patiently("comments:live", "chat_settings"),
    )
    .await
    .expect("the settings reached node B once its bus was back");
    assert_eq!(settings[4]["chat_mode"], "members");
}
