//! `Video`: the thing comments hang off. Created on first comment (public, owned by nobody) or
//! through the API. Visibility decides who may read and join it.

use std::str::FromStr;

use crate::{ChatSettings, CommentId, UserId, VideoId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Anyone may read and watch.
    Public,
    /// Only the owner may read and watch.
    Private,
    /// The owner and listed members may read and watch.
    Members,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("visibility must be one of public, private, members")]
pub struct VisibilityError;

impl Visibility {
    pub fn as_str(&self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Members => "members",
        }
    }
}

impl FromStr for Visibility {
    type Err = VisibilityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "public" => Ok(Visibility::Public),
            "private" => Ok(Visibility::Private),
            "members" => Ok(Visibility::Members),
            _ => Err(VisibilityError),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Video {
    pub id: VideoId,
    pub owner_id: Option<UserId>,
    pub visibility: Visibility,
    /// The `seq` of the newest comment, 0 when there is none.
    pub last_seq: i64,
    /// Who may post and how often (`chat.rs`).
    pub chat: ChatSettings,
    /// The comment pinned above the chat, if any.
    pub pinned_comment: Option<CommentId>,
}
