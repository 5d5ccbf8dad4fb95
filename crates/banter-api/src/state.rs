//! `ApiState`: what every handler shares, and `ApiConfig`, how the API is tuned.

use std::sync::Arc;
use std::time::Duration;

use banter_core::ClientIpRule;
use banter_store::Store;
use secrecy::SecretString;

use crate::auth::{
    ExternalIssuers, HashLimits, IssuerConfig, JwksPolicy, JwtKeys, PasswordHasher, SuccessorKey,
};
use crate::chat_rules::ChatRules;
use crate::publish::CommentPublisher;
use crate::rate_limit::{RateLimitConfig, RateLimits};

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// JWT secrets; the first signs, all verify.
    pub jwt_secrets: Vec<SecretString>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// How long after a refresh token's use presenting it again returns its successor again
    /// instead of counting as reuse (two tabs refreshing at once).
    pub refresh_reuse_grace: Duration,
    pub rate_limits: RateLimitConfig,
    /// Where a request's client IP comes from (per-IP limits).
    pub client_ip: ClientIpRule,
    /// Bound on concurrent Argon2 work per node.
    pub password_hashing: HashLimits,
    /// Video ids nobody may register (the demo videos listed on `/`).
    pub reserved_video_ids: Vec<String>,
    /// How long a node keeps a video's chat rules (bans, settings, moderators) before reading
    /// them again; changes announced on the bus clear them at once (`chat_rules.rs`).
    pub chat_rules_ttl: Duration,
    /// External identity providers whose tokens are accepted (`auth/external.rs`).
    pub jwt_issuers: Vec<IssuerConfig>,
    /// How their key sets are cached and refreshed.
    pub jwks: JwksPolicy,
    /// Event hooks: configured subscriptions and how deliveries are made.
    pub webhooks: crate::webhooks::WebhookConfig,
}

impl ApiConfig {
    pub fn new(jwt_secrets: Vec<SecretString>) -> Self {
        Self {
            jwt_secrets,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_reuse_grace: Duration::from_secs(10),
            rate_limits: RateLimitConfig::default(),
            client_ip: ClientIpRule::Peer,
            password_hashing: HashLimits::default(),
            reserved_video_ids: Vec::new(),
            chat_rules_ttl: Duration::from_secs(5),
            jwt_issuers: Vec::new(),
            jwks: JwksPolicy::default(),
            webhooks: crate::webhooks::WebhookConfig::default(),
        }
    }
}

pub struct ApiState {
    pub store: Store,
    pub jwt: JwtKeys,
    /// External issuers' tokens: verification and their cached key sets.
    pub external: ExternalIssuers,
    pub passwords: PasswordHasher,
    /// Derives each rotated refresh token's successor.
    pub successors: SuccessorKey,
    pub limits: RateLimits,
    /// The chat rules every post is checked against, cached (`chat_rules.rs`).
    pub chat: ChatRules,
    pub publisher: Arc<dyn CommentPublisher>,
    pub config: ApiConfig,
}

impl ApiState {
    pub fn new(
        store: Store,
        config: ApiConfig,
        publisher: Arc<dyn CommentPublisher>,
    ) -> anyhow::Result<Self> {
        let first_secret = config
            .jwt_secrets
            .first()
            .ok_or_else(|| anyhow::anyhow!("at least one JWT secret is required"))?;
        Ok(Self {
            successors: SuccessorKey::new(first_secret),
            jwt: JwtKeys::new(&config.jwt_secrets, config.access_token_ttl)?,
            external: if config.jwt_issuers.is_empty() {
                ExternalIssuers::default()
            } else {
                ExternalIssuers::new(
                    &config.jwt_issuers,
                    &config.jwks,
                    &crate::outbound_client()?,
                )?
            },
            passwords: PasswordHasher::owasp(config.password_hashing)?,
            limits: RateLimits::new(&config.rate_limits),
            chat: ChatRules::new(config.chat_rules_ttl),
            store,
            publisher,
            config,
        })
    }
}
