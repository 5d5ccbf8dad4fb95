//! The Prometheus metrics of the realtime path, recorded through the `metrics` facade (the
//! exporter and `/metrics` live in `banter-server`). Labels are bounded: close codes, refusal
//! kinds, join results; never a topic, video or user id.
//!
//! Kept out: HTTP, bus and database metrics (their own crates) and the exporter.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// Open WebSockets on this node (gauge).
pub const CONNECTIONS: &str = "banter_ws_connections";
/// Socket upgrades refused, by `reason` (origin, token, vsn, per_ip, draining) (counter).
pub const REFUSED: &str = "banter_ws_refused_total";
/// Sockets closed by the server, by close `code` (counter).
pub const CLOSES: &str = "banter_ws_closes_total";
/// Sockets closed because their outbound queue went over its budget (counter).
pub const SLOW_CONSUMERS: &str = "banter_ws_slow_consumer_disconnects_total";
/// Frames received from clients (counter).
pub const MESSAGES_IN: &str = "banter_ws_messages_in_total";
/// Frames written to clients (counter).
pub const MESSAGES_OUT: &str = "banter_ws_messages_out_total";

/// Channel joins by `result` (ok, error) (counter).
pub const JOINS: &str = "banter_channel_joins_total";
/// Channel leaves, including sockets that went away (counter).
pub const LEAVES: &str = "banter_channel_leaves_total";
/// Topics with a channel on this node (gauge).
pub const CHANNELS: &str = "banter_channels";
/// Database reads made for joins' history (a window miss), over all topics (counter). A storm
/// of rejoins to one topic costs one such read, not one per viewer.
pub const HISTORY_READS: &str = "banter_channel_history_reads_total";
/// Channels restarted after a panic (counter).
pub const CHANNEL_RESTARTS: &str = "banter_channel_restarts_total";
/// Viewers (joined sockets) on this node, summed over topics (gauge).
pub const VIEWERS: &str = "banter_viewers";
/// Time to offer one broadcast to every local subscriber of a topic (histogram, seconds).
pub const FANOUT: &str = "banter_fanout_duration_seconds";
/// Frames offered to subscribers by broadcasts (counter).
pub const FANOUT_DELIVERIES: &str = "banter_fanout_deliveries_total";
/// Access changes received from the bus (this node's own included) (counter).
pub const ACCESS_CHANGES: &str = "banter_access_changes_total";
/// Access taken away from open sockets, by `action` (`topic_closed`: a joined topic was
/// closed; `socket_closed`: the socket was closed with 4001/4002) (counter).
pub const ACCESS_REVOKED: &str = "banter_access_revoked_total";

/// Describes every series and registers it at zero (each label value that can occur, where the
/// labels are a fixed set), so dashboards and alerts see zeros from the start, not gaps.
pub fn describe() {
    for name in [
        ACCESS_CHANGES,
        SLOW_CONSUMERS,
        MESSAGES_IN,
        MESSAGES_OUT,
        LEAVES,
        FANOUT_DELIVERIES,
        CHANNEL_RESTARTS,
        HISTORY_READS,
        crate::rebalance::REBALANCED,
    ] {
        metrics::counter!(name).increment(0);
    }
    for action in ["topic_closed", "socket_closed"] {
        metrics::counter!(ACCESS_REVOKED, "action" => action).increment(0);
    }
    for reason in [
        "draining",
        "rebalancing",
        "vsn",
        "origin",
        "token",
        "anonymous",
        "per_ip",
    ] {
        metrics::counter!(REFUSED, "reason" => reason).increment(0);
    }
    use banter_protocol::reasons::close;
    for code in [
        close::IDLE,
        close::GOING_AWAY,
        close::PROTOCOL,
        close::POLICY,
        close::TOO_BIG,
        close::RESTART,
        close::SIGNED_OUT,
        close::TOKEN_EXPIRED,
    ] {
        metrics::counter!(CLOSES, "code" => code.to_string()).increment(0);
    }
    for result in ["ok", "error"] {
        metrics::counter!(JOINS, "result" => result).increment(0);
    }
    for name in [CONNECTIONS, CHANNELS, VIEWERS] {
        metrics::gauge!(name).increment(0.0);
    }
    let _ = metrics::histogram!(FANOUT);
    describe_counter!(ACCESS_CHANGES, "Access changes received from the bus.");
    describe_counter!(
        ACCESS_REVOKED,
        "Access taken away from open sockets, by action (topic_closed, socket_closed)."
    );
    describe_gauge!(CONNECTIONS, "Open WebSockets on this node.");
    describe_counter!(REFUSED, "Socket upgrades refused, by reason.");
    describe_counter!(CLOSES, "Sockets closed by the server, by close code.");
    describe_counter!(
        SLOW_CONSUMERS,
        "Sockets closed because their outbound queue went over its budget."
    );
    describe_counter!(MESSAGES_IN, "Frames received from clients.");
    describe_counter!(
        MESSAGES_OUT,
        "Frames sent to clients (queued for writing; broadcasts counted once per subscriber)."
    );
    describe_counter!(JOINS, "Channel joins, by result.");
    describe_counter!(
        CHANNEL_RESTARTS,
        "Channels restarted after a panic, resuming from the last seq sent."
    );
    describe_counter!(
        HISTORY_READS,
        "Database reads made for joins' history when the channel's window missed."
    );
    describe_counter!(LEAVES, "Channel leaves, including sockets that went away.");
    describe_gauge!(CHANNELS, "Topics with a channel on this node.");
    describe_gauge!(VIEWERS, "Joined viewers on this node, summed over topics.");
    describe_histogram!(
        FANOUT,
        Unit::Seconds,
        "Time to offer one broadcast to every local subscriber of its topic."
    );
    describe_counter!(
        FANOUT_DELIVERIES,
        "Frames offered to subscribers by broadcasts."
    );
}
