//! Event hooks: other services hear about comments, moderation and videos. A change writes its
//! event to the outbox in its own transaction (`banter-store`'s `webhooks.rs`); the
//! [`Dispatcher`] on every API node moves events into deliveries and posts them, signed
//! (`signature.rs`), at least once, in order per video and subscription, retrying with
//! exponential backoff and jitter until `max_attempts`, then dead (listed and replayable over
//! REST, `routes/webhooks.rs`).
//!
//! Kept out: the SQL (the store) and the REST resource (`routes/webhooks.rs`).

mod dispatcher;
mod signature;

use std::time::Duration;

use serde::Deserialize;

pub use dispatcher::Dispatcher;
pub(crate) use dispatcher::now_ms;
pub use signature::{new_secret, sign};

/// The event names a subscription may ask for (and `family.*`, `*`).
pub const EVENT_NAMES: &[&str] = &[
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "moderation.*",
    "video.created",
    "video.updated",
];

/// A deployment's subscription, from configuration (`[[webhooks]]` or `BANTER_WEBHOOKS`): it
/// hears every event, whoever owns the video.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredWebhook {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
}

/// How events are delivered.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub configured: Vec<ConfiguredWebhook>,
    /// Attempts before a delivery is dead.
    pub max_attempts: u32,
    /// One attempt's limit (connect, send, answer).
    pub timeout: Duration,
    /// The wait after the first failure; doubled after each (with jitter), up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Deliveries in flight at once per subscription, per node.
    pub concurrency: usize,
    /// How often a node looks for events and due deliveries.
    pub poll_interval: Duration,
    /// Owners' subscriptions may target loopback and private addresses (tests, private
    /// deployments); configured ones always may.
    pub allow_private_targets: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            configured: Vec::new(),
            max_attempts: 8,
            timeout: Duration::from_secs(5),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3600),
            concurrency: 4,
            poll_interval: Duration::from_millis(250),
            allow_private_targets: false,
        }
    }
}

/// Whether an event pattern is one a subscription may ask for.
pub fn valid_pattern(pattern: &str) -> bool {
    pattern == "*"
        || EVENT_NAMES.contains(&pattern)
        || ["comment.*", "moderation.*", "video.*"].contains(&pattern)
        || pattern.strip_prefix("moderation.").is_some_and(|action| {
            !action.is_empty() && action.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::valid_pattern;

    #[test]
    fn patterns_name_known_events() {
        for ok in [
            "*",
            "video.*",
            "video.updated",
            "comment.created",
            "comment.*",
            "moderation.*",
            "moderation.ban",
        ] {
            assert!(valid_pattern(ok), "{ok}");
        }
        for bad in [
            "",
            "video.deleted",
            "comment",
            "comment.posted",
            "video.*x",
            "moderation.",
            "Moderation.ban",
            "**",
        ] {
            assert!(!valid_pattern(bad), "{bad}");
        }
    }
}
