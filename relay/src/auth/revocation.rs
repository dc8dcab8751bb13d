//! Revoked token ids (`jti`), read from a file the operator edits.
//!
//! The file lists one `jti` per line (`#` starts a comment). It is re-read when it changes (the
//! relay polls its modification time) and on SIGHUP. Every live session watches the set, so
//! revoking a token also closes the sessions that are using it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

pub type RevokedSet = Arc<HashSet<String>>;

pub struct Revocations {
    path: Option<PathBuf>,
    set: watch::Sender<RevokedSet>,
    /// Modification time and length last loaded, to notice edits cheaply.
    stamp: std::sync::Mutex<Option<(SystemTime, u64)>>,
}

impl Revocations {
    /// Loads `path` (if any). A missing file is an empty list, so the file can be created later.
    pub fn new(path: Option<PathBuf>) -> std::io::Result<Self> {
        let revocations = Self {
            path,
            set: watch::Sender::new(Arc::new(HashSet::new())),
            stamp: std::sync::Mutex::new(None),
        };
        revocations.reload()?;
        Ok(revocations)
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Re-reads the file; returns how many ids it lists.
    pub fn reload(&self) -> std::io::Result<usize> {
        let Some(path) = &self.path else {
            return Ok(0);
        };
        let (text, stamp) = match std::fs::read_to_string(path) {
            Ok(text) => {
                let meta = std::fs::metadata(path)?;
                (text, Some((meta.modified()?, meta.len())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), None),
            Err(e) => return Err(e),
        };
        let ids: HashSet<String> = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        let count = ids.len();
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = stamp;
        self.set.send_if_modified(|current| {
            if **current == ids {
                false
            } else {
                *current = Arc::new(ids);
                true
            }
        });
        Ok(count)
    }

    /// Reloads if the file's modification time or length changed since the last load.
    pub fn reload_if_changed(&self) -> std::io::Result<Option<usize>> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let now = std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        let last = *self.stamp.lock().unwrap_or_else(|e| e.into_inner());
        if now == last {
            return Ok(None);
        }
        self.reload().map(Some)
    }

    pub fn is_revoked(&self, jti: &str) -> bool {
        self.set.borrow().contains(jti)
    }

    /// A receiver that wakes whenever the set changes.
    pub fn subscribe(&self) -> watch::Receiver<RevokedSet> {
        self.set.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_and_notices_edits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked");
        let revocations = Revocations::new(Some(path.clone())).unwrap();
        assert!(!revocations.is_revoked("abc"));
        let mut rx = revocations.subscribe();

        std::fs::write(&path, "# stolen laptop\nabc\n\n  def  # and this one\n").unwrap();
        assert_eq!(revocations.reload_if_changed().unwrap(), Some(2));
        assert!(revocations.is_revoked("abc") && revocations.is_revoked("def"));
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        assert_eq!(revocations.reload_if_changed().unwrap(), None);

        std::fs::write(&path, "def\n").unwrap();
        revocations.reload().unwrap();
        assert!(!revocations.is_revoked("abc"));
    }
}
