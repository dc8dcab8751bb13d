//! The life of a command, on the matchmaker's side: accepting it into the desktop's book,
//! delivering it (now, through another node, or when the desktop comes back), ending it with
//! the desktop's answer or when it waited too long — and publishing every step as a `command`
//! event to every viewer of the desktop, on every node.
//!
//! Every command goes through here, so one actor owns each book; commands are few (the command
//! budget allows a handful per second per desktop), and telemetry never comes this way. The
//! rules themselves are in [`super::book`]; what a delivery attempt gives is decided by
//! [`deliver_command`], as for every command path of the relay.
//!
//! Every lifecycle ends in exactly one audit line, written by [`Matchmaker::audit`] on the
//! owning node.

use std::pin::Pin;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix::fut::{self, ActorFuture};
use actix::prelude::*;
use bytestring::ByteString;
use deskbridge_protocol::{
    forward_frame, unix_millis, BeepResult, ClientId, CommandEvent, CommandState, ErrorCode,
    EventKind, Rejection,
};

use super::book::{Admission, Entry, Request, WINDOW};
use super::messages::{Command, DesktopReply};
use super::{send_control, Matchmaker};
use crate::cluster::link::{CommandNews, Control};
use crate::cluster::metrics::Traffic;
use crate::cluster::remote::CommandLink;
use crate::cluster::subjects::{Subjects, COMMAND};
use crate::outbox::command::{deliver_command, CommandOutcome};
use crate::outbox::fanout::fan_out;
use crate::outbox::Outbox;
use crate::store::record::{AuditKind, AuditRecord};

/// How often the books are swept for commands unanswered past the window and for entries to
/// forget. Waiting commands expire on their own timers, to the millisecond.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(5);

type Answer = Pin<Box<dyn ActorFuture<Matchmaker, Output = Result<(), Rejection>>>>;

/// Part of relay-given command ids: the node's id in a cluster, else a random word, so ids the
/// relay gives are not given again by another node or after a restart.
fn salt(node: Option<&str>) -> String {
    static RANDOM: OnceLock<String> = OnceLock::new();
    match node {
        Some(node) => node.to_owned(),
        None => RANDOM
            .get_or_init(|| format!("{:08x}", rand::random::<u32>()))
            .clone(),
    }
}

impl Handler<Command> for Matchmaker {
    type Result = ResponseActFuture<Self, Result<(), Rejection>>;

    fn handle(&mut self, command: Command, ctx: &mut Context<Self>) -> Self::Result {
        let node = self.cluster.as_ref().map(|c| c.node.node_id().to_owned());
        let salt = salt(node.as_deref());
        self.booked.insert(command.client_id.clone());
        let Some(room) = self.rooms.get_mut(&command.client_id) else {
            // The sender is a viewer of the id, so its room exists; kept total.
            return Box::pin(fut::ready(Err(Rejection::new(
                ErrorCode::PeerOffline,
                "the desktop is offline",
            ))));
        };
        let request = Request {
            kind: command.kind,
            id: command.id.as_deref(),
            by: &command.by,
            wait: command.wait_ms.map(Duration::from_millis),
            online: room.online(),
            from: command.from,
        };
        let id = match room.book.admit(&request, unix_millis(), &salt) {
            Ok(Admission::New(id)) => id,
            Ok(Admission::Repeat(id)) => {
                if let Some(entry) = room.book.get(&id) {
                    log::info!(
                        "command {id} to {} repeated by {}: not delivered again ({})",
                        command.client_id,
                        command.by,
                        entry.state
                    );
                    send_control(
                        &self.metrics,
                        &command.sender,
                        entry.frame(&command.client_id),
                    );
                }
                return Box::pin(fut::ready(Ok(())));
            }
            Err(refused) => {
                log::info!(
                    "{} to {} by {} refused: {}",
                    command.kind.name(),
                    command.client_id,
                    command.by,
                    refused
                );
                // Refused before it had a life: one record with the refusal's code.
                let record = AuditRecord::command(
                    &command.by,
                    command.from,
                    &command.client_id,
                    command.kind.name(),
                    refused.code.as_str(),
                );
                self.store.audit(record);
                return Box::pin(fut::ready(Err(refused)));
            }
        };
        self.publish(&command.client_id, &id);
        let until = command
            .wait_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        self.dispatch(
            &command.client_id,
            id,
            command.kind,
            command.frame,
            until,
            ctx,
        )
    }
}

impl Matchmaker {
    /// Delivers an accepted command: to the desktop here, through the node that has it, or — with
    /// `until` — keeps it waiting for the desktop. Ends it when none of that is possible.
    fn dispatch(
        &mut self,
        client_id: &ClientId,
        id: String,
        kind: EventKind,
        frame: ByteString,
        until: Option<Instant>,
        ctx: &mut Context<Self>,
    ) -> Answer {
        let Some(room) = self.rooms.get(client_id) else {
            return Box::pin(fut::ready(Ok(())));
        };
        let local = room.desktop.as_ref().map(|d| d.outbox.clone());
        let remote = room.remote.has_desktop();
        if let Some(desktop) = local {
            match deliver_command(Some(&desktop), kind, &frame, &self.metrics) {
                CommandOutcome::Delivered => {
                    self.advance(client_id, &id, CommandState::Delivered, None);
                    return Box::pin(fut::ready(Ok(())));
                }
                CommandOutcome::Offline => {} // it is leaving: as if it were gone
                outcome => return Box::pin(fut::ready(self.refuse(client_id, &id, kind, outcome))),
            }
        }
        let cluster = self.cluster.as_ref().map(|c| c.node.clone());
        match (cluster, until) {
            // Another node has it, or may have it without our knowing yet: ask through NATS.
            (Some(node), _) if remote || until.is_none() => {
                if !remote {
                    // Not known anywhere: the cluster may have it before its announcement came.
                    node.metrics.desktop_lookup();
                }
                let link = CommandLink::new(node, client_id);
                let client_id = client_id.clone();
                let sent = frame.clone();
                Box::pin(
                    async move { link.send(kind, sent).await }
                        .into_actor(self)
                        .map(move |outcome, act, ctx| {
                            act.asked(&client_id, id, kind, frame, until, outcome, ctx)
                        }),
                )
            }
            (_, Some(until)) => {
                self.park(client_id, &id, frame, until, ctx);
                Box::pin(fut::ready(Ok(())))
            }
            (_, None) => Box::pin(fut::ready(self.refuse(
                client_id,
                &id,
                kind,
                CommandOutcome::Offline,
            ))),
        }
    }

    /// The answer of the node asked to deliver a command.
    #[allow(clippy::too_many_arguments)]
    fn asked(
        &mut self,
        client_id: &ClientId,
        id: String,
        kind: EventKind,
        frame: ByteString,
        until: Option<Instant>,
        outcome: CommandOutcome,
        ctx: &mut Context<Self>,
    ) -> Result<(), Rejection> {
        match (outcome, until) {
            (CommandOutcome::Delivered, _) => {
                self.advance(client_id, &id, CommandState::Delivered, None);
                Ok(())
            }
            // No node had it: it waits, if it may. (A request that went unanswered may have been
            // delivered, so it is not tried again: the relay never delivers twice on its own.)
            (CommandOutcome::Offline, Some(until)) if until > Instant::now() => {
                self.park(client_id, &id, frame, until, ctx);
                Ok(())
            }
            (CommandOutcome::Offline, Some(_)) => {
                let error = format!(
                    "the desktop did not come back in time; {} not delivered",
                    kind.name()
                );
                self.advance(client_id, &id, CommandState::Expired, Some(error));
                Ok(())
            }
            (outcome, _) => self.refuse(client_id, &id, kind, outcome),
        }
    }

    /// Ends a command that could not be delivered as `failed`, and gives the sender's error.
    fn refuse(
        &mut self,
        client_id: &ClientId,
        id: &str,
        kind: EventKind,
        outcome: CommandOutcome,
    ) -> Result<(), Rejection> {
        outcome.count(kind, &self.metrics);
        let (code, message) = outcome
            .rejection(kind, self.commands_per_second)
            .unwrap_or((
                ErrorCode::PeerOffline,
                format!("{} not delivered", kind.name()),
            ));
        self.advance(client_id, id, CommandState::Failed, Some(message.clone()));
        Err(Rejection::new(code, message))
    }

    /// Keeps a command until the desktop comes back or `until`.
    fn park(
        &mut self,
        client_id: &ClientId,
        id: &str,
        frame: ByteString,
        until: Instant,
        ctx: &mut Context<Self>,
    ) {
        let Some(room) = self.rooms.get_mut(client_id) else {
            return;
        };
        room.book.park(id, frame, until);
        self.booked.insert(client_id.clone());
        self.metrics.commands_waiting().inc();
        self.follow(client_id);
        let (client_id, id) = (client_id.clone(), id.to_owned());
        let left = until.saturating_duration_since(Instant::now());
        ctx.run_later(left, move |act, _| act.expire(&client_id, &[id]));
    }

    /// Cluster mode: keeps the id's link listening to the desktop's answers while this node has
    /// commands of it to end.
    fn follow(&self, client_id: &ClientId) {
        if let Some(room) = self.rooms.get(client_id) {
            if let Some(link) = &room.link {
                link.send(Control::Following(room.book.has_open()));
            }
        }
    }

    /// The desktop of `client_id` is here or on another node now: delivers what waits for it,
    /// oldest first.
    pub(super) fn deliver_waiting(&mut self, client_id: &ClientId, ctx: &mut Context<Self>) {
        let Some(room) = self.rooms.get_mut(client_id) else {
            return;
        };
        if !room.online() || room.book.waiting() == 0 {
            return;
        }
        let waiting = room.book.take_waiting();
        for (id, frame, until) in waiting {
            self.metrics.commands_waiting().dec();
            let Some(kind) = self
                .rooms
                .get(client_id)
                .and_then(|r| r.book.get(&id))
                .map(|e| e.kind)
            else {
                continue;
            };
            let answer = self.dispatch(client_id, id, kind, frame, Some(until), ctx);
            ctx.spawn(answer.map(|_, _, _| ()));
        }
    }

    /// Ends the given commands if they are still waiting (or unanswered) past their time.
    fn expire(&mut self, client_id: &ClientId, ids: &[String]) {
        let now = Instant::now();
        for id in ids {
            let Some(entry) = self.rooms.get(client_id).and_then(|r| r.book.get(id)) else {
                continue;
            };
            let error = match (&entry.waiting, entry.state) {
                (Some(w), _) if w.until <= now => format!(
                    "the desktop did not come back in time; {} not delivered",
                    entry.kind.name()
                ),
                (None, CommandState::Delivered) if now.duration_since(entry.since) >= WINDOW => {
                    format!(
                        "the desktop did not answer the {} within 10 minutes",
                        entry.kind.name()
                    )
                }
                _ => continue,
            };
            self.advance(client_id, id, CommandState::Expired, Some(error));
        }
    }

    /// Every few seconds: ends commands unanswered past the window and forgets old ones.
    /// Expires what is due in every book that may hold commands ([`Matchmaker::booked`]), not in
    /// every room: ten thousand rooms of quiet desktops are not walked every few seconds for the
    /// few that were sent something.
    pub(super) fn sweep_books(&mut self) {
        let now = Instant::now();
        let mut due: Vec<(ClientId, Vec<String>)> = Vec::new();
        let rooms = &mut self.rooms;
        // An id leaves the set once its room is gone (its book is parked, swept below) or its
        // book was empty at a sweep; whatever adds to a book adds the id again.
        self.booked.retain(|id| {
            let Some(room) = rooms.get_mut(id) else {
                return false;
            };
            if room.book.is_empty() {
                return false;
            }
            let ids = room.book.expire(now);
            if !ids.is_empty() {
                due.push((id.clone(), ids));
            }
            true
        });
        for (client_id, ids) in due {
            self.expire(&client_id, &ids);
        }
        self.parked_books.retain(|_, book| {
            book.expire(now);
            !book.is_empty()
        });
    }

    /// Moves a command on (when it changes), publishes the step, and on a final state counts
    /// and audits it and lets an emptied room go.
    fn advance(
        &mut self,
        client_id: &ClientId,
        id: &str,
        state: CommandState,
        error: Option<String>,
    ) {
        let Some(room) = self.rooms.get_mut(client_id) else {
            return;
        };
        let was_parked = room.book.get(id).is_some_and(|e| e.waiting.is_some());
        let Some(entry) = room.book.set(id, state, error, unix_millis()) else {
            return;
        };
        if was_parked {
            self.metrics.commands_waiting().dec();
        }
        if state.is_final() {
            if let Some(counter) = self.metrics.commands(entry.kind, state) {
                counter.inc();
            }
            let record = entry.clone();
            self.audit(client_id, &record);
        }
        self.publish(client_id, id);
        self.follow(client_id);
        if state.is_final() && self.rooms.get(client_id).is_some_and(|r| r.is_empty()) {
            self.remove_room(client_id);
            self.update_rooms_gauge();
        }
    }

    /// The one audit record of a command's life, written when it ends, on the node that owns
    /// it: what the viewers' last `command` event said.
    fn audit(&self, client_id: &ClientId, entry: &Entry) {
        log::info!(
            "command {} {:?} to {client_id} by {}: {}{}",
            entry.kind.name(),
            entry.id,
            entry.by,
            entry.state,
            entry
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        let mut detail = serde_json::json!({
            "command": entry.kind.name(),
            "id": entry.id,
            "outcome": entry.state.as_str(),
        });
        if let Some(error) = &entry.error {
            detail["error"] = error.as_str().into();
        }
        self.store.audit(AuditRecord::new(
            AuditKind::Command,
            entry.by.clone(),
            entry.from,
            Some(client_id),
            detail,
        ));
    }

    /// Sends a command's current state to every viewer and fleet watcher of the id here, and
    /// (for a command this node owns) to the other nodes' viewers.
    fn publish(&self, client_id: &ClientId, id: &str) {
        let Some(room) = self.rooms.get(client_id) else {
            return;
        };
        let Some(entry) = room.book.get(id) else {
            return;
        };
        let frame = entry.frame(client_id);
        publish_frame(&self.metrics, &room.viewer_outboxes(), &frame);
        if let (true, Some(cluster)) = (entry.owned, &self.cluster) {
            cluster.node.publisher.publish(
                Subjects::new(client_id).web(COMMAND),
                frame.into_bytes(),
                Traffic::Reply,
            );
        }
    }

    /// A joining viewer's share of the book, after its history: every command of the last ten
    /// minutes, as it is now.
    pub(super) fn send_book(&self, client_id: &ClientId, outbox: &Outbox) {
        if let Some(room) = self.rooms.get(client_id) {
            for entry in room.book.entries() {
                send_control(&self.metrics, outbox, entry.frame(client_id));
            }
        }
    }

    /// An answer of the desktop (here, or relayed by its node) to a command: ends the command
    /// this node owns.
    fn answered(&mut self, client_id: &ClientId, kind: EventKind, result: &BeepResult) {
        let Some(id) = self
            .rooms
            .get(client_id)
            .and_then(|room| room.book.answered(kind, result))
        else {
            return;
        };
        let (state, error) = if result.ok {
            (CommandState::Done, None)
        } else {
            let why = result.error.clone().unwrap_or_else(|| "failed".to_owned());
            (CommandState::Failed, Some(why))
        };
        self.advance(client_id, &id, state, error);
    }
}

/// Queues a `command` frame to each viewer (wrapped in `forward` for fleet connections).
fn publish_frame(metrics: &crate::metrics::Metrics, viewers: &[Outbox], frame: &ByteString) {
    let mut wrapped: Option<ByteString> = None;
    for viewer in viewers {
        let text = match viewer.forward_prefix() {
            None => frame.clone(),
            Some(prefix) => wrapped
                .get_or_insert_with(|| forward_frame(prefix, frame).into())
                .clone(),
        };
        send_control(metrics, viewer, text);
    }
}

impl Handler<DesktopReply> for Matchmaker {
    type Result = ();

    /// The desktop's answer goes to every viewer as it came (v1 pages read it), unless it
    /// repeats one already passed on (an agent resending a result it was not sure arrived).
    fn handle(&mut self, reply: DesktopReply, _: &mut Context<Self>) {
        let Some(room) = self.rooms.get(&reply.client_id) else {
            return;
        };
        if room.book.is_repeat_answer(reply.kind, &reply.result) {
            log::debug!(
                "{} for {:?} to {} repeated; not forwarded again",
                reply.kind.name(),
                reply.result.id,
                reply.client_id
            );
            return;
        }
        fan_out(
            &room.viewer_outboxes(),
            reply.kind,
            &reply.frame,
            &self.metrics,
        );
        if let Some(cluster) = &self.cluster {
            cluster.node.publisher.publish(
                Subjects::new(&reply.client_id).web(reply.kind.name()),
                reply.frame.clone().into_bytes(),
                Traffic::Reply,
            );
        }
        self.answered(&reply.client_id, reply.kind, &reply.result);
    }
}

impl Handler<CommandNews> for Matchmaker {
    type Result = ();

    fn handle(&mut self, news: CommandNews, _: &mut Context<Self>) {
        match news {
            CommandNews::Reply {
                client_id,
                kind,
                result,
            } => {
                self.answered(&client_id, kind, &result);
            }
            CommandNews::Event {
                client_id,
                event,
                frame,
            } => self.mirrored(&client_id, &event, &frame),
        }
    }
}

impl Matchmaker {
    /// Another node's command moved: kept in this node's book and shown to the viewers here.
    fn mirrored(&mut self, client_id: &ClientId, event: &CommandEvent, frame: &ByteString) {
        let Some(room) = self.rooms.get_mut(client_id) else {
            return;
        };
        if room.book.mirror(event) {
            publish_frame(&self.metrics, &room.viewer_outboxes(), frame);
        }
        self.booked.insert(client_id.clone());
    }
}
