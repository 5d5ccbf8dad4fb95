//! Banter's domain: identifiers, validated values, roles and the entities the other crates
//! pass around.
//!
//! Everything here is pure: no I/O, no clocks read, no serialization. Values are parsed once at
//! the edge (a `parse` constructor returning a typed error) and trusted afterwards, so a
//! `CommentBody` in hand is always a valid comment body. Serde is deliberately absent: wire
//! formats live in `banter-api` and `banter-protocol`, which convert by hand.

mod access_change;
mod blocked_terms;
mod chat;
mod client_ip;
mod comment;
mod comment_body;
mod device;
mod email;
mod held_comment;
mod ids;
mod password;
mod role;
mod user;
mod username;
mod video;
mod video_id;

pub use access_change::AccessChange;
pub use blocked_terms::{
    BLOCKED_TERM_MAX_CHARS, BLOCKED_TERMS_MAX, BlockedTerm, BlockedTermError, fold_for_matching,
};
pub use chat::{
    BAN_MAX_SECONDS, BAN_MIN_SECONDS, BanDuration, BanDurationError, BlockedTermsAction,
    BlockedTermsActionError, ChatMode, ChatModeError, ChatRole, ChatRoleError, ChatSettings,
    MODERATION_REASON_MAX_CHARS, SLOW_MODE_MAX_SECONDS, SlowModeError,
};
pub use client_ip::ClientIpRule;
pub use comment::Comment;
pub use comment_body::{COMMENT_BODY_MAX_CHARS, CommentBody, CommentBodyError};
pub use device::{DEVICE_ID_MAX_LEN, Device, DeviceId, DeviceIdError};
pub use email::{EMAIL_MAX_LEN, Email, EmailError};
pub use held_comment::{HeldComment, PostOutcome};
pub use ids::{CommentId, UserId};
pub use password::{PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS, Password, PasswordError};
pub use role::{Role, RoleError};
pub use user::User;
pub use username::{USERNAME_MAX_LEN, USERNAME_MIN_LEN, Username, UsernameError};
pub use video::{Video, Visibility, VisibilityError};
pub use video_id::{VIDEO_ID_MAX_LEN, VideoId, VideoIdError};
