//! The registries of what the server tells a client when it refuses something: channel error
//! reasons (in `{"status":"error","response":{"reason":…}}`) and socket close codes. Clients
//! branch on these, so they are stable.
//!
//! Close codes tell the client whether to come back: 1001 and 1012 mean "reconnect" (every
//! 1.8.x client does), 1008/1009 mean the client broke a rule (it reconnects on its backoff, and
//! the reason says what to fix). 4001 and 4002 are about the socket's sign-in: the client must
//! sign in again (4001) or refresh its access token (4002) before it reconnects, or it will be
//! refused (403) on the upgrade.

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
/// An in-band `access_token` for another account than the socket's.
pub const WRONG_ACCOUNT: &str = "wrong account";

/// Socket close codes.
pub mod close {
    /// Going away: reconnect (to another node if this one is leaving).
    pub const GOING_AWAY: u16 = 1001;
    /// Policy violation: a flood or a slow consumer. Reconnects after backoff.
    pub const POLICY: u16 = 1008;
    /// A text frame that is not UTF-8 (RFC 6455 §8.1).
    pub const INVALID_DATA: u16 = 1007;
    /// A frame larger than allowed.
    pub const TOO_BIG: u16 = 1009;
    /// Service restart or drain: reconnect elsewhere.
    pub const RESTART: u16 = 1012;
    /// A frame that is not a Phoenix message at all.
    pub const PROTOCOL: u16 = 1002;
    /// Idle for too long without any frame.
    pub const IDLE: u16 = 1000;
    /// The socket's sign-in ended: the account was deactivated, the device revoked, the session
    /// signed out or ended by a password change. Sign in again; reconnecting with the same
    /// token is refused.
    pub const SIGNED_OUT: u16 = 4001;
    /// The socket's access token expired and no fresh one was sent in-band (`access_token`).
    /// Refresh it, then reconnect.
    pub const TOKEN_EXPIRED: u16 = 4002;
}
