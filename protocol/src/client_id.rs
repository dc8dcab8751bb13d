//! Client ids: the name that pairs a desktop with its viewers.
//!
//! Ids show up in logs, metrics labels and URLs, so they are restricted to a small safe alphabet
//! (`[A-Za-z0-9._-]`, 1–64 characters, starting with a letter or digit so that no id reads like
//! a relative path or an option) and checked once, where they enter the system.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest accepted client id, in characters (all ASCII, so also bytes).
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// A validated client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

/// Why a string is not a valid client id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidClientId {
    #[error("client_id is empty; use 1-{MAX_CLIENT_ID_LEN} characters of A-Z a-z 0-9 . _ -")]
    Empty,
    #[error("client_id is {0} characters long; the limit is {MAX_CLIENT_ID_LEN}")]
    TooLong(usize),
    #[error("client_id may only contain A-Z a-z 0-9 . _ - (found {0:?})")]
    BadCharacter(char),
    #[error("client_id must start with a letter or a digit")]
    BadStart,
}

impl ClientId {
    /// Checks `id` against the id rules.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidClientId> {
        let id = id.into();
        if id.is_empty() {
            return Err(InvalidClientId::Empty);
        }
        let chars = id.chars().count();
        if chars > MAX_CLIENT_ID_LEN {
            return Err(InvalidClientId::TooLong(chars));
        }
        if let Some(bad) = id.chars().find(|c| !is_id_char(*c)) {
            return Err(InvalidClientId::BadCharacter(bad));
        }
        if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(InvalidClientId::BadStart);
        }
        Ok(Self(id))
    }

    /// Turns any string (a hostname, say) into a valid id: characters outside the alphabet become
    /// `-`, leading punctuation is dropped, the result is cut to the length limit, and an empty
    /// result becomes `desktop`.
    pub fn sanitize(raw: &str) -> Self {
        let id: String = raw
            .chars()
            .map(|c| if is_id_char(c) { c } else { '-' })
            .skip_while(|c| !c.is_ascii_alphanumeric())
            .take(MAX_CLIENT_ID_LEN)
            .collect();
        if id.is_empty() {
            return Self("desktop".to_owned());
        }
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ClientId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        ClientId::new(raw).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for ClientId {
    type Err = InvalidClientId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_id_alphabet() {
        for ok in ["a", "alice-laptop", "A.b_c-9", &"x".repeat(64)] {
            assert!(ClientId::new(ok).is_ok(), "{ok} should be valid");
        }
    }

    #[test]
    fn rejects_empty_long_and_unsafe_ids() {
        assert_eq!(ClientId::new(""), Err(InvalidClientId::Empty));
        assert_eq!(
            ClientId::new("x".repeat(65)),
            Err(InvalidClientId::TooLong(65))
        );
        for (bad, c) in [("a/b", '/'), ("a b", ' '), ("é", 'é'), ("a\0", '\0')] {
            assert_eq!(ClientId::new(bad), Err(InvalidClientId::BadCharacter(c)));
        }
        for bad in ["..", ".hidden", "-rf", "_x"] {
            assert_eq!(ClientId::new(bad), Err(InvalidClientId::BadStart));
        }
    }

    #[test]
    fn sanitize_makes_any_hostname_valid() {
        assert_eq!(
            ClientId::sanitize("my host.local").as_str(),
            "my-host.local"
        );
        assert_eq!(ClientId::sanitize("").as_str(), "desktop");
        assert_eq!(ClientId::sanitize("///").as_str(), "desktop");
        assert_eq!(ClientId::sanitize("..box").as_str(), "box");
        assert_eq!(
            ClientId::sanitize(&format!("é{}", "a".repeat(100)))
                .as_str()
                .len(),
            64
        );
        assert!(ClientId::new(ClientId::sanitize("Ünïcødé box").as_str()).is_ok());
    }
}
