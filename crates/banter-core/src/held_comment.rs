//! `HeldComment`: a comment that matched a blocked term on a video whose moderators review
//! such comments instead of refusing them. It has no `seq` until approved, when it is
//! committed like any new comment and takes the video's next one. `PostOutcome` is what posting
//! gives: a committed comment, or a held one.

use time::OffsetDateTime;

use crate::{Comment, CommentId, UserId, VideoId};

#[derive(Clone, Debug, PartialEq)]
pub struct HeldComment {
    pub id: CommentId,
    pub video_id: VideoId,
    pub user_id: UserId,
    pub username: String,
    pub body: String,
    /// The blocked term it matched (folded).
    pub matched_term: String,
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PostOutcome {
    Committed(Comment),
    Held(HeldComment),
}
