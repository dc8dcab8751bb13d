//! Message rate limits: per session (a client flooding the relay) and per desktop (viewers
//! flooding one computer with commands), as token buckets from `governor`.
//!
//! A session's limit counts every frame it sends (text, binary, ping, pong). Refusals are counted
//! in a sliding window of [`FLOOD_WINDOW`]: a client that keeps sending past its rate for more than
//! a few seconds' worth of refusals within the window is closed, whatever its rate — a steady
//! flood just above the limit included. A refused client is told once per window, not once per
//! frame, so refusing costs the relay no more than accepting would.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// The window in which refusals are counted, and in which a client hears `rate_limited` once.
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);

/// A token bucket allowing `per_second` on average and bursts of `burst`.
pub fn bucket(per_second: u32, burst: u32) -> DefaultDirectRateLimiter {
    RateLimiter::direct(per_second_quota(per_second, burst))
}

fn per_second_quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).expect("max(1) is non-zero");
    let burst = NonZeroU32::new(burst.max(1)).expect("max(1) is non-zero");
    Quota::per_second(rate).allow_burst(burst)
}

/// `count` refusals refilled over [`FLOOD_WINDOW`]: an empty bucket means the client has been
/// refused more than `count` times within about one window.
fn refusal_quota(count: u32) -> Quota {
    let count = NonZeroU32::new(count.max(1)).expect("max(1) is non-zero");
    Quota::with_period(FLOOD_WINDOW / count.get())
        .expect("a 10 s window over at most u32::MAX refusals is a positive period")
        .allow_burst(count)
}

type Bucket<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// A session's inbound frame limit, with the refusal budget that turns sustained abuse into a
/// disconnect. Generic over the clock so tests can drive time.
pub struct SessionRate<C: Clock = DefaultClock> {
    clock: C,
    frames: Bucket<C>,
    refusals: Bucket<C>,
    /// When the client was last told it is being refused.
    last_notice: Option<C::Instant>,
}

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateVerdict {
    Allow,
    /// Drop this frame and tell the client with `rate_limited` (once per window).
    Refuse,
    /// Drop this frame silently: the client was told within this window.
    RefuseQuietly,
    /// Refused too often within the window: close the connection.
    Disconnect,
}

impl SessionRate {
    /// `per_second` and `burst` for frames; `max_refusals` refusals within [`FLOOD_WINDOW`]
    /// before the session is closed.
    pub fn new(per_second: u32, burst: u32, max_refusals: u32) -> Self {
        Self::with_clock(per_second, burst, max_refusals, DefaultClock::default())
    }
}

impl<C: Clock + Clone> SessionRate<C> {
    pub fn with_clock(per_second: u32, burst: u32, max_refusals: u32, clock: C) -> Self {
        Self {
            frames: RateLimiter::direct_with_clock(
                per_second_quota(per_second, burst),
                clock.clone(),
            ),
            refusals: RateLimiter::direct_with_clock(refusal_quota(max_refusals), clock.clone()),
            clock,
            last_notice: None,
        }
    }

    pub fn check(&mut self) -> RateVerdict {
        if self.frames.check().is_ok() {
            return RateVerdict::Allow;
        }
        if self.refusals.check().is_err() {
            return RateVerdict::Disconnect;
        }
        let now = self.clock.now();
        match self.last_notice {
            Some(at) if Duration::from(now.duration_since(at)) < FLOOD_WINDOW => {
                RateVerdict::RefuseQuietly
            }
            _ => {
                self.last_notice = Some(now);
                RateVerdict::Refuse
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    #[test]
    fn bursts_pass_floods_are_refused_once_aloud_then_disconnected() {
        let clock = FakeRelativeClock::default();
        let mut rate = SessionRate::with_clock(1, 3, 3, clock);
        for _ in 0..3 {
            assert_eq!(rate.check(), RateVerdict::Allow);
        }
        assert_eq!(rate.check(), RateVerdict::Refuse);
        assert_eq!(rate.check(), RateVerdict::RefuseQuietly);
        assert_eq!(rate.check(), RateVerdict::RefuseQuietly);
        assert_eq!(rate.check(), RateVerdict::Disconnect);
    }

    /// A client sending 40 frames a second against a limit of 20: one in two gets through, which
    /// used to reset the strike count forever. Now the refusals add up and it is closed.
    #[test]
    fn a_flood_just_above_the_rate_is_closed_although_frames_get_through() {
        let clock = FakeRelativeClock::default();
        let mut rate = SessionRate::with_clock(20, 20, 50, clock.clone());
        let mut allowed_after_burst = 0;
        let mut closed_at = None;
        for i in 0..4000u32 {
            clock.advance(Duration::from_millis(25));
            match rate.check() {
                RateVerdict::Allow if i > 40 => allowed_after_burst += 1,
                RateVerdict::Disconnect => {
                    closed_at = Some(Duration::from_millis(25) * (i + 1));
                    break;
                }
                _ => {}
            }
        }
        let closed_at = closed_at.expect("a flood at twice the rate is closed");
        assert!(allowed_after_burst > 10, "frames did get through meanwhile");
        // 20 refusals a second against a budget of 50 per 10 s refilled at 5 a second.
        assert!(closed_at <= Duration::from_secs(6), "{closed_at:?}");
    }

    #[test]
    fn a_client_within_its_rate_is_never_refused() {
        let clock = FakeRelativeClock::default();
        let mut rate = SessionRate::with_clock(20, 20, 50, clock.clone());
        for _ in 0..2000 {
            clock.advance(Duration::from_millis(50));
            assert_eq!(rate.check(), RateVerdict::Allow);
        }
    }

    #[test]
    fn the_notice_is_repeated_after_a_window() {
        let clock = FakeRelativeClock::default();
        let mut rate = SessionRate::with_clock(1, 1, 1000, clock.clone());
        assert_eq!(rate.check(), RateVerdict::Allow);
        assert_eq!(rate.check(), RateVerdict::Refuse);
        assert_eq!(rate.check(), RateVerdict::RefuseQuietly);
        clock.advance(FLOOD_WINDOW - Duration::from_millis(1));
        assert_eq!(rate.check(), RateVerdict::Allow);
        assert_eq!(rate.check(), RateVerdict::RefuseQuietly);
        clock.advance(Duration::from_millis(2));
        assert_eq!(rate.check(), RateVerdict::Refuse);
    }
}
