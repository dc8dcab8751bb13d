//! Everything an operator can tune about a relay, with the defaults a single public node should
//! run with. The CLI (`cli.rs`) fills this in; tests build it directly with short timeouts.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::config::ClusterConfig;
use crate::store::config::StoreConfig;
use deskbridge_auth::KeySet;

/// Relay settings. `Default` gives the production defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Accept clients without a token. Off by default: anyone who guesses an id could otherwise
    /// watch and beep someone else's desktop.
    pub allow_anonymous: bool,
    /// How often the relay pings each session.
    pub heartbeat_interval: Duration,
    /// A session silent (no frame of any kind, pongs included) for this long is dropped.
    pub client_timeout: Duration,
    /// …but a desktop nobody watches only after this long, told to it in `audience.timeout_ms`
    /// so it may heartbeat less often (see `session/liveness.rs`).
    pub client_timeout_idle: Duration,
    /// A connection must authenticate within this time.
    pub auth_timeout: Duration,
    /// Largest accepted message (a whole message, after joining continuation frames), in bytes.
    pub max_message_size: usize,
    /// Most web viewers one client id may have at once.
    pub max_viewers_per_id: usize,
    /// Most viewer sessions one token may hold open at once, so one leaked or shared token cannot
    /// take every viewer slot of an id.
    pub max_viewers_per_token: usize,
    /// Allowance for clocks that disagree with the relay's: a token is accepted this long past its
    /// `exp` (and before its `nbf`), and a session ends this long after its token's `exp`.
    pub clock_skew: Duration,
    /// Frames queued towards one client before telemetry to it is dropped; commands and control
    /// messages may use a further quarter of this as headroom.
    pub send_queue: usize,
    /// How many cpu samples each id keeps for `history`.
    pub history_len: usize,
    /// On shutdown, how long sessions get to flush their close frames before the process exits.
    pub shutdown_grace: Duration,
    /// Token keys; `None` only with `allow_anonymous`.
    pub keys: Option<KeySet>,
    /// File of revoked token ids, re-read on change and on SIGHUP.
    pub revoked_file: Option<PathBuf>,
    /// The people who may sign in (`--users-file`), re-read on change and on SIGHUP; sign-in
    /// and the fleet page are off without it.
    pub users_file: Option<PathBuf>,
    /// Frames queued towards one fleet connection (a signed-in grid watching many desktops)
    /// before telemetry to it is dropped: it carries every watched desktop's samples.
    pub fleet_send_queue: usize,
    /// Origins besides the relay's own whose pages may open viewer sessions.
    pub allowed_origins: Vec<String>,
    /// Most WebSocket connections open at once.
    pub max_connections: usize,
    /// Most WebSocket connections open at once from one client address.
    pub max_connections_per_address: usize,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Messages per second one session may send on average…
    pub message_rate: u32,
    /// …and in a burst.
    pub message_burst: u32,
    /// Refused frames within 10 s after which a flooding session is closed (a few seconds' worth
    /// at `message_rate`).
    pub flood_refusals: u32,
    /// Commands per second one desktop accepts from all its viewers together.
    pub commands_per_second: u32,
    /// Serve HTTPS/WSS with this configuration instead of plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Cluster mode: join the other relays through NATS. `None` runs a single relay.
    pub cluster: Option<ClusterConfig>,
    /// Where the relay keeps what must outlive a restart (`--data-dir`, by default under the XDG
    /// state directory): share links and sign-outs (`shares.json`) and the store's database.
    /// `None` (the default here, and `--no-store`) keeps them in memory only.
    pub data_dir: Option<PathBuf>,
    /// The relay's address as people and agents reach it (`--public-url`, e.g.
    /// `https://relay.example.com`), for the URLs it hands out (share links, the agent's
    /// `--relay`). `None` derives them from each request's `Host`.
    pub public_url: Option<String>,
    /// The reporting interval asked of a desktop while someone has its detail view open…
    pub report_interval_detail: Duration,
    /// …while it is only on fleet grids…
    pub report_interval_overview: Duration,
    /// …and while nobody watches it (see `matchmaker/audience.rs`).
    pub report_interval_idle: Duration,
    /// The embedded store of history and the audit log (`--data-dir`). `None` (the default, and
    /// `--no-store`) keeps only the in-memory history, so tests never write to disk unasked.
    pub store: Option<StoreConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            allow_anonymous: false,
            heartbeat_interval: Duration::from_secs(10),
            client_timeout: Duration::from_secs(30),
            client_timeout_idle: Duration::from_secs(120),
            auth_timeout: Duration::from_secs(10),
            max_message_size: 64 * 1024,
            max_viewers_per_id: 32,
            max_viewers_per_token: 4,
            clock_skew: Duration::from_secs(30),
            send_queue: 64,
            history_len: 60,
            shutdown_grace: Duration::from_secs(2),
            keys: None,
            revoked_file: None,
            users_file: None,
            fleet_send_queue: 4096,
            allowed_origins: Vec::new(),
            max_connections: 20_000,
            max_connections_per_address: 256,
            trusted_proxies: Vec::new(),
            message_rate: 20,
            message_burst: 40,
            flood_refusals: 50,
            commands_per_second: 5,
            tls: None,
            cluster: None,
            data_dir: None,
            public_url: None,
            report_interval_detail: Duration::from_secs(1),
            report_interval_overview: Duration::from_secs(5),
            report_interval_idle: Duration::from_secs(60),
            store: None,
        }
    }
}
