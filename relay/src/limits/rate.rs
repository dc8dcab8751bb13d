//! Message rate limits: per session (a client flooding the relay) and per desktop (viewers
//! flooding one computer with commands), as token buckets from `governor`.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// A token bucket allowing `per_second` on average and bursts of `burst`.
pub fn bucket(per_second: u32, burst: u32) -> DefaultDirectRateLimiter {
    let rate = NonZeroU32::new(per_second.max(1)).expect("max(1) is non-zero");
    let burst = NonZeroU32::new(burst.max(1)).expect("max(1) is non-zero");
    RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
}

/// A session's inbound message limit, with the strike count that turns sustained abuse into a
/// disconnect.
pub struct SessionRate {
    bucket: DefaultDirectRateLimiter,
    strikes: u32,
    max_strikes: u32,
}

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateVerdict {
    Allow,
    /// Refuse this message with `rate_limited`.
    Refuse,
    /// Refused too many in a row: close the connection.
    Disconnect,
}

impl SessionRate {
    pub fn new(per_second: u32, burst: u32, max_strikes: u32) -> Self {
        Self {
            bucket: bucket(per_second, burst),
            strikes: 0,
            max_strikes,
        }
    }

    pub fn check(&mut self) -> RateVerdict {
        if self.bucket.check().is_ok() {
            self.strikes = 0;
            return RateVerdict::Allow;
        }
        self.strikes += 1;
        if self.strikes >= self.max_strikes {
            RateVerdict::Disconnect
        } else {
            RateVerdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_pass_floods_are_refused_then_disconnected() {
        let mut rate = SessionRate::new(1, 3, 2);
        for _ in 0..3 {
            assert_eq!(rate.check(), RateVerdict::Allow);
        }
        assert_eq!(rate.check(), RateVerdict::Refuse);
        assert_eq!(rate.check(), RateVerdict::Disconnect);
    }
}
