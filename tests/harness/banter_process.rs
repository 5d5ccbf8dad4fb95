//! The shipped `banter` binary as its own process on a free port, in its own working
//! directory, killed when dropped: for tests that need exactly one process's metrics, logs,
//! signals or exports.
//!
//! Kept out: in-process nodes (`test_app`).

use std::process::Stdio;
use std::time::Duration;

use crate::{banter_binary, free_port};

pub struct BanterProcess {
    pub child: tokio::process::Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl BanterProcess {
    /// Starts `banter` with `env` on top of a free `BANTER_HTTP_ADDR`, and waits until
    /// `/readyz` answers 200. `capture_stdout` pipes the logs to `child.stdout`.
    pub async fn start(env: &[(&str, &str)], capture_stdout: bool) -> BanterProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut command = tokio::process::Command::new(banter_binary());
        command
            .current_dir(dir.path())
            .env("BANTER_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .envs(env.iter().copied())
            .kill_on_drop(true);
        if capture_stdout {
            command.stdout(Stdio::piped());
        }
        let child = command.spawn().expect("starting banter");
        let address = format!("http://127.0.0.1:{port}");
        wait_ready(&address).await;
        BanterProcess {
            child,
            address,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }
}

/// Waits until `address` answers `/readyz` with 200 (10 s at most).
pub async fn wait_ready(address: &str) {
    for _ in 0..200 {
        if crate::http_client()
            .get(format!("{address}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("banter at {address} did not become ready");
}

/// Registers `username` (password `correct horse battery`) on the node at `address` and
/// returns its access token.
pub async fn register_at(address: &str, username: &str) -> String {
    let body = serde_json::json!({
        "email": format!("{username}@example.com"),
        "username": username,
        "password": "correct horse battery",
    });
    let tokens: serde_json::Value = crate::http_client()
        .post(format!("{address}/api/auth/register"))
        .json(&body)
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("register reply");
    tokens["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}
