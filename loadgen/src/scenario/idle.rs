//! `idle`: paired sockets that send nothing. Only the relay's heartbeats (a ping per session every
//! 10 s, answered with a pong) run, so the relay's CPU over the window is the price of holding
//! connections, and its RSS per socket the price of a quiet one.

use crate::cli::{Cli, IdleArgs};
use crate::fleet::coordinator;
use crate::report::Report;

use super::{
    describe_fleet, fleet_plan, report_connect, report_generator, report_relay, rss_vs_open, watch,
};

pub async fn run(cli: &Cli, args: &IdleArgs) -> anyhow::Result<Report> {
    let plan = fleet_plan(cli, &args.fleet, 0.0, 0.0, 0, None)?;
    let processes = args.fleet.processes.max(1);
    let o = coordinator::run(&plan, processes, cli.threads, &watch(cli)?).await?;
    let mut r = Report::new("idle", cli.label.as_deref());
    describe_fleet(&mut r, &plan, processes);
    r.row(
        "scenario",
        format!(
            "idle: {} sockets ({} desktops × {} viewers), {} s window after {} s settling",
            plan.sockets(),
            plan.pairs,
            plan.viewers,
            plan.duration.as_secs_f64(),
            plan.warmup.as_secs_f64()
        ),
    );
    report_connect(&mut r, &o);
    report_relay(&mut r, &o, 0);
    report_generator(&mut r, &o);
    r.set("rss_vs_open", rss_vs_open(&o));
    Ok(r)
}
