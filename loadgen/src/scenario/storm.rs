//! `storm`: N desktops dial at the same moment, as every agent does when a relay restarts, and in
//! later rounds all drop their connections and dial again at once (the relay then sees joins
//! racing the leaves of the same ids). Each desktop retries with jittered exponential backoff like
//! the agent. Reported per round: time until all are welcomed, failed attempts, desktops never
//! welcomed, and how long until the relay's own counters show exactly N desktops and nothing
//! half-registered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use deskbridge_protocol::ClientMode;
use tokio::task::JoinSet;

use crate::cli::{Cli, StormArgs};
use crate::client::{self, ClientError, Credentials, Dial, Ws};
use crate::fleet::coordinator::RelayWatch;
use crate::latency::Recorder;
use crate::probe::Sessions;
use crate::report::{round, Report};
use crate::target::Target;

use super::{check_sockets, default_source_ips, run_id, watch};

/// One desktop's way back in.
struct Outcome {
    ws: Result<Ws, ClientError>,
    /// When it was welcomed, since the round started.
    at: Duration,
    failures: Vec<&'static str>,
}

fn backoff(attempt: u32) -> Duration {
    let cap = Duration::from_millis(100 * (1 << attempt.min(5))).min(Duration::from_secs(2));
    cap.mul_f64(0.5 + fastrand::f64() * 0.5)
}

pub async fn run(cli: &Cli, args: &StormArgs) -> anyhow::Result<Report> {
    let target = Arc::new(Target::parse(&cli.url)?);
    let credentials = Arc::new(Credentials::load(cli.secret_file.as_deref())?);
    let watch = watch(cli)?;
    if args.desktops == 0 || args.rounds == 0 || args.attempts == 0 {
        anyhow::bail!("--desktops, --rounds and --attempts must be at least 1");
    }
    check_sockets(args.desktops, 1)?;
    let source_ips = args
        .source_ips
        .unwrap_or_else(|| default_source_ips(args.desktops));
    let id = run_id();
    let mut r = Report::new("storm", cli.label.as_deref());
    r.set("desktops", args.desktops);
    r.set("rounds", args.rounds);
    r.row(
        "scenario",
        format!(
            "storm: {} desktops dial at once, {} rounds, up to {} attempts each",
            args.desktops, args.rounds, args.attempts
        ),
    );
    let mut held: Vec<Ws> = Vec::new();
    let mut worst_welcomed = 0.0f64;
    let mut worst_settled = 0.0f64;
    let mut lost_total = 0u64;
    let mut failed_total = 0u64;
    let mut all_settled = true;
    for round_no in 1..=args.rounds {
        // Every connection of the previous round vanishes at the same moment.
        drop(std::mem::take(&mut held));
        let cpu_before = watch.proc();
        let started = Instant::now();
        let latency = Arc::new(Recorder::default());
        let mut tasks = JoinSet::new();
        for i in 0..args.desktops {
            let (target, credentials, latency) =
                (target.clone(), credentials.clone(), latency.clone());
            let client_id = format!("lg-{id}-{i}");
            let dial = Dial {
                source: target.source_ip(i, source_ips),
                recv_buffer: None,
            };
            let (attempts, timeout) = (args.attempts, args.connect_timeout);
            tasks.spawn(async move {
                let mut failures = Vec::new();
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match client::connect(
                        &target,
                        dial,
                        &credentials,
                        &client_id,
                        ClientMode::Desktop,
                        timeout,
                    )
                    .await
                    {
                        Ok(ws) => {
                            let at = started.elapsed();
                            latency.record(i, at.as_nanos() as u64);
                            return Outcome {
                                ws: Ok(ws),
                                at,
                                failures,
                            };
                        }
                        Err(e) => {
                            failures.push(e.kind());
                            if attempt >= attempts {
                                return Outcome {
                                    ws: Err(e),
                                    at: started.elapsed(),
                                    failures,
                                };
                            }
                            tokio::time::sleep(backoff(attempt)).await;
                        }
                    }
                }
            });
        }
        let mut failures: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut last = Duration::ZERO;
        let mut lost = 0u64;
        while let Some(done) = tasks.join_next().await {
            let o = done.context("a storm task panicked")?;
            for f in &o.failures {
                *failures.entry(f).or_default() += 1;
            }
            match o.ws {
                Ok(ws) => {
                    last = last.max(o.at);
                    held.push(ws);
                }
                Err(e) => {
                    lost += 1;
                    log::warn!("a desktop never got back in: {e}");
                }
            }
        }
        let welcomed = last.as_secs_f64();
        let (settled, state) = settle(&watch, held.len() as u64, args.settle_timeout).await;
        let settled_s = started.elapsed().as_secs_f64();
        let cpu_after = watch.proc();
        let s = latency.snapshot().summary();
        let failed: u64 = failures.values().sum();
        let k = format!("round{round_no}");
        r.num(&format!("{k}_all_welcomed_s"), welcomed);
        r.num(&format!("{k}_welcome_p50_ms"), s.p50 / 1000.0);
        r.num(&format!("{k}_welcome_p99_ms"), s.p99 / 1000.0);
        r.set(&format!("{k}_failed_attempts"), failed);
        r.set(&format!("{k}_lost"), lost);
        r.set(&format!("{k}_settled"), settled);
        r.num(&format!("{k}_settled_s"), settled_s);
        if let Some(state) = state {
            r.set(&format!("{k}_relay"), serde_json::to_value(state)?);
        }
        let mut relay = String::new();
        if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
            r.num(&format!("{k}_relay_cpu_s"), b.cpu_seconds - a.cpu_seconds);
            r.num(&format!("{k}_relay_rss_mib"), b.rss_mib());
            relay = format!(
                "; relay used {:.2} s CPU, RSS {:.1} MiB",
                b.cpu_seconds - a.cpu_seconds,
                b.rss_mib()
            );
        }
        r.row(
            &format!("round {round_no}"),
            format!(
                "{} of {} welcomed, all within {:.2} s (p50 {:.0} ms, p99 {:.0} ms); {failed} failed attempts {:?}; {lost} lost; relay {} after {:.2} s {:?}{relay}",
                held.len(),
                args.desktops,
                welcomed,
                s.p50 / 1000.0,
                s.p99 / 1000.0,
                failures,
                if settled { "consistent" } else { "NOT consistent" },
                settled_s,
                state,
            ),
        );
        worst_welcomed = worst_welcomed.max(welcomed);
        worst_settled = worst_settled.max(settled_s);
        lost_total += lost;
        failed_total += failed;
        all_settled &= settled;
    }
    r.num("all_welcomed_s", round(worst_welcomed, 3));
    r.num("settled_s", worst_settled);
    r.set("lost", lost_total);
    r.set("failed_attempts", failed_total);
    r.set("consistent", all_settled);
    drop(held);
    Ok(r)
}

/// Polls `/metrics` until the relay shows exactly `n` desktops, `n` ids and no connection
/// stuck before authentication. `None` state if `/metrics` cannot be read.
async fn settle(watch: &RelayWatch, n: u64, timeout: Duration) -> (bool, Option<Sessions>) {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Some(s) = watch.sessions().await {
            if s.desktops == n && s.client_ids == n && s.unauthenticated == 0 {
                return (true, Some(s));
            }
            last = Some(s);
        }
        if Instant::now() >= deadline {
            return (false, last);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
