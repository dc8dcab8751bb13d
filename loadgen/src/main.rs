//! `deskbridge-loadgen`: loads a deskbridge relay on this machine with simulated desktops and
//! viewers speaking protocol v1, and reports latency, loss, throughput, and the relay's memory
//! and CPU. See docs/performance.md for the scenarios and how the numbers there were made.

mod cli;
mod client;
mod clock;
mod fleet;
mod frames;
mod grid;
mod latency;
mod probe;
mod reference;
mod report;
mod scenario;
mod summarize;
mod target;

use anyhow::Context as _;
use clap::Parser as _;

use cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    clock::epoch();
    if let Command::Summarize(args) = &cli.command {
        return summarize::run(args, cli.json);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(&cli))
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    let report = match &cli.command {
        Command::Pairs(args) => scenario::pairs::run(cli, args).await?,
        Command::Idle(args) => scenario::idle::run(cli, args).await?,
        Command::Audience(args) => scenario::audience::run(cli, args).await?,
        Command::SlowViewer(args) => scenario::slow_viewer::run(cli, args).await?,
        Command::Storm(args) => scenario::storm::run(cli, args).await?,
        Command::HalfFrames(args) => scenario::half_frames::run(cli, args).await?,
        Command::Shard(args) => {
            let plan: fleet::FleetPlan =
                serde_json::from_str(&args.plan).context("bad --plan from the parent process")?;
            scenario::raise_nofile();
            let shard = fleet::Shard {
                index: args.index,
                count: args.count.max(1),
            };
            return fleet::child::serve(plan, shard).await;
        }
        Command::ReferenceRelay(args) => return reference::serve(args.listen).await,
        Command::Summarize(_) => unreachable!("handled before the runtime starts"),
    };
    report.print(cli.json);
    Ok(())
}
