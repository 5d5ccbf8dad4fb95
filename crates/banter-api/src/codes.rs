//! The stable error codes of the HTTP API. Clients branch on these strings, so they never change
//! meaning; add new ones rather than reuse.

pub const MALFORMED_JSON: &str = "malformed_json";
pub const INVALID_REQUEST: &str = "invalid_request";
pub const INVALID_FIELD: &str = "invalid_field";
pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";

pub const COMMENT_EMPTY: &str = "comment_empty";
pub const COMMENT_TOO_LONG: &str = "comment_too_long";
pub const COMMENT_CONTROL_CHARACTER: &str = "comment_control_character";
pub const INVALID_VIDEO_ID: &str = "invalid_video_id";
pub const INVALID_USERNAME: &str = "invalid_username";
pub const INVALID_EMAIL: &str = "invalid_email";
pub const INVALID_PASSWORD: &str = "invalid_password";
pub const INVALID_DEVICE_ID: &str = "invalid_device_id";
pub const INVALID_ROLE: &str = "invalid_role";
pub const INVALID_VISIBILITY: &str = "invalid_visibility";

pub const UNAUTHENTICATED: &str = "unauthenticated";
pub const INVALID_TOKEN: &str = "invalid_token";
pub const TOKEN_EXPIRED: &str = "token_expired";
pub const INVALID_CREDENTIALS: &str = "invalid_credentials";
pub const INVALID_REFRESH_TOKEN: &str = "invalid_refresh_token";
pub const REFRESH_TOKEN_REUSED: &str = "refresh_token_reused";
pub const ACCOUNT_INACTIVE: &str = "account_inactive";
/// A refresh token whose session already ended (logout, device revoked, password changed,
/// reuse detected): sign in again.
pub const SESSION_ENDED: &str = "session_ended";

pub const FORBIDDEN: &str = "forbidden";
pub const NOT_FOUND: &str = "not_found";
pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";

pub const EMAIL_TAKEN: &str = "email_taken";
pub const USERNAME_TAKEN: &str = "username_taken";
pub const VIDEO_EXISTS: &str = "video_exists";
/// The id is one of the configured demo videos, which nobody may own.
pub const VIDEO_ID_RESERVED: &str = "video_id_reserved";
pub const CONFLICT: &str = "conflict";

pub const RATE_LIMITED: &str = "rate_limited";
pub const INTERNAL: &str = "internal_error";
pub const UNAVAILABLE: &str = "service_unavailable";
/// An external identity provider's keys cannot be fetched (503, retry).
pub const IDENTITY_PROVIDER_UNAVAILABLE: &str = "identity_provider_unavailable";
/// 503 with `Retry-After`: the node is at its bound for password hashing.
pub const BUSY: &str = "busy";

/// 403: the poster is banned from this chat (site-wide or on this video) with no end.
pub const BANNED: &str = "banned";
/// 403 with `retry_after`: the poster is timed out of this chat for that many seconds more.
pub const TIMED_OUT: &str = "timed_out";
/// 429 with `Retry-After` and `retry_after`: slow mode is on and the poster's last comment on
/// this video is too recent.
pub const SLOW_MODE: &str = "slow_mode";
/// 403: the chat is members-only and the poster is not a member.
pub const MEMBERS_ONLY_CHAT: &str = "members_only_chat";
pub const INVALID_CHAT_MODE: &str = "invalid_chat_mode";
/// 409: the comment to pin is not a live comment of this video (deleted, or another video's).
pub const COMMENT_UNAVAILABLE: &str = "comment_unavailable";
/// 422: the comment contains one of the chat's blocked terms.
pub const BLOCKED_TERM: &str = "blocked_term";
