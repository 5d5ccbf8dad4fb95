//! Banter's domain: identifiers, validated values, roles and the entities the other crates
//! pass around.
//!
//! Everything here is pure: no I/O, no clocks read, no serialization. Values are parsed once at
//! the edge (a `parse` constructor returning a typed error) and trusted afterwards, so a
//! `CommentBody` in hand is always a valid comment body. Serde is deliberately absent: wire
//! formats live in `banter-api` and `banter-protocol`, which convert by hand.

mod access_change;
mod client_ip;
mod comment;
mod comment_body;
mod device;
mod email;
mod ids;
mod password;
mod role;
mod user;
mod username;
mod video;
mod video_id;

pub use access_change::AccessChange;
pub use client_ip::ClientIpRule;
pub use comment::Comment;
pub use comment_body::{CommentBody, CommentBodyError};
pub use device::{Device, DeviceId, DeviceIdError};
pub use email::{Email, EmailError};
pub use ids::{CommentId, UserId};
pub use password::{Password, PasswordError};
pub use role::{Role, RoleError};
pub use user::User;
pub use username::{Username, UsernameError};
pub use video::{Video, Visibility, VisibilityError};
pub use video_id::{VideoId, VideoIdError};
