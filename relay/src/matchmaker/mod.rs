//! The matchmaker: the one actor that knows which sessions belong to which client id.
//!
//! It pairs a desktop with its viewers when they join, tells each side when the other comes or
//! goes, and sends `welcome`, `history` and `presence`. It is deliberately off the per-message
//! path: sessions learn their peers' outboxes from it and then relay directly.
//!
//! `presence` goes to a joining session at once (its greeting) and to everyone else of the id
//! through the room's [`coalesce::Coalescer`]: at most one broadcast per id per window, always
//! ending on the true state, whatever changed it (joins, leaves, other nodes' announcements).
//!
//! In cluster mode it also keeps, per id, what the other nodes announced (merged into
//! `presence`), announces this node's state, enforces "the newest desktop wins" across nodes,
//! and starts or stops the id's NATS link as the node starts or stops holding the id.

mod audience;
mod book;
mod coalesce;
mod commands;
mod fleet;
mod known_file;
pub mod messages;
mod room;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytestring::ByteString;
use deskbridge_protocol::{
    ClientId, ClientMode, OfflineReason, ServerMessage, Welcome, PROTOCOL_VERSION,
};

use crate::cluster::announce::Announcement;
use crate::cluster::link::{Control, LinkParts, RemoteState, RoomLink};
use crate::cluster::presence::newer;
use crate::cluster::remote::{fetch_history, DesktopLink, FetchedHistory};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, SendError, SessionId};
use crate::store::Store;
use audience::{AudienceState, ReportIntervals, Step};
use coalesce::Decision;
use deskbridge_auth::Access;
use known_file::KnownFile;
use messages::{Join, JoinRefused, Leave, LeaveCluster, PeerUpdate, Peers};
use room::{Member, Room, Seat};

/// `deskbridge-relay/<version>`, announced in `welcome`.
pub const SERVER_NAME: &str = concat!("deskbridge-relay/", env!("CARGO_PKG_VERSION"));

pub struct Matchmaker {
    rooms: HashMap<ClientId, Room>,
    max_viewers: usize,
    /// Viewers one token may have open on this node at once, so one token cannot take every slot.
    max_viewers_per_token: usize,
    history_len: usize,
    commands_per_second: u32,
    metrics: Arc<Metrics>,
    cluster: Option<ClusterSide>,
    /// Names scheduled `presence` broadcasts; never reused (see [`coalesce::Coalescer::changed`]).
    presence_tickets: u64,
    /// Every id whose desktop this relay has seen (here, or announced by another node) or that
    /// was added from the page: what the fleet grid and `/api/desktops` list. For an id with no
    /// room any more it also says why and since when its desktop went offline, so a viewer who
    /// comes back later still reads "asleep since 22:10" rather than nothing. Bounded by
    /// [`MAX_KNOWN`].
    known: HashMap<ClientId, Known>,
    /// The fleet connections, by session: what each may see and which ids it watches.
    fleets: HashMap<SessionId, fleet::FleetMember>,
    /// The command books of ids with no room now, so a viewer who comes back within ten
    /// minutes still sees them; swept with the rooms' books.
    parked_books: HashMap<ClientId, book::CommandBook>,
    /// The ids whose room's book may hold commands (a superset): all the sweep looks at.
    booked: HashSet<ClientId>,
    /// Where every command's life ends: one audit record each.
    store: Store,
    /// With `--data-dir`: where [`Self::known`] outlives a restart.
    known_file: Option<KnownFile>,
    /// Desktops the last run's `known.json` says were connected when it was written: their
    /// departure (`lost`, since then) goes to the store once, on start, so a chart's gap after a
    /// crash says why.
    cut_off: Vec<(ClientId, u64)>,
    /// How often desktops are asked to report, by who watches them.
    report_intervals: ReportIntervals,
}

/// What the relay remembers of a known id while it has no room (see [`Matchmaker::known`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Known {
    /// Why its desktop went offline; `None` while it never connected (added, waiting).
    reason: Option<OfflineReason>,
    /// Since when it is in that state, Unix ms.
    since: u64,
    /// Added from the page; its desktop has not connected yet.
    waiting: bool,
}

/// How many ids the matchmaker remembers: a few MB at most, far more ids than one node holds.
const MAX_KNOWN: usize = 100_000;

/// The matchmaker's part in cluster mode.
struct ClusterSide {
    node: Arc<Cluster>,
    /// How often each held id is announced even without a change (the heartbeat interval).
    announce_every: Duration,
    /// How long another node's announcement counts (the client timeout): a node that died or
    /// lost NATS stops counting after this, as a silent client would.
    expiry: Duration,
}

impl ClusterSide {
    /// Tells the other nodes holding `client_id` what this node has of it.
    fn announce(&self, room: &mut Room, query: bool) {
        let Some(link) = &room.link else {
            return;
        };
        let announcement = Announcement {
            node: self.node.node_id().to_owned(),
            seq: self.node.next_seq(),
            desktop: room.desktop.as_ref().map(|_| room.desktop_epoch),
            viewers: room.viewers.len() as u32,
            watchers: room.watchers.len() as u32,
            query,
            gone: room.local_gone,
        };
        link.send(Control::Announce(announcement.encode()));
        room.next_announce = Instant::now() + self.announce_every;
    }

    /// An announcement that this node holds nothing of the id any more.
    fn farewell(&self, room: &Room) {
        if let Some(link) = &room.link {
            let announcement = Announcement {
                node: self.node.node_id().to_owned(),
                seq: self.node.next_seq(),
                desktop: None,
                viewers: 0,
                watchers: 0,
                query: false,
                gone: room.local_gone,
            };
            link.send(Control::Announce(announcement.encode()));
        }
    }
}

impl Matchmaker {
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Self {
        let known_file = config.data_dir.as_deref().map(KnownFile::in_dir);
        let loaded: Vec<_> = known_file.iter().flat_map(KnownFile::load).collect();
        let cut_off = loaded
            .iter()
            .filter(|e| e.cut)
            .map(|e| (e.id.clone(), e.since))
            .collect();
        let known = loaded
            .into_iter()
            .map(|e| {
                let known = Known {
                    reason: e.reason,
                    since: e.since,
                    waiting: e.waiting,
                };
                (e.id, known)
            })
            .collect();
        Self {
            known_file,
            cut_off,
            rooms: HashMap::new(),
            max_viewers: config.max_viewers_per_id,
            max_viewers_per_token: config.max_viewers_per_token,
            history_len: config.history_len,
            commands_per_second: config.commands_per_second,
            metrics,
            cluster: None,
            presence_tickets: 0,
            known,
            fleets: HashMap::new(),
            parked_books: HashMap::new(),
            booked: HashSet::new(),
            store: Store::disabled(),
            report_intervals: ReportIntervals::from_config(config),
        }
    }

    /// Records the departures a stop the relay could not see through left unrecorded (see
    /// [`Self::cut_off`]). One relay only: in a cluster the desktop may have been connected to
    /// another node all along, which would then never record it back.
    fn record_cut_off(&mut self) {
        let cut_off = std::mem::take(&mut self.cut_off);
        if self.cluster.is_none() {
            for (id, since) in cut_off {
                self.store
                    .presence_at(&id, Some(OfflineReason::Lost), since);
            }
        }
    }

    /// Records each command's end in `store`'s audit log.
    pub fn with_store(mut self, store: Store) -> Self {
        self.store = store;
        self
    }

    /// Cluster mode: pairs across the nodes joined by `node`.
    pub fn with_cluster(mut self, config: &Config, node: Arc<Cluster>) -> Self {
        self.cluster = Some(ClusterSide {
            node,
            announce_every: config.heartbeat_interval,
            expiry: config.client_timeout,
        });
        self
    }

    /// Queues a control frame (welcome, history, presence); a client too stuck to take even those
    /// is counted and logged, and will be dropped by its heartbeat.
    fn send_control(&self, outbox: &Outbox, frame: ByteString) {
        send_control(&self.metrics, outbox, frame);
    }

    /// `client_id`'s presence changed (and was settled): tells everyone of the id but `skip` (a
    /// session that just joined and gets its own greeting), now or at the end of the window.
    fn presence_changed(
        &mut self,
        client_id: &ClientId,
        skip: Option<SessionId>,
        ctx: &mut Context<Self>,
    ) {
        let Some(room) = self.rooms.get_mut(client_id) else {
            return;
        };
        if room.members().all(|m| Some(m.session()) == skip) {
            return; // nobody to tell; a broadcast to no one must not hold back the next one
        }
        self.presence_tickets += 1;
        match room
            .presence_timer
            .changed(Instant::now(), self.presence_tickets)
        {
            Decision::Now => broadcast_presence(&self.metrics, client_id, room, skip),
            Decision::Later { after, ticket } => {
                let client_id = client_id.clone();
                ctx.run_later(after, move |act, _| act.presence_due(&client_id, ticket));
            }
            Decision::Pending => {}
        }
    }

    /// A scheduled `presence` broadcast is due: sends the room's state as it is now.
    fn presence_due(&mut self, client_id: &ClientId, ticket: u64) {
        let Some(room) = self.rooms.get_mut(client_id) else {
            return; // the room is gone, and with it everyone to tell
        };
        if room.presence_timer.due(ticket, Instant::now()) {
            broadcast_presence(&self.metrics, client_id, room, None);
        }
    }

    /// The audience of `client_id` may have changed: tells its desktop here, now or at the end
    /// of the window (`audience.rs` decides), and keeps `/metrics` current. Call it wherever
    /// presence settles, before an emptied room is removed.
    pub(super) fn audience_settled(&mut self, client_id: &ClientId, ctx: &mut Context<Self>) {
        let Some(room) = self.rooms.get_mut(client_id) else {
            return;
        };
        self.presence_tickets += 1;
        let (desktop, counts) = (
            room.desktop.as_ref().map(Seat::session),
            room.audience_counts(),
        );
        let step = room
            .audience
            .settle(desktop, counts, Instant::now(), self.presence_tickets);
        self.audience_step(client_id, step, ctx);
    }

    /// Carries out what [`AudienceState`] decided.
    fn audience_step(&self, client_id: &ClientId, step: Step, ctx: &mut Context<Self>) {
        if let Some(class) = step.left {
            self.metrics.desktops_by_interval(class).dec();
        }
        if let Some(class) = step.entered {
            self.metrics.desktops_by_interval(class).inc();
        }
        if let (Some(frame), Some(room)) = (step.send, self.rooms.get(client_id)) {
            if let Some(desktop) = room.desktop.as_ref() {
                self.metrics.audience_changes().inc();
                self.send_control(&desktop.outbox, frame);
                // The session enforces the timeout the frame just announced.
                let timeout = room.audience.timeout(room.audience_counts());
                desktop.updates.do_send(PeerUpdate::Timeout(timeout));
            }
        }
        if let Some((after, ticket)) = step.schedule {
            let client_id = client_id.clone();
            ctx.run_later(after, move |act, ctx| {
                let Some(room) = act.rooms.get_mut(&client_id) else {
                    return;
                };
                let (desktop, counts) = (
                    room.desktop.as_ref().map(Seat::session),
                    room.audience_counts(),
                );
                let step = room.audience.due(ticket, Instant::now(), desktop, counts);
                act.audience_step(&client_id, step, ctx);
            });
        }
    }

    fn update_rooms_gauge(&self) {
        self.metrics.client_ids().set(self.rooms.len() as i64);
    }

    /// Cluster mode: another node's announcement for `client_id`. `skip` is a viewer that gets its
    /// first presence separately.
    fn apply_remote(
        &mut self,
        client_id: &ClientId,
        announcement: Announcement,
        skip: Option<SessionId>,
        ctx: &mut Context<Self>,
    ) {
        if self.cluster.is_none() {
            return;
        }
        if announcement.desktop.is_some() {
            // Second hand: the desktop's node listed it in the directory itself.
            self.learn(client_id, false, ctx);
        }
        let (Some(cluster), Some(room)) = (&self.cluster, self.rooms.get_mut(client_id)) else {
            return; // not held here (any more)
        };
        let expires = Instant::now() + cluster.expiry;
        let was_online = room.online();
        if !room.remote.apply(&announcement, expires) {
            return; // older than what that node already said
        }
        if let Some(reason) = announcement.gone {
            room.offline_reason = Some(reason);
        } else if was_online && !room.online() {
            room.offline_reason = Some(OfflineReason::Lost);
        }
        if room.remote.has_desktop() {
            // Our desktop's departure is old news once another node has one.
            room.local_gone = None;
        }
        let mut announce = announcement.query;
        if let (Some(_), Some(theirs)) = (&room.desktop, announcement.desktop) {
            // Two desktops for one id: the newest wins, on every node alike.
            announce = true;
            let ours = (room.desktop_epoch, cluster.node.node_id());
            if newer((theirs, &announcement.node), ours) {
                if let Some(old) = room.desktop.take() {
                    log::info!(
                        "desktop {client_id} replaced: a newer connection on node {} takes over from session {}",
                        announcement.node,
                        old.session()
                    );
                    old.updates.do_send(PeerUpdate::Replaced);
                }
                if let Some(link) = &room.link {
                    link.send(Control::Desktop(None));
                }
            }
        }
        room.remote_viewers
            .store(room.remote_audience(), Ordering::Relaxed);
        self.audience_settled(client_id, ctx);
        let (Some(cluster), Some(room)) = (&self.cluster, self.rooms.get_mut(client_id)) else {
            return;
        };
        if room.is_empty() {
            // Our desktop was replaced and no viewer is here: this node holds nothing now.
            cluster.farewell(room);
            self.rooms.remove(client_id);
            self.update_rooms_gauge();
            return;
        }
        if announce {
            cluster.announce(room, false);
        }
        if room.settle() {
            self.presence_changed(client_id, skip, ctx);
        }
    }

    /// Cluster mode: a viewer that joined without a desktop on this node gets the history from the
    /// desktop's node (or this node's own), then its first presence.
    fn history_fetched(
        &mut self,
        client_id: ClientId,
        viewer: Outbox,
        fetched: Option<FetchedHistory>,
        ctx: &mut Context<Self>,
    ) {
        let message = fetched.map(|f| {
            if let Some(state) = f.state {
                self.apply_remote(&client_id, state, Some(viewer.session()), ctx);
            }
            f.message
        });
        let Some(room) = self.rooms.get(&client_id) else {
            return;
        };
        if !room.members().any(|m| m.session() == viewer.session()) {
            return; // it left meanwhile
        }
        let history = message.unwrap_or_else(|| room.history.to_message(&client_id));
        self.finish_greeting(&client_id, &viewer, Some(history));
    }

    /// Cluster mode: forgets nodes gone silent and announces ids due for it.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let now = Instant::now();
        let mut changed = Vec::new();
        let mut expired = Vec::new();
        for (client_id, room) in self.rooms.iter_mut() {
            let was_online = room.online();
            if room.remote.expire(now) {
                expired.push(client_id.clone());
                if was_online && !room.online() {
                    // The node that had the desktop went silent: nobody said why.
                    room.offline_reason = Some(OfflineReason::Lost);
                }
                room.remote_viewers
                    .store(room.remote_audience(), Ordering::Relaxed);
                if room.settle() {
                    changed.push(client_id.clone());
                }
            }
            if room.next_announce <= now {
                cluster.announce(room, false);
            }
        }
        for client_id in changed {
            self.presence_changed(&client_id, None, ctx);
        }
        for client_id in expired {
            self.audience_settled(&client_id, ctx);
        }
    }
}

/// See [`Matchmaker::send_control`].
fn send_control(metrics: &Metrics, outbox: &Outbox, frame: ByteString) {
    if let Err(SendError::Full(reason)) = outbox.send_text(frame) {
        metrics.messages_dropped(reason).inc();
        log::warn!(
            "session {} is not reading; a control message to it was dropped",
            outbox.session()
        );
    }
}

/// Sends the room's `presence` to every member but `skip`.
fn broadcast_presence(
    metrics: &Metrics,
    client_id: &ClientId,
    room: &Room,
    skip: Option<SessionId>,
) {
    let presence = room.presence(client_id);
    for member in room.members() {
        if Some(member.session()) != skip {
            send_control(metrics, &member.outbox, presence.clone());
        }
    }
}

/// Cluster mode: NATS (re)connected.
#[derive(Message)]
#[rtype(result = "()")]
struct Reconnected;

impl Actor for Matchmaker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Joins and leaves come in bursts after a restart; do not make sessions wait on a
        // mailbox of the default size.
        ctx.set_mailbox_capacity(usize::MAX >> 1);
        ctx.run_interval(commands::SWEEP_EVERY, |act, _| act.sweep_books());
        self.record_cut_off();
        if self.known_file.is_some() {
            ctx.run_interval(known_file::SAVE_EVERY, |act, _| {
                if let Some((path, text)) = act.known_snapshot() {
                    actix_web::rt::task::spawn_blocking(move || known_file::write(&path, &text));
                }
            });
        }
        if let Some(cluster) = &self.cluster {
            let every = (cluster.announce_every / 4).max(Duration::from_millis(20));
            ctx.run_interval(every, |act, ctx| act.tick(ctx));
            crate::cluster::directory::listen(cluster.node.clone(), ctx.address().recipient());
            if let Some(connected) = cluster.node.take_connected() {
                let stream = futures_util::stream::unfold(connected, |mut rx| async move {
                    rx.recv().await.map(|()| (Reconnected, rx))
                });
                ctx.add_message_stream(stream);
            }
        }
    }
}

impl Handler<Reconnected> for Matchmaker {
    type Result = ();

    /// Everything this node holds is news to nodes that lost track during the outage, and
    /// everything they hold is news to us: announce all, asking them to answer.
    fn handle(&mut self, _: Reconnected, _: &mut Context<Self>) {
        if let Some(cluster) = &self.cluster {
            for room in self.rooms.values_mut() {
                cluster.announce(room, true);
            }
        }
        self.publish_directory(true);
    }
}

/// The `welcome` of a session: for viewers and fleet connections, with the role and the name the
/// relay takes them by, so a page offers only what the role may do.
fn welcome(client_id: Option<&ClientId>, mode: ClientMode, access: Option<&Access>) -> ByteString {
    ServerMessage::Welcome(Welcome {
        client_id: client_id.cloned(),
        client_mode: mode,
        protocol: PROTOCOL_VERSION,
        server: SERVER_NAME.to_owned(),
        role: access.map(|a| a.role),
        by: access.map(|a| a.by.clone()),
    })
    .to_json()
    .into()
}

impl Handler<Join> for Matchmaker {
    type Result = Result<Peers, JoinRefused>;

    /// Seats the session by its room's rules, links the id into the cluster, greets the session,
    /// and tells everyone else of the id.
    fn handle(&mut self, join: Join, ctx: &mut Context<Self>) -> Self::Result {
        if join.mode == ClientMode::Desktop {
            if let Some(file) = &mut self.known_file {
                file.touch();
            }
            // A desktop seen for the first time: the fleet connections that may see it start
            // watching before it is seated, so its first frames reach them too.
            self.note_known(&join.client_id, ctx);
        }
        let new_room = !self.rooms.contains_key(&join.client_id);
        let member = Member {
            outbox: join.outbox,
            updates: join.updates,
            token: join.token,
        };
        let peers = match join.mode {
            ClientMode::Desktop => self.seat_desktop(&join.client_id, member.clone()),
            ClientMode::Web | ClientMode::Fleet => {
                self.seat_viewer(&join.client_id, member.clone())?
            }
        };
        let fetch = self.join_cluster(&join.client_id, &member, join.mode, new_room, ctx);
        let changed = self
            .rooms
            .get_mut(&join.client_id)
            .is_some_and(Room::settle);
        let hello = welcome(Some(&join.client_id), join.mode, join.access.as_ref());
        self.send_control(&member.outbox, hello);
        self.greet(&join.client_id, join.mode, &member.outbox, fetch, ctx);
        if changed {
            self.presence_changed(&join.client_id, Some(member.session()), ctx);
        }
        if join.mode == ClientMode::Desktop {
            // After its welcome: what waited for it is delivered now.
            self.deliver_waiting(&join.client_id, ctx);
        }
        self.audience_settled(&join.client_id, ctx);
        self.update_rooms_gauge();
        Ok(peers)
    }
}

impl Matchmaker {
    /// The room of `client_id`, made if it has none yet (knowing why its desktop left, if this
    /// node saw it leave, and whether it waits for its first connection).
    fn room(&mut self, client_id: &ClientId) -> &mut Room {
        let (history_len, rate) = (self.history_len, self.commands_per_second);
        let intervals = self.report_intervals;
        let known = &self.known;
        let parked = &mut self.parked_books;
        let booked = &mut self.booked;
        self.rooms.entry(client_id.clone()).or_insert_with(|| {
            let mut room = Room::new(history_len, rate);
            room.book = parked.remove(client_id).unwrap_or_default();
            if !room.book.is_empty() {
                booked.insert(client_id.clone());
            }
            room.audience = AudienceState::new(intervals);
            if let Some(k) = known.get(client_id) {
                room.offline_reason = k.reason;
                room.since = k.since;
                room.waiting = k.waiting;
            }
            room
        })
    }

    /// Removes an empty room, remembering why its desktop left.
    fn remove_room(&mut self, client_id: &ClientId) {
        let Some(mut room) = self.rooms.remove(client_id) else {
            return;
        };
        if !room.book.is_empty() {
            self.parked_books
                .insert(client_id.clone(), std::mem::take(&mut room.book));
        }
        if room.offline_reason.is_some() || room.waiting {
            self.remember(
                client_id,
                Known {
                    reason: room.offline_reason,
                    since: room.since,
                    waiting: room.waiting,
                },
            );
        }
    }

    /// Records what is known of an id, evicting another when the list is full. Returns whether
    /// the id is new to this relay.
    fn remember(&mut self, client_id: &ClientId, known: Known) -> bool {
        if let Some(file) = &mut self.known_file {
            file.touch();
        }
        if let Some(entry) = self.known.get_mut(client_id) {
            *entry = known;
            return false;
        }
        if self.known.len() >= MAX_KNOWN {
            // Any id without a room will do: this only bounds memory under a flood of ids.
            let evicted = self
                .known
                .keys()
                .find(|id| !self.rooms.contains_key(*id))
                .cloned();
            if let Some(evicted) = evicted {
                self.known.remove(&evicted);
            }
        }
        self.known.insert(client_id.clone(), known);
        true
    }

    /// Seats a desktop (replacing this node's, which is told) and gives it its viewers.
    fn seat_desktop(&mut self, client_id: &ClientId, desktop: Member) -> Peers {
        let cluster = self.cluster.as_ref().map(|c| c.node.clone());
        // Back: closes the gap the store's charts show (a no-op without a store).
        self.store.presence(client_id, None);
        let room = self.room(client_id);
        let session = desktop.session();
        if let Some(old) = room.seat_desktop(desktop, deskbridge_protocol::unix_millis()) {
            log::info!(
                "desktop {client_id} replaced: session {session} takes over from session {}",
                old.session()
            );
            old.updates.do_send(PeerUpdate::Replaced);
        }
        Peers::Desktop {
            viewers: room.viewer_outboxes(),
            history: room.history.clone(),
            cluster: cluster
                .map(|node| DesktopLink::new(node, client_id, room.remote_viewers.clone())),
        }
    }

    /// Seats a viewer if the room's limits let it in, tells the desktop, and gives the viewer its
    /// route to the desktop.
    fn seat_viewer(&mut self, client_id: &ClientId, viewer: Member) -> Result<Peers, JoinRefused> {
        let (per_id, per_token) = (self.max_viewers, self.max_viewers_per_token);
        let room = self.room(client_id);
        if let Some(limit) = room.viewer_refusal(viewer.token.as_deref(), per_id, per_token) {
            if room.is_empty() {
                self.remove_room(client_id);
            }
            self.metrics.limited(limit.counted_as()).inc();
            return Err(JoinRefused::TooManyViewers { limit });
        }
        room.viewers.push(viewer);
        if let Some(desktop) = &room.desktop {
            desktop
                .updates
                .do_send(PeerUpdate::Viewers(room.viewer_outboxes()));
        }
        Ok(Peers::Web {
            commands: room.commands.clone(),
        })
    }

    /// Cluster mode: starts the id's NATS link if this node did not hold the id, hands it the
    /// changed side, and announces. Returns whether the joining viewer's history must come from
    /// another node (no desktop here).
    fn join_cluster(
        &mut self,
        client_id: &ClientId,
        member: &Member,
        mode: ClientMode,
        new_room: bool,
        ctx: &mut Context<Self>,
    ) -> bool {
        let (Some(cluster), Some(room)) = (&self.cluster, self.rooms.get_mut(client_id)) else {
            return false;
        };
        let control = match mode {
            ClientMode::Desktop => Control::Desktop(Some(member.outbox.clone())),
            ClientMode::Web | ClientMode::Fleet => Control::Viewers(room.viewer_outboxes()),
        };
        let link = room.link.get_or_insert_with(|| {
            RoomLink::spawn(
                cluster.node.clone(),
                LinkParts {
                    client_id: client_id.clone(),
                    history: room.history.clone(),
                    commands: room.commands.clone(),
                    states: ctx.address().recipient(),
                    news: ctx.address().recipient(),
                },
            )
        });
        link.send(control);
        cluster.announce(room, new_room);
        mode != ClientMode::Desktop && room.desktop.is_none()
    }

    /// A joining session's greeting, to it only (so not churn), after its `welcome`: for a viewer
    /// (or a fleet connection starting to watch the id) the history, then `presence`. With
    /// `fetch`, the desktop is on another node, which has the history: ask it, and finish the
    /// greeting when it answers ([`Self::history_fetched`]).
    fn greet(
        &mut self,
        client_id: &ClientId,
        mode: ClientMode,
        outbox: &Outbox,
        fetch: bool,
        ctx: &mut Context<Self>,
    ) {
        if let (true, Some(cluster)) = (fetch, &self.cluster) {
            let client_id = client_id.clone();
            let viewer = outbox.clone();
            fetch_history(cluster.node.clone(), client_id.clone())
                .into_actor(self)
                .map(move |fetched, act, ctx| act.history_fetched(client_id, viewer, fetched, ctx))
                .spawn(ctx);
            return;
        }
        let Some(room) = self.rooms.get(client_id) else {
            return;
        };
        let history = (mode != ClientMode::Desktop).then(|| room.history.to_message(client_id));
        self.finish_greeting(client_id, outbox, history);
    }

    /// The rest of a greeting: the history (viewers only), then the room's `presence`.
    fn finish_greeting(&self, client_id: &ClientId, outbox: &Outbox, history: Option<ByteString>) {
        let Some(room) = self.rooms.get(client_id) else {
            return;
        };
        if let Some(history) = history {
            self.send_control(outbox, history);
            self.send_book(client_id, outbox);
        }
        self.send_control(outbox, room.presence(client_id));
    }
}

impl Handler<Leave> for Matchmaker {
    type Result = ();

    fn handle(&mut self, leave: Leave, ctx: &mut Context<Self>) {
        if let (ClientMode::Desktop, Some(file)) = (leave.mode, &mut self.known_file) {
            file.touch();
        }
        let Some(room) = self.rooms.get_mut(&leave.client_id) else {
            return;
        };
        let changed = match leave.mode {
            ClientMode::Desktop => {
                let left = room.unseat_desktop(leave.session, leave.reason);
                if left {
                    self.store.presence(&leave.client_id, room.offline_reason);
                    if let Some(link) = &room.link {
                        link.send(Control::Desktop(None));
                    }
                }
                left
            }
            ClientMode::Web | ClientMode::Fleet => {
                let left = room.unseat_viewer(leave.session);
                if left {
                    if let Some(desktop) = &room.desktop {
                        desktop
                            .updates
                            .do_send(PeerUpdate::Viewers(room.viewer_outboxes()));
                    }
                    if let Some(link) = &room.link {
                        link.send(Control::Viewers(room.viewer_outboxes()));
                    }
                }
                left
            }
        };
        if changed {
            if let Some(cluster) = &self.cluster {
                cluster.announce(room, false);
            }
        }
        self.audience_settled(&leave.client_id, ctx);
        let Some(room) = self.rooms.get_mut(&leave.client_id) else {
            return;
        };
        if room.is_empty() {
            // Dropping the room drops its link, which ends once the announcement above is out.
            self.remove_room(&leave.client_id);
        } else if changed && room.settle() {
            self.presence_changed(&leave.client_id, None, ctx);
        }
        self.update_rooms_gauge();
    }
}

impl Matchmaker {
    /// What `known.json` should say now, if anything changed since it was last written: every
    /// known id, in its room's state where it has one.
    fn known_snapshot(&mut self) -> Option<(std::path::PathBuf, String)> {
        if !self.known_file.as_ref().is_some_and(KnownFile::is_dirty) {
            return None;
        }
        let entries = self
            .known
            .iter()
            .map(|(id, known)| match self.rooms.get(id) {
                Some(room) => known_file::Entry {
                    id: id.clone(),
                    online: room.online(),
                    reason: room.offline_reason.filter(|_| !room.online()),
                    since: room.since,
                    waiting: room.waiting && !room.online(),
                    cut: false,
                },
                None => known_file::Entry {
                    id: id.clone(),
                    online: false,
                    reason: known.reason,
                    since: known.since,
                    waiting: known.waiting,
                    cut: false,
                },
            })
            .collect();
        self.known_file.as_mut()?.take(entries)
    }
}

/// The relay is stopping: write `known.json` now (its sessions have gone).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SaveKnown;

impl Handler<SaveKnown> for Matchmaker {
    type Result = ();

    fn handle(&mut self, _: SaveKnown, _: &mut Context<Self>) {
        if let Some(file) = &mut self.known_file {
            file.touch();
        }
        if let Some((path, text)) = self.known_snapshot() {
            known_file::write(&path, &text);
        }
    }
}

impl Handler<RemoteState> for Matchmaker {
    type Result = ();

    fn handle(&mut self, state: RemoteState, ctx: &mut Context<Self>) {
        self.apply_remote(&state.client_id, state.announcement, None, ctx);
        // A desktop that arrived on another node gets what waits for it here.
        self.deliver_waiting(&state.client_id, ctx);
    }
}

impl Handler<LeaveCluster> for Matchmaker {
    type Result = ();

    /// The relay is stopping and these sessions did not leave in time: tell the other nodes this
    /// node holds nothing, and let the id tasks end.
    fn handle(&mut self, _: LeaveCluster, _: &mut Context<Self>) {
        if let Some(cluster) = &self.cluster {
            for room in self.rooms.values_mut() {
                cluster.farewell(room);
                room.link = None;
            }
        }
    }
}
