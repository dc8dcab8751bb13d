//! `audience`: a fleet that reports only as fast as someone watches (issue 14). A share of the
//! desktops (`--watched-percent`, 1 %) has a viewer with the detail view open; the rest are
//! unwatched. Desktops follow the relay's `audience` as the agent does (1 s watched, the idle
//! interval otherwise); with `--ignore-audience` every desktop sends at 1 Hz regardless, the
//! fleet as it was before. Reports the relay's messages in per second, its CPU and the payload
//! bytes it read and wrote in the window.
//!
//! With `--grid-percent P`, one `fleet` connection (a page's grid, [`crate::grid`]) watches P %
//! of the desktops, disjoint from the detail-watched ones: those are asked for the overview
//! interval (5 s). Every desktop pings the relay as the agent does (see `fleet/tasks.rs`).

use anyhow::bail;

use crate::cli::{AudienceArgs, Cli, FleetArgs};
use crate::client::Credentials;
use crate::fleet::coordinator;
use crate::frames::CpuFrames;
use crate::grid::Grid;
use crate::probe::metric;
use crate::report::Report;
use crate::target::Target;

use super::pairs::traffic;
use super::{
    check_sockets, default_source_ips, describe_fleet, fleet_plan, report_connect,
    report_generator, report_relay, watch,
};

pub async fn run(cli: &Cli, args: &AudienceArgs) -> anyhow::Result<Report> {
    if !(args.watched_percent > 0.0 && args.watched_percent <= 100.0) {
        bail!("--watched-percent must be above 0 and at most 100");
    }
    if args.grid_percent > 99 {
        bail!("--grid-percent must be at most 99");
    }
    if args.grid_percent > 0 && args.watched_percent > 1.0 {
        bail!("--grid-percent picks desktops by their last two digits, disjoint from at most 1 % watched: pass --watched-percent 1 or less");
    }
    // Only the watched desktops have viewers, so the sockets are counted once the plan says which.
    let desktops_only = FleetArgs {
        viewers: 0,
        ..args.fleet.clone()
    };
    let mut plan = fleet_plan(cli, &desktops_only, 1.0, 0.0, 0, None)?;
    plan.viewers = args.fleet.viewers;
    plan.watched_every = (100.0 / args.watched_percent).round().max(1.0) as usize;
    plan.follow_audience = !args.ignore_audience;
    let processes = args.fleet.processes.max(1);
    check_sockets(plan.sockets().div_ceil(processes), processes)?;
    // Source addresses are picked by slot, and a desktop's slot leaves room for its viewers:
    // spread as if every desktop had them, so no address holds more than the relay allows.
    if args.fleet.source_ips.is_none() {
        plan.source_ips = default_source_ips(plan.pairs * (1 + plan.viewers));
    }
    // The grid first, so each of its desktops is on it from its join.
    let grid = match args.grid_percent {
        0 => None,
        percent => {
            let Credentials::Keys(keys) = Credentials::load(cli.secret_file.as_deref())? else {
                bail!("--grid-percent needs --secret-file: a fleet connection needs a fleet token");
            };
            let target = Target::parse(&plan.url)?;
            Some(Grid::open(&target, &keys, &plan.run_id, percent, plan.connect_timeout).await?)
        }
    };
    let o = coordinator::run(&plan, processes, cli.threads, &watch(cli)?).await?;
    let grid = match grid {
        Some(g) => Some(
            g.finish(o.relay.window_ns.0, o.relay.window_ns.1, processes == 1)
                .await?,
        ),
        None => None,
    };
    let mut r = Report::new("audience", cli.label.as_deref());
    describe_fleet(&mut r, &plan, processes);
    let watched = (0..plan.pairs).filter(|&g| plan.viewers_of(g) > 0).count();
    let on_grid = (0..plan.pairs)
        .filter(|&g| crate::grid::on_grid(g, args.grid_percent))
        .count();
    r.set("watched_desktops", watched);
    r.set("grid_desktops", on_grid);
    r.set("follow_audience", plan.follow_audience);
    r.row(
        "scenario",
        format!(
            "audience: {} desktops, {watched} of them with {} viewer(s), {on_grid} on a fleet grid, {}; {} s window after {} s",
            plan.pairs,
            plan.viewers,
            if plan.follow_audience {
                "each reporting as often as the relay's audience asks"
            } else {
                "all reporting at 1 Hz (audience ignored)"
            },
            plan.duration.as_secs_f64(),
            plan.warmup.as_secs_f64()
        ),
    );
    report_connect(&mut r, &o);
    traffic(&mut r, &o, true);
    let c = &o.result.counts;
    report_relay(&mut r, &o, c.cpu_sent);
    // Payload bytes (WebSocket and TCP headers not included) of the cpu frames the relay read
    // and wrote, and the audience frames it sent during the window.
    let frame = CpuFrames::new(0).at(crate::clock::now_ns()).len() as f64;
    let window = o.result.window_seconds.max(1e-9);
    let delta = |s: &str| match (&o.relay.metrics_start, &o.relay.metrics_end) {
        (Some(a), Some(b)) => metric(b, s).unwrap_or(0.0) - metric(a, s).unwrap_or(0.0),
        _ => 0.0,
    };
    let audience_frames = delta("deskbridge_audience_changes_total");
    let pings = delta("deskbridge_heartbeat_pings_total");
    let forwards = grid.as_ref().map_or(0, |g| g.forwards);
    let bytes = frame * (c.cpu_sent + c.cpu_delivered + forwards) as f64;
    r.num("relay_pings_per_s", pings / window);
    r.row(
        "heartbeats",
        format!(
            "{:.0} pings/s from the relay (to sessions silent for their probe interval); desktops ping as the agent does",
            pings / window
        ),
    );
    if let Some(g) = &grid {
        let h = g.latency.to_histogram();
        let (p50, p99) = (
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
        );
        r.set("grid_forwards", g.forwards);
        r.num("grid_forwards_per_s", g.forwards as f64 / window);
        r.num("grid_p50_us", p50);
        r.num("grid_p99_us", p99);
        r.row(
            "grid",
            format!(
                "{} forwards in the window ({:.0}/s) to the fleet connection, p50 {:.0} µs p99 {:.0} µs; {} presence frames, {} errors",
                g.forwards,
                g.forwards as f64 / window,
                p50,
                p99,
                g.presence,
                g.errors
            ),
        );
    }
    r.num("relay_payload_bytes_per_s", bytes / window);
    r.num("audience_frames", audience_frames);
    r.row(
        "wire",
        format!(
            "{:.0} payload bytes/s through the relay ({:.0} B cpu frames in and out); {audience_frames} audience frames in the window",
            bytes / window,
            frame
        ),
    );
    report_generator(&mut r, &o);
    Ok(r)
}
