//! The bus that carries committed comment changes from the node that wrote them to every node
//! with viewers of that video.
//!
//! `bus.rs` holds the [`Bus`] trait and its event type; `memory.rs` the in-process bus for a
//! single node. The Redis implementation (cluster) sits beside them when it lands.
//!
//! Kept out: ordering repair and delivery to sockets (the realtime channel does that, using
//! `seq`), and anything about who may see what.

mod bus;
mod memory;

pub use bus::{Bus, BusEvent, BusHandler, ChangeKind};
pub use memory::MemoryBus;
