//! The store's database file: opening it with the settings every connection needs (WAL, so
//! readers never wait for the writer and a killed process leaves a database that opens cleanly),
//! and the tables, created or checked on open.
//!
//! Desktops are numbered in `desktops`, so the big tables carry a small integer rather than the
//! id's text in every row. Raw samples are kept **one row per desktop per minute** (`raw`, the
//! minute's samples packed into one BLOB by [`packed`](super::packed)) beside that minute's
//! aggregate (`minutes`), both written when the minute closes; until then the samples live in
//! the writer's memory ([`open`](super::open)) and in `journal`, one row per batch holding every
//! desktop's samples of that batch (packed), replayed on start and deleted once its minute is
//! written. Schema 1 (a row per sample) is migrated on open ([`migrate`](super::migrate)).

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// The schema version this relay writes (`PRAGMA user_version`).
pub const VERSION: i64 = 2;

/// `INSERT INTO minutes … <source> ON CONFLICT …`: adds the aggregates `source` yields (a
/// `VALUES` row or a `SELECT`, columns in the order below) to the minutes already stored, counts
/// and sums added, extremes compared. One statement for the writer and the schema 1 migration, so
/// a minute folds the same way whichever wrote it.
macro_rules! merge_minutes {
    ($source:literal) => {
        concat!(
            "INSERT INTO minutes (key, minute, n, low, high, total, memory_n, memory_total) ",
            $source,
            " ON CONFLICT (key, minute) DO UPDATE SET
                 n = n + excluded.n,
                 low = min(low, excluded.low),
                 high = max(high, excluded.high),
                 total = total + excluded.total,
                 memory_n = memory_n + excluded.memory_n,
                 memory_total = memory_total + excluded.memory_total"
        )
    };
}
pub(crate) use merge_minutes;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS desktops (
    key INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS minutes (
    key INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    n INTEGER NOT NULL,
    low REAL NOT NULL,
    high REAL NOT NULL,
    total REAL NOT NULL,
    memory_n INTEGER NOT NULL,
    memory_total REAL NOT NULL,
    PRIMARY KEY (key, minute)
) WITHOUT ROWID;
-- A desktop's raw samples of one minute, packed (store/packed.rs); late samples are appended.
CREATE TABLE IF NOT EXISTS raw (
    key INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (key, minute)
) WITHOUT ROWID;
-- One row per written batch: every desktop's samples of `minute` in it (a packed batch), until
-- that minute is in `raw` and `minutes`.
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    minute INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    address TEXT,
    desktop TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_desktop ON audit (desktop, ts);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (ts);
";

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the store {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the store {path} was written by a newer relay (schema {found}, this relay knows {VERSION}); upgrade the relay or pass another --data-dir")]
    Newer { path: String, found: i64 },
    #[error("cannot migrate the store {path} from schema 1 (nothing was lost: the relay migrates again on its next start; to start afresh instead, move the file away): {source}")]
    Migrate {
        path: String,
        source: Box<StoreError>,
    },
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store (JetStream): {0}")]
    JetStream(String),
    #[error("store: {0}")]
    Packed(#[from] super::packed::PackError),
}

/// Opens (creating if need be) the database at `path` with the settings every connection uses.
pub fn connect(path: &Path) -> Result<Connection, StoreError> {
    let shown = || path.display().to_string();
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: shown(),
        source,
    })?;
    // A reader that meets a checkpoint waits a little rather than failing.
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL: readers see a snapshot and never block the writer; NORMAL: a commit is durable once
    // the WAL is written, which survives a killed process (only a power cut may lose the last
    // transactions, never corrupt the file).
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!("store {}: journal mode is {mode}, not WAL", shown());
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Opens the database and makes sure its tables exist and are ours.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = connect(path)?;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > VERSION {
        return Err(StoreError::Newer {
            path: path.display().to_string(),
            found,
        });
    }
    conn.execute_batch(SCHEMA)?;
    if found == 1 {
        super::migrate::from_v1(&conn).map_err(|source| StoreError::Migrate {
            path: path.display().to_string(),
            source: Box::new(source),
        })?;
    }
    super::presence::table::create(&conn)?;
    conn.pragma_update(None, "user_version", VERSION)?;
    Ok(conn)
}

/// Creates the data directory (only its owner may enter it: the audit log says who did what).
pub fn create_dir(dir: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::Directory {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_twice_in_wal_mode_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite3");
        let conn = open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(conn);
        let conn = open(&path).unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        drop(conn);
        let err = open(&path).unwrap_err().to_string();
        assert!(err.contains("newer relay"), "{err}");
    }
}
