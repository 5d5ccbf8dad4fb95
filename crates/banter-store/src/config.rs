//! `StoreConfig`: how to reach the database. Built by `banter-server` from its configuration.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// `postgres://…` for PostgreSQL, `sqlite://path` for an SQLite file. A bare path is refused
    /// rather than silently creating an empty database somewhere unexpected.
    pub url: String,
    /// PostgreSQL read replicas (`postgres://…`). Ignored for SQLite.
    pub replica_urls: Vec<String>,
    /// A replica whose replay lags the primary by more than this is skipped for reads.
    pub max_replica_lag: Duration,
    /// How often replica health and lag are checked.
    pub replica_check_interval: Duration,
    /// Connections per pool (primary and each replica).
    pub max_connections: u32,
    /// How long a query waits for a pooled connection before failing.
    pub acquire_timeout: Duration,
    /// The same for a replica, kept short: a replica that cannot hand out a connection at once
    /// is treated as down and the read goes to the primary.
    pub replica_acquire_timeout: Duration,
    /// Apply embedded migrations on connect. Turn off when a separate job migrates.
    pub run_migrations: bool,
}

impl StoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            replica_urls: Vec::new(),
            max_replica_lag: Duration::from_secs(5),
            replica_check_interval: Duration::from_secs(1),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            replica_acquire_timeout: Duration::from_millis(500),
            run_migrations: true,
        }
    }
}
