//! Cluster mode: several relays behind a load balancer, joined through NATS, so a desktop on one
//! node and its viewers on another still meet. Off unless `--nats` is given; a single relay runs
//! none of this code.
//!
//! NATS does the node-to-node work; the relay adds only subject naming and a small announcement
//! per id:
//! - [`subjects`]: one set of subjects per client id, subscribed only by nodes holding the id.
//! - [`link`]: one task per held id that owns its subscriptions and delivers to local sessions.
//! - [`publisher`]: the node's bounded publish queue, so sessions never wait for NATS.
//! - [`remote`]: what sessions call: forward telemetry/replies, send a command, fetch history.
//! - [`announce`], [`presence`]: nodes' per-id state, merged into `presence` by the matchmaker.
//! - [`directory`]: which ids exist anywhere in the cluster, for fleet grids.
//! - [`auth_sync`]: share links and sign-outs, told to every node.
//! - [`metrics`], [`config`]: `/metrics` counters and the settings.
//!
//! Forwarded client messages travel as their original bytes; the event name is the subject's
//! last token, so the receiving node routes them with the protocol's table.

pub mod announce;
pub mod auth_sync;
pub mod config;
pub mod directory;
pub mod link;
pub mod metrics;
pub mod presence;
pub mod publisher;
pub mod remote;
pub mod subjects;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use tokio::sync::mpsc;

pub use config::ClusterConfig;
use metrics::ClusterMetrics;
use publisher::Publisher;

use crate::metrics::Metrics;

/// Header on a history answer carrying the answering node's announcement, so the asking node
/// knows the desktop is there before it tells its new viewer.
pub const STATE_HEADER: &str = "Deskbridge-State";

/// The answers of the desktop's node to a command: a [`CommandOutcome`] as one word.
///
/// [`CommandOutcome`]: crate::outbox::command::CommandOutcome
pub(crate) mod reply {
    use crate::outbox::command::CommandOutcome;

    pub const OK: &str = "ok";
    pub const BUSY: &str = "busy";
    pub const LIMITED: &str = "limited";
    pub const OFFLINE: &str = "offline";

    /// The answer for `outcome`. `Unreachable` never travels (it is the asking node's verdict
    /// when no answer came), so it reads as `offline` if it ever did.
    pub fn encode(outcome: CommandOutcome) -> &'static str {
        match outcome {
            CommandOutcome::Delivered => OK,
            CommandOutcome::Busy => BUSY,
            CommandOutcome::Limited => LIMITED,
            CommandOutcome::Offline | CommandOutcome::Unreachable => OFFLINE,
        }
    }

    /// The outcome an answer reports; anything unknown is `Offline`.
    pub fn decode(answer: &[u8]) -> CommandOutcome {
        match std::str::from_utf8(answer) {
            Ok(OK) => CommandOutcome::Delivered,
            Ok(BUSY) => CommandOutcome::Busy,
            Ok(LIMITED) => CommandOutcome::Limited,
            _ => CommandOutcome::Offline,
        }
    }
}

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read the NATS credentials file {path}: {source}")]
    Credentials {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot set up the NATS connection: {0}")]
    Connect(#[from] async_nats::ConnectError),
}

/// This node's link to the cluster, shared by the matchmaker, the id tasks and the sessions.
#[derive(Debug)]
pub struct Cluster {
    pub(crate) client: Client,
    pub(crate) node_id: Arc<str>,
    pub(crate) publisher: Publisher,
    pub(crate) metrics: Arc<ClusterMetrics>,
    pub(crate) relay_metrics: Arc<Metrics>,
    pub(crate) request_timeout: Duration,
    pub(crate) max_message_size: usize,
    /// Announcement sequence; starts from the clock so a restarted node keeps counting upwards.
    seq: AtomicU64,
    /// Id tasks still running, so shutdown can wait for their last announcements.
    pub(crate) links: AtomicUsize,
    /// One `()` per (re)connection to NATS, for the matchmaker to announce everything again.
    connected: Mutex<Option<mpsc::UnboundedReceiver<()>>>,
}

impl Cluster {
    /// Starts connecting to NATS and returns at once: a relay serves its own pairs while NATS is
    /// down, and the client keeps retrying (forever) in the background. Must run inside a tokio
    /// runtime (the actix system's).
    pub async fn connect(
        config: &ClusterConfig,
        heartbeat_interval: Duration,
        max_message_size: usize,
        metrics: Arc<ClusterMetrics>,
        relay_metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, ClusterError> {
        let (connected_tx, connected_rx) = mpsc::unbounded_channel();
        let mut options = ConnectOptions::new()
            .name(format!("deskbridge-relay {}", config.node_id))
            // A node never needs its own messages back.
            .no_echo()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(reconnect_delay)
            .ping_interval(heartbeat_interval)
            .request_timeout(Some(config.request_timeout))
            .subscription_capacity(4096)
            .event_callback({
                let metrics = metrics.clone();
                move |event| {
                    on_event(&metrics, &connected_tx, event);
                    std::future::ready(())
                }
            });
        if let Some(path) = &config.credentials_file {
            options = options.credentials_file(path).await.map_err(|source| {
                ClusterError::Credentials {
                    path: path.display().to_string(),
                    source,
                }
            })?;
        }
        if let Some(token) = &config.token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &config.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &config.tls_client_cert {
            options = options
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        log::info!(
            "cluster mode: node {} joining NATS at {}",
            config.node_id,
            config.servers_for_log()
        );
        let client = options.connect(config.servers.clone()).await?;
        let (publisher, queue) = Publisher::channel(config.publish_queue, metrics.clone());
        tokio::spawn(publisher::run(client.clone(), queue, metrics.clone()));
        tokio::spawn(remind_while_down(
            metrics.clone(),
            config.servers_for_log(),
            heartbeat_interval.max(Duration::from_secs(1)) * 3,
        ));
        Ok(Arc::new(Self {
            client,
            node_id: Arc::from(config.node_id.as_str()),
            publisher,
            metrics,
            relay_metrics,
            request_timeout: config.request_timeout,
            max_message_size,
            seq: AtomicU64::new(deskbridge_protocol::unix_millis().saturating_mul(1000)),
            links: AtomicUsize::new(0),
            connected: Mutex::new(Some(connected_rx)),
        }))
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn is_connected(&self) -> bool {
        self.metrics.is_connected()
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// The (re)connection notices; the matchmaker takes them once.
    pub(crate) fn take_connected(&self) -> Option<mpsc::UnboundedReceiver<()>> {
        self.connected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// After the sessions are gone: waits (briefly) for the id tasks to send their last
    /// announcements and flushes them to NATS, so other nodes drop this node's state at once
    /// rather than after the heartbeat timeout.
    pub async fn close(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while self.links.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if self.is_connected() {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.client.flush()).await;
        }
        log::info!("cluster: node {} left", self.node_id);
    }
}

/// Reconnect quickly at first, then every 2 s at most: a relay wants its cluster back soon, and
/// one connection attempt every 2 s is nothing for a NATS server.
fn reconnect_delay(attempts: usize) -> Duration {
    let exp = attempts.saturating_sub(1).min(6) as u32;
    Duration::from_millis(50u64 << exp).min(Duration::from_secs(2))
}

fn on_event(metrics: &ClusterMetrics, connected: &mpsc::UnboundedSender<()>, event: Event) {
    match event {
        Event::Connected => {
            metrics.set_connected(true);
            log::info!("cluster: connected to NATS");
            let _ = connected.send(());
        }
        Event::Disconnected => {
            metrics.set_connected(false);
            log::warn!(
                "cluster: lost the connection to NATS; pairs on this node keep working, \
                 pairs across nodes resume when it is back"
            );
        }
        Event::Closed => metrics.set_connected(false),
        Event::LameDuckMode => log::info!("cluster: the NATS server is shutting down (lame duck)"),
        Event::SlowConsumer(sid) => {
            log::warn!("cluster: subscription {sid} cannot keep up; NATS dropped messages for it")
        }
        Event::ServerError(e) => log::warn!("cluster: NATS server error: {e}"),
        // While disconnected these are the failed reconnection attempts: the reminder covers them.
        Event::ClientError(e) if !metrics.is_connected() => log::debug!("cluster: NATS: {e}"),
        Event::ClientError(e) => log::warn!("cluster: NATS client error: {e}"),
        Event::Draining => {}
    }
}

/// Logs now and then while NATS is unreachable, since the client's own retries are silent. Ends
/// with the relay's runtime.
async fn remind_while_down(metrics: Arc<ClusterMetrics>, servers: String, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if !metrics.is_connected() {
            log::warn!(
                "cluster: still no connection to NATS at {servers}; only pairs on this node work"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_to_two_seconds() {
        assert_eq!(reconnect_delay(0), Duration::from_millis(50));
        assert_eq!(reconnect_delay(2), Duration::from_millis(100));
        assert_eq!(reconnect_delay(100), Duration::from_secs(2));
    }
}
