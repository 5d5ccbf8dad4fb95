//! `User`: an account as the rest of the system sees it. The password hash stays in the store
//! and the auth code; it is not part of this type so it cannot leak into a response by accident.

use time::OffsetDateTime;

use crate::{Email, Role, UserId, Username};

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub username: Username,
    pub role: Role,
    pub is_active: bool,
    pub last_login_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}
