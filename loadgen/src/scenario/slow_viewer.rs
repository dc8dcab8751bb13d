//! `slow-viewer`: pairs with several viewers; halfway through the window viewer 0 of pair 0 stops
//! reading (it keeps pinging, so the relay sees it alive). The other viewers' latency before and
//! after must match, nothing may be lost for them, and the relay's RSS must stay flat while the
//! stalled viewer's queue is full.

use crate::cli::{Cli, SlowViewerArgs};
use crate::fleet::coordinator::{self, FleetOutcome};
use crate::report::{round, Report};

use super::{describe_fleet, fleet_plan, report_connect, report_generator, report_relay, watch};

pub async fn run(cli: &Cli, args: &SlowViewerArgs) -> anyhow::Result<Report> {
    if args.fleet.viewers < 2 {
        anyhow::bail!("--viewers must be at least 2: the slow one and one to compare");
    }
    let f = &args.fleet;
    let split = f.warmup + f.duration / 2;
    let plan = fleet_plan(cli, f, args.rate, 0.0, args.pad, Some(split))?;
    let processes = f.processes.max(1);
    let o = coordinator::run(&plan, processes, cli.threads, &watch(cli)?).await?;
    let mut r = Report::new("slow-viewer", cli.label.as_deref());
    describe_fleet(&mut r, &plan, processes);
    r.row(
        "scenario",
        format!(
            "slow viewer: {} desktops × {} viewers at {}/s ({} B frames); viewer 0 of pair 0 stops reading {:.0} s into the {:.0} s window",
            plan.pairs,
            plan.viewers,
            plan.rate,
            crate::frames::CpuFrames::new(plan.pad).at(0).len(),
            (split - f.warmup).as_secs_f64(),
            f.duration.as_secs_f64()
        ),
    );
    report_connect(&mut r, &o);
    super::pairs::traffic(&mut r, &o, false);
    r.latency(
        "before",
        "others, before stall",
        o.result.hists.cpu.summary(),
    );
    r.latency(
        "after",
        "others, after stall",
        o.result.hists.cpu_after_split.summary(),
    );
    r.set("slow_received", o.result.counts.slow_received);
    r.num("stall_at_s", split.as_secs_f64());
    let c = &o.result.counts;
    report_relay(&mut r, &o, c.cpu_sent);
    report_generator(&mut r, &o);
    rss_over_time(
        &mut r,
        &o,
        split.as_secs_f64(),
        (f.warmup + f.duration).as_secs_f64(),
    );
    Ok(r)
}

/// The relay's RSS once the stalled viewer's buffers have filled, to the window's end.
fn rss_over_time(r: &mut Report, o: &FleetOutcome, split: f64, end: f64) {
    // Leave the stalled viewer's socket buffers and queues time to fill; from then on nothing
    // more may be held for it.
    let from = o.relay.go_at + split + ((end - split) / 2.0).min(15.0);
    let to = o.relay.go_at + end;
    let stalled: Vec<f64> = o
        .samples
        .iter()
        .filter(|s| s.t >= from && s.t <= to)
        .map(|s| s.rss_mib)
        .collect();
    if let (Some(first), Some(last)) = (stalled.first(), stalled.last()) {
        let min = stalled.iter().copied().fold(f64::INFINITY, f64::min);
        let max = stalled.iter().copied().fold(0.0, f64::max);
        r.num("stalled_rss_first_mib", *first);
        r.num("stalled_rss_last_mib", *last);
        r.num("stalled_rss_growth_mib", max - min);
        r.row(
            "relay rss, stalled",
            format!(
                "{first:.1} MiB → {last:.1} MiB (range {min:.1}–{max:.1}, {} samples)",
                stalled.len()
            ),
        );
    }
    let timeline: Vec<(f64, f64)> = o
        .samples
        .iter()
        .filter(|s| s.t >= o.relay.go_at)
        .step_by(4)
        .map(|s| (round(s.t - o.relay.go_at, 2), round(s.rss_mib, 2)))
        .collect();
    r.set(
        "rss_timeline",
        serde_json::to_value(timeline).unwrap_or_default(),
    );
}
