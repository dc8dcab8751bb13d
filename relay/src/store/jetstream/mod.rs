//! The store of a cluster: NATS JetStream, the engine the cluster already runs, so every node
//! answers every range and a killed node loses nothing JetStream acknowledged. Three streams
//! (`DESKBRIDGE_SAMPLES`, `DESKBRIDGE_MINUTES`, `DESKBRIDGE_AUDIT`; and `DESKBRIDGE_PRESENCE`,
//! written here but defined and read in `store/presence/jetstream.rs`), one subject per desktop
//! in each ([`wire`]), retention by JetStream's own `max_age`; replication is the operator's
//! stream setting (`num_replicas`), which the relay keeps.
//!
//! As with SQLite, relaying never waits: records go through a bounded queue (`try_send`) to one
//! task ([`writer`]) that publishes them. The node holding a desktop publishes its raw samples
//! and, a little after each minute ends, that minute's aggregate; readers ([`read`]) merge what
//! they find.

pub mod read;
pub mod wire;
pub mod writer;

use std::sync::Arc;

use async_nats::jetstream;
use deskbridge_protocol::ClientId;
use tokio::sync::mpsc;

use super::config::StoreConfig;
use super::metrics::StoreMetrics;
use super::query::{AuditEntry, History, Step};
use super::record::Item;
use super::schema::StoreError;

/// A handle on the JetStream store.
pub struct JetStore {
    pub queue: mpsc::Sender<Item>,
    js: jetstream::Context,
}

impl JetStore {
    /// Starts the writing task on the current tokio runtime, publishing through `client`.
    pub fn start(
        client: async_nats::Client,
        config: &StoreConfig,
        metrics: Arc<StoreMetrics>,
    ) -> Self {
        let js = jetstream::new(client);
        let (queue, rx) = mpsc::channel(config.queue.max(1));
        tokio::spawn(writer::run(js.clone(), config.clone(), metrics, rx));
        Self { queue, js }
    }

    /// The JetStream context, for readers outside this module (`store/presence/`).
    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }

    pub async fn history(
        &self,
        id: &ClientId,
        from: u64,
        to: u64,
        step: Step,
    ) -> Result<History, StoreError> {
        read::history(&self.js, id, from, to, step).await
    }

    pub async fn audit_log(
        &self,
        desktop: &ClientId,
        since: u64,
    ) -> Result<(Vec<AuditEntry>, bool), StoreError> {
        read::audit(&self.js, desktop, since).await
    }
}
