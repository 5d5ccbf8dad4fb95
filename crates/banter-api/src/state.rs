//! `ApiState`: what every handler shares, and `ApiConfig`, how the API is tuned.

use std::sync::Arc;
use std::time::Duration;

use banter_store::Store;
use secrecy::SecretString;

use crate::auth::{JwtKeys, PasswordHasher};
use crate::publish::CommentPublisher;
use crate::rate_limit::{RateLimitConfig, RateLimits};

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// JWT secrets; the first signs, all verify.
    pub jwt_secrets: Vec<SecretString>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub rate_limits: RateLimitConfig,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted load balancer).
    pub trust_forwarded_for: bool,
}

impl ApiConfig {
    pub fn new(jwt_secrets: Vec<SecretString>) -> Self {
        Self {
            jwt_secrets,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            rate_limits: RateLimitConfig::default(),
            trust_forwarded_for: false,
        }
    }
}

pub struct ApiState {
    pub store: Store,
    pub jwt: JwtKeys,
    pub passwords: PasswordHasher,
    pub limits: RateLimits,
    pub publisher: Arc<dyn CommentPublisher>,
    pub config: ApiConfig,
}

impl ApiState {
    pub fn new(
        store: Store,
        config: ApiConfig,
        publisher: Arc<dyn CommentPublisher>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            jwt: JwtKeys::new(&config.jwt_secrets, config.access_token_ttl)?,
            passwords: PasswordHasher::owasp()?,
            limits: RateLimits::new(&config.rate_limits),
            store,
            publisher,
            config,
        })
    }
}
