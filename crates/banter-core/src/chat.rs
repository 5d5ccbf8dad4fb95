//! The rules of a video's chat, as opposed to who may watch it (`Visibility`): who moderates it
//! (`ChatRole`), who may post (`ChatMode`), how often (`slow_mode_seconds`), what becomes of a
//! comment with a blocked term (`BlockedTermsAction`), and how long a ban lasts (`BanDuration`). Pure values and the decisions made from them; the store keeps them
//! and the API enforces them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::{Role, User, UserId};

/// The longest slow mode: one comment per hour.
pub const SLOW_MODE_MAX_SECONDS: u32 = 3600;
/// The shortest timeout.
pub const BAN_MIN_SECONDS: u64 = 10;
/// The longest timeout; anything longer is a permanent ban.
pub const BAN_MAX_SECONDS: u64 = 24 * 3600;
/// The longest reason a moderator may give.
pub const MODERATION_REASON_MAX_CHARS: usize = 500;

/// Who may post on a video (everyone who posts is signed in: anonymous viewers never post).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChatMode {
    /// Any signed-in viewer who may watch the video.
    #[default]
    Everyone,
    /// Only the video's members, its owner and its moderators.
    Members,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("chat_mode must be one of everyone, members")]
pub struct ChatModeError;

impl ChatMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChatMode::Everyone => "everyone",
            ChatMode::Members => "members",
        }
    }
}

impl FromStr for ChatMode {
    type Err = ChatModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "everyone" => Ok(ChatMode::Everyone),
            "members" => Ok(ChatMode::Members),
            _ => Err(ChatModeError),
        }
    }
}

/// What happens to a comment that contains a blocked term (moderators' own are exempt).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BlockedTermsAction {
    /// Refused, with a reason.
    #[default]
    Refuse,
    /// Held for the video's moderators to approve or reject.
    Hold,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("blocked_terms_action must be one of refuse, hold")]
pub struct BlockedTermsActionError;

impl BlockedTermsAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            BlockedTermsAction::Refuse => "refuse",
            BlockedTermsAction::Hold => "hold",
        }
    }
}

impl FromStr for BlockedTermsAction {
    type Err = BlockedTermsActionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "refuse" => Ok(BlockedTermsAction::Refuse),
            "hold" => Ok(BlockedTermsAction::Hold),
            _ => Err(BlockedTermsActionError),
        }
    }
}

/// A video's chat settings; every viewer is told them at join and whenever they change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChatSettings {
    /// At most one comment per this many seconds per viewer (moderators exempt); 0 is off.
    pub slow_mode_seconds: u32,
    pub chat_mode: ChatMode,
    pub blocked_terms: BlockedTermsAction,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("slow_mode_seconds must be between 0 and {max}", max = SLOW_MODE_MAX_SECONDS)]
pub struct SlowModeError;

impl ChatSettings {
    /// Validates a slow-mode interval in seconds.
    pub fn slow_mode(seconds: i64) -> Result<u32, SlowModeError> {
        u32::try_from(seconds)
            .ok()
            .filter(|s| *s <= SLOW_MODE_MAX_SECONDS)
            .ok_or(SlowModeError)
    }
}

/// How long a ban lasts: a timeout of 10 s to 24 h, or permanent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanDuration {
    Timeout(Duration),
    Permanent,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "duration_seconds must be between {BAN_MIN_SECONDS} and {BAN_MAX_SECONDS}, or null for a permanent ban"
)]
pub struct BanDurationError;

impl BanDuration {
    /// `None` is permanent.
    pub fn parse(seconds: Option<i64>) -> Result<BanDuration, BanDurationError> {
        match seconds {
            None => Ok(BanDuration::Permanent),
            Some(s) => u64::try_from(s)
                .ok()
                .filter(|s| (BAN_MIN_SECONDS..=BAN_MAX_SECONDS).contains(s))
                .map(|s| BanDuration::Timeout(Duration::from_secs(s)))
                .ok_or(BanDurationError),
        }
    }
}

/// What a user is on one video's chat beyond a viewer; also the badge their comments carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChatRole {
    /// Appointed by the owner for this video, or a site moderator.
    Moderator,
    /// The video's owner.
    Owner,
    /// A site admin: moderates every video.
    Admin,
}

impl ChatRole {
    /// The role of `user` on a video owned by `owner`, where `appointed` says whether the
    /// owner made them a moderator of it. The highest applies: admin, then owner, then moderator.
    pub fn of(user: &User, owner: Option<UserId>, appointed: bool) -> Option<ChatRole> {
        if user.role == Role::Admin {
            Some(ChatRole::Admin)
        } else if owner == Some(user.id) {
            Some(ChatRole::Owner)
        } else if appointed || user.role == Role::Moderator {
            Some(ChatRole::Moderator)
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ChatRole::Moderator => "moderator",
            ChatRole::Owner => "owner",
            ChatRole::Admin => "admin",
        }
    }

    /// Whether someone of this role may ban (or time out) someone of `target`'s role: nobody
    /// bans an admin, only an admin bans the owner, and only the owner or an admin bans a
    /// moderator.
    pub fn may_ban(self, target: Option<ChatRole>) -> bool {
        match target {
            None => true,
            Some(ChatRole::Admin) => false,
            Some(ChatRole::Owner) => self == ChatRole::Admin,
            Some(ChatRole::Moderator) => self >= ChatRole::Owner,
        }
    }

    /// Appointing and removing a video's moderators, and reading its moderation log: the owner
    /// and admins.
    pub fn manages_moderators(self) -> bool {
        self >= ChatRole::Owner
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a chat role is one of moderator, owner, admin")]
pub struct ChatRoleError;

impl FromStr for ChatRole {
    type Err = ChatRoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "moderator" => Ok(ChatRole::Moderator),
            "owner" => Ok(ChatRole::Owner),
            "admin" => Ok(ChatRole::Admin),
            _ => Err(ChatRoleError),
        }
    }
}

impl fmt::Display for ChatRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::{Email, Username};

    fn user(role: Role) -> User {
        User {
            id: UserId::generate(),
            email: Email::parse("a@example.com").unwrap(),
            username: Username::parse("someone").unwrap(),
            role,
            is_active: true,
            last_login_at: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_highest_role_on_a_video_applies() {
        let admin = user(Role::Admin);
        let owner = user(Role::User);
        let site_moderator = user(Role::Moderator);
        let viewer = user(Role::User);
        assert_eq!(
            ChatRole::of(&admin, Some(admin.id), true),
            Some(ChatRole::Admin)
        );
        assert_eq!(
            ChatRole::of(&owner, Some(owner.id), false),
            Some(ChatRole::Owner)
        );
        assert_eq!(
            ChatRole::of(&site_moderator, Some(owner.id), false),
            Some(ChatRole::Moderator)
        );
        assert_eq!(
            ChatRole::of(&viewer, Some(owner.id), true),
            Some(ChatRole::Moderator)
        );
        assert_eq!(ChatRole::of(&viewer, Some(owner.id), false), None);
        assert_eq!(ChatRole::of(&viewer, None, false), None);
    }

    #[test]
    fn chat_roles_round_trip() {
        for role in [ChatRole::Moderator, ChatRole::Owner, ChatRole::Admin] {
            assert_eq!(role.as_str().parse::<ChatRole>(), Ok(role));
        }
        assert!("user".parse::<ChatRole>().is_err());
    }

    #[test]
    fn moderators_cannot_ban_the_owner_an_admin_or_each_other() {
        use ChatRole::*;
        assert!(Moderator.may_ban(None));
        assert!(!Moderator.may_ban(Some(Moderator)));
        assert!(!Moderator.may_ban(Some(Owner)));
        assert!(!Moderator.may_ban(Some(Admin)));
        assert!(Owner.may_ban(Some(Moderator)));
        assert!(!Owner.may_ban(Some(Admin)));
        assert!(Admin.may_ban(Some(Owner)));
        assert!(!Admin.may_ban(Some(Admin)));
        assert!(!Moderator.manages_moderators());
        assert!(Owner.manages_moderators() && Admin.manages_moderators());
    }

    #[test]
    fn ban_durations_run_from_ten_seconds_to_a_day_or_forever() {
        assert_eq!(BanDuration::parse(None), Ok(BanDuration::Permanent));
        assert_eq!(
            BanDuration::parse(Some(10)),
            Ok(BanDuration::Timeout(Duration::from_secs(10)))
        );
        assert!(BanDuration::parse(Some(86_400)).is_ok());
        for bad in [9, 0, -1, 86_401, i64::MAX] {
            assert!(BanDuration::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn slow_mode_is_zero_to_an_hour_and_modes_round_trip() {
        assert_eq!(ChatSettings::slow_mode(0), Ok(0));
        assert_eq!(ChatSettings::slow_mode(3600), Ok(3600));
        assert!(ChatSettings::slow_mode(3601).is_err());
        assert!(ChatSettings::slow_mode(-1).is_err());
        for mode in [ChatMode::Everyone, ChatMode::Members] {
            assert_eq!(mode.as_str().parse::<ChatMode>(), Ok(mode));
        }
        for action in [BlockedTermsAction::Refuse, BlockedTermsAction::Hold] {
            assert_eq!(action.as_str().parse::<BlockedTermsAction>(), Ok(action));
        }
        assert!("signed_in".parse::<ChatMode>().is_err());
    }
}
