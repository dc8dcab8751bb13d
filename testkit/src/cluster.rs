//! Cluster mode: a real `nats-server` on a free loopback port with JetStream on (its store in a
//! temporary directory; killed with the test), relays joined through it, and waits with
//! deadlines.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deskbridge_relay::ClusterConfig;
use deskbridge_relay::{Config, RelayHandle};

use crate::client::http_get;
use crate::process::RelayProcess;
use crate::relay::{free_port, start_relay, test_config};

/// Longest wait for something the cluster should do within a heartbeat or a reconnect.
pub const CLUSTER_WAIT: Duration = Duration::from_secs(15);

/// Finds `nats-server` (Debian installs it in /usr/sbin, which may not be on a user's PATH).
fn nats_server_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/bin".into(),
        ])
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nats-server not found: the cluster tests need a real NATS server. Install the \
                 Debian package `nats-server` (apt-get install nats-server); .ci/run installs it \
                 through scripts/lib/packages.sh"
            )
        })
}

/// A `nats-server -js` child on 127.0.0.1; killed when dropped, its JetStream store with it.
pub struct Nats {
    port: u16,
    child: Option<Child>,
    /// JetStream's store; kept across [`Nats::restart`], as a real server's disk is.
    store: tempfile::TempDir,
    /// A configuration file (`-c`) with JetStream settings, from [`Nats::start_with_jetstream`].
    config: Option<PathBuf>,
}

impl Nats {
    /// Starts a NATS server on a free loopback port and waits until it accepts clients.
    pub fn start() -> Self {
        let port = free_port();
        let store = tempfile::tempdir().expect("a temporary directory for JetStream");
        let mut nats = Self {
            port,
            child: None,
            store,
            config: None,
        };
        nats.restart();
        nats
    }

    /// Starts a NATS server as [`Nats::start`] does, with `settings` (e.g. `max_file_store: 64KB`,
    /// a JetStream that runs out of space) in its configuration file's `jetstream { … }` block.
    pub fn start_with_jetstream(settings: &str) -> Self {
        let port = free_port();
        let store = tempfile::tempdir().expect("a temporary directory for JetStream");
        let config = store.path().join("nats-server.conf");
        // The store directory comes from `-sd`, as for every server of the test kit.
        std::fs::write(&config, format!("jetstream {{\n  {settings}\n}}\n"))
            .expect("write the nats-server configuration");
        let mut nats = Self {
            port,
            child: None,
            store,
            config: Some(config),
        };
        nats.restart();
        nats
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut command = Command::new(nats_server_binary());
            if let Some(config) = &self.config {
                command.arg("-c").arg(config);
            }
            let mut child = command
                .args([
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-js",
                    "-sd",
                ])
                .arg(self.store.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nats-server");
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    self.child = Some(child);
                    return;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    // The port may still be held by the previous server for a moment.
                    log::info!("nats-server exited early ({status}); retrying");
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on port {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The test relay settings, joined to the cluster at `nats` as `node`.
pub fn cluster_config(nats: &Nats, node: &str) -> Config {
    let servers = ClusterConfig::parse_servers(&nats.url()).unwrap();
    Config {
        cluster: Some(ClusterConfig::new(servers, node)),
        ..test_config()
    }
}

/// Starts an in-process relay with `config` and waits until it is connected to NATS.
pub async fn start_node(config: Config) -> RelayHandle {
    let relay = start_relay(config);
    wait_cluster(relay.addr(), "ok").await;
    relay
}

/// Waits until the node's `/healthz` says `"cluster":state` (`ok` or `degraded`).
pub async fn wait_cluster(addr: SocketAddr, state: &str) {
    let deadline = Instant::now() + CLUSTER_WAIT;
    loop {
        let (status, body, _) = http_get(addr, "/healthz").await;
        assert_eq!(status, 200, "{body}");
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        if health["cluster"] == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {addr} not cluster={state} within {CLUSTER_WAIT:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of one metric line (`name{labels} value`) on the node's `/metrics`.
pub async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let (_, text, _) = http_get(addr, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// A relay process (`binary`: `env!("CARGO_BIN_EXE_deskbridge-relay")`) joined to `nats` as
/// `node`, with `extra` flags.
pub fn start_node_process(binary: &str, nats: &Nats, node: &str, extra: &[&str]) -> RelayProcess {
    let url = nats.url();
    let mut args = vec!["--nats", url.as_str(), "--node-id", node];
    args.extend_from_slice(extra);
    RelayProcess::start(binary, &args)
}
