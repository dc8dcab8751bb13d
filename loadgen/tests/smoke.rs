//! The load generator end to end at tiny N: a real relay on an ephemeral loopback port in this
//! process, the real `deskbridge-loadgen` binary against it. Asserts counts and the shape of the
//! JSON line, never timings.

use std::process::Command;
use std::time::Duration;

use deskbridge_testkit::process::output_within;
use deskbridge_testkit::{start_relay, test_config, ws_url, RelayHandle, RelayProcess};
use serde_json::Value;

/// No scenario here should take more than a few seconds; a hung one fails instead of blocking.
const DEADLINE: Duration = Duration::from_secs(60);

fn relay() -> RelayHandle {
    start_relay(test_config())
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn loadgen(args: &[&str]) -> Run {
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_deskbridge-loadgen")).args(args),
        DEADLINE,
    );
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a scenario against `relay` with `--json` and returns its one JSON line.
fn scenario(relay: &RelayHandle, args: &[&str]) -> Value {
    let url = ws_url(relay.addr());
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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskbridge-loadgen"));
    cmd.args(["reference-relay", "--listen", "127.0.0.1:0"]);
    let reference = RelayProcess::spawn(cmd);
    let url = ws_url(reference.addr());
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
    drop(reference);
    assert!(run.ok, "{}", run.stderr);
    let v: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(n(&v, "sockets"), 6);
    assert!(n(&v, "cpu_sent") > 0);
    assert_eq!(n(&v, "cpu_delivered"), n(&v, "cpu_expected"));
}

#[test]
fn half_frames_measures_idle_and_hostile_sockets_and_the_relay_refuses_the_frames() {
    let relay = relay();
    let idle = scenario(
        &relay,
        &["half-frames", "--sockets", "10", "--settle", "200ms"],
    );
    assert_eq!(idle["scenario"], "half-frames");
    assert!(idle["relay_rss_mib"].as_f64().unwrap() > 0.0, "{idle}");
    let hostile = scenario(
        &relay,
        &[
            "half-frames",
            "--sockets",
            "10",
            "--hostile",
            "--stream",
            "65536",
            "--settle",
            "200ms",
        ],
    );
    assert!(
        hostile["relay_rss_mib"].as_f64().unwrap() > 0.0,
        "{hostile}"
    );
    // Each hostile socket was refused from its header, counted as a size violation.
    let metrics = ureq_get(&format!("http://{}/metrics", relay.addr()));
    assert!(
        metrics.contains(r#"deskbridge_limited_total{limit="message_size"} 10"#),
        "{metrics}"
    );
}

fn ureq_get(url: &str) -> String {
    ureq::get(url)
        .call()
        .expect("GET /metrics")
        .into_body()
        .read_to_string()
        .expect("a text body")
}
