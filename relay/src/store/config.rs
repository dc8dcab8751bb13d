//! Settings of the embedded store (`serve --data-dir`): where it lives, how long it keeps what,
//! and how it batches. A settings leaf: [`Config`](crate::Config) holds `Option<StoreConfig>`,
//! `None` (memory only, as with `--no-store`) unless the command line asks for one, so tests
//! and the test kit never write into anyone's home directory.

use std::path::PathBuf;
use std::time::Duration;

/// How the relay keeps history and the audit log on disk.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The data directory; the database is `deskbridge.sqlite3` in it (created, mode 0700).
    pub dir: PathBuf,
    /// Every cpu sample as it arrived is kept this long (`--retention-raw`).
    pub retention_raw: Duration,
    /// One-minute aggregates are kept this long (`--retention-minutes`).
    pub retention_minutes: Duration,
    /// Audit records are kept this long (`--retention-audit`).
    pub retention_audit: Duration,
    /// Samples and audit records waiting for the store's thread; beyond it they are dropped
    /// (and counted), so a slow disk never slows relaying.
    pub queue: usize,
    /// Longest time a sample waits in a batch before its transaction is written: what a crash
    /// (SIGKILL, power loss aside) can lose.
    pub batch_interval: Duration,
    /// How often raw samples are folded into one-minute aggregates.
    pub rollup_interval: Duration,
    /// How often data older than its retention is deleted.
    pub cleanup_interval: Duration,
    /// Test only: `PRAGMA max_page_count`, a database that cannot grow past this many pages
    /// (a full disk without needing a small file system).
    pub max_page_count: Option<u32>,
}

impl StoreConfig {
    /// The production defaults for a store in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            retention_raw: Duration::from_secs(24 * 3600),
            retention_minutes: Duration::from_secs(30 * 24 * 3600),
            retention_audit: Duration::from_secs(365 * 24 * 3600),
            queue: 65_536,
            batch_interval: Duration::from_secs(1),
            rollup_interval: Duration::from_secs(60),
            cleanup_interval: Duration::from_secs(300),
            max_page_count: None,
        }
    }

    /// The database file inside the data directory.
    pub fn database(&self) -> PathBuf {
        self.dir.join("deskbridge.sqlite3")
    }
}

/// The default data directory: `deskbridge` under the XDG state directory
/// (`$XDG_STATE_HOME/deskbridge`, usually `~/.local/state/deskbridge`), or the platform's local
/// data directory where there is no state directory (macOS, Windows). `None` without a home.
pub fn default_data_dir() -> Option<PathBuf> {
    let base = directories::BaseDirs::new()?;
    let root = base
        .state_dir()
        .map(|d| d.to_path_buf())
        .unwrap_or_else(|| base.data_local_dir().to_path_buf());
    Some(root.join("deskbridge"))
}
