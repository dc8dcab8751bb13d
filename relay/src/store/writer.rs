//! The store's own thread: the only writer of the database. It takes samples and audit records
//! from the bounded queue and writes them in batches (one transaction per batch, at most
//! `batch_interval` apart). A batch's samples go, packed, into **one journal row per minute
//! they fall in** (usually one) and into the open minutes in memory ([`open`](super::open));
//! once a minute has ended (plus [`GRACE_MS`] for stragglers), the next transaction writes it
//! as one `raw` row and one `minutes` row per desktop and deletes its journal rows. So the
//! database sees a few inserts a second and one row per desktop per minute, not a row per
//! sample. Late samples (an agent's `ts` up to `PAST_SKEW_MS` back) of a minute already written
//! are appended to its row and merged into its aggregate. Old data is deleted by `cleanup`.
//!
//! On start the journal is replayed into memory: a killed relay loses at most the batch it had
//! not committed. A failed batch (full disk, I/O error) is rolled back and its samples counted as
//! dropped (`write_failed`); minutes that could not be written stay in memory (and the journal)
//! and are tried again, so the store recovers by itself when space comes back.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, Transaction};

use super::config::StoreConfig;
use super::metrics::{DropReason, Kind, StoreMetrics};
use super::open::{self, Aggregate, OpenMinutes, GRACE_MS};
use super::packed::{self, Packed};
use super::query::MINUTE_MS;
use super::record::{now_ms, AuditRecord, Item, Sample};
use super::schema::{merge_minutes, StoreError};

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
    /// The open minutes, shared with readers.
    open: Arc<OpenMinutes>,
}

impl Writer {
    /// The writer of `conn`, its open minutes rebuilt from the journal into `open`.
    pub fn new(
        conn: Connection,
        config: StoreConfig,
        metrics: Arc<StoreMetrics>,
        open: Arc<OpenMinutes>,
    ) -> Result<Self, StoreError> {
        let writer = Self {
            conn,
            config,
            metrics,
            keys: HashMap::new(),
            open,
        };
        writer.replay()?;
        Ok(writer)
    }

    /// The open minutes this writer keeps (tests read through them).
    #[cfg(test)]
    pub fn open_minutes(&self) -> Arc<OpenMinutes> {
        self.open.clone()
    }

    /// Reads the journal into the open minutes; an unreadable row is logged and deleted.
    fn replay(&self) -> Result<(), StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT seq, data FROM journal ORDER BY seq")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut minutes = self.open.write();
        let mut samples = 0;
        for (seq, data) in &rows {
            let entries = packed::unpack_batch(data).and_then(|(minute, entries)| {
                for (id, bytes) in &entries {
                    open::add(&mut minutes, id, minute, bytes, 0)?;
                    samples += bytes.len();
                }
                Ok(())
            });
            if let Err(e) = entries {
                log::warn!("store: journal row {seq} is unreadable, deleted: {e}");
                self.conn
                    .execute("DELETE FROM journal WHERE seq = ?1", [seq])?;
            }
        }
        if !rows.is_empty() {
            log::info!(
                "store: {} journal rows of open minutes read back ({samples} bytes of samples)",
                rows.len()
            );
        }
        Ok(())
    }

    /// The thread's loop: until the queue is closed or asked to close, then a last batch and a
    /// last rollup.
    pub fn run(mut self, rx: Receiver<Item>) {
        let mut samples = Vec::new();
        let mut audits = Vec::new();
        let mut presence = Vec::new();
        let mut batch_since: Option<Instant> = None;
        // How often closed minutes are written when no batch comes to write them.
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
            let first = if batch_since.is_some() {
                // A batch is open: sleep to its deadline and take what came meanwhile, rather
                // than waking (and making every sender wake us) for each sample.
                std::thread::sleep(wake.saturating_duration_since(Instant::now()));
                rx.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                rx.recv_timeout(wake.saturating_duration_since(Instant::now()))
            };
            match first {
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
                // Every open minute is written: a clean stop leaves an empty journal.
                self.fold(true);
                self.finish(closing);
                return;
            }
            if Instant::now() >= next_rollup {
                self.fold(false);
                next_rollup = Instant::now() + self.config.rollup_interval;
            }
            if Instant::now() >= next_cleanup {
                self.maintain();
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
        match self.write(samples, audits, now_ms(), false) {
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

    /// Writes the minutes that have closed by now (with `all`, every open minute); failures
    /// are logged and tried again later.
    pub fn fold(&mut self, all: bool) {
        if self.open.read().is_empty() {
            return;
        }
        if let Err(e) = self.write(&[], &[], now_ms(), all) {
            if self.metrics.may_complain() {
                log::error!(
                    "store: writing closed minutes failed (will retry; logged once a minute): {e}"
                );
            }
        }
    }

    /// One transaction: the batch's samples into the journal (or, for a minute already closed,
    /// straight into its rows), the closed open minutes into `raw` and `minutes`, the audit
    /// records. Committed under the open minutes' write lock, with the open minutes updated in
    /// the same breath, so a reader sees each sample either in the database or in memory.
    pub fn write(
        &mut self,
        samples: &[Sample],
        audits: &[AuditRecord],
        now: u64,
        all: bool,
    ) -> Result<(), StoreError> {
        let closed = |minute: u64| all || minute + MINUTE_MS + GRACE_MS <= now;
        // The batch, packed per minute and desktop.
        let mut batch: BTreeMap<u64, HashMap<&str, Vec<u8>>> = BTreeMap::new();
        for s in samples {
            let sample = Packed {
                ts: s.ts,
                value: s.value,
                memory_used: s.memory_used,
            };
            let bytes = batch
                .entry(packed::minute_of(s.ts))
                .or_default()
                .entry(s.id.as_str())
                .or_default();
            packed::push(bytes, &sample);
        }
        let tx = self.conn.transaction()?;
        let mut fresh = Vec::new();
        let due = {
            let minutes = self.open.read();
            let due = if all {
                minutes.keys().copied().collect()
            } else {
                open::due(&minutes, now, GRACE_MS)
            };
            for minute in &due {
                for (id, pending) in minutes.get(minute).into_iter().flatten() {
                    let key = key_of(&tx, &mut self.keys, &mut fresh, id)?;
                    write_minute(&tx, key, *minute, &pending.agg, &pending.packed)?;
                }
                tx.prepare_cached("DELETE FROM journal WHERE minute = ?1")?
                    .execute([*minute as i64])?;
            }
            due
        };
        for (&minute, desktops) in &batch {
            if closed(minute) {
                for (id, bytes) in desktops {
                    let key = key_of(&tx, &mut self.keys, &mut fresh, id)?;
                    let agg = Aggregate::of_packed(minute, bytes)?;
                    write_minute(&tx, key, minute, &agg, bytes)?;
                }
            } else {
                let data =
                    packed::pack_batch(minute, desktops.iter().map(|(id, b)| (*id, b.as_slice())));
                tx.prepare_cached("INSERT INTO journal (minute, data) VALUES (?1, ?2)")?
                    .execute(params![minute as i64, data])?;
            }
        }
        {
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
        let mut minutes = self.open.write();
        if let Err(e) = tx.commit() {
            // Keys handed out in the rolled-back transaction do not exist.
            for id in fresh {
                self.keys.remove(&id);
            }
            return Err(e.into());
        }
        for minute in due {
            minutes.remove(&minute);
        }
        for (minute, desktops) in batch {
            if !closed(minute) {
                for (id, bytes) in desktops {
                    open::add(&mut minutes, id, minute, &bytes, 0)?;
                }
            }
        }
        drop(minutes);
        if self.keys.len() > MAX_CACHED_KEYS {
            self.keys.clear();
        }
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
                // A raw row goes once its whole minute is past; readers leave out the older
                // samples of the row that straddles the cutoff.
                let mut samples =
                    tx.prepare_cached("DELETE FROM raw WHERE key = ?1 AND minute <= ?2")?;
                let mut aggregates =
                    tx.prepare_cached("DELETE FROM minutes WHERE key = ?1 AND minute < ?2")?;
                for &key in chunk {
                    samples.execute(params![key, raw - MINUTE_MS as i64])?;
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

    /// The retention's deletes after writing the closed minutes (so no sample is deleted
    /// before it counts in its minute). Failures are logged (once a minute) and retried at the
    /// next turn.
    fn maintain(&mut self) {
        self.fold(false);
        if let Err(e) = self.cleanup(now_ms()) {
            if self.metrics.may_complain() {
                log::error!("store: cleanup failed (will retry; logged once a minute): {e}");
            }
        }
    }
}

/// Adds one desktop's samples of `minute` (and their aggregate) to its rows.
fn write_minute(
    tx: &Transaction<'_>,
    key: i64,
    minute: u64,
    agg: &Aggregate,
    packed: &[u8],
) -> rusqlite::Result<()> {
    if agg.n == 0 {
        return Ok(());
    }
    tx.prepare_cached(merge_minutes!("VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"))?
        .execute(params![
            key,
            minute as i64,
            agg.n as i64,
            agg.low,
            agg.high,
            agg.total,
            agg.memory_n as i64,
            agg.memory_total
        ])?;
    tx.prepare_cached(
        "INSERT INTO raw (key, minute, data) VALUES (?1, ?2, ?3)
         ON CONFLICT (key, minute) DO UPDATE SET data = CAST(data || excluded.data AS BLOB)",
    )?
    .execute(params![key, minute as i64, packed])?;
    Ok(())
}

/// The number of desktop `id` (cached), numbering it if it is new; new numbers are noted in
/// `fresh` until their transaction commits.
fn key_of(
    tx: &Connection,
    keys: &mut HashMap<String, i64>,
    fresh: &mut Vec<String>,
    id: &str,
) -> rusqlite::Result<i64> {
    if let Some(&key) = keys.get(id) {
        return Ok(key);
    }
    let key = desktop_key(tx, id)?;
    keys.insert(id.to_owned(), key);
    fresh.push(id.to_owned());
    Ok(key)
}

/// The number of desktop `id`, numbering it if it is new.
fn desktop_key(conn: &Connection, id: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("INSERT OR IGNORE INTO desktops (id) VALUES (?1)")?
        .execute([id])?;
    conn.prepare_cached("SELECT key FROM desktops WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
}
