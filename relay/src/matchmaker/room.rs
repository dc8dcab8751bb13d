//! One client id's pairing state: its desktop, its viewers, its history and since when the desktop
//! is online or offline.

use std::sync::Arc;

use actix::Recipient;
use bytestring::ByteString;
use deskbridge_protocol::{unix_millis, ClientId, DesktopState, Presence, ServerMessage};
use governor::DefaultDirectRateLimiter;

use super::messages::PeerUpdate;
use crate::history::History;
use crate::limits::rate::bucket;
use crate::session::outbox::{Outbox, SessionId};

/// A registered session: how to send it frames and how to tell it about peer changes.
#[derive(Debug, Clone)]
pub struct Member {
    pub outbox: Outbox,
    pub updates: Recipient<PeerUpdate>,
}

impl Member {
    pub fn session(&self) -> SessionId {
        self.outbox.session()
    }
}

pub struct Room {
    pub desktop: Option<Member>,
    /// Kept in join order; a Vec because rooms hold a few viewers and the list is rebuilt into
    /// an `Arc<[Outbox]>` for the desktop on every change anyway.
    pub viewers: Vec<Member>,
    pub history: Arc<History>,
    /// When `desktop` last went online or offline, Unix ms.
    pub since: u64,
    /// Commands per second the desktop accepts, shared by all viewers of the id.
    pub commands: Arc<DefaultDirectRateLimiter>,
}

impl Room {
    pub fn new(history_len: usize, commands_per_second: u32) -> Self {
        Self {
            desktop: None,
            viewers: Vec::new(),
            history: Arc::new(History::new(history_len)),
            since: unix_millis(),
            commands: Arc::new(bucket(commands_per_second, commands_per_second)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.desktop.is_none() && self.viewers.is_empty()
    }

    pub fn viewer_outboxes(&self) -> Arc<[Outbox]> {
        self.viewers.iter().map(|v| v.outbox.clone()).collect()
    }

    /// The current `presence` message.
    pub fn presence(&self, client_id: &ClientId) -> ByteString {
        let state = if self.desktop.is_some() {
            DesktopState::Online
        } else {
            DesktopState::Offline
        };
        ServerMessage::Presence(Presence {
            client_id: client_id.clone(),
            desktop: state,
            viewers: self.viewers.len() as u32,
            since: self.since,
        })
        .to_json()
        .into()
    }

    /// Everyone in the room.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.desktop.iter().chain(self.viewers.iter())
    }
}
