//! The relay's embedded store (`serve --data-dir`): every desktop's cpu history (raw samples for
//! a day, one-minute aggregates for a month) and the audit log, in one SQLite database in WAL
//! mode that people can open with `sqlite3`.
//!
//! The contract with the rest of the relay: **relaying never waits for the store.** Sessions
//! hand samples and audit records to [`Store::record`] / [`Store::audit`], which only `try_send`
//! into a bounded queue; the store's own thread ([`writer`]) writes them in batches. A full queue
//! or a failed write drops them and counts it on `/metrics`. Reading ([`Store::history`],
//! [`Store::audit_log`]) blocks on a reader connection, so the HTTP handlers call it through
//! `web::block`, off the actix workers.
//!
//! Without a data directory (`--no-store`, and `Config::default()`), [`Store::disabled`] does
//! nothing and answers no queries: the relay keeps only its in-memory `history`, as before.

pub mod config;
pub mod metrics;
pub mod query;
pub mod record;
pub mod schema;
pub mod writer;

#[cfg(test)]
mod tests;

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use deskbridge_protocol::{ClientId, ClientMessage, ClientMode, Cpu};
use prometheus_client::registry::Registry;
use rusqlite::Connection;

use config::StoreConfig;
use metrics::{DropReason, Kind, StoreMetrics};
use query::{AuditEntry, History, Step};
use record::{now_ms, AuditRecord, Item, Sample};
use schema::StoreError;
use writer::Writer;

/// Reader connections kept open between queries.
const IDLE_READERS: usize = 4;
/// How long closing waits for the writer's last batch.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// A handle on the store; cheap to clone, shared by every session and handler.
#[derive(Clone, Default)]
pub struct Store {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    queue: SyncSender<Item>,
    metrics: Arc<StoreMetrics>,
    config: StoreConfig,
    readers: Mutex<Vec<Connection>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some(inner) => write!(f, "Store({})", inner.config.database().display()),
            None => f.write_str("Store(disabled)"),
        }
    }
}

impl Store {
    /// No store: records nothing, answers nothing.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Opens (or creates) the store in `config.dir`, registers its metrics in `registry` and
    /// starts its thread.
    pub fn open(config: &StoreConfig, registry: &mut Registry) -> Result<Self, StoreError> {
        schema::create_dir(&config.dir)?;
        let path = config.database();
        let conn = schema::open(&path)?;
        if let Some(pages) = config.max_page_count {
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        let metrics = Arc::new(StoreMetrics::register(registry));
        let (queue, rx) = mpsc::sync_channel(config.queue.max(1));
        let writer = Writer::new(conn, config.clone(), metrics.clone());
        let thread = std::thread::Builder::new()
            .name("store".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|source| StoreError::Directory {
                path: config.dir.display().to_string(),
                source,
            })?;
        log::info!("store: {}", path.display());
        Ok(Self {
            inner: Some(Arc::new(Inner {
                queue,
                metrics,
                config: config.clone(),
                readers: Mutex::new(Vec::new()),
                thread: Mutex::new(Some(thread)),
            })),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The session's hook: a validated message from a joined client; a desktop's `cpu` is
    /// recorded, everything else ignored.
    pub fn observe(&self, id: &ClientId, mode: ClientMode, message: &ClientMessage) {
        if let (ClientMode::Desktop, ClientMessage::Cpu(cpu)) = (mode, message) {
            self.record(id, cpu);
        }
    }

    /// Queues one cpu sample of `id`; never blocks (a full queue drops it, counted).
    pub fn record(&self, id: &ClientId, cpu: &Cpu) {
        if let Some(inner) = &self.inner {
            inner.offer(Item::Sample(Sample::of(id, cpu, now_ms())), Kind::Sample);
        }
    }

    /// Queues one audit record; never blocks (a full queue drops it, counted).
    pub fn audit(&self, record: AuditRecord) {
        if let Some(inner) = &self.inner {
            inner.offer(Item::Audit(record), Kind::Audit);
        }
    }

    /// The history of `id` in `[from, to)` (Unix ms) at `step`, or at a step the relay picks
    /// for at most ~2,000 points. Blocks: call it off the actix workers. `None` without a store.
    pub fn history(
        &self,
        id: &ClientId,
        from: u64,
        to: u64,
        step: Option<Step>,
    ) -> Result<Option<History>, StoreError> {
        let Some(inner) = &self.inner else {
            return Ok(None);
        };
        let raw_kept_from = now_ms().saturating_sub(inner.config.retention_raw.as_millis() as u64);
        let step = step.unwrap_or_else(|| Step::choose(from, to, raw_kept_from));
        inner
            .with_reader(|conn| query::history(conn, id.as_str(), from, to, step))
            .map(Some)
    }

    /// The audit records of `desktop` from `since` (Unix ms), oldest first, and whether there
    /// are more. Blocks. `None` without a store.
    pub fn audit_log(
        &self,
        desktop: &ClientId,
        since: u64,
    ) -> Result<Option<(Vec<AuditEntry>, bool)>, StoreError> {
        let Some(inner) = &self.inner else {
            return Ok(None);
        };
        inner
            .with_reader(|conn| query::audit(conn, desktop.as_str(), since))
            .map(Some)
    }

    /// Writes what is queued and stops the store's thread. Blocks (at most a few seconds);
    /// later records are dropped as if the queue were full.
    pub fn close(&self) {
        let Some(inner) = &self.inner else {
            return;
        };
        let (done, finished) = mpsc::channel();
        if inner.queue.send(Item::Close(done)).is_ok() && finished.recv_timeout(CLOSE_WAIT).is_err()
        {
            log::warn!("store: the last batch took longer than {CLOSE_WAIT:?}; not waiting");
            return;
        }
        let thread = inner.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(thread) = thread {
            if thread.join().is_err() {
                log::error!("store: its thread panicked");
            }
        }
        log::info!("store: closed");
    }
}

impl Inner {
    fn offer(&self, item: Item, kind: Kind) {
        let reason = match self.queue.try_send(item) {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => DropReason::QueueFull,
            Err(TrySendError::Disconnected(_)) => DropReason::WriteFailed,
        };
        self.metrics.dropped(kind, reason).inc();
        if self.metrics.may_complain() {
            log::warn!(
                "store: not keeping up, dropping samples and audit records (relaying goes on; see deskbridge_store_dropped_total; logged once a minute)"
            );
        }
    }

    /// Runs `f` on a pooled reader connection (opened on first need).
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().ok().and_then(|mut r| r.pop());
        let mut conn = match pooled {
            Some(conn) => conn,
            None => schema::connect(&self.config.database())?,
        };
        let result = f(&mut conn);
        if let Ok(mut readers) = self.readers.lock() {
            if readers.len() < IDLE_READERS {
                readers.push(conn);
            }
        }
        result
    }
}
