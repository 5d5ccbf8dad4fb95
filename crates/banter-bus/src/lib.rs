//! The bus that carries committed comment changes from the node that wrote them to every node
//! with viewers of that video, and committed access changes to every node.
//!
//! `bus.rs` holds the [`Bus`] trait and its event type; `memory.rs` the in-process bus for a
//! single node; `redis.rs` the Redis pub/sub bus for clusters (one Redis, or a Redis Cluster
//! whose sharded subscriptions `sharded.rs` keeps alive), with `inbound.rs` its receiving side
//! and `wire.rs` its message form;
//! `metrics.rs` the Prometheus metric names the bus records; `trace.rs` carries a comment's
//! trace context with its event.
//!
//! Kept out: ordering repair and delivery to sockets (the realtime channel does that, using
//! `seq`), and the rules of who may see what (the bus only says that access changed).

mod bus;
mod inbound;
mod memory;
pub mod metrics;
mod redis;
mod sharded;
pub mod trace;
mod wire;

pub use bus::{
    AccessHandler, Bus, BusEvent, BusHandler, ChangeKind, NodeLoad, NodeLoadHandler,
    PresenceHandler, PresenceSnapshot, ReconnectHandler,
};
pub use memory::MemoryBus;
pub use redis::RedisBus;
