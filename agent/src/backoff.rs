//! Reconnect delays: exponential growth with "full jitter", reset once a connection proved stable.
//!
//! backon's [`ExponentialBuilder`] computes the capped ceiling (0.5 s, 1 s, 2 s … 60 s). Its own
//! jitter only *adds* up to one ceiling on top, which keeps every agent that lost the same relay at
//! the same moment in step; full jitter (a uniform pick in `0..=ceiling`, as in the AWS
//! architecture blog's analysis) spreads them out, so a restarted relay is not hit by all of its
//! desktops in the same few milliseconds.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Delays for successive failed connection attempts.
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    ceilings: ExponentialBackoff,
    max: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    /// Ceilings start at `min` and double up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self::with_rng(min, max, fastrand::Rng::new())
    }

    /// Same as [`Backoff::new`] with a seeded generator, for reproducible tests.
    pub fn with_rng(min: Duration, max: Duration, rng: fastrand::Rng) -> Self {
        let builder = ExponentialBuilder::default()
            .with_min_delay(min)
            .with_max_delay(max)
            .with_factor(2.0)
            .without_max_times();
        Self {
            ceilings: builder.build(),
            builder,
            max,
            rng,
        }
    }

    /// The ceiling for the next attempt, without jitter.
    fn next_ceiling(&mut self) -> Duration {
        // Built without a limit on attempts, the iterator never ends; `max` is a safe fallback.
        self.ceilings.next().unwrap_or(self.max)
    }

    /// The delay before the next attempt: uniform in `0..=ceiling`.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.next_ceiling();
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.rng.u64(0..=millis))
    }

    /// Starts again from the smallest ceiling, after a connection that lived long enough.
    pub fn reset(&mut self) {
        self.ceilings = self.builder.build();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(60);

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let mut b = Backoff::new(MIN, MAX);
        let ceilings: Vec<u64> = (0..10)
            .map(|_| b.next_ceiling().as_millis() as u64)
            .collect();
        assert_eq!(
            ceilings,
            [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]
        );
    }

    #[test]
    fn delays_are_jittered_within_the_ceiling() {
        let mut b = Backoff::with_rng(MIN, MAX, fastrand::Rng::with_seed(7));
        let mut delays = Vec::new();
        for _ in 0..200 {
            delays.push(b.next_delay());
        }
        assert!(delays.iter().all(|d| *d <= MAX));
        assert!(delays[0] <= MIN);
        // Once at the cap, the picks spread over the whole range rather than clustering.
        let capped = &delays[20..];
        assert!(capped.iter().any(|d| *d < Duration::from_secs(20)));
        assert!(capped.iter().any(|d| *d > Duration::from_secs(40)));
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(MIN, MAX);
        for _ in 0..12 {
            b.next_delay();
        }
        b.reset();
        assert_eq!(b.next_ceiling(), MIN);
        assert!(b.next_delay() <= MIN * 2);
    }

    #[test]
    fn equal_min_and_max_is_a_fixed_ceiling() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
        for _ in 0..5 {
            assert_eq!(b.next_ceiling(), Duration::from_secs(1));
        }
    }
}
