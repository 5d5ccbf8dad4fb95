//! `/metrics` on the real binary (its own process, so the counts are exactly this test's):
//! Prometheus text with the socket, channel, HTTP, rate-limit and database series, labels
//! bounded (no video or user id anywhere), values that follow what the test did.

use std::time::Duration;

use banter_tests::{BanterProcess, WsClient};
use serde_json::json;

async fn start() -> BanterProcess {
    BanterProcess::start(
        &[
            ("BANTER_RATE_COMMENT_PER_MINUTE", "60"),
            ("BANTER_RATE_COMMENT_BURST", "1"),
            ("BANTER_LOG_LEVEL", "warn"),
        ],
        false,
    )
    .await
}

/// The value of one series (`name{labels}` exactly as rendered), or `None`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn scrape(node: &BanterProcess) -> String {
    let res = banter_tests::http_client()
        .get(format!("{}/metrics", node.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    res.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_sockets_joins_requests_and_limits() {
    let mut node = start().await;
    let client = banter_tests::http_client();
    let token = banter_tests::register_at(&node.address, "metricsuser").await;
    let mut ws = WsClient::connect(&node.address, &format!("vsn=2.0.0&token={token}"))
        .await
        .unwrap();
    let video = "secret-video-id-42";
    let topic = format!("comments:{video}");
    let join = ws.join(&topic, json!({})).await;
    assert_eq!(join[4]["status"], "ok");
    let join_ref = join[0].as_str().unwrap().to_owned();
    let refused = ws.join("comments:not valid!", json!({})).await;
    assert_eq!(refused[4]["status"], "error");
    // Burst of 1: the first comment passes, the second is rate limited.
    for _ in 0..2 {
        let r = ws.next_ref();
        ws.send(
            Some(&join_ref),
            &r,
            &topic,
            "new_comment",
            json!({"body": "hi"}),
        )
        .await;
        ws.reply_to(&r).await;
    }
    let text = scrape(&node).await;

    assert_eq!(value(&text, "banter_ws_connections"), Some(1.0), "{text}");
    assert_eq!(value(&text, "banter_channels"), Some(1.0));
    assert_eq!(value(&text, "banter_viewers"), Some(1.0));
    assert_eq!(
        value(&text, "banter_channel_joins_total{result=\"ok\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "banter_channel_joins_total{result=\"error\"}"),
        Some(1.0)
    );
    assert_eq!(value(&text, "banter_ws_messages_in_total"), Some(4.0));
    assert!(value(&text, "banter_ws_messages_out_total").unwrap() >= 4.0);
    // The socket's session was checked alive (then cached for its join and posts).
    let session_reads = value(&text, "banter_db_session_reads_total").unwrap();
    let session_checks = value(&text, "banter_db_session_checks_total").unwrap();
    assert!(
        session_reads >= 1.0 && session_checks >= session_reads,
        "{session_reads} reads, {session_checks} checks"
    );
    assert_eq!(
        value(
            &text,
            "banter_rate_limited_total{limit=\"comment_per_user\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "banter_fanout_deliveries_total").map(|v| v >= 1.0),
        Some(true)
    );
    assert_eq!(
        value(
            &text,
            "banter_http_request_duration_seconds_count{method=\"POST\",route=\"/api/auth/register\",status=\"201\"}"
        ),
        Some(1.0)
    );
    assert!(text.contains("# TYPE banter_http_request_duration_seconds histogram"));
    assert!(text.contains("banter_fanout_duration_seconds_bucket{le=\"0.0005\"}"));
    assert!(
        value(
            &text,
            "banter_db_pool_connections{pool=\"primary\",state=\"idle\"}"
        )
        .is_some()
    );
    assert!(text.contains("# HELP banter_ws_connections"));
    // Bounded labels: ids never appear.
    assert!(
        !text.contains(video) && !text.contains("metricsuser"),
        "{text}"
    );

    // A 404 is labelled by "unmatched", not by its path; a closed socket leaves the gauge.
    let _ = client
        .get(format!("{}/no/such/{video}", node.address))
        .send()
        .await
        .unwrap();
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = scrape(&node).await;
    assert_eq!(value(&text, "banter_ws_connections"), Some(0.0), "{text}");
    assert_eq!(value(&text, "banter_viewers"), Some(0.0));
    assert_eq!(value(&text, "banter_channel_leaves_total"), Some(1.0));
    assert!(text.contains("route=\"unmatched\",status=\"404\""));
    assert!(!text.contains(video));
    node.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_series_is_there_from_the_start() {
    let node = start().await;
    let text = scrape(&node).await;
    // Nothing has happened yet: counters and gauges read zero instead of being absent.
    for series in [
        "banter_ws_connections",
        "banter_ws_refused_total{reason=\"per_ip\"}",
        "banter_ws_closes_total{code=\"4001\"}",
        "banter_ws_slow_consumer_disconnects_total",
        "banter_ws_rebalanced_total",
        "banter_ws_messages_in_total",
        "banter_ws_messages_out_total",
        "banter_channel_joins_total{result=\"error\"}",
        "banter_channel_leaves_total",
        "banter_channels",
        "banter_viewers",
        "banter_fanout_deliveries_total",
        "banter_bus_publish_failures_total",
        "banter_bus_reconnects_total",
        "banter_bus_resubscribes_total",
        "banter_bus_messages_received_total{kind=\"access\"}",
        "banter_access_changes_total",
        "banter_access_revoked_total{action=\"socket_closed\"}",
        "banter_rate_limited_total{limit=\"login_per_account\"}",
        "banter_rate_limited_total{limit=\"password_hashes_in_flight\"}",
        "banter_db_replicas_healthy",
        "banter_db_read_fallbacks_total",
        "banter_db_session_reads_total",
        "banter_db_session_checks_total",
    ] {
        assert_eq!(
            value(&text, series),
            Some(0.0),
            "{series} missing or not 0 in\n{text}"
        );
    }
    for histogram in [
        "banter_fanout_duration_seconds",
        "banter_bus_publish_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {histogram} histogram")),
            "{histogram} in\n{text}"
        );
    }
}

/// The `banter_*` series a dashboard or rule file names (histogram suffixes dropped).
fn series_named(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("banter_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        if name.len() <= "banter_".len() {
            continue;
        }
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name)
            .to_owned();
        names.insert(base);
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_alert_rules_query_only_series_the_server_exposes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/banter.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard JSON");
    let mut queries = String::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            queries.push_str(target["expr"].as_str().unwrap());
            queries.push('\n');
        }
    }
    let rules = std::fs::read_to_string(root.join("deploy/prometheus/banter-rules.yml")).unwrap();
    let wanted: Vec<String> = series_named(&queries)
        .into_iter()
        .chain(series_named(&rules))
        .collect();
    assert!(wanted.len() > 20, "{wanted:?}");

    // A node with an (unreachable) identity provider and a configured webhook, after a post
    // over REST and one over a socket, exposes every series those queries name.
    let issuers = json!([{
        "name": "idp", "issuer": "https://idp.test/", "audience": ["x"],
        "jwks_url": "http://127.0.0.1:9/jwks.json",
    }])
    .to_string();
    let webhooks = json!([{
        "name": "sink", "url": "http://127.0.0.1:9/hook", "events": ["*"],
        "secret": "0123456789abcdef",
    }])
    .to_string();
    let node = BanterProcess::start(
        &[
            ("BANTER_LOG_LEVEL", "warn"),
            ("BANTER_JWT_ISSUERS", &issuers),
            ("BANTER_WEBHOOKS", &webhooks),
        ],
        false,
    )
    .await;
    let token = banter_tests::register_at(&node.address, "dashboards").await;
    let mut ws = WsClient::connect(&node.address, &format!("vsn=2.0.0&token={token}"))
        .await
        .unwrap();
    let join = ws.join("comments:v1", json!({})).await;
    let join_ref = join[0].as_str().unwrap().to_owned();
    let r = ws.next_ref();
    ws.send(
        Some(&join_ref),
        &r,
        "comments:v1",
        "new_comment",
        json!({"body": "hi"}),
    )
    .await;
    assert_eq!(ws.reply_to(&r).await[4]["status"], "ok");
    // A token of the configured issuer, whose keys cannot be fetched: 503.
    let foreign = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.c2ln",
            b64.encode(r#"{"alg":"RS256","kid":"k1"}"#),
            b64.encode(r#"{"iss":"https://idp.test/","aud":"x","sub":"s","exp":9999999999}"#)
        )
    };
    let res = banter_tests::http_client()
        .get(format!("{}/api/me", node.address))
        .bearer_auth(foreign)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let text = scrape(&node).await;
    let exposed = series_named(
        &text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let missing: Vec<&String> = wanted.iter().filter(|n| !exposed.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard or rules query series the server does not expose: {missing:?}"
    );
}
