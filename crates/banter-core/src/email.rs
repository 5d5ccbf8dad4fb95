//! `Email`: an address users sign in with. Checked for shape only (one `@`, a dotted domain,
//! no spaces or control characters, bounded lengths) and lower-cased, so lookups and the unique
//! constraint are case-insensitive. Deliverability is not this crate's business.

use std::fmt;

pub const EMAIL_MAX_LEN: usize = 254;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email is longer than {max} characters")]
    TooLong { max: usize },
    #[error("email is not a valid address")]
    Invalid,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let raw = raw.trim();
        if raw.len() > EMAIL_MAX_LEN {
            return Err(EmailError::TooLong { max: EMAIL_MAX_LEN });
        }
        let (local, domain) = raw.split_once('@').ok_or(EmailError::Invalid)?;
        let valid_local = !local.is_empty() && local.len() <= 64;
        let valid_domain = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        let no_bad_chars = !raw.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '<' | '>' | '"' | '\'' | ',' | ';' | '\\')
        });
        if !(valid_local && valid_domain && no_bad_chars) {
            return Err(EmailError::Invalid);
        }
        Ok(Self(raw.to_lowercase()))
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_lower_cased() {
        assert_eq!(
            Email::parse("Alice@Example.COM").unwrap().as_ref(),
            "alice@example.com"
        );
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for raw in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "alice@@example.com",
            "alice@example..com",
            "a'--@example.com",
            "a@ex\u{0}.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn an_overlong_address_is_rejected() {
        let raw = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&raw), Err(EmailError::TooLong { max: 254 }));
    }
}
