//! Sleep told apart from a lost connection: a private D-Bus bus with a fake logind that hands out
//! delay locks and announces `PrepareForSleep(true)`, then `(false)`. The real agent tells the
//! relay it is going to sleep before it lets go of its lock, and is back within 2 s of waking; and
//! an agent stopped while its login session is closing says `logout`, not `quit`.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskbridge_testkit::{start_relay, ws_url, Client};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::OwnedFd;

use crate::harness::{relay_config, AgentProcess, Home, FAST};

const LOGIND_PATH: &str = "/org/freedesktop/login1";

/// A private message bus (`dbus-daemon --session`), killed on drop.
pub struct Bus {
    child: Child,
    pub address: String,
}

impl Bus {
    pub fn start() -> Self {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start dbus-daemon (Debian package dbus-daemon)");
        let mut out = child.stdout.take().expect("its stdout");
        let mut address = Vec::new();
        let mut byte = [0u8; 1];
        while out.read(&mut byte).expect("read its address") == 1 && byte[0] != b'\n' {
            address.push(byte[0]);
        }
        let address = String::from_utf8(address).expect("an address");
        assert!(address.starts_with("unix:"), "{address}");
        Self { child, address }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// logind, as far as the agent uses it: delay locks (our ends kept, to see them released) and
/// the sleep signal.
#[derive(Clone, Default)]
struct FakeLogind {
    locks: Arc<Mutex<Vec<UnixStream>>>,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl FakeLogind {
    fn inhibit(
        &self,
        what: &str,
        _who: &str,
        _why: &str,
        mode: &str,
    ) -> zbus::fdo::Result<OwnedFd> {
        assert_eq!((what, mode), ("sleep:shutdown", "delay"));
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        self.locks.lock().unwrap().push(ours);
        Ok(OwnedFd::from(std::os::fd::OwnedFd::from(theirs)))
    }

    #[zbus(name = "GetSessionByPID")]
    fn get_session_by_pid(&self, _pid: u32) -> zbus::zvariant::OwnedObjectPath {
        zbus::zvariant::OwnedObjectPath::try_from(SESSION_PATH).unwrap()
    }

    #[zbus(signal)]
    async fn prepare_for_sleep(emitter: &SignalEmitter<'_>, start: bool) -> zbus::Result<()>;
}

const SESSION_PATH: &str = "/org/freedesktop/login1/session/c1";

/// The agent's login session, in the state a test sets.
struct FakeSession {
    state: Arc<Mutex<&'static str>>,
}

#[zbus::interface(name = "org.freedesktop.login1.Session")]
impl FakeSession {
    #[zbus(property)]
    fn state(&self) -> String {
        (*self.state.lock().unwrap()).to_owned()
    }
}

impl FakeLogind {
    fn locks_taken(&self) -> usize {
        self.locks.lock().unwrap().len()
    }

    /// Whether the agent has let go of the lock it took `n`th (its end closed).
    fn released(&self, n: usize) -> bool {
        let locks = self.locks.lock().unwrap();
        let ours = &locks[n];
        ours.set_nonblocking(true).unwrap();
        matches!((&*ours).read(&mut [0u8; 1]), Ok(0))
    }
}

async fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn stopped_while_its_session_closes_the_agent_says_logout() {
    let bus = Bus::start();
    let state = Arc::new(Mutex::new("active"));
    let _connection = zbus::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.login1")
        .unwrap()
        .serve_at(LOGIND_PATH, FakeLogind::default())
        .unwrap()
        .serve_at(
            SESSION_PATH,
            FakeSession {
                state: state.clone(),
            },
        )
        .unwrap()
        .build()
        .await
        .expect("the fake logind on the private bus");

    let relay = start_relay(relay_config());
    let home = Home::new();
    let mut command = home.command();
    command.env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address);
    let mut agent = AgentProcess::run_with(command, &home, &ws_url(relay.addr()), "desk", FAST);
    let mut viewer = Client::join(relay.addr(), "desk", "web").await;
    viewer.expect_presence("online", 1).await;

    // The user logs out: logind marks the session closing, then the session's processes get
    // SIGTERM.
    *state.lock().unwrap() = "closing";
    let status = agent.terminate(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}; log:\n{}", agent.log());
    let gone = viewer.expect_presence("offline", 1).await;
    assert_eq!(gone["reason"], "logout", "{gone}; log:\n{}", agent.log());
}

#[actix_rt::test]
async fn a_sleeping_desktop_says_so_and_is_back_within_two_seconds_of_waking() {
    let bus = Bus::start();
    let logind = FakeLogind::default();
    let connection = zbus::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.login1")
        .unwrap()
        .serve_at(LOGIND_PATH, logind.clone())
        .unwrap()
        .build()
        .await
        .expect("the fake logind on the private bus");
    let emitter = SignalEmitter::new(&connection, LOGIND_PATH).unwrap();

    let relay = start_relay(relay_config());
    let home = Home::new();
    let mut command = home.command();
    command.env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address);
    let agent = AgentProcess::run_with(command, &home, &ws_url(relay.addr()), "napper", FAST);
    let mut viewer = Client::join(relay.addr(), "napper", "web").await;
    viewer.expect_presence("online", 1).await;
    // Subscribed and holding a lock (it subscribes first).
    wait_until("the agent's delay lock", Duration::from_secs(10), || {
        logind.locks_taken() == 1
    })
    .await;
    agent
        .wait_for_log("watching logind", Duration::from_secs(5))
        .await;

    FakeLogind::prepare_for_sleep(&emitter, true).await.unwrap();
    let asleep = viewer.expect_presence("offline", 1).await;
    assert_eq!(asleep["reason"], "sleep", "{asleep}");
    wait_until(
        "the lock released after telling the relay",
        Duration::from_secs(5),
        || logind.released(0),
    )
    .await;

    let woke = Instant::now();
    FakeLogind::prepare_for_sleep(&emitter, false)
        .await
        .unwrap();
    let back = viewer.expect_presence("online", 1).await;
    assert!(back.get("reason").is_none(), "{back}");
    assert!(
        woke.elapsed() < Duration::from_secs(2),
        "back {:?} after waking; the agent's log:\n{}",
        woke.elapsed(),
        agent.log()
    );
    wait_until("a new lock after waking", Duration::from_secs(5), || {
        logind.locks_taken() == 2
    })
    .await;
}
