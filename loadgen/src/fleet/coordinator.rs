//! Runs a fleet over one or more shards and watches the relay while it does: RSS and CPU time
//! before connecting, once connected, at the window's start and end, and a sample every 250 ms.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::child::ShardHandle;
use super::{merge, FleetPlan, Shard, ShardResult};
use crate::probe::{self, ProcSample, Sessions};

/// How to look at the relay: its pid for `/proc`, its address for `/metrics`.
#[derive(Debug, Clone)]
pub struct RelayWatch {
    pub pid: Option<u32>,
    pub http_base: String,
}

impl RelayWatch {
    pub fn proc(&self) -> Option<ProcSample> {
        let pid = self.pid?;
        match probe::sample(pid) {
            Ok(s) => Some(s),
            Err(e) => {
                log::warn!("cannot read /proc/{pid}: {e}");
                None
            }
        }
    }

    /// The relay's `/metrics` text, if it answers.
    pub async fn metrics(&self) -> Option<String> {
        let base = self.http_base.clone();
        match tokio::task::spawn_blocking(move || probe::fetch_metrics(&base)).await {
            Ok(Ok(text)) => Some(text),
            Ok(Err(e)) => {
                log::debug!("cannot read /metrics: {e}");
                None
            }
            Err(_) => None,
        }
    }

    pub async fn sessions(&self) -> Option<Sessions> {
        Sessions::from_metrics(&self.metrics().await?)
    }
}

/// One periodic look at the relay.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t: f64,
    pub rss_mib: f64,
    pub cpu_seconds: f64,
    /// Sessions the relay reports open (authenticated or not).
    pub open: Option<u64>,
}

/// Relay readings at the run's landmarks.
#[derive(Debug, Clone, Default)]
pub struct RelayFigures {
    pub idle: Option<ProcSample>,
    pub connected: Option<ProcSample>,
    pub window_start: Option<ProcSample>,
    pub window_end: Option<ProcSample>,
    pub metrics_start: Option<String>,
    pub metrics_end: Option<String>,
    /// When the run's traffic started, seconds after the run started (for the timeline).
    pub go_at: f64,
    /// The window's start and end on this process's clock (`clock::now_ns`).
    pub window_ns: (u64, u64),
}

pub struct FleetOutcome {
    pub result: ShardResult,
    pub relay: RelayFigures,
    pub samples: Vec<Sample>,
    /// CPU seconds the load generator itself (all its processes) used during the window.
    pub loadgen_cpu_seconds: Option<f64>,
}

fn loadgen_cpu(pids: &[u32]) -> Option<f64> {
    let mut total = probe::sample(std::process::id()).ok()?.cpu_seconds;
    for pid in pids {
        total += probe::sample(*pid).ok()?.cpu_seconds;
    }
    Some(total)
}

/// Runs `plan` split over `processes` load generator processes (1: in this process).
pub async fn run(
    plan: &FleetPlan,
    processes: usize,
    threads: usize,
    watch: &RelayWatch,
) -> anyhow::Result<FleetOutcome> {
    let mut relay = RelayFigures {
        idle: watch.proc(),
        ..Default::default()
    };
    let started = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let connecting = Arc::new(AtomicBool::new(true));
    let sampler = watch.pid.map(|_| {
        tokio::spawn(sample_every(
            watch.clone(),
            started,
            samples.clone(),
            connecting.clone(),
        ))
    });

    let mut shards = Vec::new();
    if processes <= 1 {
        shards.push(ShardHandle::local(plan.clone(), Shard::ALL));
    } else {
        for index in 0..processes {
            let shard = Shard {
                index,
                count: processes,
            };
            shards.push(ShardHandle::spawn_child(plan, shard, threads)?);
        }
    }
    let child_pids: Vec<u32> = shards.iter().filter_map(ShardHandle::pid).collect();
    for shard in &mut shards {
        shard.ready().await?;
    }
    relay.connected = watch.proc();
    relay.go_at = started.elapsed().as_secs_f64();
    connecting.store(false, Ordering::Relaxed);
    for shard in &mut shards {
        shard.go().await?;
    }
    let go = tokio::time::Instant::now();
    tokio::time::sleep_until(go + plan.warmup).await;
    relay.window_start = watch.proc();
    relay.window_ns.0 = crate::clock::now_ns();
    let lg_start = loadgen_cpu(&child_pids);
    relay.metrics_start = watch.metrics().await;
    tokio::time::sleep_until(go + plan.warmup + plan.duration).await;
    relay.window_end = watch.proc();
    relay.window_ns.1 = crate::clock::now_ns();
    let lg_end = loadgen_cpu(&child_pids);
    relay.metrics_end = watch.metrics().await;

    let mut results = Vec::new();
    for shard in shards {
        results.push(shard.finish().await?);
    }
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(FleetOutcome {
        result: merge(&results),
        relay,
        samples,
        loadgen_cpu_seconds: lg_start.zip(lg_end).map(|(a, b)| b - a),
    })
}

/// Reads the relay's RSS and CPU every 250 ms, and its open sessions from `/metrics` only while
/// `connecting`: the sessions curve is drawn for the connect phase alone, and four `/metrics`
/// requests a second would otherwise be part of the relay CPU measured in a quiet window
/// (about 0.2 % of a core, a tenth of a sparse fleet's whole cost).
async fn sample_every(
    watch: RelayWatch,
    started: Instant,
    out: Arc<Mutex<Vec<Sample>>>,
    connecting: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let Some(p) = watch.proc() else { return };
        let open = if connecting.load(Ordering::Relaxed) {
            watch.sessions().await.map(|s| s.open())
        } else {
            None
        };
        out.lock().unwrap_or_else(|e| e.into_inner()).push(Sample {
            t: started.elapsed().as_secs_f64(),
            rss_mib: p.rss_mib(),
            cpu_seconds: p.cpu_seconds,
            open,
        });
    }
}
