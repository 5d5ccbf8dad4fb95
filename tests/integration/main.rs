//! All workspace integration tests, compiled into one binary that shares one PostgreSQL
//! cluster (see the `banter-tests` harness). Each module names what it covers.

mod access_recheck;
mod api_auth;
mod api_comments;
mod api_contract;
mod api_keys;
mod api_users;
mod browser;
mod cluster;
mod external_auth;
mod frames;
mod group_commit;
mod js_client;
mod load_tool;
mod loopback_cluster;
mod metrics;
mod moderation;
mod readme;
mod realtime;
mod redis_cluster;
mod replicas;
mod server;
mod sign_in_hardening;
mod store_contract;
mod traces;
mod webhooks;

/// Runs an async test body once per backend: `both_backends!(name)` expects
/// `async fn name(app: TestApp)` (or a store) and generates `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(banter_tests::TestApp::spawn(banter_tests::TestBackend::Sqlite).await)
                    .await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(
                    banter_tests::TestApp::spawn(banter_tests::TestBackend::Postgres).await,
                )
                .await
            }
        }
    };
}
