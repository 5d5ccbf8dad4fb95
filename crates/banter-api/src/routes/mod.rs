//! HTTP handlers, one file per resource. Each handler parses its input into core types, calls
//! the store, and returns a DTO; policy shared with the realtime layer lives outside (`access`).

pub mod admin;
pub mod auth;
pub mod comments;
pub mod me;
pub mod openapi;
pub mod videos;
