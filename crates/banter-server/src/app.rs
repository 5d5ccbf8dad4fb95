//! `Application`: builds the node from `Settings` — store, API state, HTTP server — binding
//! first so the real port is known (tests bind port 0), then runs until stopped.
//!
//! Shutdown is one signal fanned out: SIGTERM or SIGINT (or [`StopHandle::stop`]) marks the node
//! not-ready, stops accepting connections, lets in-flight requests finish within the
//! configured timeout, then closes the database pools.

use std::sync::Arc;

use actix_http::HttpService;
use actix_service::{IntoServiceFactory, ServiceFactoryExt, map_config};
use actix_web::dev::{AppConfig, Server, ServerHandle};
use actix_web::middleware::{Compress, NormalizePath, TrailingSlash};
use actix_web::{App, web};
use anyhow::Context;
use banter_api::{ApiConfig, ApiState, Limit, RateLimitConfig, request_id};
use banter_bus::{Bus, MemoryBus, RedisBus};
use banter_realtime::Hub;
use banter_store::{Store, StoreConfig};
use secrecy::{ExposeSecret, SecretString};

use crate::gateway::{ApiGateway, BusPublisher};
use crate::health::{self, Readiness};
use crate::settings::{Environment, NodeRole, Settings};

pub struct Application {
    port: u16,
    server: Server,
    store: Store,
    readiness: Arc<Readiness>,
    hub: Option<Hub>,
    drain_window: std::time::Duration,
    webhooks: Option<Arc<banter_api::webhooks::Dispatcher>>,
}

/// Stops a running application gracefully from elsewhere (tests, signal handlers).
#[derive(Clone)]
pub struct StopHandle {
    server: ServerHandle,
    readiness: Arc<Readiness>,
    hub: Option<Hub>,
    drain_window: std::time::Duration,
    webhooks: Option<Arc<banter_api::webhooks::Dispatcher>>,
}

impl StopHandle {
    /// Readiness false at once; sockets refused and the open ones closed in batches over the
    /// drain window (each after its in-flight posts); then the HTTP server stops, letting
    /// in-flight requests finish within the shutdown timeout.
    pub async fn stop(&self) {
        self.readiness.start_draining();
        metrics::gauge!(crate::metrics::DRAINING).set(1.0);
        if let Some(webhooks) = &self.webhooks {
            webhooks.stop();
        }
        if let Some(hub) = &self.hub {
            hub.drain(self.drain_window).await;
        }
        self.server.stop(true).await;
    }
}

pub fn store_config(settings: &Settings) -> StoreConfig {
    let mut config = StoreConfig::new(settings.database_url());
    config.replica_urls = settings.replica_urls();
    config.max_connections = settings.database_max_connections;
    config.acquire_timeout =
        std::time::Duration::from_millis(settings.database_acquire_timeout_ms.max(1));
    config.max_replica_lag = std::time::Duration::from_millis(settings.database_max_replica_lag_ms);
    config.replica_acquire_timeout =
        std::time::Duration::from_millis(settings.database_replica_acquire_timeout_ms.max(1));
    config.run_migrations = settings.migrate_on_start;
    config
}

fn api_config(settings: &Settings) -> anyhow::Result<ApiConfig> {
    let mut secrets = settings.jwt_secrets();
    if secrets.is_empty() {
        debug_assert_eq!(settings.env, Environment::Dev);
        tracing::warn!(
            "no BANTER_JWT_SECRET set: using a random one; tokens will not survive a restart"
        );
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        secrets.push(SecretString::from(hex::encode(bytes)));
    }
    let mut config = ApiConfig::new(secrets);
    config.access_token_ttl = std::time::Duration::from_secs(settings.access_token_ttl_secs);
    config.refresh_token_ttl = std::time::Duration::from_secs(settings.refresh_token_ttl_secs);
    config.refresh_reuse_grace = std::time::Duration::from_secs(settings.refresh_reuse_grace_secs);
    config.client_ip = settings.client_ip_rule();
    config.password_hashing = banter_api::HashLimits {
        max_in_flight: settings.password_hashes_in_flight.max(1),
        max_wait: std::time::Duration::from_millis(settings.password_hash_wait_ms),
    };
    // The demo videos are listed on `/` for everyone: nobody may register one as theirs.
    config.reserved_video_ids = settings.web_config().demo_videos;
    config.chat_rules_ttl = std::time::Duration::from_millis(settings.chat_rules_cache_ms);
    config.jwt_issuers = settings.jwt_issuers.clone();
    config.jwks = settings.jwks_policy();
    config.webhooks = settings.webhook_config();
    let login = settings.rate_login_per_minute;
    let comment = Limit::new(
        settings.rate_comment_per_minute,
        settings.rate_comment_burst,
    );
    config.rate_limits = RateLimitConfig {
        login_per_ip: Limit::new(login, login.div_ceil(3).max(1)),
        login_per_account: Limit::new(login.div_ceil(3).max(1), login.div_ceil(6).max(1)),
        register_per_ip: Limit::new(
            settings.rate_register_per_minute,
            settings.rate_register_per_minute.div_ceil(2).max(1),
        ),
        comment_per_user: comment,
        comment_per_device: comment,
    };
    Ok(config)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Install the metrics recorder before anything records.
        crate::metrics::handle();
        let store = Store::connect(&store_config(&settings))
            .await
            .context("connecting to the database")?;
        // Redis when configured (a Redis Cluster with sharded pub/sub, or one Redis), otherwise
        // the in-process bus (a single node).
        let cluster_nodes = settings.redis_cluster_nodes();
        let redis = if !cluster_nodes.is_empty() {
            Some(
                RedisBus::connect_cluster(&cluster_nodes, &settings.redis_prefix)
                    .await
                    .context("connecting to the Redis Cluster")?,
            )
        } else if let Some(url) = &settings.redis_url {
            Some(
                RedisBus::connect(url.expose_secret(), &settings.redis_prefix)
                    .await
                    .context("connecting to Redis")?,
            )
        } else {
            None
        };
        let redis = redis.map(Arc::new);
        let bus: Arc<dyn Bus> = match &redis {
            Some(redis) => redis.clone(),
            None => Arc::new(MemoryBus::new()),
        };
        let api = web::Data::new(ApiState::new(
            store.clone(),
            api_config(&settings)?,
            Arc::new(BusPublisher { bus: bus.clone() }),
        )?);
        api.external.warm_up();
        // Every API node dispatches event hooks (deliveries are claimed, so nodes share them).
        let webhooks = if settings.role.serves_api() {
            Some(Arc::new(banter_api::webhooks::Dispatcher::spawn(
                store.clone(),
                api.config.webhooks.clone(),
            )?))
        } else {
            None
        };
        let hub = settings.role.serves_realtime().then(|| {
            let gateway = Arc::new(ApiGateway {
                state: api.clone().into_inner(),
                public: Arc::new(crate::public_videos::PublicVideos::new(
                    std::time::Duration::from_millis(settings.ws_public_video_cache_ms),
                )),
                principals: Arc::new(crate::principals::Principals::new(
                    std::time::Duration::from_millis(settings.ws_principal_cache_ms),
                )),
            });
            web::Data::new(Hub::new(
                store.clone(),
                bus.clone(),
                gateway,
                settings.realtime_config(),
            ))
        });
        if hub.is_none() {
            // No hub registers for access changes here, yet this node's posts are checked
            // against cached chat rules, which every change (and a bus outage) must clear.
            let state = api.clone().into_inner();
            bus.set_access_handler(Arc::new(move |change: banter_core::AccessChange| {
                state.chat.forget(&change)
            }));
            let state = api.clone().into_inner();
            bus.set_reconnect_handler(Arc::new(move || state.chat.forget_all()));
        }
        let descriptors = crate::descriptor_limit::raise();
        let listener = crate::listener::bind(&settings.http_addr, settings.listen_backlog)?;
        let port = listener.local_addr()?.port();
        let readiness = Arc::new(Readiness::new(redis));
        let role = settings.role;
        let web_config =
            (settings.web_enabled && role.serves_realtime()).then(|| settings.web_config());
        let store_data = web::Data::new(store.clone());
        let hub_handle = hub.as_ref().map(|h| h.get_ref().clone());
        let readiness_data = web::Data::new(readiness.clone());
        let routes = web::Data::new(crate::methods::Routes::for_node(
            role.serves_api(),
            hub.is_some(),
            web_config.is_some(),
        ));
        let app = move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(crate::methods::head_as_get))
                .wrap(actix_web::middleware::from_fn(crate::metrics::record_http))
                .wrap(Compress::default())
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .wrap(request_id::RequestIds)
                .wrap(actix_web::middleware::from_fn(crate::telemetry::trace_http))
                .app_data(api.clone())
                .app_data(store_data.clone())
                .app_data(readiness_data.clone())
                .app_data(routes.clone())
                .service(health::healthz)
                .service(health::readyz)
                .service(crate::metrics::endpoint)
                .configure(|cfg| {
                    if role.serves_api() {
                        banter_api::configure(cfg);
                    }
                    if let Some(hub) = &hub {
                        cfg.app_data(hub.clone());
                        banter_realtime::configure(cfg);
                    }
                    if let Some(web) = &web_config {
                        banter_web::configure(cfg, web);
                    }
                })
                .default_service(web::to(crate::methods::unrouted))
        };
        // actix-web's `HttpServer` assembled by hand, to install actix-http's upgrade hook: a
        // WebSocket handshake is handed to `banter-realtime` with its connection, which then
        // owns the socket's I/O (see `banter_realtime::upgrade_service`). Same port, same
        // workers, same graceful shutdown.
        let addr = listener.local_addr()?;
        let builder = actix_server::Server::build();
        let graceful = builder.graceful_shutdown_signal();
        let sockets = hub_handle.clone();
        let server = builder
            .disable_signals()
            .shutdown_timeout(settings.shutdown_timeout().as_secs())
            .listen("banter-http", listener, move || {
                let graceful = graceful.clone();
                let app = app()
                    .into_factory()
                    .map_err(|err: actix_web::Error| err.error_response());
                HttpService::build()
                    // Small frames (an acknowledgement, one comment) go out at once instead of
                    // waiting for the peer's delayed ACK behind Nagle's algorithm (up to 40 ms).
                    .tcp_nodelay(true)
                    .graceful_shutdown_signal(move || {
                        let graceful = graceful.clone();
                        async move { graceful.notified().await }
                    })
                    .local_addr(addr)
                    .upgrade(banter_realtime::upgrade_service(sockets.clone()))
                    .finish(map_config(app, move |()| {
                        AppConfig::__priv_test_new(false, addr.to_string(), addr)
                    }))
                    .tcp()
            })?
            .run();
        tracing::info!(port, role = ?role, backend = ?store.backend(), descriptors, "banter listening");
        Ok(Self {
            port,
            server,
            store,
            readiness,
            hub: hub_handle,
            drain_window: settings.drain_window(),
            webhooks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            server: self.server.handle(),
            readiness: self.readiness.clone(),
            hub: self.hub.clone(),
            drain_window: self.drain_window,
            webhooks: self.webhooks.clone(),
        }
    }

    /// Serves until stopped through a [`StopHandle`].
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.store.close().await;
        result
    }

    /// Serves until SIGTERM or SIGINT, then drains as described in the module docs.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let stop = self.stop_handle();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received; draining");
            stop.stop().await;
        });
        self.run_until_stopped().await?;
        tracing::info!("stopped");
        Ok(())
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

impl NodeRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            NodeRole::All => "all",
            NodeRole::Api => "api",
            NodeRole::Realtime => "realtime",
        }
    }
}
