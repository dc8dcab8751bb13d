//! Which desktops a person may see: a comma-separated list of ids and globs, as given to
//! `deskbridge-relay user add --desktops` (`alice-*,office-printer`, `*` for all).
//!
//! A glob has `*` (any run of characters, none included) and `?` (one character); everything
//! else is a literal in the id alphabet (`A-Z a-z 0-9 . _ -`). Matching is a small iterative
//! wildcard match rather than a general glob crate: ids are short (≤ 64), have no path
//! separators and no classes, and the matcher never allocates.

use std::fmt;

/// Most entries in one list; a person with more desktops than this names them with globs.
pub const MAX_PATTERNS: usize = 256;
/// Longest entry, as long as the longest id.
pub const MAX_PATTERN_LEN: usize = 64;

/// A parsed, validated list of id patterns. Matches an id if any entry does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patterns(Vec<String>);

/// Why a list of patterns was refused; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("no desktops given: list ids and globs like alice-*,office-printer (or * for all)")]
    Empty,
    #[error("an empty entry in the list (two commas in a row, or one at an end)")]
    EmptyEntry,
    #[error("{0:?} is longer than {MAX_PATTERN_LEN} characters")]
    TooLong(String),
    #[error("{pattern:?} has {bad:?}: ids use A-Z a-z 0-9 . _ - and globs add * and ?")]
    BadCharacter { pattern: String, bad: char },
    #[error("more than {MAX_PATTERNS} entries: name groups of desktops with globs")]
    TooMany,
}

impl Patterns {
    /// Parses `alice-*,office-printer`; spaces around entries are ignored.
    pub fn parse(list: &str) -> Result<Self, PatternError> {
        if list.trim().is_empty() {
            return Err(PatternError::Empty);
        }
        let mut entries = Vec::new();
        for entry in list.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(PatternError::EmptyEntry);
            }
            if entry.chars().count() > MAX_PATTERN_LEN {
                return Err(PatternError::TooLong(entry.chars().take(16).collect()));
            }
            if let Some(bad) = entry
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*' | '?')))
            {
                return Err(PatternError::BadCharacter {
                    pattern: entry.chars().take(16).collect(),
                    bad,
                });
            }
            if !entries.iter().any(|e| e == entry) {
                entries.push(entry.to_owned());
            }
        }
        if entries.len() > MAX_PATTERNS {
            return Err(PatternError::TooMany);
        }
        Ok(Self(entries))
    }

    /// Whether `id` is one of these desktops.
    pub fn matches(&self, id: &str) -> bool {
        self.0
            .iter()
            .any(|pattern| glob_match(pattern.as_bytes(), id.as_bytes()))
    }

    /// Exactly one desktop: an id is always a valid literal entry.
    pub fn exactly(id: &deskbridge_protocol::ClientId) -> Self {
        Self(vec![id.as_str().to_owned()])
    }

    /// Whether every id matches (a `*` entry).
    pub fn is_everything(&self) -> bool {
        self.0.iter().any(|p| p.bytes().all(|b| b == b'*'))
    }
}

impl fmt::Display for Patterns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// `*` matches any run, `?` one byte (ids are ASCII). Iterative with one backtrack point: linear
/// in practice, O(len(pattern) × len(id)) at worst.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &str) -> Patterns {
        Patterns::parse(list).unwrap()
    }

    #[test]
    fn ids_and_globs_match_what_they_say() {
        let mine = p("alice-*, office-printer");
        assert!(mine.matches("alice-laptop"));
        assert!(mine.matches("alice-"));
        assert!(mine.matches("office-printer"));
        assert!(!mine.matches("office-printer2"));
        assert!(!mine.matches("bob-alice-x"));
        assert!(p("*").matches("anything.at-all"));
        assert!(p("*").is_everything());
        assert!(!mine.is_everything());
        assert!(p("box-?").matches("box-1"));
        assert!(!p("box-?").matches("box-12"));
        assert!(p("*-laptop").matches("a-b-laptop"));
        assert!(p("a*b*c").matches("a123b456c"));
        assert!(!p("a*b*c").matches("a123b456"));
        assert_eq!(mine.to_string(), "alice-*,office-printer");
    }

    #[test]
    fn bad_lists_say_what_is_wrong() {
        assert_eq!(Patterns::parse(" "), Err(PatternError::Empty));
        assert_eq!(Patterns::parse("a,,b"), Err(PatternError::EmptyEntry));
        assert!(matches!(
            Patterns::parse("alice/laptop"),
            Err(PatternError::BadCharacter { bad: '/', .. })
        ));
        assert!(matches!(
            Patterns::parse(&"x".repeat(65)),
            Err(PatternError::TooLong(_))
        ));
        let many: Vec<String> = (0..300).map(|i| format!("d{i}")).collect();
        assert_eq!(Patterns::parse(&many.join(",")), Err(PatternError::TooMany));
    }

    /// A small deterministic generator: property checks over thousands of ids and patterns,
    /// reproducible run to run.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn string(&mut self, alphabet: &[u8], max: usize) -> String {
            let len = (self.next() % (max as u64 + 1)) as usize;
            (0..len)
                .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
                .collect()
        }
    }

    const ID: &[u8] = b"ab-.1_";
    const GLOB: &[u8] = b"ab-.1_*?";

    #[test]
    fn property_star_matches_all_a_literal_only_itself_and_a_prefix_glob_exactly_its_prefix() {
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5000 {
            let id = g.string(ID, 20);
            let other = g.string(ID, 20);
            assert!(glob_match(b"*", id.as_bytes()));
            assert!(glob_match(id.as_bytes(), id.as_bytes()));
            assert_eq!(glob_match(id.as_bytes(), other.as_bytes()), id == other);
            let prefix = g.string(ID, 6);
            let glob = format!("{prefix}*");
            assert_eq!(
                glob_match(glob.as_bytes(), other.as_bytes()),
                other.starts_with(&prefix),
                "{glob} vs {other}"
            );
        }
    }

    /// The matcher agrees with a slow, obviously-correct recursive one on arbitrary globs.
    #[test]
    fn property_the_matcher_agrees_with_a_reference() {
        fn reference(p: &[u8], t: &[u8]) -> bool {
            match (p.first(), t.first()) {
                (None, None) => true,
                (Some(b'*'), _) => {
                    reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..]))
                }
                (Some(b'?'), Some(_)) => reference(&p[1..], &t[1..]),
                (Some(a), Some(b)) if a == b => reference(&p[1..], &t[1..]),
                _ => false,
            }
        }
        let mut g = Gen(42);
        for _ in 0..20_000 {
            let glob = g.string(GLOB, 10);
            let id = g.string(ID, 12);
            assert_eq!(
                glob_match(glob.as_bytes(), id.as_bytes()),
                reference(glob.as_bytes(), id.as_bytes()),
                "{glob:?} vs {id:?}"
            );
        }
    }

    #[test]
    fn property_parsing_never_panics_on_arbitrary_text() {
        let mut g = Gen(7);
        let alphabet: Vec<u8> = (0x20..0x7f).collect();
        for _ in 0..5000 {
            let text = g.string(&alphabet, 80);
            if let Ok(patterns) = Patterns::parse(&text) {
                // What parses prints back to something that parses the same.
                assert_eq!(Patterns::parse(&patterns.to_string()), Ok(patterns));
            }
        }
    }
}
