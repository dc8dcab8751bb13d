//! Command-line interface of `deskbridge-relay`. Every flag can also come from a `DESKBRIDGE_…`
//! environment variable, which is how container and systemd deployments usually configure it.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

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
    Serve(ServeArgs),
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
    /// only: anyone who guesses an id can then watch and beep that desktop.
    #[arg(long, env = "DESKBRIDGE_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,

    /// How often to ping each client.
    #[arg(long, env = "DESKBRIDGE_HEARTBEAT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// Drop a client not heard from (any frame, pongs included) for this long.
    #[arg(long, env = "DESKBRIDGE_CLIENT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub client_timeout: Duration,

    /// Close connections that do not authenticate within this time.
    #[arg(long, env = "DESKBRIDGE_AUTH_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub auth_timeout: Duration,

    /// Largest message accepted, in bytes; larger ones close the connection with 1009.
    #[arg(long, env = "DESKBRIDGE_MAX_MESSAGE_SIZE", default_value_t = 64 * 1024)]
    pub max_message_size: usize,

    /// Most web viewers one client id may have at once.
    #[arg(long, env = "DESKBRIDGE_MAX_VIEWERS", default_value_t = 32)]
    pub max_viewers: usize,

    /// Frames queued towards one client before cpu updates to it are dropped.
    #[arg(long, env = "DESKBRIDGE_SEND_QUEUE", default_value_t = 64)]
    pub send_queue: usize,

    /// How many cpu samples each id keeps for viewers that join later.
    #[arg(long, env = "DESKBRIDGE_HISTORY", default_value_t = 60)]
    pub history: usize,
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
        if self.max_message_size < 1024 {
            return Err("--max-message-size must be at least 1024 bytes".to_owned());
        }
        Ok(Config {
            allow_anonymous: self.allow_anonymous,
            heartbeat_interval: self.heartbeat_interval,
            client_timeout: self.client_timeout,
            auth_timeout: self.auth_timeout,
            max_message_size: self.max_message_size,
            max_viewers_per_id: self.max_viewers,
            send_queue: self.send_queue,
            history_len: self.history,
            ..Config::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let cli = Cli::try_parse_from(["deskbridge-relay", "serve"]).unwrap();
        let Command::Serve(args) = cli.command;
        assert_eq!(args.listen, "127.0.0.1:8000".parse().unwrap());
        let config = args.to_config().unwrap();
        assert_eq!(config.heartbeat_interval, Duration::from_secs(10));
        assert_eq!(config.client_timeout, Duration::from_secs(30));
        assert_eq!(config.max_viewers_per_id, 32);
        assert!(!config.allow_anonymous);
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
        let Command::Serve(args) = cli.command;
        assert!(args.to_config().unwrap_err().contains("--client-timeout"));
    }

    #[test]
    fn bad_durations_say_how_to_write_them() {
        let err = Cli::try_parse_from(["deskbridge-relay", "serve", "--auth-timeout", "soon"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("10s"), "{err}");
    }
}
