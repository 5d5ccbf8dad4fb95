//! The bus on a Redis Cluster (`BANTER_REDIS_CLUSTER_URLS`, sharded pub/sub): comments cross
//! nodes in order through the shard that owns the video's channel, a master failover mid-stream
//! loses nothing, and a resharding that moves the video's slot keeps viewers receiving.
//! Periodic repair is off (an hour) in each, so only the bus and repair by `seq` on the next
//! event can deliver.

use std::time::{Duration, Instant};

use banter_tests::{NodeInfo, PgCluster, RedisCluster, TestApp, WsClient};
use reqwest::StatusCode;

use crate::cluster::{node, seqs, wait_for_count, wait_ready, watch};

/// A fresh database and prefix on `redis`: an `api` node and two `realtime` nodes, all ready.
async fn nodes(redis: &RedisCluster, realtime: usize) -> (String, TestApp, Vec<TestApp>) {
    let db = PgCluster::shared().create_database().await;
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let api = node(&db, redis, &prefix, "api", "3600").await;
    wait_ready(&api).await;
    let mut rts = Vec::new();
    for _ in 0..realtime {
        let rt = node(&db, redis, &prefix, "realtime", "3600").await;
        wait_ready(&rt).await;
        rts.push(rt);
    }
    (prefix, api, rts)
}

/// Waits until the master on `port` has `at_least` subscribers of the shard channel.
fn wait_for_subscribers(redis: &RedisCluster, port: u16, channel: &str, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while redis.shard_subscribers(port, channel) < at_least {
        assert!(
            Instant::now() < deadline,
            "{channel} never had {at_least} subscriber(s) on the master at {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn post(api: &TestApp, token: &str, bodies: impl IntoIterator<Item = String>) {
    for body in bodies {
        assert_eq!(
            api.post_comment(token, "v1", &body).await.status(),
            StatusCode::CREATED
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_and_counts_cross_nodes_in_order_through_the_videos_shard() {
    let redis = RedisCluster::start();
    let (prefix, api, rts) = nodes(&redis, 2).await;
    let alice = api.register("alice").await;
    let mut ws1 = watch(&rts[0]).await;
    let mut ws2 = watch(&rts[1]).await;
    // Both realtime nodes hold a sharded subscription on the one master that owns the channel.
    let channel = format!("{prefix}:comments:v1");
    let owner = redis.owner(redis.keyslot(&channel));
    wait_for_subscribers(&redis, owner.port, &channel, 2);
    for other in redis.topology().iter().filter(|n| n.port != owner.port) {
        assert_eq!(redis.shard_subscribers(other.port, &channel), 0);
    }
    // Presence crosses too: each node counts both viewers.
    wait_for_count(&mut ws1, 2).await;
    wait_for_count(&mut ws2, 2).await;
    post(&api, &alice.access_token, (0..20).map(|i| format!("c{i}"))).await;
    let expected: Vec<i64> = (1..=20).collect();
    assert_eq!(seqs(&mut ws1, 20).await, expected);
    assert_eq!(seqs(&mut ws2, 20).await, expected);
}

/// One viewer on a realtime node watching `v1`, fed by an api node, with `before` comments
/// already delivered; the video's comment channel, its slot and the master serving it.
struct Watched {
    api: TestApp,
    rt: TestApp,
    token: String,
    ws: WsClient,
    channel: String,
    slot: u16,
    owner: NodeInfo,
}

async fn watched(redis: &RedisCluster, before: i64) -> Watched {
    let (prefix, api, mut rts) = nodes(redis, 1).await;
    let token = api.register("alice").await.access_token;
    let rt = rts.remove(0);
    let mut ws = watch(&rt).await;
    let channel = format!("{prefix}:comments:v1");
    let slot = redis.keyslot(&channel);
    let owner = redis.owner(slot);
    wait_for_subscribers(redis, owner.port, &channel, 1);
    post(&api, &token, (0..before).map(|i| format!("before {i}"))).await;
    assert_eq!(
        seqs(&mut ws, before as usize).await,
        (1..=before).collect::<Vec<_>>()
    );
    Watched {
        api,
        rt,
        token,
        ws,
        channel,
        slot,
        owner,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_failover_mid_stream_loses_no_comment() {
    let mut redis = RedisCluster::start();
    let mut w = watched(&redis, 5).await;
    // The master crashes; comments keep being committed while its replica takes over.
    redis.kill(w.owner.port);
    post(&w.api, &w.token, (0..5).map(|i| format!("during {i}"))).await;
    // A shard failing over does not make the nodes unready (every node would be at once).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(w.rt.get("/readyz", None).await.status(), StatusCode::OK);
    let new = redis.wait_for_failover(w.slot, w.owner.port);
    // The subscription follows the slot to the promoted replica.
    wait_for_subscribers(&redis, new.port, &w.channel, 1);
    post(&w.api, &w.token, (0..5).map(|i| format!("after {i}"))).await;
    // Every comment exactly once, in order: what the bus lost is repaired by `seq`.
    assert_eq!(seqs(&mut w.ws, 10).await, (6..=15).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resharding_moves_the_videos_slot_while_viewers_watch() {
    let redis = RedisCluster::start();
    let mut w = watched(&redis, 3).await;
    let target = redis
        .topology()
        .into_iter()
        .find(|n| n.master && n.port != w.owner.port)
        .expect("another master");
    redis.move_slot(w.slot, target.port);
    // The old owner ended the subscription; the node made it again on the new owner.
    wait_for_subscribers(&redis, target.port, &w.channel, 1);
    assert_eq!(redis.shard_subscribers(w.owner.port, &w.channel), 0);
    post(&w.api, &w.token, (0..3).map(|i| format!("after {i}"))).await;
    assert_eq!(seqs(&mut w.ws, 3).await, vec![4, 5, 6]);
}
