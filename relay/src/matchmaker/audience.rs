//! A desktop's audience, and so how often it should report: the contract is that a desktop
//! reports only as fast as someone is watching it.
//!
//! The audience is counted over every node of a cluster: `detail`, the viewers with this
//! desktop's detail view open (web sessions of the id), and `overview`, the sessions that see it
//! only on a fleet grid. Its class picks the interval the relay asks for (`--report-interval-*`):
//! the detail interval (1 s) while anyone has the detail view open, the overview interval (5 s)
//! while it is only on grids, the idle interval (60 s) while nobody watches.
//!
//! [`AudienceState`] is one room's part: what its desktop was last told, and whether the current
//! audience differs. A desktop that joins (or replaces another) is told at once — its greeting,
//! not churn; later changes go through a [`Coalescer`] like `presence`, so viewers joining and
//! leaving in a loop cannot make the relay write to the desktop more than once per window.
//! Plain data driven by the matchmaker (which owns the timers and the outboxes), so it is tested
//! with made-up instants. A desktop that ignores the frame (the 2018 prototype's) keeps sending
//! every second; nothing here depends on it listening.

use std::time::{Duration, Instant};

use bytestring::ByteString;
use deskbridge_protocol::{Audience, ServerMessage};

use super::coalesce::{Coalescer, Decision, PRESENCE_WINDOW};
use crate::config::Config;
use crate::metrics::IntervalClass;
use crate::outbox::SessionId;

/// The reporting interval asked for in each class, and how long a desktop may stay silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportIntervals {
    pub detail: Duration,
    pub overview: Duration,
    pub idle: Duration,
    /// The timeout of a watched desktop (`--client-timeout`)…
    pub timeout: Duration,
    /// …and of one nobody watches (`--client-timeout-idle`): who is not looked at can go
    /// longer between heartbeats, at the price of a later `lost`.
    pub idle_timeout: Duration,
}

impl ReportIntervals {
    pub fn from_config(config: &Config) -> Self {
        Self {
            detail: config.report_interval_detail,
            overview: config.report_interval_overview,
            idle: config.report_interval_idle,
            timeout: config.client_timeout,
            idle_timeout: config.client_timeout_idle.max(config.client_timeout),
        }
    }

    /// How long a desktop of `class` may be silent before it is dropped.
    pub fn timeout_of(&self, class: IntervalClass) -> Duration {
        match class {
            IntervalClass::Idle => self.idle_timeout,
            IntervalClass::Detail | IntervalClass::Overview => self.timeout,
        }
    }

    pub fn of(&self, class: IntervalClass) -> Duration {
        match class {
            IntervalClass::Detail => self.detail,
            IntervalClass::Overview => self.overview,
            IntervalClass::Idle => self.idle,
        }
    }
}

impl Default for ReportIntervals {
    /// The production defaults, the same as `Config::default()`'s.
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

/// Who watches one desktop, over every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Viewers with the detail view open.
    pub detail: u32,
    /// Sessions seeing it only on a fleet grid.
    pub overview: u32,
}

impl Counts {
    /// Detail beats overview beats nobody.
    pub fn class(self) -> IntervalClass {
        if self.detail > 0 {
            IntervalClass::Detail
        } else if self.overview > 0 {
            IntervalClass::Overview
        } else {
            IntervalClass::Idle
        }
    }
}

/// What the matchmaker must do after the audience of a room settled.
#[derive(Debug, Default)]
pub struct Step {
    /// An `audience` frame to queue to the room's desktop now.
    pub send: Option<ByteString>,
    /// The interval class a desktop of this room leaves (for the `/metrics` gauge)…
    pub left: Option<IntervalClass>,
    /// …and the one it enters.
    pub entered: Option<IntervalClass>,
    /// Check again after this long, with this ticket ([`AudienceState::due`]).
    pub schedule: Option<(Duration, u64)>,
}

/// What the desktop of one room was last told.
#[derive(Debug, Clone, Copy)]
struct Told {
    session: SessionId,
    counts: Counts,
}

/// One room's audience bookkeeping. See the module docs.
#[derive(Debug)]
pub struct AudienceState {
    intervals: ReportIntervals,
    told: Option<Told>,
    timer: Coalescer,
}

impl Default for AudienceState {
    fn default() -> Self {
        Self::new(ReportIntervals::default())
    }
}

impl AudienceState {
    pub fn new(intervals: ReportIntervals) -> Self {
        Self {
            intervals,
            told: None,
            timer: Coalescer::new(PRESENCE_WINDOW),
        }
    }

    /// The interval asked of a desktop with this audience.
    pub fn interval(&self, counts: Counts) -> Duration {
        self.intervals.of(counts.class())
    }

    /// How long a desktop with this audience may be silent (`audience.timeout_ms`).
    pub fn timeout(&self, counts: Counts) -> Duration {
        self.intervals.timeout_of(counts.class())
    }

    /// The room's audience may have changed (a join, a leave, another node's announcement, an
    /// expiry): `desktop` is the session of the desktop on this node, if any. `ticket` names the
    /// re-check if one has to be scheduled (never reused, as for presence).
    pub fn settle(
        &mut self,
        desktop: Option<SessionId>,
        counts: Counts,
        now: Instant,
        ticket: u64,
    ) -> Step {
        self.apply(desktop, counts, Some((now, ticket)))
    }

    /// The re-check of `ticket` is due at `now`: tells the desktop the audience as it is now, if
    /// it differs from what it was told.
    pub fn due(
        &mut self,
        ticket: u64,
        now: Instant,
        desktop: Option<SessionId>,
        counts: Counts,
    ) -> Step {
        if !self.timer.due(ticket, now) {
            return Step::default();
        }
        self.apply(desktop, counts, None)
    }

    /// `coalesce`: `Some((now, ticket))` to hold back a change that comes too soon after the
    /// last; `None` to send it now.
    fn apply(
        &mut self,
        desktop: Option<SessionId>,
        counts: Counts,
        coalesce: Option<(Instant, u64)>,
    ) -> Step {
        let told = self.told;
        let left = told.map(|t| t.counts.class());
        match (told, desktop) {
            (None, None) => Step::default(),
            (Some(_), None) => {
                // The desktop went; a new one will be told on its join.
                self.told = None;
                Step {
                    left,
                    ..Step::default()
                }
            }
            (Some(t), Some(session)) if t.session == session => {
                if t.counts == counts {
                    return Step::default();
                }
                if let Some((now, ticket)) = coalesce {
                    match self.timer.changed(now, ticket) {
                        Decision::Now => {}
                        Decision::Later { after, ticket } => {
                            return Step {
                                schedule: Some((after, ticket)),
                                ..Step::default()
                            }
                        }
                        Decision::Pending => return Step::default(),
                    }
                }
                self.tell(session, counts, left)
            }
            // A desktop that just joined (or took over from another): its greeting, at once.
            (_, Some(session)) => self.tell(session, counts, left),
        }
    }

    fn tell(&mut self, session: SessionId, counts: Counts, left: Option<IntervalClass>) -> Step {
        self.told = Some(Told { session, counts });
        Step {
            send: Some(self.frame(counts)),
            left,
            entered: Some(counts.class()),
            schedule: None,
        }
    }

    /// The `audience` frame for `counts`.
    pub fn frame(&self, counts: Counts) -> ByteString {
        ServerMessage::Audience(Audience {
            detail: counts.detail,
            overview: counts.overview,
            interval_ms: millis(self.interval(counts)),
            timeout_ms: Some(millis(self.timeout(counts))),
        })
        .to_json()
        .into()
    }
}

/// A duration in whole milliseconds, as the protocol carries intervals.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn counts(detail: u32, overview: u32) -> Counts {
        Counts { detail, overview }
    }

    fn told(step: &Step) -> serde_json::Value {
        serde_json::from_str(step.send.as_ref().expect("a frame")).expect("JSON")
    }

    #[test]
    fn the_class_picks_the_interval_detail_over_overview_over_nobody() {
        let state = AudienceState::default();
        assert_eq!(state.interval(counts(0, 0)), Duration::from_secs(60));
        assert_eq!(state.interval(counts(0, 3)), Duration::from_secs(5));
        assert_eq!(state.interval(counts(1, 3)), Duration::from_secs(1));
        assert_eq!(state.interval(counts(2, 0)), Duration::from_secs(1));
        let custom = AudienceState::new(ReportIntervals {
            detail: 500 * MS,
            overview: Duration::from_secs(2),
            idle: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
        });
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&custom.frame(counts(0, 0))).unwrap(),
            serde_json::json!({"event":"audience","detail":0,"overview":0,"interval_ms":10000,"timeout_ms":120000})
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&custom.frame(counts(0, 1))).unwrap()
                ["timeout_ms"],
            30_000,
            "a desktop on a grid is held to the watched timeout"
        );
    }

    #[test]
    fn a_joining_desktop_is_told_at_once_and_then_every_change() {
        let t0 = Instant::now();
        let mut state = AudienceState::default();
        assert!(
            state.settle(None, counts(2, 0), t0, 1).send.is_none(),
            "no desktop"
        );

        let join = state.settle(Some(7), counts(0, 0), t0, 2);
        assert_eq!(
            told(&join),
            serde_json::json!({"event":"audience","detail":0,"overview":0,"interval_ms":60000,"timeout_ms":120000})
        );
        assert_eq!((join.left, join.entered), (None, Some(IntervalClass::Idle)));
        assert!(
            state.settle(Some(7), counts(0, 0), t0, 3).send.is_none(),
            "no change"
        );

        // A viewer opens the detail view, long after the greeting: told at once.
        let opened = state.settle(Some(7), counts(1, 0), t0 + 10 * PRESENCE_WINDOW, 4);
        assert_eq!(told(&opened)["interval_ms"], 1000);
        assert_eq!(
            (opened.left, opened.entered),
            (Some(IntervalClass::Idle), Some(IntervalClass::Detail))
        );
        // A second viewer is a change too (the count is part of the frame), but it comes within
        // the window: a re-check is scheduled, which then sends the state as it is by then.
        let second = state.settle(Some(7), counts(2, 0), t0 + 10 * PRESENCE_WINDOW + MS, 5);
        let (after, ticket) = second.schedule.expect("scheduled");
        assert!(second.send.is_none() && after <= PRESENCE_WINDOW);
        let later = state.settle(Some(7), counts(1, 0), t0 + 10 * PRESENCE_WINDOW + 2 * MS, 6);
        assert!(
            later.send.is_none() && later.schedule.is_none(),
            "rides on it"
        );
        // One of the two left again before it fired: the desktop was told detail 1 already.
        let due = state.due(ticket, t0 + 11 * PRESENCE_WINDOW, Some(7), counts(1, 0));
        assert!(due.send.is_none(), "nothing new to tell");
        let due = state.due(ticket, t0 + 11 * PRESENCE_WINDOW, Some(7), counts(0, 0));
        assert!(due.send.is_none(), "a ticket fires once");
    }

    #[test]
    fn two_viewers_one_leaves_still_detail_and_the_last_leaving_makes_it_idle() {
        let t0 = Instant::now();
        let mut state = AudienceState::default();
        state.settle(Some(1), counts(0, 0), t0, 1);
        let gap = 2 * PRESENCE_WINDOW;
        assert_eq!(
            told(&state.settle(Some(1), counts(2, 0), t0 + gap, 2))["detail"],
            2
        );
        let one_left = state.settle(Some(1), counts(1, 0), t0 + 2 * gap, 3);
        assert_eq!(told(&one_left)["interval_ms"], 1000);
        assert_eq!(one_left.entered, Some(IntervalClass::Detail));
        let none = state.settle(Some(1), counts(0, 0), t0 + 3 * gap, 4);
        assert_eq!(told(&none)["interval_ms"], 60000);
    }

    #[test]
    fn grid_watchers_alone_ask_for_the_overview_interval() {
        let t0 = Instant::now();
        let mut state = AudienceState::default();
        let step = state.settle(Some(1), counts(0, 4), t0, 1);
        assert_eq!(
            told(&step),
            serde_json::json!({"event":"audience","detail":0,"overview":4,"interval_ms":5000,"timeout_ms":30000})
        );
        assert_eq!(step.entered, Some(IntervalClass::Overview));
    }

    #[test]
    fn a_replacing_desktop_is_greeted_and_a_departed_one_leaves_its_class() {
        let t0 = Instant::now();
        let mut state = AudienceState::default();
        state.settle(Some(1), counts(1, 0), t0, 1);
        // A new desktop session right after: its greeting is not held back by the window.
        let replaced = state.settle(Some(2), counts(1, 0), t0 + MS, 2);
        assert_eq!(told(&replaced)["detail"], 1);
        assert_eq!(
            (replaced.left, replaced.entered),
            (Some(IntervalClass::Detail), Some(IntervalClass::Detail))
        );
        let gone = state.settle(None, counts(1, 0), t0 + 2 * MS, 3);
        assert!(gone.send.is_none());
        assert_eq!(
            (gone.left, gone.entered),
            (Some(IntervalClass::Detail), None)
        );
        let again = state.settle(None, counts(0, 0), t0 + 3 * MS, 4);
        assert_eq!((again.left, again.entered), (None, None), "counted once");
    }
}
