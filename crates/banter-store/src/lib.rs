//! Banter's persistence: PostgreSQL (one primary, any number of streaming read replicas) or an
//! embedded SQLite file, behind one API.
//!
//! The choice of server for each query is made by type, so it is visible at the call site:
//!
//! - [`PrimaryPool`] runs every write, and every read that must see the caller's own writes.
//! - [`ReadPool`] runs possibly-stale reads: round-robin over healthy replicas, skipping any that
//!   lag more than the configured bound, and falling back to the primary when none is healthy or
//!   a replica read fails.
//!
//! Both backends run the same SQL text (sqlx accepts `$N` placeholders on SQLite too), each
//! monomorphised by the `on_pool!` macro, and one contract test suite covers both.
//! Migrations are embedded from `migrations/{postgres,sqlite}` at the workspace root.
//!
//! Kept out: HTTP, auth policy, validation (the `banter-core` types arrive already valid).

mod api_keys;
mod backend;
mod blocked_terms;
mod comments;
mod config;
mod devices;
mod error;
mod external_identities;
mod group_commit;
mod moderation;
mod primary;
mod router;
mod session_reads;
mod store;
mod tokens;
mod users;
mod videos;
mod webhooks;

pub use api_keys::{ApiKey, NewApiKey};
pub use comments::CommentPage;
pub use config::StoreConfig;
pub use error::StoreError;
pub use external_identities::NO_PASSWORD;
pub use group_commit::{GroupCommitStats, MAX_BATCH, MAX_QUEUED, MAX_WAIT};
pub use moderation::{Ban, BanScope, LogEntry, NewLogEntry};
pub use primary::PrimaryPool;
pub use router::{PoolUsage, ReadPool, ReadStats};
pub use session_reads::SessionReadStats;
pub use store::{Backend, Store};
pub use tokens::{NewRefreshToken, RotateOutcome};
pub use users::{NewUser, ProfileChanges};
pub use webhooks::{
    Delivery, NewSubscription, OutboxStats, Subscription, comment_event_data, event_matches,
};
