//! Test harness: a real relay on a loopback port, the real agent binary as a child process, and a
//! web viewer speaking the protocol over a real WebSocket.
//!
//! Every wait has a deadline and fails with what was seen so far; every child process is killed
//! when its handle drops, so a failing test leaves nothing running.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_codec::Framed;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use deskbridge_protocol::{DesktopState, ServerMessage};
use deskbridge_relay::{Config, RelayHandle};
use futures_util::{SinkExt, StreamExt};

/// A relay config with short timeouts, no tokens required.
pub fn relay_config() -> Config {
    Config {
        allow_anonymous: true,
        heartbeat_interval: Duration::from_secs(1),
        client_timeout: Duration::from_secs(10),
        auth_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// Starts a relay on an ephemeral loopback port.
pub fn start_relay(config: Config) -> RelayHandle {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    RelayHandle::spawn(listener, config).expect("start the relay")
}

/// Starts a relay on a given address, retrying while the port is still being released.
pub fn start_relay_on(addr: SocketAddr, config: Config) -> RelayHandle {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpListener::bind(addr) {
            Ok(listener) => {
                return RelayHandle::spawn(listener, config).expect("restart the relay")
            }
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot bind {addr} again: {e}"),
        }
    }
}

/// A private HOME for one agent process (its config dir, its `.asoundrc`).
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_home(&self) -> PathBuf {
        self.path().join(".config")
    }

    /// A command for the agent binary with a clean environment pointing at this HOME.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskbridge-agent"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.config_home())
            .env("RUST_LOG", "info,deskbridge_agent=debug")
            .stdin(Stdio::null());
        cmd
    }
}

/// The agent binary running in the background; killed on drop.
pub struct AgentProcess {
    child: Child,
    log: PathBuf,
}

/// Timing flags that make reconnects and liveness checks fast enough for tests.
pub const FAST: &[&str] = &[
    "--ping-interval",
    "500ms",
    "--idle-timeout",
    "3s",
    "--backoff-min",
    "100ms",
    "--backoff-max",
    "1s",
];

impl AgentProcess {
    /// Runs `deskbridge-agent run --relay ws://ADDR/ws --id ID ARGS…` in `home`.
    pub fn run(home: &Home, relay: &str, id: &str, args: &[&str]) -> Self {
        let log = home.path().join(format!("agent-{id}.log"));
        let stderr = fs::File::create(&log).expect("create the agent's log file");
        let child = home
            .command()
            .args(["run", "--relay", relay, "--id", id])
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start the agent binary");
        Self { child, log }
    }

    /// Everything the agent logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`, or panics with the log.
    pub async fn wait_for_log(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the agent did not log {needle:?} within {within:?}; its log:\n{}",
                self.log()
            );
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("poll the agent").is_none()
    }

    /// Sends SIGTERM (as systemd does on stop) and waits for the exit, up to a deadline.
    pub async fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the agent") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not exit on SIGTERM; its log:\n{}",
                self.log()
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/ws")
}

/// A web viewer: an awc WebSocket client authenticated as `client_mode: web`.
pub struct Viewer {
    socket: Framed<BoxedSocket, Codec>,
    /// Everything received, for failure messages.
    pub seen: Vec<String>,
}

impl Viewer {
    pub async fn connect(addr: SocketAddr, id: &str) -> Self {
        Self::connect_as(addr, id, "web").await
    }

    /// Connects in `mode` (`web`, or `desktop` to play a prototype desktop by hand).
    pub async fn connect_as(addr: SocketAddr, id: &str, mode: &str) -> Self {
        Self::connect_with(addr, id, mode, None).await
    }

    /// Connects in `mode`, presenting `token` if given.
    pub async fn connect_with(addr: SocketAddr, id: &str, mode: &str, token: Option<&str>) -> Self {
        let (_, socket) = awc::Client::new()
            .ws(ws_url(addr))
            .connect()
            .await
            .expect("viewer connects to the relay");
        let mut viewer = Self {
            socket,
            seen: Vec::new(),
        };
        viewer
            .send(&format!(
                r#"{{"event":"authentication","client_id":"{id}","client_mode":"{mode}"{}}}"#,
                token.map_or(String::new(), |t| format!(r#","token":"{t}""#))
            ))
            .await;
        viewer
            .expect("welcome", Duration::from_secs(5), |m| {
                matches!(m, ServerMessage::Welcome(_)).then_some(())
            })
            .await;
        viewer
    }

    pub async fn send(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("viewer sends");
    }

    /// The next protocol message, answering pings on the way; `None` at the deadline.
    async fn next(&mut self, deadline: Instant) -> Option<ServerMessage> {
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let frame = match actix_rt::time::timeout(left, self.socket.next()).await {
                Err(_) => return None,
                Ok(None) => panic!("the relay closed the viewer; seen: {:#?}", self.seen),
                Ok(Some(frame)) => frame.expect("viewer reads a frame"),
            };
            match frame {
                Frame::Text(bytes) => {
                    let text = String::from_utf8(bytes.to_vec()).expect("utf-8 text");
                    self.seen.push(text.clone());
                    match serde_json::from_str(&text) {
                        Ok(message) => return Some(message),
                        Err(e) => panic!("viewer got an unparsable message {text}: {e}"),
                    }
                }
                Frame::Ping(payload) => {
                    let _ = self.socket.send(Message::Pong(payload)).await;
                }
                Frame::Close(reason) => panic!("relay closed the viewer: {reason:?}"),
                _ => {}
            }
        }
    }

    /// Waits for a message that `pick` accepts, skipping others; panics at the deadline.
    pub async fn expect<T>(
        &mut self,
        what: &str,
        within: Duration,
        mut pick: impl FnMut(&ServerMessage) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        while let Some(message) = self.next(deadline).await {
            if let Some(found) = pick(&message) {
                return found;
            }
        }
        panic!(
            "viewer saw no {what} within {within:?}; it saw:\n{}",
            self.seen.join("\n")
        )
    }

    /// Waits for `presence` with the desktop in `state`.
    pub async fn expect_desktop(&mut self, state: DesktopState, within: Duration) {
        self.expect(&format!("presence {state:?}"), within, |m| match m {
            ServerMessage::Presence(p) if p.desktop == state => Some(()),
            _ => None,
        })
        .await
    }

    /// Collects messages for `window`; used only to check that something does *not* happen.
    pub async fn collect_for(&mut self, window: Duration) -> Vec<ServerMessage> {
        let deadline = Instant::now() + window;
        let mut got = Vec::new();
        while let Some(m) = self.next(deadline).await {
            got.push(m);
        }
        got
    }
}

/// Makes ALSA's default device, for processes with this HOME, write every sample to `capture`.
pub fn capture_to_file(home: &Home, capture: &Path) {
    std::fs::write(
        home.path().join(".asoundrc"),
        format!(
            "pcm.!default {{ type file; slave.pcm \"null\"; file \"{}\"; format \"raw\" }}\n",
            capture.display()
        ),
    )
    .unwrap();
}
