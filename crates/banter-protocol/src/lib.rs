//! The Phoenix Channels wire protocol as the `phoenix` 1.8 JS client speaks it, and Banter's
//! event payloads on top of it.
//!
//! - `message`: the decoded client frame and the serializer version (`vsn`).
//! - `decode`: client frames to [`Message`] (V2 JSON text, V2 binary, V1 JSON), total on any
//!   input: every malformed frame is a [`DecodeError`], never a panic.
//! - `encode`: server frames (replies, pushes, broadcasts) for each version.
//! - `payloads`: the JSON of comments and presence as clients see it.
//! - `reasons`: the registries of channel error reasons and socket close codes.
//!
//! Kept out: any I/O, sockets, timers, and the rules of who may join what.

mod decode;
mod encode;
mod message;
pub mod payloads;
pub mod reasons;

pub use decode::{DecodeError, decode_binary, decode_text};
pub use encode::{Frame, encode_broadcast, encode_push, encode_reply, encode_reply_binary};
pub use message::{Message, Payload, Vsn};

/// The reserved topic of socket-level messages (heartbeats).
pub const PHOENIX_TOPIC: &str = "phoenix";

pub mod events {
    //! Event names on the wire.
    pub const JOIN: &str = "phx_join";
    pub const LEAVE: &str = "phx_leave";
    pub const REPLY: &str = "phx_reply";
    pub const CLOSE: &str = "phx_close";
    pub const ERROR: &str = "phx_error";
    pub const HEARTBEAT: &str = "heartbeat";
    pub const PRESENCE_STATE: &str = "presence_state";
    pub const PRESENCE_DIFF: &str = "presence_diff";
    pub const NEW_COMMENT: &str = "new_comment";
    pub const COMMENT_CREATED: &str = "comment_created";
    pub const COMMENT_UPDATED: &str = "comment_updated";
    pub const COMMENT_DELETED: &str = "comment_deleted";
    /// `{from_seq, to_seq, count}`: comments of a very hot video this viewer was not sent
    /// (the per-viewer delivery budget); they can be paged from REST.
    pub const COMMENTS_SKIPPED: &str = "comments_skipped";
    pub const VIEWER_COUNT: &str = "viewer_count";
    /// `{slow_mode_seconds, chat_mode}`: the chat's settings changed (also in the join reply as
    /// `chat_settings`).
    pub const CHAT_SETTINGS: &str = "chat_settings";
    /// `{comment}`: a comment was pinned above the chat (also in the join reply as
    /// `pinned_comment`).
    pub const COMMENT_PINNED: &str = "comment_pinned";
    /// `{comment_id}`: the pinned comment was unpinned (or deleted).
    pub const COMMENT_UNPINNED: &str = "comment_unpinned";
    /// Client → server on the `phoenix` topic: `{"token": "<fresh access token>"}` replaces the
    /// socket's token in place (same account), so it does not close when the old one expires.
    pub const ACCESS_TOKEN: &str = "access_token";
}
