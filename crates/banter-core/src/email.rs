//! `Email`: an address users sign in with. Checked for shape only and lower-cased, so lookups
//! and the unique constraint are case-insensitive. Deliverability is not this crate's business.
//!
//! The shape is the one the OpenAPI document states as a pattern, so clients can check it
//! before sending: a local part of 1–64 of the characters RFC 5322 allows unquoted but the
//! apostrophe (ASCII letters, digits and ``.!#$%&*+/=?^_`{|}~-``), `@`, and a domain of two or more dot-separated
//! labels of ASCII letters, digits and `-`; at most 254 characters, nothing around it. ASCII
//! only: no look-alike letters, invisible characters or bidirectional controls can make two
//! addresses that look the same differ (usernames refuse them the same way).

use std::fmt;

pub const EMAIL_MAX_LEN: usize = 254;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email is longer than {max} characters")]
    TooLong { max: usize },
    #[error("email is not a valid address (ASCII only: name@example.com)")]
    Invalid,
}

const LOCAL_PUNCTUATION: &str = ".!#$%&*+/=?^_`{|}~-";

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        if raw.len() > EMAIL_MAX_LEN {
            return Err(EmailError::TooLong { max: EMAIL_MAX_LEN });
        }
        let (local, domain) = raw.split_once('@').ok_or(EmailError::Invalid)?;
        let valid_local = (1..=64).contains(&local.len())
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || LOCAL_PUNCTUATION.contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let valid_domain = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !(valid_local && valid_domain) {
            return Err(EmailError::Invalid);
        }
        Ok(Self(raw.to_ascii_lowercase()))
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
            "a\"b@example.com",
            "a'--@example.com",
            "a@ex\u{0}.com",
            // Look-alikes: a right-to-left override, zero-width space and joiner, a BOM, a
            // word joiner, non-characters.
            "alice\u{202E}@example.com",
            "al\u{200B}ice@example.com",
            "alice@exa\u{200D}mple.com",
            "\u{FEFF}alice@example.com",
            "ali\u{2060}ce@example.com",
            "alice\u{FFFF}@example.com",
            "alice\u{FDD0}@example.com",
            "alice\u{1FFFE}@example.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn addresses_are_ascii_with_nothing_around_them() {
        assert!(Email::parse("first.last+tag@sub.example-mail.co").is_ok());
        for raw in [
            "jörg@example.com",
            "alice@bücher.example",
            " alice@example.com",
            "alice@example.com\n",
        ] {
            assert_eq!(Email::parse(raw), Err(EmailError::Invalid), "{raw:?}");
        }
    }

    #[test]
    fn an_overlong_address_is_rejected() {
        let raw = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&raw), Err(EmailError::TooLong { max: 254 }));
    }
}
