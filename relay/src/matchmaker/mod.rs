//! The matchmaker: the one actor that knows which sessions belong to which client id.
//!
//! It pairs a desktop with its viewers when they join, tells each side when the other comes or
//! goes, and sends `welcome`, `history` and `presence`. It is deliberately off the per-message
//! path: sessions learn their peers' outboxes from it and then relay directly.

pub mod messages;
mod room;

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use bytestring::ByteString;
use deskbridge_protocol::{ClientId, ClientMode, ServerMessage, Welcome, PROTOCOL_VERSION};

use crate::config::Config;
use crate::metrics::{Limit, Metrics};
use crate::session::outbox::{Outbox, SendError};
use messages::{FindDesktop, Join, JoinRefused, Joined, Leave, PeerUpdate};
use room::{Member, Room};

/// `deskbridge-relay/<version>`, announced in `welcome`.
pub const SERVER_NAME: &str = concat!("deskbridge-relay/", env!("CARGO_PKG_VERSION"));

pub struct Matchmaker {
    rooms: HashMap<ClientId, Room>,
    max_viewers: usize,
    history_len: usize,
    commands_per_second: u32,
    metrics: Arc<Metrics>,
}

impl Matchmaker {
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Self {
        Self {
            rooms: HashMap::new(),
            max_viewers: config.max_viewers_per_id,
            history_len: config.history_len,
            commands_per_second: config.commands_per_second,
            metrics,
        }
    }

    /// Queues a control frame (welcome, history, presence); a client too stuck to take even those
    /// is counted and logged, and will be dropped by its heartbeat.
    fn send_control(&self, outbox: &Outbox, frame: ByteString) {
        if let Err(SendError::Full(reason)) = outbox.send_text(frame) {
            self.metrics.dropped(reason);
            log::warn!(
                "session {} is not reading; a control message to it was dropped",
                outbox.session()
            );
        }
    }

    fn broadcast_presence(&self, client_id: &ClientId, room: &Room) {
        let presence = room.presence(client_id);
        for member in room.members() {
            self.send_control(&member.outbox, presence.clone());
        }
    }

    fn update_rooms_gauge(&self) {
        self.metrics.rooms().set(self.rooms.len() as i64);
    }
}

impl Actor for Matchmaker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Joins and leaves come in bursts after a restart; do not make sessions wait on a
        // mailbox of the default size.
        ctx.set_mailbox_capacity(usize::MAX >> 1);
    }
}

fn welcome(client_id: &ClientId, mode: ClientMode) -> ByteString {
    ServerMessage::Welcome(Welcome {
        client_id: client_id.clone(),
        client_mode: mode,
        protocol: PROTOCOL_VERSION,
        server: SERVER_NAME.to_owned(),
    })
    .to_json()
    .into()
}

impl Handler<Join> for Matchmaker {
    type Result = Result<Joined, JoinRefused>;

    fn handle(&mut self, join: Join, _: &mut Context<Self>) -> Self::Result {
        let (history_len, rate) = (self.history_len, self.commands_per_second);
        let room = self
            .rooms
            .entry(join.client_id.clone())
            .or_insert_with(|| Room::new(history_len, rate));
        let member = Member {
            outbox: join.outbox,
            updates: join.updates,
        };
        let joined = match join.mode {
            ClientMode::Desktop => {
                if let Some(old) = room.desktop.take() {
                    log::info!(
                        "desktop {} replaced: session {} takes over from session {}",
                        join.client_id,
                        member.session(),
                        old.session()
                    );
                    old.updates.do_send(PeerUpdate::Replaced);
                } else {
                    room.since = deskbridge_protocol::unix_millis();
                }
                let desktop = Some(member.outbox.clone());
                for viewer in &room.viewers {
                    viewer.updates.do_send(PeerUpdate::Desktop(desktop.clone()));
                }
                room.desktop = Some(member.clone());
                Joined::Desktop {
                    viewers: room.viewer_outboxes(),
                    history: room.history.clone(),
                }
            }
            ClientMode::Web => {
                if room.viewers.len() >= self.max_viewers {
                    let limit = self.max_viewers;
                    self.metrics.limited(Limit::ViewersPerId);
                    if room.is_empty() {
                        self.rooms.remove(&join.client_id);
                    }
                    return Err(JoinRefused::TooManyViewers { limit });
                }
                room.viewers.push(member.clone());
                if let Some(desktop) = &room.desktop {
                    desktop
                        .updates
                        .do_send(PeerUpdate::Viewers(room.viewer_outboxes()));
                }
                Joined::Web {
                    desktop: room.desktop.as_ref().map(|d| d.outbox.clone()),
                    commands: room.commands.clone(),
                }
            }
        };
        let room = &self.rooms[&join.client_id];
        self.send_control(&member.outbox, welcome(&join.client_id, join.mode));
        if join.mode == ClientMode::Web {
            self.send_control(&member.outbox, room.history.to_message(&join.client_id));
        }
        self.broadcast_presence(&join.client_id, room);
        self.update_rooms_gauge();
        Ok(joined)
    }
}

impl Handler<Leave> for Matchmaker {
    type Result = ();

    fn handle(&mut self, leave: Leave, _: &mut Context<Self>) {
        let Some(room) = self.rooms.get_mut(&leave.client_id) else {
            return;
        };
        let changed = match leave.mode {
            ClientMode::Desktop => {
                // A replaced desktop leaves after its successor joined: leave the successor be.
                let is_current = room
                    .desktop
                    .as_ref()
                    .is_some_and(|d| d.session() == leave.session);
                if is_current {
                    room.desktop = None;
                    room.since = deskbridge_protocol::unix_millis();
                    for viewer in &room.viewers {
                        viewer.updates.do_send(PeerUpdate::Desktop(None));
                    }
                }
                is_current
            }
            ClientMode::Web => {
                let before = room.viewers.len();
                room.viewers.retain(|v| v.session() != leave.session);
                let removed = room.viewers.len() != before;
                if removed {
                    if let Some(desktop) = &room.desktop {
                        desktop
                            .updates
                            .do_send(PeerUpdate::Viewers(room.viewer_outboxes()));
                    }
                }
                removed
            }
        };
        if room.is_empty() {
            self.rooms.remove(&leave.client_id);
        } else if changed {
            let room = &self.rooms[&leave.client_id];
            self.broadcast_presence(&leave.client_id, room);
        }
        self.update_rooms_gauge();
    }
}

impl Handler<FindDesktop> for Matchmaker {
    type Result = Option<Outbox>;

    fn handle(&mut self, find: FindDesktop, _: &mut Context<Self>) -> Self::Result {
        self.rooms
            .get(&find.client_id)
            .and_then(|room| room.desktop.as_ref())
            .map(|d| d.outbox.clone())
    }
}
