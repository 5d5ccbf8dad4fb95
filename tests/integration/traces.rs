//! OpenTelemetry end to end with real processes: two `banter` nodes (PostgreSQL, Redis) export
//! OTLP to a receiver in this test. A comment posted over REST to node A with a W3C
//! `traceparent`, and delivered by node B to a viewer, is one trace: A's HTTP, database and bus
//! publish spans and B's bus receive and channel delivery spans share the caller's trace id,
//! and B's receive span is the child of A's publish span.

use std::time::Duration;

use banter_tests::{BanterProcess, JWT_SECRET, OtlpReceiver, PgCluster, RedisServer, WsClient};
use serde_json::json;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

async fn node(service: &str, db: &str, redis: &RedisServer, otlp: &OtlpReceiver) -> BanterProcess {
    let database = PgCluster::shared().primary_url(db);
    let redis = redis.url();
    let env = [
        ("BANTER_JWT_SECRET", JWT_SECRET),
        ("BANTER_DATABASE_URL", database.as_str()),
        ("BANTER_REDIS_URL", redis.as_str()),
        ("BANTER_LOG_LEVEL", "info"),
        ("BANTER_LOG_FORMAT", "json"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_SERVICE_NAME", service),
    ];
    BanterProcess::start(&env, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_is_one_trace_from_the_request_across_redis_to_delivery() {
    let otlp = OtlpReceiver::start().await;
    let redis = RedisServer::start();
    let db = PgCluster::shared().create_database().await;
    let mut a = node("banter-a", &db, &redis, &otlp).await;
    let b = node("banter-b", &db, &redis, &otlp).await;
    let (node_a, node_b) = (a.address.clone(), b.address.clone());
    let client = banter_tests::http_client();
    let token = banter_tests::register_at(&node_a, "tracer").await;
    let mut viewer = WsClient::connect(&node_b, "vsn=2.0.0").await.unwrap();
    assert_eq!(
        viewer.join("comments:traced", json!({})).await[4]["status"],
        "ok"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = client
        .post(format!("{node_a}/api/videos/traced/comments"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .json(&json!({"body": "follow me"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let delivered = viewer
        .until_event("comments:traced", "comment_created")
        .await;
    assert_eq!(delivered[4]["body"], "follow me");

    let wanted = [
        ("banter-a", "POST /api/videos/{video_id}/comments"),
        ("banter-a", "db.create_comment"),
        ("banter-a", "bus.publish"),
        ("banter-b", "bus.receive"),
        ("banter-b", "channel.deliver"),
    ];
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = otlp.spans();
        let have = |(service, name): &(&str, &str)| {
            spans
                .iter()
                .any(|s| s.trace_id == TRACE_ID && s.service == *service && s.name == *name)
        };
        if wanted.iter().all(have) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let in_trace: Vec<_> = spans.iter().filter(|s| s.trace_id == TRACE_ID).collect();
    for (service, name) in wanted {
        assert!(
            in_trace
                .iter()
                .any(|s| s.service == service && s.name == name),
            "{service} did not export {name} in the trace; got {in_trace:#?}"
        );
    }
    // The request's other primary queries (the token's user and device) have spans too.
    let db_spans = in_trace
        .iter()
        .filter(|s| s.service == "banter-a" && s.name.starts_with("db."))
        .count();
    assert!(db_spans >= 2, "{in_trace:#?}");
    let publish = in_trace.iter().find(|s| s.name == "bus.publish").unwrap();
    let receive = in_trace.iter().find(|s| s.name == "bus.receive").unwrap();
    assert_eq!(
        receive.parent_span_id, publish.span_id,
        "the Redis hop keeps the parent"
    );
    let http = in_trace
        .iter()
        .find(|s| s.service == "banter-a" && s.name.starts_with("POST "))
        .unwrap();
    assert_eq!(
        http.parent_span_id, "00f067aa0ba902b7",
        "the caller's traceparent is honoured"
    );

    // JSON logs carry the trace id, and never the token or the password.
    a.child.kill().await.unwrap();
    let mut logs = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut a.child.stdout.take().unwrap(), &mut logs)
        .await
        .unwrap();
    let marker = format!("\"trace_id\":\"{TRACE_ID}\"");
    assert!(logs.lines().any(|l| l.contains(&marker)), "{logs}");
    assert!(!logs.contains(&token) && !logs.contains("correct horse battery"));
}
