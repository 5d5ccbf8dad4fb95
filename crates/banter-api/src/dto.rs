//! The JSON shapes of the HTTP API (requests and responses), converted by hand from the core
//! types: serialising a type is a compatibility promise, so it is made here, explicitly.
//! Requests refuse unknown fields, so a misspelt field is an error rather than silently ignored.

use banter_core::{Comment, Device, User};
use serde::{Deserialize, Serialize};
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
