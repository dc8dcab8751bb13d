//! The relay's embedded store (`serve --data-dir`): every desktop's cpu history (raw samples for
//! a day, one-minute aggregates for a month) and the audit log, in one SQLite database in WAL
//! mode that people can open with `sqlite3` — or, in a cluster, in NATS JetStream
//! ([`jetstream`]), so every node answers every range. Beside them, when each desktop was offline
//! and why ([`presence`]), for the charts' gaps.
//!
//! The contract with the rest of the relay: **relaying never waits for the store.** Sessions
//! hand samples and audit records to [`Store::record`] / [`Store::audit`], which only `try_send`
//! into a bounded queue; the store's own thread ([`writer`]) or task writes them in batches. A
//! full queue or a failed write drops them and counts it on `/metrics`. Reading
//! ([`Store::history`], [`Store::audit_log`]) is async: SQLite queries run on a blocking thread
//! with a reader connection of their own, JetStream ones are network requests, so neither holds
//! an actix worker.
//!
//! Without a data directory (`--no-store`, and `Config::default()`), [`Store::disabled`] does
//! nothing and answers no queries: the relay keeps only its in-memory `history`, as before.

pub mod config;
pub mod jetstream;
pub mod metrics;
pub mod migrate;
pub mod open;
pub mod packed;
pub mod presence;
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
use rusqlite::Connection;

use config::StoreConfig;
use jetstream::JetStore;
use metrics::{DropReason, Kind, StoreMetrics};
use open::OpenMinutes;
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
    inner: Option<Backend>,
}

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<Inner>),
    JetStream(Arc<JetStore>, Arc<StoreMetrics>, StoreConfig),
}

struct Inner {
    queue: SyncSender<Item>,
    metrics: Arc<StoreMetrics>,
    /// The writer's open minutes, read by queries.
    open: Arc<OpenMinutes>,
    config: StoreConfig,
    readers: Mutex<Vec<Connection>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some(Backend::Sqlite(inner)) => {
                write!(f, "Store({})", inner.config.database().display())
            }
            Some(Backend::JetStream(..)) => f.write_str("Store(JetStream)"),
            None => f.write_str("Store(disabled)"),
        }
    }
}

impl Store {
    /// No store: records nothing, answers nothing.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Opens (or creates) the store in `config.dir`, counting in `metrics`, and starts its
    /// thread.
    pub fn open(config: &StoreConfig, metrics: Arc<StoreMetrics>) -> Result<Self, StoreError> {
        schema::create_dir(&config.dir)?;
        let path = config.database();
        let conn = schema::open(&path)?;
        if let Some(pages) = config.max_page_count {
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        let (queue, rx) = mpsc::sync_channel(config.queue.max(1));
        let open = Arc::new(OpenMinutes::default());
        let writer = Writer::new(conn, config.clone(), metrics.clone(), open.clone())?;
        let thread = std::thread::Builder::new()
            .name("store".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|source| StoreError::Directory {
                path: config.dir.display().to_string(),
                source,
            })?;
        log::info!("store: {}", path.display());
        Ok(Self {
            inner: Some(Backend::Sqlite(Arc::new(Inner {
                queue,
                metrics,
                open,
                config: config.clone(),
                readers: Mutex::new(Vec::new()),
                thread: Mutex::new(Some(thread)),
            }))),
        })
    }

    /// The cluster's store in JetStream, through the cluster's NATS connection, as cluster
    /// node `node`: its crash journal is that node's, read back when a node of the same id
    /// starts again (every node of a cluster has its own id). Never fails: until NATS answers
    /// and JetStream is on, records are dropped and counted. Must run inside a tokio runtime.
    pub fn open_jetstream_node(
        client: async_nats::Client,
        node: &str,
        config: &StoreConfig,
        metrics: Arc<StoreMetrics>,
    ) -> Self {
        let store = JetStore::start(client, node, config, metrics.clone());
        log::info!("store: NATS JetStream");
        Self {
            inner: Some(Backend::JetStream(Arc::new(store), metrics, config.clone())),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The store's counters, `None` without a store.
    #[cfg(test)]
    fn metrics(&self) -> Option<Arc<StoreMetrics>> {
        match &self.inner {
            None => None,
            Some(Backend::Sqlite(inner)) => Some(inner.metrics.clone()),
            Some(Backend::JetStream(_, metrics, _)) => Some(metrics.clone()),
        }
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
        if self.inner.is_some() {
            self.offer(Item::Sample(Sample::of(id, cpu, now_ms())), Kind::Sample);
        }
    }

    /// Queues one audit record; never blocks (a full queue drops it, counted).
    pub fn audit(&self, record: AuditRecord) {
        if self.inner.is_some() {
            self.offer(Item::Audit(record), Kind::Audit);
        }
    }

    /// Queues `item`, or counts it as dropped.
    fn offer(&self, item: Item, kind: Kind) {
        let (sent, metrics) = match &self.inner {
            None => return,
            Some(Backend::Sqlite(inner)) => (
                inner.queue.try_send(item).map_err(|e| match e {
                    TrySendError::Full(_) => DropReason::QueueFull,
                    TrySendError::Disconnected(_) => DropReason::WriteFailed,
                }),
                &inner.metrics,
            ),
            Some(Backend::JetStream(store, metrics, _)) => (
                store.queue.try_send(item).map_err(|e| match e {
                    tokio::sync::mpsc::error::TrySendError::Full(_) => DropReason::QueueFull,
                    tokio::sync::mpsc::error::TrySendError::Closed(_) => DropReason::WriteFailed,
                }),
                metrics,
            ),
        };
        if let Err(reason) = sent {
            metrics.dropped(kind, reason).inc();
            if metrics.may_complain() {
                log::warn!(
                    "store: not keeping up, dropping samples and audit records (relaying goes on; see deskbridge_store_dropped_total; logged once a minute)"
                );
            }
        }
    }

    /// The history of `id` in `[from, to)` (Unix ms) at `step`, or at a step the relay picks
    /// for at most ~2,000 points. `None` without a store.
    pub async fn history(
        &self,
        id: &ClientId,
        from: u64,
        to: u64,
        step: Option<Step>,
    ) -> Result<Option<History>, StoreError> {
        let retention_raw = match &self.inner {
            None => return Ok(None),
            Some(Backend::Sqlite(inner)) => inner.config.retention_raw,
            Some(Backend::JetStream(_, _, config)) => config.retention_raw,
        };
        let raw_kept_from = now_ms().saturating_sub(retention_raw.as_millis() as u64);
        let step = step.unwrap_or_else(|| Step::choose(from, to, raw_kept_from));
        match &self.inner {
            None => Ok(None),
            Some(Backend::Sqlite(inner)) => {
                let (inner, id) = (inner.clone(), id.clone());
                blocking(move || {
                    inner.with_reader(|conn| {
                        let open = &inner.open;
                        query::history(conn, open, id.as_str(), from, to, step, raw_kept_from)
                    })
                })
                .await
                .map(Some)
            }
            Some(Backend::JetStream(store, ..)) => {
                store.history(id, from, to, step).await.map(Some)
            }
        }
    }

    /// The audit records of `desktop` from `since` (Unix ms), oldest first, and whether there
    /// are more. `None` without a store.
    pub async fn audit_log(
        &self,
        desktop: &ClientId,
        since: u64,
    ) -> Result<Option<(Vec<AuditEntry>, bool)>, StoreError> {
        match &self.inner {
            None => Ok(None),
            Some(Backend::Sqlite(inner)) => {
                let (inner, desktop) = (inner.clone(), desktop.clone());
                blocking(move || {
                    inner.with_reader(|conn| query::audit(conn, desktop.as_str(), since))
                })
                .await
                .map(Some)
            }
            Some(Backend::JetStream(store, ..)) => store.audit_log(desktop, since).await.map(Some),
        }
    }

    /// Writes what is queued and stops the store's thread or task (waiting a few seconds at
    /// most); later records are dropped as if the queue were full.
    pub async fn close(&self) {
        let (done, finished) = mpsc::channel();
        match &self.inner {
            None => return,
            Some(Backend::Sqlite(inner)) => {
                let inner = inner.clone();
                let _ = blocking(move || {
                    inner.close(done, finished);
                    Ok(())
                })
                .await;
            }
            Some(Backend::JetStream(store, ..)) => {
                // A writer that cannot keep up has a full queue: waiting for room without a bound
                // kept a stopping relay alive for minutes.
                let queued = tokio::time::timeout(CLOSE_WAIT, store.queue.send(Item::Close(done)));
                if matches!(queued.await, Ok(Ok(()))) {
                    let _ = blocking(move || {
                        let _ = finished.recv_timeout(CLOSE_WAIT);
                        Ok(())
                    })
                    .await;
                }
            }
        }
        log::info!("store: closed");
    }
}

/// Runs blocking store work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::JetStream(format!("a store query failed: {e}")))?
}

impl Inner {
    /// Sends the writer its last batch and waits for it to finish (blocking).
    fn close(&self, done: mpsc::Sender<()>, finished: mpsc::Receiver<()>) {
        if self.queue.send(Item::Close(done)).is_ok() && finished.recv_timeout(CLOSE_WAIT).is_err()
        {
            log::warn!("store: the last batch took longer than {CLOSE_WAIT:?}; not waiting");
            return;
        }
        let thread = self.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(thread) = thread {
            if thread.join().is_err() {
                log::error!("store: its thread panicked");
            }
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
