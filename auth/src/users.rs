//! People who may sign in: a users file, like the key file — plain text (TOML), mode 0600, safe to
//! keep in configuration management and to copy to every node of a cluster, so no node needs a
//! database.
//!
//! ```toml
//! [[user]]
//! name = "alice"
//! role = "operator"
//! desktops = "alice-*,office-printer"
//! password = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! ```
//!
//! Passwords are stored as argon2id hashes (the `argon2` crate, its default parameters). Hashing
//! and verifying take tens of milliseconds of CPU on purpose: callers on an async worker run them
//! on a blocking pool.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use crate::patterns::{PatternError, Patterns};

pub use deskbridge_protocol::Role;

/// One person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub desktops: Patterns,
    /// The argon2id hash (PHC string); never the password.
    password: String,
}

/// The users file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    users: Vec<User>,
}

/// Why a users file or a change to it was refused; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("cannot read the users file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the users file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("the users file is not valid: {0}")]
    Syntax(String),
    #[error("user {name:?}: {error}")]
    Desktops { name: String, error: PatternError },
    #[error("user {0:?} has a password that is not an argon2 hash; set it with `deskbridge-relay user passwd {0}`")]
    BadHash(String),
    #[error("{0:?} is not a valid user name: use 1–64 of A-Z a-z 0-9 . _ @ -")]
    BadName(String),
    #[error("user {0:?} appears twice")]
    Duplicate(String),
    #[error("user {0:?} already exists: change it with `user set` or `user passwd`")]
    Exists(String),
    #[error("there is no user {0:?} (see `deskbridge-relay user list`)")]
    NoSuchUser(String),
    #[error("the password is empty")]
    EmptyPassword,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

#[derive(Serialize, Deserialize)]
struct FileForm {
    #[serde(default, rename = "user")]
    users: Vec<UserForm>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserForm {
    name: String,
    role: Role,
    desktops: String,
    password: String,
}

const HEADER: &str = "# deskbridge users: written by `deskbridge-relay user …`; keep it mode 0600.\n# Passwords are argon2id hashes. Copy this file to every relay of a cluster.\n\n";

impl Users {
    /// Parses a users file's text, checking every name, pattern and hash.
    pub fn parse(text: &str) -> Result<Self, UsersError> {
        let form: FileForm = toml::from_str(text).map_err(|e| UsersError::Syntax(e.to_string()))?;
        let mut users = Users::default();
        for u in form.users {
            check_name(&u.name)?;
            if users.get(&u.name).is_some() {
                return Err(UsersError::Duplicate(u.name));
            }
            let desktops = Patterns::parse(&u.desktops).map_err(|error| UsersError::Desktops {
                name: u.name.clone(),
                error,
            })?;
            if PasswordHash::new(&u.password).is_err() {
                return Err(UsersError::BadHash(u.name));
            }
            users.users.push(User {
                name: u.name,
                role: u.role,
                desktops,
                password: u.password,
            });
        }
        Ok(users)
    }

    /// The file's text: what [`Users::parse`] reads back.
    pub fn to_text(&self) -> String {
        let form = FileForm {
            users: self
                .users
                .iter()
                .map(|u| UserForm {
                    name: u.name.clone(),
                    role: u.role,
                    desktops: u.desktops.to_string(),
                    password: u.password.clone(),
                })
                .collect(),
        };
        let body = toml::to_string(&form).expect("plain strings always serialize as TOML");
        format!("{HEADER}{body}")
    }

    /// Reads a users file; a missing file is an error (a relay told to use one needs it).
    pub fn load(path: &Path) -> Result<Self, UsersError> {
        let text = fs::read_to_string(path).map_err(|source| UsersError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Like [`Users::load`], but a missing file is an empty list (for `user add` creating it).
    pub fn load_or_empty(path: &Path) -> Result<Self, UsersError> {
        match fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            _ => Self::load(path),
        }
    }

    /// Writes the file atomically (a temporary file in the same directory, mode 0600, renamed
    /// over), so a relay re-reading it never sees half of it.
    pub fn save(&self, path: &Path) -> Result<(), UsersError> {
        let failed = |source| UsersError::Write {
            path: path.display().to_string(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o600)).map_err(failed)?;
        }
        tmp.write_all(self.to_text().as_bytes()).map_err(failed)?;
        tmp.as_file().sync_all().map_err(failed)?;
        tmp.persist(path).map_err(|e| failed(e.error))?;
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &User> {
        self.users.iter()
    }

    /// Adds a person. Hashes the password: slow on purpose.
    pub fn add(
        &mut self,
        name: &str,
        role: Role,
        desktops: Patterns,
        password: &str,
    ) -> Result<(), UsersError> {
        check_name(name)?;
        if self.get(name).is_some() {
            return Err(UsersError::Exists(name.to_owned()));
        }
        let password = hash(password)?;
        self.users.push(User {
            name: name.to_owned(),
            role,
            desktops,
            password,
        });
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> Result<(), UsersError> {
        let before = self.users.len();
        self.users.retain(|u| u.name != name);
        if self.users.len() == before {
            return Err(UsersError::NoSuchUser(name.to_owned()));
        }
        Ok(())
    }

    /// Changes a person's role and/or desktops.
    pub fn set(
        &mut self,
        name: &str,
        role: Option<Role>,
        desktops: Option<Patterns>,
    ) -> Result<(), UsersError> {
        let user = self.get_mut(name)?;
        if let Some(role) = role {
            user.role = role;
        }
        if let Some(desktops) = desktops {
            user.desktops = desktops;
        }
        Ok(())
    }

    /// Replaces a person's password. Hashes it: slow on purpose.
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<(), UsersError> {
        let hashed = hash(password)?;
        self.get_mut(name)?.password = hashed;
        Ok(())
    }

    /// The person `name` if `password` is theirs. Blocking and slow on purpose (argon2): run it
    /// on a blocking pool. An unknown name costs the same as a wrong password (a dummy hash is
    /// verified), so timing does not tell which names exist.
    pub fn verify(&self, name: &str, password: &str) -> Option<&User> {
        let user = self.get(name);
        let hash = user.map_or(DUMMY_HASH, |u| u.password.as_str());
        let ok = PasswordHash::new(hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        user.filter(|_| ok)
    }

    fn get_mut(&mut self, name: &str) -> Result<&mut User, UsersError> {
        self.users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| UsersError::NoSuchUser(name.to_owned()))
    }
}

/// The argon2id hash of a password nobody has, verified for unknown names.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ZGVza2JyaWRnZS1kdW1teQ$OnU1pdSMFwUDbNg24uZAojbEEMFswyCRyYnOEoeY6yw";

fn hash(password: &str) -> Result<String, UsersError> {
    if password.is_empty() {
        return Err(UsersError::EmptyPassword);
    }
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| UsersError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Hash(e.to_string()))
}

fn check_name(name: &str) -> Result<(), UsersError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(UsersError::BadName(name.chars().take(64).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn everyone() -> Patterns {
        Patterns::parse("*").unwrap()
    }

    #[test]
    fn add_verify_change_and_remove() {
        let mut users = Users::default();
        users
            .add(
                "alice",
                Role::Operator,
                Patterns::parse("alice-*").unwrap(),
                "s3cret",
            )
            .unwrap();
        assert!(matches!(
            users.add("alice", Role::Viewer, everyone(), "x"),
            Err(UsersError::Exists(_))
        ));
        assert_eq!(
            users.verify("alice", "s3cret").map(|u| u.role),
            Some(Role::Operator)
        );
        assert!(users.verify("alice", "wrong").is_none());
        assert!(users.verify("nobody", "s3cret").is_none());
        users.set_password("alice", "n3w").unwrap();
        assert!(users.verify("alice", "s3cret").is_none());
        assert!(users.verify("alice", "n3w").is_some());
        users.set("alice", Some(Role::Viewer), None).unwrap();
        assert_eq!(users.get("alice").unwrap().role, Role::Viewer);
        users.remove("alice").unwrap();
        assert!(matches!(
            users.remove("alice"),
            Err(UsersError::NoSuchUser(_))
        ));
        assert!(matches!(
            users.add("bad name", Role::Viewer, everyone(), "x"),
            Err(UsersError::BadName(_))
        ));
        assert!(matches!(
            users.add("b", Role::Viewer, everyone(), ""),
            Err(UsersError::EmptyPassword)
        ));
    }

    #[test]
    fn the_dummy_hash_is_a_valid_argon2id_hash() {
        let parsed = PasswordHash::new(DUMMY_HASH).expect("a PHC string");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
    }

    #[test]
    fn the_file_round_trips_holds_no_password_and_is_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let mut users = Users::default();
        users
            .add(
                "bob",
                Role::Viewer,
                Patterns::parse("office-*,bob-pc").unwrap(),
                "hunter2",
            )
            .unwrap();
        users.save(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hunter2"));
        assert!(text.contains("$argon2id$"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let back = Users::load(&path).unwrap();
        assert_eq!(back, users);
        assert!(back.verify("bob", "hunter2").is_some());
    }

    #[test]
    fn broken_files_say_what_is_wrong() {
        let good = "$argon2id$v=19$m=19456,t=2,p=1$ZGVza2JyaWRnZS1kdW1teQ$OnU1pdSMFwUDbNg24uZAojbEEMFswyCRyYnOEoeY6yw";
        let one = |name: &str, role: &str, desktops: &str, password: &str| {
            format!("[[user]]\nname = \"{name}\"\nrole = \"{role}\"\ndesktops = \"{desktops}\"\npassword = \"{password}\"\n")
        };
        assert!(matches!(
            Users::parse("[[user]"),
            Err(UsersError::Syntax(_))
        ));
        assert!(matches!(
            Users::parse(&one("a", "admin", "*", good)),
            Err(UsersError::Syntax(_))
        ));
        assert!(matches!(
            Users::parse(&one("a", "viewer", "a/b", good)),
            Err(UsersError::Desktops { .. })
        ));
        assert!(matches!(
            Users::parse(&one("a", "viewer", "*", "plain")),
            Err(UsersError::BadHash(_))
        ));
        let twice = format!(
            "{}{}",
            one("a", "viewer", "*", good),
            one("a", "viewer", "*", good)
        );
        assert!(matches!(
            Users::parse(&twice),
            Err(UsersError::Duplicate(_))
        ));
        assert_eq!(Users::parse("").unwrap(), Users::default());
    }

    /// Arbitrary text never panics the parser (a fuzz-like sweep with a fixed seed).
    #[test]
    fn property_the_parser_never_panics() {
        let mut state = 0x2545_F491_u64;
        let pieces = [
            "[[user]]\n",
            "name = ",
            "\"a\"",
            "role = ",
            "\"viewer\"",
            "desktops = ",
            "\"*\"",
            "password = ",
            "\"$argon2id$\"",
            "\n",
            "=",
            "[",
            "]",
            "\"",
            "#",
            "ü",
            "\\",
            "{",
            "}",
        ];
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..12 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            let _ = Users::parse(&text);
        }
    }
}
