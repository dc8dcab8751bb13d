//! When a session is alive, when to ping it, and when to give up on it: the relay's half of the
//! heartbeat contract (docs/protocol.md, Heartbeats).
//!
//! Any frame from the client is a sign of life. The relay pings only a session it has heard
//! nothing from for `probe` — a client that reports or pings on its own (the agent pings every
//! 10 s) never gets one, so one ping and one pong per interval is all a quiet connection costs —
//! and drops a session silent for `timeout`. A desktop nobody watches is given a longer timeout
//! (`--client-timeout-idle`, told to it in `audience.timeout_ms`) and probed only after half of
//! it, so the agent's own pings at a third of it keep it without any from the relay.
//!
//! When the timeout changes (the desktop's audience changed class), the silence counts from the
//! change at the earliest: a desktop that was quiet, as an idle one may be, is not dropped the
//! moment someone starts watching it, and a cut cable is still found within the new timeout.
//!
//! One check per session, due at the next moment something can change (see [`Liveness::check`]),
//! instead of a timer that wakes every session every heartbeat interval. Plain data driven by the
//! session actor, so it is tested with made-up instants.

use std::time::{Duration, Instant};

/// What the session should do at a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Silent for its whole timeout: drop it.
    Drop,
    /// Silent for `probe`: ping it, and check again at the instant given.
    Ping(Instant),
    /// Heard from recently: nothing to send; check again at the instant given.
    Wait(Instant),
}

#[derive(Debug, Clone)]
pub struct Liveness {
    /// Ping a session silent for this long.
    probe: Duration,
    /// Drop a session silent for this long.
    timeout: Duration,
    last_heard: Instant,
    /// When `timeout` took effect.
    since: Instant,
}

impl Liveness {
    /// A session just connected at `now`, pinged after `probe` of silence (the heartbeat
    /// interval) and dropped after `timeout` (the client timeout).
    pub fn new(probe: Duration, timeout: Duration, now: Instant) -> Self {
        Self {
            probe,
            timeout,
            last_heard: now,
            since: now,
        }
    }

    /// A frame arrived.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The session may now be silent for `timeout`, from `now` at the earliest; probed after
    /// `probe`, or after half the timeout if that is later (the client heartbeats at a third of
    /// a stated timeout, so the relay's probe never races its ping).
    pub fn set_timeout(&mut self, probe: Duration, timeout: Duration, now: Instant) {
        self.probe = probe.max(timeout / 2).min(timeout);
        self.timeout = timeout;
        self.since = now;
    }

    /// What to do at `now`, and when to look again.
    pub fn check(&self, now: Instant) -> Verdict {
        let silent_from = self.last_heard.max(self.since);
        let deadline = silent_from + self.timeout;
        if now >= deadline {
            return Verdict::Drop;
        }
        let probe_at = self.last_heard + self.probe;
        if now >= probe_at {
            Verdict::Ping((now + self.probe).min(deadline))
        } else {
            Verdict::Wait(probe_at.min(deadline))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_client_heard_often_is_never_pinged() {
        let t0 = Instant::now();
        let mut l = Liveness::new(10 * S, 30 * S, t0);
        assert_eq!(l.check(t0), Verdict::Wait(t0 + 10 * S));
        // It pings every 9 s on its own: every check finds it recent.
        for n in 1..10u32 {
            l.heard(t0 + 9 * n * S);
            let at = t0 + 9 * n * S + 5 * S;
            assert_eq!(l.check(at), Verdict::Wait(t0 + 9 * n * S + 10 * S));
        }
    }

    #[test]
    fn a_silent_client_is_pinged_each_probe_then_dropped_at_its_timeout() {
        let t0 = Instant::now();
        let l = Liveness::new(10 * S, 30 * S, t0);
        assert_eq!(l.check(t0 + 10 * S), Verdict::Ping(t0 + 20 * S));
        assert_eq!(l.check(t0 + 20 * S), Verdict::Ping(t0 + 30 * S));
        assert_eq!(
            l.check(t0 + 25 * S),
            Verdict::Ping(t0 + 30 * S),
            "never past the deadline"
        );
        assert_eq!(l.check(t0 + 30 * S), Verdict::Drop);
    }

    #[test]
    fn an_idle_desktop_gets_its_longer_timeout_and_a_probe_at_half_of_it() {
        let t0 = Instant::now();
        let mut l = Liveness::new(10 * S, 30 * S, t0);
        l.set_timeout(10 * S, 120 * S, t0);
        assert_eq!(l.timeout(), 120 * S);
        assert_eq!(l.check(t0 + 50 * S), Verdict::Wait(t0 + 60 * S));
        // Its own pings every 40 s (a third) keep it without a ping from the relay.
        l.heard(t0 + 40 * S);
        assert_eq!(l.check(t0 + 60 * S), Verdict::Wait(t0 + 100 * S));
        // Cut off after that: probed at 60 s of silence, dropped at 120 s.
        assert_eq!(l.check(t0 + 100 * S), Verdict::Ping(t0 + 160 * S));
        assert_eq!(l.check(t0 + 159 * S), Verdict::Ping(t0 + 160 * S));
        assert_eq!(l.check(t0 + 160 * S), Verdict::Drop);
    }

    #[test]
    fn a_shorter_timeout_counts_from_the_change_not_from_the_last_frame() {
        let t0 = Instant::now();
        let mut l = Liveness::new(10 * S, 30 * S, t0);
        l.set_timeout(10 * S, 120 * S, t0);
        // Quiet for 100 s, as an idle desktop may be; then someone watches: 30 s from now.
        let watched = t0 + 100 * S;
        l.set_timeout(10 * S, 30 * S, watched);
        assert_eq!(l.check(watched), Verdict::Ping(watched + 15 * S));
        assert_eq!(l.check(watched + 29 * S), Verdict::Ping(watched + 30 * S));
        assert_eq!(l.check(watched + 30 * S), Verdict::Drop);
        // A desktop that answers is kept.
        l.heard(watched + S);
        assert_eq!(l.check(watched + 5 * S), Verdict::Wait(watched + 16 * S));
    }
}
