//! The node itself: probes, request ids, unrouted requests, the OpenAPI document, roles and
//! graceful shutdown.

use banter_tests::{TestApp, TestBackend, assert_error};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_report_health_and_readiness() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let ready: Value = app.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["database"], true);
    // No replicas configured: none reported (a 0 would read like a failure).
    assert!(ready["checks"].get("replicas_healthy").is_none(), "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_replicas_where_they_are_configured() {
    let app = TestApp::spawn(TestBackend::PostgresWithReplica).await;
    let ready: Value = app.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(ready["checks"]["replicas_configured"], 1, "{ready}");
    assert!(
        ready["checks"]["replicas_healthy"].as_u64().is_some(),
        "{ready}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_database_is_gone() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.store.close().await;
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_has_a_request_id_and_unknown_routes_get_the_envelope() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let res = app.get("/healthz", None).await;
    assert!(res.headers().contains_key("x-request-id"));
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = app.get("/no/such/route", None).await;
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(body["error"]["request_id"], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let doc: Value = app
        .get("/api/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/me",
        "/api/me/devices",
        "/api/me/devices/{device_id}",
        "/api/admin/users",
        "/api/admin/users/{user_id}",
        "/api/videos/{video_id}/comments",
        "/api/comments/{comment_id}",
        "/api/videos",
    ] {
        assert!(doc["paths"].get(path).is_some(), "missing {path}");
    }
    assert!(doc["components"]["schemas"].get("CommentDto").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_realtime_node_does_not_serve_the_rest_api() {
    let app = TestApp::spawn_with(TestBackend::Sqlite, &[("BANTER_ROLE", "realtime")]).await;
    assert_error(
        app.get("/api/videos/v1/comments", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    // It serves the video page, with the configured demo videos.
    let realtime = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[
            ("BANTER_ROLE", "realtime"),
            ("BANTER_WEB_DEMO_VIDEOS", "alpha, beta"),
        ],
    )
    .await;
    let home = realtime.get("/", None).await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.headers().contains_key("content-security-policy"));
    let home = home.text().await.unwrap();
    assert!(
        home.contains("/videos/alpha") && home.contains("/videos/beta"),
        "{home}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_video_page_is_served_only_where_sockets_are_and_can_be_turned_off() {
    let api = TestApp::spawn_with(TestBackend::Sqlite, &[("BANTER_ROLE", "api")]).await;
    assert_eq!(
        api.get("/videos/v1", None).await.status(),
        StatusCode::NOT_FOUND
    );
    let off = TestApp::spawn_with(TestBackend::Sqlite, &[("BANTER_WEB_ENABLED", "false")]).await;
    assert_eq!(off.get("/", None).await.status(), StatusCode::NOT_FOUND);
    let all = TestApp::spawn(TestBackend::Sqlite).await;
    let page = all.get("/videos/v1", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("data-video=\"v1\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_drains_and_refuses_new_connections() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    app.stop().await;
    let after = app.client.get(app.url("/healthz")).send().await;
    assert!(after.is_err(), "the listener is closed after stop");
}

/// The shipped binary: starts on the embedded default, serves, and exits cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = banter_tests::free_port();
    let mut child = tokio::process::Command::new(banter_tests::banter_binary())
        .current_dir(dir.path())
        .env("BANTER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("BANTER_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting banter");
    banter_tests::wait_ready(&format!("http://127.0.0.1:{port}")).await;
    assert!(
        dir.path().join("data/banter.db").exists(),
        "the embedded default writes ./data/banter.db"
    );
    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("exit in time")
        .unwrap();
    assert!(status.success(), "{status}");
    let out = child.stdout.take().unwrap();
    let mut logs = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::BufReader::new(out), &mut logs)
        .await
        .unwrap();
    assert!(
        logs.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "JSON logs: {logs}"
    );
    assert!(logs.contains("draining"));
}

fn rss_kib(pid: u32) -> u64 {
    banter_load::proc_watch::usage(&pid.to_string())
        .unwrap()
        .rss_kib
}

/// Argon2's 19 MiB working memory is given back after each hash (see
/// `banter-server/src/allocator.rs`): with glibc untuned, 40 sign-ups left the binary's RSS
/// several hundred MiB higher, and with mimalloc's default purge delay about 80 MiB; tuned, it
/// stays within a few MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_gives_back_password_hashing_memory() {
    let mut node = banter_tests::BanterProcess::start(
        &[
            ("BANTER_RATE_REGISTER_PER_MINUTE", "100000"),
            ("BANTER_LOG_LEVEL", "warn"),
        ],
        false,
    )
    .await;
    let before = rss_kib(node.pid());

    let client = banter_tests::http_client();
    let address = node.address.clone();
    let signups = (0..40).map(|i| {
        let (client, address) = (client.clone(), address.clone());
        async move {
            let res = client
                .post(format!("{address}/api/auth/register"))
                .json(&serde_json::json!({
                    "email": format!("mem{i}@example.com"),
                    "username": format!("mem{i}"),
                    "password": "correct horse battery",
                }))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
        }
    });
    futures_util::stream::iter(signups)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    let grown = rss_kib(node.pid()).saturating_sub(before);
    assert!(
        grown < 48 * 1024,
        "RSS grew by {grown} KiB over 40 sign-ups"
    );
    node.child.kill().await.unwrap();
}

/// A drain refuses new sockets at once (503), closes the open ones with 1012 "server
/// draining" at their turn within the window, and only then stops serving HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_refuses_new_sockets_and_closes_open_ones_within_the_window() {
    let app = TestApp::spawn_with(TestBackend::Sqlite, &[("BANTER_DRAIN_WINDOW_SECS", "1")]).await;
    let mut open = Vec::new();
    for _ in 0..10 {
        let mut ws = banter_tests::WsClient::connect(&app.address, "vsn=2.0.0")
            .await
            .unwrap();
        ws.join("comments:drain", serde_json::json!({})).await;
        open.push(ws);
    }
    let started = std::time::Instant::now();
    let stop = app.stop_handle();
    let stopping = tokio::spawn(async move { stop.stop().await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // Readiness is false and new sockets are refused while the old ones are still open.
    assert_eq!(
        app.get("/readyz", None).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let refused = banter_tests::WsClient::connect(&app.address, "vsn=2.0.0").await;
    assert_eq!(refused.err(), Some(503));
    let mut close_times = Vec::new();
    for ws in &mut open {
        assert_eq!(
            ws.closed().await,
            Some((1012, "server draining".to_owned()))
        );
        close_times.push(started.elapsed());
    }
    stopping.await.unwrap();
    let last = close_times.iter().max().unwrap();
    assert!(
        *last <= std::time::Duration::from_secs(3),
        "{close_times:?}"
    );
    assert!(
        close_times
            .iter()
            .any(|t| *t >= std::time::Duration::from_millis(300)),
        "closes are spread over the window, not all at once: {close_times:?}"
    );
}

/// The server's side of the TCP connection whose client end is `client`: whether Nagle's
/// algorithm is off on it (`None` until the server has accepted it).
fn server_side_nodelay(client: std::net::SocketAddr) -> Option<bool> {
    use std::os::fd::BorrowedFd;
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor is open for as long as this loop uses it (at worst a closed
        // one makes the calls fail), and it is only borrowed, never closed here.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        if socket.peer_addr().ok().and_then(|a| a.as_socket()) == Some(client) {
            return socket.tcp_nodelay().ok();
        }
    }
    None
}

/// Small frames (a post's acknowledgement, one comment) go out at once: with Nagle's algorithm
/// on, a frame written while an earlier one is unacknowledged waits for the peer's delayed ACK
/// (up to 40 ms on Linux), which showed up as the acknowledgement p99.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_connections_send_small_frames_without_delay() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let client = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let local = client.local_addr().unwrap();
    // The server sets the option just after accepting: on a loaded machine the socket may be
    // seen before that, so wait for it to be set (it never is without `tcp_nodelay`).
    let mut nodelay = None;
    for _ in 0..200 {
        nodelay = server_side_nodelay(local);
        if nodelay == Some(true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(nodelay, Some(true), "TCP_NODELAY on the accepted socket");
}
