//! One monotonic clock for the whole process.
//!
//! A desktop connection writes "now" into each frame it sends (`lg_t`) and the viewer connection
//! that reads it subtracts that from its own "now". Both run in this process, so they share this
//! clock and the difference is the end-to-end latency with no clock-sync error.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The instant all timestamps of this process count from.
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`].
pub fn now_ns() -> u64 {
    ns_of(Instant::now())
}

/// `at` as nanoseconds since [`epoch`] (0 if before it).
pub fn ns_of(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// The instant `ns` nanoseconds after [`epoch`].
pub fn instant_at(ns: u64) -> Instant {
    epoch() + Duration::from_nanos(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_moves_forward() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        assert_eq!(ns_of(instant_at(12_345)), 12_345);
    }
}
