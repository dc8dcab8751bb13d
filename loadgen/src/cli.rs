//! Command line of `deskbridge-loadgen`: the relay to load, and one subcommand per scenario.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "deskbridge-loadgen",
    version,
    about = "Loads a deskbridge relay on this machine and measures latency, loss, memory and CPU",
    long_about = None
)]
pub struct Cli {
    /// The relay's WebSocket URL. Loopback addresses only.
    #[arg(long, global = true, default_value = "ws://127.0.0.1:8000/ws")]
    pub url: String,

    /// The relay's process id: its RSS and CPU time are read from /proc/<pid>.
    #[arg(long, global = true)]
    pub relay_pid: Option<u32>,

    /// Mint tokens with this key file (the relay's --secret-file). Without it, clients connect
    /// without a token (relay started with --allow-anonymous).
    #[arg(long, global = true)]
    pub secret_file: Option<PathBuf>,

    /// Print one JSON line on stdout (the table goes to stderr).
    #[arg(long, global = true)]
    pub json: bool,

    /// A label copied into the JSON line (the benchmark script names its rows with it).
    #[arg(long, global = true)]
    pub label: Option<String>,

    /// Worker threads per load generator process.
    #[arg(long, global = true, default_value_t = 2)]
    pub threads: usize,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Desktops sending `cpu` to their viewers, viewers sending `beep` back.
    Pairs(PairsArgs),
    /// Connected, paired, silent sockets: what heartbeats alone cost the relay.
    Idle(IdleArgs),
    /// Desktops reporting only as fast as someone watches: a share of them with a viewer, the rest
    /// unwatched; or (--ignore-audience) the same fleet all at 1 Hz.
    Audience(AudienceArgs),
    /// Like `pairs`, but one viewer stops reading halfway: the others must not notice.
    SlowViewer(SlowViewerArgs),
    /// Many desktops connecting at once, as after a relay restart; repeated in rounds.
    Storm(StormArgs),
    /// Unauthenticated sockets, idle or each declaring a 1 GiB frame: the relay's memory.
    HalfFrames(HalfFramesArgs),
    /// Medians per label of JSON lines written by earlier runs, as a table.
    Summarize(SummarizeArgs),
    /// A minimal forwarder to run the same scenarios against: the floor the relay is compared with.
    ReferenceRelay(ReferenceArgs),
    /// (internal) Runs one shard of a fleet for a parent load generator process.
    #[command(hide = true)]
    Shard(ShardArgs),
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write durations like 500ms, 10s, 2m)"))
}

/// The shape and length of a fleet run.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// Desktops (client ids); each gets --viewers viewers.
    #[arg(long, default_value_t = 100)]
    pub pairs: usize,

    /// Viewers per desktop.
    #[arg(long, default_value_t = 1)]
    pub viewers: usize,

    /// Length of the measurement window.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Traffic before the window starts (not counted).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// After the window, how long to wait for frames still in flight before counting them lost.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain: Duration,

    /// Split the sockets over this many load generator processes (one process may hold at most
    /// ~19,900 sockets here).
    #[arg(long, default_value_t = 1)]
    pub processes: usize,

    /// Handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,

    /// Give up on a connection that is not welcomed within this time.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Loopback source addresses (127.0.0.1, .2, …) to spread connections over, as real clients
    /// come from many addresses and the relay limits connections per address. Default: enough
    /// for at most 200 per address.
    #[arg(long)]
    pub source_ips: Option<u32>,
}

#[derive(Debug, Clone, Args)]
pub struct PairsArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,

    /// `cpu` messages per second per desktop (phases spread evenly over one period).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,

    /// `beep` messages per second per viewer.
    #[arg(long, default_value_t = 0.0)]
    pub beep_rate: f64,

    /// Extra bytes in each `cpu` message (an unknown field the relay forwards).
    #[arg(long, default_value_t = 0)]
    pub pad: usize,
}

#[derive(Debug, Clone, Args)]
pub struct AudienceArgs {
    /// `--viewers` is the viewers of each watched desktop.
    #[command(flatten)]
    pub fleet: FleetArgs,

    /// Share of desktops with a viewer (detail view open), in percent.
    #[arg(long, default_value_t = 1.0)]
    pub watched_percent: f64,

    /// Share of desktops on a fleet grid (one `fleet` connection watching them), in whole
    /// percent; needs --secret-file, since a fleet connection needs a fleet token.
    #[arg(long, default_value_t = 0)]
    pub grid_percent: u32,

    /// Every desktop reports at 1 Hz whatever the relay asks (the fleet before issue 14).
    #[arg(long)]
    pub ignore_audience: bool,
}

#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
}

#[derive(Debug, Clone, Args)]
pub struct HalfFramesArgs {
    /// Unauthenticated sockets to open at once.
    #[arg(long, default_value_t = 1000)]
    pub sockets: usize,

    /// Each socket declares a 1 GiB frame and streams part of it (otherwise they stay idle).
    #[arg(long)]
    pub hostile: bool,

    /// Bytes of the declared frame each hostile socket tries to stream.
    #[arg(long, default_value_t = 1 << 20)]
    pub stream: usize,

    /// Pause before the memory reading.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub settle: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct SlowViewerArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,

    /// `cpu` messages per second per desktop.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,

    /// Extra bytes in each `cpu` message, so the stalled viewer's socket fills quickly.
    #[arg(long, default_value_t = 4096)]
    pub pad: usize,
}

#[derive(Debug, Clone, Args)]
pub struct StormArgs {
    /// Desktops connecting at once.
    #[arg(long, default_value_t = 9000)]
    pub desktops: usize,

    /// Rounds: after the first, every desktop drops its connection and dials again at once.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,

    /// Connection attempts per desktop and round before it counts as lost.
    #[arg(long, default_value_t = 10)]
    pub attempts: u32,

    /// One attempt's limit (TCP connect, handshake, welcome).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// How long the relay may take to show exactly the connected desktops in /metrics.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub settle_timeout: Duration,

    /// See `pairs --source-ips`.
    #[arg(long)]
    pub source_ips: Option<u32>,
}

#[derive(Debug, Clone, Args)]
pub struct SummarizeArgs {
    /// Files of JSON lines (one per run, as printed with --json).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// Fields to show as columns (default: all numeric fields).
    #[arg(long, value_delimiter = ',')]
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ReferenceArgs {
    /// Loopback address to listen on (port 0: any free port, printed on stderr).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
}

#[derive(Debug, Clone, Args)]
pub struct ShardArgs {
    #[arg(long)]
    pub plan: String,
    #[arg(long)]
    pub index: usize,
    #[arg(long)]
    pub count: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_with_their_defaults() {
        let cli = Cli::try_parse_from([
            "deskbridge-loadgen",
            "--json",
            "pairs",
            "--pairs",
            "50",
            "--rate",
            "2000",
            "--duration",
            "10s",
        ])
        .unwrap();
        assert!(cli.json);
        let Command::Pairs(p) = cli.command else {
            panic!("pairs")
        };
        assert_eq!(p.fleet.pairs, 50);
        assert_eq!(p.rate, 2000.0);
        assert_eq!(p.fleet.duration, Duration::from_secs(10));
        assert_eq!(p.fleet.processes, 1);
        let cli = Cli::try_parse_from(["deskbridge-loadgen", "storm", "--relay-pid", "7"]).unwrap();
        assert_eq!(cli.relay_pid, Some(7));
        assert!(matches!(cli.command, Command::Storm(s) if s.desktops == 9000 && s.rounds == 2));
    }
}
