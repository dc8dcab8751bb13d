//! Presence changes in the SQLite store's `presence` table (defined in [`table`](super::table)):
//! their writes from the store's thread, their retention delete and their query.

use rusqlite::{params, Connection};

use super::{intervals, reason_of, Offline};
use crate::store::metrics::{DropReason, Kind, StoreMetrics};
use crate::store::record::PresenceChange;
use crate::store::schema::StoreError;

/// Writes and empties the pending changes in one transaction; a failed one drops them (counted,
/// logged at most once a minute), as a failed batch of samples is.
pub fn flush(conn: &mut Connection, pending: &mut Vec<PresenceChange>, metrics: &StoreMetrics) {
    if pending.is_empty() {
        return;
    }
    match write(conn, pending) {
        Ok(()) => {
            metrics.written(Kind::Presence).inc_by(pending.len() as u64);
        }
        Err(e) => {
            metrics
                .dropped(Kind::Presence, DropReason::WriteFailed)
                .inc_by(pending.len() as u64);
            if metrics.may_complain() {
                log::error!(
                    "store: {} presence changes were not written (dropped; logged once a minute): {e}",
                    pending.len()
                );
            }
        }
    }
    pending.clear();
}

fn write(conn: &mut Connection, changes: &[PresenceChange]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut insert =
            tx.prepare_cached("INSERT INTO presence (desktop, ts, reason) VALUES (?1, ?2, ?3)")?;
        for c in changes {
            insert.execute(params![
                c.id.as_str(),
                c.ts as i64,
                c.gone.map(|r| r.as_str())
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Deletes the changes older than `cutoff` (Unix ms), through the `ts` index.
pub fn cleanup(conn: &Connection, cutoff: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM presence WHERE ts < ?1")?
        .execute([cutoff])?;
    Ok(())
}

/// The intervals `id` was offline overlapping `[from, to)`: the last change before `from` (is
/// an interval open when the range starts?) and every change in the range, in one read
/// transaction.
pub fn offline(
    conn: &mut Connection,
    id: &str,
    from: u64,
    to: u64,
) -> Result<Vec<Offline>, StoreError> {
    let tx = conn.transaction()?;
    let row = |r: &rusqlite::Row<'_>| {
        let ts: i64 = r.get(0)?;
        let reason: Option<String> = r.get(1)?;
        Ok((ts.max(0) as u64, reason.as_deref().map(reason_of)))
    };
    let mut changes = Vec::new();
    {
        let mut before = tx.prepare_cached(
            "SELECT ts, reason FROM presence WHERE desktop = ?1 AND ts < ?2
             ORDER BY ts DESC, seq DESC LIMIT 1",
        )?;
        for change in before.query_map(params![id, from as i64], row)? {
            changes.push(change?);
        }
        let mut within = tx.prepare_cached(
            "SELECT ts, reason FROM presence WHERE desktop = ?1 AND ts >= ?2 AND ts < ?3
             ORDER BY ts, seq",
        )?;
        for change in within.query_map(params![id, from as i64, to as i64], row)? {
            changes.push(change?);
        }
    }
    Ok(intervals(changes, from, to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::store::config::StoreConfig;
    use crate::store::schema;
    use crate::store::writer::Writer;
    use deskbridge_protocol::{ClientId, OfflineReason};

    fn change(id: &str, ts: u64, gone: Option<OfflineReason>) -> PresenceChange {
        PresenceChange {
            id: ClientId::new(id).unwrap(),
            ts,
            gone,
        }
    }

    #[test]
    fn changes_written_come_back_as_intervals_and_retention_deletes_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = schema::open(&dir.path().join("s.sqlite3")).unwrap();
        let metrics = StoreMetrics::default();
        let mut pending = vec![
            change("a", 1_000, Some(OfflineReason::Sleep)),
            change("b", 1_500, Some(OfflineReason::Lost)),
            change("a", 2_000, None),
            change("a", 3_000, Some(OfflineReason::Lost)),
        ];
        flush(&mut conn, &mut pending, &metrics);
        assert!(pending.is_empty());
        assert_eq!(metrics.written(Kind::Presence).get(), 4);
        let got = offline(&mut conn, "a", 1_500, 10_000).unwrap();
        let got: Vec<_> = got.iter().map(|o| (o.from, o.to, o.reason)).collect();
        assert_eq!(got, [(1_000, Some(2_000), "sleep"), (3_000, None, "lost")]);
        assert!(offline(&mut conn, "c", 0, 10_000).unwrap().is_empty());
        // The store thread's cleanup deletes them by the minute aggregates' retention.
        let mut config = StoreConfig::new(dir.path());
        config.retention_minutes = Duration::from_millis(7_500);
        let open = Arc::new(crate::store::open::OpenMinutes::default());
        let mut writer = Writer::new(conn, config, Arc::new(metrics), open).unwrap();
        writer.cleanup(10_000).unwrap();
        let mut conn = schema::connect(&dir.path().join("s.sqlite3")).unwrap();
        let got = offline(&mut conn, "a", 0, 10_000).unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].from, 3_000);
    }
}
