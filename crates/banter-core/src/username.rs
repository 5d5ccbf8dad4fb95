//! `Username`: a public handle, 3 to 32 characters of ASCII letters, digits, `_`, `.` and `-`,
//! starting with a letter or digit. Case is kept for display; uniqueness is case-insensitive
//! (enforced by the store).

use std::fmt;

pub const USERNAME_MIN_LEN: usize = 3;
pub const USERNAME_MAX_LEN: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Username(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("username must have {min} to {max} characters")]
    Length { min: usize, max: usize },
    #[error(
        "username may contain only ASCII letters, digits, '_', '.' and '-', and must start with a letter or digit"
    )]
    InvalidCharacter,
}

impl Username {
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        if !(USERNAME_MIN_LEN..=USERNAME_MAX_LEN).contains(&raw.chars().count()) {
            return Err(UsernameError::Length {
                min: USERNAME_MIN_LEN,
                max: USERNAME_MAX_LEN,
            });
        }
        let mut bytes = raw.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
        let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !(first_ok && rest_ok) {
            return Err(UsernameError::InvalidCharacter);
        }
        Ok(Self(raw.to_owned()))
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_username_is_accepted() {
        assert_eq!(Username::parse("Alice_01").unwrap().as_ref(), "Alice_01");
    }

    #[test]
    fn too_short_and_too_long_usernames_are_rejected() {
        assert!(matches!(
            Username::parse("ab"),
            Err(UsernameError::Length { .. })
        ));
        assert!(matches!(
            Username::parse(&"a".repeat(33)),
            Err(UsernameError::Length { .. })
        ));
    }

    #[test]
    fn metacharacters_and_non_ascii_are_rejected() {
        for raw in ["al ice", "al'ice", "_alice", "alïce", "a<b>c", "@alice"] {
            assert_eq!(
                Username::parse(raw),
                Err(UsernameError::InvalidCharacter),
                "{raw}"
            );
        }
    }
}
