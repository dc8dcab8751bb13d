//! Fleet connections: one signed-in grid watching every desktop its access may see, through one
//! socket.
//!
//! A fleet connection takes a *watcher* seat in the room of every id it may see (a forwarding
//! clone of its outbox, so the fan-out wraps each desktop frame in `forward` with the id), and
//! gets that room's `history` and `presence` as a viewer would. Which ids: every id this relay
//! knows ([`Matchmaker::known`]: its desktop was seen here or announced by another node, or it was
//! added from the page) and every id whose desktop is online, matched against the access's
//! patterns — then, as ids become known, the matchmaker seats the fleet connections that may see
//! them ([`Matchmaker::note_known`]). A changed access ([`Rescope`]) removes the watcher from what
//! it may no longer see (telling it `unwatched`) and adds it where it now may.
//!
//! Watchers are not viewers: they do not take viewer slots or count in `presence.viewers`, and
//! they send no commands. Each room keeps the watcher seats; this module keeps, per fleet
//! connection, which rooms it sits in, so leaving and rescoping touch only those.

use std::collections::HashSet;
use std::sync::Arc;

use actix::prelude::*;
use deskbridge_auth::Access;
use deskbridge_protocol::{
    forward_prefix, unix_millis, ClientId, ClientMode, Cpu, ServerMessage, Unwatched,
};

use super::messages::{DesktopSummary, Expect, ListDesktops, PeerUpdate, Rescope, Unwatch, Watch};
use super::room::{Member, Room};
use super::{welcome, Known, Matchmaker};
use crate::cluster::directory::{self, Listing};
use crate::cluster::link::Control;
use crate::outbox::{Outbox, SessionId};

/// A fleet connection as the matchmaker keeps it.
pub struct FleetMember {
    access: Access,
    outbox: Outbox,
    updates: Recipient<PeerUpdate>,
    /// The ids whose rooms hold this connection's watcher seat.
    watching: HashSet<ClientId>,
}

impl Matchmaker {
    /// The ids a fleet connection with `access` is shown: every known id and every id whose
    /// desktop is online here or elsewhere, that `access` may see.
    fn visible_ids(&self, access: &Access) -> Vec<ClientId> {
        let mut ids: Vec<ClientId> = self
            .known
            .keys()
            .chain(
                self.rooms
                    .iter()
                    .filter(|(_, room)| room.online())
                    .map(|(id, _)| id),
            )
            .filter(|id| access.may_see(id.as_str()))
            .cloned()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Seats fleet connection `session` as a watcher of `client_id` and greets it with the id's
    /// history and presence.
    fn add_watcher(&mut self, session: SessionId, client_id: &ClientId, ctx: &mut Context<Self>) {
        let Some(fleet) = self.fleets.get_mut(&session) else {
            return;
        };
        if !fleet.watching.insert(client_id.clone()) {
            return;
        }
        let prefix: Arc<str> = forward_prefix(client_id).into();
        let member = Member {
            outbox: fleet.outbox.forwarding(prefix),
            updates: fleet.updates.clone(),
            token: None,
        };
        let outbox = fleet.outbox.clone();
        let new_room = !self.rooms.contains_key(client_id);
        let room = self.room(client_id);
        room.watchers.push(member.clone());
        tell_desktop(room);
        let fetch = self.join_cluster(client_id, &member, ClientMode::Fleet, new_room, ctx);
        self.greet(client_id, ClientMode::Fleet, &outbox, fetch, ctx);
        self.audience_settled(client_id, ctx);
        self.update_rooms_gauge();
    }

    /// Takes fleet connection `session`'s watcher seat out of `client_id`'s room.
    fn remove_watcher(
        &mut self,
        session: SessionId,
        client_id: &ClientId,
        ctx: &mut Context<Self>,
    ) {
        let Some(room) = self.rooms.get_mut(client_id) else {
            return;
        };
        if !room.unseat_watcher(session) {
            return;
        }
        tell_desktop(room);
        if let Some(link) = &room.link {
            link.send(Control::Viewers(room.viewer_outboxes()));
        }
        if let Some(cluster) = &self.cluster {
            cluster.announce(room, false);
        }
        if room.is_empty() {
            self.remove_room(client_id);
        } else {
            self.audience_settled(client_id, ctx);
        }
        self.update_rooms_gauge();
    }

    /// `client_id`'s desktop was seen (here or on another node) or the id was added: if the relay
    /// did not know it, every fleet connection that may see it starts watching it.
    pub(super) fn note_known(&mut self, client_id: &ClientId, ctx: &mut Context<Self>) {
        self.note_known_as(client_id, false, ctx);
    }

    /// [`Self::note_known`]; `waiting` for an id added from the page, whose desktop has not
    /// connected yet. In cluster mode, an id this node learns of first hand (a desktop here, an
    /// id added here) is listed in the cluster's directory too.
    fn note_known_as(&mut self, client_id: &ClientId, waiting: bool, ctx: &mut Context<Self>) {
        self.learn(client_id, waiting, ctx);
        if let Some(cluster) = &self.cluster {
            let (seen, added) = if waiting {
                (&[][..], std::slice::from_ref(client_id))
            } else {
                (std::slice::from_ref(client_id), &[][..])
            };
            directory::publish(&cluster.node, seen, added, false);
        }
    }

    /// Records `client_id` as known (`waiting` if it was added and never seen): new to this relay,
    /// every fleet connection that may see it starts watching it; already known as waiting and now
    /// seen, it stops waiting.
    pub(super) fn learn(&mut self, client_id: &ClientId, waiting: bool, ctx: &mut Context<Self>) {
        if let Some(known) = self.known.get_mut(client_id) {
            if known.waiting && !waiting {
                known.waiting = false;
                if let Some(room) = self.rooms.get_mut(client_id) {
                    room.waiting = false;
                }
            }
            return;
        }
        self.remember(
            client_id,
            Known {
                reason: None,
                since: unix_millis(),
                waiting,
            },
        );
        let sessions: Vec<SessionId> = self
            .fleets
            .iter()
            .filter(|(_, f)| f.access.may_see(client_id.as_str()))
            .map(|(session, _)| *session)
            .collect();
        for session in sessions {
            self.add_watcher(session, client_id, ctx);
        }
    }
}

/// The desktop (if on this node) relays to its viewers and watchers: tell it the new list.
fn tell_desktop(room: &Room) {
    if let Some(desktop) = &room.desktop {
        desktop
            .updates
            .do_send(PeerUpdate::Viewers(room.viewer_outboxes()));
    }
}

impl Handler<Listing> for Matchmaker {
    type Result = ();

    /// Another node's directory listing: learn its ids; answer a query with everything known.
    fn handle(&mut self, listing: Listing, ctx: &mut Context<Self>) {
        for id in &listing.ids {
            self.learn(id, false, ctx);
        }
        for id in &listing.waiting {
            self.learn(id, true, ctx);
        }
        if listing.query {
            self.publish_directory(false);
        }
    }
}

impl Matchmaker {
    /// Cluster mode: lists every id this node knows in the directory; `query` asks the other
    /// nodes to do the same (after this node (re)connected to NATS).
    pub(super) fn publish_directory(&self, query: bool) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let (waiting, seen): (Vec<_>, Vec<_>) = self.known.iter().partition(|(_, k)| k.waiting);
        let ids = |list: Vec<(&ClientId, &Known)>| -> Vec<ClientId> {
            list.into_iter().map(|(id, _)| id.clone()).collect()
        };
        directory::publish(&cluster.node, &ids(seen), &ids(waiting), query);
    }
}

impl Handler<Watch> for Matchmaker {
    type Result = ();

    fn handle(&mut self, watch: Watch, ctx: &mut Context<Self>) {
        let session = watch.outbox.session();
        let hello = welcome(None, ClientMode::Fleet, Some(&watch.access));
        self.send_control(&watch.outbox, hello);
        let ids = self.visible_ids(&watch.access);
        self.fleets.insert(
            session,
            FleetMember {
                access: watch.access,
                outbox: watch.outbox,
                updates: watch.updates,
                watching: HashSet::new(),
            },
        );
        for id in &ids {
            self.add_watcher(session, id, ctx);
        }
        log::debug!("fleet session {session}: watching {} desktops", ids.len());
    }
}

impl Handler<Unwatch> for Matchmaker {
    type Result = ();

    fn handle(&mut self, unwatch: Unwatch, ctx: &mut Context<Self>) {
        let Some(fleet) = self.fleets.remove(&unwatch.session) else {
            return;
        };
        for id in &fleet.watching {
            self.remove_watcher(unwatch.session, id, ctx);
        }
    }
}

impl Handler<Rescope> for Matchmaker {
    type Result = ();

    fn handle(&mut self, rescope: Rescope, ctx: &mut Context<Self>) {
        let session = rescope.session;
        let now_visible = self.visible_ids(&rescope.access);
        let Some(fleet) = self.fleets.get_mut(&session) else {
            return;
        };
        let gone: Vec<ClientId> = fleet
            .watching
            .iter()
            .filter(|id| !rescope.access.may_see(id.as_str()))
            .cloned()
            .collect();
        fleet.access = rescope.access;
        for id in &fleet.watching.clone() {
            if gone.contains(id) {
                fleet.watching.remove(id);
            }
        }
        let outbox = fleet.outbox.clone();
        for id in gone {
            self.remove_watcher(session, &id, ctx);
            let frame = ServerMessage::Unwatched(Unwatched {
                client_id: id.clone(),
            });
            self.send_control(&outbox, frame.to_json().into());
        }
        for id in &now_visible {
            self.add_watcher(session, id, ctx);
        }
    }
}

impl Handler<ListDesktops> for Matchmaker {
    type Result = MessageResult<ListDesktops>;

    fn handle(&mut self, list: ListDesktops, _: &mut Context<Self>) -> Self::Result {
        let summaries = self
            .visible_ids(&list.access)
            .into_iter()
            .map(|id| match self.rooms.get(&id) {
                Some(room) => DesktopSummary {
                    online: room.online(),
                    since: room.since,
                    viewers: room.viewer_count(),
                    cpu: room.history.last().and_then(|frame| {
                        serde_json::from_str::<Cpu>(&frame).ok().map(|c| c.value)
                    }),
                    reason: room.offline_reason.filter(|_| !room.online()),
                    waiting: room.waiting && !room.online(),
                    id,
                },
                None => {
                    let known = self.known.get(&id).copied();
                    DesktopSummary {
                        online: false,
                        since: known.map_or(0, |k| k.since),
                        viewers: 0,
                        cpu: None,
                        reason: known.and_then(|k| k.reason),
                        waiting: known.is_some_and(|k| k.waiting),
                        id,
                    }
                }
            })
            .collect();
        MessageResult(summaries)
    }
}

impl Handler<Expect> for Matchmaker {
    type Result = ();

    fn handle(&mut self, expect: Expect, ctx: &mut Context<Self>) {
        let id = &expect.client_id;
        if self.known.contains_key(id) || self.rooms.get(id).is_some_and(Room::online) {
            return; // already there: adding it again changes nothing
        }
        if let Some(room) = self.rooms.get_mut(id) {
            // Viewers already wait for it: they hear it is expected.
            room.waiting = true;
            let presence = room.presence(id);
            for member in room.members() {
                super::send_control(&self.metrics, &member.outbox, presence.clone());
            }
        }
        self.note_known_as(id, true, ctx);
    }
}
