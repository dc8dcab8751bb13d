//! The typed messages of the matchmaker's interface: what sessions and the server ask of it
//! (`Join`, `Leave`, `FindDesktop`, `LeaveCluster`) and what it tells sessions (`PeerUpdate`).
//!
//! Each message type lives with the lower of its two ends in the layer order
//! (docs/architecture.md), so both ends import downwards: the session, above the matchmaker,
//! imports these; the matchmaker imports the cluster link's `RemoteState`, not the other way.
//! They travel only when a session joins or leaves, never per relayed message.

use std::sync::Arc;

use actix::prelude::*;
use deskbridge_protocol::{ClientId, ClientMode};
use governor::DefaultDirectRateLimiter;

use crate::cluster::remote::{CommandLink, DesktopLink};
use crate::history::History;
use crate::outbox::{Outbox, SessionId};

/// A session authenticated and asks to be paired.
#[derive(Message)]
#[rtype(result = "Result<Peers, JoinRefused>")]
pub struct Join {
    pub session: SessionId,
    pub client_id: ClientId,
    pub mode: ClientMode,
    /// The id (`jti`) of the token the session authenticated with; `None` for anonymous sessions,
    /// which are limited per id only.
    pub token: Option<String>,
    pub outbox: Outbox,
    /// Where the matchmaker sends this session's peer changes.
    pub updates: Recipient<PeerUpdate>,
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
        desktop: Option<Outbox>,
        /// The id's shared budget of commands per second, across all its viewers.
        commands: Arc<DefaultDirectRateLimiter>,
        /// In cluster mode: how to reach a desktop on another node.
        cluster: Option<CommandLink>,
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
}

/// Asks which desktop serves `client_id` now: the slow path of a command whose sender does not
/// (yet) know of a desktop.
#[derive(Message)]
#[rtype(result = "Option<Outbox>")]
pub struct FindDesktop {
    pub client_id: ClientId,
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
    /// For a viewer: the desktop now connected, if any.
    Desktop(Option<Outbox>),
    /// For a desktop: a newer connection for the same id took over.
    Replaced,
}
