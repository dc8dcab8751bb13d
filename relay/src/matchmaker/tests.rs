//! The matchmaker actor on its own: sessions are an outbox receiver and a probe for their
//! `PeerUpdate`s, so what each session would be sent is read straight off its queue — joins,
//! leaves, a replaced desktop, presence counts — with no socket in between.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use deskbridge_protocol::{ClientId, ClientMode, OfflineReason};
use serde_json::Value;
use tokio::sync::mpsc;

use super::messages::{Join, JoinRefused, Leave, PeerUpdate, Peers, ViewerLimit};
use super::Matchmaker;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::outbox::{Outbound, Outbox, SessionId};

/// Within this, whatever the matchmaker sends has arrived (presence is coalesced over 250 ms).
const WITHIN: Duration = Duration::from_secs(3);

/// Forwards a session's `PeerUpdate`s to the test.
struct Probe(mpsc::UnboundedSender<PeerUpdate>);

impl Actor for Probe {
    type Context = Context<Self>;
}

impl Handler<PeerUpdate> for Probe {
    type Result = ();

    fn handle(&mut self, update: PeerUpdate, _: &mut Context<Self>) {
        let _ = self.0.send(update);
    }
}

/// A session as the matchmaker sees it, and what it was sent.
struct FakeSession {
    session: SessionId,
    client_id: ClientId,
    mode: ClientMode,
    frames: mpsc::Receiver<Outbound>,
    updates: mpsc::UnboundedReceiver<PeerUpdate>,
}

impl FakeSession {
    async fn join(
        matchmaker: &Addr<Matchmaker>,
        session: SessionId,
        id: &str,
        mode: ClientMode,
        token: Option<&str>,
    ) -> (Self, Result<Peers, JoinRefused>) {
        let (outbox, frames) = Outbox::new(session, 64, 4096);
        let (tx, updates) = mpsc::unbounded_channel();
        let probe = Probe(tx).start();
        let client_id = ClientId::new(id).unwrap();
        let joined = matchmaker
            .send(Join {
                client_id: client_id.clone(),
                mode,
                token: token.map(str::to_owned),
                outbox,
                updates: probe.recipient(),
                access: (mode == ClientMode::Web)
                    .then(|| deskbridge_auth::Access::anonymous(&client_id)),
            })
            .await
            .expect("the matchmaker answers");
        let session = Self {
            session,
            client_id,
            mode,
            frames,
            updates,
        };
        (session, joined)
    }

    fn leave(&self, matchmaker: &Addr<Matchmaker>) {
        self.leave_saying(matchmaker, None);
    }

    /// Leaves as a desktop that said `going_away` with `reason` (`None`: lost).
    fn leave_saying(&self, matchmaker: &Addr<Matchmaker>, reason: Option<OfflineReason>) {
        matchmaker.do_send(Leave {
            session: self.session,
            client_id: self.client_id.clone(),
            mode: self.mode,
            reason,
        });
    }

    /// The next JSON event queued to this session.
    async fn next_event(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(WITHIN, self.frames.recv())
                .await
                .expect("an event in time")
                .expect("the outbox is open");
            if let Outbound::Text(text) = frame {
                return serde_json::from_str(&text).expect("JSON");
            }
        }
    }

    async fn next_named(&mut self, name: &str) -> Value {
        loop {
            let event = self.next_event().await;
            if event["event"] == name {
                return event;
            }
        }
    }

    /// Waits for a presence saying `desktop` with `viewers`, skipping earlier ones.
    async fn expect_presence(&mut self, desktop: &str, viewers: u64) -> Value {
        loop {
            let presence = self.next_named("presence").await;
            if presence["desktop"] == desktop && presence["viewers"] == viewers {
                return presence;
            }
        }
    }

    /// The next peer update but the timeouts that go with `audience` (tested in
    /// `session/liveness.rs` and `tests/heartbeat.rs`).
    async fn next_update(&mut self) -> PeerUpdate {
        loop {
            let update = tokio::time::timeout(WITHIN, self.updates.recv())
                .await
                .expect("an update in time")
                .expect("the probe lives");
            if !matches!(update, PeerUpdate::Timeout(_)) {
                return update;
            }
        }
    }

    /// Nothing but presence (and audience timeouts) arrives within a short while.
    async fn expect_no_update(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        loop {
            match tokio::time::timeout_at(deadline, self.updates.recv()).await {
                Err(_) => return,
                Ok(Some(PeerUpdate::Timeout(_))) => {}
                Ok(other) => panic!("unexpected update: {other:?}"),
            }
        }
    }
}

fn matchmaker(config: Config) -> Addr<Matchmaker> {
    Matchmaker::new(&config, Arc::new(Metrics::new())).start()
}

#[actix::test]
async fn a_desktop_and_a_viewer_are_greeted_paired_and_told_of_each_other() {
    let mm = matchmaker(Config::default());
    let (mut desktop, peers) = FakeSession::join(&mm, 1, "a", ClientMode::Desktop, None).await;
    assert!(matches!(peers, Ok(Peers::Desktop { ref viewers, .. }) if viewers.is_empty()));
    assert_eq!(desktop.next_event().await["event"], "welcome");
    desktop.expect_presence("online", 0).await;

    let (mut viewer, peers) = FakeSession::join(&mm, 2, "a", ClientMode::Web, None).await;
    assert!(matches!(peers, Ok(Peers::Web { .. })), "a viewer's peers");
    // The greeting, in order: welcome, history, presence.
    assert_eq!(viewer.next_event().await["event"], "welcome");
    assert_eq!(viewer.next_event().await["event"], "history");
    let presence = viewer.next_event().await;
    assert_eq!(presence["event"], "presence");
    assert_eq!(presence["desktop"], "online");
    assert_eq!(presence["viewers"], 1);
    // The desktop learns its viewer's outbox and the new count.
    match desktop.next_update().await {
        PeerUpdate::Viewers(list) => assert_eq!(list[0].session(), 2),
        other => panic!("{other:?}"),
    }
    desktop.expect_presence("online", 1).await;

    // The viewer leaves: the desktop's list empties and the count drops.
    viewer.leave(&mm);
    match desktop.next_update().await {
        PeerUpdate::Viewers(list) => assert!(list.is_empty()),
        other => panic!("{other:?}"),
    }
    desktop.expect_presence("online", 0).await;
}

#[actix::test]
async fn a_second_desktop_replaces_the_first_and_the_first_ones_leave_changes_nothing() {
    let mm = matchmaker(Config::default());
    let (mut old, _) = FakeSession::join(&mm, 1, "b", ClientMode::Desktop, None).await;
    let (mut viewer, _) = FakeSession::join(&mm, 2, "b", ClientMode::Web, None).await;
    viewer.expect_presence("online", 1).await;

    let (_new, _) = FakeSession::join(&mm, 3, "b", ClientMode::Desktop, None).await;
    // Only the viewers-list update may precede the replacement.
    while let PeerUpdate::Viewers(_) = old.next_update().await {}
    // The replaced desktop's session ends after its successor joined: the viewer keeps the new
    // desktop and never sees it go offline.
    old.leave(&mm);
    viewer.expect_no_update().await;
    while let Ok(Some(frame)) =
        tokio::time::timeout(Duration::from_millis(400), viewer.frames.recv()).await
    {
        if let Outbound::Text(text) = frame {
            assert!(!text.contains("offline"), "{text}");
        }
    }
}

#[actix::test]
async fn viewer_limits_refuse_per_id_and_per_token() {
    let mm = matchmaker(Config {
        max_viewers_per_id: 3,
        max_viewers_per_token: 2,
        ..Config::default()
    });
    let mut seated = Vec::new();
    for session in 1..=2 {
        let (viewer, joined) =
            FakeSession::join(&mm, session, "c", ClientMode::Web, Some("t")).await;
        assert!(joined.is_ok());
        seated.push(viewer);
    }
    let (_, refused) = FakeSession::join(&mm, 3, "c", ClientMode::Web, Some("t")).await;
    assert!(matches!(
        refused,
        Err(JoinRefused::TooManyViewers {
            limit: ViewerLimit::PerToken(2)
        })
    ));
    let (_other, joined) = FakeSession::join(&mm, 4, "c", ClientMode::Web, None).await;
    assert!(joined.is_ok(), "another credential still gets in");
    let (_, refused) = FakeSession::join(&mm, 5, "c", ClientMode::Web, None).await;
    assert!(matches!(
        refused,
        Err(JoinRefused::TooManyViewers {
            limit: ViewerLimit::PerId(3)
        })
    ));
    // A seat given back can be taken again.
    seated.pop().unwrap().leave(&mm);
    let mut joined = Err(JoinRefused::TooManyViewers {
        limit: ViewerLimit::PerId(0),
    });
    for attempt in 6..60 {
        joined = FakeSession::join(&mm, attempt, "c", ClientMode::Web, Some("t"))
            .await
            .1;
        if joined.is_ok() {
            break;
        }
        actix::clock::sleep(Duration::from_millis(20)).await;
    }
    assert!(joined.is_ok(), "the freed seat was taken again");
}

#[actix::test]
async fn presence_counts_every_viewer_and_ends_on_the_true_count() {
    let mm = matchmaker(Config::default());
    let (mut desktop, _) = FakeSession::join(&mm, 1, "d", ClientMode::Desktop, None).await;
    let mut viewers = Vec::new();
    for session in 2..=6 {
        viewers.push(
            FakeSession::join(&mm, session, "d", ClientMode::Web, None)
                .await
                .0,
        );
    }
    desktop.expect_presence("online", 5).await;
    for viewer in viewers.drain(..3) {
        viewer.leave(&mm);
    }
    desktop.expect_presence("online", 2).await;
    desktop.leave(&mm);
    viewers[0].expect_presence("offline", 2).await;
}

#[actix::test]
async fn presence_says_why_the_desktop_left_even_to_a_viewer_who_comes_back_later() {
    let mm = matchmaker(Config::default());
    let (desktop, _) = FakeSession::join(&mm, 1, "e", ClientMode::Desktop, None).await;
    let (mut viewer, _) = FakeSession::join(&mm, 2, "e", ClientMode::Web, None).await;
    let online = viewer.expect_presence("online", 1).await;
    assert!(online.get("reason").is_none());
    desktop.leave_saying(&mm, Some(OfflineReason::Sleep));
    let asleep = viewer.expect_presence("offline", 1).await;
    assert_eq!(asleep["reason"], "sleep");

    // The room empties and goes; a viewer who comes back reads the same reason and time.
    viewer.leave(&mm);
    let (mut back, _) = FakeSession::join(&mm, 3, "e", ClientMode::Web, None).await;
    let again = back.expect_presence("offline", 1).await;
    assert_eq!(again["reason"], "sleep");
    assert_eq!(again["since"], asleep["since"]);

    // Online again, then gone without a word: lost.
    let (desktop, _) = FakeSession::join(&mm, 4, "e", ClientMode::Desktop, None).await;
    let online = back.expect_presence("online", 1).await;
    assert!(online.get("reason").is_none());
    desktop.leave(&mm);
    assert_eq!(back.expect_presence("offline", 1).await["reason"], "lost");
}

/// The next `audience` frame queued to `session`, skipping anything else.
async fn next_audience(session: &mut FakeSession) -> (u64, u64, u64) {
    let a = session.next_named("audience").await;
    let n = |k: &str| a[k].as_u64().expect("a number");
    (n("detail"), n("overview"), n("interval_ms"))
}

#[actix::test]
async fn the_desktop_is_told_its_audience_on_join_and_on_every_change() {
    use crate::metrics::IntervalClass;
    let metrics = Arc::new(Metrics::new());
    let mm = Matchmaker::new(&Config::default(), metrics.clone()).start();
    let (mut desktop, _) = FakeSession::join(&mm, 1, "w", ClientMode::Desktop, None).await;
    assert_eq!(
        next_audience(&mut desktop).await,
        (0, 0, 60_000),
        "nobody watches"
    );
    assert_eq!(metrics.desktops_by_interval(IntervalClass::Idle).get(), 1);

    let (mut first, _) = FakeSession::join(&mm, 2, "w", ClientMode::Web, None).await;
    assert_eq!(next_audience(&mut desktop).await, (1, 0, 1000));
    let presence = first.next_named("presence").await;
    assert_eq!(presence["interval_ms"], 1000, "{presence}");
    let (second, _) = FakeSession::join(&mm, 3, "w", ClientMode::Web, None).await;
    assert_eq!(next_audience(&mut desktop).await, (2, 0, 1000));
    first.leave(&mm);
    assert_eq!(
        next_audience(&mut desktop).await,
        (1, 0, 1000),
        "still watched"
    );
    assert_eq!(metrics.desktops_by_interval(IntervalClass::Detail).get(), 1);
    assert_eq!(metrics.desktops_by_interval(IntervalClass::Idle).get(), 0);

    // A fleet grid watching it as well: counted as overview; once the last viewer goes, 5 s.
    let (outbox, _watcher_frames) = Outbox::new(9, 64, 4096);
    let (tx, _watcher_updates) = mpsc::unbounded_channel();
    mm.do_send(super::messages::Watch {
        access: deskbridge_auth::Access::anonymous(&ClientId::new("w").unwrap()),
        outbox,
        updates: Probe(tx).start().recipient(),
    });
    assert_eq!(next_audience(&mut desktop).await, (1, 1, 1000));
    second.leave(&mm);
    assert_eq!(next_audience(&mut desktop).await, (0, 1, 5000));
    assert_eq!(
        metrics.desktops_by_interval(IntervalClass::Overview).get(),
        1
    );
    assert_eq!(metrics.desktops_by_interval(IntervalClass::Detail).get(), 0);

    // The desktop goes: it counts in no class any more.
    desktop.leave(&mm);
    let deadline = std::time::Instant::now() + WITHIN;
    while metrics.desktops_by_interval(IntervalClass::Overview).get() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the gauge follows the desktop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(metrics.audience_changes().get() >= 6);
}
