//! Latency histograms: HDR histograms in nanoseconds, sharded so thousands of connection tasks on
//! several threads can record without contending, and serializable so load generator processes
//! can be merged exactly.

use std::sync::Mutex;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency recorded exactly; anything slower is clamped (and shows as the max).
const HIGHEST_NS: u64 = 120_000_000_000;
const SHARDS: usize = 16;

fn empty() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("static bounds are valid")
}

/// A histogram many tasks record into.
pub struct Recorder {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(empty())).collect(),
        }
    }
}

impl Recorder {
    /// Records `ns` into the shard of task `task` (any stable number per task).
    pub fn record(&self, task: usize, ns: u64) {
        let mut h = self.shards[task % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        h.saturating_record(ns.max(1));
    }

    /// All shards merged.
    pub fn snapshot(&self) -> Hist {
        let mut all = empty();
        for shard in &self.shards {
            let h = shard.lock().unwrap_or_else(|e| e.into_inner());
            all.add(&*h).expect("same bounds");
        }
        Hist::from(&all)
    }
}

/// A histogram as `(value_ns, count)` pairs: small, JSON-friendly and mergeable.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Hist {
    pub buckets: Vec<(u64, u64)>,
}

impl From<&Histogram<u64>> for Hist {
    fn from(h: &Histogram<u64>) -> Self {
        Self {
            buckets: h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        }
    }
}

impl Hist {
    pub fn to_histogram(&self) -> Histogram<u64> {
        let mut h = empty();
        for &(v, n) in &self.buckets {
            h.saturating_record_n(v, n);
        }
        h
    }

    /// Merges several (e.g. one per load generator process).
    pub fn merge<'a>(all: impl IntoIterator<Item = &'a Hist>) -> Hist {
        let mut h = empty();
        for part in all {
            h.add(part.to_histogram()).expect("same bounds");
        }
        Hist::from(&h)
    }

    pub fn summary(&self) -> Summary {
        Summary::of(&self.to_histogram())
    }
}

/// The figures reported for one latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Self {
            count: h.len(),
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_survive_sharding_and_merging() {
        let a = Recorder::default();
        let b = Recorder::default();
        for i in 1..=1000u64 {
            let r = if i % 2 == 0 { &a } else { &b };
            r.record(i as usize, i * 1000); // 1..1000 µs
        }
        let merged = Hist::merge([&a.snapshot(), &b.snapshot()]);
        let s = merged.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50 - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99 - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max - 1000.0).abs() < 1.0, "{s:?}");
        let json = serde_json::to_string(&merged).unwrap();
        let back: Hist = serde_json::from_str(&json).unwrap();
        assert_eq!(back.summary(), s);
    }

    #[test]
    fn an_empty_histogram_summarises_to_zeros() {
        assert_eq!(Recorder::default().snapshot().summary(), Summary::default());
    }
}
