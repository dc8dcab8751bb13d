//! Heartbeats through a real relay (issue 14): a desktop nobody watches is told a longer timeout
//! in `audience.timeout_ms` and kept by its own pings without any from the relay; a silent one is
//! still dropped as `lost`, within its idle timeout, or within the watched timeout counted from
//! the moment someone starts watching; a client that only answers pings (as the 2018 prototype's
//! desktop does) is probed and kept; a desktop that reports but never pings (as the agent does
//! while it hears the relay) is sent an unsolicited pong every third of its timeout, so it hears
//! the relay in turn.
//!
//! Scaled timings: probe 300 ms, watched timeout 1 s, idle timeout 3 s.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use awc::ws::Message;
use deskbridge_protocol::{DesktopState, OfflineReason, ServerMessage};
use deskbridge_relay::Config;
use deskbridge_testkit::cluster::metric;
use deskbridge_testkit::{start_relay, test_config, Client};
use serde_json::Value;

const IDLE: Duration = Duration::from_secs(3);
const WATCHED: Duration = Duration::from_secs(1);

fn config() -> Config {
    Config {
        heartbeat_interval: Duration::from_millis(300),
        client_timeout: WATCHED,
        client_timeout_idle: IDLE,
        ..test_config()
    }
}

const DESKTOPS: &str = r#"deskbridge_sessions{mode="desktop"}"#;
const PINGS: &str = "deskbridge_heartbeat_pings_total";
const PONGS: &str = "deskbridge_heartbeat_pongs_total";

/// The timeout the next `audience` states, in ms.
async fn stated_timeout(desktop: &mut Client) -> u64 {
    let a: Value = desktop.next_named("audience").await;
    a["timeout_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("timeout_ms in {a}"))
}

/// Waits until the relay holds no desktop session; returns when that happened.
async fn desktop_gone(relay: SocketAddr, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        if metric(relay, DESKTOPS).await == 0.0 {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the desktop was not dropped within {within:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `frame` every third of the idle timeout, and nothing else, for twice the idle timeout
/// (six times the watched one), checking that only heartbeats come back.
async fn send_every_third_of_idle(desktop: &mut Client, frame: impl Fn() -> Message) {
    let until = Instant::now() + 2 * IDLE;
    while Instant::now() < until {
        desktop.send_message(frame()).await;
        assert!(
            desktop.recv_within(IDLE / 3).await.is_none(),
            "nothing but heartbeats"
        );
    }
}

#[actix_web::test]
async fn an_unwatched_desktop_that_pings_on_its_own_is_kept_without_pings_from_the_relay() {
    let relay = start_relay(config());
    let mut desktop = Client::join(relay.addr(), "pinger", "desktop").await;
    assert_eq!(stated_timeout(&mut desktop).await, 3000, "the idle timeout");
    let before = metric(relay.addr(), PINGS).await;
    // It pings every second (as an agent from before the relay kept time did) and sends nothing
    // else.
    send_every_third_of_idle(&mut desktop, || Message::Ping("hb".into())).await;
    assert_eq!(metric(relay.addr(), DESKTOPS).await, 1.0, "still connected");
    assert_eq!(
        metric(relay.addr(), PINGS).await,
        before,
        "a client heard from within its probe interval is not pinged"
    );
    // Someone watches: it is held to the watched timeout from now on.
    let _viewer = Client::join(relay.addr(), "pinger", "web").await;
    assert_eq!(stated_timeout(&mut desktop).await, 1000);
}

#[actix_web::test]
async fn a_silent_unwatched_desktop_is_lost_within_its_idle_timeout() {
    let relay = start_relay(config());
    let mut desktop = Client::join(relay.addr(), "cut", "desktop").await;
    assert_eq!(stated_timeout(&mut desktop).await, 3000);
    // The cable is cut: from now on it neither sends nor reads (so answers no ping).
    let cut = Instant::now();
    actix_web::rt::time::sleep(WATCHED + WATCHED / 2).await;
    assert_eq!(
        metric(relay.addr(), DESKTOPS).await,
        1.0,
        "an unwatched desktop is not dropped at the watched timeout"
    );
    let gone = desktop_gone(relay.addr(), IDLE * 2).await - cut;
    assert!(
        gone >= IDLE - Duration::from_millis(200),
        "dropped after {gone:?}, before its timeout"
    );
    assert!(
        gone <= IDLE + Duration::from_secs(1),
        "dropped after {gone:?}"
    );
    let mut viewer = Client::join(relay.addr(), "cut", "web").await;
    let offline = viewer
        .expect("presence", Duration::from_secs(2), |m| match m {
            ServerMessage::Presence(p) if p.desktop == DesktopState::Offline => Some(p.clone()),
            _ => None,
        })
        .await;
    assert_eq!(offline.reason, Some(OfflineReason::Lost));
    drop(desktop);
}

#[actix_web::test]
async fn a_silent_desktop_someone_starts_watching_is_lost_within_the_watched_timeout() {
    let relay = start_relay(config());
    let mut desktop = Client::join(relay.addr(), "quiet", "desktop").await;
    assert_eq!(stated_timeout(&mut desktop).await, 3000);
    let cut = Instant::now();
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    // A viewer opens it: the desktop should report at once, and being cut it cannot; it is
    // dropped one watched timeout after the viewer came, well before its idle deadline.
    let mut viewer = Client::join(relay.addr(), "quiet", "web").await;
    let watched = Instant::now();
    viewer
        .expect_desktop(DesktopState::Offline, Duration::from_secs(3))
        .await;
    let (after_view, after_cut) = (watched.elapsed(), cut.elapsed());
    assert!(
        after_view >= WATCHED - Duration::from_millis(200),
        "lost {after_view:?} after the viewer came"
    );
    assert!(
        after_cut < IDLE,
        "lost {after_cut:?} after the cut: the idle timeout, not the watched one"
    );
    drop(desktop);
}

#[actix_web::test]
async fn a_desktop_that_only_answers_pings_is_probed_and_kept() {
    let relay = start_relay(config());
    let mut desktop = Client::join(relay.addr(), "answers", "desktop").await;
    assert_eq!(stated_timeout(&mut desktop).await, 3000);
    let before = metric(relay.addr(), PINGS).await;
    // It reads (answering every ping) but never sends on its own, for twice its idle timeout.
    assert!(desktop.recv_within(2 * IDLE).await.is_none());
    assert_eq!(metric(relay.addr(), DESKTOPS).await, 1.0, "still connected");
    let pinged = metric(relay.addr(), PINGS).await - before;
    // Probed after half its idle timeout of silence: about every 1.5 s.
    assert!((2.0..=6.0).contains(&pinged), "{pinged} pings in 6 s");
}

#[actix_web::test]
async fn an_unwatched_desktop_that_only_reports_is_told_every_third_of_its_timeout() {
    let relay = start_relay(config());
    let mut desktop = Client::join(relay.addr(), "reporter", "desktop").await;
    assert_eq!(stated_timeout(&mut desktop).await, 3000);
    let (pings, pongs) = (
        metric(relay.addr(), PINGS).await,
        metric(relay.addr(), PONGS).await,
    );
    // It reports every second and never pings: always heard from, so only its own need to hear
    // the relay makes the relay send it anything.
    let report = || Message::Text(r#"{"event":"cpu","value":1}"#.into());
    send_every_third_of_idle(&mut desktop, report).await;
    assert_eq!(metric(relay.addr(), DESKTOPS).await, 1.0, "still connected");
    let told = metric(relay.addr(), PONGS).await - pongs;
    // Told nothing for a third of its idle timeout: an unsolicited pong about every second,
    // which asks for no answer; never a ping, since it is never silent.
    assert!((4.0..=8.0).contains(&told), "{told} pongs in 6 s");
    assert_eq!(metric(relay.addr(), PINGS).await, pings);
}
