//! `VideoId`: the platform's identifier of a video, chosen by the embedding site.
//!
//! It appears in URLs and in topic names (`comments:<id>`), so the charset is kept to what
//! needs no escaping anywhere: ASCII letters, digits, `-` and `_`.

use std::fmt;

/// The longest accepted video id, in bytes.
pub const VIDEO_ID_MAX_LEN: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VideoId(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VideoIdError {
    #[error("video id is empty")]
    Empty,
    #[error("video id is longer than {max} characters")]
    TooLong { max: usize },
    #[error("video id may contain only ASCII letters, digits, '-' and '_'")]
    InvalidCharacter,
}

impl VideoId {
    pub fn parse(raw: &str) -> Result<Self, VideoIdError> {
        if raw.is_empty() {
            return Err(VideoIdError::Empty);
        }
        if raw.len() > VIDEO_ID_MAX_LEN {
            return Err(VideoIdError::TooLong {
                max: VIDEO_ID_MAX_LEN,
            });
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(VideoIdError::InvalidCharacter);
        }
        Ok(Self(raw.to_owned()))
    }
}

impl AsRef<str> for VideoId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VideoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_typical_video_id_is_accepted() {
        assert_eq!(
            VideoId::parse("dQw4w9WgXcQ").unwrap().as_ref(),
            "dQw4w9WgXcQ"
        );
    }

    #[test]
    fn an_empty_video_id_is_rejected() {
        assert_eq!(VideoId::parse(""), Err(VideoIdError::Empty));
    }

    #[test]
    fn a_video_id_of_65_characters_is_rejected() {
        assert_eq!(
            VideoId::parse(&"a".repeat(65)),
            Err(VideoIdError::TooLong { max: 64 })
        );
        assert!(VideoId::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn sql_and_path_metacharacters_are_rejected() {
        for raw in ["a'b", "a;b", "../x", "a b", "a:b", "é", "a%20"] {
            assert_eq!(
                VideoId::parse(raw),
                Err(VideoIdError::InvalidCharacter),
                "{raw}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_accepted_id_uses_only_the_safe_charset(raw in ".{0,80}") {
            if let Ok(id) = VideoId::parse(&raw) {
                prop_assert!(id.as_ref().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                prop_assert!(!id.as_ref().is_empty() && id.as_ref().len() <= VIDEO_ID_MAX_LEN);
            }
        }
    }
}
