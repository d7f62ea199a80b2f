//! Partial-plate patterns from witness statements: `7X?2*`, `ABC 1_3`.
//!
//! `?` and `_` stand for exactly one unknown character, `*` and `%` for any run of characters
//! (including none). Spaces, hyphens and dots are dropped like in plates; known characters are
//! folded like plates (`schemas/README.md`).

use std::fmt;

use crate::normalize::{fold_lookalike, MAX_PLATE_LEN};

/// Known characters a pattern must name: `*` alone, or `A*`, would alert on a large share of all
/// traffic, which helps no one.
pub const MIN_PATTERN_KNOWN_CHARACTERS: usize = 2;

/// One element of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternToken {
    Known(u8),
    /// Exactly one unknown character.
    AnyOne,
    /// Any run of characters, possibly empty.
    AnyRun,
}

/// A parsed partial plate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlatePattern {
    tokens: Vec<PatternToken>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("pattern {pattern:?} contains {character:?}, which no plate has")]
    BadCharacter { pattern: String, character: char },
    #[error(
        "pattern {pattern:?} names only {known} known character(s); at least {MIN_PATTERN_KNOWN_CHARACTERS} are needed"
    )]
    TooFewKnownCharacters { pattern: String, known: usize },
    #[error("pattern {pattern:?} is longer than any plate ({MAX_PLATE_LEN} characters)")]
    TooLong { pattern: String },
}

/// Whether plate text written by an agency is a partial-plate pattern rather than a plate.
pub fn is_pattern(text: &str) -> bool {
    text.contains(['?', '_', '*', '%'])
}

impl PlatePattern {
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let mut tokens: Vec<PatternToken> = Vec::with_capacity(text.len());
        for character in text.chars() {
            let token = match character {
                '?' | '_' => PatternToken::AnyOne,
                '*' | '%' => PatternToken::AnyRun,
                ' ' | '-' | '.' | '\t' => continue,
                other => {
                    let folded =
                        fold_lookalike(other).ok_or_else(|| PatternError::BadCharacter {
                            pattern: text.to_owned(),
                            character: other,
                        })?;
                    // fold_lookalike returns ASCII letters and digits only.
                    PatternToken::Known(folded as u8)
                }
            };
            // `**` means the same as `*`; keeping one makes matching simpler.
            if token == PatternToken::AnyRun && tokens.last() == Some(&PatternToken::AnyRun) {
                continue;
            }
            tokens.push(token);
        }
        let pattern = Self { tokens };
        let known = pattern.known_count();
        if known < MIN_PATTERN_KNOWN_CHARACTERS {
            return Err(PatternError::TooFewKnownCharacters {
                pattern: text.to_owned(),
                known,
            });
        }
        if pattern.min_len() > MAX_PLATE_LEN {
            return Err(PatternError::TooLong {
                pattern: text.to_owned(),
            });
        }
        Ok(pattern)
    }

    pub fn tokens(&self) -> &[PatternToken] {
        &self.tokens
    }

    pub fn known_count(&self) -> usize {
        self.tokens
            .iter()
            .filter(|token| matches!(token, PatternToken::Known(_)))
            .count()
    }

    /// Characters every matching plate has at least.
    pub fn min_len(&self) -> usize {
        self.tokens
            .iter()
            .filter(|token| !matches!(token, PatternToken::AnyRun))
            .count()
    }

    /// Runs of adjacent known characters, longest first (the index keys a pattern by the first:
    /// [`Self::longest_known_run`]).
    pub fn known_runs(&self) -> Vec<&[PatternToken]> {
        let mut runs: Vec<&[PatternToken]> = self.runs_with_starts().map(|(_, run)| run).collect();
        runs.sort_by_key(|run| std::cmp::Reverse(run.len()));
        runs
    }

    /// The longest run of adjacent known characters (the first of equally long ones) and where
    /// it starts among [`Self::tokens`].
    pub fn longest_known_run(&self) -> Option<(usize, &[PatternToken])> {
        self.runs_with_starts().fold(
            None,
            |longest: Option<(usize, &[PatternToken])>, (start, run)| match longest {
                Some((_, kept)) if kept.len() >= run.len() => longest,
                _ => Some((start, run)),
            },
        )
    }

    fn runs_with_starts(&self) -> impl Iterator<Item = (usize, &[PatternToken])> + '_ {
        let is_known = |token: &PatternToken| matches!(token, PatternToken::Known(_));
        let mut start = 0;
        std::iter::from_fn(move || {
            start += self.tokens[start..]
                .iter()
                .take_while(|t| !is_known(t))
                .count();
            let len = self.tokens[start..]
                .iter()
                .take_while(|t| is_known(t))
                .count();
            (len > 0).then(|| {
                let run = &self.tokens[start..start + len];
                let found = (start, run);
                start += len;
                found
            })
        })
    }

    /// Matches `plate` (normalized) and returns, for the explanation, what each unknown stood for:
    /// (position in the plate, 0-based, the characters). `None` when it does not match.
    pub fn match_plate(&self, plate: &[u8]) -> Option<Vec<(usize, Vec<u8>)>> {
        // Most candidates fail: decide without recording (no allocation), record only on success.
        if !self.matches(plate) {
            return None;
        }
        let mut filled = Vec::new();
        matches_from(&self.tokens, plate, 0, &mut filled).then_some(filled)
    }

    /// Whether `plate` (normalized) fits the pattern.
    pub fn matches(&self, plate: &[u8]) -> bool {
        fits(&self.tokens, plate)
    }
}

fn fits(tokens: &[PatternToken], plate: &[u8]) -> bool {
    let Some((token, rest)) = tokens.split_first() else {
        return plate.is_empty();
    };
    match token {
        PatternToken::Known(known) => plate.first() == Some(known) && fits(rest, &plate[1..]),
        PatternToken::AnyOne => !plate.is_empty() && fits(rest, &plate[1..]),
        PatternToken::AnyRun => (0..=plate.len()).any(|taken| fits(rest, &plate[taken..])),
    }
}

/// Backtracking glob match; patterns and plates are at most a dozen characters, so the
/// exponential worst case is irrelevant.
fn matches_from(
    tokens: &[PatternToken],
    plate: &[u8],
    position: usize,
    filled: &mut Vec<(usize, Vec<u8>)>,
) -> bool {
    let Some((token, rest)) = tokens.split_first() else {
        return plate.is_empty();
    };
    match token {
        PatternToken::Known(known) => {
            plate.first() == Some(known) && matches_from(rest, &plate[1..], position + 1, filled)
        }
        PatternToken::AnyOne => {
            if plate.is_empty() {
                return false;
            }
            filled.push((position, vec![plate[0]]));
            if matches_from(rest, &plate[1..], position + 1, filled) {
                return true;
            }
            filled.pop();
            false
        }
        PatternToken::AnyRun => {
            for taken in 0..=plate.len() {
                let depth = filled.len();
                if taken > 0 {
                    filled.push((position, plate[..taken].to_vec()));
                }
                if matches_from(rest, &plate[taken..], position + taken, filled) {
                    return true;
                }
                filled.truncate(depth);
            }
            false
        }
    }
}

impl fmt::Display for PlatePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for token in &self.tokens {
            match token {
                PatternToken::Known(known) => write!(f, "{}", char::from(*known))?,
                PatternToken::AnyOne => f.write_str("?")?,
                PatternToken::AnyRun => f.write_str("*")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, plate: &str) -> bool {
        PlatePattern::parse(pattern)
            .unwrap()
            .match_plate(plate.as_bytes())
            .is_some()
    }

    #[test]
    fn single_and_run_wildcards_match_like_a_witness_means_them() {
        assert!(matches("7X?2*", "7XK2"));
        assert!(matches("7X?2*", "7XK229"));
        assert!(!matches("7X?2*", "7X2"), "? is exactly one character");
        assert!(!matches("7X?2*", "8XK229"));
        assert!(matches("ABC 1_3", "ABC123"));
        assert!(matches("abc-1_3", "ABC1Z3"));
        assert!(!matches("ABC 1_3", "ABC1234"));
        assert!(matches("%K22%", "7XK229"));
        assert!(matches("*229", "7XK229"));
    }

    #[test]
    fn the_unknowns_are_reported_with_what_they_stood_for() {
        let pattern = PlatePattern::parse("7X?2*").unwrap();
        let filled = pattern.match_plate(b"7XK229").unwrap();
        assert_eq!(filled, vec![(2, b"K".to_vec()), (4, b"29".to_vec())]);
        assert_eq!(pattern.to_string(), "7X?2*");
    }

    #[test]
    fn patterns_that_would_match_most_traffic_are_refused() {
        assert!(matches!(
            PlatePattern::parse("*"),
            Err(PatternError::TooFewKnownCharacters { known: 0, .. })
        ));
        assert!(matches!(
            PlatePattern::parse("A??*"),
            Err(PatternError::TooFewKnownCharacters { known: 1, .. })
        ));
        assert!(matches!(
            PlatePattern::parse("AB?#"),
            Err(PatternError::BadCharacter { character: '#', .. })
        ));
        assert!(matches!(
            PlatePattern::parse("AB?????????"),
            Err(PatternError::TooLong { .. })
        ));
    }

    #[test]
    fn the_longest_known_run_is_the_first_of_equals_and_says_where_it_starts() {
        let pattern = PlatePattern::parse("?AB*CDE?FGH").unwrap();
        let (start, run) = pattern.longest_known_run().unwrap();
        assert_eq!((start, run.len()), (4, 3));
        assert_eq!(
            PlatePattern::parse("A?B?C")
                .unwrap()
                .longest_known_run()
                .unwrap()
                .0,
            0
        );
    }

    #[test]
    fn known_runs_are_longest_first() {
        let pattern = PlatePattern::parse("7X?2*K29").unwrap();
        let runs: Vec<usize> = pattern.known_runs().iter().map(|run| run.len()).collect();
        assert_eq!(runs, vec![3, 2, 1]);
        assert!(is_pattern("ABC 1_3") && !is_pattern("ABC 123"));
    }
}
