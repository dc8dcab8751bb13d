//! One task per client id this node holds: it owns the id's NATS subscriptions and delivers what
//! other nodes send to the local sessions, straight into their outboxes.
//!
//! The matchmaker drives it with [`Control`] messages on every local change (viewers, desktop,
//! announcement). Because the task handles them in order, it has subscribed to an id's viewer
//! traffic before it publishes the announcement that tells other nodes to send it. It subscribes
//! only to what it needs: `web.*` while it has viewers of the id, `desk.*` while it has the
//! desktop, and `state` throughout.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::{Message as ActixMessage, Recipient};
use async_nats::connection::State;
use async_nats::{HeaderMap, Message, Subject, Subscriber};
use bytes::Bytes;
use bytestring::ByteString;
use deskbridge_protocol::{parse_client_message, ClientId, CommandEvent, EventKind, Route};
use futures_util::StreamExt as _;
use governor::DefaultDirectRateLimiter;
use tokio::sync::mpsc;

use super::announce::Announcement;
use super::metrics::{ClusterDrop, Traffic};
use super::subjects::{last_token, Subjects, COMMAND, HISTORY};
use super::{reply, Cluster, STATE_HEADER};
use crate::history::History;
use crate::outbox::command::{deliver_command, CommandOutcome};
use crate::outbox::fanout::fan_out;
use crate::outbox::Outbox;

/// Sent by an id's task to the matchmaker: another node's announcement for an id this node
/// holds. Defined here, by its sender, because the matchmaker sits above the cluster layer.
#[derive(ActixMessage, Debug)]
#[rtype(result = "()")]
pub struct RemoteState {
    pub client_id: ClientId,
    pub announcement: Announcement,
}

/// Sent by an id's task to the matchmaker: what other nodes said about commands to the id — a
/// `command` event of a command another node owns, or the desktop's answer relayed by its node
/// (which ends a command this node owns). Defined here, by its sender.
#[derive(ActixMessage, Debug)]
#[rtype(result = "()")]
pub enum CommandNews {
    Event {
        client_id: ClientId,
        event: CommandEvent,
        frame: ByteString,
    },
    Reply {
        client_id: ClientId,
        kind: EventKind,
        result: deskbridge_protocol::BeepResult,
    },
}

/// A change the matchmaker tells the id's task about.
#[derive(Debug)]
pub enum Control {
    /// The viewers of the id on this node now.
    Viewers(Arc<[Outbox]>),
    /// The desktop of the id on this node now, if any.
    Desktop(Option<Outbox>),
    /// Publish this announcement of the node's state for the id.
    Announce(Bytes),
    /// Whether this node has commands of the id to end, so it hears the desktop's answers (and
    /// other nodes' `command` events) even with no viewer here.
    Following(bool),
}

/// The matchmaker's handle on an id's task. Dropping it ends the task once it has handled the
/// controls already sent (so a last announcement still goes out).
#[derive(Debug)]
pub struct RoomLink {
    tx: mpsc::UnboundedSender<Control>,
}

/// What an id's task needs besides the node.
pub struct LinkParts {
    pub client_id: ClientId,
    pub history: Arc<History>,
    pub commands: Arc<DefaultDirectRateLimiter>,
    pub states: Recipient<RemoteState>,
    pub news: Recipient<CommandNews>,
}

impl RoomLink {
    /// Starts the task for one id. It runs on the tokio runtime of the caller (the matchmaker's
    /// arbiter) and ends by itself when this handle is dropped.
    pub fn spawn(node: Arc<Cluster>, parts: LinkParts) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        node.links.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let links = node.clone();
            Task::new(node, parts).run(rx).await;
            links.links.fetch_sub(1, Ordering::Relaxed);
        });
        Self { tx }
    }

    pub fn send(&self, control: Control) {
        // The task only ends after this handle is dropped.
        let _ = self.tx.send(control);
    }
}

struct Task {
    node: Arc<Cluster>,
    client_id: ClientId,
    subjects: Subjects,
    history: Arc<History>,
    commands: Arc<DefaultDirectRateLimiter>,
    states: Recipient<RemoteState>,
    news: Recipient<CommandNews>,
    following: bool,
    viewers: Arc<[Outbox]>,
    desktop: Option<Outbox>,
    /// The node's latest announcement for the id, sent along with history answers.
    announcement: Bytes,
    web: Option<Subscriber>,
    desk: Option<Subscriber>,
}

/// The next message of an optional subscription; pending forever without one.
async fn next(sub: &mut Option<Subscriber>) -> Option<Message> {
    match sub {
        Some(sub) => sub.next().await,
        None => std::future::pending().await,
    }
}

impl Task {
    fn new(node: Arc<Cluster>, parts: LinkParts) -> Self {
        Self {
            subjects: Subjects::new(&parts.client_id),
            node,
            client_id: parts.client_id,
            history: parts.history,
            commands: parts.commands,
            states: parts.states,
            news: parts.news,
            following: false,
            viewers: Arc::from(Vec::new()),
            desktop: None,
            announcement: Bytes::new(),
            web: None,
            desk: None,
        }
    }

    async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) {
        let Some(mut state) = self.subscribe(self.subjects.state()).await else {
            return;
        };
        loop {
            tokio::select! {
                biased;
                ctl = control.recv() => match ctl {
                    Some(ctl) => self.control(ctl).await,
                    None => break,
                },
                Some(msg) = state.next() => self.on_state(msg),
                Some(msg) = next(&mut self.web) => self.on_web(msg),
                Some(msg) = next(&mut self.desk) => self.on_desk(msg).await,
            }
        }
        // Dropping the subscribers unsubscribes.
    }

    async fn subscribe(&self, subject: Subject) -> Option<Subscriber> {
        match self.node.client.subscribe(subject.clone()).await {
            Ok(sub) => Some(sub),
            Err(e) => {
                log::error!("cluster: cannot subscribe to {subject}: {e}");
                None
            }
        }
    }

    async fn control(&mut self, control: Control) {
        match control {
            Control::Viewers(viewers) => {
                self.viewers = viewers;
                self.follow_web().await;
            }
            Control::Following(following) => {
                self.following = following;
                self.follow_web().await;
            }
            Control::Desktop(desktop) => {
                self.desktop = desktop;
                let want = self.desktop.is_some();
                if want && self.desk.is_none() {
                    self.desk = self.subscribe(self.subjects.desk_all()).await;
                } else if !want {
                    self.desk = None;
                }
            }
            Control::Announce(payload) => {
                self.announcement = payload.clone();
                // While disconnected, say nothing: everything is announced again on reconnect.
                if self.node.client.connection_state() == State::Connected {
                    match self
                        .node
                        .client
                        .publish(self.subjects.state(), payload)
                        .await
                    {
                        Ok(()) => self.node.metrics.published(Traffic::State),
                        Err(e) => log::debug!("cluster: announcement not sent: {e}"),
                    }
                } else {
                    self.node.metrics.dropped(ClusterDrop::Disconnected);
                }
            }
        }
    }

    /// Subscribes to the id's `web.*` while there are viewers here or commands to end.
    async fn follow_web(&mut self) {
        let want = !self.viewers.is_empty() || self.following;
        if want && self.web.is_none() {
            self.web = self.subscribe(self.subjects.web_all()).await;
        } else if !want {
            self.web = None;
        }
    }

    fn on_state(&self, msg: Message) {
        match Announcement::decode(&msg.payload) {
            Ok(announcement) if announcement.node != *self.node.node_id => {
                self.node.metrics.received(Traffic::State);
                self.states.do_send(RemoteState {
                    client_id: self.client_id.clone(),
                    announcement,
                });
            }
            Ok(_) => {} // our own (only without no_echo)
            Err(e) => {
                self.node.metrics.dropped(ClusterDrop::Invalid);
                log::warn!("cluster: bad announcement on {}: {e}", msg.subject);
            }
        }
    }

    /// Checks a forwarded client message: its event from the subject, with the route `route`,
    /// and its payload as text within the size limit.
    fn frame(&self, msg: &Message, routes: &[Route]) -> Option<(EventKind, ByteString)> {
        let kind = EventKind::from_name(last_token(msg.subject.as_str()))
            .filter(|k| routes.contains(&k.route()));
        let text = (msg.payload.len() <= self.node.max_message_size)
            .then(|| ByteString::try_from(msg.payload.clone()).ok())
            .flatten();
        match (kind, text) {
            (Some(kind), Some(text)) => Some((kind, text)),
            _ => {
                self.node.metrics.dropped(ClusterDrop::Invalid);
                log::warn!(
                    "cluster: ignoring a message on {} that no relay sends",
                    msg.subject
                );
                None
            }
        }
    }

    /// Telemetry or a reply from the desktop's node: to every local viewer, as the session on the
    /// desktop's node would have done.
    fn on_web(&self, msg: Message) {
        if last_token(msg.subject.as_str()) == COMMAND {
            self.on_command_event(&msg);
            return;
        }
        let Some((kind, text)) = self.frame(&msg, &[Route::Telemetry, Route::Reply]) else {
            return;
        };
        if kind.route() == Route::Reply {
            // The matchmaker ends the command if this node owns it.
            if let Some(result) = parse_client_message(&text)
                .ok()
                .and_then(|m| m.reply().cloned())
            {
                self.news.do_send(CommandNews::Reply {
                    client_id: self.client_id.clone(),
                    kind,
                    result,
                });
            }
        }
        if kind.route() == Route::Telemetry {
            self.node.metrics.received(Traffic::Telemetry);
            // Kept here too, so a later viewer on this node has history even if the desktop's
            // node cannot be asked.
            self.history.push(text.clone());
        } else {
            self.node.metrics.received(Traffic::Reply);
        }
        fan_out(&self.viewers, kind, &text, &self.node.relay_metrics);
    }

    /// Another node's `command` event: the matchmaker mirrors it and tells the viewers here.
    fn on_command_event(&self, msg: &Message) {
        let event = (msg.payload.len() <= self.node.max_message_size)
            .then(|| serde_json::from_slice::<CommandEvent>(&msg.payload).ok())
            .flatten()
            .filter(|e| e.client_id == self.client_id);
        let frame = ByteString::try_from(msg.payload.clone()).ok();
        match (event, frame) {
            (Some(event), Some(frame)) => {
                self.node.metrics.received(Traffic::Reply);
                self.news.do_send(CommandNews::Event {
                    client_id: self.client_id.clone(),
                    event,
                    frame,
                });
            }
            _ => {
                self.node.metrics.dropped(ClusterDrop::Invalid);
                log::warn!("cluster: ignoring a bad command event on {}", msg.subject);
            }
        }
    }

    /// A command for the local desktop, or a history request: answers the asking node.
    async fn on_desk(&self, msg: Message) {
        let Some(reply_to) = msg.reply.clone() else {
            self.node.metrics.dropped(ClusterDrop::Invalid);
            return;
        };
        let client = &self.node.client;
        if last_token(msg.subject.as_str()) == HISTORY {
            self.node.metrics.received(Traffic::History);
            let mut headers = HeaderMap::new();
            if let Ok(state) = std::str::from_utf8(&self.announcement) {
                headers.insert(STATE_HEADER, state);
            }
            let history = self.history.to_message(&self.client_id).into_bytes();
            if client
                .publish_with_headers(reply_to, headers, history)
                .await
                .is_ok()
            {
                self.node.metrics.published(Traffic::History);
            }
            return;
        }
        let Some((kind, text)) = self.frame(&msg, &[Route::Command]) else {
            return;
        };
        self.node.metrics.received(Traffic::Command);
        let outcome = if self.commands.check().is_err() {
            CommandOutcome::Limited
        } else {
            deliver_command(self.desktop.as_ref(), kind, &text, &self.node.relay_metrics)
        };
        let answer = reply::encode(outcome);
        let _ = client
            .publish(reply_to, Bytes::from_static(answer.as_bytes()))
            .await;
    }
}
