//! What sessions (and the matchmaker) use to reach the other nodes: a desktop's session forwards
//! its telemetry and replies, a viewer's session sends commands to a desktop on another node, and
//! the matchmaker asks the desktop's node for `history`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_nats::client::RequestErrorKind;
use bytes::Bytes;
use bytestring::ByteString;
use deskbridge_protocol::{ClientId, EventKind, Route};

use super::announce::Announcement;
use super::metrics::Traffic;
use super::subjects::{Subjects, HISTORY};
use super::{reply, Cluster, STATE_HEADER};
use crate::outbox::command::CommandOutcome;

/// Held by a desktop's session: forwards what it sends to the viewers on other nodes.
#[derive(Debug, Clone)]
pub struct DesktopLink {
    node: Arc<Cluster>,
    subjects: Subjects,
    /// Whether any other node has viewers of the id (kept by the matchmaker from
    /// announcements); telemetry goes to NATS only then.
    remote_viewers: Arc<AtomicBool>,
}

impl DesktopLink {
    pub fn new(node: Arc<Cluster>, client_id: &ClientId, remote_viewers: Arc<AtomicBool>) -> Self {
        Self {
            node,
            subjects: Subjects::new(client_id),
            remote_viewers,
        }
    }

    /// Queues a validated message for the other nodes; never waits. Telemetry only goes out while
    /// another node has viewers; replies always do, since a viewer elsewhere may be waiting.
    pub fn forward(&self, kind: EventKind, frame: &ByteString) {
        let traffic = match kind.route() {
            Route::Telemetry if self.remote_viewers.load(Ordering::Relaxed) => Traffic::Telemetry,
            Route::Reply => Traffic::Reply,
            _ => return,
        };
        self.node.publisher.publish(
            self.subjects.web(kind.name()),
            frame.clone().into_bytes(),
            traffic,
        );
    }
}

/// Held by a viewer's session: sends commands to the desktop wherever it is.
#[derive(Debug, Clone)]
pub struct CommandLink {
    node: Arc<Cluster>,
    subjects: Subjects,
}

impl CommandLink {
    pub fn new(node: Arc<Cluster>, client_id: &ClientId) -> Self {
        Self {
            node,
            subjects: Subjects::new(client_id),
        }
    }

    /// Asks the node that has the desktop to deliver `frame`. NATS's "no responders" answers at
    /// once when no node has subscribed to the id's desktop subjects: that is `Offline`.
    pub async fn send(&self, kind: EventKind, frame: ByteString) -> CommandOutcome {
        if !self.node.metrics.is_connected() {
            return CommandOutcome::Unreachable;
        }
        let subject = self.subjects.desk(kind.name());
        let asked = tokio::time::timeout(
            self.node.request_timeout,
            self.node.client.request(subject, frame.into_bytes()),
        )
        .await;
        self.node.metrics.published(Traffic::Command);
        match asked {
            Ok(Ok(answer)) => reply::decode(&answer.payload),
            Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => CommandOutcome::Offline,
            Ok(Err(e)) => {
                log::warn!("cluster: command for {} not answered: {e}", kind.name());
                CommandOutcome::Unreachable
            }
            Err(_) => {
                log::warn!(
                    "cluster: command for {} not answered within {:?}",
                    kind.name(),
                    self.node.request_timeout
                );
                CommandOutcome::Unreachable
            }
        }
    }
}

/// A `history` message from the desktop's node, with that node's announcement if it sent one.
#[derive(Debug)]
pub struct FetchedHistory {
    pub message: ByteString,
    pub state: Option<Announcement>,
}

/// Asks whichever node has the desktop of `client_id` for its history. `None` at once if no
/// node has it or NATS is down, and after the request timeout if nobody answers.
pub async fn fetch_history(node: Arc<Cluster>, client_id: ClientId) -> Option<FetchedHistory> {
    if !node.metrics.is_connected() {
        return None;
    }
    let subject = Subjects::new(&client_id).desk(HISTORY);
    let asked = tokio::time::timeout(
        node.request_timeout,
        node.client.request(subject, Bytes::new()),
    )
    .await;
    node.metrics.published(Traffic::History);
    let answer = match asked {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => return None,
        Ok(Err(e)) => {
            log::info!("cluster: history of {client_id} not fetched: {e}");
            return None;
        }
        Err(_) => {
            log::info!("cluster: history of {client_id} not fetched in time");
            return None;
        }
    };
    node.metrics.received(Traffic::History);
    let state = answer
        .headers
        .as_ref()
        .and_then(|h| h.get(STATE_HEADER))
        .and_then(|v| Announcement::decode(v.as_str().as_bytes()).ok());
    let message = ByteString::try_from(answer.payload).ok()?;
    Some(FetchedHistory { message, state })
}
