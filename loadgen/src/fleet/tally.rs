//! What the connections of one load generator process count while they run: messages sent and
//! delivered inside the measurement window, latencies, errors, unexpected closes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::latency::{Hist, Recorder};

/// The measurement window, in [`crate::clock`] nanoseconds, fixed when the shard gets "go".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// When traffic starts (desktops' first frames are spread over one period after this).
    pub go: u64,
    /// Frames stamped in `[start, end)` are counted; earlier ones are warm-up.
    pub start: u64,
    /// Senders stop here.
    pub end: u64,
    /// Slow-viewer scenario: when the slow viewer stops reading; latencies of frames stamped from
    /// here on are kept apart, to compare before and after.
    pub split: Option<u64>,
}

impl Window {
    pub fn counts(&self, stamp: u64) -> bool {
        (self.start..self.end).contains(&stamp)
    }

    pub fn after_split(&self, stamp: u64) -> bool {
        self.split.is_some_and(|s| stamp >= s)
    }
}

#[derive(Default)]
pub struct Tally {
    pub cpu_sent: AtomicU64,
    /// Sum over counted `cpu` frames of the viewers that should get each.
    pub cpu_expected: AtomicU64,
    pub cpu_delivered: AtomicU64,
    pub beep_sent: AtomicU64,
    pub beep_delivered: AtomicU64,
    pub beep_refused: AtomicU64,
    pub closed_early: AtomicU64,
    pub slow_received: AtomicU64,
    pub ready_desktops: AtomicUsize,
    pub errors: Mutex<BTreeMap<String, u64>>,
    pub cpu: Recorder,
    pub cpu_after_split: Recorder,
    pub beep: Recorder,
    pub send_lag: Recorder,
}

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Tally {
    pub fn error(&self, code: String) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(code)
            .or_default() += 1;
    }

    /// Everything in the window has arrived (or been refused).
    pub fn complete(&self) -> bool {
        get(&self.cpu_delivered) >= get(&self.cpu_expected)
            && get(&self.beep_delivered) + get(&self.beep_refused) >= get(&self.beep_sent)
    }

    pub fn counts(&self) -> Counts {
        Counts {
            cpu_sent: get(&self.cpu_sent),
            cpu_expected: get(&self.cpu_expected),
            cpu_delivered: get(&self.cpu_delivered),
            beep_sent: get(&self.beep_sent),
            beep_delivered: get(&self.beep_delivered),
            beep_refused: get(&self.beep_refused),
            closed_early: get(&self.closed_early),
            slow_received: get(&self.slow_received),
            errors: self
                .errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    pub fn hists(&self) -> Hists {
        Hists {
            cpu: self.cpu.snapshot(),
            cpu_after_split: self.cpu_after_split.snapshot(),
            beep: self.beep.snapshot(),
            send_lag: self.send_lag.snapshot(),
        }
    }
}

/// The counters of one or more shards.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counts {
    pub cpu_sent: u64,
    pub cpu_expected: u64,
    pub cpu_delivered: u64,
    pub beep_sent: u64,
    pub beep_delivered: u64,
    pub beep_refused: u64,
    pub closed_early: u64,
    pub slow_received: u64,
    pub errors: BTreeMap<String, u64>,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.cpu_sent += o.cpu_sent;
        self.cpu_expected += o.cpu_expected;
        self.cpu_delivered += o.cpu_delivered;
        self.beep_sent += o.beep_sent;
        self.beep_delivered += o.beep_delivered;
        self.beep_refused += o.beep_refused;
        self.closed_early += o.closed_early;
        self.slow_received += o.slow_received;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }
}

/// The histograms of one or more shards.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Hists {
    pub cpu: Hist,
    pub cpu_after_split: Hist,
    pub beep: Hist,
    pub send_lag: Hist,
}

impl Hists {
    pub fn merge(all: &[&Hists]) -> Hists {
        Hists {
            cpu: Hist::merge(all.iter().map(|h| &h.cpu)),
            cpu_after_split: Hist::merge(all.iter().map(|h| &h.cpu_after_split)),
            beep: Hist::merge(all.iter().map(|h| &h.beep)),
            send_lag: Hist::merge(all.iter().map(|h| &h.send_lag)),
        }
    }
}
