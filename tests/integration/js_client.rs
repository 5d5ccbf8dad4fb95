//! Conformance with the official `phoenix` npm client (1.8.16, in Node, with `ws` as its
//! transport): `tests/js/conformance.mjs` connects with a token param and with the `authToken`
//! subprotocol, joins with history, checks Presence, posts and receives, leaves and recovers
//! with `since_seq`, survives on heartbeats, and reconnects after this test restarts the server.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use banter_tests::{JWT_SECRET, TestApp, free_port};
use tokio::io::{AsyncBufReadExt, BufReader};

fn env_for(port: u16, db: &Path) -> HashMap<String, String> {
    [
        ("BANTER_HTTP_ADDR", format!("127.0.0.1:{port}")),
        ("BANTER_JWT_SECRET", JWT_SECRET.to_owned()),
        ("BANTER_DATABASE_URL", format!("sqlite://{}", db.display())),
        ("BANTER_SHUTDOWN_TIMEOUT_SECS", "1".to_owned()),
        ("BANTER_DRAIN_WINDOW_SECS", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phoenix_js_client_runs_a_live_comment_page() {
    let js_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    assert!(
        js_dir.join("node_modules/phoenix").exists(),
        "tests/js/node_modules is missing: run `npm ci` in tests/js (./scripts/test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("banter.db");
    let port = free_port();
    let mut app = TestApp::spawn_env(env_for(port, &db), None, None).await;
    let a = app.register("jsalice").await;
    let b = app.register("jsbob").await;
    app.post_comment(&a.access_token, "jsvideo", "posted over REST")
        .await;

    let mut node = tokio::process::Command::new("node")
        .arg(js_dir.join("conformance.mjs"))
        .env("BANTER_URL", &app.address)
        .env("TOKEN_A", &a.access_token)
        .env("TOKEN_B", &b.access_token)
        .env("USER_A", &a.user_id)
        .env("USER_B", &b.user_id)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node is required: apt-get install nodejs npm");
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut transcript = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            transcript.push(line.clone());
            if line == "restart" {
                app.stop().await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                app = TestApp::spawn_env(env_for(port, &db), None, None).await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the JS client finished in time");
    let status = node.wait().await.unwrap();
    eprintln!("JS transcript: {transcript:?}");
    assert!(
        status.success() && transcript.last().map(String::as_str) == Some("PASS"),
        "{transcript:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phoenix_js_client_sees_moderation_happen_live() {
    let js_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    assert!(
        js_dir.join("node_modules/phoenix").exists(),
        "tests/js/node_modules is missing: run `npm ci` in tests/js (./scripts/test does)"
    );
    let app = TestApp::spawn(banter_tests::TestBackend::Sqlite).await;
    let owner = app.register("jsowner").await;
    let troll = app.register("jstroll").await;
    app.create_video(&owner, "jsmod", "public").await;
    let output = tokio::process::Command::new("node")
        .arg(js_dir.join("moderation.mjs"))
        .env("BANTER_URL", &app.address)
        .env("TOKEN_OWNER", &owner.access_token)
        .env("TOKEN_TROLL", &troll.access_token)
        .env("USER_TROLL", &troll.user_id)
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the JS client finished in time")
        .expect("node is required: apt-get install nodejs npm");
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && transcript.trim_end().ends_with("PASS"),
        "{transcript}"
    );
}
