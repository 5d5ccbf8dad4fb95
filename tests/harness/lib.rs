//! The integration-test harness: real services on free loopback ports, started per test run.
//!
//! - [`PgCluster`]: a PostgreSQL primary and a streaming replica (initdb + pg_basebackup), run
//!   as the `postgres` user when the tests run as root. One shared cluster per test process;
//!   tests that stop or pause the replica start their own.
//! - [`RedisServer`]: a `redis-server` with no persistence.
//! - [`RedisCluster`]: a Redis Cluster of three masters with a replica each.
//! - [`TestApp`]: the real `banter` application on port 0, with typed helpers.
//!
//! Every service is watched by a small guard process that stops it and deletes its files when
//! the test process exits, however it exits. A service that cannot start fails the test with a
//! message saying what to install; nothing is skipped.

mod banter_process;
mod jwks;
mod otlp;
mod pg;
mod ports;
mod process;
mod redis;
mod redis_cluster;
mod test_app;
mod webhook_receiver;
mod ws_client;

pub use banter_process::{BanterProcess, register_at, wait_ready};
pub use jwks::{JwksServer, TestKey};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use pg::PgCluster;
pub use ports::free_port;
pub use redis::RedisServer;
pub use redis_cluster::{NodeInfo, RedisCluster};
pub use test_app::{
    JWT_SECRET, Session, TestApp, TestBackend, assert_error, create_user, session_from,
};
pub use webhook_receiver::{Answer, HookRequest, WebhookReceiver};
pub use ws_client::{Received, WsClient};

/// The `banter` binary built next to this test binary (`cargo build -p banter-server` first;
/// the test command does).
/// An HTTP client for tests (reqwest needs the process's TLS provider installed first).
pub fn http_client() -> reqwest::Client {
    banter_api::install_tls_provider();
    reqwest::Client::new()
}

pub fn banter_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let bin = dir.join("banter");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p banter-server` before the tests",
        bin.display()
    );
    bin
}
