//! `Email`: an address users sign in with. Checked for shape only (one `@`, a dotted domain,
//! no spaces, control, invisible or non-characters, bounded lengths) and lower-cased, so lookups
//! and the unique constraint are case-insensitive. Deliverability is not this crate's business.
//!
//! Invisible characters (bidirectional controls, zero-width characters, other format
//! characters) and non-characters are refused as in usernames: two addresses that look the same
//! must be the same address.

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
                || is_invisible(c)
                || is_noncharacter(c)
                || matches!(c, '<' | '>' | '"' | '\'' | ',' | ';' | '\\')
        });
        if !(valid_local && valid_domain && no_bad_chars) {
            return Err(EmailError::Invalid);
        }
        Ok(Self(raw.to_lowercase()))
    }
}

/// Format characters that change how text reads without showing: bidirectional marks,
/// embeddings, overrides and isolates, zero-width characters, the soft hyphen, the BOM, and the
/// invisible operators and tag characters.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}')
}

/// The 66 Unicode non-characters, never meant to be interchanged.
fn is_noncharacter(c: char) -> bool {
    let c = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&c) || c & 0xFFFE == 0xFFFE
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
    fn international_addresses_are_accepted() {
        assert!(Email::parse("jörg@bücher.example").is_ok());
        assert!(Email::parse("用户@例子.example").is_ok());
    }

    #[test]
    fn an_overlong_address_is_rejected() {
        let raw = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&raw), Err(EmailError::TooLong { max: 254 }));
    }
}
