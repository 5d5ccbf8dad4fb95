//! HTTP handlers, one file per resource. Each handler parses its input into core types, calls
//! the store, and returns a DTO; policy shared with the realtime layer lives outside (`access`).

pub mod admin;
pub mod announcements;
pub mod api_keys;
pub mod auth;
pub mod bans;
pub mod blocked_terms;
pub mod chat;
pub mod comments;
pub mod held_comments;
pub mod me;
pub mod moderation_log;
pub mod moderators;
pub mod openapi;
pub mod videos;
pub mod webhooks;
