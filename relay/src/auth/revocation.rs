//! Revoked token ids (`jti`): read from a file the operator edits, and revoked at runtime by the
//! relay itself (a sign-out, a revoked share link), in memory, beside the file's.
//!
//! The file lists one `jti` per line (`#` starts a comment). It is re-read when it changes (the
//! relay polls its modification time) and on SIGHUP. Runtime revocations carry the time until
//! which they matter (the token's latest possible expiry) and are pruned after it, so the set
//! stays as small as the tokens still alive. Every live session watches the union of both, so
//! revoking a token also closes the sessions that are using it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

pub type RevokedSet = Arc<HashSet<String>>;

/// A runtime revocation: the token id, and until when (Unix seconds) it needs remembering.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revoked {
    pub jti: String,
    pub until: u64,
}

pub struct Revocations {
    path: Option<PathBuf>,
    /// What sessions watch: the file's ids and the runtime ones.
    set: watch::Sender<RevokedSet>,
    /// The file's ids as last read.
    file: std::sync::Mutex<HashSet<String>>,
    /// Runtime revocations: jti → until (Unix seconds).
    runtime: std::sync::Mutex<HashMap<String, u64>>,
    /// Modification time and length last loaded, to notice edits cheaply.
    stamp: std::sync::Mutex<Option<(SystemTime, u64)>>,
}

impl Revocations {
    /// Loads `path` (if any). A missing file is an empty list, so the file can be created later.
    pub fn new(path: Option<PathBuf>) -> std::io::Result<Self> {
        let revocations = Self {
            path,
            set: watch::Sender::new(Arc::new(HashSet::new())),
            file: std::sync::Mutex::new(HashSet::new()),
            runtime: std::sync::Mutex::new(HashMap::new()),
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
        *lock(&self.file) = ids;
        self.publish();
        Ok(count)
    }

    /// Revokes `jti` now, in memory, until `until` (Unix seconds: the latest its token, or any
    /// renewal of it, can expire). Returns whether it was new.
    pub fn revoke(&self, jti: &str, until: u64) -> bool {
        let new = {
            let mut runtime = lock(&self.runtime);
            let entry = runtime.entry(jti.to_owned()).or_insert(0);
            let new = *entry == 0;
            *entry = (*entry).max(until);
            new
        };
        if new {
            self.publish();
        }
        new
    }

    /// Forgets runtime revocations whose tokens have all expired by `now` (Unix seconds).
    pub fn prune(&self, now: u64) -> usize {
        let removed = {
            let mut runtime = lock(&self.runtime);
            let before = runtime.len();
            runtime.retain(|_, until| *until > now);
            before - runtime.len()
        };
        if removed > 0 {
            self.publish();
        }
        removed
    }

    /// The runtime revocations, for a file in the data directory and for other cluster nodes.
    pub fn runtime(&self) -> Vec<Revoked> {
        let mut all: Vec<Revoked> = lock(&self.runtime)
            .iter()
            .map(|(jti, until)| Revoked {
                jti: jti.clone(),
                until: *until,
            })
            .collect();
        all.sort_by(|a, b| a.jti.cmp(&b.jti));
        all
    }

    /// Publishes the union of the file's and the runtime ids, if it changed.
    fn publish(&self) {
        let mut ids = lock(&self.file).clone();
        ids.extend(lock(&self.runtime).keys().cloned());
        self.set.send_if_modified(|current| {
            if **current == ids {
                false
            } else {
                *current = Arc::new(ids);
                true
            }
        });
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

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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

    #[test]
    fn runtime_revocations_join_the_file_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked");
        std::fs::write(&path, "from-file\n").unwrap();
        let revocations = Revocations::new(Some(path.clone())).unwrap();
        let mut rx = revocations.subscribe();
        rx.mark_unchanged();
        assert!(revocations.revoke("signed-out", 100));
        assert!(!revocations.revoke("signed-out", 200), "already there");
        assert!(rx.has_changed().unwrap());
        assert!(revocations.is_revoked("signed-out") && revocations.is_revoked("from-file"));
        // Re-reading the file keeps the runtime ones.
        std::fs::write(&path, "other\n").unwrap();
        revocations.reload().unwrap();
        assert!(revocations.is_revoked("signed-out") && !revocations.is_revoked("from-file"));
        assert_eq!(
            revocations.runtime(),
            vec![Revoked {
                jti: "signed-out".into(),
                until: 200
            }]
        );
        assert_eq!(revocations.prune(150), 0);
        assert_eq!(revocations.prune(200), 1);
        assert!(!revocations.is_revoked("signed-out") && revocations.is_revoked("other"));
    }
}
