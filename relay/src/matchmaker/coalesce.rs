//! Coalescing of `presence` per id, so joins and leaves in a loop cannot flood everyone of the id.
//!
//! A change is broadcast at once if nothing was broadcast for the id within the window; otherwise
//! one broadcast is scheduled for the end of the window, and it sends the room's state as it is
//! *then*, so the last frame anyone gets is always the true state. Changes while a broadcast is
//! scheduled ride on it. Plain data, driven by the matchmaker (which owns the timers), so it is
//! tested with made-up instants.

use std::time::{Duration, Instant};

/// At most one `presence` broadcast per id in this long.
pub const PRESENCE_WINDOW: Duration = Duration::from_millis(250);

/// What to do with a change of presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Broadcast now.
    Now,
    /// Broadcast after `after`, when the matchmaker calls [`Coalescer::due`] with `ticket`.
    Later { after: Duration, ticket: u64 },
    /// A broadcast is already scheduled; it will carry this change too.
    Pending,
}

#[derive(Debug)]
pub struct Coalescer {
    window: Duration,
    last_sent: Option<Instant>,
    /// The ticket of the scheduled broadcast, if one is scheduled.
    pending: Option<u64>,
}

impl Coalescer {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            last_sent: None,
            pending: None,
        }
    }

    /// Presence changed at `now`. `ticket` names the broadcast if one has to be scheduled: the
    /// matchmaker hands out tickets that are never reused, so a timer of a room that was dropped
    /// and made anew meanwhile does not count as the new room's.
    pub fn changed(&mut self, now: Instant, ticket: u64) -> Decision {
        if self.pending.is_some() {
            return Decision::Pending;
        }
        match self.last_sent {
            Some(at) if now.saturating_duration_since(at) < self.window => {
                self.pending = Some(ticket);
                Decision::Later {
                    after: (at + self.window).saturating_duration_since(now),
                    ticket,
                }
            }
            _ => {
                self.last_sent = Some(now);
                Decision::Now
            }
        }
    }

    /// The timer of `ticket` fired at `now`: whether to broadcast (it is this room's scheduled
    /// broadcast).
    pub fn due(&mut self, ticket: u64, now: Instant) -> bool {
        if self.pending != Some(ticket) {
            return false;
        }
        self.pending = None;
        self.last_sent = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_lone_change_goes_out_at_once_and_a_quick_second_one_at_the_end_of_the_window() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(PRESENCE_WINDOW);
        assert_eq!(c.changed(t0, 1), Decision::Now);
        assert_eq!(
            c.changed(t0 + 100 * MS, 2),
            Decision::Later {
                after: 150 * MS,
                ticket: 2
            }
        );
        assert_eq!(c.changed(t0 + 200 * MS, 3), Decision::Pending);
        assert!(!c.due(1, t0 + 250 * MS), "not the scheduled ticket");
        assert!(c.due(2, t0 + 250 * MS));
        assert!(!c.due(2, t0 + 260 * MS), "a ticket fires once");
        // Quiet for a window: the next change goes out at once again.
        assert_eq!(c.changed(t0 + 500 * MS, 4), Decision::Now);
    }

    /// Fires the scheduled broadcast if it is due by `until`; returns when it was sent.
    fn fire(
        c: &mut Coalescer,
        timer: &mut Option<(Instant, u64)>,
        until: Instant,
    ) -> Option<Instant> {
        let (at, ticket) = (*timer)?;
        if at > until {
            return None;
        }
        *timer = None;
        c.due(ticket, at).then_some(at)
    }

    /// 40 changes in 2 s (a join and a leave every 100 ms), timers firing on time: few frames,
    /// at least a window apart, and the last change is always followed by a broadcast.
    #[test]
    fn churn_sends_at_most_one_frame_per_window_and_always_ends_with_one() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(PRESENCE_WINDOW);
        let mut timer = None;
        let mut sent = Vec::new();
        let changes: Vec<Instant> = (0..40).map(|i| t0 + 50 * MS * i).collect();
        for (ticket, &now) in (1..).zip(&changes) {
            sent.extend(fire(&mut c, &mut timer, now));
            match c.changed(now, ticket) {
                Decision::Now => sent.push(now),
                Decision::Later { after, ticket } => timer = Some((now + after, ticket)),
                Decision::Pending => {}
            }
        }
        sent.extend(fire(&mut c, &mut timer, t0 + Duration::from_secs(10)));
        let last_change = *changes.last().unwrap();
        let span = last_change - t0;
        assert!(
            sent.len() <= (span.as_millis() / 250) as usize + 2,
            "{sent:?}"
        );
        assert!(sent.len() > 1, "{sent:?}");
        assert!(
            sent.last().is_some_and(|&at| at >= last_change),
            "the last change must be broadcast: {sent:?}"
        );
        for pair in sent.windows(2) {
            assert!(pair[1] - pair[0] >= PRESENCE_WINDOW, "{sent:?}");
        }
    }
}
