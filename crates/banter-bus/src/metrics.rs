//! The Prometheus metrics of the cluster bus, through the `metrics` facade. No labels beyond
//! the message kind: never a video id.
//!
//! Kept out: the exporter (`banter-server`).

use metrics::{Unit, describe_counter, describe_histogram};

/// Time for Redis to accept one PUBLISH (histogram, seconds).
pub const PUBLISH: &str = "banter_bus_publish_duration_seconds";
/// PUBLISH commands that failed (receivers repair from the database) (counter).
pub const PUBLISH_FAILURES: &str = "banter_bus_publish_failures_total";
/// Times the subscriber connection was lost and re-established (counter).
pub const RECONNECTS: &str = "banter_bus_reconnects_total";
/// Sharded subscriptions a Redis Cluster shard ended (a slot moved) that were made again
/// (counter).
pub const RESUBSCRIBES: &str = "banter_bus_resubscribes_total";
/// Messages received from other nodes, by `kind` (comment, presence, access) (counter).
pub const RECEIVED: &str = "banter_bus_messages_received_total";

/// Describes every series and registers it at zero (every `kind`), so dashboards see zeros.
pub fn describe() {
    for name in [PUBLISH_FAILURES, RECONNECTS, RESUBSCRIBES] {
        metrics::counter!(name).increment(0);
    }
    for kind in ["comment", "presence", "access"] {
        metrics::counter!(RECEIVED, "kind" => kind).increment(0);
    }
    let _ = metrics::histogram!(PUBLISH);
    describe_histogram!(
        PUBLISH,
        Unit::Seconds,
        "Time for Redis to accept one PUBLISH."
    );
    describe_counter!(PUBLISH_FAILURES, "PUBLISH commands that failed.");
    describe_counter!(RECONNECTS, "Times the bus subscriber connection was lost.");
    describe_counter!(
        RESUBSCRIBES,
        "Sharded subscriptions made again after a Redis Cluster slot moved."
    );
    describe_counter!(RECEIVED, "Bus messages received from other nodes, by kind.");
}
