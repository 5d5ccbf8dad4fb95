//! The loopback cluster of `deploy/local/cluster` (PostgreSQL primary + replica, Redis, an api
//! node, two realtime nodes, nginx), started for real: a live comment page through nginx
//! survives the SIGKILL of a realtime node without any viewer missing a comment.

use std::path::{Path, PathBuf};
use std::process::Command;

use banter_tests::WsClient;
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Cluster {
    script: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn command(&self, verb: &str) -> Command {
        let mut cmd = Command::new(&self.script);
        cmd.arg(verb)
            .env("BANTER_BIN", banter_tests::banter_binary())
            .env("BANTER_CLUSTER_DIR", &self.dir)
            .env("BANTER_CLUSTER_PORT", self.port.to_string());
        cmd
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn pid(&self, node: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{node}.pid")))
            .unwrap()
            .trim()
            .to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.command("down").output();
    }
}

/// A base port whose block of 21 ports is free right now.
fn free_block() -> u16 {
    for _ in 0..50 {
        let base = banter_tests::free_port().clamp(20_000, 60_000);
        let all_free =
            (0..=20).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no free block of ports");
}

async fn created_seqs(ws: &mut WsClient, n: usize) -> Vec<i64> {
    let mut seqs = Vec::new();
    while seqs.len() < n {
        seqs.push(
            ws.until_event("comments:live", "comment_created").await[4]["seq"]
                .as_i64()
                .unwrap(),
        );
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_page_through_nginx_survives_a_realtime_node_kill() {
    let cluster = Cluster {
        script: Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/cluster"),
        dir: std::env::temp_dir().join(format!("banter-cluster-{}", uuid::Uuid::new_v4().simple())),
        port: free_block(),
    };
    let up = cluster
        .command("up")
        .output()
        .expect("run deploy/local/cluster up");
    assert!(
        up.status.success(),
        "cluster up failed:\n{}\n{}",
        String::from_utf8_lossy(&up.stdout),
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(
        cluster.command("status").status().unwrap().success(),
        "every component ready"
    );

    let client = reqwest::Client::new();
    let res = client
        .post(format!("{}/api/auth/register", cluster.url()))
        .json(
            &json!({"email": "live@example.com", "username": "live", "password": "long enough pw"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = |body: String| {
        let (client, url, token) = (
            client.clone(),
            format!("{}/api/videos/live/comments", cluster.url()),
            token.clone(),
        );
        async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"body": body}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::CREATED);
        }
    };

    // Two viewers through nginx, which spreads them over the two realtime nodes.
    let mut viewers = Vec::new();
    for _ in 0..2 {
        let mut ws = WsClient::connect(&cluster.url(), "vsn=2.0.0")
            .await
            .expect("socket through nginx");
        assert_eq!(ws.join("comments:live", json!({})).await[4]["status"], "ok");
        viewers.push(ws);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for i in 1..=5 {
        post(format!("before {i}")).await;
    }
    for ws in &mut viewers {
        assert_eq!(created_seqs(ws, 5).await, vec![1, 2, 3, 4, 5]);
    }

    // Kill one realtime node outright; comments keep coming while its viewers are away.
    Command::new("kill")
        .args(["-KILL", &cluster.pid("rt1")])
        .status()
        .unwrap();
    for i in 6..=8 {
        post(format!("while away {i}")).await;
    }
    // Every viewer reconnects through nginx (landing on the surviving node) and recovers
    // exactly what it missed after the last seq it saw.
    for _ in 0..2 {
        let mut ws = None;
        for _ in 0..50 {
            if let Ok(client) = WsClient::connect(&cluster.url(), "vsn=2.0.0").await {
                ws = Some(client);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let mut ws = ws.expect("reconnect through nginx");
        let reply = ws.join("comments:live", json!({"since_seq": 5})).await;
        assert_eq!(reply[4]["status"], "ok", "{reply}");
        let recovered: Vec<i64> = reply[4]["response"]["comments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(recovered, vec![6, 7, 8]);
        assert_eq!(reply[4]["response"]["recovered"], true);
    }
}
