//! One client id's pairing state: its desktop, its viewers, its history and since when the desktop
//! is online or offline — and in cluster mode, what the other nodes hold of the id.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use actix::Recipient;
use bytestring::ByteString;
use deskbridge_protocol::{unix_millis, ClientId, DesktopState, Presence, ServerMessage};
use governor::DefaultDirectRateLimiter;

use super::coalesce::{Coalescer, PRESENCE_WINDOW};
use super::messages::{DesktopRoute, PeerUpdate};
use crate::cluster::link::RoomLink;
use crate::cluster::presence::RemoteNodes;
use crate::history::History;
use crate::limits::rate::bucket;
use crate::outbox::{Outbox, SessionId};

/// A registered session: how to send it frames and how to tell it about peer changes.
#[derive(Debug, Clone)]
pub struct Member {
    pub outbox: Outbox,
    pub updates: Recipient<PeerUpdate>,
    /// The `jti` of the token it joined with, for the per-token viewer limit.
    pub token: Option<String>,
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
    /// When the local desktop connected, Unix ms (made later than any desktop known elsewhere),
    /// to decide which desktop is the newest across nodes.
    pub desktop_epoch: u64,
    /// Cluster mode: what other nodes announced for this id; empty otherwise.
    pub remote: RemoteNodes,
    /// Cluster mode: the task holding this id's NATS subscriptions.
    pub link: Option<RoomLink>,
    /// Cluster mode: whether another node has viewers, so the desktop forwards telemetry.
    pub remote_viewers: Arc<AtomicBool>,
    /// Cluster mode: when to announce this node's state for the id again.
    pub next_announce: Instant,
    /// When `presence` was last broadcast and whether a broadcast is scheduled.
    pub presence_timer: Coalescer,
    /// The (desktop online, viewers) last settled, to tell when presence changed.
    shown: (bool, u32),
    /// The desktop's route the viewers were last told, to tell them only of changes.
    route: DesktopRoute,
}

impl Room {
    pub fn new(history_len: usize, commands_per_second: u32) -> Self {
        Self {
            desktop: None,
            viewers: Vec::new(),
            history: Arc::new(History::new(history_len)),
            since: unix_millis(),
            commands: Arc::new(bucket(commands_per_second, commands_per_second)),
            desktop_epoch: 0,
            remote: RemoteNodes::default(),
            link: None,
            remote_viewers: Arc::new(AtomicBool::new(false)),
            next_announce: Instant::now(),
            presence_timer: Coalescer::new(PRESENCE_WINDOW),
            shown: (false, 0),
            route: DesktopRoute::Unknown,
        }
    }

    /// Where the desktop is: here, on another node (cluster mode), or nowhere known.
    pub fn desktop_route(&self) -> DesktopRoute {
        match &self.desktop {
            Some(desktop) => DesktopRoute::Local(desktop.outbox.clone()),
            None if self.remote.has_desktop() => DesktopRoute::Remote,
            None => DesktopRoute::Unknown,
        }
    }

    /// After any change of the desktop (here or elsewhere): tells this node's viewers its new
    /// route, if it changed. Returns whether it did.
    pub fn reroute(&mut self) -> bool {
        let route = self.desktop_route();
        if route == self.route {
            return false;
        }
        for viewer in &self.viewers {
            viewer.updates.do_send(PeerUpdate::Desktop(route.clone()));
        }
        self.route = route;
        true
    }

    /// Whether a desktop of the id is connected to this node or (cluster mode) to any other.
    pub fn online(&self) -> bool {
        self.desktop.is_some() || self.remote.has_desktop()
    }

    /// Viewers of the id on this node and (cluster mode) all others.
    pub fn viewer_count(&self) -> u32 {
        self.viewers.len() as u32 + self.remote.viewers()
    }

    /// Takes note of the current state after a change: moves `since` when the desktop came or
    /// went (to when the newest desktop connected, or to now), and says whether `presence` differs
    /// from the last settled one.
    pub fn settle(&mut self) -> bool {
        let now = (self.online(), self.viewer_count());
        if now.0 != self.shown.0 {
            self.since = if now.0 {
                let local = self.desktop.as_ref().map(|_| self.desktop_epoch);
                let remote = self.remote.newest_desktop().map(|(at, _)| at);
                local.max(remote).unwrap_or_else(unix_millis)
            } else {
                unix_millis()
            };
        }
        let changed = now != self.shown;
        self.shown = now;
        changed
    }

    pub fn is_empty(&self) -> bool {
        self.desktop.is_none() && self.viewers.is_empty()
    }

    /// Viewers on this node that joined with token `jti`. A token opens one id only, so the
    /// room's own list is all there is to count.
    pub fn viewers_with_token(&self, jti: &str) -> usize {
        self.viewers
            .iter()
            .filter(|v| v.token.as_deref() == Some(jti))
            .count()
    }

    pub fn viewer_outboxes(&self) -> Arc<[Outbox]> {
        self.viewers.iter().map(|v| v.outbox.clone()).collect()
    }

    /// The current `presence` message.
    pub fn presence(&self, client_id: &ClientId) -> ByteString {
        let state = if self.online() {
            DesktopState::Online
        } else {
            DesktopState::Offline
        };
        ServerMessage::Presence(Presence {
            client_id: client_id.clone(),
            desktop: state,
            viewers: self.viewer_count(),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cluster::announce::Announcement;

    fn desktop_on(node: &str, seq: u64, at: Option<u64>, viewers: u32) -> Announcement {
        Announcement {
            node: node.into(),
            seq,
            desktop: at,
            viewers,
            query: false,
        }
    }

    #[test]
    fn presence_merges_other_nodes_and_moves_since_only_when_the_desktop_comes_or_goes() {
        let id = ClientId::new("r").unwrap();
        let mut room = Room::new(3, 5);
        let later = Instant::now() + Duration::from_secs(30);
        assert!(!room.settle(), "nothing changed yet");

        room.remote.apply(&desktop_on("b", 1, Some(1234), 2), later);
        assert!(room.settle());
        assert_eq!(room.since, 1234, "since = when that desktop connected");
        let presence: serde_json::Value = serde_json::from_str(&room.presence(&id)).unwrap();
        assert_eq!(presence["desktop"], "online");
        assert_eq!(presence["viewers"], 2);

        // More viewers elsewhere: presence changes, since does not.
        room.remote.apply(&desktop_on("c", 1, None, 1), later);
        assert!(room.settle());
        assert_eq!(room.since, 1234);
        assert_eq!(room.viewer_count(), 3);

        // Node b falls silent: its desktop and viewers stop counting.
        room.remote
            .apply(&desktop_on("b", 2, Some(1234), 2), Instant::now());
        assert!(room
            .remote
            .expire(Instant::now() + Duration::from_millis(1)));
        assert!(room.settle());
        assert!(!room.online());
        assert!(room.since > 1234);
        assert_eq!(room.viewer_count(), 1);
    }

    #[test]
    fn the_route_follows_the_desktop_here_elsewhere_and_gone() {
        let mut room = Room::new(3, 5);
        let later = Instant::now() + Duration::from_secs(30);
        assert_eq!(room.desktop_route(), DesktopRoute::Unknown);
        assert!(!room.reroute(), "nothing to tell yet");

        room.remote.apply(&desktop_on("b", 1, Some(1234), 0), later);
        assert_eq!(room.desktop_route(), DesktopRoute::Remote);
        assert!(room.reroute());
        assert!(!room.reroute(), "told once");

        // Another announcement of the same desktop changes nothing for the viewers.
        room.remote.apply(&desktop_on("b", 2, Some(1234), 1), later);
        assert!(!room.reroute());

        // The desktop leaves node b: no node has it any more.
        room.remote.apply(&desktop_on("b", 3, None, 1), later);
        assert_eq!(room.desktop_route(), DesktopRoute::Unknown);
        assert!(room.reroute());
    }
}
