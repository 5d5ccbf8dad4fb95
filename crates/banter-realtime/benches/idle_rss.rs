//! Server memory per idle joined connection: starts the release `banter` binary (embedded
//! default) as its own process, opens N WebSockets that each join one topic, and reads the
//! server's resident set size from /proc before and after, plus its CPU use while they idle.
//!
//! Needs `cargo build --release -p banter-server` first and enough file descriptors:
//! `ulimit -n 65536; cargo bench -p banter-realtime --bench idle_rss` (N=10000; override with
//! `IDLE_CONNECTIONS`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

async fn open_joined(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    ws.send(Message::text(r#"["1","1","comments:idle","phx_join",{}]"#))
        .await
        .unwrap();
    // Reply and presence_state.
    for _ in 0..2 {
        ws.next().await.unwrap().unwrap();
    }
    ws
}

fn main() {
    let n: usize = std::env::var("IDLE_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("banter");
    assert!(
        binary.exists(),
        "build the server first: cargo build --release -p banter-server"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(&binary)
        .current_dir(dir.path())
        .env("BANTER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("BANTER_LOG_LEVEL", "warn")
        .env("BANTER_WS_MAX_CONNECTIONS_PER_IP", "1000000")
        .env("BANTER_WS_IDLE_TIMEOUT_SECS", "600")
        .stdout(Stdio::null())
        .spawn()
        .expect("start banter");
    let pid = server.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("ws://127.0.0.1:{port}/socket/websocket?vsn=2.0.0");
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Warm up: the channel and its history exist before the baseline.
        let warm = open_joined(&url).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = rss_kib(pid);
        let started = Instant::now();
        let mut sockets = Vec::with_capacity(n);
        for chunk in 0..n.div_ceil(500) {
            let batch = (n - chunk * 500).min(500);
            let opened = futures_util::future::join_all((0..batch).map(|_| open_joined(&url))).await;
            sockets.extend(opened);
        }
        let connect_time = started.elapsed();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = rss_kib(pid);
        let ticks_before = cpu_ticks(pid);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let idle_ticks = cpu_ticks(pid) - ticks_before;
        println!(
            "{n} idle joined connections: server RSS {before} KiB -> {after} KiB, {:.2} KiB per connection; \
             opened and joined in {:.1} s; CPU while idle {:.2}% of one core over 10 s",
            (after - before) as f64 / n as f64,
            connect_time.as_secs_f64(),
            idle_ticks as f64 / 10.0, // 100 ticks per second: ticks/10 s = percent
        );
        drop(sockets);
        drop(warm);
    });
    let _ = server.kill();
    let _ = server.wait();
}
