//! `pairs`: N desktops × M viewers; desktops send `cpu` at R/s, viewers `beep` back. Reports
//! end-to-end latency both ways, loss, throughput, connect time, and the relay's RSS and CPU.

use crate::cli::{Cli, PairsArgs};
use crate::fleet::coordinator::{self, FleetOutcome};
use crate::fleet::FleetPlan;
use crate::report::Report;

use super::{
    describe_fleet, fleet_plan, report_connect, report_generator, report_relay, rss_vs_open, watch,
};

pub async fn run(cli: &Cli, args: &PairsArgs) -> anyhow::Result<Report> {
    let plan = fleet_plan(cli, &args.fleet, args.rate, args.beep_rate, args.pad, None)?;
    let processes = args.fleet.processes.max(1);
    let outcome = coordinator::run(&plan, processes, cli.threads, &watch(cli)?).await?;
    Ok(report(cli, &plan, processes, &outcome))
}

pub fn report(cli: &Cli, plan: &FleetPlan, processes: usize, o: &FleetOutcome) -> Report {
    let mut r = Report::new("pairs", cli.label.as_deref());
    describe_fleet(&mut r, plan, processes);
    r.row(
        "scenario",
        format!(
            "pairs: {} desktops × {} viewers, cpu {}/s per desktop, beep {}/s per viewer, {} s window",
            plan.pairs,
            plan.viewers,
            plan.rate,
            plan.beep_rate,
            plan.duration.as_secs_f64()
        ),
    );
    report_connect(&mut r, o);
    traffic(&mut r, o, true);
    let c = &o.result.counts;
    report_relay(&mut r, o, c.cpu_sent + c.beep_sent);
    report_generator(&mut r, o);
    r.set("rss_vs_open", rss_vs_open(o));
    r
}

/// Delivered/sent, and with `latency` the latency of both directions.
pub fn traffic(r: &mut Report, o: &FleetOutcome, latency: bool) {
    let c = &o.result.counts;
    let window = o.result.window_seconds.max(1e-9);
    r.set("cpu_sent", c.cpu_sent);
    r.set("cpu_expected", c.cpu_expected);
    r.set("cpu_delivered", c.cpu_delivered);
    r.set("cpu_lost", c.cpu_expected.saturating_sub(c.cpu_delivered));
    let ratio = if c.cpu_expected > 0 {
        c.cpu_delivered as f64 / c.cpu_expected as f64
    } else {
        1.0
    };
    r.set("cpu_delivered_ratio", ratio);
    r.set("beep_sent", c.beep_sent);
    r.set("beep_delivered", c.beep_delivered);
    r.set("beep_refused", c.beep_refused);
    r.num(
        "delivered_per_s",
        (c.cpu_delivered + c.beep_delivered) as f64 / window,
    );
    r.num("relay_in_per_s", (c.cpu_sent + c.beep_sent) as f64 / window);
    r.row(
        "delivered",
        format!(
            "cpu {}/{} ({:.4}%, {} lost), beep {}/{} ({} refused); {:.0} messages/s in, {:.0} delivered/s",
            c.cpu_delivered,
            c.cpu_expected,
            100.0 * ratio,
            c.cpu_expected.saturating_sub(c.cpu_delivered),
            c.beep_delivered,
            c.beep_sent,
            c.beep_refused,
            (c.cpu_sent + c.beep_sent) as f64 / window,
            (c.cpu_delivered + c.beep_delivered) as f64 / window
        ),
    );
    if latency {
        r.latency("cpu", "desktop→viewer", o.result.hists.cpu.summary());
    }
    if latency && c.beep_sent > 0 {
        r.latency("beep", "viewer→desktop", o.result.hists.beep.summary());
    }
}
