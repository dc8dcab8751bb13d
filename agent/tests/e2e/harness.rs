//! The agent's own test harness: the real agent binary as a child process in a private HOME, and
//! sound captured through ALSA. The relay, tokens and the viewer's WebSocket client come from
//! `deskbridge-testkit`.
//!
//! Every wait has a deadline and fails with what was seen so far; every child process is killed
//! when its handle drops, so a failing test leaves nothing running.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deskbridge_testkit::Config;

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
            // No system bus unless a test provides one: the machine's own logind stays out of it.
            .env(
                "DBUS_SYSTEM_BUS_ADDRESS",
                format!("unix:path={}", self.path().join("no-system-bus").display()),
            )
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
        Self::run_with(home.command(), home, relay, id, args)
    }

    /// Like [`AgentProcess::run`], from a command the test prepared (extra environment).
    pub fn run_with(
        mut command: Command,
        home: &Home,
        relay: &str,
        id: &str,
        args: &[&str],
    ) -> Self {
        let log = home.path().join(format!("agent-{id}.log"));
        let stderr = fs::File::create(&log).expect("create the agent's log file");
        let child = command
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

    /// Kills the process (SIGKILL): it gets no chance to say anything.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill the agent");
        self.child.wait().expect("reap the agent");
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
