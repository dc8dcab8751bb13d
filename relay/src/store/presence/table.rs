//! The SQLite `presence` table's definition, on its own so the store's schema (`schema.rs`)
//! creates it on every open without depending on the rest of `presence`: `CREATE … IF NOT
//! EXISTS`, so an older database gains it without a schema version bump.
//!
//! A row per change: `reason` the word of a departure, `NULL` a return. The id is kept as text
//! (changes are a few per desktop per day, not worth numbering), indexed by `(desktop, ts)` for
//! the query and by `ts` for the retention delete.

use rusqlite::Connection;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS presence (
    seq INTEGER PRIMARY KEY,
    desktop TEXT NOT NULL,
    ts INTEGER NOT NULL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS presence_by_desktop ON presence (desktop, ts);
CREATE INDEX IF NOT EXISTS presence_by_time ON presence (ts);
";

/// Creates the table and its indexes if they are not there.
pub fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}
