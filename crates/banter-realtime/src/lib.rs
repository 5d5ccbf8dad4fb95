//! Phoenix Channels over WebSockets for live comments: the socket endpoint, one session per
//! connection, one channel per topic (`comments:<video_id>`) per node, and presence.
//!
//! - `socket.rs`: the HTTP upgrade at `/socket/websocket` (vsn, origin, token, per-IP limit).
//! - `session.rs`: one task per connection: decodes frames, dispatches events, writes frames.
//! - `channel.rs`: one task per topic: membership, history window, `seq`-ordered delivery with
//!   gap repair from the database, presence and the viewer count.
//! - `hub.rs`: the node's registry of channels, and the bus handler that feeds them.
//! - `outbox.rs`: the bounded per-connection queue and the shared, encode-once broadcast frame.
//! - `presence.rs`: the per-topic member list and its diffs.
//! - `metrics.rs`: the Prometheus metric names this crate records, and their descriptions.
//! - `rebalance.rs`: node-load heartbeats, and shedding sockets above the cluster average.
//! - `gateway.rs`: what this crate needs from the rest of Banter (auth, access, posting),
//!   injected by `banter-server` so the REST rules are reused exactly.
//!
//! Actors here are tokio tasks with bounded mailboxes, written to with `try_send` and an
//! explicit policy when full (stated where each queue is defined).

#[doc(hidden)]
pub mod bench;
mod channel;
mod config;
mod gateway;
mod hub;
pub mod metrics;
mod outbox;
mod presence;
mod rebalance;
mod recheck;
mod session;
mod socket;

pub use config::{RealtimeConfig, RebalanceConfig};
pub use gateway::{Gateway, Refusal, Viewer};
pub use hub::Hub;
pub use socket::configure;
