//! The command line: `run`, `install`, `uninstall`, `status`, every option also readable from a
//! `DESKBRIDGE_…` environment variable.
//!
//! Only parsing lives here; turning the parsed values plus the config file into something the agent
//! can run with is [`crate::settings`]'s job. Timing knobs that only tests and operators chasing a
//! problem need (ping period, idle timeout, backoff limits) are hidden from `--help` so the help
//! stays about the four things a user sets.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// deskbridge desktop agent: reports this computer's CPU load to a deskbridge relay and plays a
/// beep when asked from the web page.
#[derive(Debug, Parser)]
#[command(name = "deskbridge-agent", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to the relay and keep reporting until stopped (what autostart runs).
    Run(RunArgs),
    /// Write the config file and make the agent start at login.
    Install(InstallArgs),
    /// Remove what `install` wrote: the login entry and the config file.
    Uninstall(SystemArgs),
    /// Show the config in use and whether the agent starts at login.
    Status(SystemArgs),
}

/// Where the config file is.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// Config file [default: the platform config dir, e.g. ~/.config/deskbridge/agent.toml].
    #[arg(long, env = "DESKBRIDGE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// The settings a user chooses; each overrides the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct ConnectionArgs {
    /// Relay WebSocket URL, ws://HOST:PORT/ws or wss://HOST/ws; several, comma-separated, are
    /// tried in turn (a cluster's nodes).
    #[arg(long, env = "DESKBRIDGE_RELAY", value_name = "URL")]
    pub relay: Option<String>,
    /// Client id pairing this computer with its web page [default: the hostname].
    #[arg(long, env = "DESKBRIDGE_ID", value_name = "ID")]
    pub id: Option<String>,
    /// Token the relay expects (prefer the config file or the environment: flags show in `ps`).
    #[arg(
        long,
        env = "DESKBRIDGE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// The shortest interval between CPU reports, e.g. 1s or 500ms [default: 1s]; the relay asks
    /// for longer ones while nobody watches the desktop closely.
    #[arg(long, env = "DESKBRIDGE_INTERVAL", value_name = "DURATION")]
    pub interval: Option<String>,
    /// Extra PEM file of CA certificates to trust for wss:// besides the system roots.
    #[arg(long, env = "DESKBRIDGE_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
}

/// Connection timing, for tests and troubleshooting.
#[derive(Debug, Clone, Args)]
pub struct TimingArgs {
    /// How long the relay may say nothing before the agent pings it (two thirds of a timeout the
    /// relay states, where longer).
    #[arg(long, env = "DESKBRIDGE_PING_INTERVAL", default_value = "10s", value_parser = duration, hide = true)]
    pub ping_interval: Duration,
    /// Reconnect when nothing at all arrived from the relay for this long.
    #[arg(long, env = "DESKBRIDGE_IDLE_TIMEOUT", default_value = "30s", value_parser = duration, hide = true)]
    pub idle_timeout: Duration,
    /// First reconnect delay ceiling; doubles on each failure.
    #[arg(long, env = "DESKBRIDGE_BACKOFF_MIN", default_value = "500ms", value_parser = duration, hide = true)]
    pub backoff_min: Duration,
    /// Largest reconnect delay ceiling.
    #[arg(long, env = "DESKBRIDGE_BACKOFF_MAX", default_value = "60s", value_parser = duration, hide = true)]
    pub backoff_max: Duration,
    /// A connection that lived this long resets the backoff.
    #[arg(long, env = "DESKBRIDGE_STABLE_AFTER", default_value = "30s", value_parser = duration, hide = true)]
    pub stable_after: Duration,
    /// Wait after another agent took over this id, before trying again.
    #[arg(long, env = "DESKBRIDGE_REPLACED_BACKOFF", default_value = "5m", value_parser = duration, hide = true)]
    pub replaced_backoff: Duration,
    /// Limit for the TCP + TLS + WebSocket handshake.
    #[arg(long, env = "DESKBRIDGE_CONNECT_TIMEOUT", default_value = "10s", value_parser = duration, hide = true)]
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
}

/// How `install`, `uninstall` and `status` reach the login machinery.
#[derive(Debug, Clone, Args)]
pub struct AutostartArgs {
    /// The systemctl program used for the systemd user unit (Linux).
    #[arg(
        long,
        env = "DESKBRIDGE_SYSTEMCTL",
        default_value = "systemctl",
        hide = true
    )]
    pub systemctl: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub autostart: AutostartArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SystemArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub autostart: AutostartArgs,
}

/// Parses `1s`, `500ms`, `2m`… for clap.
pub fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 1s, 500ms, 2m)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_flags_parse_and_timing_has_defaults() {
        let cli = Cli::try_parse_from([
            "deskbridge-agent",
            "run",
            "--relay",
            "ws://127.0.0.1:9/ws",
            "--id",
            "box",
            "--interval",
            "2s",
            "--ping-interval",
            "1s",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(run.connection.relay.as_deref(), Some("ws://127.0.0.1:9/ws"));
        assert_eq!(run.connection.interval.as_deref(), Some("2s"));
        assert_eq!(run.timing.ping_interval, Duration::from_secs(1));
        assert_eq!(run.timing.idle_timeout, Duration::from_secs(30));
        assert_eq!(run.timing.backoff_max, Duration::from_secs(60));
    }

    #[test]
    fn help_hides_timing_knobs() {
        let help = Cli::command()
            .find_subcommand_mut("run")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(help.contains("--relay"));
        assert!(!help.contains("--ping-interval"));
    }

    #[test]
    fn bad_durations_are_explained() {
        assert!(duration("soon").unwrap_err().contains("examples"));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
    }
}
