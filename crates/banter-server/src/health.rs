//! `/healthz` (the process is alive and serving) and `/readyz` (it should receive traffic: the
//! database answers, the bus is connected and the node is not draining). A failing probe
//! answers 503 with the reason. Replica health is reported where replicas are configured, and
//! each external identity provider's key set where issuers are configured (a provider that
//! cannot be reached does not make the node unready: local sign-in and watching go on).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use banter_api::ApiState;
use banter_store::Store;

/// Shared between the probes and the shutdown path.
#[derive(Default)]
pub struct Readiness {
    draining: AtomicBool,
    redis: Option<Arc<banter_bus::RedisBus>>,
}

impl Readiness {
    pub fn new(redis: Option<Arc<banter_bus::RedisBus>>) -> Self {
        Self {
            draining: AtomicBool::new(false),
            redis,
        }
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

#[get("/readyz")]
pub async fn readyz(
    store: web::Data<Store>,
    readiness: web::Data<Arc<Readiness>>,
    api: web::Data<ApiState>,
) -> HttpResponse {
    if readiness.is_draining() {
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "draining", "checks": {"draining": true}}));
    }
    let database = matches!(
        tokio::time::timeout(Duration::from_secs(2), store.ping()).await,
        Ok(Ok(()))
    );
    // No Redis configured: the in-process bus is always there.
    let bus = readiness.redis.as_ref().is_none_or(|r| r.is_connected());
    let ready = database && bus;
    let mut body = serde_json::json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": {
            "database": database,
            "bus": bus,
            "draining": false,
        }
    });
    // Replicas only where some are configured (a replica down does not make a node unready:
    // reads fall back to the primary).
    let configured = store.replica().configured_replicas();
    if configured > 0 {
        body["checks"]["replicas_configured"] = configured.into();
        body["checks"]["replicas_healthy"] = store.replica().healthy_replicas().into();
    }
    if !api.external.is_empty() {
        let providers: serde_json::Map<String, serde_json::Value> = api
            .external
            .health()
            .into_iter()
            .map(|(name, keys, error)| (name, serde_json::json!({"keys": keys, "error": error})))
            .collect();
        body["checks"]["identity_providers"] = providers.into();
    }
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
