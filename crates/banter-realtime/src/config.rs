//! `RealtimeConfig`: limits and policies of the socket layer.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct RealtimeConfig {
    /// Let viewers without a token connect and watch (posting always needs one).
    pub allow_anonymous: bool,
    /// Origins allowed to open sockets (`https://example.com`), or `*` for any. Empty: only
    /// the server's own host (same origin). Requests without `Origin` (non-browsers) pass.
    pub allowed_origins: Vec<String>,
    /// Largest inbound frame, bytes; bigger frames close the socket with 1009.
    pub max_frame_bytes: usize,
    /// Channels one socket may join (Phoenix's default is 100).
    pub max_channels_per_socket: usize,
    /// Client messages per second per socket; above it messages get an error reply, and at
    /// four times it the socket is closed with 1008.
    pub max_messages_per_second: u32,
    /// Open sockets per client IP.
    pub max_connections_per_ip: usize,
    /// Which address is the client's, for `max_connections_per_ip` (the same rule as REST's).
    pub client_ip: banter_core::ClientIpRule,
    /// A socket with no inbound frame for this long is closed (Phoenix: 60 s).
    pub idle_timeout: Duration,
    /// Frames queued for one socket and not yet written; above it the socket is closed as a
    /// slow consumer.
    pub outbox_capacity: usize,
    /// Bytes queued for one socket and not yet taken by the kernel; above it the socket is
    /// closed as a slow consumer.
    pub outbox_bytes: usize,
    /// Messages queued for one channel; when full, joins are refused with `unavailable` and
    /// bus events are dropped (and later repaired from the database by `seq`).
    pub channel_mailbox: usize,
    /// Above this many signed-in members a topic sends only the count, not member lists.
    pub presence_member_limit: usize,
    /// Comments in a join reply without `since_seq`.
    pub history_page: usize,
    /// Recent comments a channel keeps for recovery without a database read.
    pub recovery_window: usize,
    /// The most comments a `since_seq` join recovers; further back it answers
    /// `recovered: false` with the latest page.
    pub max_recovery: usize,
    /// New comments per second one viewer of a topic is sent; above it a topic sends the same
    /// sample to everyone and `comments_skipped` markers for the rest (`budget.rs`). 0: off.
    pub max_comments_per_second_per_viewer: u32,
    /// The budget's unit of time (`budget.rs`): over the budget each slot's first
    /// `budget × slot` comments (by commit time) are the sample, and each viewer gets them in
    /// one write. Longer: fewer writes per viewer a second (the node's cost) but more comments
    /// in each; shorter: the sample spread more evenly and sooner. Every node must use the
    /// same, for the same sample. Not zero.
    pub budget_slot: Duration,
    /// With the budget on, a topic with at least this many viewers on this node holds even the
    /// comments under its budget for up to 10 ms (`channel::FIRST_HOLD`), so that each viewer
    /// gets a flood's first slot in one write instead of one write per comment. 0 (the
    /// default): off, every comment under the budget is sent at once.
    pub big_topic_viewers: usize,
    /// Writes of comment events per second one viewer of a paced topic gets at most: a comment
    /// that comes sooner than `1 / this` after the topic's last write to everyone waits for that
    /// moment and goes in one write with whatever came meanwhile (`channel::Channel::paced_until`).
    /// 0: off.
    pub max_writes_per_second_per_viewer: u32,
    /// Topics with at least this many viewers on this node are paced (see
    /// `max_writes_per_second_per_viewer`); smaller ones send every comment at once.
    pub paced_topic_viewers: usize,
    /// Minimum interval between `viewer_count` broadcasts of one topic: the tick at which a
    /// moved count is noticed. It then rides with the topic's next broadcast, or goes alone at
    /// the next tick.
    pub viewer_count_interval: Duration,
    /// How often a channel re-reads its tail from the database, to deliver comments whose bus
    /// messages were lost (a Redis outage, a subscription not yet active) even when no later
    /// comment reveals the gap.
    pub repair_interval: Duration,
    /// A node re-announces its presence in each topic at least this often, even unchanged.
    pub presence_heartbeat: Duration,
    /// Another node silent for this long is dropped from every count and member list.
    pub node_timeout: Duration,
    /// Shedding of sockets when this node holds well above the cluster's average; `None`: off.
    pub rebalance: Option<RebalanceConfig>,
}

/// When and how fast an overloaded node sheds sockets (see `rebalance.rs`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RebalanceConfig {
    /// Shed when holding more than the average × (1 + threshold), e.g. 0.2.
    pub threshold: f64,
    /// At most this many sockets closed per second.
    pub max_per_second: usize,
    /// Never shed fewer: below this many sockets above the average a move is not worth it.
    pub min_excess: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            allow_anonymous: true,
            allowed_origins: Vec::new(),
            max_frame_bytes: 64 * 1024,
            max_channels_per_socket: 100,
            max_messages_per_second: 50,
            max_connections_per_ip: 10_000,
            client_ip: banter_core::ClientIpRule::Peer,
            idle_timeout: Duration::from_secs(60),
            outbox_capacity: 1024,
            outbox_bytes: 1 << 20,
            channel_mailbox: 8192,
            presence_member_limit: 1000,
            history_page: 50,
            recovery_window: 1000,
            max_recovery: 1000,
            max_comments_per_second_per_viewer: 20,
            budget_slot: Duration::from_millis(250),
            big_topic_viewers: 0,
            max_writes_per_second_per_viewer: 5,
            paced_topic_viewers: 1000,
            viewer_count_interval: Duration::from_secs(1),
            repair_interval: Duration::from_secs(5),
            presence_heartbeat: Duration::from_secs(3),
            node_timeout: Duration::from_secs(15),
            rebalance: None,
        }
    }
}
