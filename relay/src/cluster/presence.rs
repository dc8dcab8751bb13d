//! What the other nodes hold of one client id, as their announcements said, with each entry
//! forgotten `client_timeout` after its last announcement.
//!
//! The matchmaker keeps one of these per room and adds it to the local state for `presence`:
//! the desktop is online if any node has it, and viewers are summed over all nodes.

use std::time::Instant;

use super::announce::Announcement;

#[derive(Debug, Clone)]
struct Entry {
    node: String,
    seq: u64,
    desktop: Option<u64>,
    viewers: u32,
    watchers: u32,
    expires: Instant,
}

/// The live announcements of other nodes for one id. A Vec: a handful of nodes at most.
#[derive(Debug, Default)]
pub struct RemoteNodes {
    entries: Vec<Entry>,
}

impl RemoteNodes {
    /// Records an announcement valid until `expires`. Returns `false` (and changes nothing) if it
    /// is older than what that node already said.
    pub fn apply(&mut self, a: &Announcement, expires: Instant) -> bool {
        let entry = Entry {
            node: a.node.clone(),
            seq: a.seq,
            desktop: a.desktop,
            viewers: a.viewers,
            watchers: a.watchers,
            expires,
        };
        match self.entries.iter_mut().find(|e| e.node == a.node) {
            Some(known) if known.seq > a.seq => false,
            Some(known) => {
                *known = entry;
                true
            }
            None => {
                self.entries.push(entry);
                true
            }
        }
    }

    /// Forgets nodes not heard from in time; `true` if any was forgotten.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.expires > now);
        self.entries.len() != before
    }

    /// Viewers on other nodes.
    pub fn viewers(&self) -> u32 {
        self.entries.iter().map(|e| e.viewers).sum()
    }

    /// Fleet-grid watchers on other nodes.
    pub fn watchers(&self) -> u32 {
        self.entries.iter().map(|e| e.watchers).sum()
    }

    /// The newest desktop on another node: `(connected at, node)`.
    pub fn newest_desktop(&self) -> Option<(u64, &str)> {
        self.entries
            .iter()
            .filter_map(|e| e.desktop.map(|d| (d, e.node.as_str())))
            .max()
    }

    pub fn has_desktop(&self) -> bool {
        self.entries.iter().any(|e| e.desktop.is_some())
    }
}

/// Whether desktop `a` is newer than desktop `b`, each `(connected at, node id)`: later wins, and
/// the node id breaks ties so every node reaches the same verdict.
pub fn newer(a: (u64, &str), b: (u64, &str)) -> bool {
    a > b
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ann(node: &str, seq: u64, desktop: Option<u64>, viewers: u32) -> Announcement {
        Announcement {
            node: node.into(),
            seq,
            desktop,
            viewers,
            watchers: 0,
            query: false,
            gone: None,
        }
    }

    #[test]
    fn sums_viewers_and_finds_the_newest_desktop() {
        let later = Instant::now() + Duration::from_secs(30);
        let mut r = RemoteNodes::default();
        assert!(!r.has_desktop() && r.viewers() == 0);
        assert!(r.apply(&ann("b", 1, None, 2), later));
        assert!(r.apply(&ann("c", 1, Some(100), 3), later));
        assert!(r.apply(&ann("d", 1, Some(100), 0), later));
        assert_eq!(r.viewers(), 5);
        assert_eq!(r.newest_desktop(), Some((100, "d")));
        // A newer announcement replaces the node's entry; a late older one is ignored.
        assert!(r.apply(&ann("c", 3, None, 1), later));
        assert!(!r.apply(&ann("c", 2, Some(500), 9), later));
        assert_eq!(r.viewers(), 3);
        assert_eq!(r.newest_desktop(), Some((100, "d")));
    }

    #[test]
    fn silent_nodes_are_forgotten() {
        let now = Instant::now();
        let mut r = RemoteNodes::default();
        r.apply(&ann("b", 1, Some(5), 1), now + Duration::from_millis(10));
        r.apply(&ann("c", 1, None, 1), now + Duration::from_secs(10));
        assert!(!r.expire(now));
        assert!(r.expire(now + Duration::from_millis(20)));
        assert!(!r.has_desktop());
        assert_eq!(r.viewers(), 1);
    }

    #[test]
    fn later_desktops_win_and_node_ids_break_ties() {
        assert!(newer((2, "a"), (1, "z")));
        assert!(newer((1, "b"), (1, "a")));
        assert!(!newer((1, "a"), (1, "a")));
    }
}
