//! The signed-in page watching a fleet, measured (not asserted): a release relay process with a
//! users file, N desktop sockets each sending a `cpu` sample every second (this process), and the
//! real page in headless Chromium signed in through its form, its grid fed by one fleet socket.
//!
//! Over a measurement window it reports the page's frame times (requestAnimationFrame deltas and
//! long tasks, recorded in the page), the CPU time of Chromium's renderer and of all its
//! processes, and the relay's CPU time (both from /proc), as a table on stderr and one JSON line
//! on stdout. `scripts/bench fleet-page-200 fleet-page-1000` runs it; docs/performance.md has the
//! figures.
//!
//! ```sh
//! cargo build --release -p deskbridge-relay
//! cargo bench -p deskbridge-agent --bench fleet_page -- --desktops 200 --seconds 30
//! ```
//! Options: `--desktops N` (200), `--seconds S` (30), `--warmup S` (10), `--relay PATH`
//! (target/release/deskbridge-relay), `--label NAME`, `--screenshot FILE.png`.
//! Run without `--bench` (as `cargo test --benches` does) it only says how to run it.

#[allow(dead_code)] // the tests' helpers this benchmark does not need
#[path = "../tests/e2e/chromium.rs"]
mod chromium;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use awc::ws::{Frame, Message};
use deskbridge_auth::{KeySet, Patterns, Role, Users};
use deskbridge_testkit::RelayProcess;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};

use chromium::Browser;

struct Options {
    desktops: usize,
    seconds: u64,
    warmup: u64,
    relay: PathBuf,
    label: String,
    screenshot: Option<PathBuf>,
}

fn options() -> Option<Options> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return None;
    }
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number = |name: &str, default: u64| {
        value(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} wants a number, got {v:?}"))
        })
    };
    let desktops = number("--desktops", 200) as usize;
    Some(Options {
        desktops,
        seconds: number("--seconds", 30),
        warmup: number("--warmup", 10),
        relay: value("--relay").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/deskbridge-relay"),
            PathBuf::from,
        ),
        label: value("--label").unwrap_or_else(|| format!("fleet-page-{desktops}")),
        screenshot: value("--screenshot").map(PathBuf::from),
    })
}

fn main() {
    let Some(options) = options() else {
        eprintln!(
            "fleet_page is a measurement: run it with `cargo bench -p deskbridge-agent --bench fleet_page`"
        );
        return;
    };
    assert!(
        options.relay.is_file(),
        "no relay binary at {}: cargo build --release -p deskbridge-relay (or pass --relay)",
        options.relay.display()
    );
    actix_rt::System::new().block_on(run(options));
}

/// One fake desktop: authenticates, then sends a sample every second (first after `phase`, so
/// the fleet's samples are spread over the second) and answers the relay's pings.
async fn desktop(url: String, id: String, phase: Duration) {
    let Ok((_, mut ws)) = awc::Client::new().ws(url).connect().await else {
        eprintln!("{id}: cannot connect");
        return;
    };
    let auth = json!({"event": "authentication", "client_id": id, "client_mode": "desktop"});
    if ws
        .send(Message::Text(auth.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut rng = fastrand::Rng::new();
    let mut cpu: f64 = rng.f64() * 60.0;
    let total: u64 = 16 << 30;
    let start = tokio::time::Instant::now() + phase;
    let mut tick = tokio::time::interval_at(start, Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                cpu = (cpu + (rng.f64() - 0.5) * 20.0).clamp(0.0, 100.0);
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let used = total / 4 + (total as f64 * cpu / 400.0) as u64;
                let sample = json!({
                    "event": "cpu", "value": (cpu * 10.0).round() / 10.0,
                    "memory": {"used": used, "total": total}, "ts": ts,
                });
                if ws.send(Message::Text(sample.to_string().into())).await.is_err() {
                    return;
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(Frame::Ping(payload))) => {
                    if ws.send(Message::Pong(payload)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

/// Clock ticks of CPU time (user + system) of a process, and its process group.
fn cpu_ticks(pid: i32) -> Option<(u64, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let pgrp = fields.get(2)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime, pgrp))
}

/// CPU ticks of Chromium's renderer processes and of all its processes (process group `group`).
fn chromium_ticks(group: i32) -> (u64, u64) {
    let mut renderer = 0;
    let mut all = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Some((ticks, pgrp)) = cpu_ticks(pid) else {
            continue;
        };
        if pgrp != group {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains("chromium") {
            continue; // chromedriver itself
        }
        all += ticks;
        if String::from_utf8_lossy(&cmdline).contains("--type=renderer") {
            renderer += ticks;
        }
    }
    (renderer, all)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn wait_js(browser: &Browser, what: &str, within: Duration, js: &str) {
    let deadline = Instant::now() + within;
    loop {
        if browser.client.execute(js, vec![]).await.ok() == Some(Value::Bool(true)) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run(options: Options) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let key_file = dir.path().join("keys");
    KeySet::generate(&key_file, false).expect("write a key file");
    let users_file = dir.path().join("users.toml");
    let password = "a benchmark password";
    let mut users = Users::default();
    users
        .add(
            "bench",
            Role::Operator,
            Patterns::parse("bench-*").expect("a pattern"),
            password,
        )
        .expect("add the user");
    users.save(&users_file).expect("write the users file");

    let connections = (options.desktops + 64).to_string();
    let relay = RelayProcess::start(
        options.relay.to_str().expect("a UTF-8 path"),
        &[
            "--secret-file",
            key_file.to_str().expect("a UTF-8 path"),
            "--users-file",
            users_file.to_str().expect("a UTF-8 path"),
            "--max-connections-per-address",
            &connections,
        ],
    );
    let addr = relay.addr();
    let url = format!("ws://{addr}/ws");
    eprintln!(
        "relay {} (pid {}) at {addr}",
        options.relay.display(),
        relay.pid()
    );

    for i in 0..options.desktops {
        let phase = Duration::from_millis((i as u64 * 1000) / options.desktops as u64);
        let id = format!("bench-{i:04}");
        actix_rt::spawn(desktop(url.clone(), id, phase));
    }

    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("http://{addr}/"))
        .await
        .expect("open the page");
    wait_js(
        &browser,
        "the sign-in form",
        Duration::from_secs(20),
        "return document.body.dataset.view === 'signin'",
    )
    .await;
    browser.fill("signin-user", "bench").await;
    browser.fill("signin-password", password).await;
    browser.click("signin-submit").await;
    let n = options.desktops;
    wait_js(
        &browser,
        "every desktop online on the grid",
        Duration::from_secs(60),
        &format!(
            "return document.querySelectorAll('#grid a.desk[data-state=\"online\"]').length === {n}"
        ),
    )
    .await;
    eprintln!("{n} desktops on the grid; warming up {} s", options.warmup);
    actix_rt::time::sleep(Duration::from_secs(options.warmup)).await;

    // Frame times as the page sees them: every requestAnimationFrame delta, and long tasks.
    browser
        .js("window.__bench = { frames: [], long: [] };
             let last = performance.now();
             const frame = (t) => { window.__bench.frames.push(t - last); last = t;
                                    if (!window.__bench.done) requestAnimationFrame(frame); };
             requestAnimationFrame(frame);
             try { new PerformanceObserver((list) => { for (const e of list.getEntries())
                     window.__bench.long.push(e.duration); }).observe({ type: 'longtask' }); }
             catch (e) { window.__bench.noLongTasks = String(e); }
             return null;")
        .await;
    let group = browser.process_group();
    let (renderer0, chromium0) = chromium_ticks(group);
    let (relay0, _) = cpu_ticks(relay.pid() as i32).expect("the relay's /proc stat");
    let started = Instant::now();
    actix_rt::time::sleep(Duration::from_secs(options.seconds)).await;
    let (renderer1, chromium1) = chromium_ticks(group);
    let (relay1, _) = cpu_ticks(relay.pid() as i32).expect("the relay's /proc stat");
    let window = started.elapsed().as_secs_f64();
    let recorded = browser
        .js(
            "window.__bench.done = true; return [window.__bench.frames, window.__bench.long, \
             performance.memory ? performance.memory.usedJSHeapSize : null, \
             document.querySelectorAll('#grid a.desk').length, \
             document.querySelectorAll('#grid canvas.desk-spark').length]",
        )
        .await;
    if let Some(path) = &options.screenshot {
        let png = browser.client.screenshot().await.expect("a screenshot");
        std::fs::write(path, png).expect("write the screenshot");
        eprintln!("screenshot: {}", path.display());
    }

    // SAFETY: sysconf with a valid name has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let share = |ticks: u64| ticks as f64 / hz / window * 100.0;
    let mut frames: Vec<f64> = serde_json::from_value(recorded[0].clone()).unwrap_or_default();
    // The first delta spans the recorder's start; it is not a frame the page drew.
    if !frames.is_empty() {
        frames.remove(0);
    }
    let long: Vec<f64> = serde_json::from_value(recorded[1].clone()).unwrap_or_default();
    frames.sort_by(f64::total_cmp);
    let over_50 = frames.iter().filter(|&&f| f > 50.0).count();
    let result = json!({
        "label": options.label,
        "desktops": n,
        "window_s": (window * 10.0).round() / 10.0,
        "frames": frames.len(),
        "fps": (frames.len() as f64 / window * 10.0).round() / 10.0,
        "frame_p50_ms": percentile(&frames, 50.0),
        "frame_p99_ms": percentile(&frames, 99.0),
        "frame_max_ms": frames.last().copied().unwrap_or(f64::NAN),
        "frames_over_50ms": over_50,
        "long_tasks": long.len(),
        "long_task_max_ms": long.iter().copied().fold(0.0, f64::max),
        "renderer_cpu_pct": (share(renderer1 - renderer0) * 10.0).round() / 10.0,
        "chromium_cpu_pct": (share(chromium1 - chromium0) * 10.0).round() / 10.0,
        "relay_cpu_pct": (share(relay1 - relay0) * 10.0).round() / 10.0,
        "js_heap_mib": recorded[2].as_f64().map(|b| (b / 1048576.0 * 10.0).round() / 10.0),
        "cards": recorded[3],
    });
    eprintln!(
        "{}: {n} desktops at 1 Hz, {:.0} s window\n  frames: {} ({} fps), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} over 50 ms; long tasks {} (max {:.0} ms)\n  CPU (% of one core): renderer {}, all Chromium {}, relay {}",
        options.label,
        window,
        result["frames"],
        result["fps"],
        percentile(&frames, 50.0),
        percentile(&frames, 99.0),
        frames.last().copied().unwrap_or(f64::NAN),
        over_50,
        long.len(),
        result["long_task_max_ms"].as_f64().unwrap_or(0.0),
        result["renderer_cpu_pct"],
        result["chromium_cpu_pct"],
        result["relay_cpu_pct"],
    );
    println!("{result}");
    drop(browser);
    drop(relay);
}
