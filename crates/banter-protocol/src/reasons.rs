//! The registries of what the server tells a client when it refuses something: channel error
//! reasons (in `{"status":"error","response":{"reason":…}}`) and socket close codes. Clients
//! branch on these, so they are stable.
//!
//! Close codes tell the client whether to come back: 1001 and 1012 mean "reconnect" (every
//! 1.8.x client does), 1008/1009 mean the client broke a rule (it reconnects on its backoff, and
//! the reason says what to fix).

/// Join of a topic no channel handles, or a message to a topic not joined on this socket.
pub const UNMATCHED_TOPIC: &str = "unmatched topic";
/// More channels joined on one socket than allowed.
pub const TOO_MANY_CHANNELS: &str = "too many channels joined";
pub const UNAUTHORIZED: &str = "unauthorized";
pub const PRIVATE_VIDEO: &str = "private video";
pub const INVALID_VIDEO_ID: &str = "invalid video id";
pub const INVALID_PAYLOAD: &str = "invalid payload";
pub const UNKNOWN_EVENT: &str = "unknown event";
pub const RATE_LIMITED: &str = "rate_limited";
pub const TOO_MANY_MESSAGES: &str = "too many messages";
pub const UNAVAILABLE: &str = "unavailable";

/// Socket close codes.
pub mod close {
    /// Going away: reconnect (to another node if this one is leaving).
    pub const GOING_AWAY: u16 = 1001;
    /// Policy violation: a flood or a slow consumer. Reconnects after backoff.
    pub const POLICY: u16 = 1008;
    /// A frame larger than allowed.
    pub const TOO_BIG: u16 = 1009;
    /// Service restart or drain: reconnect elsewhere.
    pub const RESTART: u16 = 1012;
    /// A frame that is not a Phoenix message at all.
    pub const PROTOCOL: u16 = 1002;
    /// Idle for too long without any frame.
    pub const IDLE: u16 = 1000;
}
