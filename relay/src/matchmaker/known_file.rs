//! What the relay knows of every desktop id, kept across restarts in `--data-dir`'s
//! `known.json`: the ids the fleet grid lists (seen, or added from the page and still waiting),
//! and why and since when each went offline.
//!
//! Written by the matchmaker at most every [`SAVE_EVERY`] when something changed and once more at
//! a graceful stop, to a temporary file renamed over the old one (so a reader, or a relay killed
//! mid-write, never sees half a file). On start a desktop that was online when the file was
//! written went without a word — the relay stopped under it — so it reads `lost` since then,
//! never `quit`, until its agent comes back. A missing file is an empty list; a broken one is
//! logged and set aside (`known.json.broken`) rather than stopping the relay over a cache.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use deskbridge_protocol::{unix_millis, ClientId, OfflineReason};
use serde::{Deserialize, Serialize};

/// The file's name in the data directory.
pub const FILE: &str = "known.json";

/// How often the matchmaker writes the file while ids or states change.
pub const SAVE_EVERY: Duration = Duration::from_secs(10);

/// One desktop id as the file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: ClientId,
    /// Its desktop was connected (here or, in a cluster, elsewhere) when the file was written.
    #[serde(default)]
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<OfflineReason>,
    /// Since when it is in that state, Unix ms.
    pub since: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waiting: bool,
    /// Set by [`KnownFile::load`] on a desktop that was online when the file was written: the
    /// relay stopped under it, so its departure (`lost`, at `since`) was never recorded.
    #[serde(skip)]
    pub cut: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Contents {
    /// When it was written, Unix ms.
    saved_at: u64,
    desktops: Vec<Entry>,
}

/// The file's place, and whether what it says has changed since it was last written.
#[derive(Debug)]
pub struct KnownFile {
    path: PathBuf,
    dirty: bool,
}

impl KnownFile {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(FILE),
            dirty: false,
        }
    }

    /// Something it keeps changed: the next save writes it.
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Whether there is something to write.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Reads the file: every entry, desktops that were online as `lost` since it was written.
    pub fn load(&self) -> Vec<Entry> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                log::warn!(
                    "cannot read {}: {e}; starting without it",
                    self.path.display()
                );
                return Vec::new();
            }
        };
        match serde_json::from_str::<Contents>(&text) {
            Ok(contents) => {
                let saved_at = contents.saved_at;
                log::info!(
                    "{} desktops known from {}",
                    contents.desktops.len(),
                    self.path.display()
                );
                contents
                    .desktops
                    .into_iter()
                    .map(|e| match e.online {
                        true => Entry {
                            online: false,
                            reason: Some(OfflineReason::Lost),
                            since: saved_at,
                            waiting: false,
                            cut: true,
                            ..e
                        },
                        false => e,
                    })
                    .collect()
            }
            Err(e) => {
                let aside = self.path.with_extension("json.broken");
                log::warn!(
                    "{} is not valid ({e}); moved to {} and starting without it",
                    self.path.display(),
                    aside.display()
                );
                let _ = std::fs::rename(&self.path, aside);
                Vec::new()
            }
        }
    }

    /// The text to write now, clearing the changed mark; `None` if nothing changed.
    pub fn take(&mut self, desktops: Vec<Entry>) -> Option<(PathBuf, String)> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        let contents = Contents {
            saved_at: unix_millis(),
            desktops,
        };
        // Plain data always serializes.
        let text = serde_json::to_string(&contents).ok()?;
        Some((self.path.clone(), text))
    }
}

/// Writes `text` to `path` atomically (a temporary file beside it, renamed over it). Blocking:
/// the matchmaker runs it on a blocking thread.
pub fn write(path: &Path, text: &str) {
    let result = (|| {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(text.as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        std::io::Result::Ok(())
    })();
    if let Err(e) = result {
        log::warn!(
            "cannot write {}: {e}; the desktops known now will be forgotten if the relay restarts",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, online: bool, reason: Option<OfflineReason>, waiting: bool) -> Entry {
        Entry {
            id: ClientId::new(id).unwrap(),
            online,
            reason,
            since: 5,
            waiting,
            cut: false,
        }
    }

    #[test]
    fn what_was_online_comes_back_lost_and_the_rest_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = KnownFile::in_dir(dir.path());
        assert!(file.load().is_empty(), "no file yet");
        assert!(file.take(vec![]).is_none(), "nothing changed");
        file.touch();
        let (path, text) = file
            .take(vec![
                entry("up", true, None, false),
                entry("nap", false, Some(OfflineReason::Sleep), false),
                entry("new", false, None, true),
            ])
            .unwrap();
        write(&path, &text);
        let loaded = file.load();
        assert_eq!(loaded[0].reason, Some(OfflineReason::Lost));
        assert!(!loaded[0].online && loaded[0].since >= 5 && loaded[0].cut);
        assert_eq!(
            loaded[1],
            entry("nap", false, Some(OfflineReason::Sleep), false)
        );
        assert_eq!(loaded[2], entry("new", false, None, true));
    }

    #[test]
    fn a_broken_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "{not json").unwrap();
        assert!(KnownFile::in_dir(dir.path()).load().is_empty());
        assert!(dir.path().join("known.json.broken").exists());
    }
}
