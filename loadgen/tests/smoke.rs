//! The load generator end to end at tiny N: a real relay on an ephemeral loopback port in this
//! process, the real `deskbridge-loadgen` binary against it. Asserts counts and the shape of the
//! JSON line, never timings.

use std::io::Read as _;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deskbridge_relay::{Config, RelayHandle};
use serde_json::Value;

/// No scenario here should take more than a few seconds; a hung one fails instead of blocking.
const DEADLINE: Duration = Duration::from_secs(60);

fn relay() -> RelayHandle {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    RelayHandle::spawn(
        listener,
        Config {
            allow_anonymous: true,
            ..Default::default()
        },
    )
    .expect("relay starts")
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn loadgen(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_deskbridge-loadgen"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the load generator");
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the load generator did not finish within {DEADLINE:?}: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Run {
        ok: status.success(),
        stdout,
        stderr,
    }
}

/// Runs a scenario against `relay` with `--json` and returns its one JSON line.
fn scenario(relay: &RelayHandle, args: &[&str]) -> Value {
    let url = format!("ws://{}/ws", relay.addr());
    let pid = std::process::id().to_string();
    let mut all = vec![
        "--url",
        &url,
        "--relay-pid",
        &pid,
        "--json",
        "--threads",
        "2",
    ];
    all.extend_from_slice(args);
    let run = loadgen(&all);
    assert!(run.ok, "loadgen failed: {}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one JSON line: {}", run.stdout);
    let v: Value = serde_json::from_str(lines[0]).expect("the line is JSON");
    assert!(!run.stderr.is_empty(), "the table goes to stderr");
    v
}

fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {v}"))
}

const SHORT: [&str; 6] = ["--duration", "1s", "--warmup", "300ms", "--drain", "5s"];

#[test]
fn pairs_deliver_everything_both_ways() {
    let relay = relay();
    let mut args = vec![
        "pairs",
        "--pairs",
        "3",
        "--viewers",
        "2",
        "--rate",
        "5",
        "--beep-rate",
        "1",
    ];
    args.extend_from_slice(&SHORT);
    let v = scenario(&relay, &args);
    assert_eq!(v["scenario"], "pairs");
    assert_eq!(n(&v, "sockets"), 9);
    assert_eq!(n(&v, "connect_failures"), 0);
    assert_eq!(n(&v, "unpaired_desktops"), 0);
    assert!(n(&v, "cpu_sent") > 0);
    assert_eq!(n(&v, "cpu_expected"), 2 * n(&v, "cpu_sent"));
    assert_eq!(n(&v, "cpu_delivered"), n(&v, "cpu_expected"));
    assert_eq!(n(&v, "cpu_lost"), 0);
    assert!(n(&v, "beep_sent") > 0);
    assert_eq!(n(&v, "beep_delivered"), n(&v, "beep_sent"));
    assert_eq!(n(&v, "cpu_samples"), n(&v, "cpu_delivered"));
    assert_eq!(n(&v, "closed_early"), 0);
    for key in [
        "cpu_p50_us",
        "cpu_p999_us",
        "beep_max_us",
        "relay_rss_end_mib",
        "relay_cpu_s",
    ] {
        assert!(v[key].is_number(), "{key} in {v}");
    }
    relay.stop();
}

#[test]
fn a_run_split_over_processes_adds_up() {
    let relay = relay();
    let mut args = vec!["pairs", "--pairs", "4", "--rate", "5", "--processes", "2"];
    args.extend_from_slice(&SHORT);
    let v = scenario(&relay, &args);
    assert_eq!(n(&v, "processes"), 2);
    assert_eq!(n(&v, "sockets"), 8);
    assert!(n(&v, "cpu_sent") > 0);
    assert_eq!(n(&v, "cpu_delivered"), n(&v, "cpu_expected"));
    assert_eq!(n(&v, "cpu_samples"), n(&v, "cpu_delivered"));
    relay.stop();
}

#[test]
fn a_slow_viewer_is_measured_apart_from_the_others() {
    let relay = relay();
    let v = scenario(
        &relay,
        &[
            "slow-viewer",
            "--pairs",
            "2",
            "--viewers",
            "2",
            "--rate",
            "10",
            "--pad",
            "1000",
            "--duration",
            "2s",
            "--warmup",
            "300ms",
            "--drain",
            "5s",
        ],
    );
    assert_eq!(v["scenario"], "slow-viewer");
    assert_eq!(n(&v, "sockets"), 6);
    // The others (3 of the 4 viewers) get everything; the slow one is counted separately.
    assert!(n(&v, "cpu_sent") > 0);
    let (sent, expected) = (n(&v, "cpu_sent"), n(&v, "cpu_expected"));
    assert!(expected > sent && expected < 2 * sent, "{v}");
    assert_eq!(n(&v, "cpu_delivered"), n(&v, "cpu_expected"));
    assert_eq!(
        n(&v, "before_samples") + n(&v, "after_samples"),
        n(&v, "cpu_delivered")
    );
    assert!(v["rss_timeline"].is_array());
    relay.stop();
}

#[test]
fn a_storm_of_desktops_all_get_in_and_the_relay_agrees() {
    let relay = relay();
    let v = scenario(&relay, &["storm", "--desktops", "20", "--rounds", "2"]);
    assert_eq!(n(&v, "lost"), 0);
    assert_eq!(v["consistent"], true);
    assert_eq!(v["round2_relay"]["desktops"], 20);
    assert_eq!(v["round2_relay"]["unauthenticated"], 0);
    relay.stop();
}

#[test]
fn idle_sockets_report_the_relays_cpu() {
    let relay = relay();
    let v = scenario(
        &relay,
        &[
            "idle",
            "--pairs",
            "3",
            "--duration",
            "500ms",
            "--warmup",
            "100ms",
        ],
    );
    assert_eq!(v["scenario"], "idle");
    assert_eq!(n(&v, "sockets"), 6);
    assert!(v["relay_cpu_pct"].is_number(), "{v}");
    relay.stop();
}

#[test]
fn other_machines_are_refused_before_any_connection() {
    let run = loadgen(&["--url", "ws://192.0.2.1:80/ws", "pairs", "--pairs", "1"]);
    assert!(!run.ok);
    assert!(run.stderr.contains("loopback"), "{}", run.stderr);
}

#[test]
fn summarize_takes_medians_per_label() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("runs.jsonl");
    std::fs::write(
        &file,
        "{\"label\":\"x\",\"cpu_p99_us\":300}\n{\"label\":\"x\",\"cpu_p99_us\":100}\n{\"label\":\"x\",\"cpu_p99_us\":200}\n",
    )
    .unwrap();
    let run = loadgen(&["--json", "summarize", file.to_str().unwrap()]);
    assert!(run.ok, "{}", run.stderr);
    let v: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(v["label"], "x");
    assert_eq!(v["runs"], 3);
    assert_eq!(v["cpu_p99_us"], 200.0);
}

#[test]
fn the_reference_forwarder_carries_the_same_scenario() {
    use std::io::BufRead as _;
    let mut reference = Command::new(env!("CARGO_BIN_EXE_deskbridge-loadgen"))
        .args(["reference-relay", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the reference forwarder");
    let mut stderr = std::io::BufReader::new(reference.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .filter(|_| line.contains("listening on"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let url = format!("ws://{addr}/ws");
    let mut args = vec![
        "--url",
        &url,
        "--json",
        "pairs",
        "--pairs",
        "2",
        "--viewers",
        "2",
        "--rate",
        "5",
    ];
    args.extend_from_slice(&SHORT);
    let run = loadgen(&args);
    let _ = reference.kill();
    let _ = reference.wait();
    assert!(run.ok, "{}", run.stderr);
    let v: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(n(&v, "sockets"), 6);
    assert!(n(&v, "cpu_sent") > 0);
    assert_eq!(n(&v, "cpu_delivered"), n(&v, "cpu_expected"));
}
