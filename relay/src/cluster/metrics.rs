//! Cluster counters on `/metrics`: which node this is, whether NATS is reachable, and how many
//! messages went to, came from, or could not be handed to NATS.
//!
//! Like the relay's own metrics, every label set is resolved once at start, so counting is one
//! atomic add.

use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// What kind of cluster message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// Desktop → viewers on other nodes, superseded by the next (cpu).
    Telemetry,
    /// Desktop → viewers on other nodes, answering a command (beep_result).
    Reply,
    /// Viewer → the desktop's node (beep), request/reply.
    Command,
    /// A history request, or the answer to one.
    History,
    /// A node's announcement of what it holds of an id.
    State,
}

impl Traffic {
    const ALL: [Traffic; 5] = [
        Traffic::Telemetry,
        Traffic::Reply,
        Traffic::Command,
        Traffic::History,
        Traffic::State,
    ];

    fn label(self) -> &'static str {
        match self {
            Traffic::Telemetry => "telemetry",
            Traffic::Reply => "reply",
            Traffic::Command => "command",
            Traffic::History => "history",
            Traffic::State => "state",
        }
    }
}

/// Why a message was not handed to NATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterDrop {
    /// The node's publish queue was full (NATS slower than the relay).
    QueueFull,
    /// Not connected to NATS at the moment.
    Disconnected,
    /// A message from NATS that no relay would send (bad subject, not UTF-8, too large).
    Invalid,
}

impl ClusterDrop {
    const ALL: [ClusterDrop; 3] = [
        ClusterDrop::QueueFull,
        ClusterDrop::Disconnected,
        ClusterDrop::Invalid,
    ];

    fn label(self) -> &'static str {
        match self {
            ClusterDrop::QueueFull => "queue_full",
            ClusterDrop::Disconnected => "disconnected",
            ClusterDrop::Invalid => "invalid",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

/// The cluster's metrics, registered in the relay's registry.
#[derive(Debug)]
pub struct ClusterMetrics {
    node: String,
    connected_flag: AtomicBool,
    connected: Gauge,
    disconnects: Counter,
    published: [Counter; 5],
    received: [Counter; 5],
    dropped: [Counter; 3],
    desktop_lookups: Counter,
}

impl ClusterMetrics {
    /// Registers the cluster metrics for node `node` in `registry`.
    pub fn register(registry: &mut Registry, node: &str) -> Self {
        registry.register(
            "cluster_node",
            "This relay's node id in the cluster",
            Info::new(NodeLabel {
                node: node.to_owned(),
            }),
        );
        let connected = Gauge::default();
        registry.register(
            "cluster_nats_connected",
            "1 while connected to NATS, 0 while not (same-node pairs still work)",
            connected.clone(),
        );
        let disconnects = Counter::default();
        registry.register(
            "cluster_nats_disconnects",
            "Times the connection to NATS was lost",
            disconnects.clone(),
        );
        let by_kind = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<KindLabel, Counter>::default();
            registry.register(name, help, family.clone());
            Traffic::ALL.map(|t| family.get_or_create(&KindLabel { kind: t.label() }).clone())
        };
        let published = by_kind(
            registry,
            "cluster_published",
            "Messages handed to NATS, by kind",
        );
        let received = by_kind(
            registry,
            "cluster_received",
            "Messages received from other nodes through NATS, by kind",
        );
        let dropped_family = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "cluster_dropped",
            "Cluster messages dropped, by reason",
            dropped_family.clone(),
        );
        let dropped = ClusterDrop::ALL.map(|r| {
            dropped_family
                .get_or_create(&ReasonLabel { reason: r.label() })
                .clone()
        });
        let desktop_lookups = Counter::default();
        registry.register(
            "cluster_desktop_lookups",
            "Commands whose viewer's session had to ask the matchmaker where the desktop is (a viewer that knows its desktop is on another node never does)",
            desktop_lookups.clone(),
        );
        Self {
            desktop_lookups,
            node: node.to_owned(),
            connected_flag: AtomicBool::new(false),
            connected,
            disconnects,
            published,
            received,
            dropped,
        }
    }

    /// A session asked the matchmaker where its desktop is.
    pub fn desktop_lookup(&self) {
        self.desktop_lookups.inc();
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn set_connected(&self, up: bool) {
        let was = self.connected_flag.swap(up, Ordering::Relaxed);
        self.connected.set(i64::from(up));
        if was && !up {
            self.disconnects.inc();
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected_flag.load(Ordering::Relaxed)
    }

    pub fn published(&self, traffic: Traffic) {
        self.published[traffic as usize].inc();
    }

    pub fn received(&self, traffic: Traffic) {
        self.received[traffic as usize].inc();
    }

    pub fn dropped(&self, reason: ClusterDrop) {
        self.dropped[reason as usize].inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_node_state_and_counters() {
        let mut registry = Registry::with_prefix("deskbridge");
        let m = ClusterMetrics::register(&mut registry, "relay-a");
        m.set_connected(true);
        m.set_connected(false);
        m.published(Traffic::Telemetry);
        m.received(Traffic::Command);
        m.dropped(ClusterDrop::Disconnected);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            r#"deskbridge_cluster_node_info{node="relay-a"} 1"#,
            "deskbridge_cluster_nats_connected 0",
            "deskbridge_cluster_nats_disconnects_total 1",
            r#"deskbridge_cluster_published_total{kind="telemetry"} 1"#,
            r#"deskbridge_cluster_received_total{kind="command"} 1"#,
            r#"deskbridge_cluster_dropped_total{reason="disconnected"} 1"#,
            r#"deskbridge_cluster_dropped_total{reason="queue_full"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
