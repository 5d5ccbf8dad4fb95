//! `Settings`: the server's configuration, in layers — built-in defaults, then an optional TOML
//! file, then `BANTER_*` environment variables (highest). Every option has a safe default, so
//! no configuration at all gives a single embedded node on 127.0.0.1:4000 with SQLite under
//! `./data`. The README's configuration table lists every option.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Which parts of Banter a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// REST API and WebSockets.
    All,
    /// REST API only (stateless).
    Api,
    /// WebSockets only.
    Realtime,
}

impl NodeRole {
    pub fn serves_api(&self) -> bool {
        matches!(self, NodeRole::All | NodeRole::Api)
    }

    pub fn serves_realtime(&self) -> bool {
        matches!(self, NodeRole::All | NodeRole::Realtime)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Development: a missing JWT secret is generated at start-up (tokens die with the process).
    Dev,
    /// Production: a JWT secret is required and logs default to JSON.
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    pub env: Environment,
    pub role: NodeRole,
    pub http_addr: String,
    /// Connections the kernel queues for the node before it accepts them (capped at
    /// `net.core.somaxconn`): a reconnect storm beyond it waits on SYN retransmissions.
    pub listen_backlog: u32,
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; default `sqlite://<data_dir>/banter.db`.
    pub database_url: Option<SecretString>,
    /// Comma-separated PostgreSQL replica URLs.
    pub database_replica_urls: Option<SecretString>,
    pub database_max_connections: u32,
    pub database_acquire_timeout_ms: u64,
    pub database_max_replica_lag_ms: u64,
    /// How long a read waits for a replica connection before going to the primary instead.
    pub database_replica_acquire_timeout_ms: u64,
    pub migrate_on_start: bool,
    pub redis_url: Option<SecretString>,
    /// Comma-separated seed nodes of a Redis Cluster (`redis://host:port`), for sharded pub/sub
    /// instead of the single `redis_url`.
    pub redis_cluster_urls: Option<SecretString>,
    /// Prefix of this deployment's Redis channels (several deployments may share a Redis).
    pub redis_prefix: String,
    /// Comma-separated JWT secrets: the first signs, all verify.
    pub jwt_secret: Option<SecretString>,
    pub access_token_ttl_secs: u64,
    /// External identity providers whose tokens are accepted: `[[jwt_issuers]]` tables in the
    /// file, or a JSON array in `BANTER_JWT_ISSUERS`.
    #[serde(deserialize_with = "list_or_json")]
    pub jwt_issuers: Vec<banter_api::IssuerConfig>,
    /// How long a key set without cache headers is kept.
    pub jwks_default_ttl_secs: u64,
    /// The shortest lifetime a key set's cache headers may give it.
    pub jwks_min_ttl_secs: u64,
    /// How long stale keys keep working while their provider cannot be reached.
    pub jwks_max_stale_secs: u64,
    /// The shortest time between two fetches of one key set for unknown key ids or failures.
    pub jwks_min_refresh_secs: u64,
    /// The deployment's event hooks: `[[webhooks]]` tables in the file, or a JSON array in
    /// `BANTER_WEBHOOKS`.
    #[serde(deserialize_with = "list_or_json")]
    pub webhooks: Vec<banter_api::webhooks::ConfiguredWebhook>,
    pub webhook_max_attempts: u32,
    pub webhook_timeout_ms: u64,
    pub webhook_backoff_base_ms: u64,
    pub webhook_backoff_max_secs: u64,
    pub webhook_concurrency: usize,
    pub webhook_poll_ms: u64,
    pub webhook_allow_private_targets: bool,
    pub refresh_token_ttl_secs: u64,
    /// Seconds after a refresh token's use in which presenting it again returns the same
    /// successor (two tabs refreshing at once) instead of revoking the session as reuse.
    pub refresh_reuse_grace_secs: u64,
    pub log_format: Option<LogFormat>,
    pub log_level: String,
    pub shutdown_timeout_secs: u64,
    /// On SIGTERM, open sockets are closed in batches spread over this many seconds.
    pub drain_window_secs: u64,
    /// The header the operator's load balancer sets to the client's address (e.g.
    /// `X-Forwarded-For`); empty: the TCP peer is the client.
    pub client_ip_header: String,
    /// How many proxies of the operator's append to `client_ip_header`; the client's address
    /// is that many entries from the right.
    pub trusted_proxy_hops: usize,
    /// Shorthand for `client_ip_header = "X-Forwarded-For"` (kept for older configurations).
    pub trust_forwarded_for: bool,
    /// Argon2 hashes a node runs at once; more wait up to `password_hash_wait_ms`, then 503.
    pub password_hashes_in_flight: usize,
    pub password_hash_wait_ms: u64,
    pub rate_login_per_minute: u32,
    pub rate_register_per_minute: u32,
    pub rate_comment_per_minute: u32,
    pub rate_comment_burst: u32,
    /// How long a node keeps a video's chat rules (bans, timeouts, settings, moderators)
    /// without reading them again; every change clears them on every node at once. 0: off.
    pub chat_rules_cache_ms: u64,
    /// Serve the video page (`/`, `/videos/{id}`, `/assets/…`) on nodes that serve sockets.
    pub web_enabled: bool,
    /// Comma-separated video ids listed on `/`.
    pub web_demo_videos: String,
    /// Viewers without a token may open sockets and watch.
    pub ws_allow_anonymous: bool,
    /// How long a video seen to be public is trusted for joins without a database read.
    pub ws_public_video_cache_ms: u64,
    /// How long a socket's session (user, device, session) read alive is trusted without a
    /// database read; an access change of the user clears it on every node. 0: off.
    pub ws_principal_cache_ms: u64,
    /// Comma-separated origins allowed to open sockets, or `*`; empty means same origin only.
    pub ws_allowed_origins: String,
    pub ws_max_connections_per_ip: usize,
    pub ws_max_channels_per_socket: usize,
    pub ws_max_messages_per_second: u32,
    pub ws_max_frame_bytes: usize,
    pub ws_idle_timeout_secs: u64,
    pub ws_outbox_capacity: usize,
    pub ws_outbox_bytes: usize,
    /// New comments per second one viewer of a topic is sent before the topic samples and
    /// marks the rest `comments_skipped`; 0 sends every comment.
    pub ws_max_comments_per_second_per_viewer: u32,
    /// The budget's slot: over the budget each viewer gets one write a slot (not zero).
    pub ws_budget_slot_ms: u64,
    /// With the budget on, a topic with this many viewers on the node holds its comments up to
    /// 10 ms so a flood's first ones go out together; 0: off.
    pub ws_big_topic_viewers: usize,
    /// Comment writes per second one viewer of a paced topic gets at most; 0: off.
    pub ws_max_writes_per_second_per_viewer: u32,
    /// Topics with this many viewers on the node are paced.
    pub ws_paced_topic_viewers: usize,
    pub presence_member_limit: usize,
    /// Seconds between a channel's re-reads of its tail (repairs lost bus messages).
    pub ws_repair_interval_secs: u64,
    /// Another node silent this long is dropped from counts and member lists.
    pub presence_node_timeout_secs: u64,
    /// Shed sockets when this node holds more than the cluster average × (1 + threshold).
    pub rebalance_enabled: bool,
    pub rebalance_threshold: f64,
    pub rebalance_max_per_second: usize,
    pub rebalance_min_excess: usize,
}

const DEFAULTS: &str = r#"
env = "dev"
role = "all"
http_addr = "127.0.0.1:4000"
listen_backlog = 4096
data_dir = "./data"
database_max_connections = 10
database_acquire_timeout_ms = 2000
database_max_replica_lag_ms = 5000
database_replica_acquire_timeout_ms = 500
migrate_on_start = true
redis_prefix = "banter"
access_token_ttl_secs = 900
jwt_issuers = []
jwks_default_ttl_secs = 300
jwks_min_ttl_secs = 30
jwks_max_stale_secs = 3600
jwks_min_refresh_secs = 30
webhooks = []
webhook_max_attempts = 8
webhook_timeout_ms = 5000
webhook_backoff_base_ms = 1000
webhook_backoff_max_secs = 3600
webhook_concurrency = 4
webhook_poll_ms = 250
webhook_allow_private_targets = false
refresh_token_ttl_secs = 2592000
refresh_reuse_grace_secs = 10
log_level = "info"
shutdown_timeout_secs = 30
drain_window_secs = 10
client_ip_header = ""
trusted_proxy_hops = 1
trust_forwarded_for = false
password_hashes_in_flight = 4
password_hash_wait_ms = 2000
rate_login_per_minute = 30
rate_register_per_minute = 10
rate_comment_per_minute = 60
rate_comment_burst = 10
chat_rules_cache_ms = 5000
web_enabled = true
web_demo_videos = "intro,launch-party,ask-me-anything"
ws_allow_anonymous = true
ws_public_video_cache_ms = 2000
ws_principal_cache_ms = 2000
ws_allowed_origins = ""
ws_max_connections_per_ip = 10000
ws_max_channels_per_socket = 100
ws_max_messages_per_second = 50
ws_max_frame_bytes = 65536
ws_idle_timeout_secs = 60
ws_outbox_capacity = 1024
ws_outbox_bytes = 1048576
ws_max_comments_per_second_per_viewer = 20
ws_budget_slot_ms = 250
ws_big_topic_viewers = 0
ws_max_writes_per_second_per_viewer = 5
ws_paced_topic_viewers = 1000
presence_member_limit = 1000
ws_repair_interval_secs = 5
presence_node_timeout_secs = 15
rebalance_enabled = true
rebalance_threshold = 0.2
rebalance_max_per_second = 2000
rebalance_min_excess = 100
"#;

/// The shortest JWT secret accepted, in any mode.
const MIN_JWT_SECRET_BYTES: usize = 32;

/// A list of tables from the file, or a JSON array from the environment (where TOML tables
/// cannot be written), read with the list's own field names and errors.
fn list_or_json<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    let value = serde_json::Value::deserialize(deserializer)?;
    let value = match value {
        serde_json::Value::String(s) if s.trim().is_empty() => return Ok(Vec::new()),
        serde_json::Value::String(s) => serde_json::from_str(&s)
            .map_err(|e| D::Error::custom(format!("not a JSON array: {e}")))?,
        other => other,
    };
    serde_json::from_value(value).map_err(D::Error::custom)
}

/// The non-empty, trimmed items of a comma-separated setting.
fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Settings {
    /// Loads from the process environment and an optional file.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_from(file, std::env::vars().collect())
    }

    /// Loads with an explicit environment map (tests).
    pub fn load_from(file: Option<&Path>, env: HashMap<String, String>) -> anyhow::Result<Self> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
        }
        let settings: Settings = builder
            .add_source(
                config::Environment::with_prefix("BANTER")
                    .try_parsing(true)
                    .source(Some(env)),
            )
            .build()
            .context("reading configuration")?
            .try_deserialize()
            .context("invalid configuration")?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        for hook in &self.webhooks {
            if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
                bail!("webhook '{}': url must be http(s)", hook.name);
            }
            if hook.events.is_empty()
                || !hook
                    .events
                    .iter()
                    .all(|e| banter_api::webhooks::valid_pattern(e))
            {
                bail!(
                    "webhook '{}': events must list comment.created, comment.updated, \
                     comment.deleted, comment.*, video.created, video.updated, video.*, \
                     moderation.*, moderation.<action> or *",
                    hook.name
                );
            }
            if hook.secret.len() < 16 {
                bail!(
                    "webhook '{}': the secret must be at least 16 characters",
                    hook.name
                );
            }
        }
        if self.redis_url.is_some() && self.redis_cluster_urls.is_some() {
            bail!(
                "set BANTER_REDIS_URL (one Redis) or BANTER_REDIS_CLUSTER_URLS (a Redis Cluster), \
                 not both"
            );
        }
        if !(1..=60_000).contains(&self.ws_budget_slot_ms) {
            bail!("BANTER_WS_BUDGET_SLOT_MS must be between 1 and 60000 (milliseconds)");
        }
        let policy = self.jwks_policy();
        if policy.min_ttl > policy.max_ttl {
            bail!(
                "BANTER_JWKS_MIN_TTL_SECS may be at most {} (a day)",
                policy.max_ttl.as_secs()
            );
        }
        let secrets = self.jwt_secrets();
        if self.env == Environment::Production && secrets.is_empty() {
            bail!("BANTER_JWT_SECRET is required when BANTER_ENV=production");
        }
        // In every mode: a short HMAC key can be brute-forced from one token.
        if secrets
            .iter()
            .any(|s| s.expose_secret().len() < MIN_JWT_SECRET_BYTES)
        {
            bail!(
                "every BANTER_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes long \
                 (generate one with `openssl rand -base64 48`)"
            );
        }
        Ok(())
    }

    /// The Redis Cluster seed nodes, if a cluster is configured.
    pub fn redis_cluster_nodes(&self) -> Vec<String> {
        self.redis_cluster_urls
            .as_ref()
            .map(|urls| {
                urls.expose_secret()
                    .split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("banter.db").display()),
        }
    }

    pub fn replica_urls(&self) -> Vec<String> {
        split_list(self.database_replica_urls.as_ref())
    }

    pub fn jwt_secrets(&self) -> Vec<SecretString> {
        split_list(self.jwt_secret.as_ref())
            .into_iter()
            .map(SecretString::from)
            .collect()
    }

    /// How external issuers' key sets are cached and refreshed.
    pub fn jwks_policy(&self) -> banter_api::JwksPolicy {
        let secs = Duration::from_secs;
        banter_api::JwksPolicy {
            default_ttl: secs(self.jwks_default_ttl_secs),
            min_ttl: secs(self.jwks_min_ttl_secs),
            max_stale: secs(self.jwks_max_stale_secs),
            min_refresh_interval: secs(self.jwks_min_refresh_secs),
            ..banter_api::JwksPolicy::default()
        }
    }

    /// How event hooks are delivered.
    pub fn webhook_config(&self) -> banter_api::webhooks::WebhookConfig {
        banter_api::webhooks::WebhookConfig {
            configured: self.webhooks.clone(),
            max_attempts: self.webhook_max_attempts.max(1),
            timeout: Duration::from_millis(self.webhook_timeout_ms.max(1)),
            backoff_base: Duration::from_millis(self.webhook_backoff_base_ms),
            backoff_max: Duration::from_secs(self.webhook_backoff_max_secs),
            concurrency: self.webhook_concurrency.max(1),
            poll_interval: Duration::from_millis(self.webhook_poll_ms.max(10)),
            allow_private_targets: self.webhook_allow_private_targets,
        }
    }

    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(match self.env {
            Environment::Dev => LogFormat::Text,
            Environment::Production => LogFormat::Json,
        })
    }

    /// Where a request's client IP comes from, for REST and sockets alike.
    pub fn client_ip_rule(&self) -> banter_core::ClientIpRule {
        let header = match self.client_ip_header.trim() {
            "" if self.trust_forwarded_for => "x-forwarded-for",
            header => header,
        };
        if header.is_empty() {
            return banter_core::ClientIpRule::Peer;
        }
        banter_core::ClientIpRule::Header {
            name: header.to_ascii_lowercase(),
            trusted_hops: self.trusted_proxy_hops.max(1),
        }
    }

    pub fn web_config(&self) -> banter_web::WebConfig {
        banter_web::WebConfig {
            demo_videos: comma_list(&self.web_demo_videos),
        }
    }

    pub fn realtime_config(&self) -> banter_realtime::RealtimeConfig {
        banter_realtime::RealtimeConfig {
            allow_anonymous: self.ws_allow_anonymous,
            client_ip: self.client_ip_rule(),
            allowed_origins: comma_list(&self.ws_allowed_origins),
            max_connections_per_ip: self.ws_max_connections_per_ip,
            max_channels_per_socket: self.ws_max_channels_per_socket,
            max_messages_per_second: self.ws_max_messages_per_second,
            max_frame_bytes: self.ws_max_frame_bytes,
            idle_timeout: Duration::from_secs(self.ws_idle_timeout_secs),
            outbox_capacity: self.ws_outbox_capacity,
            outbox_bytes: self.ws_outbox_bytes,
            max_comments_per_second_per_viewer: self.ws_max_comments_per_second_per_viewer,
            budget_slot: Duration::from_millis(self.ws_budget_slot_ms),
            big_topic_viewers: self.ws_big_topic_viewers,
            max_writes_per_second_per_viewer: self.ws_max_writes_per_second_per_viewer,
            paced_topic_viewers: self.ws_paced_topic_viewers,
            presence_member_limit: self.presence_member_limit,
            repair_interval: Duration::from_secs(self.ws_repair_interval_secs.max(1)),
            node_timeout: Duration::from_secs(self.presence_node_timeout_secs.max(1)),
            // Heartbeats at a fifth of the timeout, at most every 3 s.
            presence_heartbeat: Duration::from_secs(self.presence_node_timeout_secs.max(1))
                .div_f64(5.0)
                .min(Duration::from_secs(3)),
            rebalance: self
                .rebalance_enabled
                .then_some(banter_realtime::RebalanceConfig {
                    threshold: self.rebalance_threshold.max(0.0),
                    max_per_second: self.rebalance_max_per_second.max(1),
                    min_excess: self.rebalance_min_excess,
                }),
            ..Default::default()
        }
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    pub fn drain_window(&self) -> Duration {
        Duration::from_secs(self.drain_window_secs)
    }
}

fn split_list(value: Option<&SecretString>) -> Vec<String> {
    value
        .map(|v| {
            v.expose_secret()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_configuration_gives_the_embedded_single_node() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.http_addr, "127.0.0.1:4000");
        assert_eq!(s.role, NodeRole::All);
        assert_eq!(s.database_url(), "sqlite://./data/banter.db");
        assert!(s.replica_urls().is_empty());
    }

    #[test]
    fn the_environment_overrides_the_file_which_overrides_defaults() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "http_addr = \"0.0.0.0:5000\"\nrole = \"api\"\nlog_level = \"debug\""
        )
        .unwrap();
        let s = Settings::load_from(
            Some(file.path()),
            env(&[
                ("BANTER_ROLE", "realtime"),
                (
                    "BANTER_DATABASE_REPLICA_URLS",
                    "postgres://a/x, postgres://b/x",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(s.http_addr, "0.0.0.0:5000");
        assert_eq!(s.log_level, "debug");
        assert_eq!(s.role, NodeRole::Realtime);
        assert_eq!(s.replica_urls(), vec!["postgres://a/x", "postgres://b/x"]);
    }

    #[test]
    fn the_big_topic_hold_is_off_unless_set() {
        let off = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(off.realtime_config().big_topic_viewers, 0);
        let on =
            Settings::load_from(None, env(&[("BANTER_WS_BIG_TOPIC_VIEWERS", "1000")])).unwrap();
        assert_eq!(on.realtime_config().big_topic_viewers, 1000);
    }

    #[test]
    fn the_budget_slot_is_a_quarter_second_by_default_settable_and_never_zero() {
        let default = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(
            default.realtime_config().budget_slot,
            Duration::from_millis(250)
        );
        let set = Settings::load_from(None, env(&[("BANTER_WS_BUDGET_SLOT_MS", "500")])).unwrap();
        assert_eq!(
            set.realtime_config().budget_slot,
            Duration::from_millis(500)
        );
        let zero = Settings::load_from(None, env(&[("BANTER_WS_BUDGET_SLOT_MS", "0")]))
            .expect_err("a zero slot is refused");
        assert!(
            format!("{zero:#}").contains("BANTER_WS_BUDGET_SLOT_MS"),
            "{zero:#}"
        );
    }

    #[test]
    fn pacing_is_on_for_big_topics_by_default_and_can_be_turned_off() {
        let default = Settings::load_from(None, env(&[]))
            .unwrap()
            .realtime_config();
        assert_eq!(default.max_writes_per_second_per_viewer, 5);
        assert_eq!(default.paced_topic_viewers, 1000);
        let set = Settings::load_from(
            None,
            env(&[
                ("BANTER_WS_MAX_WRITES_PER_SECOND_PER_VIEWER", "0"),
                ("BANTER_WS_PACED_TOPIC_VIEWERS", "50"),
            ]),
        )
        .unwrap()
        .realtime_config();
        assert_eq!(set.max_writes_per_second_per_viewer, 0);
        assert_eq!(set.paced_topic_viewers, 50);
    }

    #[test]
    fn production_refuses_to_start_without_a_strong_jwt_secret() {
        assert!(Settings::load_from(None, env(&[("BANTER_ENV", "production")])).is_err());
        assert!(
            Settings::load_from(
                None,
                env(&[("BANTER_ENV", "production"), ("BANTER_JWT_SECRET", "short")])
            )
            .is_err()
        );
        let s = Settings::load_from(
            None,
            env(&[
                ("BANTER_ENV", "production"),
                ("BANTER_JWT_SECRET", &"n".repeat(32)),
            ]),
        )
        .unwrap();
        assert_eq!(s.log_format(), LogFormat::Json);
    }

    #[test]
    fn a_redis_cluster_is_listed_by_its_seeds_and_excludes_a_single_redis() {
        let s = Settings::load_from(
            None,
            env(&[(
                "BANTER_REDIS_CLUSTER_URLS",
                "redis://10.0.0.1:7000/, redis://10.0.0.2:7000/,",
            )]),
        )
        .unwrap();
        assert_eq!(
            s.redis_cluster_nodes(),
            vec!["redis://10.0.0.1:7000/", "redis://10.0.0.2:7000/"]
        );
        assert!(
            Settings::load_from(None, env(&[]))
                .unwrap()
                .redis_cluster_nodes()
                .is_empty()
        );
        let err = Settings::load_from(
            None,
            env(&[
                ("BANTER_REDIS_URL", "redis://10.0.0.9:6379/"),
                ("BANTER_REDIS_CLUSTER_URLS", "redis://10.0.0.1:7000/"),
            ]),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("not both"), "{err:#}");
    }

    #[test]
    fn a_short_jwt_secret_is_refused_in_dev_mode_too() {
        let err = Settings::load_from(None, env(&[("BANTER_JWT_SECRET", "abc")])).unwrap_err();
        assert!(format!("{err:#}").contains("at least 32 bytes"), "{err:#}");
        let err = Settings::load_from(
            None,
            env(&[("BANTER_JWT_SECRET", &format!("{},short", "k".repeat(32)))]),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("at least 32 bytes"), "{err:#}");
        assert!(Settings::load_from(None, env(&[("BANTER_JWT_SECRET", &"k".repeat(32))])).is_ok());
    }

    #[test]
    fn the_client_ip_comes_from_the_configured_header_only() {
        use banter_core::ClientIpRule;
        let rule = |pairs: &[(&str, &str)]| {
            Settings::load_from(None, env(pairs))
                .unwrap()
                .client_ip_rule()
        };
        assert_eq!(rule(&[]), ClientIpRule::Peer);
        let xff = ClientIpRule::Header {
            name: "x-forwarded-for".into(),
            trusted_hops: 1,
        };
        assert_eq!(rule(&[("BANTER_TRUST_FORWARDED_FOR", "true")]), xff);
        assert_eq!(
            rule(&[
                ("BANTER_CLIENT_IP_HEADER", "X-Real-IP"),
                ("BANTER_TRUSTED_PROXY_HOPS", "2")
            ]),
            ClientIpRule::Header {
                name: "x-real-ip".into(),
                trusted_hops: 2
            }
        );
    }

    #[test]
    fn external_issuers_come_from_file_tables_or_a_json_environment_variable() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "[[jwt_issuers]]\nname = \"auth0\"\nissuer = \"https://x.auth0.com/\"\n\
             audience = [\"banter\"]\njwks_url = \"https://x.auth0.com/.well-known/jwks.json\"\n\
             roles_claim = \"https://banter/roles\""
        )
        .unwrap();
        let s = Settings::load_from(Some(file.path()), env(&[])).unwrap();
        assert_eq!(s.jwt_issuers.len(), 1);
        assert_eq!(s.jwt_issuers[0].name, "auth0");
        assert_eq!(s.jwt_issuers[0].algorithms, ["RS256"]);
        assert_eq!(s.jwt_issuers[0].subject_claim, "sub");
        assert_eq!(
            s.jwt_issuers[0].roles_claim.as_deref(),
            Some("https://banter/roles")
        );
        let json = r#"[{"name":"fb","issuer":"https://securetoken.google.com/p","audience":["p"],
            "jwks_url":"https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"}]"#;
        let s = Settings::load_from(None, env(&[("BANTER_JWT_ISSUERS", json)])).unwrap();
        assert_eq!(s.jwt_issuers[0].audience, ["p"]);
        assert!(
            Settings::load_from(None, env(&[]))
                .unwrap()
                .jwt_issuers
                .is_empty()
        );
        for (bad, says) in [
            ("[{\"name\":", "not a JSON array"),
            (
                r#"[{"name":"a","issuer":"i","audience":["x"],"jwks_url":"https://k","colour":1}]"#,
                "colour",
            ),
        ] {
            let err = Settings::load_from(None, env(&[("BANTER_JWT_ISSUERS", bad)])).unwrap_err();
            assert!(format!("{err:#}").contains(says), "{err:#}");
        }
    }

    #[test]
    fn an_unknown_role_is_a_clear_error() {
        let err = Settings::load_from(None, env(&[("BANTER_ROLE", "boss")])).unwrap_err();
        assert!(format!("{err:#}").contains("role"), "{err:#}");
    }

    #[test]
    fn secrets_do_not_appear_in_debug_output() {
        let s = Settings::load_from(
            None,
            env(&[("BANTER_JWT_SECRET", &"super-secret-value".repeat(2))]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("super-secret-value"));
    }
}
