//! `Store`: connects to the configured backend, applies migrations, and hands out the
//! [`PrimaryPool`] and [`ReadPool`].

use std::str::FromStr;

use anyhow::{Context, bail};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::backend::Pool;
use crate::router::ReadPool;
use crate::{PrimaryPool, StoreConfig, StoreError};

static PG_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// Picks the backend from the URL scheme.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            bail!(
                "database URL must start with postgres:// or sqlite:// (got a URL with another or no scheme)"
            )
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    primary: PrimaryPool,
    reads: ReadPool,
}

impl Store {
    pub async fn connect(config: &StoreConfig) -> Result<Self, StoreError> {
        let backend = Backend::from_url(&config.url)?;
        let store = match backend {
            Backend::Postgres => Self::connect_postgres(config).await?,
            Backend::Sqlite => Self::connect_sqlite(config).await?,
        };
        if config.run_migrations {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Applies the embedded migrations of this backend (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.primary.pool() {
            Pool::Postgres(p) => PG_MIGRATIONS.run(p).await,
            Pool::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await,
        }
        .context("applying migrations")?;
        Ok(())
    }

    async fn connect_postgres(config: &StoreConfig) -> anyhow::Result<Self> {
        let options = |url: &str| -> anyhow::Result<PgConnectOptions> {
            PgConnectOptions::from_str(url).context("parsing a PostgreSQL URL")
        };
        let pool_options = |acquire_timeout| {
            PgPoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(acquire_timeout)
        };
        let primary = pool_options(config.acquire_timeout)
            .connect_with(options(&config.url)?)
            .await
            .context("connecting to the PostgreSQL primary")?;
        // Replicas connect lazily: a replica that is down at start-up is simply unhealthy.
        let mut replicas = Vec::with_capacity(config.replica_urls.len());
        for url in &config.replica_urls {
            replicas.push(Pool::Postgres(
                pool_options(config.replica_acquire_timeout).connect_lazy_with(options(url)?),
            ));
        }
        let primary = Pool::Postgres(primary);
        Ok(Self {
            backend: Backend::Postgres,
            reads: ReadPool::new(primary.clone(), replicas, config),
            primary: PrimaryPool::new(primary.clone(), primary),
        })
    }

    async fn connect_sqlite(config: &StoreConfig) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(&config.url)
            .context("parsing the SQLite URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(config.acquire_timeout)
            .foreign_keys(true);
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // SQLite allows one writer at a time; a single writer connection queues writes in the
        // pool instead of failing them with SQLITE_BUSY, and WAL lets readers run beside it.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options.clone())
            .await
            .context("opening the SQLite database")?;
        let reader = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options.read_only(true))
            .await
            .context("opening the SQLite database for reading")?;
        let reader = Pool::Sqlite(reader);
        Ok(Self {
            backend: Backend::Sqlite,
            primary: PrimaryPool::new(Pool::Sqlite(writer), reader.clone()),
            reads: ReadPool::new(reader, Vec::new(), config),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Writes and read-your-writes reads.
    pub fn primary(&self) -> &PrimaryPool {
        &self.primary
    }

    /// Possibly-stale reads, served by a replica when one is healthy.
    pub fn replica(&self) -> &ReadPool {
        &self.reads
    }

    /// Checks that the primary answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.primary.ping().await
    }

    pub async fn close(&self) {
        self.reads.close().await;
        self.primary.pool().close().await;
    }
}
