//! Schema 1 → 2, run once on open: schema 1 kept a row per raw sample (`samples`, with a
//! `rollup` mark of what was folded into `minutes`); schema 2 keeps a packed row per desktop per
//! minute (`raw`). `minutes` and `audit` are the same in both and are kept as they are.
//!
//! Each step is its own transaction and can be run again: the samples not yet folded are folded
//! into `minutes` (moving the mark), then each desktop's samples are packed into `raw` and
//! deleted in one transaction per desktop, then the old tables are dropped. A relay killed in
//! the middle migrates the rest on its next start; nothing is counted twice.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};

use super::packed::{self, Packed};
use super::schema::{merge_minutes, StoreError};

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Migrates a schema 1 database whose schema 2 tables already exist.
pub fn from_v1(conn: &Connection) -> Result<(), StoreError> {
    if !has_table(conn, "samples")? {
        return Ok(());
    }
    log::info!("store: migrating schema 1 (a row per sample) to 2 (a packed row per desktop per minute); once, may take a while for a big store");
    if has_table(conn, "rollup")? {
        let tx = conn.unchecked_transaction()?;
        let last: i64 = tx.query_row("SELECT last_seq FROM rollup", [], |r| r.get(0))?;
        tx.execute(
            merge_minutes!(
                "SELECT key, ts / 60000 * 60000, count(*), min(value), max(value), sum(value),
                        count(memory_used), coalesce(sum(memory_used), 0)
                 FROM samples WHERE seq > ?1 GROUP BY key, ts / 60000"
            ),
            [last],
        )?;
        tx.execute("DROP TABLE rollup", [])?;
        tx.commit()?;
    }
    let keys: Vec<i64> = {
        let mut stmt = conn.prepare("SELECT DISTINCT key FROM samples")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut moved = 0u64;
    for key in keys {
        let tx = conn.unchecked_transaction()?;
        let mut by_minute: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        {
            let mut stmt =
                tx.prepare("SELECT ts, value, memory_used FROM samples WHERE key = ?1")?;
            let rows = stmt.query_map([key], |r| {
                Ok(Packed {
                    ts: r.get::<_, i64>(0)?.max(0) as u64,
                    value: r.get(1)?,
                    memory_used: r.get::<_, Option<i64>>(2)?.map(|m| m.max(0) as u64),
                })
            })?;
            for sample in rows {
                let sample = sample?;
                packed::push(
                    by_minute.entry(packed::minute_of(sample.ts)).or_default(),
                    &sample,
                );
                moved += 1;
            }
            let mut insert = tx.prepare(
                "INSERT INTO raw (key, minute, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key, minute) DO UPDATE SET data = CAST(data || excluded.data AS BLOB)",
            )?;
            for (minute, data) in &by_minute {
                insert.execute(params![key, *minute as i64, data])?;
            }
        }
        tx.execute("DELETE FROM samples WHERE key = ?1", [key])?;
        tx.commit()?;
    }
    conn.execute_batch("DROP TABLE samples")?;
    log::info!("store: migrated {moved} raw samples to schema 2");
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::schema;

    /// The tables a schema 1 relay wrote.
    const V1: &str = "
        CREATE TABLE desktops (key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE);
        CREATE TABLE samples (seq INTEGER PRIMARY KEY AUTOINCREMENT, key INTEGER NOT NULL,
            ts INTEGER NOT NULL, value REAL NOT NULL, memory_used INTEGER);
        CREATE INDEX samples_by_desktop ON samples (key, ts);
        CREATE TABLE minutes (key INTEGER NOT NULL, minute INTEGER NOT NULL, n INTEGER NOT NULL,
            low REAL NOT NULL, high REAL NOT NULL, total REAL NOT NULL, memory_n INTEGER NOT NULL,
            memory_total REAL NOT NULL, PRIMARY KEY (key, minute)) WITHOUT ROWID;
        CREATE TABLE rollup (one INTEGER PRIMARY KEY CHECK (one = 1), last_seq INTEGER NOT NULL,
            tail_from INTEGER);
        INSERT INTO desktops (key, id) VALUES (1, 'a');
        -- Minute 0 folded (seq 1-2), minute 60000 not yet (seq 3).
        INSERT INTO samples (key, ts, value, memory_used) VALUES
            (1, 1000, 10.0, 100), (1, 2000, 30.0, NULL), (1, 61000, 5.0, NULL);
        INSERT INTO minutes VALUES (1, 0, 2, 10.0, 30.0, 40.0, 1, 100.0);
        INSERT INTO rollup VALUES (1, 2, 61000);
        PRAGMA user_version = 1;
    ";

    #[test]
    fn a_schema_1_store_opens_migrated_with_nothing_lost_or_counted_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite3");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(V1)
            .unwrap();
        let mut conn = schema::open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::VERSION);
        let open = crate::store::open::OpenMinutes::default();
        let history = |conn: &mut rusqlite::Connection, step| {
            crate::store::query::history(conn, &open, "a", 0, 120_000, step, 0).unwrap()
        };
        use crate::store::query::Step;
        assert_eq!(
            history(&mut conn, Step::Buckets(60_000)).points,
            vec![(0, 10.0, 20.0, 30.0), (60_000, 5.0, 5.0, 5.0)]
        );
        assert_eq!(history(&mut conn, Step::Raw).points.len(), 3);
        drop(conn);
        // Opening again changes nothing.
        let mut conn = schema::open(&path).unwrap();
        assert_eq!(history(&mut conn, Step::Raw).points.len(), 3);
        assert_eq!(history(&mut conn, Step::Buckets(60_000)).points[0].2, 20.0);
    }
}
