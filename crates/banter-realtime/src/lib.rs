//! Phoenix Channels over WebSockets for live comments: the socket endpoint, one session per
//! connection, one channel per topic (`comments:<video_id>`) per node, and presence.
//!
//! - `upgrade.rs`: the HTTP upgrade at `/socket/websocket` (vsn, origin, token, per-IP limit),
//!   through actix-http's upgrade hook; it takes the connection's I/O after the 101.
//! - `conn.rs`: one connection's I/O: reads into a per-thread buffer, decodes with actix-http's
//!   WebSocket codec, writes everything queued with one vectored write.
//! - `outq.rs`: one socket's outbound queue with its byte budget and close request.
//! - `wire.rs`: whole outbound WebSocket frames; a broadcast is encoded once and shared.
//! - `session/`: one task per connection: dispatches Phoenix events, joins, posts, access.
//! - `registry.rs`: the node's open sockets, and the sweep for idle sockets and expired tokens.
//! - `channel_actor.rs`: the actix actor per topic: bounded mailbox, timers, supervision.
//! - `channel.rs`: what the actor runs, one message at a time; built from
//!   `sequence.rs` (the delivered `seq`, history window, gap repair from the database),
//!   `topic_presence.rs` (local and other nodes' presence, the viewer count) and `fanout.rs`
//!   (the topic's subscribers and the encode-once broadcast), with `shard.rs` (the offers to
//!   subscribers on other workers, made on those workers).
//! - `hub.rs`: the node's registry of channels, and the bus handler that feeds them.
//! - `presence.rs`: the per-topic member list and its diffs.
//! - `metrics.rs`: the Prometheus metric names this crate records, and their descriptions.
//! - `rebalance.rs`: node-load heartbeats, and shedding sockets above the cluster average.
//! - `gateway.rs`: what this crate needs from the rest of Banter (auth, access, posting),
//!   injected by `banter-server` so the REST rules are reused exactly.
//!
//! Channels are actix actors with bounded mailboxes, written to with `try_send` and an explicit
//! policy when full (stated in `channel_actor.rs`); sessions are tokio tasks on the HTTP
//! workers, fed by their `Outq`.

#[doc(hidden)]
pub mod bench;
mod budget;
mod channel;
mod channel_actor;
mod chat_state;
mod config;
mod conn;
mod fanout;
mod gateway;
mod hub;
pub mod metrics;
mod outq;
mod pace;
mod presence;
mod rebalance;
mod recheck;
mod registry;
mod sequence;
mod session;
mod shard;
mod topic_presence;
mod upgrade;
mod wire;

pub use config::{RealtimeConfig, RebalanceConfig};
pub use gateway::{Gateway, Refusal, Viewer};
pub use hub::Hub;
pub use upgrade::{configure, service as upgrade_service};
