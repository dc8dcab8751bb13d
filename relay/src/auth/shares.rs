//! The registry of view-only links (share links): which links exist, for which desktop, made by
//! whom, until when. A share link's token is good only while its id is here (besides being
//! signed, unexpired and unrevoked), so a link nobody knows any more — the relay restarted
//! without a data directory, or no node of a cluster remembers it — opens nothing.
//!
//! The tokens themselves are never kept: they are shown once, to the operator who made the link.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One view-only link. Times are Unix milliseconds, as everywhere in the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// The link's token id (`jti`).
    pub id: String,
    pub desktop: String,
    /// Who made it (the operator's `by`).
    pub by: String,
    pub created: u64,
    pub expires: u64,
}

/// The live links of this relay (and, in a cluster, of every node).
#[derive(Debug, Default)]
pub struct Shares {
    links: Mutex<HashMap<String, Share>>,
}

impl Shares {
    /// Adds a link; returns whether it was new.
    pub fn insert(&self, share: Share) -> bool {
        self.lock().insert(share.id.clone(), share).is_none()
    }

    /// Removes a link, returning it if it was there.
    pub fn remove(&self, id: &str) -> Option<Share> {
        self.lock().remove(id)
    }

    /// The link `id` if it is live at `now` (Unix ms).
    pub fn get(&self, id: &str, now: u64) -> Option<Share> {
        self.lock().get(id).filter(|s| s.expires > now).cloned()
    }

    /// The live links at `now` that `keep` accepts, newest first.
    pub fn list(&self, now: u64, keep: impl Fn(&Share) -> bool) -> Vec<Share> {
        let mut links: Vec<Share> = self
            .lock()
            .values()
            .filter(|s| s.expires > now && keep(s))
            .cloned()
            .collect();
        links.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        links
    }

    /// Forgets links expired by `now` (Unix ms); returns how many.
    pub fn prune(&self, now: u64) -> usize {
        let mut links = self.lock();
        let before = links.len();
        links.retain(|_, s| s.expires > now);
        before - links.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Share>> {
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(id: &str, desktop: &str, created: u64, expires: u64) -> Share {
        Share {
            id: id.into(),
            desktop: desktop.into(),
            by: "alice".into(),
            created,
            expires,
        }
    }

    #[test]
    fn lists_live_links_newest_first_and_forgets_expired_ones() {
        let shares = Shares::default();
        assert!(shares.insert(share("a", "box", 10, 100)));
        assert!(shares.insert(share("b", "box", 20, 200)));
        assert!(shares.insert(share("c", "other", 30, 300)));
        assert!(!shares.insert(share("a", "box", 10, 100)));
        let ids = |v: Vec<Share>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(ids(shares.list(50, |s| s.desktop == "box")), ["b", "a"]);
        assert_eq!(ids(shares.list(150, |_| true)), ["c", "b"]);
        assert!(shares.get("a", 150).is_none(), "expired");
        assert!(shares.get("b", 150).is_some());
        assert_eq!(shares.prune(150), 1);
        assert_eq!(shares.remove("b").map(|s| s.id).as_deref(), Some("b"));
        assert!(shares.get("b", 0).is_none());
    }
}
