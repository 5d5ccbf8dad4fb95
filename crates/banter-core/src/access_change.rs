//! `AccessChange`: a committed change to who may see what, or post what. The API announces one after each
//! such commit, and every realtime node re-checks the open sockets and joined viewers it
//! touches, so access that ended stops at once on every node, not at the next reconnect.

use crate::{UserId, VideoId};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AccessChange {
    /// The user's account, role, devices or sessions changed (deactivation, role change,
    /// device revoked, logout, password change, refresh reuse): their sockets re-authenticate
    /// and re-check every video they watch.
    User(UserId),
    /// The video's visibility changed or it was registered with an owner: everyone watching
    /// it is re-checked.
    Video(VideoId),
    /// The user was removed from the members of the video: their sockets re-check it.
    Member { video: VideoId, user: UserId },
    /// The video's chat rules changed (settings, pinned comment, moderators, bans): every node
    /// forgets what it cached of them, and its channel of the video re-reads them and tells
    /// its viewers what changed. Nobody's right to watch changed, so nothing is re-checked.
    Chat(VideoId),
    /// The site-wide chat rules changed (a site-wide ban): every node forgets them.
    SiteChat,
}
