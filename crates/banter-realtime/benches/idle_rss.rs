//! Server memory per idle joined connection: starts the release `banter` binary (embedded
//! default) as its own process, opens N WebSockets that each join one topic, and reads the
//! server's resident set size from /proc before and after, plus its CPU use while they idle.
//!
//! Needs `cargo build --release -p banter-server` first and enough file descriptors:
//! `ulimit -n 20000; cargo bench -p banter-realtime --bench idle_rss`. Environment:
//! `IDLE_CONNECTIONS` (10000), `IDLE_HEARTBEAT_SECS` (30, as the Phoenix client; 0: none; each
//! socket's first heartbeat is staggered over the interval), `IDLE_WINDOW_SECS` (10, the CPU
//! window), `IDLE_NO_JOIN` (set: sockets connect but join nothing, to tell the socket's cost
//! from the subscription's) and `IDLE_BINARY` (another build of `banter`, to compare two commits in one run).

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

async fn open_joined(url: &str) -> Socket {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    if std::env::var_os("IDLE_NO_JOIN").is_some() {
        return ws;
    }
    ws.send(Message::text(r#"["1","1","comments:idle","phx_join",{}]"#))
        .await
        .unwrap();
    // Reply and presence_state.
    for _ in 0..2 {
        ws.next().await.unwrap().unwrap();
    }
    ws
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Keeps a socket alive as the Phoenix client does: a heartbeat every `every`, the first
/// after `first`; replies are read and dropped.
async fn heartbeat(mut ws: Socket, first: Duration, every: Duration) {
    tokio::time::sleep(first).await;
    let mut tick = tokio::time::interval(every);
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                n += 1;
                let beat = format!(r#"[null,"h{n}","phoenix","heartbeat",{{}}]"#);
                if ws.send(Message::text(beat)).await.is_err() {
                    return;
                }
            }
            msg = ws.next() => if !matches!(msg, Some(Ok(_))) { return },
        }
    }
}

fn main() {
    let n = env_or("IDLE_CONNECTIONS", 10_000) as usize;
    let heartbeat_secs = env_or("IDLE_HEARTBEAT_SECS", 30);
    let window = env_or("IDLE_WINDOW_SECS", 10);
    let exe = std::env::current_exe().unwrap();
    let binary = std::env::var_os("IDLE_BINARY").map_or_else(
        || {
            exe.parent()
                .and_then(|d| d.parent())
                .unwrap()
                .join("banter")
        },
        std::path::PathBuf::from,
    );
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
        let mut beating = Vec::new();
        if heartbeat_secs > 0 {
            let every = Duration::from_secs(heartbeat_secs);
            for (i, ws) in sockets.drain(..).enumerate() {
                let first = every.mul_f64(i as f64 / n as f64);
                beating.push(tokio::spawn(heartbeat(ws, first, every)));
            }
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = rss_kib(pid);
        let ticks_before = cpu_ticks(pid);
        tokio::time::sleep(Duration::from_secs(window)).await;
        let idle_ticks = cpu_ticks(pid) - ticks_before;
        println!(
            "{n} idle joined connections (heartbeat every {heartbeat_secs} s): server RSS {before} KiB -> {after} KiB, \
             {:.2} KiB per connection; opened and joined in {:.1} s; CPU while idle {:.2}% of one core over {window} s",
            (after - before) as f64 / n as f64,
            connect_time.as_secs_f64(),
            idle_ticks as f64 / window as f64, // 100 ticks per second
        );
        for task in beating {
            task.abort();
        }
        drop(sockets);
        drop(warm);
    });
    let _ = server.kill();
    let _ = server.wait();
}
