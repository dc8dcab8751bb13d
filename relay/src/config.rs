//! Everything an operator can tune about a relay, with the defaults a single public node should
//! run with. The CLI (`cli.rs`) fills this in; tests build it directly with short timeouts.

use std::time::Duration;

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
    /// A connection must authenticate within this time.
    pub auth_timeout: Duration,
    /// Largest accepted message (a whole message, after joining continuation frames), in bytes.
    pub max_message_size: usize,
    /// Most web viewers one client id may have at once.
    pub max_viewers_per_id: usize,
    /// Frames queued towards one client before telemetry to it is dropped; commands and control
    /// messages may use a further quarter of this as headroom.
    pub send_queue: usize,
    /// How many cpu samples each id keeps for `history`.
    pub history_len: usize,
    /// On shutdown, how long sessions get to flush their close frames before the process exits.
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            allow_anonymous: false,
            heartbeat_interval: Duration::from_secs(10),
            client_timeout: Duration::from_secs(30),
            auth_timeout: Duration::from_secs(10),
            max_message_size: 64 * 1024,
            max_viewers_per_id: 32,
            send_queue: 64,
            history_len: 60,
            shutdown_grace: Duration::from_secs(2),
        }
    }
}
