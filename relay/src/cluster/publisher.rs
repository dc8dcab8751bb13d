//! The one task per node that hands messages to NATS, and the bounded queue sessions put them in.
//!
//! A session never awaits NATS and never spawns per message: it `try_send`s into this queue and
//! goes on. When NATS is slow the queue fills and further telemetry is dropped (and counted), as
//! for a slow viewer; when NATS is unreachable nothing is queued inside the NATS client either,
//! so no stale burst of cpu samples arrives when it comes back.

use async_nats::connection::State;
use async_nats::{Client, Subject};
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;

use super::metrics::{ClusterDrop, ClusterMetrics, Traffic};

/// One message for NATS.
#[derive(Debug)]
pub struct Outgoing {
    pub subject: Subject,
    pub payload: Bytes,
    pub traffic: Traffic,
}

/// The sending side of the node's publish queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Outgoing>,
    metrics: Arc<ClusterMetrics>,
}

impl Publisher {
    pub fn channel(
        capacity: usize,
        metrics: Arc<ClusterMetrics>,
    ) -> (Self, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(capacity.max(16));
        (Self { tx, metrics }, rx)
    }

    /// Queues a message without waiting; `false` if it was dropped (and counted).
    pub fn publish(&self, subject: Subject, payload: Bytes, traffic: Traffic) -> bool {
        if !self.metrics.is_connected() {
            self.metrics.dropped(ClusterDrop::Disconnected);
            return false;
        }
        let queued = self
            .tx
            .try_send(Outgoing {
                subject,
                payload,
                traffic,
            })
            .is_ok();
        if !queued {
            self.metrics.dropped(ClusterDrop::QueueFull);
        }
        queued
    }
}

/// Drains the queue into NATS until every [`Publisher`] is gone.
pub async fn run(client: Client, mut rx: mpsc::Receiver<Outgoing>, metrics: Arc<ClusterMetrics>) {
    while let Some(out) = rx.recv().await {
        // Queued while connected, but the connection may have dropped since: do not let the
        // client buffer stale telemetry for a reconnect that may be minutes away.
        if client.connection_state() != State::Connected {
            metrics.dropped(ClusterDrop::Disconnected);
            continue;
        }
        match client.publish(out.subject, out.payload).await {
            Ok(()) => metrics.published(out.traffic),
            Err(e) => {
                metrics.dropped(ClusterDrop::Disconnected);
                log::debug!("cluster: publish failed: {e}");
            }
        }
    }
}
