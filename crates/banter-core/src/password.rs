//! `Password`: a candidate password at registration, 8 to 128 characters. Its `Debug` never
//! shows the text. Hashing lives in `banter-api`; this type only holds the policy.

use std::fmt;

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;

pub struct Password(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must have {min} to {max} characters")]
    Length { min: usize, max: usize },
}

impl Password {
    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&raw.chars().count()) {
            return Err(PasswordError::Length {
                min: PASSWORD_MIN_CHARS,
                max: PASSWORD_MAX_CHARS,
            });
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_password() {
        let password = Password::parse("hunter2hunter2").unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
    }

    #[test]
    fn short_and_overlong_passwords_are_rejected() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert!(Password::parse(&"x".repeat(128)).is_ok());
    }
}
