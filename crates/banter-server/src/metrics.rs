//! Prometheus metrics for the whole node: installs the `metrics` recorder once per process,
//! serves `GET /metrics` (text exposition format), records every HTTP request's latency by
//! route pattern, method and status, and samples the database pools at each scrape. The other
//! crates record their own metrics through the `metrics` facade (`banter_realtime::metrics`,
//! `banter_bus::metrics`, the API's rate limiter); their descriptions are registered here.
//!
//! Label values are bounded: route patterns (`/api/videos/{video_id}/comments`, never the id),
//! standard methods, status codes, pool roles. Kept out: tracing.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, get, web};
use banter_store::Store;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// HTTP requests by `method`, `route` (pattern) and `status` (histogram, seconds).
pub const HTTP_DURATION: &str = "banter_http_request_duration_seconds";
/// Database connections by `pool` (primary, replica) and `state` (idle, busy) (gauge).
pub const DB_CONNECTIONS: &str = "banter_db_pool_connections";
/// Replicas currently used for reads (gauge).
pub const DB_REPLICAS_HEALTHY: &str = "banter_db_replicas_healthy";
/// Reads by the `pool` that answered them (counter).
pub const DB_READS: &str = "banter_db_reads_total";
/// Replica reads that failed and were retried on the primary (counter).
pub const DB_FALLBACKS: &str = "banter_db_read_fallbacks_total";
/// Queries that checked whether sessions are alive (counter); each checks the sessions asked
/// while the queries before it ran (`banter_store`'s `session_reads`).
pub const DB_SESSION_READS: &str = "banter_db_session_reads_total";
/// Sessions those queries checked (counter): over `DB_SESSION_READS`, the mean batch.
pub const DB_SESSION_CHECKS: &str = "banter_db_session_checks_total";
/// 1 while this node drains (after SIGTERM), 0 otherwise (gauge).
pub const DRAINING: &str = "banter_draining";

/// Latency buckets from 0.5 ms to 10 s, for every histogram.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("static, non-empty buckets")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

/// Describes every series and registers it at zero where its labels are a fixed set (the HTTP
/// histogram's routes appear with their first request).
fn describe() {
    banter_realtime::metrics::describe();
    banter_bus::metrics::describe();
    for limit in banter_api::RATE_LIMIT_NAMES {
        metrics::counter!(banter_api::RATE_LIMITED_METRIC, "limit" => *limit).increment(0);
    }
    for action in banter_api::MODERATION_ACTIONS {
        metrics::counter!(banter_api::MODERATION_ACTIONS_METRIC, "action" => *action).increment(0);
    }
    for reason in banter_api::REFUSAL_REASONS {
        metrics::counter!(banter_api::COMMENTS_REFUSED_METRIC, "reason" => *reason).increment(0);
    }
    describe_counter!(
        banter_api::MODERATION_ACTIONS_METRIC,
        "Moderation actions taken, by action."
    );
    describe_counter!(
        banter_api::COMMENTS_REFUSED_METRIC,
        "Comments refused before commit, by reason (the error code: bans, timeouts, slow mode, members-only chat, rate limits, validation)."
    );
    for pool in ["primary", "replica"] {
        metrics::counter!(DB_READS, "pool" => pool).increment(0);
        for state in ["idle", "busy"] {
            metrics::gauge!(DB_CONNECTIONS, "pool" => pool, "state" => state).set(0.0);
        }
    }
    metrics::counter!(DB_FALLBACKS).increment(0);
    metrics::counter!(DB_SESSION_READS).increment(0);
    metrics::counter!(DB_SESSION_CHECKS).increment(0);
    describe_counter!(
        DB_SESSION_READS,
        "Queries that checked sessions alive (each checks those asked together)."
    );
    describe_counter!(
        DB_SESSION_CHECKS,
        "Sessions checked alive by those queries."
    );
    metrics::gauge!(DRAINING).set(0.0);
    describe_gauge!(DRAINING, "1 while this node drains after SIGTERM.");
    metrics::counter!(banter_api::COMMENTS_COMMITTED_METRIC).increment(0);
    describe_counter!(
        banter_api::COMMENTS_COMMITTED_METRIC,
        "Comments committed (REST and socket posts)."
    );
    let _ = metrics::histogram!(banter_api::COMMENT_ACK_METRIC);
    describe_histogram!(
        banter_api::COMMENT_ACK_METRIC,
        Unit::Seconds,
        "A post's time from arrival to its answer (the acknowledgement)."
    );
    for outcome in ["delivered", "failed", "dead"] {
        metrics::counter!("banter_webhook_deliveries_total", "outcome" => outcome).increment(0);
    }
    metrics::counter!("banter_webhook_retries_total").increment(0);
    for state in ["events", "pending", "dead"] {
        metrics::gauge!("banter_webhook_outbox_depth", "state" => state).set(0.0);
    }
    metrics::gauge!("banter_webhook_outbox_age_seconds").set(0.0);
    describe_counter!(
        "banter_webhook_deliveries_total",
        "Webhook delivery attempts by outcome."
    );
    describe_counter!(
        "banter_webhook_retries_total",
        "Failed webhook attempts that will be retried."
    );
    describe_gauge!(
        "banter_webhook_outbox_depth",
        "Webhook events not yet expanded, and pending and dead deliveries."
    );
    describe_gauge!(
        "banter_webhook_outbox_age_seconds",
        "Age of the oldest undelivered webhook event."
    );
    describe_histogram!(
        "banter_webhook_delivery_duration_seconds",
        Unit::Seconds,
        "One webhook attempt."
    );
    describe_counter!(
        "banter_external_tokens_total",
        "External identity providers' tokens by issuer and outcome."
    );
    describe_counter!(
        "banter_jwks_fetches_total",
        "Key set fetches by issuer and outcome."
    );
    metrics::gauge!(DB_REPLICAS_HEALTHY).set(0.0);
    describe_counter!(
        banter_api::RATE_LIMITED_METRIC,
        "Requests refused by a rate limit, by limit."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP requests by method, route pattern and status."
    );
    describe_gauge!(DB_CONNECTIONS, "Database connections by pool and state.");
    describe_gauge!(DB_REPLICAS_HEALTHY, "Read replicas currently in use.");
    describe_counter!(DB_READS, "Reads by the pool that answered them.");
    describe_counter!(
        DB_FALLBACKS,
        "Replica reads that failed and were retried on the primary."
    );
}

fn sample_store(store: &Store) {
    let mut open = [0u64; 2];
    let mut idle = [0u64; 2];
    let mut healthy = 0u64;
    for pool in store.replica().pool_usage() {
        let i = usize::from(pool.role == "replica");
        open[i] += u64::from(pool.open);
        idle[i] += pool.idle as u64;
        healthy += u64::from(pool.role == "replica" && pool.healthy);
    }
    for (i, role) in ["primary", "replica"].into_iter().enumerate() {
        let busy = open[i].saturating_sub(idle[i]);
        metrics::gauge!(DB_CONNECTIONS, "pool" => role, "state" => "idle").set(idle[i] as f64);
        metrics::gauge!(DB_CONNECTIONS, "pool" => role, "state" => "busy").set(busy as f64);
    }
    metrics::gauge!(DB_REPLICAS_HEALTHY).set(healthy as f64);
    let stats = store.replica().stats();
    metrics::counter!(DB_READS, "pool" => "replica").absolute(stats.replica);
    metrics::counter!(DB_READS, "pool" => "primary").absolute(stats.primary);
    metrics::counter!(DB_FALLBACKS).absolute(stats.fallbacks);
    let sessions = store.primary().session_read_stats();
    metrics::counter!(DB_SESSION_READS).absolute(sessions.queries);
    metrics::counter!(DB_SESSION_CHECKS).absolute(sessions.sessions);
}

#[get("/metrics")]
pub async fn endpoint(store: web::Data<Store>) -> HttpResponse {
    sample_store(&store);
    let handle = handle();
    handle.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}

/// Middleware: one observation per request, labelled by the matched route's pattern.
pub async fn record_http(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let response = next.call(req).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16().to_string();
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route, "status" => status)
        .record(started.elapsed());
    Ok(response)
}
