//! The scenarios, and what they share: turning flags into a [`FleetPlan`], the safety bounds, and
//! the relay figures every fleet scenario reports.

pub mod audience;
pub mod half_frames;
pub mod idle;
pub mod pairs;
pub mod slow_viewer;
pub mod storm;

use std::time::Duration;

use anyhow::bail;

use crate::cli::{Cli, FleetArgs};
use crate::fleet::coordinator::{FleetOutcome, RelayWatch};
use crate::fleet::FleetPlan;
use crate::probe::{metric, ProcSample};
use crate::report::Report;
use crate::target::Target;

/// Hard bounds: a typo must not turn the generator into a fork bomb or a week-long run.
const MAX_SOCKETS: usize = 200_000;
const MAX_DURATION: Duration = Duration::from_secs(3600);
const MAX_OFFERED_RATE: f64 = 2_000_000.0;
/// Open files a load generator process keeps for itself besides its sockets.
const FD_RESERVE: u64 = 64;
/// Connections per loopback source address by default (the relay allows 256 per address).
const PER_SOURCE_IP: usize = 200;

/// Raises the soft open-file limit to the hard one and returns it.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    lim.rlim_cur
}

/// Refuses runs that would not fit in the open-file limit of one process.
pub fn check_sockets(per_process: usize, processes: usize) -> anyhow::Result<()> {
    let limit = raise_nofile();
    if per_process * processes > MAX_SOCKETS {
        bail!("at most {MAX_SOCKETS} sockets per run");
    }
    if per_process as u64 + FD_RESERVE > limit {
        let needed =
            (per_process * processes).div_ceil((limit - FD_RESERVE.min(limit)).max(1) as usize);
        bail!(
            "{per_process} sockets per process exceed the open-file limit ({limit}); pass --processes {needed} or more"
        );
    }
    Ok(())
}

pub fn default_source_ips(sockets: usize) -> u32 {
    sockets.div_ceil(PER_SOURCE_IP).clamp(1, 60_000) as u32
}

fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", std::process::id(), nanos >> 8)
}

/// The plan for a fleet scenario, with its bounds checked.
pub fn fleet_plan(
    cli: &Cli,
    f: &FleetArgs,
    rate: f64,
    beep_rate: f64,
    pad: usize,
    slow_after: Option<Duration>,
) -> anyhow::Result<FleetPlan> {
    Target::parse(&cli.url)?;
    if f.pairs == 0 {
        bail!("--pairs must be at least 1");
    }
    if f.duration.is_zero() || f.duration > MAX_DURATION || f.warmup > MAX_DURATION {
        bail!("--duration must be between 1ms and 1h, --warmup at most 1h");
    }
    if !(rate.is_finite() && beep_rate.is_finite()) || rate < 0.0 || beep_rate < 0.0 {
        bail!("rates must be non-negative numbers");
    }
    let offered = f.pairs as f64 * (rate + f.viewers as f64 * beep_rate);
    if offered > MAX_OFFERED_RATE {
        bail!("{offered} messages/s offered; the limit is {MAX_OFFERED_RATE}");
    }
    if pad > 60_000 {
        bail!("--pad must stay under the relay's 64 KiB message limit");
    }
    let processes = f.processes.max(1);
    let sockets = f.pairs * (1 + f.viewers);
    check_sockets(sockets.div_ceil(processes), processes)?;
    Ok(FleetPlan {
        url: cli.url.clone(),
        secret_file: cli.secret_file.clone(),
        run_id: run_id(),
        pairs: f.pairs,
        viewers: f.viewers,
        rate,
        beep_rate,
        pad,
        warmup: f.warmup,
        duration: f.duration,
        drain: f.drain,
        slow_after,
        source_ips: f.source_ips.unwrap_or_else(|| default_source_ips(sockets)),
        connect_concurrency: f.connect_concurrency,
        connect_timeout: f.connect_timeout,
        watched_every: 0,
        follow_audience: false,
    })
}

pub fn watch(cli: &Cli) -> anyhow::Result<RelayWatch> {
    Ok(RelayWatch {
        pid: cli.relay_pid,
        http_base: Target::parse(&cli.url)?.http_base,
    })
}

/// The parameters of the run, in the report.
pub fn describe_fleet(r: &mut Report, plan: &FleetPlan, processes: usize) {
    r.set("pairs", plan.pairs);
    r.set("viewers", plan.viewers);
    r.num("rate", plan.rate);
    r.num("beep_rate", plan.beep_rate);
    r.set("pad", plan.pad);
    r.num("duration_s", plan.duration.as_secs_f64());
    r.num("warmup_s", plan.warmup.as_secs_f64());
    r.set("processes", processes);
    r.set("sockets_planned", plan.sockets());
}

/// Connect figures.
pub fn report_connect(r: &mut Report, o: &FleetOutcome) {
    let ready = &o.result.ready;
    let s = ready.connect_latency.summary();
    r.set("sockets", ready.sockets);
    r.set("connect_failures", ready.failed());
    r.set("unpaired_desktops", ready.unpaired);
    r.num("connect_s", ready.connect_seconds);
    r.num(
        "connect_per_s",
        ready.sockets as f64 / ready.connect_seconds.max(1e-9),
    );
    r.num("connect_p99_ms", s.p99 / 1000.0);
    let failures = if ready.failures.is_empty() {
        "no failures".to_owned()
    } else {
        format!("failures {:?}", ready.failures)
    };
    r.row(
        "connect",
        format!(
            "{} sockets in {:.2} s ({:.0}/s), each p50 {:.1} ms p99 {:.1} ms, {failures}, {} desktops unpaired",
            ready.sockets,
            ready.connect_seconds,
            ready.sockets as f64 / ready.connect_seconds.max(1e-9),
            s.p50 / 1000.0,
            s.p99 / 1000.0,
            ready.unpaired
        ),
    );
}

/// RSS and CPU of the relay, per socket and per message; `messages` is what clients sent the
/// relay during the window.
pub fn report_relay(r: &mut Report, o: &FleetOutcome, messages: u64) {
    let rel = &o.relay;
    let window = o.result.window_seconds.max(1e-9);
    let sockets = o.result.ready.sockets.max(1) as f64;
    let rss_max = o.samples.iter().map(|s| s.rss_mib).fold(0.0f64, f64::max);
    if let (Some(idle), Some(connected), Some(end)) = (rel.idle, rel.connected, rel.window_end) {
        let per_socket =
            |p: ProcSample| (p.rss_bytes as f64 - idle.rss_bytes as f64) / 1024.0 / sockets;
        r.num("relay_rss_idle_mib", idle.rss_mib());
        r.num("relay_rss_connected_mib", connected.rss_mib());
        r.num("relay_rss_end_mib", end.rss_mib());
        r.num("relay_rss_max_mib", rss_max.max(end.rss_mib()));
        r.num("relay_kib_per_socket_connected", per_socket(connected));
        r.num("relay_kib_per_socket", per_socket(end));
        r.row(
            "relay memory",
            format!(
                "RSS idle {:.1} MiB → connected {:.1} MiB → end {:.1} MiB (max {:.1}); {:.2} KiB per socket above idle ({:.2} before traffic)",
                idle.rss_mib(),
                connected.rss_mib(),
                end.rss_mib(),
                rss_max.max(end.rss_mib()),
                per_socket(end),
                per_socket(connected)
            ),
        );
    }
    if let (Some(a), Some(b)) = (rel.window_start, rel.window_end) {
        let cpu = b.cpu_seconds - a.cpu_seconds;
        r.num("relay_cpu_s", cpu);
        r.num("relay_cpu_pct", 100.0 * cpu / window);
        let per_msg = if messages > 0 {
            1e6 * cpu / messages as f64
        } else {
            0.0
        };
        r.num("relay_cpu_us_per_msg", per_msg);
        let wakeups = b.timeslices.saturating_sub(a.timeslices) as f64 / window;
        r.num("relay_wakeups_per_s", wakeups);
        r.row(
            "relay cpu",
            format!(
                "{cpu:.2} s in {window:.0} s = {:.2}% of one core; {per_msg:.2} µs per message received; {wakeups:.0} wake-ups/s (threads put on a CPU)",
                100.0 * cpu / window
            ),
        );
    }
    if let Some(lg) = o.loadgen_cpu_seconds {
        r.num("loadgen_cpu_pct", 100.0 * lg / window);
        r.row(
            "generator cpu",
            format!(
                "{:.1}% of one core (all its processes)",
                100.0 * lg / window
            ),
        );
    }
    if let (Some(a), Some(b)) = (&rel.metrics_start, &rel.metrics_end) {
        let delta = |s: &str| metric(b, s).unwrap_or(0.0) - metric(a, s).unwrap_or(0.0);
        let dropped = delta(r#"deskbridge_messages_dropped_total{reason="queue_full"}"#);
        let stuck = delta(r#"deskbridge_messages_dropped_total{reason="stuck_client"}"#);
        let limited = delta(r#"deskbridge_limited_total{limit="message_rate"}"#)
            + delta(r#"deskbridge_limited_total{limit="command_rate"}"#);
        r.num("relay_dropped_queue_full", dropped);
        r.num("relay_dropped_stuck", stuck);
        r.num("relay_rate_limited", limited);
        r.row(
            "relay counters",
            format!("in the window: {dropped} dropped (queue full), {stuck} dropped (stuck client), {limited} rate-limited"),
        );
    }
}

/// Generator health: how late senders were against their schedule, unexpected closes, errors.
pub fn report_generator(r: &mut Report, o: &FleetOutcome) {
    let lag = o.result.hists.send_lag.summary();
    r.num("send_lag_p99_us", lag.p99);
    r.num("send_lag_max_us", lag.max);
    r.set("closed_early", o.result.counts.closed_early);
    r.num("drain_s", o.result.drain_seconds);
    r.set(
        "errors",
        serde_json::to_value(&o.result.counts.errors).unwrap_or_default(),
    );
    r.row(
        "generator",
        format!(
            "send lag p99 {} max {}; {} connections closed early; errors {:?}",
            crate::report::us(lag.p99),
            crate::report::us(lag.max),
            o.result.counts.closed_early,
            o.result.counts.errors
        ),
    );
}

/// RSS against open sessions while connecting, thinned to at most 60 points, for the plot.
pub fn rss_vs_open(o: &FleetOutcome) -> serde_json::Value {
    let points: Vec<(u64, f64)> = o
        .samples
        .iter()
        .filter(|s| s.t <= o.relay.go_at)
        .filter_map(|s| Some((s.open?, crate::report::round(s.rss_mib, 2))))
        .collect();
    let step = points.len().div_ceil(60).max(1);
    serde_json::to_value(points.iter().step_by(step).collect::<Vec<_>>()).unwrap_or_default()
}
