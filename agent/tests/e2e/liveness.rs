//! A relay that goes silent without closing the connection (a half-open TCP connection, a frozen
//! NAT mapping) is detected by the agent's own ping/idle check, and the agent reconnects.
//!
//! A small TCP proxy sits between agent and relay; "freezing" it stops all traffic on the
//! existing connections while keeping their sockets open, which is exactly what a dead path looks
//! like from the agent's side. New connections through the proxy work normally.
//!
//! Unwatched, the agent is kept by the relay's heartbeats and sends no ping of its own, and a cut one is
//! still lost within the idle timeout.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use deskbridge_protocol::DesktopState;

use deskbridge_testkit::{start_relay, Client};

use crate::harness::{relay_config, AgentProcess, Home, FAST};

/// Forwards loopback TCP connections to `target`; existing ones can be frozen.
struct Proxy {
    addr: SocketAddr,
    flags: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    stop: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = Self {
            addr,
            flags: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            sockets: Arc::default(),
        };
        let (flags, stop, sockets) = (
            proxy.flags.clone(),
            proxy.stop.clone(),
            proxy.sockets.clone(),
        );
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(target)) else {
                    continue;
                };
                let frozen = Arc::new(AtomicBool::new(false));
                flags.lock().unwrap().push(frozen.clone());
                let mut open = sockets.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                let (c, s) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(c, s, frozen.clone(), stop.clone());
                pump(server, client, frozen, stop.clone());
            }
        });
        proxy
    }

    /// Stops every byte on the connections open now, without closing them.
    fn freeze_existing(&self) {
        for frozen in self.flags.lock().unwrap().iter() {
            frozen.store(true, Ordering::SeqCst);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for s in self.sockets.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so that it sees the stop flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, frozen: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // Frozen: hold the data and the sockets, forward nothing, until the proxy is dropped.
            while frozen.load(Ordering::SeqCst) {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

#[actix_rt::test]
async fn a_silent_relay_is_detected_and_the_agent_reconnects() {
    // The relay states a timeout of 3 s for the desktop, watched or not: the agent waits that long
    // for the relay, as FAST asks too (a longer stated timeout would make it wait longer).
    let relay = start_relay(deskbridge_testkit::Config {
        client_timeout: Duration::from_secs(3),
        client_timeout_idle: Duration::from_secs(3),
        ..relay_config()
    });
    let proxy = Proxy::start(relay.addr());
    let home = Home::new();
    // FAST: ping every 500 ms, give up after 3 s of silence.
    let url = format!("ws://{}/ws", proxy.addr);
    let agent = AgentProcess::run(&home, &url, "quiet", FAST);
    agent
        .wait_for_log("connected to the relay as quiet", Duration::from_secs(10))
        .await;

    proxy.freeze_existing();
    agent
        .wait_for_log(
            "nothing heard from the relay for over 3s",
            Duration::from_secs(10),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent
        .log()
        .matches("connected to the relay as quiet")
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "no reconnect after the silence:\n{}",
            agent.log()
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    // The new connection is a working one: a viewer sees the desktop and its reports.
    let mut viewer = Client::join(relay.addr(), "quiet", "web").await;
    viewer
        .expect_desktop(DesktopState::Online, Duration::from_secs(5))
        .await;
    viewer
        .expect("cpu after reconnecting", Duration::from_secs(5), |m| {
            matches!(m, deskbridge_protocol::ServerMessage::Cpu(_)).then_some(())
        })
        .await;
    drop(proxy);
    relay.stop();
}

/// A relay that holds watched desktops to 2 s of silence and unwatched ones to 6 s, probing after
/// 1 s (scaled from 30 s and 120 s).
fn idle_relay() -> deskbridge_testkit::RelayHandle {
    start_relay(deskbridge_testkit::Config {
        client_timeout: Duration::from_secs(2),
        client_timeout_idle: IDLE,
        ..relay_config()
    })
}

const IDLE: Duration = Duration::from_secs(6);
const DESKTOPS: &str = r#"deskbridge_sessions{mode="desktop"}"#;
const PINGS: &str = "deskbridge_heartbeat_pings_total";
const CLIENT_PINGS: &str = "deskbridge_client_pings_total";
const PONGS: &str = "deskbridge_heartbeat_pongs_total";

async fn desktops(relay: &deskbridge_testkit::RelayHandle) -> f64 {
    deskbridge_testkit::cluster::metric(relay.addr(), DESKTOPS).await
}

#[actix_rt::test]
async fn an_unwatched_agent_stays_online_on_the_relays_heartbeats_and_pings_not_once() {
    let relay = idle_relay();
    let home = Home::new();
    // Its own settings would ping after 500 ms without a word and give up after 3 s; the relay's
    // 6 s make it wait 4 s before pinging and 6 s in all, and the relay sends it a heartbeat
    // every 2 s (an unsolicited pong, or a ping once the agent has been silent for 3 s).
    let agent = AgentProcess::run(&home, &format!("ws://{}/ws", relay.addr()), "idle", FAST);
    agent
        .wait_for_log("connected to the relay as idle", Duration::from_secs(10))
        .await;
    // From the moment it knows the relay's timeout, it is paced by it.
    agent
        .wait_for_log(
            "the relay waits 6s for this desktop",
            Duration::from_secs(10),
        )
        .await;
    let metric = |name: &'static str| deskbridge_testkit::cluster::metric(relay.addr(), name);
    let heartbeats = || async { metric(PINGS).await + metric(PONGS).await };
    let (relay_beats, agent_pings) = (heartbeats().await, metric(CLIENT_PINGS).await);
    // 8 s: four times the watched timeout, longer than the idle one.
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        assert_eq!(desktops(&relay).await, 1.0, "the quiet agent stays online");
        actix_rt::time::sleep(Duration::from_millis(250)).await;
    }
    let relay_beats = heartbeats().await - relay_beats;
    assert!(
        (3.0..=5.0).contains(&relay_beats),
        "the relay tells it something every 2 s: {relay_beats} heartbeats in 8 s"
    );
    assert_eq!(
        metric(CLIENT_PINGS).await,
        agent_pings,
        "hearing the relay, the agent pings it not once:\n{}",
        agent.log()
    );
    assert_eq!(
        agent
            .log()
            .matches("connected to the relay as idle")
            .count(),
        1,
        "one connection all along:\n{}",
        agent.log()
    );
    relay.stop();
}

#[actix_rt::test]
async fn a_cut_unwatched_agent_is_lost_within_the_idle_timeout() {
    let relay = idle_relay();
    let proxy = Proxy::start(relay.addr());
    let home = Home::new();
    // The agent's own patience is longer than the relay's here, so what is measured is the
    // relay's detection, not a reconnect.
    let args = ["--ping-interval", "500ms", "--idle-timeout", "30s"];
    let agent = AgentProcess::run(&home, &format!("ws://{}/ws", proxy.addr), "cut", &args);
    agent
        .wait_for_log("connected to the relay as cut", Duration::from_secs(10))
        .await;
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    proxy.freeze_existing();
    let cut = Instant::now();
    while desktops(&relay).await > 0.0 {
        assert!(
            cut.elapsed() < IDLE + Duration::from_secs(2),
            "still online {:?} after the cut",
            cut.elapsed()
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let lost_after = cut.elapsed();
    assert!(
        lost_after > Duration::from_secs(3),
        "lost after {lost_after:?}: an unwatched desktop has the idle timeout"
    );
    let mut viewer = Client::join(relay.addr(), "cut", "web").await;
    let offline = viewer
        .expect("presence", Duration::from_secs(2), |m| match m {
            deskbridge_protocol::ServerMessage::Presence(p)
                if p.desktop == DesktopState::Offline =>
            {
                Some(p.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(
        offline.reason,
        Some(deskbridge_protocol::OfflineReason::Lost)
    );
    drop(proxy);
    relay.stop();
}
