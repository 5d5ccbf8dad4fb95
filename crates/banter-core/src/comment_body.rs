//! `CommentBody`: the text of a comment.
//!
//! Rules: the text as sent has at most 2000 characters (Unicode scalar values) and no control
//! characters other than newline (not even in surrounding whitespace: a `\r` or tab is refused
//! wherever it is, exactly as the OpenAPI schema says), and at least one character is left after
//! trimming surrounding whitespace. The trimmed text is what is stored; nothing else is changed: HTML, SQL metacharacters and any other Unicode
//! come back exactly as posted, since rendering safely is the client's job.

/// The most characters a comment may have after trimming.
pub const COMMENT_BODY_MAX_CHARS: usize = 2000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentBody(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommentBodyError {
    #[error("comment is empty")]
    Empty,
    #[error("comment is longer than {max} characters")]
    TooLong { max: usize },
    #[error("comment contains a control character other than newline")]
    ControlCharacter,
}

impl CommentBody {
    pub fn parse(raw: &str) -> Result<Self, CommentBodyError> {
        if raw.chars().any(|c| c.is_control() && c != '\n') {
            return Err(CommentBodyError::ControlCharacter);
        }
        if raw.chars().count() > COMMENT_BODY_MAX_CHARS {
            return Err(CommentBodyError::TooLong {
                max: COMMENT_BODY_MAX_CHARS,
            });
        }
        let trimmed = raw.trim_matches(is_space);
        if trimmed.is_empty() {
            return Err(CommentBodyError::Empty);
        }
        Ok(Self(trimmed.to_owned()))
    }
}

/// White space as the API's schemas mean it (ECMAScript's `\s`): Unicode white space and the
/// byte-order mark, which JSON Schema patterns treat as a space and Rust's `trim` does not.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{FEFF}'
}

impl AsRef<str> for CommentBody {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn html_and_sql_come_back_exactly_as_posted() {
        for raw in [
            "<script>alert(1)</script>",
            "'; DROP TABLE comments; --",
            "a\nb",
            "🎉 ünïcødé",
        ] {
            assert_eq!(CommentBody::parse(raw).unwrap().as_ref(), raw);
        }
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(CommentBody::parse("  hi \n").unwrap().as_ref(), "hi");
    }

    #[test]
    fn the_rules_apply_to_the_text_as_sent_not_as_trimmed() {
        // What the OpenAPI schema says: a control character anywhere, or 2001 characters with
        // the spaces around them, are refused even though trimming would remove them.
        assert_eq!(
            CommentBody::parse("hi\r"),
            Err(CommentBodyError::ControlCharacter)
        );
        assert_eq!(
            CommentBody::parse("\thi"),
            Err(CommentBodyError::ControlCharacter)
        );
        assert!(matches!(
            CommentBody::parse(&format!("{} ", "x".repeat(2000))),
            Err(CommentBodyError::TooLong { .. })
        ));
    }

    #[test]
    fn whitespace_only_is_empty() {
        assert_eq!(CommentBody::parse(" \n  "), Err(CommentBodyError::Empty));
        assert_eq!(CommentBody::parse("\u{FEFF}"), Err(CommentBodyError::Empty));
    }

    #[test]
    fn two_thousand_characters_are_accepted_and_one_more_is_not() {
        let emoji = "😀".repeat(2000);
        assert!(CommentBody::parse(&emoji).is_ok());
        assert_eq!(
            CommentBody::parse(&format!("{emoji}x")),
            Err(CommentBodyError::TooLong { max: 2000 })
        );
    }

    #[test]
    fn control_characters_other_than_newline_are_rejected() {
        for raw in ["a\u{0}b", "a\tb", "a\rb", "a\u{7f}b", "a\u{1b}[31mb"] {
            assert_eq!(
                CommentBody::parse(raw),
                Err(CommentBodyError::ControlCharacter),
                "{raw:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn an_accepted_body_is_trimmed_nonempty_and_bounded(raw in "\\PC{0,50}") {
            if let Ok(body) = CommentBody::parse(&raw) {
                prop_assert_eq!(body.as_ref(), raw.trim());
                prop_assert!(!body.as_ref().is_empty());
            }
        }
    }
}
