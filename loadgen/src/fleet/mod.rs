//! The traffic engine behind the `pairs`, `idle` and `slow-viewer` scenarios: one shard of desktops
//! and their viewers, connected, paired, driven through a measurement window and counted.
//!
//! A run may be split over several load generator processes (one shard each, a range of pairs
//! per shard) because one process may hold at most 20,000 open files here. A desktop and its
//! viewers always live in the same shard, so their shared clock makes latencies exact.

pub mod child;
pub mod coordinator;
pub mod tally;
mod tasks;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use deskbridge_protocol::ClientMode;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinSet;

use crate::client::{self, Credentials, Dial};
use crate::clock::now_ns;
use crate::frames::CpuFrames;
use crate::latency::{Hist, Recorder};
use crate::target::Target;
use tally::{Counts, Hists, Tally, Window};
use tasks::{Desktop, Shared, Viewer};

/// Everything a shard needs to know, serializable so a child process can be handed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetPlan {
    pub url: String,
    pub secret_file: Option<PathBuf>,
    /// Makes client ids unique to this run, so runs against one relay never share rooms.
    pub run_id: String,
    pub pairs: usize,
    pub viewers: usize,
    /// `cpu` frames per second per desktop.
    pub rate: f64,
    /// `beep` frames per second per viewer.
    pub beep_rate: f64,
    /// Extra bytes per `cpu` frame.
    pub pad: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// How long to wait after the window for frames still in flight.
    pub drain: Duration,
    /// Slow-viewer scenario: viewer 0 of pair 0 stops reading this long after "go".
    pub slow_after: Option<Duration>,
    pub source_ips: u32,
    pub connect_concurrency: usize,
    pub connect_timeout: Duration,
    /// Audience scenario: only every `watched_every`-th desktop has viewers (0: all of them).
    #[serde(default)]
    pub watched_every: usize,
    /// Audience scenario: desktops report at the relay's `audience.interval_ms`, as the agent
    /// does, instead of at `rate`.
    #[serde(default)]
    pub follow_audience: bool,
}

impl FleetPlan {
    pub fn sockets(&self) -> usize {
        (0..self.pairs)
            .map(|g| 1 + self.viewers_of(g))
            .sum::<usize>()
    }

    /// The viewers of desktop `g`.
    pub fn viewers_of(&self, g: usize) -> usize {
        if self.watched_every == 0 || g.is_multiple_of(self.watched_every) {
            self.viewers
        } else {
            0
        }
    }
}

/// Which part of the pairs one process runs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    pub fn pairs(&self, total: usize) -> Range<usize> {
        total * self.index / self.count..total * (self.index + 1) / self.count
    }
}

/// A shard's connect phase, reported before traffic starts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ready {
    pub sockets: u64,
    pub failures: BTreeMap<String, u64>,
    pub connect_seconds: f64,
    /// Handshake to `welcome`, per socket.
    pub connect_latency: Hist,
    /// Desktops that never saw all their viewers.
    pub unpaired: u64,
}

impl Ready {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

/// A shard's whole run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShardResult {
    pub ready: Ready,
    pub counts: Counts,
    pub hists: Hists,
    /// Window length actually measured, seconds.
    pub window_seconds: f64,
    /// Seconds after the window until everything had arrived (or the drain timeout).
    pub drain_seconds: f64,
}

/// The two moments a shard waits for its coordinator.
pub struct Control {
    pub ready: oneshot::Sender<Ready>,
    pub go: oneshot::Receiver<()>,
}

enum Role {
    Desktop(Desktop),
    Viewer(Viewer),
}

/// Runs one shard: connect, report ready, wait for go, run the window, drain, close.
pub async fn run_shard(
    plan: FleetPlan,
    shard: Shard,
    control: Control,
) -> anyhow::Result<ShardResult> {
    let target = Target::parse(&plan.url)?;
    let credentials = Arc::new(Credentials::load(plan.secret_file.as_deref())?);
    let tally = Arc::new(Tally::default());
    let (go_tx, go_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Shared {
        tally: tally.clone(),
        go: go_rx,
        stop: stop_rx,
    };
    let pairs = shard.pairs(plan.pairs);
    let per_pair = 1 + plan.viewers;
    let frames = CpuFrames::new(plan.pad);
    let slots = plan.pairs * plan.viewers;

    // Desktops first, so viewers find them online and the relay pairs them on the fast path.
    let mut roles = Vec::new();
    for g in pairs.clone() {
        let slow = plan.slow_after.is_some() && g == 0 && plan.viewers > 0;
        roles.push((
            g * per_pair,
            format!("lg-{}-{g}", plan.run_id),
            Role::Desktop(Desktop {
                pair: g,
                pairs: plan.pairs,
                viewers: plan.viewers_of(g) as u64,
                receivers: plan.viewers_of(g) as u64 - u64::from(slow),
                rate: plan.rate,
                follow_audience: plan.follow_audience,
                frames: frames.clone(),
            }),
        ));
    }
    for g in pairs.clone() {
        for v in 0..plan.viewers_of(g) {
            roles.push((
                g * per_pair + 1 + v,
                format!("lg-{}-{g}", plan.run_id),
                Role::Viewer(Viewer {
                    slot: g * plan.viewers + v,
                    slots,
                    beep_rate: plan.beep_rate,
                    slow: plan.slow_after.is_some() && g == 0 && v == 0,
                }),
            ));
        }
    }

    let connect_latency = Arc::new(Recorder::default());
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut running = JoinSet::new();
    let mut desktops = 0usize;
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(plan.connect_concurrency.max(1)));
    let mut viewers_started = false;
    let mut connecting = JoinSet::new();
    for (index, client_id, role) in roles {
        let is_viewer = matches!(role, Role::Viewer(_));
        if is_viewer && !viewers_started {
            // Let every desktop of the shard finish joining before the first viewer dials.
            viewers_started = true;
            collect(
                &mut connecting,
                &mut running,
                &mut failures,
                &shared,
                &mut desktops,
            )
            .await;
        }
        let dial = Dial {
            source: target.source_ip(index, plan.source_ips),
            recv_buffer: matches!(&role, Role::Viewer(v) if v.slow).then_some(4096),
        };
        let mode = if is_viewer {
            ClientMode::Web
        } else {
            ClientMode::Desktop
        };
        let (target, credentials, gate, latency) = (
            target.clone(),
            credentials.clone(),
            gate.clone(),
            connect_latency.clone(),
        );
        let timeout = plan.connect_timeout;
        connecting.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("never closed");
            let t = Instant::now();
            let ws = client::connect(&target, dial, &credentials, &client_id, mode, timeout).await;
            if ws.is_ok() {
                latency.record(index, t.elapsed().as_nanos() as u64);
            }
            (ws, role)
        });
    }
    collect(
        &mut connecting,
        &mut running,
        &mut failures,
        &shared,
        &mut desktops,
    )
    .await;
    let connect_seconds = started.elapsed().as_secs_f64();

    // Wait until every desktop has seen all its viewers: only then does it relay to all of them.
    let deadline = Instant::now() + plan.connect_timeout;
    while tally.ready_desktops.load(Ordering::Relaxed) < desktops && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = Ready {
        sockets: running.len() as u64,
        failures,
        connect_seconds,
        connect_latency: connect_latency.snapshot(),
        unpaired: (desktops - tally.ready_desktops.load(Ordering::Relaxed).min(desktops)) as u64,
    };
    control
        .ready
        .send(ready.clone())
        .map_err(|_| anyhow::anyhow!("coordinator gone"))?;
    control.go.await.context("coordinator gone before go")?;

    let go = now_ns();
    let start = go + plan.warmup.as_nanos() as u64;
    let window = Window {
        go,
        start,
        end: start + plan.duration.as_nanos() as u64,
        split: plan.slow_after.map(|d| go + d.as_nanos() as u64),
    };
    let _ = go_tx.send(Some(window));
    tokio::time::sleep_until(crate::clock::instant_at(window.end).into()).await;
    let drained = Instant::now();
    let drain_deadline = drained + plan.drain;
    while !tally.complete() && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain_seconds = drained.elapsed().as_secs_f64();
    let counts = tally.counts();
    let hists = tally.hists();
    let _ = stop_tx.send(true);
    let closing = async { while running.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), closing)
        .await
        .is_err()
    {
        log::warn!("some connections did not close within 5 s; dropping them");
    }
    Ok(ShardResult {
        ready,
        counts,
        hists,
        window_seconds: plan.duration.as_secs_f64(),
        drain_seconds,
    })
}

type Connecting = JoinSet<(Result<client::Ws, client::ClientError>, Role)>;

/// Waits for the connects in flight and starts a task for each one that was welcomed.
async fn collect(
    connecting: &mut Connecting,
    running: &mut JoinSet<()>,
    failures: &mut BTreeMap<String, u64>,
    shared: &Shared,
    desktops: &mut usize,
) {
    while let Some(joined) = connecting.join_next().await {
        let (ws, role) = match joined {
            Ok(done) => done,
            Err(e) => {
                *failures.entry("panic".to_owned()).or_default() += 1;
                log::error!("connect task failed: {e}");
                continue;
            }
        };
        match (ws, role) {
            (Ok(ws), Role::Desktop(d)) => {
                *desktops += 1;
                running.spawn(tasks::run_desktop(ws, d, shared.clone()));
            }
            (Ok(ws), Role::Viewer(v)) => {
                running.spawn(tasks::run_viewer(ws, v, shared.clone()));
            }
            (Err(e), _) => {
                log::debug!("connect failed: {e}");
                *failures.entry(e.kind().to_owned()).or_default() += 1;
            }
        }
    }
}

/// Merges the results of all shards.
pub fn merge(results: &[ShardResult]) -> ShardResult {
    let mut out = ShardResult::default();
    let mut hists = Vec::new();
    let mut latencies = Vec::new();
    for r in results {
        out.ready.sockets += r.ready.sockets;
        out.ready.unpaired += r.ready.unpaired;
        out.ready.connect_seconds = out.ready.connect_seconds.max(r.ready.connect_seconds);
        for (k, v) in &r.ready.failures {
            *out.ready.failures.entry(k.clone()).or_default() += v;
        }
        out.counts.add(&r.counts);
        out.window_seconds = out.window_seconds.max(r.window_seconds);
        out.drain_seconds = out.drain_seconds.max(r.drain_seconds);
        hists.push(&r.hists);
        latencies.push(&r.ready.connect_latency);
    }
    out.hists = Hists::merge(&hists);
    out.ready.connect_latency = Hist::merge(latencies);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_pair_once() {
        let total = 9001;
        let mut covered = 0;
        let mut next = 0;
        for index in 0..4 {
            let r = Shard { index, count: 4 }.pairs(total);
            assert_eq!(r.start, next);
            next = r.end;
            covered += r.len();
        }
        assert_eq!((covered, next), (total, total));
        assert_eq!(Shard::ALL.pairs(7), 0..7);
    }
}
