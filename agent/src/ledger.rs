//! What the agent ran and what it still owes the relay, so each command runs at most once on this
//! desktop and each answer reaches the relay even when a connection drops.
//!
//! A command with an id is remembered for 15 minutes: asked again (a relay that restarted, a
//! viewer retrying through another node), it is answered with the earlier result, or — still
//! running — answered once it ends, and not run again. An answer that cannot be sent (no
//! connection) is kept and sent after the next `welcome`; so is one sent on a connection that
//! ended within [`RESEND_WINDOW`] afterwards, since the relay may never have read it. The relay
//! passes an answer on only once, so sending one twice is harmless.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a command id is remembered.
pub const REMEMBER: Duration = Duration::from_secs(15 * 60);
/// How long before a connection ended an answer sent on it may still have been lost.
pub const RESEND_WINDOW: Duration = Duration::from_secs(2);
/// Most ids remembered: far more than the relay's command budget lets through in 15 minutes.
const MAX_REMEMBERED: usize = 4096;
/// Most answers kept for the next connection; beyond, the oldest are given up (and logged).
const MAX_OWED: usize = 64;

/// What to do with a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// New: run it.
    Run,
    /// Running now: its answer follows when it ends.
    Running,
    /// Ran already: send this answer again.
    Answered(String),
}

struct Ran {
    at: Instant,
    answer: Option<String>,
}

struct Sent {
    generation: u64,
    at: Instant,
    frame: String,
}

#[derive(Default)]
pub struct Ledger {
    ran: HashMap<String, Ran>,
    owed: VecDeque<String>,
    sent: VecDeque<Sent>,
}

impl Ledger {
    /// A command arrived. Commands without an id cannot be recognised again: always run.
    pub fn begin(&mut self, id: Option<&str>, now: Instant) -> Begin {
        let Some(id) = id else {
            return Begin::Run;
        };
        self.forget_before(now);
        if let Some(ran) = self.ran.get(id) {
            return match &ran.answer {
                Some(answer) => Begin::Answered(answer.clone()),
                None => Begin::Running,
            };
        }
        if self.ran.len() >= MAX_REMEMBERED {
            // Bounded under a flood: the oldest id goes first.
            if let Some(oldest) = self
                .ran
                .iter()
                .min_by_key(|(_, r)| r.at)
                .map(|(id, _)| id.clone())
            {
                self.ran.remove(&oldest);
            }
        }
        self.ran.insert(
            id.to_owned(),
            Ran {
                at: now,
                answer: None,
            },
        );
        Begin::Run
    }

    /// A command ended with `answer` (the frame for the relay).
    pub fn finish(&mut self, id: Option<&str>, answer: &str) {
        if let Some(ran) = id.and_then(|id| self.ran.get_mut(id)) {
            ran.answer = Some(answer.to_owned());
        }
    }

    /// `frame` went out on connection `generation`.
    pub fn sent(&mut self, generation: u64, frame: String, now: Instant) {
        self.sent
            .retain(|s| now.duration_since(s.at) <= RESEND_WINDOW);
        self.sent.push_back(Sent {
            generation,
            at: now,
            frame,
        });
    }

    /// `frame` could not be sent: it goes out after the next `welcome`.
    pub fn owe(&mut self, frame: String) {
        if self.owed.len() >= MAX_OWED {
            if let Some(dropped) = self.owed.pop_front() {
                log::warn!("too many answers waiting for the relay; giving up on {dropped}");
            }
        }
        self.owed.push_back(frame);
    }

    /// Connection `generation` ended at `now`: what it carried in its last moments is owed again.
    pub fn ended(&mut self, generation: u64, now: Instant) {
        let (recent, rest): (Vec<Sent>, Vec<Sent>) = self
            .sent
            .drain(..)
            .partition(|s| s.generation == generation && now.duration_since(s.at) <= RESEND_WINDOW);
        self.sent = rest.into();
        for sent in recent {
            self.owe(sent.frame);
        }
    }

    /// The answers to send now that a connection is up, oldest first.
    pub fn take_owed(&mut self) -> Vec<String> {
        self.owed.drain(..).collect()
    }

    fn forget_before(&mut self, now: Instant) {
        self.ran.retain(|_, r| now.duration_since(r.at) < REMEMBER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_runs_once_and_a_repeat_gets_the_earlier_answer() {
        let mut ledger = Ledger::default();
        let now = Instant::now();
        assert_eq!(ledger.begin(Some("a"), now), Begin::Run);
        assert_eq!(ledger.begin(Some("a"), now), Begin::Running);
        ledger.finish(Some("a"), "answer-a");
        assert_eq!(
            ledger.begin(Some("a"), now + Duration::from_secs(60)),
            Begin::Answered("answer-a".into())
        );
        assert_eq!(ledger.begin(None, now), Begin::Run);
        assert_eq!(ledger.begin(None, now), Begin::Run, "no id, no memory");
        assert_eq!(
            ledger.begin(Some("a"), now + REMEMBER + Duration::from_secs(1)),
            Begin::Run,
            "forgotten after 15 minutes"
        );
    }

    #[test]
    fn answers_without_a_connection_or_just_before_it_ended_are_owed() {
        let mut ledger = Ledger::default();
        let now = Instant::now();
        ledger.owe("offline".into());
        ledger.sent(1, "old".into(), now);
        ledger.sent(1, "last".into(), now + Duration::from_secs(5));
        ledger.sent(2, "other".into(), now + Duration::from_secs(5));
        ledger.ended(1, now + Duration::from_secs(6));
        assert_eq!(ledger.take_owed(), ["offline", "last"]);
        assert!(ledger.take_owed().is_empty());
        ledger.ended(2, now + Duration::from_secs(60));
        assert!(ledger.take_owed().is_empty(), "long enough ago: it arrived");
    }
}
