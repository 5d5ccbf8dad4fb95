//! Cross-node delivery latency: the loopback cluster (`deploy/local/cluster`, release binary),
//! posters on realtime node 1 sending `CROSS_RATE` comments/s in total (default 1000) for
//! `CROSS_SECONDS` (default 10), one viewer on node 1 (delivered locally) and one on node 2
//! (delivered through Redis). Latency is publish-to-delivery: the poster's send time, carried
//! in the comment body, to the viewer's receipt, on the same clock. Prints percentiles for both
//! viewers from the same run; the difference is the cost of the Redis hop.
//!
//! `cargo build --release -p banter-server && cargo bench -p banter-tests --bench cross_node`

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn joined(port: u16, token: &str) -> Ws {
    let url = format!("ws://127.0.0.1:{port}/socket/websocket?vsn=2.0.0&token={token}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    ws.send(Message::text(r#"["1","1","comments:bench","phx_join",{}]"#))
        .await
        .unwrap();
    for _ in 0..2 {
        ws.next().await.unwrap().unwrap();
    }
    ws
}

/// Reads until `expected` comments arrived (or 30 s of silence); returns latencies in µs.
async fn viewer(mut ws: Ws, expected: usize) -> Vec<u64> {
    let mut latencies = Vec::with_capacity(expected);
    while latencies.len() < expected {
        let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_secs(30), ws.next()).await
        else {
            break;
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame[3] == "comment_created"
            && let Some(sent) = frame[4]["body"]
                .as_str()
                .and_then(|b| b.strip_prefix("t="))
                .and_then(|t| t.parse::<u64>().ok())
        {
            latencies.push(micros().saturating_sub(sent));
        }
    }
    latencies.sort_unstable();
    latencies
}

fn main() {
    let rate: u64 = std::env::var("CROSS_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let seconds: u64 = std::env::var("CROSS_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let posters = 4u64;
    let exe = std::env::current_exe().unwrap();
    let release = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("banter");
    assert!(
        release.exists(),
        "cargo build --release -p banter-server first"
    );
    let dir = std::env::temp_dir().join(format!("banter-bench-{}", std::process::id()));
    let base: u16 = 34_000;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/cluster");
    let cluster = |verb: &str| {
        std::process::Command::new(&script)
            .arg(verb)
            .env("BANTER_BIN", &release)
            .env("BANTER_CLUSTER_DIR", &dir)
            .env("BANTER_CLUSTER_PORT", base.to_string())
            .env("BANTER_CLUSTER_LOGS", dir.join("kept-logs"))
            .env("BANTER_RATE_COMMENT_PER_MINUTE", "100000000")
            .env("BANTER_RATE_COMMENT_BURST", "100000000")
            .env("BANTER_WS_MAX_MESSAGES_PER_SECOND", "100000")
            .env("BANTER_LOG_LEVEL", "warn")
            .status()
            .unwrap()
    };
    assert!(cluster("up").success());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let token = banter_tests::register_at(&format!("http://127.0.0.1:{base}"), "bench").await;
        let (rt1, rt2) = (base + 2, base + 3);
        let total = (rate * seconds) as usize;
        let same = tokio::spawn(viewer(joined(rt1, &token).await, total));
        let cross = tokio::spawn(viewer(joined(rt2, &token).await, total));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut tasks = Vec::new();
        for p in 0..posters {
            let ws = joined(rt1, &token).await;
            let (mut sink, mut stream) = ws.split();
            // Replies are read and dropped so the poster's socket never backs up.
            tokio::spawn(async move {
                while let Some(m) = stream.next().await {
                    if let Ok(Message::Close(c)) = &m {
                        eprintln!("poster closed: {c:?}");
                    }
                }
            });
            let per_poster = rate / posters;
            tasks.push(tokio::spawn(async move {
                let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / per_poster));
                for i in 0..per_poster * seconds {
                    ticker.tick().await;
                    let frame = json!(["1", format!("{p}-{i}"), "comments:bench", "new_comment", {"body": format!("t={}", micros())}]);
                    if let Err(e) = sink.send(Message::text(frame.to_string())).await {
                        eprintln!("poster send failed: {e}");
                        return;
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let (same, cross) = (same.await.unwrap(), cross.await.unwrap());
        for (name, lat) in [("same node (local delivery)", &same), ("other node (through Redis)", &cross)] {
            println!(
                "{name}: {} of {total} delivered; latency ms p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
                lat.len(),
                percentile(lat, 0.5),
                percentile(lat, 0.9),
                percentile(lat, 0.99),
                percentile(lat, 0.999),
                percentile(lat, 1.0)
            );
        }
        println!(
            "Redis hop: p50 +{:.2} ms, p99 +{:.2} ms ({rate} comments/s for {seconds} s, {posters} posters)",
            percentile(&cross, 0.5) - percentile(&same, 0.5),
            percentile(&cross, 0.99) - percentile(&same, 0.99)
        );
    });
    cluster("down");
}
