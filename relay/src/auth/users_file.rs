//! The users file as the running relay sees it (`serve --users-file`): loaded at start, re-read
//! when it changes (its modification time and length are polled) and on SIGHUP, and published
//! through a `watch` channel so every live session of a signed-in person re-checks what it may
//! see the moment the file changes.
//!
//! A file that fails to parse after an edit is logged and ignored: the relay keeps the last good
//! list rather than signing everyone out over a typo.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use deskbridge_auth::{Users, UsersError};
use tokio::sync::watch;

/// The current list of people; `None` when sign-in is off (no users file).
pub type CurrentUsers = Option<Arc<Users>>;

pub struct UsersFile {
    path: Option<PathBuf>,
    users: watch::Sender<CurrentUsers>,
    /// Modification time and length last loaded, to notice edits cheaply.
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

impl UsersFile {
    /// Loads `path` (if any); at start a missing or broken file is an error, so a relay never
    /// runs with sign-in silently off.
    pub fn new(path: Option<PathBuf>) -> Result<Self, UsersError> {
        let file = Self {
            path,
            users: watch::Sender::new(None),
            stamp: Mutex::new(None),
        };
        file.reload()?;
        Ok(file)
    }

    /// Sign-in is on.
    pub fn enabled(&self) -> bool {
        self.path.is_some()
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The people as of the last good load.
    pub fn current(&self) -> CurrentUsers {
        self.users.borrow().clone()
    }

    /// A receiver that wakes whenever the list changes.
    pub fn subscribe(&self) -> watch::Receiver<CurrentUsers> {
        self.users.subscribe()
    }

    /// Re-reads the file; returns how many people it lists. On an error the last good list stays.
    pub fn reload(&self) -> Result<usize, UsersError> {
        let Some(path) = &self.path else {
            return Ok(0);
        };
        let stamp = stamp_of(path);
        let users = Users::load(path)?;
        let count = users.iter().count();
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = stamp;
        self.users.send_if_modified(|current| {
            if current.as_deref() == Some(&users) {
                false
            } else {
                *current = Some(Arc::new(users));
                true
            }
        });
        Ok(count)
    }

    /// Reloads if the file's modification time or length changed since the last load.
    pub fn reload_if_changed(&self) -> Result<Option<usize>, UsersError> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let now = stamp_of(path);
        if now == *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(None);
        }
        // Remember the stamp even if the new text is broken, so it is reported once per edit.
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = now;
        self.reload().map(Some)
    }
}

fn stamp_of(path: &Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

#[cfg(test)]
mod tests {
    use deskbridge_auth::{Patterns, Role};

    use super::*;

    #[test]
    fn follows_edits_and_keeps_the_last_good_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let mut users = Users::default();
        users
            .add("alice", Role::Operator, Patterns::parse("*").unwrap(), "pw")
            .unwrap();
        users.save(&path).unwrap();
        let file = UsersFile::new(Some(path.clone())).unwrap();
        assert!(file.current().unwrap().get("alice").is_some());
        let rx = file.subscribe();

        users.remove("alice").unwrap();
        users.save(&path).unwrap();
        file.reload().unwrap();
        assert!(rx.has_changed().unwrap());
        assert!(file.current().unwrap().get("alice").is_none());

        std::fs::write(&path, "not toml [[[").unwrap();
        assert!(file.reload_if_changed().is_err());
        assert!(file.current().is_some(), "the last good list stays");
        assert_eq!(file.reload_if_changed().unwrap(), None, "reported once");
    }

    #[test]
    fn without_a_file_sign_in_is_off() {
        let file = UsersFile::new(None).unwrap();
        assert!(!file.enabled() && file.current().is_none());
        assert!(UsersFile::new(Some("/nonexistent/users.toml".into())).is_err());
    }
}
