//! Limits on sign-in attempts (`POST /api/login`), so passwords cannot be guessed at the speed of
//! the relay's CPU:
//!
//! - **per client address**: a token bucket of [`ADDRESS_BURST`] attempts, refilled one every
//!   [`ADDRESS_REFILL`] (`governor`), counting every attempt, good or bad;
//! - **per user name**: after [`FREE_FAILURES`] failures in a row, each further attempt must wait
//!   a delay that doubles with every failure, from [`FIRST_DELAY`] up to [`MAX_DELAY`]; a
//!   success resets it. Names that do not exist are tracked like names that do, so the limit
//!   does not tell which exist; the cap on [`MAX_DELAY`] bounds how long a stranger can keep a
//!   person out.
//!
//! Refused attempts are answered before any password is checked, so they cost the relay nothing
//! (no argon2). Both maps are bounded: idle entries are pruned, and past [`MAX_TRACKED`] names the
//! oldest is forgotten.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Attempts one address may make at once…
pub const ADDRESS_BURST: u32 = 20;
/// …and then one per this long.
pub const ADDRESS_REFILL: Duration = Duration::from_secs(3);
/// Failures in a row a name may have before it must wait.
pub const FREE_FAILURES: u32 = 5;
/// The wait after [`FREE_FAILURES`] failures; it doubles with each further one…
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// …up to this.
pub const MAX_DELAY: Duration = Duration::from_secs(300);
/// A name's failures are forgotten after this long without one.
pub const FORGET_AFTER: Duration = Duration::from_secs(900);
/// Most names tracked at once.
pub const MAX_TRACKED: usize = 10_000;

/// Why an attempt is refused: which limit, and how long until the next one may be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRefused {
    Address(Duration),
    User(Duration),
}

impl SignInRefused {
    /// How long to wait before trying again.
    pub fn retry_after(self) -> Duration {
        match self {
            SignInRefused::Address(d) | SignInRefused::User(d) => d,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// The sign-in limits of one relay.
pub struct SignInLimiter {
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    per_user: Mutex<HashMap<String, Failures>>,
}

impl Default for SignInLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl SignInLimiter {
    pub fn new() -> Self {
        let burst = NonZeroU32::new(ADDRESS_BURST).expect("a non-zero constant");
        let quota = Quota::with_period(ADDRESS_REFILL)
            .expect("a non-zero constant period")
            .allow_burst(burst);
        Self {
            per_address: RateLimiter::keyed(quota),
            per_user: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an attempt from `ip` for `user` may go ahead; counts it against the address.
    pub fn check(&self, ip: Option<IpAddr>, user: &str) -> Result<(), SignInRefused> {
        let now = Instant::now();
        // The name first: a refused name must not use up the address's attempts too.
        if let Some(wait) = self.user_wait(user, now) {
            return Err(SignInRefused::User(wait));
        }
        if let Some(ip) = ip {
            if let Err(not_until) = self.per_address.check_key(&ip) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err(SignInRefused::Address(wait.max(Duration::from_secs(1))));
            }
        }
        Ok(())
    }

    /// The attempt for `user` had a wrong password (or the name does not exist).
    pub fn failed(&self, user: &str) {
        self.failed_at(user, Instant::now());
    }

    /// The attempt for `user` succeeded: its failures are forgotten.
    pub fn succeeded(&self, user: &str) {
        self.lock().remove(key(user));
    }

    /// Forgets idle entries; called now and then.
    pub fn prune(&self) {
        self.per_address.retain_recent();
        let now = Instant::now();
        self.lock()
            .retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
    }

    fn user_wait(&self, user: &str, now: Instant) -> Option<Duration> {
        let failures = *self.lock().get(key(user))?;
        let until = failures.last + delay(failures.count)?;
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    fn failed_at(&self, user: &str, now: Instant) {
        let mut users = self.lock();
        if users.len() >= MAX_TRACKED && !users.contains_key(key(user)) {
            users.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            if users.len() >= MAX_TRACKED {
                let oldest = users
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    users.remove(&oldest);
                }
            }
        }
        let entry = users.entry(key(user).to_owned()).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(entry.last) >= FORGET_AFTER {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.per_user.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The wait after `count` failures in a row, if any.
fn delay(count: u32) -> Option<Duration> {
    let over = count.checked_sub(FREE_FAILURES)?;
    Some(FIRST_DELAY.saturating_mul(1 << over.min(16)).min(MAX_DELAY))
}

/// The name as tracked: at most 64 bytes (no valid name is longer), cut at a character boundary.
fn key(user: &str) -> &str {
    let mut end = user.len().min(64);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    &user[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_the_free_failures_up_to_the_cap() {
        assert_eq!(delay(4), None);
        assert_eq!(delay(5), Some(Duration::from_secs(1)));
        assert_eq!(delay(6), Some(Duration::from_secs(2)));
        assert_eq!(delay(8), Some(Duration::from_secs(8)));
        assert_eq!(delay(1000), Some(MAX_DELAY));
    }

    #[test]
    fn a_name_waits_after_failures_and_a_success_resets_it() {
        let limiter = SignInLimiter::new();
        let t = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            limiter.failed_at("alice", t);
        }
        assert_eq!(limiter.user_wait("alice", t), None);
        limiter.failed_at("alice", t);
        assert_eq!(limiter.user_wait("alice", t), Some(Duration::from_secs(1)));
        assert_eq!(limiter.user_wait("alice", t + Duration::from_secs(1)), None);
        assert_eq!(
            limiter.user_wait("bob", t),
            None,
            "other names are not affected"
        );
        limiter.failed_at("alice", t);
        assert_eq!(limiter.user_wait("alice", t), Some(Duration::from_secs(2)));
        limiter.succeeded("alice");
        assert_eq!(limiter.user_wait("alice", t), None);
        // Failures long ago do not count.
        for _ in 0..FREE_FAILURES {
            limiter.failed_at("carol", t);
        }
        limiter.failed_at("carol", t + FORGET_AFTER);
        assert_eq!(limiter.user_wait("carol", t + FORGET_AFTER), None);
    }

    #[test]
    fn addresses_have_a_burst_and_names_are_bounded() {
        let limiter = SignInLimiter::new();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..ADDRESS_BURST {
            assert_eq!(limiter.check(Some(ip), &format!("u{i}")), Ok(()));
        }
        let refused = limiter.check(Some(ip), "another").unwrap_err();
        assert!(matches!(refused, SignInRefused::Address(_)));
        assert!(refused.retry_after() >= Duration::from_secs(1));
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(limiter.check(Some(other), "another"), Ok(()));

        let t = Instant::now();
        for i in 0..MAX_TRACKED + 10 {
            limiter.failed_at(&format!("name{i}"), t);
        }
        assert!(limiter.lock().len() <= MAX_TRACKED);
        assert_eq!(key(&"é".repeat(40)).len(), 64);
    }
}
