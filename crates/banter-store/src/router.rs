//! `ReadPool`: routes possibly-stale reads to PostgreSQL read replicas.
//!
//! Policy: round-robin over replicas that are healthy and whose replay lag is within the bound;
//! when none qualifies, or the chosen replica's query fails, the read runs on the primary, so a
//! replica outage never reaches the client as an error. A failed replica read marks that
//! replica down at once; only the background check, which re-tests every replica's
//! reachability and lag on an interval, brings it back. Replica pools hand out connections
//! within a short acquire timeout, so a stopped replica costs a read well under a second, not
//! the primary's full acquire timeout.
//!
//! For SQLite the "primary" here is the read-only reader pool and there are no replicas.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tracing::Instrument;

use crate::StoreConfig;
use crate::backend::{Pool, on_pool};

/// Counters of where reads went, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Reads answered by a replica.
    pub replica: u64,
    /// Reads answered by the primary (no replica configured or healthy, or after a failure).
    pub primary: u64,
    /// Replica reads that failed and were retried on the primary.
    pub fallbacks: u64,
}

/// One pool's connections: `role` is `primary` or `replica`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    pub role: &'static str,
    pub open: u32,
    pub idle: usize,
    pub healthy: bool,
}

#[derive(Clone, Debug)]
pub struct ReadPool {
    inner: Arc<Router>,
}

#[derive(Debug)]
struct Router {
    primary: Pool,
    replicas: Vec<Replica>,
    next: AtomicUsize,
    replica_reads: AtomicU64,
    primary_reads: AtomicU64,
    fallbacks: AtomicU64,
    checker: Option<tokio::task::AbortHandle>,
}

#[derive(Debug)]
struct Replica {
    pool: Pool,
    /// Reachable and within the lag bound at the last check, and no query has failed since.
    healthy: AtomicBool,
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(checker) = &self.checker {
            checker.abort();
        }
    }
}

impl ReadPool {
    pub(crate) fn new(primary: Pool, replicas: Vec<Pool>, config: &StoreConfig) -> Self {
        let replicas: Vec<Replica> = replicas
            .into_iter()
            .map(|pool| Replica {
                pool,
                healthy: AtomicBool::new(false),
            })
            .collect();
        let has_replicas = !replicas.is_empty();
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Router>| {
            let checker = has_replicas.then(|| {
                let weak = weak.clone();
                let interval = config.replica_check_interval;
                let max_lag = config.max_replica_lag;
                tokio::spawn(async move {
                    let mut ticker = tokio::time::interval(interval);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        ticker.tick().await;
                        let Some(router) = weak.upgrade() else { return };
                        router.check_replicas(max_lag, interval).await;
                    }
                })
                .abort_handle()
            });
            Router {
                primary,
                replicas,
                next: AtomicUsize::new(0),
                replica_reads: AtomicU64::new(0),
                primary_reads: AtomicU64::new(0),
                fallbacks: AtomicU64::new(0),
                checker,
            }
        });
        Self { inner }
    }

    /// Runs `query` on a healthy replica, or on the primary as described in the module docs.
    pub(crate) async fn run<T, F, Fut>(&self, query: F) -> Result<T, sqlx::Error>
    where
        F: Fn(Pool) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let router = &self.inner;
        if let Some(replica) = router.pick() {
            let span = tracing::info_span!("db.read", db.pool = "replica", otel.kind = "client");
            match query(replica.pool.clone()).instrument(span).await {
                Ok(value) => {
                    router.replica_reads.fetch_add(1, Ordering::Relaxed);
                    return Ok(value);
                }
                Err(err) => {
                    replica.healthy.store(false, Ordering::Relaxed);
                    router.fallbacks.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %err, "replica read failed; retrying on the primary");
                }
            }
        }
        router.primary_reads.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("db.read", db.pool = "primary", otel.kind = "client");
        query(router.primary.clone()).instrument(span).await
    }

    /// Connection use of the primary pool and of each replica's pool, for metrics.
    pub fn pool_usage(&self) -> Vec<PoolUsage> {
        let usage = |role, healthy, pool: &Pool| {
            let (open, idle) = pool.usage();
            PoolUsage {
                role,
                open,
                idle,
                healthy,
            }
        };
        let mut all = vec![usage("primary", true, &self.inner.primary)];
        for r in &self.inner.replicas {
            all.push(usage("replica", r.healthy.load(Ordering::Relaxed), &r.pool));
        }
        all
    }

    pub fn stats(&self) -> ReadStats {
        ReadStats {
            replica: self.inner.replica_reads.load(Ordering::Relaxed),
            primary: self.inner.primary_reads.load(Ordering::Relaxed),
            fallbacks: self.inner.fallbacks.load(Ordering::Relaxed),
        }
    }

    /// How many replicas are configured (0 on SQLite or without replica URLs).
    pub fn configured_replicas(&self) -> usize {
        self.inner.replicas.len()
    }

    /// How many replicas are currently used for reads.
    pub fn healthy_replicas(&self) -> usize {
        self.inner
            .replicas
            .iter()
            .filter(|r| r.healthy.load(Ordering::Relaxed))
            .count()
    }

    /// Runs one health and lag check of every replica now, instead of waiting for the interval.
    pub async fn check_replicas_now(&self, max_lag: Duration) {
        self.inner
            .check_replicas(max_lag, Duration::from_secs(2))
            .await;
    }

    pub(crate) async fn close(&self) {
        for replica in &self.inner.replicas {
            replica.pool.close().await;
        }
        self.inner.primary.close().await;
    }
}

impl Router {
    fn pick(&self) -> Option<&Replica> {
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.replicas[(start + i) % n])
            .find(|r| r.healthy.load(Ordering::Relaxed))
    }

    async fn check_replicas(&self, max_lag: Duration, timeout: Duration) {
        for replica in &self.replicas {
            let lag = tokio::time::timeout(timeout, replica_lag(&replica.pool)).await;
            let healthy = match lag {
                Ok(Ok(lag)) => lag <= max_lag.as_secs_f64(),
                _ => false,
            };
            let was = replica.healthy.swap(healthy, Ordering::Relaxed);
            if was != healthy {
                tracing::info!(healthy, lag = ?lag.ok().and_then(Result::ok), "replica health changed");
            }
        }
    }
}

/// Seconds the replica's replay is behind. Zero when it has replayed everything it received:
/// an idle primary produces no new WAL, and that must not look like lag.
async fn replica_lag(pool: &Pool) -> Result<f64, sqlx::Error> {
    const LAG: &str = "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::float8 \
         ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8, 0) END";
    on_pool!(pool, |p| sqlx::query_scalar::<_, f64>(LAG)
        .fetch_one(p)
        .await)
}
