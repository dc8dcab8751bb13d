//! The store of a cluster: NATS JetStream, the engine the cluster already runs, so every node
//! answers every range and a killed node loses nothing JetStream acknowledged. Four streams
//! (`DESKBRIDGE_RAW`, `DESKBRIDGE_MINUTES`, `DESKBRIDGE_AUDIT`, one subject per desktop in each —
//! and `DESKBRIDGE_PRESENCE`, written here but defined and read in `store/presence/jetstream.rs`;
//! `DESKBRIDGE_JOURNAL`, one subject per node and minute; [`wire`]), retention by JetStream's own
//! `max_age`; replication is the operator's stream setting (`num_replicas`), which the relay
//! keeps.
//!
//! As with SQLite, relaying never waits: records go through a bounded queue (`try_send`) to one
//! task ([`writer`]) that publishes them: a journal message per batch, and when a minute ends one
//! packed raw message and one aggregate per desktop. Readers ([`read`]) merge what they find
//! with the open minutes every node keeps in memory.

mod inflight;
pub mod read;
mod silent;
pub mod wire;
pub mod writer;

use std::sync::Arc;

use async_nats::jetstream;
use deskbridge_protocol::ClientId;
use tokio::sync::mpsc;

use super::config::StoreConfig;
use super::metrics::StoreMetrics;
use super::open::OpenMinutes;
use super::query::{AuditEntry, History, Step};
use super::record::Item;
use super::schema::StoreError;

/// A handle on the JetStream store.
pub struct JetStore {
    pub queue: mpsc::Sender<Item>,
    js: jetstream::Context,
    client: async_nats::Client,
}

impl JetStore {
    /// Starts the writing task on the current tokio runtime, publishing through `client` as
    /// node `node` (whose journal it reads back after a restart: keep node ids stable).
    pub fn start(
        client: async_nats::Client,
        node: &str,
        config: &StoreConfig,
        metrics: Arc<StoreMetrics>,
    ) -> Self {
        let js = jetstream::new(client.clone());
        let (queue, rx) = mpsc::channel(config.queue.max(1));
        let open = Arc::new(OpenMinutes::default());
        tokio::spawn(writer::run(
            client.clone(),
            node.to_owned(),
            config.clone(),
            metrics,
            open,
            rx,
        ));
        Self { queue, js, client }
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
        read::history(&self.js, &self.client, id, from, to, step).await
    }

    pub async fn audit_log(
        &self,
        desktop: &ClientId,
        since: u64,
    ) -> Result<(Vec<AuditEntry>, bool), StoreError> {
        read::audit(&self.js, desktop, since).await
    }
}
