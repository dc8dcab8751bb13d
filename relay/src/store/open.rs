//! The minutes still open: each desktop's samples of the minutes not yet written as one packed
//! row (SQLite) or message (JetStream), kept in memory by the store's writer until the minute
//! closes. Shared with readers through a read-write lock so `/api/history` includes the open
//! minute: readers hold the read lock only to copy one desktop's few entries; the writer takes
//! the write lock only to add a committed batch or drop the minutes it has just written.
//!
//! What is here is also in the crash journal (a journal row or message per batch), so a killed
//! relay rebuilds it on start; the buffer is never the only copy of an acknowledged sample.

use std::collections::{BTreeMap, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::packed::MINUTE_MS;
use super::packed::{self, PackError, Packed};

/// A minute is written this long after it ended (both back ends), so samples a little late
/// still find it open; later ones are merged into the written minute.
pub const GRACE_MS: u64 = 5_000;

/// A minute's running aggregate: min, max and sum of `value`, and of memory in use. Both back ends
/// store it as is (SQLite's `minutes` columns, JetStream's minute records).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Aggregate {
    pub n: u64,
    pub low: f64,
    pub high: f64,
    pub total: f64,
    pub memory_n: u64,
    pub memory_total: f64,
}

impl Aggregate {
    /// Nothing yet.
    pub const EMPTY: Aggregate = Aggregate {
        n: 0,
        low: f64::INFINITY,
        high: f64::NEG_INFINITY,
        total: 0.0,
        memory_n: 0,
        memory_total: 0.0,
    };

    pub fn add(&mut self, s: &Packed) {
        self.n += 1;
        self.low = self.low.min(s.value);
        self.high = self.high.max(s.value);
        self.total += s.value;
        if let Some(m) = s.memory_used {
            self.memory_n += 1;
            self.memory_total += m as f64;
        }
    }

    /// Counts and sums add, extremes compare: merging in any order gives the same minute.
    pub fn merge(&mut self, other: &Aggregate) {
        self.n += other.n;
        self.low = self.low.min(other.low);
        self.high = self.high.max(other.high);
        self.total += other.total;
        self.memory_n += other.memory_n;
        self.memory_total += other.memory_total;
    }

    /// The aggregate of packed samples.
    pub fn of_packed(minute: u64, bytes: &[u8]) -> Result<Self, PackError> {
        let mut agg = Self::EMPTY;
        packed::for_each(minute, bytes, |s| agg.add(&s))?;
        Ok(agg)
    }
}

/// One desktop's samples of one open minute.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub agg: Aggregate,
    /// The samples, packed ([`packed`]).
    pub packed: Vec<u8>,
    /// The first and last journal message holding them (JetStream; 0 with SQLite).
    pub journal: (u64, u64),
}

impl Pending {
    /// Appends samples of this minute, already packed, from journal message `seq`.
    pub fn append(&mut self, minute: u64, bytes: &[u8], seq: u64) -> Result<(), PackError> {
        let agg = Aggregate::of_packed(minute, bytes)?;
        self.agg.merge(&agg);
        self.packed.extend_from_slice(bytes);
        if self.journal.0 == 0 {
            self.journal.0 = seq;
        }
        self.journal.1 = self.journal.1.max(seq);
        Ok(())
    }
}

/// Open minute → desktop id → its samples.
pub type Minutes = BTreeMap<u64, HashMap<String, Pending>>;

/// Adds packed samples of `id` in `minute` (from journal message `seq`).
pub fn add(
    minutes: &mut Minutes,
    id: &str,
    minute: u64,
    bytes: &[u8],
    seq: u64,
) -> Result<(), PackError> {
    let desktops = minutes.entry(minute).or_default();
    match desktops.get_mut(id) {
        Some(pending) => pending.append(minute, bytes, seq),
        None => {
            let mut pending = Pending {
                agg: Aggregate::EMPTY,
                packed: Vec::new(),
                journal: (0, 0),
            };
            pending.append(minute, bytes, seq)?;
            desktops.insert(id.to_owned(), pending);
            Ok(())
        }
    }
}

/// The minutes due to be written at `now`: those that ended `grace_ms` or more ago.
pub fn due(minutes: &Minutes, now: u64, grace_ms: u64) -> Vec<u64> {
    minutes
        .keys()
        .copied()
        .take_while(|m| m + MINUTE_MS + grace_ms <= now)
        .collect()
}

/// The shared buffer.
#[derive(Debug, Default)]
pub struct OpenMinutes {
    minutes: RwLock<Minutes>,
}

impl OpenMinutes {
    /// A poisoned lock (a panic elsewhere while holding it) still holds consistent data: every
    /// change is a single insert or remove.
    pub fn read(&self) -> RwLockReadGuard<'_, Minutes> {
        self.minutes.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Minutes> {
        self.minutes.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Copies the open minutes of `id` that may hold samples in `[from, to)`.
pub fn of(minutes: &Minutes, id: &str, from: u64, to: u64) -> Vec<(u64, Pending)> {
    minutes
        .range(packed::minute_of(from)..to.max(1))
        .filter_map(|(&m, desktops)| desktops.get(id).map(|p| (m, p.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_gather_per_minute_and_desktop_and_close_after_the_grace() {
        let mut minutes = Minutes::new();
        let s = |ts, value| {
            let mut b = Vec::new();
            packed::push(
                &mut b,
                &Packed {
                    ts,
                    value,
                    memory_used: Some(10),
                },
            );
            b
        };
        add(&mut minutes, "a", 0, &s(1000, 10.0), 3).unwrap();
        add(&mut minutes, "a", 0, &s(2000, 30.0), 4).unwrap();
        add(&mut minutes, "b", 0, &s(2000, 99.0), 4).unwrap();
        add(&mut minutes, "a", 60_000, &s(61_000, 5.0), 5).unwrap();
        assert!(add(&mut minutes, "a", 0, &[0x80], 6).is_err());
        let a = of(&minutes, "a", 0, 120_000);
        assert_eq!(a.len(), 2);
        assert_eq!(
            (a[0].1.agg.n, a[0].1.agg.low, a[0].1.agg.high),
            (2, 10.0, 30.0)
        );
        assert_eq!(a[0].1.journal, (3, 4));
        assert_eq!(of(&minutes, "a", 60_500, 61_000).len(), 1);
        assert_eq!(due(&minutes, 64_999, 5000), Vec::<u64>::new());
        assert_eq!(due(&minutes, 65_000, 5000), vec![0]);
        assert_eq!(due(&minutes, u64::MAX / 2, 0), vec![0, 60_000]);
    }
}
