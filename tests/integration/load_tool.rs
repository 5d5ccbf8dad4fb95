//! `banter-load` end to end against a real server (PostgreSQL primary + replica): every comment
//! published during a short run, with a reconnect storm in the middle, is accounted for at every
//! viewer as delivered live, recovered on rejoin, or lost; and the report's counts agree with
//! each other and with the server.

use banter_load::{RunOptions, Scenario, report};
use banter_tests::{TestApp, TestBackend};

fn scenario(app: &TestApp, prefix: &str, extra: &[&str]) -> Scenario {
    let ws = app.address.replace("http://", "ws://") + "/socket/websocket";
    let text = format!(
        r#"
        name = "e2e"
        url = "{ws}"
        connections = 40
        ramp_per_sec = 400
        duration_secs = 3
        drain_secs = 1.5
        video_prefix = "{prefix}"
        [topics]
        kind = "hot"
        [publish]
        posters = 4
        rate_per_sec = 20
        start_delay_secs = 0.5
        "#
    );
    let overrides: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Scenario::parse(&text, &overrides).expect("test scenario")
}

async fn run_quietly(s: Scenario) -> banter_load::Report {
    let options = RunOptions {
        quiet: true,
        ..Default::default()
    };
    banter_load::run(s, options).await.expect("run")
}

async fn last_seq(app: &TestApp, video: &str) -> u64 {
    let page: serde_json::Value = app
        .get(&format!("/api/videos/{video}/comments?limit=1"), None)
        .await
        .json()
        .await
        .unwrap();
    page["last_seq"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_comment_is_delivered_or_lost_across_a_storm() {
    let app = TestApp::spawn(TestBackend::PostgresWithReplica).await;
    let s = scenario(&app, "lt-storm", &["storm.at_secs=1.5"]);
    let r = run_quietly(s).await;
    let published = last_seq(&app, "lt-storm-0").await;
    let l = r.loss;
    assert!(r.totals.acked >= 40, "comments were posted: {r:#?}");
    assert!(
        published >= r.totals.acked,
        "{published} < {}",
        r.totals.acked
    );
    // Every viewer joined before the first comment, so each owes every comment of the video.
    assert_eq!(r.viewers_tracked, 40);
    assert_eq!(l.expected, 40 * published, "{}", r.summary());
    assert_eq!(
        l.delivered + l.recovered + l.lost,
        l.expected,
        "{}",
        r.summary()
    );
    assert_eq!(
        (l.lost, l.duplicates, l.out_of_order),
        (0, 0, 0),
        "{}",
        r.summary()
    );
    // The storm dropped and rejoined everyone, and the server replayed what they missed.
    let storm = r.storm.expect("storm result");
    assert_eq!(
        (storm.dropped, storm.rejoined, storm.recovered),
        (40, 40, 40)
    );
    assert_eq!(r.totals.connects, 80);
    assert_eq!(r.totals.joins, 80);
    assert_eq!(r.histograms["rejoin"].count(), 40);
    assert!(storm.all_rejoined_after_ms > 0.0);
    // Every live delivery was timed; every acknowledgement too.
    assert_eq!(r.totals.deliveries, l.delivered);
    assert_eq!(r.histograms["delivery"].count(), r.totals.deliveries);
    assert_eq!(r.histograms["ack"].count(), r.totals.acked);
    // Every post was answered (acknowledged or refused) or counted as unanswered.
    assert_eq!(
        r.totals.published,
        r.totals.acked + r.totals.post_errors + r.totals.post_unanswered
    );
    let per_second: u64 = r.series.iter().map(|i| i.deliveries).sum();
    assert_eq!(per_second, r.totals.deliveries);

    // A report survives its JSON and merges with itself to exactly double.
    let json = serde_json::to_string(&r).unwrap();
    let again = banter_load::Report::from_json(&json).unwrap();
    let merged = report::merge(vec![again.clone(), again]).unwrap();
    assert_eq!(merged.loss.expected, 2 * l.expected);
    assert_eq!(
        merged.histograms["delivery"].count(),
        2 * r.totals.deliveries
    );
    assert_eq!(
        merged.percentiles["delivery"].p99_ms,
        r.percentiles["delivery"].p99_ms
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_posting_and_refusals_are_counted() {
    // Posting over REST, with a comment limit low enough that some posts are refused.
    let app = TestApp::spawn_with(
        TestBackend::Postgres,
        &[
            ("BANTER_RATE_COMMENT_PER_MINUTE", "60"),
            ("BANTER_RATE_COMMENT_BURST", "3"),
        ],
    )
    .await;
    let s = scenario(
        &app,
        "lt-rest",
        &[
            "publish.via=\"rest\"",
            "connections=10",
            "publish.posters=2",
        ],
    );
    let r = run_quietly(s).await;
    let published = last_seq(&app, "lt-rest-0").await;
    assert_eq!(r.totals.acked, published, "{}", r.summary());
    assert!(r.totals.post_errors > 0, "{}", r.summary());
    assert_eq!(r.totals.published, r.totals.acked + r.totals.post_errors);
    let refused: u64 = r
        .errors
        .iter()
        .filter(|(k, _)| k.starts_with("post: http 429"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(refused, r.totals.post_errors, "{:?}", r.errors);
    assert_eq!(r.loss.expected, 10 * published);
    assert_eq!(r.loss.delivered, r.loss.expected, "{}", r.summary());
    app.stop().await;
}
