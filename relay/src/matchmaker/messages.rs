//! The typed messages of the matchmaker's interface: what sessions and the server ask of it
//! (`Join`, `Leave`, `Command`, `LeaveCluster`) and what it tells sessions (`PeerUpdate`).
//!
//! Each message type lives with the lower of its two ends in the layer order
//! (docs/architecture.md), so both ends import downwards: the session, above the matchmaker,
//! imports these; the matchmaker imports the cluster link's `RemoteState`, not the other way.
//! They travel only when a session joins or leaves, never per relayed message.

use std::sync::Arc;

use actix::prelude::*;
use bytestring::ByteString;
use deskbridge_auth::Access;
use deskbridge_protocol::{BeepResult, ClientId, ClientMode, EventKind, OfflineReason, Rejection};
use governor::DefaultDirectRateLimiter;
use serde::Serialize;

use crate::cluster::remote::DesktopLink;
use crate::history::History;
use crate::metrics::Limit;
use crate::outbox::{Outbox, SessionId};

/// A session authenticated and asks to be paired.
#[derive(Message)]
#[rtype(result = "Result<Peers, JoinRefused>")]
pub struct Join {
    /// The session's id is its outbox's (`outbox.session()`).
    pub client_id: ClientId,
    pub mode: ClientMode,
    /// The id (`jti`) of the token the session authenticated with; `None` for anonymous sessions,
    /// which are limited per id only.
    pub token: Option<String>,
    pub outbox: Outbox,
    /// Where the matchmaker sends this session's peer changes.
    pub updates: Recipient<PeerUpdate>,
    /// A viewer's access (its `welcome` says its role and who it is); `None` for a desktop.
    pub access: Option<Access>,
}

/// A fleet connection authenticated: watch every desktop `access` may see, now and as they
/// become known, each frame tagged with its id. Answered with nothing: the greeting (`welcome`,
/// then each desktop's `history` and `presence`) goes to the outbox.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    pub access: Access,
    /// The connection's own outbox; the matchmaker seats forwarding clones of it.
    pub outbox: Outbox,
    pub updates: Recipient<PeerUpdate>,
}

/// A fleet connection ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unwatch {
    pub session: SessionId,
}

/// A fleet connection's access changed (the users file was edited): it stops watching what it
/// may no longer see (told with `unwatched`) and starts watching what it now may.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Rescope {
    pub session: SessionId,
    pub access: Access,
}

/// What `GET /api/desktops` lists: every desktop `access` may see that this relay knows of.
#[derive(Message)]
#[rtype(result = "Vec<DesktopSummary>")]
pub struct ListDesktops {
    pub access: Access,
}

/// One desktop as `/api/desktops` and the fleet grid show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesktopSummary {
    pub id: ClientId,
    pub online: bool,
    /// When `online` last changed, Unix ms.
    pub since: u64,
    /// Detail viewers of the id (on every node).
    pub viewers: u32,
    /// The newest sample's CPU figure, percent; `null` before any.
    pub cpu: Option<f64>,
    /// Why it is offline, if it is and the relay knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<OfflineReason>,
    /// Added from the page; its desktop has not connected yet.
    pub waiting: bool,
}

/// An operator added a desktop from the page: remember the id (as waiting for its first
/// connection) and show it to every fleet connection that may see it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Expect {
    pub client_id: ClientId,
}

/// The outboxes a joined session relays to, so it never asks the matchmaker per message: handed
/// over on join, kept current with [`PeerUpdate`].
pub enum Peers {
    Desktop {
        viewers: Arc<[Outbox]>,
        history: Arc<History>,
        /// In cluster mode: where to forward for viewers on other nodes.
        cluster: Option<DesktopLink>,
    },
    Web {
        /// The id's shared budget of commands per second, across all its viewers.
        commands: Arc<DefaultDirectRateLimiter>,
    },
}

/// Why a join was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinRefused {
    TooManyViewers { limit: ViewerLimit },
}

/// Which viewer limit a join hit, and its value.
///
/// It displays as the phrase the session puts into its `too_many_viewers` message ("ID already
/// has {limit} viewers, the most allowed"), so a viewer refused by the per-token limit is told
/// that the limit is per token: one token may not take every slot, but another token may still
/// get in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewerLimit {
    /// All viewers of the id (across the cluster).
    PerId(usize),
    /// The viewers one token has open on this node.
    PerToken(usize),
}

impl ViewerLimit {
    /// The abuse limit it is counted as in `/metrics`.
    pub fn counted_as(self) -> Limit {
        match self {
            ViewerLimit::PerId(_) => Limit::ViewersPerId,
            ViewerLimit::PerToken(_) => Limit::ViewersPerToken,
        }
    }
}

impl std::fmt::Display for ViewerLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ViewerLimit::PerId(n) => write!(f, "{n}"),
            ViewerLimit::PerToken(n) => write!(f, "the per-token limit of {n}"),
        }
    }
}

/// A session ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub session: SessionId,
    pub client_id: ClientId,
    pub mode: ClientMode,
    /// For a desktop: why it went, if it said so (`going_away`); `None` means lost.
    pub reason: Option<OfflineReason>,
}

/// A viewer sent a command (`beep`, `notify`) its role and the command budget allow: the
/// matchmaker gives it its life (`matchmaker/commands.rs`). Answered once the command is
/// delivered, waiting or ended; an `Err` is the `error` event for the sender.
#[derive(Message)]
#[rtype(result = "Result<(), Rejection>")]
pub struct Command {
    pub client_id: ClientId,
    pub kind: EventKind,
    /// The sender's id for it, if it gave one.
    pub id: Option<String>,
    pub wait_ms: Option<u64>,
    /// Who the relay takes the sender to be (`Access::by`).
    pub by: String,
    /// The validated frame, forwarded to the desktop as it came.
    pub frame: ByteString,
    /// The sender, told where a repeated command is.
    pub sender: Outbox,
    /// The sender's address, for the audit log.
    pub from: Option<std::net::IpAddr>,
}

/// The desktop of `client_id` on this node answered a command (`beep_result`, `notify_result`):
/// the matchmaker forwards the answer to every viewer (here and on other nodes) and ends the
/// command.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DesktopReply {
    pub client_id: ClientId,
    pub kind: EventKind,
    pub result: BeepResult,
    pub frame: ByteString,
}

/// Cluster mode: the relay is stopping; drop every id's link after its last announcement.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct LeaveCluster;

/// Sent to a session when its peers change.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum PeerUpdate {
    /// For a desktop: the viewers now connected.
    Viewers(Arc<[Outbox]>),
    /// For a desktop: a newer connection for the same id took over.
    Replaced,
    /// For a desktop: how long it may now be silent before it is dropped (its audience changed
    /// class; the same figure went to it in `audience.timeout_ms`).
    Timeout(std::time::Duration),
}
