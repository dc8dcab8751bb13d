//! The store's own thread: the only writer of the database. It takes samples and audit records
//! from the bounded queue, writes them in batches (one transaction per batch, at most
//! `batch_interval` apart), folds raw samples into one-minute aggregates (`rollup`) and deletes
//! what is past its retention (`cleanup`). Nothing here runs on a request or a session's path.
//!
//! A failed batch (full disk, I/O error) is rolled back and its items counted as dropped
//! (`write_failed`); the thread goes on with the next batch, so the store recovers by itself
//! when space comes back.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use super::config::StoreConfig;
use super::metrics::{DropReason, Kind, StoreMetrics};
use super::record::{now_ms, AuditRecord, Item, Sample};
use super::schema::StoreError;

/// Most items in one transaction; at 10,000 desktops at 1 Hz a second's worth.
const MAX_BATCH: usize = 16_384;
/// Desktop keys kept in memory; beyond it the cache starts over (the table stays the truth).
const MAX_CACHED_KEYS: usize = 100_000;
/// Desktops whose old data one cleanup transaction deletes, so the writer never holds one
/// transaction for long while the queue fills.
const CLEANUP_CHUNK: usize = 500;

/// The writing end of the store.
pub struct Writer {
    conn: Connection,
    config: StoreConfig,
    metrics: Arc<StoreMetrics>,
    /// Desktop id → its number in `desktops`.
    keys: HashMap<String, i64>,
}

impl Writer {
    pub fn new(conn: Connection, config: StoreConfig, metrics: Arc<StoreMetrics>) -> Self {
        Self {
            conn,
            config,
            metrics,
            keys: HashMap::new(),
        }
    }

    /// The thread's loop: until the queue is closed or asked to close, then a last batch and a
    /// last rollup.
    pub fn run(mut self, rx: Receiver<Item>) {
        let mut samples = Vec::new();
        let mut audits = Vec::new();
        let mut presence = Vec::new();
        let mut batch_since: Option<Instant> = None;
        let mut next_rollup = Instant::now() + self.config.rollup_interval;
        // A relay that was stopped for a while has old data to delete: clean up soon after start.
        let mut next_cleanup =
            Instant::now() + Duration::from_secs(1).min(self.config.cleanup_interval);
        loop {
            let mut wake = next_rollup.min(next_cleanup);
            if let Some(since) = batch_since {
                wake = wake.min(since + self.config.batch_interval);
            }
            let mut closing = None;
            let mut ended = false;
            match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(first) => {
                    let mut next = Some(first);
                    while let Some(item) = next.take() {
                        match item {
                            Item::Sample(s) => samples.push(s),
                            Item::Audit(a) => audits.push(a),
                            Item::Presence(p) => presence.push(p),
                            Item::Close(done) => {
                                closing = Some(done);
                                break;
                            }
                        }
                        if samples.len() + audits.len() >= MAX_BATCH {
                            break;
                        }
                        next = rx.try_recv().ok();
                    }
                    if batch_since.is_none() && !(samples.is_empty() && audits.is_empty()) {
                        batch_since = Some(Instant::now());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => ended = true,
            }
            let due =
                batch_since.is_some_and(|since| since.elapsed() >= self.config.batch_interval);
            if due || closing.is_some() || ended || samples.len() + audits.len() >= MAX_BATCH {
                self.flush(&mut samples, &mut audits);
                batch_since = None;
            }
            // Presence changes are rare and a chart's gap wants them soon: written as they come.
            super::presence::sqlite::flush(&mut self.conn, &mut presence, &self.metrics);
            if closing.is_some() || ended {
                self.maintain(false);
                self.finish(closing);
                return;
            }
            if Instant::now() >= next_rollup {
                self.maintain(false);
                next_rollup = Instant::now() + self.config.rollup_interval;
            }
            if Instant::now() >= next_cleanup {
                self.maintain(true);
                next_cleanup = Instant::now() + self.config.cleanup_interval;
            }
        }
    }

    fn finish(self, closing: Option<Sender<()>>) {
        drop(self.conn);
        if let Some(done) = closing {
            let _ = done.send(());
        }
    }

    /// Writes and empties the pending items; a failed transaction drops them (counted).
    pub fn flush(&mut self, samples: &mut Vec<Sample>, audits: &mut Vec<AuditRecord>) {
        if samples.is_empty() && audits.is_empty() {
            return;
        }
        match self.write(samples, audits) {
            Ok(()) => {
                self.metrics.batches().inc();
                self.metrics
                    .written(Kind::Sample)
                    .inc_by(samples.len() as u64);
                self.metrics
                    .written(Kind::Audit)
                    .inc_by(audits.len() as u64);
            }
            Err(e) => {
                let m = &self.metrics;
                m.dropped(Kind::Sample, DropReason::WriteFailed)
                    .inc_by(samples.len() as u64);
                m.dropped(Kind::Audit, DropReason::WriteFailed)
                    .inc_by(audits.len() as u64);
                if m.may_complain() {
                    log::error!(
                        "store: a batch of {} samples and {} audit records was not written (dropped; relaying goes on; logged once a minute): {e}",
                        samples.len(),
                        audits.len()
                    );
                }
            }
        }
        samples.clear();
        audits.clear();
    }

    /// One transaction for the whole batch.
    fn write(&mut self, samples: &[Sample], audits: &[AuditRecord]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let mut fresh = Vec::new();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO samples (key, ts, value, memory_used) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut earliest = i64::MAX;
            for s in samples {
                let id = s.id.as_str();
                let key = match self.keys.get(id) {
                    Some(&key) => key,
                    None => {
                        let key = desktop_key(&tx, id)?;
                        fresh.push((id.to_owned(), key));
                        self.keys.insert(id.to_owned(), key);
                        key
                    }
                };
                let ts = s.ts as i64;
                earliest = earliest.min(ts);
                insert.execute(params![key, ts, s.value, s.memory_used.map(|m| m as i64)])?;
            }
            if !samples.is_empty() {
                tx.prepare_cached(
                    "UPDATE rollup SET tail_from = min(coalesce(tail_from, ?1), ?1)",
                )?
                .execute([earliest])?;
            }
            let mut audit = tx.prepare_cached(
                "INSERT INTO audit (ts, kind, actor, address, desktop, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for a in audits {
                audit.execute(params![
                    a.ts as i64,
                    a.kind.as_str(),
                    a.by,
                    a.from,
                    a.desktop,
                    a.detail.to_string()
                ])?;
            }
        }
        match tx.commit() {
            Ok(()) => {
                if self.keys.len() > MAX_CACHED_KEYS {
                    self.keys.clear();
                }
                Ok(())
            }
            Err(e) => {
                // Keys handed out in the rolled-back transaction do not exist.
                for (id, _) in fresh {
                    self.keys.remove(&id);
                }
                Err(e.into())
            }
        }
    }

    /// Folds every raw sample not yet folded into its one-minute aggregate, in one transaction.
    /// Aggregates merge (counts and sums add, extremes compare), so a minute folded in several
    /// passes, or across a restart, ends up exactly as if folded at once.
    pub fn rollup(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let last: i64 = tx.query_row("SELECT last_seq FROM rollup", [], |r| r.get(0))?;
        let newest: Option<i64> = tx.query_row("SELECT max(seq) FROM samples", [], |r| r.get(0))?;
        let Some(newest) = newest.filter(|&n| n > last) else {
            return Ok(());
        };
        tx.execute(
            "INSERT INTO minutes (key, minute, n, low, high, total, memory_n, memory_total)
             SELECT key, ts / 60000 * 60000, count(*), min(value), max(value), sum(value),
                    count(memory_used), coalesce(sum(memory_used), 0)
             FROM samples WHERE seq > ?1 AND seq <= ?2 GROUP BY key, ts / 60000
             ON CONFLICT (key, minute) DO UPDATE SET
                 n = n + excluded.n,
                 low = min(low, excluded.low),
                 high = max(high, excluded.high),
                 total = total + excluded.total,
                 memory_n = memory_n + excluded.memory_n,
                 memory_total = memory_total + excluded.memory_total",
            params![last, newest],
        )?;
        tx.execute(
            "UPDATE rollup SET last_seq = ?1, tail_from = NULL",
            [newest],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes what is past its retention at `now` (Unix ms), a few hundred desktops per
    /// transaction, through the `(key, ts)` index: never a scan of the whole table.
    pub fn cleanup(&mut self, now: u64) -> Result<(), StoreError> {
        let cutoff = |keep: Duration| now.saturating_sub(keep.as_millis() as u64) as i64;
        let raw = cutoff(self.config.retention_raw);
        let minutes = cutoff(self.config.retention_minutes);
        let audit = cutoff(self.config.retention_audit);
        let keys: Vec<i64> = {
            let mut stmt = self.conn.prepare("SELECT key FROM desktops")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for chunk in keys.chunks(CLEANUP_CHUNK) {
            let tx = self.conn.transaction()?;
            {
                let mut samples =
                    tx.prepare_cached("DELETE FROM samples WHERE key = ?1 AND ts < ?2")?;
                let mut aggregates =
                    tx.prepare_cached("DELETE FROM minutes WHERE key = ?1 AND minute < ?2")?;
                for &key in chunk {
                    samples.execute(params![key, raw])?;
                    aggregates.execute(params![key, minutes])?;
                }
            }
            tx.commit()?;
        }
        self.conn
            .execute("DELETE FROM audit WHERE ts < ?1", [audit])?;
        super::presence::sqlite::cleanup(&self.conn, minutes)?;
        Ok(())
    }

    /// The rollup, and with `cleanup` the retention's deletes after it (folding first, so no
    /// sample is deleted before it counts in its minute). Failures are logged (once a minute)
    /// and retried at the next turn.
    fn maintain(&mut self, cleanup: bool) {
        let mut result = self.rollup().map_err(|e| ("rollup", e));
        if cleanup && result.is_ok() {
            result = self.cleanup(now_ms()).map_err(|e| ("cleanup", e));
        }
        if let Err((what, e)) = result {
            if self.metrics.may_complain() {
                log::error!("store: {what} failed (will retry; logged once a minute): {e}");
            }
        }
    }
}

/// The number of desktop `id`, numbering it if it is new.
fn desktop_key(conn: &Connection, id: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("INSERT OR IGNORE INTO desktops (id) VALUES (?1)")?
        .execute([id])?;
    conn.prepare_cached("SELECT key FROM desktops WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
}
