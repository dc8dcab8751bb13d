//! When the agent reports: at the interval the relay asks for (`audience`: only as fast as
//! someone is watching), never faster than the agent's own `--interval`, which is also the
//! interval used with a relay that never says.
//!
//! A report's CPU figure is the average since the previous report (sysinfo measures between two
//! refreshes, and the sampler refreshes only when it reports), so the agent wakes once per
//! interval and not more. When the interval drops — a viewer opened the detail view of a desktop
//! reporting every minute — the next report is due at once, so the viewer sees a current figure
//! right away rather than at the end of the old, long interval; when it grows, the next report
//! simply moves later. Plain data over instants, driven by the agent's timer.

use std::time::{Duration, Instant};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Cadence {
    /// The agent's own interval: the shortest it reports at, and the one it starts with.
    floor: Duration,
    /// Two samples closer than this measure nothing useful (sysinfo's minimum).
    min_gap: Duration,
    interval: Duration,
    /// When the last sample was taken (the sampler's baseline at first).
    last: Instant,
}

impl Cadence {
    pub fn new(floor: Duration, min_gap: Duration, baseline: Instant) -> Self {
        Self {
            floor,
            min_gap,
            interval: floor,
            last: baseline,
        }
    }

    /// The interval in force.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// A sample was taken at `now`; returns when the next one is due.
    pub fn sampled(&mut self, now: Instant) -> Instant {
        self.last = now;
        now + self.interval
    }

    /// A new connection was welcomed at `now`: back to the agent's own interval until the relay
    /// says otherwise, and a report as soon as one measures something (the figure covers the
    /// time since the last one, disconnected or not). Returns when it is due.
    pub fn welcomed(&mut self, now: Instant) -> Instant {
        self.interval = self.floor;
        self.soonest(now)
    }

    /// The relay asked for reports every `asked`; returns when the next one is due: at once if
    /// the interval dropped, else one (new) interval after the last.
    pub fn asked(&mut self, asked: Duration, now: Instant) -> Instant {
        let interval = asked.max(self.floor);
        let dropped = interval < self.interval;
        self.interval = interval;
        if dropped {
            self.soonest(now)
        } else {
            (self.last + interval).max(now)
        }
    }

    fn soonest(&self, now: Instant) -> Instant {
        now.max(self.last + self.min_gap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const MIN: Duration = Duration::from_millis(200);

    #[test]
    fn follows_the_relay_and_reports_at_once_when_the_interval_drops() {
        let t0 = Instant::now();
        let mut c = Cadence::new(S, MIN, t0);
        assert_eq!(
            c.welcomed(t0),
            t0 + MIN,
            "not before the baseline can measure"
        );
        assert_eq!(c.sampled(t0 + MIN), t0 + MIN + S);
        // Nobody watches: the next report moves a minute after the last.
        assert_eq!(c.asked(60 * S, t0 + MIN), t0 + MIN + 60 * S);
        assert_eq!(c.interval(), 60 * S);
        assert_eq!(c.sampled(t0 + 61 * S), t0 + 121 * S);
        // A viewer opens the detail view 30 s into the minute: report now, then every second.
        assert_eq!(c.asked(S, t0 + 91 * S), t0 + 91 * S);
        assert_eq!(c.sampled(t0 + 91 * S), t0 + 92 * S);
        // The same interval again changes nothing.
        assert_eq!(c.asked(S, t0 + 91 * S + MIN), t0 + 92 * S);
        // Only on a grid: five seconds after the last report, not at once.
        assert_eq!(c.asked(5 * S, t0 + 91 * S + MIN), t0 + 96 * S);
    }

    #[test]
    fn never_faster_than_its_own_interval_and_a_new_connection_starts_from_it() {
        let t0 = Instant::now();
        let mut c = Cadence::new(2 * S, MIN, t0);
        c.sampled(t0);
        assert_eq!(c.asked(S, t0), t0 + 2 * S, "the floor holds");
        assert_eq!(c.interval(), 2 * S);
        c.asked(60 * S, t0);
        // Reconnected long after: report once the figure measures something, at the floor.
        assert_eq!(c.welcomed(t0 + 100 * S), t0 + 100 * S);
        assert_eq!(c.interval(), 2 * S);
        // A drop right after a sample waits out the minimum gap.
        c.asked(60 * S, t0 + 100 * S);
        c.sampled(t0 + 101 * S);
        assert_eq!(c.asked(2 * S, t0 + 101 * S), t0 + 101 * S + MIN);
    }
}
