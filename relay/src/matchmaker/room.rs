//! One client id's pairing state: its desktop, its viewers, its history and since when the desktop
//! is online or offline — and in cluster mode, what the other nodes hold of the id.
//!
//! The pairing rules live here as plain Rust (who may take a viewer slot, which desktop is the
//! newest, which leave counts), generic over the [`Seat`] a session takes, so they are unit-tested
//! without actix or sockets. Telling sessions about it (`PeerUpdate`) is the matchmaker's part.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use actix::Recipient;
use bytestring::ByteString;
use deskbridge_protocol::{
    unix_millis, ClientId, DesktopState, OfflineReason, Presence, ServerMessage,
};
use governor::DefaultDirectRateLimiter;

use super::audience::{millis, AudienceState, Counts};
use super::book::CommandBook;
use super::coalesce::{Coalescer, PRESENCE_WINDOW};
use super::messages::{PeerUpdate, ViewerLimit};
use crate::cluster::link::RoomLink;
use crate::cluster::presence::RemoteNodes;
use crate::history::History;
use crate::limits::rate::bucket;
use crate::outbox::{Outbox, SessionId};

/// What the pairing rules need of a session: where its frames go and the token it came with.
pub trait Seat: Clone {
    fn outbox(&self) -> &Outbox;
    /// The `jti` of the token it joined with, for the per-token viewer limit.
    fn token(&self) -> Option<&str>;

    fn session(&self) -> SessionId {
        self.outbox().session()
    }
}

/// A registered session: how to send it frames and how to tell it about peer changes.
#[derive(Debug, Clone)]
pub struct Member {
    pub outbox: Outbox,
    pub updates: Recipient<PeerUpdate>,
    pub token: Option<String>,
}

impl Seat for Member {
    fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

pub struct Room<M = Member> {
    pub desktop: Option<M>,
    /// Kept in join order; a Vec because rooms hold a few viewers and the list is rebuilt into
    /// an `Arc<[Outbox]>` for the desktop on every change anyway.
    pub viewers: Vec<M>,
    /// Fleet connections watching this id from a grid: each holds a forwarding clone of its
    /// outbox, so the desktop's frames reach it wrapped in `forward`. Not counted as viewers;
    /// counted as the desktop's `overview` audience.
    pub watchers: Vec<M>,
    /// The id was added from the page and its desktop has not connected yet.
    pub waiting: bool,
    pub history: Arc<History>,
    /// When `desktop` last went online or offline, Unix ms.
    pub since: u64,
    /// Why the id's desktop went offline (its `going_away`, or `lost`), here or (cluster mode) as
    /// the node it left said; `None` for an id whose desktop this node has not seen go.
    pub offline_reason: Option<OfflineReason>,
    /// Cluster mode: why this node's own desktop went, for this node's announcements; `None`
    /// while it is here or once another node has the desktop.
    pub local_gone: Option<OfflineReason>,
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
    /// What the desktop was last told of its audience (`matchmaker/audience.rs`).
    pub audience: AudienceState,
    /// The (desktop online, viewers) last settled, to tell when presence changed.
    shown: (bool, u32),
    /// The commands of the last ten minutes and those waiting for the desktop (`book.rs`).
    pub book: CommandBook,
}

impl<M: Seat> Room<M> {
    pub fn new(history_len: usize, commands_per_second: u32) -> Self {
        Self {
            desktop: None,
            viewers: Vec::new(),
            watchers: Vec::new(),
            waiting: false,
            history: Arc::new(History::new(history_len)),
            since: unix_millis(),
            offline_reason: None,
            local_gone: None,
            commands: Arc::new(bucket(commands_per_second, commands_per_second)),
            desktop_epoch: 0,
            remote: RemoteNodes::default(),
            link: None,
            remote_viewers: Arc::new(AtomicBool::new(false)),
            next_announce: Instant::now(),
            presence_timer: Coalescer::new(PRESENCE_WINDOW),
            audience: AudienceState::default(),
            shown: (false, 0),
            book: CommandBook::default(),
        }
    }

    /// Seats a desktop that connected at `now` (Unix ms). The newest desktop wins: it replaces
    /// this node's (returned, to be told), and its connection time is made later than any desktop
    /// known on another node, so it is the newest even if that node's clock runs ahead.
    pub fn seat_desktop(&mut self, desktop: M, now: u64) -> Option<M> {
        self.offline_reason = None;
        self.waiting = false;
        self.local_gone = None;
        self.desktop_epoch = match self.remote.newest_desktop() {
            Some((at, _)) if at >= now => at + 1,
            _ => now,
        };
        self.desktop.replace(desktop)
    }

    /// A desktop session ended, saying why (`None`: it did not, so it was lost). Only the current
    /// desktop's leave counts: a replaced desktop leaves after its successor joined, and must not
    /// take the successor with it.
    pub fn unseat_desktop(&mut self, session: SessionId, reason: Option<OfflineReason>) -> bool {
        let current = self
            .desktop
            .as_ref()
            .is_some_and(|d| d.session() == session);
        if current {
            self.desktop = None;
            let reason = reason.unwrap_or(OfflineReason::Lost);
            self.offline_reason = Some(reason);
            self.local_gone = Some(reason);
        }
        current
    }

    /// Whether a viewer with `token` may take a seat: at most `per_id` viewers of the id (on every
    /// node, in cluster mode), and at most `per_token` of them with one token (on this node: see
    /// docs/architecture.md, "Limits that are per node"). Anonymous viewers count per id only.
    pub fn viewer_refusal(
        &self,
        token: Option<&str>,
        per_id: usize,
        per_token: usize,
    ) -> Option<ViewerLimit> {
        if self.viewer_count() as usize >= per_id {
            return Some(ViewerLimit::PerId(per_id));
        }
        token
            .filter(|jti| self.viewers_with_token(jti) >= per_token)
            .map(|_| ViewerLimit::PerToken(per_token))
    }

    /// A viewer session ended; whether it was one of this room's.
    pub fn unseat_viewer(&mut self, session: SessionId) -> bool {
        let before = self.viewers.len();
        self.viewers.retain(|v| v.session() != session);
        self.viewers.len() != before
    }

    /// A fleet connection stopped watching; whether it was watching this id.
    pub fn unseat_watcher(&mut self, session: SessionId) -> bool {
        let before = self.watchers.len();
        self.watchers.retain(|w| w.session() != session);
        self.watchers.len() != before
    }

    /// Whether a desktop of the id is connected to this node or (cluster mode) to any other.
    pub fn online(&self) -> bool {
        self.desktop.is_some() || self.remote.has_desktop()
    }

    /// Viewers of the id on this node and (cluster mode) all others.
    pub fn viewer_count(&self) -> u32 {
        self.viewers.len() as u32 + self.remote.viewers()
    }

    /// Cluster mode: whether another node has viewers or fleet watchers of the id, so this
    /// node's desktop forwards its telemetry there.
    pub fn remote_audience(&self) -> bool {
        self.remote.viewers() + self.remote.watchers() > 0
    }

    /// Who watches the desktop, over every node: viewers (detail) and grid watchers (overview).
    pub fn audience_counts(&self) -> Counts {
        Counts {
            detail: self.viewer_count(),
            overview: self.watchers.len() as u32 + self.remote.watchers(),
        }
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

    /// Nobody of the id is here and no command of this node's waits or awaits its answer: the
    /// room may go.
    pub fn is_empty(&self) -> bool {
        self.desktop.is_none()
            && self.viewers.is_empty()
            && self.watchers.is_empty()
            && !self.book.has_open()
    }

    /// Viewers on this node that joined with token `jti`. A token opens one id only, so the
    /// room's own list is all there is to count.
    pub fn viewers_with_token(&self, jti: &str) -> usize {
        self.viewers
            .iter()
            .filter(|v| v.token() == Some(jti))
            .count()
    }

    /// Where the desktop's frames go: every viewer and every fleet watcher.
    pub fn viewer_outboxes(&self) -> Arc<[Outbox]> {
        self.viewers
            .iter()
            .chain(self.watchers.iter())
            .map(|v| v.outbox().clone())
            .collect()
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
            reason: self.offline_reason.filter(|_| !self.online()),
            waiting: self.waiting && !self.online(),
            interval_ms: self
                .online()
                .then(|| millis(self.audience.interval(self.audience_counts()))),
        })
        .to_json()
        .into()
    }

    /// Everyone in the room.
    pub fn members(&self) -> impl Iterator<Item = &M> {
        self.desktop
            .iter()
            .chain(self.viewers.iter())
            .chain(self.watchers.iter())
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
            watchers: 0,
            query: false,
            gone: None,
        }
    }

    #[test]
    fn presence_merges_other_nodes_and_moves_since_only_when_the_desktop_comes_or_goes() {
        let id = ClientId::new("r").unwrap();
        let mut room: Room = Room::new(3, 5);
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

    /// A seat without actix: an outbox and a token.
    #[derive(Debug, Clone)]
    struct TestSeat {
        outbox: Outbox,
        token: Option<String>,
    }

    impl Seat for TestSeat {
        fn outbox(&self) -> &Outbox {
            &self.outbox
        }

        fn token(&self) -> Option<&str> {
            self.token.as_deref()
        }
    }

    fn seat(session: SessionId, token: Option<&str>) -> TestSeat {
        TestSeat {
            outbox: Outbox::new(session, 4, 4).0,
            token: token.map(str::to_owned),
        }
    }

    #[test]
    fn a_new_desktop_replaces_the_old_and_the_old_ones_leave_does_not_unseat_it() {
        let mut room: Room<TestSeat> = Room::new(3, 5);
        assert!(room.seat_desktop(seat(1, None), 1000).is_none());
        let replaced = room
            .seat_desktop(seat(2, None), 2000)
            .expect("the old desktop");
        assert_eq!(replaced.session(), 1);
        assert!(
            !room.unseat_desktop(1, Some(OfflineReason::Quit)),
            "the replaced desktop's leave is ignored"
        );
        assert_eq!(room.desktop.as_ref().map(Seat::session), Some(2));
        assert_eq!(room.offline_reason, None);
        assert!(room.unseat_desktop(2, None));
        assert_eq!(
            room.offline_reason,
            Some(OfflineReason::Lost),
            "no word: lost"
        );
        assert!(room.is_empty());
    }

    #[test]
    fn a_desktop_seated_here_is_newer_than_any_known_elsewhere_even_with_a_fast_clock() {
        let mut room: Room<TestSeat> = Room::new(3, 5);
        let later = Instant::now() + Duration::from_secs(30);
        room.remote.apply(&desktop_on("b", 1, Some(5000), 0), later);
        room.seat_desktop(seat(1, None), 4000); // our clock is behind node b's
        assert_eq!(room.desktop_epoch, 5001);
        room.seat_desktop(seat(2, None), 9000);
        assert_eq!(room.desktop_epoch, 9000);
    }

    #[test]
    fn viewer_slots_are_limited_per_id_and_per_token_and_freed_on_leave() {
        let mut room: Room<TestSeat> = Room::new(3, 5);
        for session in 1..=2 {
            assert_eq!(room.viewer_refusal(Some("t"), 4, 2), None);
            room.viewers.push(seat(session, Some("t")));
        }
        assert_eq!(
            room.viewer_refusal(Some("t"), 4, 2),
            Some(ViewerLimit::PerToken(2))
        );
        assert_eq!(room.viewer_refusal(Some("other"), 4, 2), None);
        assert_eq!(
            room.viewer_refusal(None, 4, 2),
            None,
            "anonymous: per id only"
        );
        room.viewers.push(seat(3, None));
        room.viewers.push(seat(4, Some("other")));
        assert_eq!(
            room.viewer_refusal(Some("new"), 4, 2),
            Some(ViewerLimit::PerId(4))
        );
        // Viewers on other nodes count towards the id's limit.
        assert!(room.unseat_viewer(4));
        assert!(!room.unseat_viewer(4), "left already");
        let later = Instant::now() + Duration::from_secs(30);
        room.remote.apply(&desktop_on("b", 1, None, 1), later);
        assert_eq!(room.viewer_refusal(None, 4, 2), Some(ViewerLimit::PerId(4)));
    }

    #[test]
    fn presence_says_why_the_desktop_is_offline_and_nothing_while_it_is_online() {
        let id = ClientId::new("why").unwrap();
        let mut room: Room<TestSeat> = Room::new(3, 5);
        let shown = |room: &Room<TestSeat>| -> serde_json::Value {
            serde_json::from_str(&room.presence(&id)).unwrap()
        };
        assert!(
            shown(&room).get("reason").is_none(),
            "never seen: no reason"
        );
        room.seat_desktop(seat(1, None), 1);
        assert!(shown(&room).get("reason").is_none());
        room.unseat_desktop(1, Some(OfflineReason::Sleep));
        assert_eq!(shown(&room)["reason"], "sleep");
        room.seat_desktop(seat(2, None), 2);
        assert!(
            shown(&room).get("reason").is_none(),
            "back: the reason is gone"
        );
        room.unseat_desktop(2, None);
        assert_eq!(shown(&room)["reason"], "lost");
    }
}
