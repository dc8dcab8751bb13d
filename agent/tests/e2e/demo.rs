//! `scripts/demo`, run for real on the debug binaries cargo built for these tests
//! (`DESKBRIDGE_DEMO_BIN_DIR`), with its state in a temp dir: it must not announce itself when
//! its relay did not start, and its agent must not pick up (or change) an installed agent's
//! config.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use deskbridge_protocol::{DesktopState, ServerMessage};

use deskbridge_testkit::Client;

use crate::harness::Home;

/// The demo's own announcement; it must appear only once its relay is serving.
const RUNNING: &str = "deskbridge is running";

/// The directory holding both binaries. Cargo builds the agent for this test; the relay's binary
/// is built beside it by any workspace build, and here if it is missing.
fn bin_dir() -> PathBuf {
    let agent = Path::new(env!("CARGO_BIN_EXE_deskbridge-agent"));
    let dir = agent.parent().expect("the agent binary has a directory");
    if !dir.join("deskbridge-relay").exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--locked",
                "-p",
                "deskbridge-relay",
                "--bin",
                "deskbridge-relay",
            ])
            .current_dir(repo_root())
            .status()
            .expect("run cargo build for the relay");
        assert!(status.success(), "cargo build of the relay binary failed");
    }
    dir.to_path_buf()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the agent crate is in the workspace")
        .to_path_buf()
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free loopback port")
        .port()
}

/// `scripts/demo` running in its own process group; the group is stopped on drop.
struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: PathBuf,
    _state: tempfile::TempDir,
}

impl Demo {
    fn start(home: &Home, port: u16) -> Self {
        let state = tempfile::tempdir().expect("a state dir");
        let stderr = state.path().join("demo.stderr");
        let mut child = Command::new(repo_root().join("scripts/demo"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.config_home())
            .env("RUST_LOG", "info")
            .env("DESKBRIDGE_DEMO_PORT", port.to_string())
            .env("DESKBRIDGE_DEMO_BIN_DIR", bin_dir())
            .env("DESKBRIDGE_DEMO_STATE", state.path().join("demo"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("create the stderr file"))
            .process_group(0)
            .spawn()
            .expect("start scripts/demo");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
            _state: state,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn everything(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout.join("\n"),
            self.stderr()
        )
    }

    /// Waits for a stdout line containing `needle`; panics with everything seen at the deadline.
    fn wait_for_line(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "the demo printed no {needle:?} within {within:?}; {}",
                    self.everything()
                ),
            }
        }
    }

    /// Waits for the script to exit (its stdout closed and its status in).
    fn wait_for_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            while let Ok(line) = self.lines.try_recv() {
                self.stdout.push(line);
            }
            if let Some(status) = self.child.try_wait().expect("poll the demo") {
                // Whatever it printed last.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.stdout.push(line);
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the demo did not exit within {within:?}; {}",
                self.everything()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal_group(&self, signal: libc::c_int) {
        let group = -(self.child.id() as libc::pid_t);
        // SAFETY: kill(2) with a negative pid signals the process group the demo leads.
        unsafe {
            libc::kill(group, signal);
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // TERM first, so the relay and the agent stop cleanly and nothing outlives the test.
        self.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        self.signal_group(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Another program on the port: it accepts connections and even answers every request with a
/// healthy-looking 200, until dropped.
struct Squatter {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Squatter {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("its address").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        use std::io::Write;
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                        let mut request = [0u8; 1024];
                        let _ = stream.read(&mut request);
                        let body = r#"{"status":"ok"}"#;
                        let _ = write!(
                            stream,
                            "HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Self { port, stop }
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn with_its_port_taken_the_demo_stops_with_the_relays_error_and_never_says_it_is_running() {
    let squatter = Squatter::start();
    let home = Home::new();
    let mut demo = Demo::start(&home, squatter.port);
    let status = demo.wait_for_exit(Duration::from_secs(60));
    let everything = demo.everything();
    assert!(
        !status.success(),
        "the demo exited with {status}; {everything}"
    );
    assert!(
        demo.stderr()
            .contains(&format!("cannot listen on 127.0.0.1:{}", squatter.port)),
        "the relay's own error is shown; {everything}"
    );
    assert!(!everything.contains(RUNNING), "{everything}");
    assert!(
        !demo.stderr().contains("deskbridge-agent"),
        "no agent was started; {everything}"
    );
}

#[actix_rt::test]
async fn the_demos_agent_ignores_an_installed_agents_config_and_leaves_it_alone() {
    let home = Home::new();
    let installed = home.config_home().join("deskbridge/agent.toml");
    std::fs::create_dir_all(installed.parent().expect("a parent dir")).expect("config dir");
    // Someone's real agent: another relay, another id, and a slow interval the demo must not get.
    let text = "relay = \"ws://127.0.0.1:9/ws\"\nid = \"someone-else\"\ninterval = \"1h\"\n";
    std::fs::write(&installed, text).expect("write the installed config");
    let before = std::fs::metadata(&installed).expect("stat").modified().ok();

    let port = free_port();
    let mut demo = Demo::start(&home, port);
    let url = demo.wait_for_line("#id=", Duration::from_secs(60));
    let fragment = url.split('#').nth(1).expect("a fragment");
    let field = |name: &str| {
        fragment
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {url}"))
            .to_owned()
    };
    let (id, token) = (field("id"), field("token"));
    assert_ne!(id, "someone-else");

    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut viewer = Client::join_with_token(addr, &id, "web", Some(&token)).await;
    viewer
        .expect_desktop(DesktopState::Online, Duration::from_secs(15))
        .await;
    // Reported at the demo's interval (1 s), not the installed config's hour.
    viewer
        .expect("cpu from the demo's agent", Duration::from_secs(10), |m| {
            matches!(m, ServerMessage::Cpu(_)).then_some(())
        })
        .await;
    let stderr = demo.stderr();
    assert!(
        !stderr.contains(&installed.display().to_string()),
        "the demo's agent read the installed config; {}",
        demo.everything()
    );
    assert_eq!(
        std::fs::read_to_string(&installed).expect("read it back"),
        text
    );
    assert_eq!(
        std::fs::metadata(&installed).expect("stat").modified().ok(),
        before
    );
}
