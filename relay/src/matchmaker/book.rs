//! One desktop's command book: every command sent to it in the last ten minutes, where each is
//! in its life, and which of them wait for the desktop to come back.
//!
//! Plain Rust, owned by the desktop's [`super::room::Room`] (so by the matchmaker actor, the one
//! writer), unit-tested without actix. The book decides the rules — who may use an id, how many
//! may wait, which answer ends which command, when a command has waited too long — and hands
//! back the [`CommandEvent`]s to publish; sending them is the matchmaker's part.
//!
//! In cluster mode a command is *owned* by the node its sender is connected to: that node
//! delivers it, ends it and audits it. Other nodes keep a *mirror* of it from the owner's
//! `command` events, so their viewers see it too (and its id stays taken).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use deskbridge_protocol::{
    BeepResult, ClientId, CommandEvent, CommandState, ErrorCode, EventKind, Rejection,
    ServerMessage,
};

/// How long a command stays in the book, and so how far back a joining viewer sees: ten
/// minutes. Also how long a delivered command may go unanswered before it is `expired`.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// Most commands that may wait for one offline desktop.
pub const MAX_WAITING: usize = 16;
/// Most commands the book holds (owned and mirrored); the oldest finished ones make room. The
/// per-desktop command budget (a few per second) keeps a real book far below this.
pub const MAX_ENTRIES: usize = 256;

/// A command waiting for its desktop: the frame to deliver, and until when it may wait.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub frame: ByteString,
    pub until: Instant,
}

/// One command in the book.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub kind: EventKind,
    pub by: String,
    pub state: CommandState,
    /// When it reached `state`, Unix ms.
    pub at: u64,
    pub error: Option<String>,
    /// When it entered the book, to drop it after [`WINDOW`].
    pub since: Instant,
    /// The sender gave no id (a v1 client): the relay named it, and the desktop's answer will
    /// carry no id either, so it is matched to the oldest such command of its kind.
    pub relay_named: bool,
    /// Sent by a viewer of this node: this node delivers, ends and audits it.
    pub owned: bool,
    /// Owned, accepted, not delivered yet: waiting for the desktop (or a delivery in flight
    /// when `None` while still `requested`).
    pub waiting: Option<Waiting>,
    /// The sender's address (owned commands), for the audit log.
    pub from: Option<IpAddr>,
}

impl Entry {
    /// The `command` event telling where this command is now.
    pub fn event(&self, client_id: &ClientId) -> CommandEvent {
        CommandEvent {
            client_id: client_id.clone(),
            id: self.id.clone(),
            name: self.kind.name().to_owned(),
            by: self.by.clone(),
            state: self.state,
            at: self.at,
            error: self.error.clone(),
        }
    }

    pub fn frame(&self, client_id: &ClientId) -> ByteString {
        ServerMessage::Command(self.event(client_id))
            .to_json()
            .into()
    }
}

/// What [`CommandBook::admit`] made of a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// A new command, now `requested`: its id.
    New(String),
    /// The same sender sent an id already in the book: nothing is delivered again (the relay
    /// never delivers a command twice on its own); the sender is told where it is.
    Repeat(String),
}

#[derive(Debug, Default)]
pub struct CommandBook {
    entries: VecDeque<Entry>,
    /// Names commands sent without an id.
    named: u64,
}

/// A command as a viewer's session hands it over.
pub struct Request<'a> {
    pub kind: EventKind,
    pub id: Option<&'a str>,
    pub by: &'a str,
    /// It may wait for the desktop; `None` means now or never.
    pub wait: Option<Duration>,
    /// Whether the desktop is known to be connected (here or on another node).
    pub online: bool,
    pub from: Option<IpAddr>,
}

impl CommandBook {
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.id == id)
    }

    /// Every command of the last ten minutes, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Owned commands waiting for the desktop, or with a delivery in flight.
    pub fn waiting(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.owned && e.state == CommandState::Requested)
            .count()
    }

    /// Whether this node still has to end a command (so the room must stay, to hear of the
    /// desktop's arrival and its answer, even with nobody connected).
    pub fn has_open(&self) -> bool {
        self.entries.iter().any(|e| e.owned && !e.state.is_final())
    }

    /// Accepts a command from a viewer of this node, or refuses it: an id another sender used
    /// (`id_taken`), or a full wait queue for an offline desktop (`queue_full`). `seq` makes
    /// relay-given ids unique across nodes and restarts.
    pub fn admit(
        &mut self,
        request: &Request<'_>,
        now_ms: u64,
        salt: &str,
    ) -> Result<Admission, Rejection> {
        if let Some(id) = request.id {
            if let Some(entry) = self.get(id) {
                if entry.by != request.by {
                    return Err(Rejection::new(
                        ErrorCode::IdTaken,
                        format!(
                            "command id {id:?} is already used for this desktop by someone else; pick another id"
                        ),
                    ));
                }
                return Ok(Admission::Repeat(id.to_owned()));
            }
        }
        if request.wait.is_some() && !request.online && self.waiting() >= MAX_WAITING {
            return Err(Rejection::new(
                ErrorCode::QueueFull,
                format!(
                    "{MAX_WAITING} commands already wait for this desktop; {} not accepted",
                    request.kind.name()
                ),
            ));
        }
        let id = match request.id {
            Some(id) => id.to_owned(),
            None => {
                self.named += 1;
                format!("relay-{salt}-{now_ms:x}-{}", self.named)
            }
        };
        self.make_room();
        self.entries.push_back(Entry {
            id: id.clone(),
            kind: request.kind,
            by: request.by.to_owned(),
            state: CommandState::Requested,
            at: now_ms,
            error: None,
            since: Instant::now(),
            relay_named: request.id.is_none(),
            owned: true,
            waiting: None,
            from: request.from,
        });
        Ok(Admission::New(id))
    }

    /// Drops the oldest finished command when the book is full (an open one only if every
    /// command is open, which the command budget makes impossible in practice).
    fn make_room(&mut self) {
        if self.entries.len() < MAX_ENTRIES {
            return;
        }
        let oldest = self
            .entries
            .iter()
            .position(|e| e.state.is_final())
            .unwrap_or(0);
        self.entries.remove(oldest);
    }

    /// Moves a command on; returns it when it changed (a final state never changes again).
    pub fn set(
        &mut self,
        id: &str,
        state: CommandState,
        error: Option<String>,
        now_ms: u64,
    ) -> Option<&Entry> {
        let entry = self.get_mut(id)?;
        if entry.state.is_final() || entry.state == state {
            return None;
        }
        entry.state = state;
        entry.at = now_ms;
        entry.error = error;
        if state != CommandState::Requested {
            entry.waiting = None;
        }
        Some(entry)
    }

    /// Parks an accepted command until the desktop comes back (or `until`).
    pub fn park(&mut self, id: &str, frame: ByteString, until: Instant) {
        if let Some(entry) = self.get_mut(id) {
            entry.waiting = Some(Waiting { frame, until });
        }
    }

    /// Takes every waiting command for delivery, oldest first (they are `requested` with no
    /// frame until delivered or parked again), so two arrivals never deliver one twice.
    pub fn take_waiting(&mut self) -> Vec<(String, ByteString, Instant)> {
        self.entries
            .iter_mut()
            .filter_map(|e| {
                let w = e.waiting.take()?;
                Some((e.id.clone(), w.frame, w.until))
            })
            .collect()
    }

    /// The owned, delivered command a desktop's answer of `reply` kind ends: by id, or for an
    /// answer without one, the oldest relay-named command of that kind.
    pub fn answered(&self, reply: EventKind, result: &BeepResult) -> Option<String> {
        let command = reply.answers()?;
        let open = |e: &&Entry| e.owned && e.kind == command && !e.state.is_final();
        match &result.id {
            Some(id) => self.get(id).filter(open).map(|e| e.id.clone()),
            None => self
                .entries
                .iter()
                .filter(open)
                .find(|e| e.relay_named && e.state == CommandState::Delivered)
                .map(|e| e.id.clone()),
        }
    }

    /// Whether an answer repeats one the book already has (an agent resending a result it was
    /// not sure had arrived): not forwarded again.
    pub fn is_repeat_answer(&self, reply: EventKind, result: &BeepResult) -> bool {
        let (Some(command), Some(id)) = (reply.answers(), &result.id) else {
            return false;
        };
        self.get(id)
            .is_some_and(|e| e.kind == command && e.state.is_final() && e.owned)
    }

    /// A mirror of another node's command, from its `command` event; returns whether it moved.
    pub fn mirror(&mut self, event: &CommandEvent) -> bool {
        let Some(kind) = EventKind::from_name(&event.name) else {
            return false;
        };
        if let Some(entry) = self.get_mut(&event.id) {
            if entry.owned || entry.state.is_final() {
                return false;
            }
            entry.state = event.state;
            entry.at = event.at;
            entry.error = event.error.clone();
            return true;
        }
        self.make_room();
        self.entries.push_back(Entry {
            id: event.id.clone(),
            kind,
            by: event.by.clone(),
            state: event.state,
            at: event.at,
            error: event.error.clone(),
            since: Instant::now(),
            relay_named: false,
            owned: false,
            waiting: None,
            from: None,
        });
        true
    }

    /// Ends what has waited too long at `now`: a parked command past its `until`, and an owned
    /// delivered command unanswered for [`WINDOW`]; returns their ids. Mirrors and finished
    /// commands older than the window leave the book.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        self.entries
            .retain(|e| e.owned && !e.state.is_final() || now.duration_since(e.since) < WINDOW);
        self.entries
            .iter()
            .filter(|e| {
                e.owned
                    && match (&e.waiting, e.state) {
                        (Some(w), _) => w.until <= now,
                        (None, CommandState::Delivered) => now.duration_since(e.since) >= WINDOW,
                        _ => false,
                    }
            })
            .map(|e| e.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beep<'a>(id: Option<&'a str>, by: &'a str, wait: Option<u64>, online: bool) -> Request<'a> {
        Request {
            kind: EventKind::Beep,
            id,
            by,
            wait: wait.map(Duration::from_millis),
            online,
            from: None,
        }
    }

    fn result(id: Option<&str>, ok: bool) -> BeepResult {
        BeepResult {
            id: id.map(str::to_owned),
            ok,
            error: None,
        }
    }

    #[test]
    fn an_id_names_one_command_the_same_sender_may_repeat_it_and_others_may_not_take_it() {
        let mut book = CommandBook::default();
        let admitted = book.admit(&beep(Some("a1"), "alice", None, true), 1, "n");
        assert_eq!(admitted, Ok(Admission::New("a1".into())));
        assert_eq!(
            book.admit(&beep(Some("a1"), "alice", None, true), 2, "n"),
            Ok(Admission::Repeat("a1".into()))
        );
        let taken = book
            .admit(&beep(Some("a1"), "bob", None, true), 3, "n")
            .unwrap_err();
        assert_eq!(taken.code, ErrorCode::IdTaken);
        let Ok(Admission::New(named)) = book.admit(&beep(None, "bob", None, true), 4, "n") else {
            panic!("a command without id is named by the relay")
        };
        assert!(named.starts_with("relay-n-"), "{named}");
        assert_eq!(book.entries().count(), 2);
    }

    #[test]
    fn at_most_sixteen_wait_for_an_offline_desktop() {
        let mut book = CommandBook::default();
        let far = Instant::now() + Duration::from_secs(60);
        for i in 0..MAX_WAITING {
            let id = format!("w{i}");
            book.admit(&beep(Some(&id), "alice", Some(60_000), false), 1, "n")
                .unwrap();
            book.park(&id, ByteString::from_static("{}"), far);
        }
        let full = book
            .admit(&beep(Some("w16"), "alice", Some(60_000), false), 1, "n")
            .unwrap_err();
        assert_eq!(full.code, ErrorCode::QueueFull);
        // Without a wait it is now or never, so the queue does not refuse it.
        assert!(book
            .admit(&beep(Some("now"), "alice", None, false), 1, "n")
            .is_ok());
        assert_eq!(book.take_waiting().len(), MAX_WAITING);
        assert!(book.take_waiting().is_empty(), "taken once");
    }

    #[test]
    fn answers_end_commands_by_id_or_in_order_and_a_final_state_stays() {
        let mut book = CommandBook::default();
        book.admit(&beep(Some("x"), "alice", None, true), 1, "n")
            .unwrap();
        let Ok(Admission::New(v1)) = book.admit(&beep(None, "bob", None, true), 1, "n") else {
            panic!()
        };
        for id in ["x", v1.as_str()] {
            assert!(book.set(id, CommandState::Delivered, None, 2).is_some());
        }
        let reply = EventKind::BeepResult;
        assert_eq!(
            book.answered(reply, &result(Some("x"), true)),
            Some("x".into())
        );
        assert_eq!(book.answered(reply, &result(None, true)), Some(v1.clone()));
        assert_eq!(
            book.answered(EventKind::NotifyResult, &result(Some("x"), true)),
            None,
            "a notify_result does not end a beep"
        );
        assert!(book.set("x", CommandState::Done, None, 3).is_some());
        assert!(book.set("x", CommandState::Failed, None, 4).is_none());
        assert_eq!(book.get("x").unwrap().state, CommandState::Done);
        assert!(book.is_repeat_answer(reply, &result(Some("x"), true)));
        assert!(!book.is_repeat_answer(reply, &result(Some("y"), true)));
        assert!(book.has_open(), "the relay-named one is still open");
    }

    #[test]
    fn parked_commands_expire_at_their_deadline_and_old_ones_leave() {
        let mut book = CommandBook::default();
        let now = Instant::now();
        book.admit(&beep(Some("soon"), "alice", Some(10), false), 1, "n")
            .unwrap();
        book.park(
            "soon",
            ByteString::from_static("{}"),
            now + Duration::from_millis(10),
        );
        book.admit(&beep(Some("later"), "alice", Some(9_000), false), 1, "n")
            .unwrap();
        book.park(
            "later",
            ByteString::from_static("{}"),
            now + Duration::from_secs(9),
        );
        assert!(book.expire(now).is_empty());
        assert_eq!(book.expire(now + Duration::from_millis(10)), vec!["soon"]);
        book.set("soon", CommandState::Expired, Some("waited".into()), 2);
        assert_eq!(book.waiting(), 1);
        // Past the window, the finished one leaves; the open one stays until it ends.
        let gone = now + WINDOW + Duration::from_secs(1);
        assert_eq!(book.expire(gone), vec!["later"]);
        assert!(book.get("soon").is_none());
    }

    #[test]
    fn mirrors_follow_the_owners_events_and_keep_the_id_taken() {
        let mut book = CommandBook::default();
        let id = ClientId::new("d").unwrap();
        let mut event = CommandEvent {
            client_id: id,
            id: "m".into(),
            name: "beep".into(),
            by: "carol".into(),
            state: CommandState::Requested,
            at: 1,
            error: None,
        };
        assert!(book.mirror(&event));
        event.state = CommandState::Done;
        assert!(book.mirror(&event));
        assert!(!book.mirror(&event), "final");
        assert!(!book.has_open(), "not ours to end");
        let taken = book
            .admit(&beep(Some("m"), "dave", None, true), 1, "n")
            .unwrap_err();
        assert_eq!(taken.code, ErrorCode::IdTaken);
    }
}
