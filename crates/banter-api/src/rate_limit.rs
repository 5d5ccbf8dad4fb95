//! Rate limits, per key (client IP, account, user, device), by `governor`'s GCRA. A refused
//! request gets 429 with `Retry-After`. Keyed state is pruned of idle keys every few thousand
//! checks, so memory stays bounded by the keys active within one replenish period.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::ApiError;

/// One limit: `per_minute` sustained, up to `burst` at once.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub per_minute: u32,
    pub burst: u32,
}

impl Limit {
    pub const fn new(per_minute: u32, burst: u32) -> Self {
        Self { per_minute, burst }
    }

    fn quota(&self) -> Quota {
        let per_minute = NonZeroU32::new(self.per_minute.max(1)).expect("non-zero");
        let burst = NonZeroU32::new(self.burst.max(1)).expect("non-zero");
        Quota::per_minute(per_minute).allow_burst(burst)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct RateLimitConfig {
    /// Login attempts per client IP.
    pub login_per_ip: Limit,
    /// Login attempts per account (login name), whatever the IP.
    pub login_per_account: Limit,
    /// Registrations per client IP.
    pub register_per_ip: Limit,
    /// Comments (REST and socket) per user.
    pub comment_per_user: Limit,
    /// Comments per device of a user.
    pub comment_per_device: Limit,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            login_per_ip: Limit::new(30, 10),
            login_per_account: Limit::new(10, 5),
            register_per_ip: Limit::new(10, 5),
            comment_per_user: Limit::new(60, 10),
            comment_per_device: Limit::new(30, 5),
        }
    }
}

pub struct Limiter {
    inner: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
    /// The `limit` label of `banter_rate_limited_total`.
    name: &'static str,
}

/// Every `limit` label of `RATE_LIMITED_METRIC`.
pub const RATE_LIMIT_NAMES: &[&str] = &[
    "login_per_ip",
    "login_per_account",
    "register_per_ip",
    "comment_per_user",
    "comment_per_device",
    "password_hashes_in_flight",
];

/// Requests refused by a rate limit, by `limit` (counter).
pub const RATE_LIMITED_METRIC: &str = "banter_rate_limited_total";

impl Limiter {
    fn new(name: &'static str, limit: Limit) -> Self {
        Self {
            inner: DefaultKeyedRateLimiter::keyed(limit.quota()),
            checks: AtomicU64::new(0),
            name,
        }
    }

    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.inner.retain_recent();
        }
        self.inner.check_key(&key.to_owned()).map_err(|not_until| {
            metrics::counter!(RATE_LIMITED_METRIC, "limit" => self.name).increment(1);
            let retry_after: Duration = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited { retry_after }
        })
    }
}

pub struct RateLimits {
    pub login_per_ip: Limiter,
    pub login_per_account: Limiter,
    pub register_per_ip: Limiter,
    pub comment_per_user: Limiter,
    pub comment_per_device: Limiter,
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            login_per_ip: Limiter::new("login_per_ip", config.login_per_ip),
            login_per_account: Limiter::new("login_per_account", config.login_per_account),
            register_per_ip: Limiter::new("register_per_ip", config.register_per_ip),
            comment_per_user: Limiter::new("comment_per_user", config.comment_per_user),
            comment_per_device: Limiter::new("comment_per_device", config.comment_per_device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_retry_time() {
        let limiter = Limiter::new("test", Limit::new(60, 3));
        for _ in 0..3 {
            limiter.check("k").unwrap();
        }
        match limiter.check("k") {
            Err(ApiError::RateLimited { retry_after }) => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1));
            }
            other => panic!("expected rate limiting, got {other:?}"),
        }
        limiter.check("other-key").unwrap();
    }
}
