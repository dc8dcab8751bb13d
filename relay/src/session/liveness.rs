//! When a session is alive, when to ping it, and when to give up on it: the relay's half of the
//! heartbeat contract (docs/protocol.md, Heartbeats).
//!
//! Any frame from the client is a sign of life. The relay pings a session it has heard nothing
//! from for `probe`, and drops one silent for `timeout`. A desktop nobody watches is given a
//! longer timeout (`--client-timeout-idle`, told to it in `audience.timeout_ms`) and probed only
//! after half of it.
//!
//! A desktop must hear from the relay too, or its agent cannot tell a dead relay from a quiet
//! one. Rather than every agent pinging on its own clock — a wake-up of the relay at a random
//! moment for each ping, the largest part of a quiet fleet's cost — the relay pings a desktop it
//! has told nothing for a third of its timeout ([`Liveness::keep_informed`]), and the agent pings
//! only when it has heard nothing for two thirds of it. A desktop that pings anyway (an older agent)
//! is answered with pongs, which count as telling it something.
//!
//! When the timeout changes (the desktop's audience changed class), the silence counts from the
//! change at the earliest: a desktop that was quiet, as an idle one may be, is not dropped the
//! moment someone starts watching it, and a cut cable is still found within the new timeout.
//!
//! One check per session, due at the next moment something can change (see [`Liveness::check`]).
//! Checks fall on a shared grid of instants ([`Liveness::grain`], at most 1 s apart, counted from
//! one origin for the whole process), so the sessions due in the same grain are checked — and
//! pinged — in one wake-up of their worker, and their pongs come back together, instead of each
//! session waking the relay at its own moment. A check is at most one grain late. Plain data
//! driven by the session actor, so it is tested with made-up instants.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The origin of every session's grid of check instants in this process.
pub fn grid_origin() -> Instant {
    static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);
    *ORIGIN
}

/// What the session should do at a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Silent for its whole timeout: drop it.
    Drop,
    /// Silent for `probe`: ping it, and check again at the instant given.
    Ping(Instant),
    /// A desktop heard from but told nothing for a third of its timeout: send it an unsolicited
    /// pong (RFC 6455 §5.5.3: a one-way heartbeat, which needs no answer, so it costs the relay
    /// a write and no read), and check again at the instant given.
    Tell(Instant),
    /// Heard from recently: nothing to send; check again at the instant given.
    Wait(Instant),
}

/// The grid's coarsest step: a check may come this much after its moment.
const MAX_GRAIN: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Liveness {
    /// Ping a session silent for this long.
    probe: Duration,
    /// Ping a desktop told nothing for this long: a third of its timeout, so a frame crosses the
    /// link each way at least that often (a proxy's read timeout, nginx's 60 s, never fires).
    inform_every: Duration,
    /// Drop a session silent for this long.
    timeout: Duration,
    last_heard: Instant,
    /// When `timeout` took effect.
    since: Instant,
    /// Desktops only: when the relay last sent it a ping or a pong, or `None` for a client
    /// that needs to hear nothing from the relay (browsers keep no heartbeat of their own).
    last_told: Option<Instant>,
    /// Where the grid of check instants starts: the same for every session of the process.
    origin: Instant,
    /// Whether `timeout` was stated to the client (a desktop's `audience.timeout_ms`).
    stated: bool,
}

impl Liveness {
    /// A session just connected at `now`, pinged after `probe` of silence (the heartbeat
    /// interval) and dropped after `timeout` (the client timeout); its checks fall on the grid
    /// that starts at `origin`.
    pub fn new(probe: Duration, timeout: Duration, now: Instant, origin: Instant) -> Self {
        Self {
            probe,
            inform_every: probe,
            timeout,
            last_heard: now,
            since: now,
            last_told: None,
            origin,
            stated: false,
        }
    }

    /// A frame arrived.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// The client is a desktop: from `now` on, it is pinged whenever the relay has told it
    /// nothing for a third of its timeout, so its agent hears the relay without pinging on its
    /// own.
    pub fn keep_informed(&mut self, now: Instant) {
        self.last_told = Some(now);
    }

    /// The relay sent the client a ping or a pong.
    pub fn told(&mut self, now: Instant) {
        if let Some(told) = &mut self.last_told {
            *told = now;
        }
    }

    /// How far apart the grid's instants are: a sixteenth of the timeout, at most 1 s, so a
    /// check is never late by more than a small part of what it measures.
    pub fn grain(&self) -> Duration {
        (self.timeout / 16).clamp(Duration::from_millis(1), MAX_GRAIN)
    }

    /// The first instant of the grid at or after `at`.
    fn on_grid(&self, at: Instant) -> Instant {
        let grain = self.grain().as_nanos();
        let offset = at.saturating_duration_since(self.origin).as_nanos();
        let steps = offset.div_ceil(grain);
        let aligned = u64::try_from(steps * grain).unwrap_or(u64::MAX);
        self.origin + Duration::from_nanos(aligned)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The timeout last stated to the client with [`Liveness::set_timeout`], if any.
    pub fn stated(&self) -> Option<Duration> {
        self.stated.then_some(self.timeout)
    }

    /// The session was told it may now be silent for `timeout`, from `now` at the earliest;
    /// probed after `probe`, or after half the timeout if that is later (the agent pings only
    /// after two thirds of a stated timeout without a word, so the relay's ping comes first).
    pub fn set_timeout(&mut self, probe: Duration, timeout: Duration, now: Instant) {
        self.probe = probe.max(timeout / 2).min(timeout);
        self.inform_every = probe.max(timeout / 3).min(timeout);
        self.timeout = timeout;
        self.since = now;
        self.stated = true;
    }

    /// What to do at `now`, and when to look again (an instant of the grid). After a
    /// [`Verdict::Ping`] or a [`Verdict::Tell`], the caller records it with [`Liveness::told`].
    pub fn check(&self, now: Instant) -> Verdict {
        let silent_from = self.last_heard.max(self.since);
        let deadline = silent_from + self.timeout;
        if now >= deadline {
            return Verdict::Drop;
        }
        let probe_at = self.last_heard + self.probe;
        let inform_at = self.last_told.map(|told| told + self.inform_every);
        // Checked again when the next of the two can come due, given that whatever is sent now
        // tells the client something.
        let after_sending = |probe_at: Instant| {
            let next = inform_at.map_or(probe_at, |_| probe_at.min(now + self.inform_every));
            self.on_grid(next.min(deadline))
        };
        if now >= probe_at {
            // A ping both tells a desktop something and asks for an answer.
            return Verdict::Ping(after_sending(now + self.probe));
        }
        if inform_at.is_some_and(|at| now >= at) {
            return Verdict::Tell(after_sending(probe_at));
        }
        let next = inform_at.map_or(probe_at, |inform| inform.min(probe_at));
        Verdict::Wait(self.on_grid(next.min(deadline)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_client_heard_often_is_never_pinged() {
        let t0 = Instant::now();
        let mut l = Liveness::new(10 * S, 30 * S, t0, t0);
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
        let l = Liveness::new(10 * S, 30 * S, t0, t0);
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
        let mut l = Liveness::new(10 * S, 30 * S, t0, t0);
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
        let mut l = Liveness::new(10 * S, 30 * S, t0, t0);
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

    #[test]
    fn a_desktop_that_only_reports_is_told_each_third_of_its_timeout_and_probed_once_silent() {
        let t0 = Instant::now();
        let mut l = Liveness::new(10 * S, 30 * S, t0, t0);
        l.set_timeout(10 * S, 120 * S, t0);
        l.keep_informed(t0);
        l.heard(t0 + 30 * S); // a report
        assert_eq!(l.check(t0 + 30 * S), Verdict::Wait(t0 + 40 * S));
        // Told nothing for 40 s, though heard from: an unsolicited pong, no answer expected.
        assert_eq!(l.check(t0 + 40 * S), Verdict::Tell(t0 + 80 * S));
        l.told(t0 + 40 * S);
        l.heard(t0 + 70 * S); // the next report
        assert_eq!(l.check(t0 + 80 * S), Verdict::Tell(t0 + 120 * S));
        l.told(t0 + 80 * S);
        // Its reports stop: probed with a ping after 60 s of silence, dropped after 120 s.
        assert_eq!(l.check(t0 + 120 * S), Verdict::Tell(t0 + 130 * S));
        l.told(t0 + 120 * S);
        assert_eq!(l.check(t0 + 130 * S), Verdict::Ping(t0 + 170 * S));
        l.told(t0 + 130 * S);
        assert_eq!(l.check(t0 + 170 * S), Verdict::Ping(t0 + 190 * S));
        assert_eq!(l.check(t0 + 190 * S), Verdict::Drop);
    }

    #[test]
    fn a_desktop_that_pings_on_its_own_is_told_enough_by_the_pongs() {
        let t0 = Instant::now();
        let mut l = Liveness::new(10 * S, 30 * S, t0, t0);
        l.set_timeout(10 * S, 120 * S, t0);
        l.keep_informed(t0);
        for n in 1..5u32 {
            let ping = t0 + 30 * n * S;
            l.heard(ping);
            l.told(ping); // the pong
            assert_eq!(l.check(ping + S), Verdict::Wait(ping + 40 * S));
        }
    }

    #[test]
    fn a_viewer_is_told_nothing_it_did_not_ask_for() {
        let t0 = Instant::now();
        let mut l = Liveness::new(10 * S, 30 * S, t0, t0);
        l.told(t0); // a pong to its ping: no schedule of its own follows
        l.heard(t0 + 5 * S);
        assert_eq!(l.check(t0 + 12 * S), Verdict::Wait(t0 + 15 * S));
    }

    #[test]
    fn checks_fall_on_a_shared_grid_so_sessions_due_together_wake_the_relay_once() {
        let origin = Instant::now();
        let ms = Duration::from_millis;
        // Two sessions that connected 300 ms apart, both at the idle timeout (grain 1 s).
        let mut a = Liveness::new(10 * S, 30 * S, origin + ms(100), origin);
        let mut b = Liveness::new(10 * S, 30 * S, origin + ms(400), origin);
        for l in [&mut a, &mut b] {
            l.set_timeout(10 * S, 120 * S, origin);
            assert_eq!(l.grain(), S);
        }
        let next = |l: &Liveness| match l.check(origin + ms(500)) {
            Verdict::Wait(at) | Verdict::Ping(at) | Verdict::Tell(at) => at,
            Verdict::Drop => panic!("not silent that long"),
        };
        assert_eq!(next(&a), origin + 61 * S, "60.1 s rounded up");
        assert_eq!(next(&a), next(&b), "60.4 s: the same grain");
        // A short timeout keeps a fine grid: never late by more than a sixteenth of it.
        let c = Liveness::new(ms(300), ms(1000), origin + ms(7), origin);
        assert_eq!(c.grain(), ms(62) + Duration::from_micros(500));
        // Probed at 307 ms: the grid's next instant is 5 × 62.5 ms.
        assert_eq!(
            c.check(origin + ms(7)),
            Verdict::Wait(origin + Duration::from_micros(312_500))
        );
    }
}
