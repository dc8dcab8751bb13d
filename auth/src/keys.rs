//! The relay's token signing keys, read from a key file.
//!
//! One key per line, `<kid> <secret>`, the secret in unpadded base64url; `#` starts a comment. The
//! first key signs new tokens and every key verifies, so keys rotate without dropping anyone: add
//! the new key on top, restart (or reload), and remove the old one once its tokens have expired.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;

/// Shortest accepted secret: HS256's own block of security.
pub const MIN_KEY_BYTES: usize = 32;

/// A signing key: its id (the JWT `kid`) and secret.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    pub secret: Vec<u8>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret, even in a debug log.
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The keys of a key file, signing key first.
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<Key>,
}

/// What is wrong with a key file, worded to say how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error(
        "cannot read key file {path}: {source}; create one with `deskbridge-relay keygen {path}`"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "key file {path} has no keys; create one with `deskbridge-relay keygen {path} --force`"
    )]
    Empty { path: PathBuf },
    #[error("key file {path}, line {line}: expected `<kid> <base64url secret>`")]
    Syntax { path: PathBuf, line: usize },
    #[error("key file {path}, line {line}: the secret is not base64url")]
    Encoding { path: PathBuf, line: usize },
    #[error("key file {path}, line {line}: key {kid:?} has {len} bytes, fewer than the {MIN_KEY_BYTES} required; create a new one with `deskbridge-relay keygen`")]
    TooShort {
        path: PathBuf,
        line: usize,
        kid: String,
        len: usize,
    },
    #[error(
        "{path} exists; pass --force to replace it (tokens signed with its keys will stop working)"
    )]
    Exists { path: PathBuf },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl KeySet {
    /// Reads and checks a key file.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let text = fs::read_to_string(path).map_err(|source| KeyFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self, KeyFileError> {
        let mut keys = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(kid), Some(secret), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(KeyFileError::Syntax {
                    path: path.to_owned(),
                    line: i + 1,
                });
            };
            let secret = URL_SAFE_NO_PAD
                .decode(secret.trim_end_matches('='))
                .map_err(|_| KeyFileError::Encoding {
                    path: path.to_owned(),
                    line: i + 1,
                })?;
            if secret.len() < MIN_KEY_BYTES {
                return Err(KeyFileError::TooShort {
                    path: path.to_owned(),
                    line: i + 1,
                    kid: kid.to_owned(),
                    len: secret.len(),
                });
            }
            keys.push(Key {
                kid: kid.to_owned(),
                secret,
            });
        }
        if keys.is_empty() {
            return Err(KeyFileError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Self { keys })
    }

    /// The key that signs new tokens.
    pub fn signing(&self) -> &Key {
        &self.keys[0]
    }

    /// The key named `kid`, if this set has it.
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Writes a new key file with one random 32-byte key, readable by its owner only.
    pub fn generate(path: &Path, force: bool) -> Result<Key, KeyFileError> {
        let write_err = |source| KeyFileError::Write {
            path: path.to_owned(),
            source,
        };
        if path.exists() && !force {
            return Err(KeyFileError::Exists {
                path: path.to_owned(),
            });
        }
        let mut secret = vec![0u8; MIN_KEY_BYTES];
        rand::rng().fill_bytes(&mut secret);
        let mut kid_bytes = [0u8; 4];
        rand::rng().fill_bytes(&mut kid_bytes);
        let kid = format!(
            "k{}",
            kid_bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let text = format!(
            "# deskbridge relay token keys: one per line, \"<kid> <base64url secret>\".\n\
             # The first key signs new tokens; every key verifies. To rotate, add a new key on\n\
             # top and remove the old one once the tokens it signed have expired.\n\
             {kid} {}\n",
            URL_SAFE_NO_PAD.encode(&secret)
        );
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(write_err)?;
        #[cfg(unix)]
        {
            // `mode` only applies to new files; a replaced one must not keep looser permissions.
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(write_err)?;
        }
        file.write_all(text.as_bytes()).map_err(write_err)?;
        Ok(Key { kid, secret })
    }

    /// A key set from keys in memory (tests, embedding).
    pub fn from_keys(keys: Vec<Key>) -> Option<Self> {
        (!keys.is_empty()).then_some(Self { keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KeySet, KeyFileError> {
        KeySet::parse(text, Path::new("keys"))
    }

    #[test]
    fn first_key_signs_and_all_verify() {
        let a = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let b = URL_SAFE_NO_PAD.encode([2u8; 40]);
        let set = parse(&format!("# comment\n\nnew {a}\nold {b}  # retiring\n")).unwrap();
        assert_eq!(set.signing().kid, "new");
        assert_eq!(set.get("old").unwrap().secret, vec![2u8; 40]);
        assert!(set.get("other").is_none());
    }

    #[test]
    fn short_empty_and_garbled_files_are_refused_with_advice() {
        let short = URL_SAFE_NO_PAD.encode([1u8; 16]);
        let err = parse(&format!("k {short}")).unwrap_err().to_string();
        assert!(err.contains("16 bytes") && err.contains("keygen"), "{err}");
        assert!(matches!(
            parse("# nothing\n"),
            Err(KeyFileError::Empty { .. })
        ));
        assert!(matches!(
            parse("onlykid\n"),
            Err(KeyFileError::Syntax { line: 1, .. })
        ));
        assert!(matches!(
            parse("k !!!\n"),
            Err(KeyFileError::Encoding { .. })
        ));
    }

    #[test]
    fn generate_writes_a_private_loadable_file_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.keys");
        let key = KeySet::generate(&path, false).unwrap();
        let set = KeySet::load(&path).unwrap();
        assert_eq!(set.signing().kid, key.kid);
        assert_eq!(set.signing().secret, key.secret);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(matches!(
            KeySet::generate(&path, false),
            Err(KeyFileError::Exists { .. })
        ));
        let replaced = KeySet::generate(&path, true).unwrap();
        assert_ne!(replaced.secret, key.secret);
        assert!(!format!("{key:?}").contains(&URL_SAFE_NO_PAD.encode(&key.secret)));
    }
}
