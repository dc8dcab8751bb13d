//! The store's counters on `/metrics`: what was written, in how many batches, and what was
//! dropped and why. Registered in the relay's registry beside its own, held by the store (as the
//! cluster's are held by the cluster), so `metrics.rs` knows nothing of the store.
//!
//! Also the once-a-minute limit on the store's complaints in the log: a full disk must not turn
//! into a log line per sample.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// What was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sample,
    Audit,
    /// A desktop's departure or return (`store/presence/`).
    Presence,
}

/// Why it was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The store's queue was full: its thread is not keeping up (a slow disk).
    QueueFull,
    /// The batch's transaction failed (a full disk, an I/O error) and was rolled back.
    WriteFailed,
}

impl DropReason {
    fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::WriteFailed => "write_failed",
        }
    }
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Sample => "sample",
            Kind::Audit => "audit",
            Kind::Presence => "presence",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    kind: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The store's metrics; every label set resolved once, so counting is one atomic add.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    /// `[kind][reason]`.
    dropped: [[Counter; 2]; 3],
    written: [Counter; 3],
    batches: Counter,
    /// When the store last complained in the log (Unix seconds).
    last_complaint: AtomicU64,
}

const KINDS: [Kind; 3] = [Kind::Sample, Kind::Audit, Kind::Presence];
const REASONS: [DropReason; 2] = [DropReason::QueueFull, DropReason::WriteFailed];

impl StoreMetrics {
    /// Registers the store's metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let dropped_family = Family::<DropLabels, Counter>::default();
        registry.register(
            "store_dropped",
            "Cpu samples, audit records and presence changes not stored, by kind and reason (relaying is unaffected)",
            dropped_family.clone(),
        );
        let dropped = KINDS.map(|k| {
            REASONS.map(|r| {
                dropped_family
                    .get_or_create(&DropLabels {
                        kind: k.label(),
                        reason: r.label(),
                    })
                    .clone()
            })
        });
        let written_family = Family::<KindLabel, Counter>::default();
        registry.register(
            "store_written",
            "Cpu samples, audit records and presence changes written to the store, by kind",
            written_family.clone(),
        );
        let written = KINDS.map(|k| {
            written_family
                .get_or_create(&KindLabel { kind: k.label() })
                .clone()
        });
        let batches = Counter::default();
        registry.register(
            "store_batches",
            "Transactions the store's thread committed (one per batch)",
            batches.clone(),
        );
        Self {
            dropped,
            written,
            batches,
            last_complaint: AtomicU64::new(0),
        }
    }

    /// `deskbridge_store_dropped_total{kind,reason}`.
    pub fn dropped(&self, kind: Kind, reason: DropReason) -> &Counter {
        &self.dropped[kind as usize][reason as usize]
    }

    /// `deskbridge_store_written_total{kind}`.
    pub fn written(&self, kind: Kind) -> &Counter {
        &self.written[kind as usize]
    }

    /// `deskbridge_store_batches_total`.
    pub fn batches(&self) -> &Counter {
        &self.batches
    }

    /// `true` at most once a minute, for whoever (any thread) wants to log a store problem.
    pub fn may_complain(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_complaint.load(Ordering::Relaxed);
        now >= last + 60
            && self
                .last_complaint
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_resolved_once_and_complaints_are_rate_limited() {
        let mut registry = Registry::default();
        let metrics = StoreMetrics::register(&mut registry);
        metrics.dropped(Kind::Sample, DropReason::WriteFailed).inc();
        metrics.written(Kind::Audit).inc_by(3);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"store_dropped_total{kind="sample",reason="write_failed"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"store_written_total{kind="audit"} 3"#),
            "{text}"
        );
        assert!(metrics.may_complain());
        assert!(
            !metrics.may_complain(),
            "a second complaint within the minute"
        );
    }
}
