//! The JSON shapes of the HTTP API (requests and responses), converted by hand from the core
//! types: serialising a type is a compatibility promise, so it is made here, explicitly.
//! Requests refuse unknown fields, so a misspelt field is an error rather than silently ignored.

use banter_core::{Comment, Device, User};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct UserDto {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    /// `user`, `moderator` or `admin`.
    pub role: String,
    pub is_active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
}

impl From<&User> for UserDto {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email.to_string(),
            username: user.username.to_string(),
            role: user.role.as_str().to_owned(),
            is_active: user.is_active,
            created_at: user.created_at,
            last_login_at: user.last_login_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuthorDto {
    pub id: Uuid,
    pub username: String,
    /// The author's role on the video, for a badge: `owner`, `moderator` or `admin`; `null`
    /// for a viewer.
    pub role: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CommentDto {
    pub id: Uuid,
    pub video_id: String,
    /// Position in the video's single order, from 1, without gaps.
    pub seq: i64,
    pub author: AuthorDto,
    /// `null` once deleted.
    pub body: Option<String>,
    pub deleted: bool,
    pub edited: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Comment> for CommentDto {
    fn from(c: &Comment) -> Self {
        Self {
            id: c.id.as_uuid(),
            video_id: c.video_id.to_string(),
            seq: c.seq,
            author: AuthorDto {
                id: c.user_id.as_uuid(),
                username: c.username.clone(),
                role: c.author_role.map(|r| r.as_str().to_owned()),
            },
            body: c.body.clone(),
            deleted: c.deleted_at.is_some(),
            edited: c.deleted_at.is_none() && c.updated_at != c.created_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeviceDto {
    pub device_id: String,
    #[schema(value_type = Object)]
    pub device_info: serde_json::Value,
    pub is_active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
}

impl From<&Device> for DeviceDto {
    fn from(d: &Device) -> Self {
        Self {
            device_id: d.device_id.as_ref().to_owned(),
            device_info: serde_json::from_str(&d.info_json).unwrap_or_default(),
            is_active: d.is_active,
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuthResponse {
    pub user: UserDto,
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; use once at `/api/auth/refresh`, which returns a new one.
    pub refresh_token: String,
    pub device_id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub username: String,
    pub password: String,
    /// Stable id of this client installation; generated when absent.
    pub device_id: Option<String>,
    /// Free-form description of the device (a JSON object of at most 1 KiB).
    #[schema(value_type = Option<Object>)]
    pub device_info: Option<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email or username.
    pub login: String,
    pub password: String,
    pub device_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub device_info: Option<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    pub email: Option<String>,
    pub username: Option<String>,
    /// A new password; needs `current_password`.
    pub password: Option<String>,
    pub current_password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminUpdateUserRequest {
    /// `user`, `moderator` or `admin`.
    pub role: Option<String>,
    pub is_active: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct UsersPage {
    pub users: Vec<UserDto>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<Uuid>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCommentRequest {
    pub body: String,
}

#[derive(Serialize, ToSchema)]
pub struct CommentsPage {
    /// In ascending `seq` order.
    pub comments: Vec<CommentDto>,
    /// The newest `seq` of the video (0 when it has no comments).
    pub last_seq: i64,
    /// Pass as `before` for older comments; absent when there are none.
    pub next_before: Option<i64>,
    /// Pass as `after` for newer comments; absent when this page reaches `last_seq`.
    pub next_after: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVideoRequest {
    pub id: String,
    /// `public` (default), `private` or `members`.
    pub visibility: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVideoRequest {
    pub visibility: String,
}

#[derive(Serialize, ToSchema)]
pub struct VideoDto {
    pub id: String,
    pub owner_id: Option<Uuid>,
    pub visibility: String,
    pub last_seq: i64,
}

impl From<&banter_core::Video> for VideoDto {
    fn from(v: &banter_core::Video) -> Self {
        Self {
            id: v.id.to_string(),
            owner_id: v.owner_id.map(|o| o.as_uuid()),
            visibility: v.visibility.as_str().to_owned(),
            last_seq: v.last_seq,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ModeratorDto {
    pub id: Uuid,
    pub username: String,
}

#[derive(Serialize, ToSchema)]
pub struct ModeratorsList {
    /// Moderators the owner appointed for this video (site moderators and admins moderate
    /// every video and are not listed).
    pub moderators: Vec<ModeratorDto>,
}

/// An optional integer field as JSON Schema means it: `467.0` is the integer 467 (a number
/// with a fraction, or out of range, is refused).
pub(crate) fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                .map(|f| f as i64)
        })
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a whole number")))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    /// A timeout of 10 to 86400 seconds; absent or `null` bans permanently.
    #[serde(default, deserialize_with = "whole_number")]
    pub duration_seconds: Option<i64>,
    /// Why, for the log and for the banned user (at most 500 characters).
    pub reason: Option<String>,
    /// Also delete every comment the user has on this video (video bans only).
    pub remove_comments: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct BanDto {
    pub user_id: Uuid,
    pub username: String,
    /// The video, or `null` for a site-wide ban.
    pub video_id: Option<String>,
    /// When a timeout ends; `null` for a permanent ban.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub reason: Option<String>,
    pub banned_by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl BanDto {
    pub fn new(ban: &banter_store::Ban, video: Option<&banter_core::VideoId>) -> BanDto {
        BanDto {
            user_id: ban.user_id.as_uuid(),
            username: ban.username.clone(),
            video_id: video.map(ToString::to_string),
            expires_at: ban.expires_at,
            reason: ban.reason.clone(),
            banned_by: ban.banned_by.as_uuid(),
            created_at: ban.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct BanResponse {
    pub ban: BanDto,
    /// How many of the user's comments were deleted with the ban (`remove_comments`).
    pub removed_comments: usize,
}

#[derive(Serialize, ToSchema)]
pub struct BansList {
    /// Bans and timeouts in force, oldest first.
    pub bans: Vec<BanDto>,
}

#[derive(Serialize, ToSchema)]
pub struct RemovedComments {
    /// How many comments were deleted.
    pub removed: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ChatDto {
    /// At most one comment per this many seconds per viewer (moderators exempt); 0 is off.
    pub slow_mode_seconds: u32,
    /// `everyone` (any signed-in viewer) or `members` (members, the owner and moderators).
    pub chat_mode: String,
    /// What becomes of a comment with a blocked term: `refuse` or `hold` (for review).
    pub blocked_terms_action: String,
    /// The comment pinned above the chat.
    pub pinned_comment: Option<CommentDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChatRequest {
    /// 0 (off) to 3600.
    #[serde(default, deserialize_with = "whole_number")]
    pub slow_mode_seconds: Option<i64>,
    /// `everyone` or `members`.
    pub chat_mode: Option<String>,
    /// `refuse` or `hold`.
    pub blocked_terms_action: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    /// A live comment of this video.
    pub comment_id: Uuid,
}

#[derive(Serialize, ToSchema)]
pub struct LogEntryDto {
    pub id: i64,
    /// `appoint_moderator`, `remove_moderator`, `ban`, `timeout`, `unban`, `remove_comments`,
    /// `delete_comment`, `chat_settings`, `pin` or `unpin`.
    pub action: String,
    pub actor: ModeratorDto,
    pub target_user: Option<ModeratorDto>,
    pub target_comment_id: Option<Uuid>,
    pub reason: Option<String>,
    /// The action's particulars (a duration, the new settings, a count).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&banter_store::LogEntry> for LogEntryDto {
    fn from(e: &banter_store::LogEntry) -> Self {
        LogEntryDto {
            id: e.id,
            action: e.action.clone(),
            actor: ModeratorDto {
                id: e.actor_id.as_uuid(),
                username: e.actor_username.clone().unwrap_or_default(),
            },
            target_user: e.target_user_id.map(|id| ModeratorDto {
                id: id.as_uuid(),
                username: e.target_username.clone().unwrap_or_default(),
            }),
            target_comment_id: e.target_comment_id.map(|c| c.as_uuid()),
            reason: e.reason.clone(),
            details: serde_json::from_str(&e.details).unwrap_or_default(),
            created_at: e.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ModerationLogPage {
    /// Newest first.
    pub entries: Vec<LogEntryDto>,
    /// Pass as `before` for older entries; absent on the last page.
    pub next_before: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct HeldCommentDto {
    pub id: Uuid,
    pub video_id: String,
    pub author: AuthorDto,
    pub body: String,
    /// The blocked term it matched, as matched (folded).
    pub matched_term: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&banter_core::HeldComment> for HeldCommentDto {
    fn from(h: &banter_core::HeldComment) -> Self {
        HeldCommentDto {
            id: h.id.as_uuid(),
            video_id: h.video_id.to_string(),
            author: AuthorDto {
                id: h.user_id.as_uuid(),
                username: h.username.clone(),
                role: None,
            },
            body: h.body.clone(),
            matched_term: h.matched_term.clone(),
            created_at: h.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct HeldCommentsList {
    /// Oldest first.
    pub held_comments: Vec<HeldCommentDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockedTermsRequest {
    /// The whole list: at most 100 terms of 1–25 characters without control characters;
    /// matched after NFKC and case folding, so look-alikes match too. A term of only invisible
    /// characters (a zero-width space) is left out.
    pub terms: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BlockedTermsList {
    /// The terms as they are matched (folded, so possibly longer than given), sorted.
    pub terms: Vec<String>,
}

#[cfg(test)]
mod tests {
    use banter_core::{ChatRole, CommentId, UserId, VideoId};

    use super::*;

    #[test]
    fn webhook_events_carry_comments_in_the_rest_apis_shape() {
        let at = OffsetDateTime::from_unix_timestamp(1_764_800_000).unwrap();
        let mut comment = Comment {
            id: CommentId::generate(),
            video_id: VideoId::parse("show").unwrap(),
            seq: 7,
            user_id: UserId::generate(),
            username: "ann".into(),
            body: Some("hello".into()),
            created_at: at,
            updated_at: at + time::Duration::seconds(3),
            deleted_at: None,
            author_role: Some(ChatRole::Moderator),
        };
        for deleted in [false, true] {
            if deleted {
                comment.body = None;
                comment.deleted_at = Some(comment.updated_at);
                comment.author_role = None;
            }
            assert_eq!(
                banter_store::comment_event_data(&comment),
                serde_json::to_value(CommentDto::from(&comment)).unwrap()
            );
        }
    }
}
