//! Command-line interface of `deskbridge-relay`. Every flag can also come from a `DESKBRIDGE_…`
//! environment variable, which is how container and systemd deployments usually configure it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::cluster::config::ClusterConfig;
use crate::cluster::config::{default_node_id, validate_node_id};
use crate::config::Config;
use crate::store::config::{default_data_dir, StoreConfig};

pub mod user;

#[derive(Debug, Parser)]
#[command(
    name = "deskbridge-relay",
    version,
    about = "Pairs desktop agents with web pages over WebSockets and relays messages between them",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the page, the WebSocket endpoint, /healthz and /metrics.
    Serve(Box<ServeArgs>),
    /// Write a new random token key file (mode 0600).
    Keygen(KeygenArgs),
    /// Mint a token for one client id and mode; prints only the token.
    Token(TokenArgs),
    /// Manage the people who may sign in (a users file: add, list, remove, passwd, set).
    User(user::UserArgs),
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key file.
    pub path: PathBuf,
    /// Replace an existing file (tokens signed with its keys stop working).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    Desktop,
    Web,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The key file to sign with (its first key signs).
    #[arg(long, env = "DESKBRIDGE_SECRET_FILE")]
    pub secret_file: PathBuf,
    /// The client id the token opens.
    #[arg(
        long,
        required_unless_present = "desktops",
        conflicts_with = "desktops"
    )]
    pub id: Option<String>,
    /// Which side the token is for.
    #[arg(long, value_enum)]
    pub mode: ModeArg,
    /// With --mode web, instead of --id: every desktop matching these patterns (comma-separated
    /// ids and globs, `*` for all), for scripts and kiosks.
    #[arg(long)]
    pub desktops: Option<String>,
    /// With --desktops: what the token may do. Default: viewer (watch only); operator also sends
    /// commands.
    #[arg(long, value_enum, requires = "desktops", conflicts_with = "id")]
    pub role: Option<user::RoleArg>,
    /// How long the token is valid (90s, 12h, 30d…). Default: 12h for web, 365d for desktop.
    #[arg(long, value_parser = parse_duration)]
    pub ttl: Option<Duration>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write durations like 500ms, 10s, 2m)"))
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on. Use 0.0.0.0:8000 to accept connections from other machines.
    #[arg(long, env = "DESKBRIDGE_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Accept clients that present no token. For development and the 2018 prototype's clients
    /// only: anyone who guesses an id can then watch and beep that desktop. Also accepts pages
    /// opened from disk (`Origin: null`), as the prototype's web.html is.
    #[arg(long, env = "DESKBRIDGE_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,

    /// Token key file (create one with `deskbridge-relay keygen`). Required unless
    /// --allow-anonymous.
    #[arg(long, env = "DESKBRIDGE_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,

    /// File of revoked token ids (jti), one per line; re-read when it changes and on SIGHUP.
    #[arg(long, env = "DESKBRIDGE_REVOKED_FILE")]
    pub revoked_file: Option<PathBuf>,

    /// The people who may sign in (made with `deskbridge-relay user add`): turns on sign-in and
    /// the fleet page. Re-read when it changes and on SIGHUP; edits reach live sessions within 2 s.
    #[arg(long, env = "DESKBRIDGE_USERS_FILE")]
    pub users_file: Option<PathBuf>,

    /// The relay's address as people and agents reach it (e.g. https://relay.example.com), for
    /// the URLs it hands out: share links and the `deskbridge-agent install --relay …` line.
    /// Default: made from each request's Host header.
    #[arg(long, env = "DESKBRIDGE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Another origin whose pages may open viewer sessions (e.g. https://app.example.com).
    /// Repeatable. The relay's own origin is always allowed; `null` only with --allow-anonymous.
    #[arg(
        long = "allowed-origin",
        env = "DESKBRIDGE_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS and WSS.
    #[arg(long, env = "DESKBRIDGE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, env = "DESKBRIDGE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Most WebSocket connections open at once.
    #[arg(long, env = "DESKBRIDGE_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,

    /// Most WebSocket connections open at once from one client address.
    #[arg(
        long,
        env = "DESKBRIDGE_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,

    /// A reverse proxy whose X-Forwarded-For header is believed. Repeatable.
    #[arg(
        long = "trusted-proxy",
        env = "DESKBRIDGE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<IpAddr>,

    /// Messages per second one connection may send, on average.
    #[arg(long, env = "DESKBRIDGE_MESSAGE_RATE", default_value_t = 20)]
    pub message_rate: u32,

    /// Messages one connection may send in a burst.
    #[arg(long, env = "DESKBRIDGE_MESSAGE_BURST", default_value_t = 40)]
    pub message_burst: u32,

    /// Commands (beeps) per second one desktop accepts from all its viewers together.
    #[arg(long, env = "DESKBRIDGE_COMMANDS_PER_SECOND", default_value_t = 5)]
    pub commands_per_second: u32,

    /// Ping a client silent for this long; desktops also hear a heartbeat from the relay at
    /// least this often (every third of their timeout, where longer).
    #[arg(long, env = "DESKBRIDGE_HEARTBEAT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// Drop a client not heard from (any frame, pongs included) for this long.
    #[arg(long, env = "DESKBRIDGE_CLIENT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub client_timeout: Duration,

    /// Drop a desktop nobody watches only after this long without a frame from it; it is told
    /// so in `audience`, and the relay sends it a heartbeat every third of it. At least
    /// --client-timeout.
    #[arg(long, env = "DESKBRIDGE_CLIENT_TIMEOUT_IDLE", default_value = "120s", value_parser = parse_duration)]
    pub client_timeout_idle: Duration,

    /// Close connections that do not authenticate within this time.
    #[arg(long, env = "DESKBRIDGE_AUTH_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub auth_timeout: Duration,

    /// Largest message accepted, in bytes; larger ones close the connection with 1009.
    #[arg(long, env = "DESKBRIDGE_MAX_MESSAGE_SIZE", default_value_t = 64 * 1024)]
    pub max_message_size: usize,

    /// Most web viewers one client id may have at once.
    #[arg(long, env = "DESKBRIDGE_MAX_VIEWERS", default_value_t = 32)]
    pub max_viewers: usize,

    /// Most viewer connections one token may hold open at once.
    #[arg(long, env = "DESKBRIDGE_MAX_VIEWERS_PER_TOKEN", default_value_t = 4)]
    pub max_viewers_per_token: usize,

    /// How far clients' clocks may disagree with the relay's: tokens are accepted this long past
    /// their expiry (and before their not-before), and sessions end this long after it.
    #[arg(long, env = "DESKBRIDGE_CLOCK_SKEW", default_value = "30s", value_parser = parse_duration)]
    pub clock_skew: Duration,

    /// Frames queued towards one client before cpu updates to it are dropped.
    #[arg(long, env = "DESKBRIDGE_SEND_QUEUE", default_value_t = 64)]
    pub send_queue: usize,

    /// How many cpu samples each id keeps for viewers that join later.
    #[arg(long, env = "DESKBRIDGE_HISTORY", default_value_t = 60)]
    pub history: usize,

    /// How often a desktop is asked to report while someone has its detail view open.
    #[arg(long, env = "DESKBRIDGE_REPORT_INTERVAL_DETAIL", default_value = "1s", value_parser = parse_duration)]
    pub report_interval_detail: Duration,

    /// How often a desktop is asked to report while it is only on fleet grids.
    #[arg(long, env = "DESKBRIDGE_REPORT_INTERVAL_OVERVIEW", default_value = "5s", value_parser = parse_duration)]
    pub report_interval_overview: Duration,

    /// How often a desktop is asked to report while nobody watches it (its heartbeats keep it
    /// online in between).
    #[arg(long, env = "DESKBRIDGE_REPORT_INTERVAL_IDLE", default_value = "60s", value_parser = parse_duration)]
    pub report_interval_idle: Duration,
    /// Where the store keeps every desktop's history and the audit log (created if missing).
    /// Default: `deskbridge` under the XDG state directory (~/.local/state/deskbridge).
    #[arg(long, env = "DESKBRIDGE_DATA_DIR", help_heading = "Store")]
    pub data_dir: Option<PathBuf>,

    /// Keep no store: only the last samples of each connected desktop, in memory.
    #[arg(
        long,
        env = "DESKBRIDGE_NO_STORE",
        conflicts_with = "data_dir",
        help_heading = "Store"
    )]
    pub no_store: bool,

    /// How long every cpu sample is kept as it arrived.
    #[arg(long, env = "DESKBRIDGE_RETENTION_RAW", default_value = "24h", value_parser = parse_duration, help_heading = "Store")]
    pub retention_raw: Duration,

    /// How long the one-minute aggregates (min, mean, max) are kept.
    #[arg(long, env = "DESKBRIDGE_RETENTION_MINUTES", default_value = "30d", value_parser = parse_duration, help_heading = "Store")]
    pub retention_minutes: Duration,

    /// How long audit records are kept.
    #[arg(long, env = "DESKBRIDGE_RETENTION_AUDIT", default_value = "365d", value_parser = parse_duration, help_heading = "Store")]
    pub retention_audit: Duration,

    /// Cluster mode: join the other relays through these NATS servers (comma-separated, e.g.
    /// nats://10.0.0.5:4222). Without it the relay runs alone.
    #[arg(long, env = "DESKBRIDGE_NATS", help_heading = "Cluster")]
    pub nats: Option<String>,

    /// This relay's name in the cluster (A-Z a-z 0-9 . _ -). Default: the host name and a random
    /// suffix, new on every start.
    #[arg(long, env = "DESKBRIDGE_NODE_ID", help_heading = "Cluster")]
    pub node_id: Option<String>,

    /// NATS credentials file (.creds: JWT and nkey seed).
    #[arg(long, env = "DESKBRIDGE_NATS_CREDS", help_heading = "Cluster")]
    pub nats_creds: Option<PathBuf>,

    /// NATS authentication token. Prefer the environment variable: command lines are visible to
    /// every user of the machine.
    #[arg(
        long,
        env = "DESKBRIDGE_NATS_TOKEN",
        hide_env_values = true,
        help_heading = "Cluster"
    )]
    pub nats_token: Option<String>,

    /// CA certificate (PEM) that signed the NATS servers' certificates; implies TLS.
    #[arg(long, env = "DESKBRIDGE_NATS_TLS_CA", help_heading = "Cluster")]
    pub nats_tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) for NATS servers that verify clients; with --nats-tls-key.
    #[arg(
        long,
        env = "DESKBRIDGE_NATS_TLS_CERT",
        requires = "nats_tls_key",
        help_heading = "Cluster"
    )]
    pub nats_tls_cert: Option<PathBuf>,

    /// Client private key (PEM); with --nats-tls-cert.
    #[arg(
        long,
        env = "DESKBRIDGE_NATS_TLS_KEY",
        requires = "nats_tls_cert",
        help_heading = "Cluster"
    )]
    pub nats_tls_key: Option<PathBuf>,

    /// How long to wait for another node to answer a command or a history request.
    #[arg(long, env = "DESKBRIDGE_NATS_REQUEST_TIMEOUT", default_value = "1s", value_parser = parse_duration, help_heading = "Cluster")]
    pub nats_request_timeout: Duration,
}

impl ServeArgs {
    /// The relay configuration these flags describe.
    pub fn to_config(&self) -> Result<Config, String> {
        if self.client_timeout <= self.heartbeat_interval {
            return Err(format!(
                "--client-timeout ({}) must be longer than --heartbeat-interval ({}), or every client would be dropped between pings",
                humantime::format_duration(self.client_timeout),
                humantime::format_duration(self.heartbeat_interval)
            ));
        }
        if self.client_timeout_idle < self.client_timeout {
            return Err(format!(
                "--client-timeout-idle ({}) must be at least --client-timeout ({})",
                humantime::format_duration(self.client_timeout_idle),
                humantime::format_duration(self.client_timeout)
            ));
        }
        let intervals = [
            ("--report-interval-detail", self.report_interval_detail),
            ("--report-interval-overview", self.report_interval_overview),
            ("--report-interval-idle", self.report_interval_idle),
        ];
        if let Some((flag, _)) = intervals
            .iter()
            .find(|(_, d)| *d < Duration::from_millis(100) || *d > Duration::from_secs(3600))
        {
            return Err(format!(
                "{flag} must be between 100ms and 1h (write durations like 1s, 5s, 1m)"
            ));
        }
        if self.max_message_size < 1024 {
            return Err("--max-message-size must be at least 1024 bytes".to_owned());
        }
        let cluster = self.cluster_config()?;
        let public_url = match &self.public_url {
            Some(url) => Some(check_public_url(url)?),
            None => None,
        };
        let store = self.store_config()?;
        Ok(Config {
            cluster,
            public_url,
            data_dir: store.as_ref().map(|s| s.dir.clone()),
            store,
            allow_anonymous: self.allow_anonymous,
            revoked_file: self.revoked_file.clone(),
            users_file: self.users_file.clone(),
            allowed_origins: self.allowed_origins.clone(),
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            trusted_proxies: self.trusted_proxies.clone(),
            message_rate: self.message_rate,
            message_burst: self.message_burst.max(self.message_rate),
            commands_per_second: self.commands_per_second,
            heartbeat_interval: self.heartbeat_interval,
            client_timeout: self.client_timeout,
            client_timeout_idle: self.client_timeout_idle,
            auth_timeout: self.auth_timeout,
            max_message_size: self.max_message_size,
            max_viewers_per_id: self.max_viewers,
            max_viewers_per_token: self.max_viewers_per_token.max(1),
            clock_skew: self.clock_skew,
            send_queue: self.send_queue,
            history_len: self.history,
            report_interval_detail: self.report_interval_detail,
            report_interval_overview: self.report_interval_overview,
            report_interval_idle: self.report_interval_idle,
            ..Config::default()
        })
    }

    /// The store's settings: `--data-dir`, or the XDG default; none with `--no-store`.
    fn store_config(&self) -> Result<Option<StoreConfig>, String> {
        if self.no_store {
            return Ok(None);
        }
        let dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir().ok_or(
                "no home directory to keep the store in: pass --data-dir PATH, or --no-store",
            )?,
        };
        if self.retention_raw > self.retention_minutes {
            return Err("--retention-raw must not be longer than --retention-minutes".to_owned());
        }
        let mut store = StoreConfig::new(dir);
        store.retention_raw = self.retention_raw;
        store.retention_minutes = self.retention_minutes;
        store.retention_audit = self.retention_audit;
        Ok(Some(store))
    }

    /// The cluster settings, if `--nats` is given; the other cluster flags need it.
    fn cluster_config(&self) -> Result<Option<ClusterConfig>, String> {
        let Some(nats) = &self.nats else {
            let stray = [
                (self.node_id.is_some(), "--node-id"),
                (self.nats_creds.is_some(), "--nats-creds"),
                (self.nats_token.is_some(), "--nats-token"),
                (self.nats_tls_ca.is_some(), "--nats-tls-ca"),
                (self.nats_tls_cert.is_some(), "--nats-tls-cert"),
            ];
            return match stray.iter().find(|(set, _)| *set) {
                Some((_, flag)) => Err(format!(
                    "{flag} only applies in cluster mode: add --nats nats://HOST:4222"
                )),
                None => Ok(None),
            };
        };
        let node_id = match &self.node_id {
            Some(id) => {
                validate_node_id(id)?;
                id.clone()
            }
            None => default_node_id(),
        };
        let mut config = ClusterConfig::new(ClusterConfig::parse_servers(nats)?, node_id);
        config.credentials_file = self.nats_creds.clone();
        config.token = self.nats_token.clone();
        config.tls_ca = self.nats_tls_ca.clone();
        config.tls_client_cert = self.nats_tls_cert.clone().zip(self.nats_tls_key.clone());
        config.request_timeout = self.nats_request_timeout;
        Ok(Some(config))
    }
}

/// `--public-url` without a trailing slash, if it is an http(s) URL of a host and nothing else.
fn check_public_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ']) => Ok(url.to_owned()),
        _ => Err(format!(
            "--public-url {url:?} must be the relay's https:// (or http://) address, like https://relay.example.com, without a path"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let cli = Cli::try_parse_from(["deskbridge-relay", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        assert_eq!(args.listen, "127.0.0.1:8000".parse().unwrap());
        let config = args.to_config().unwrap();
        assert_eq!(config.heartbeat_interval, Duration::from_secs(10));
        assert_eq!(config.client_timeout, Duration::from_secs(30));
        assert_eq!(config.client_timeout_idle, Duration::from_secs(120));
        assert_eq!(
            Config::default().client_timeout_idle,
            config.client_timeout_idle
        );
        assert_eq!(config.max_viewers_per_id, 32);
        assert!(!config.allow_anonymous);
        assert_eq!(config.report_interval_detail, Duration::from_secs(1));
        assert_eq!(config.report_interval_overview, Duration::from_secs(5));
        assert_eq!(config.report_interval_idle, Duration::from_secs(60));
        let defaults = Config::default();
        assert_eq!(
            (
                defaults.report_interval_detail,
                defaults.report_interval_overview,
                defaults.report_interval_idle
            ),
            (
                config.report_interval_detail,
                config.report_interval_overview,
                config.report_interval_idle
            )
        );
    }

    #[test]
    fn rejects_a_timeout_shorter_than_the_heartbeat() {
        let cli = Cli::try_parse_from([
            "deskbridge-relay",
            "serve",
            "--heartbeat-interval",
            "10s",
            "--client-timeout",
            "5s",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        assert!(args.to_config().unwrap_err().contains("--client-timeout"));
    }

    #[test]
    fn rejects_an_idle_timeout_shorter_than_the_client_timeout() {
        let cli =
            Cli::try_parse_from(["deskbridge-relay", "serve", "--client-timeout-idle", "20s"])
                .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        assert!(args
            .to_config()
            .unwrap_err()
            .contains("--client-timeout-idle"));
    }

    #[test]
    fn token_takes_an_id_a_mode_and_an_optional_ttl() {
        let cli = Cli::try_parse_from([
            "deskbridge-relay",
            "token",
            "--secret-file",
            "k",
            "--id",
            "a",
            "--mode",
            "web",
            "--ttl",
            "30d",
        ])
        .unwrap();
        let Command::Token(args) = cli.command else {
            panic!("token")
        };
        assert_eq!(args.mode, ModeArg::Web);
        assert_eq!(args.ttl, Some(Duration::from_secs(30 * 86400)));
        assert!(Cli::try_parse_from([
            "deskbridge-relay",
            "token",
            "--id",
            "a",
            "--mode",
            "robot",
            "--secret-file",
            "k"
        ])
        .is_err());
    }

    fn serve_args(args: &[&str]) -> Box<ServeArgs> {
        let cli = Cli::try_parse_from(["deskbridge-relay", "serve"].iter().chain(args)).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        args
    }

    #[test]
    fn cluster_mode_is_off_without_nats_and_its_flags_need_it() {
        assert!(serve_args(&[]).to_config().unwrap().cluster.is_none());
        let err = serve_args(&["--node-id", "a"]).to_config().unwrap_err();
        assert!(err.contains("--nats"), "{err}");
    }

    #[test]
    fn nats_flags_make_a_cluster_config() {
        let config = serve_args(&[
            "--nats",
            "nats://127.0.0.1:4222,nats://127.0.0.1:4223",
            "--node-id",
            "relay-a",
            "--nats-request-timeout",
            "250ms",
        ])
        .to_config()
        .unwrap();
        let cluster = config.cluster.unwrap();
        assert_eq!(cluster.servers.len(), 2);
        assert_eq!(cluster.node_id, "relay-a");
        assert_eq!(cluster.request_timeout, Duration::from_millis(250));
        let default_id = serve_args(&["--nats", "127.0.0.1"]).to_config().unwrap();
        assert!(!default_id.cluster.unwrap().node_id.is_empty());
        let bad = serve_args(&["--nats", "x", "--node-id", "no spaces"]).to_config();
        assert!(bad.unwrap_err().contains("--node-id"));
    }

    #[test]
    fn public_url_and_data_dir_reach_the_config() {
        let config = serve_args(&[
            "--public-url",
            "https://relay.example.com/",
            "--data-dir",
            "/var/lib/deskbridge",
        ])
        .to_config()
        .unwrap();
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://relay.example.com")
        );
        assert_eq!(
            config.data_dir.as_deref(),
            Some(std::path::Path::new("/var/lib/deskbridge"))
        );
        for bad in ["relay.example.com", "https://", "https://a/b", "ftp://a"] {
            let err = serve_args(&["--public-url", bad]).to_config().unwrap_err();
            assert!(err.contains("--public-url"), "{bad}: {err}");
        }
    }

    #[test]
    fn web_tokens_take_an_id_or_patterns_and_a_role() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(
                [
                    "deskbridge-relay",
                    "token",
                    "--secret-file",
                    "k",
                    "--mode",
                    "web",
                ]
                .iter()
                .chain(args),
            )
        };
        let Command::Token(args) = parse(&["--desktops", "a-*"]).unwrap().command else {
            panic!("token")
        };
        assert_eq!(args.desktops.as_deref(), Some("a-*"));
        assert_eq!(args.role, None, "the command defaults it to viewer");
        assert!(parse(&["--desktops", "a-*", "--role", "operator"]).is_ok());
        assert!(parse(&["--id", "a", "--desktops", "a-*"]).is_err());
        assert!(parse(&["--id", "a", "--role", "viewer"]).is_err());
        assert!(parse(&[]).is_err(), "one of --id and --desktops");
    }

    #[test]
    fn the_store_defaults_to_the_state_directory_and_no_store_turns_it_off() {
        let store = serve_args(&[]).to_config().unwrap().store;
        if let Some(default) = default_data_dir() {
            let store = store.unwrap();
            assert_eq!(store.dir, default);
            assert!(store.dir.ends_with("deskbridge"));
            assert_eq!(store.retention_raw, Duration::from_secs(86_400));
            assert_eq!(store.retention_minutes, Duration::from_secs(30 * 86_400));
        }
        assert!(serve_args(&["--no-store"])
            .to_config()
            .unwrap()
            .store
            .is_none());
        let store = serve_args(&["--data-dir", "/tmp/x", "--retention-raw", "2h"])
            .to_config()
            .unwrap()
            .store
            .unwrap();
        assert_eq!(store.dir, PathBuf::from("/tmp/x"));
        assert_eq!(store.retention_raw, Duration::from_secs(7200));
        assert!(Cli::try_parse_from([
            "deskbridge-relay",
            "serve",
            "--no-store",
            "--data-dir",
            "x"
        ])
        .is_err());
        let err = serve_args(&["--retention-raw", "40d"])
            .to_config()
            .unwrap_err();
        assert!(err.contains("--retention-raw"), "{err}");
        assert!(
            Config::default().store.is_none(),
            "tests never write to disk unasked"
        );
    }

    #[test]
    fn tls_needs_both_cert_and_key() {
        assert!(Cli::try_parse_from(["deskbridge-relay", "serve", "--tls-cert", "c.pem"]).is_err());
    }

    #[test]
    fn bad_durations_say_how_to_write_them() {
        let err = Cli::try_parse_from(["deskbridge-relay", "serve", "--auth-timeout", "soon"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("10s"), "{err}");
    }
}
