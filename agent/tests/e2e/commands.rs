//! Commands through the real agent: a beep that waits for an offline desktop plays when its agent
//! starts (and one that may not wait that long expires); a command id runs once even when a new
//! relay delivers it again; an answer whose connection dropped while the tone played still
//! reaches the viewers, and the tone played once (ALSA capture); `notify` shows a desktop
//! notification through a test notification server on a private session bus, and says why not
//! where there is none.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deskbridge_protocol::{CommandState, ServerMessage};
use deskbridge_testkit::{start_relay, start_relay_on, ws_url, Client};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::harness::{capture_to_file, relay_config, AgentProcess, Home, FAST};
use crate::sleep::Bus;

const WITHIN: Duration = Duration::from_secs(15);

/// Waits for command `id` to reach `state`; returns its `error`.
async fn reaches(viewer: &mut Client, id: &str, state: CommandState) -> Option<String> {
    viewer
        .expect(&format!("command {id} {state}"), WITHIN, |m| match m {
            ServerMessage::Command(c) if c.id == id && c.state == state => Some(c.error.clone()),
            _ => None,
        })
        .await
}

/// How many separate tones the capture holds (runs of sound split by at least 50 ms of silence).
fn tones(capture: &std::path::Path) -> usize {
    let bytes = std::fs::read(capture).unwrap_or_default();
    let samples: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    // 50 ms of silence at up to 48 kHz stereo.
    let gap = 4800;
    let (mut count, mut silent) = (0, gap);
    for s in samples {
        if s != 0.0 {
            if silent >= gap {
                count += 1;
            }
            silent = 0;
        } else {
            silent += 1;
        }
    }
    count
}

#[actix_rt::test]
async fn a_beep_waiting_for_an_offline_desktop_plays_when_its_agent_starts() {
    let relay = start_relay(relay_config());
    let home = Home::new();
    let capture = home.path().join("played.raw");
    capture_to_file(&home, &capture);
    let mut viewer = Client::join(relay.addr(), "late-box", "web").await;
    viewer
        .send(r#"{"event":"beep","id":"short","wait_ms":300}"#)
        .await;
    viewer
        .send(r#"{"event":"beep","id":"patient","wait_ms":600000}"#)
        .await;
    let why = reaches(&mut viewer, "short", CommandState::Expired).await;
    assert!(why.is_some_and(|w| w.contains("did not come back")));

    let agent = AgentProcess::run(&home, &ws_url(relay.addr()), "late-box", FAST);
    reaches(&mut viewer, "patient", CommandState::Delivered).await;
    reaches(&mut viewer, "patient", CommandState::Done).await;
    assert_eq!(tones(&capture), 1, "{}", agent.log());
    assert!(!agent.log().contains("\"short\""), "{}", agent.log());
    relay.stop();
}

#[actix_rt::test]
async fn the_same_command_id_plays_once_even_when_a_new_relay_delivers_it_again() {
    let relay = start_relay(relay_config());
    let addr = relay.addr();
    let home = Home::new();
    let capture = home.path().join("played.raw");
    capture_to_file(&home, &capture);
    let agent = AgentProcess::run(&home, &ws_url(addr), "once-box", FAST);
    let mut viewer = Client::join(addr, "once-box", "web").await;
    viewer
        .send(r#"{"event":"beep","id":"only-once","wait_ms":10000}"#)
        .await;
    reaches(&mut viewer, "only-once", CommandState::Done).await;
    assert_eq!(tones(&capture), 1);
    // An answer sent within 2 s of a connection's end is sent again on the next one (ledger.rs,
    // RESEND_WINDOW); the new relay would then already know the result and never ask the agent.
    // Past that window, only the agent's own memory stands between the command and a second tone.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // A new relay knows nothing of it and delivers it again: the agent answers from memory.
    relay.stop();
    agent
        .wait_for_log("disconnected from the relay", Duration::from_secs(5))
        .await;
    let relay = start_relay_on(addr, relay_config());
    let mut viewer = Client::join(addr, "once-box", "web").await;
    viewer
        .send(r#"{"event":"beep","id":"only-once","wait_ms":10000}"#)
        .await;
    let result = viewer
        .expect("the earlier result", WITHIN, |m| match m {
            ServerMessage::BeepResult(r) if r.id.as_deref() == Some("only-once") => Some(r.ok),
            _ => None,
        })
        .await;
    assert!(result);
    reaches(&mut viewer, "only-once", CommandState::Done).await;
    assert!(agent.log().contains("already ran"), "{}", agent.log());
    assert_eq!(tones(&capture), 1, "played once:\n{}", agent.log());
    relay.stop();
}

/// A TCP forwarder between the agent and the relay that the test can cut, at once or right after
/// it has passed the agent a frame containing a marker (so the cut falls exactly after the agent
/// got its command, however slowly the test runs).
struct Cable {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
    trip: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Cable {
    async fn to(relay: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let trip: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let held = links.clone();
        let armed = trip.clone();
        let accept = tokio::spawn(async move {
            while let Ok((agent, _)) = listener.accept().await {
                let Ok(upstream) = TcpStream::connect(relay).await else {
                    continue;
                };
                let trip = armed.clone();
                held.lock().unwrap().push(tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                    let (mut agent_in, mut agent_out) = agent.into_split();
                    let (mut relay_in, mut relay_out) = upstream.into_split();
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut agent_in, &mut relay_out).await;
                    });
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = relay_in.read(&mut buf).await {
                        if agent_out.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        let marker = trip.lock().unwrap().clone();
                        if marker.is_some_and(|m| buf[..n].windows(m.len()).any(|w| w == m)) {
                            *trip.lock().unwrap() = None;
                            break; // passed on, then the cable goes dead both ways
                        }
                    }
                    up.abort();
                }));
            }
        });
        Self {
            addr,
            links,
            accept,
            trip,
        }
    }

    /// Cuts the connection right after passing the agent a frame that contains `marker`.
    fn cut_after(&self, marker: &[u8]) {
        *self.trip.lock().unwrap() = Some(marker.to_vec());
    }

    /// Drops every connection through it, as a cut cable would (new ones still get through).
    fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

#[actix_rt::test]
async fn an_answer_whose_connection_dropped_while_the_tone_played_still_arrives() {
    let relay = start_relay(relay_config());
    let cable = Cable::to(relay.addr()).await;
    let home = Home::new();
    let capture = home.path().join("played.raw");
    capture_to_file(&home, &capture);
    let agent = AgentProcess::run(&home, &ws_url(cable.addr), "cut-box", FAST);
    let mut viewer = Client::join(relay.addr(), "cut-box", "web").await;
    viewer
        .expect_desktop(
            deskbridge_protocol::DesktopState::Online,
            Duration::from_secs(10),
        )
        .await;
    // The cable dies right after the beep reaches the agent: its answer cannot go the same way.
    cable.cut_after(b"mid-tone");
    viewer.send(r#"{"event":"beep","id":"mid-tone"}"#).await;
    let ok = viewer
        .expect("the answer after the reconnect", WITHIN, |m| match m {
            ServerMessage::BeepResult(r) if r.id.as_deref() == Some("mid-tone") => Some(r.ok),
            _ => None,
        })
        .await;
    assert!(ok, "{}", agent.log());
    reaches(&mut viewer, "mid-tone", CommandState::Done).await;
    let log = agent.log();
    assert!(
        log.matches("connected to the relay as cut-box").count() >= 2,
        "it reconnected:\n{log}"
    );
    assert!(
        log.contains("answer(s) owed from before the reconnect"),
        "the answer went out on the new connection:\n{log}"
    );
    assert_eq!(tones(&capture), 1, "played once:\n{log}");
    relay.stop();
}

/// What the test notification server was asked to show: (summary, body).
#[derive(Clone, Default)]
struct Notifications {
    shown: Arc<Mutex<Vec<(String, String)>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app_name: &str,
        _replaces_id: u32,
        _app_icon: &str,
        summary: &str,
        body: &str,
        _actions: Vec<String>,
        _hints: HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut shown = self.shown.lock().unwrap();
        shown.push((summary.to_owned(), body.to_owned()));
        shown.len() as u32
    }
}

/// The agent with `DBUS_SESSION_BUS_ADDRESS` pointing at `bus`.
fn agent_on(bus: &Bus, home: &Home, relay: SocketAddr, id: &str) -> AgentProcess {
    let mut command = home.command();
    command.env("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    AgentProcess::run_with(command, home, &ws_url(relay), id, FAST)
}

#[actix_rt::test]
async fn notify_shows_a_desktop_notification_or_says_why_it_cannot() {
    let relay = start_relay(relay_config());
    let bus = Bus::start();
    let server = Notifications::default();
    let _service = zbus::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.Notifications")
        .unwrap()
        .serve_at("/org/freedesktop/Notifications", server.clone())
        .unwrap()
        .build()
        .await
        .expect("serve the test notification server");
    let home = Home::new();
    let agent = agent_on(&bus, &home, relay.addr(), "note-box");
    let mut viewer = Client::join(relay.addr(), "note-box", "web").await;
    viewer
        .send(r#"{"event":"notify","id":"n-1","text":"Dinner <b>is</b> ready","wait_ms":10000}"#)
        .await;
    reaches(&mut viewer, "n-1", CommandState::Done).await;
    assert_eq!(
        *server.shown.lock().unwrap(),
        [(
            "deskbridge".to_owned(),
            "Dinner &lt;b&gt;is&lt;/b&gt; ready".to_owned()
        )],
        "{}",
        agent.log()
    );

    // A session bus without a notification service: failed, with the reason.
    let silent = Bus::start();
    let home = Home::new();
    let _agent = agent_on(&silent, &home, relay.addr(), "bare-box");
    let mut viewer = Client::join(relay.addr(), "bare-box", "web").await;
    viewer
        .send(r#"{"event":"notify","id":"n-2","text":"Hello","wait_ms":10000}"#)
        .await;
    let why = reaches(&mut viewer, "n-2", CommandState::Failed).await;
    assert!(
        why.as_deref()
            .is_some_and(|w| w.contains("no desktop notification service")),
        "{why:?}"
    );
    relay.stop();
}
