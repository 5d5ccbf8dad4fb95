//! `Comment`: one comment on a video, with its place (`seq`) in that video's single order.

use time::OffsetDateTime;

use crate::{ChatRole, CommentId, UserId, VideoId};

#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub id: CommentId,
    pub video_id: VideoId,
    /// Position in the video's order: strictly increasing and gap-free among committed comments.
    pub seq: i64,
    pub user_id: UserId,
    /// The author's username at read time, for display.
    pub username: String,
    /// The body, or `None` once the comment is deleted (the `seq` stays taken).
    pub body: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
    /// The author's role on the video when the comment was read (a badge: owner, moderator,
    /// admin), `None` for a viewer.
    pub author_role: Option<ChatRole>,
}
