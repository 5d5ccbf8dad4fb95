//! Blocked terms: words a video's moderators (or the site's admins) do not want in its chat.
//! Terms and comments are compared after the same folding, so look-alike tricks do not pass:
//! NFKC (fullwidth `ｂａｄ`, ligatures, mathematical letters `𝐛𝐚𝐝`, circled letters fold to
//! `bad`), full Unicode case folding (`BAD`, `Straße`/`STRASSE`), and default-ignorable code
//! points dropped (`b\u{200B}ad` with a zero-width space), NFKC again after folding.
//!
//! A term matches anywhere in a comment, inside words too: a live chat's moderators list what
//! they want gone, and a word boundary is what a troll gets round first.
//!
//! Kept out: where terms are kept and what happens to a match (refused, or held for review).

use icu_casemap::CaseMapper;
use icu_normalizer::ComposingNormalizer;
use icu_properties::CodePointSetData;
use icu_properties::props::DefaultIgnorableCodePoint;

/// The longest term, in characters, as given. With `BLOCKED_TERMS_MAX` it keeps every valid
/// list under the API's 32 KiB body limit however its characters are escaped in JSON.
pub const BLOCKED_TERM_MAX_CHARS: usize = 25;
/// The most terms one list (a video's, or the site's) may hold.
pub const BLOCKED_TERMS_MAX: usize = 100;

/// `text` folded for matching: NFKC, case folding, default-ignorables dropped, NFKC again.
pub fn fold_for_matching(text: &str) -> String {
    let nfkc = ComposingNormalizer::new_nfkc();
    let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    let folded = CaseMapper::new()
        .fold_string(&nfkc.normalize(text))
        .into_owned();
    let kept: String = folded.chars().filter(|c| !ignorable.contains(*c)).collect();
    nfkc.normalize(&kept).into_owned()
}

/// A term as it is matched (folded); made only by `parse`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockedTerm(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockedTermError {
    #[error("a blocked term must have a visible character")]
    Empty,
    #[error("a blocked term may not contain control characters")]
    ControlCharacter,
    #[error("a blocked term may have at most {max} characters")]
    TooLong { max: usize },
}

impl BlockedTerm {
    /// Checks, trims and folds `raw`. The rules apply to the text as given, as the API's schema
    /// states them: no control characters, at most `BLOCKED_TERM_MAX_CHARS`, something other
    /// than white space. A term of nothing but default-ignorable characters (a zero-width space)
    /// folds to nothing and is `None`: it could only ever match everything.
    pub fn parse(raw: &str) -> Result<Option<BlockedTerm>, BlockedTermError> {
        if raw.chars().any(char::is_control) {
            return Err(BlockedTermError::ControlCharacter);
        }
        if raw.chars().count() > BLOCKED_TERM_MAX_CHARS {
            return Err(BlockedTermError::TooLong {
                max: BLOCKED_TERM_MAX_CHARS,
            });
        }
        let trimmed = raw.trim_matches(crate::comment_body::is_space);
        if trimmed.is_empty() {
            return Err(BlockedTermError::Empty);
        }
        let folded = fold_for_matching(trimmed);
        let folded = folded.trim_matches(crate::comment_body::is_space);
        Ok((!folded.is_empty()).then(|| BlockedTerm(folded.to_owned())))
    }

    /// A term read back from storage, where only folded terms are written.
    pub fn from_folded(folded: String) -> BlockedTerm {
        BlockedTerm(folded)
    }

    /// The first of `terms` found in `folded_text` (folded with [`fold_for_matching`]).
    pub fn first_in<'a>(
        folded_text: &str,
        terms: impl IntoIterator<Item = &'a BlockedTerm>,
    ) -> Option<&'a BlockedTerm> {
        terms.into_iter().find(|t| folded_text.contains(&t.0))
    }
}

impl AsRef<str> for BlockedTerm {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(term: &str, text: &str) -> bool {
        let term = BlockedTerm::parse(term).unwrap().unwrap();
        BlockedTerm::first_in(&fold_for_matching(text), [&term]).is_some()
    }

    #[test]
    fn look_alikes_of_a_term_are_caught() {
        for text in [
            "bad",
            "so BAD",
            "ＢＡＤ",              // fullwidth
            "𝐛𝐚𝐝",                 // mathematical bold
            "ⓑⓐⓓ",                 // circled
            "b\u{200B}a\u{200D}d", // zero-width space and joiner
            "b\u{00AD}ad",         // soft hyphen
            "notbadatall",         // inside a word
        ] {
            assert!(blocks("bad", text), "{text:?}");
        }
        assert!(!blocks("bad", "b a d"));
        assert!(!blocks("bad", "good"));
    }

    #[test]
    fn case_folding_is_full_not_just_lowercase() {
        assert!(blocks("straße", "STRASSE"));
        assert!(blocks("STRASSE", "straße"));
        assert!(blocks("ΣΟΦΟΣ", "σοφος"));
        // A term given in a compatibility form folds like the text.
        assert!(blocks("ｆｉ", "fi"));
        assert!(blocks("ﬁ", "FI"));
    }

    #[test]
    fn terms_are_trimmed_folded_and_bounded() {
        assert_eq!(
            BlockedTerm::parse("  Spam  ").unwrap().unwrap().as_ref(),
            "spam"
        );
        assert_eq!(BlockedTerm::parse("   "), Err(BlockedTermError::Empty));
        assert_eq!(BlockedTerm::parse("\u{FEFF}"), Err(BlockedTermError::Empty));
        assert_eq!(BlockedTerm::parse("\u{200B}"), Ok(None), "folds to nothing");
        assert_eq!(
            BlockedTerm::parse("a\u{0}b"),
            Err(BlockedTermError::ControlCharacter)
        );
        assert!(BlockedTerm::parse(&"x".repeat(BLOCKED_TERM_MAX_CHARS)).is_ok());
        assert!(matches!(
            BlockedTerm::parse(&"x".repeat(BLOCKED_TERM_MAX_CHARS + 1)),
            Err(BlockedTermError::TooLong { .. })
        ));
    }
}
