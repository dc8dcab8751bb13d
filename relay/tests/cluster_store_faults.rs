//! The cluster's store (NATS JetStream, a real `nats-server -js`) when things go wrong, seen only
//! through the relay's public surface (the socket, `/api/history`, `/metrics`, its log, its
//! flags), so these tests hold whatever streams and subjects the store uses inside:
//! - a node SIGKILLed while its desktop sends loses at most the last second of what it relayed,
//!   another node answers for the rest at once, and the node starts again cleanly;
//! - JetStream out of space costs the store its samples (counted, logged once) but no viewer,
//!   near or far, a single one;
//! - short `--retention-raw` / `--retention-minutes` remove raw samples, then minutes;
//! - a viewer of one desktop cannot read another's history or audit log on any node.

use std::time::{Duration, Instant};

use deskbridge_protocol::ClientMode;
use deskbridge_relay::Config;
use deskbridge_testkit::cluster::{
    cluster_config, metric, start_node, start_node_process, wait_cluster, Nats,
};
use deskbridge_testkit::store::{api_get, api_until, cpu, now_ms, points, test_store};
use deskbridge_testkit::tokens::{keys, mint, secured};
use deskbridge_testkit::Client;
use serde_json::Value;

const RELAY: &str = env!("CARGO_BIN_EXE_deskbridge-relay");

/// Longest wait for the store to show (or stop showing) what it was given: generous, as the
/// store's inner timing (how soon a sample is visible) is its own business.
const STORE_WAIT: Duration = Duration::from_secs(30);

const WRITTEN: &str = "deskbridge_store_written_total{kind=\"sample\"}";
const FAILED: &str = "deskbridge_store_dropped_total{kind=\"sample\",reason=\"write_failed\"}";
const QUEUE_FULL: &str = "deskbridge_store_dropped_total{kind=\"sample\",reason=\"queue_full\"}";

/// The `ts` of every raw sample of `desk` in `[from, to)`.
fn stamps(body: &Value) -> Vec<u64> {
    points(body).iter().map(|p| p[0] as u64).collect()
}

/// An in-process node of the cluster at `nats`, with a store (JetStream's, in a cluster).
fn node(nats: &Nats, name: &str, dir: &std::path::Path) -> Config {
    Config {
        store: Some(test_store(dir)),
        ..cluster_config(nats, name)
    }
}

/// Waits until `relay`'s sample counters account for `n` samples: written, or dropped.
async fn accounted(addr: std::net::SocketAddr, n: f64) -> (f64, f64) {
    let deadline = Instant::now() + STORE_WAIT;
    loop {
        let written = metric(addr, WRITTEN).await;
        let failed = metric(addr, FAILED).await;
        let full = metric(addr, QUEUE_FULL).await;
        if written + failed + full == n {
            return (written, failed);
        }
        assert!(
            Instant::now() < deadline,
            "{written} written + {failed} failed + {full} queue full != {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn a_node_killed_mid_write_loses_at_most_the_last_second_and_starts_cleanly() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let data_arg = format!("--data-dir={}", dir.path().join("a").display());
    let flags = [
        data_arg.as_str(),
        "--message-rate",
        "1000",
        "--message-burst",
        "1000",
    ];
    let mut a = start_node_process(RELAY, &nats, "a", &flags);
    wait_cluster(a.addr(), "ok").await;
    let b = start_node(node(&nats, "b", &dir.path().join("b"))).await;
    let mut desktop = Client::join(a.addr(), "desk", "desktop").await;
    let mut web = Client::join(a.addr(), "desk", "web").await;
    web.expect_presence("online", 1).await;
    // About 200 samples a second for 2.5 s, each ts distinct; the viewer seeing one proves the
    // node had it.
    let started = Instant::now();
    let mut sent = Vec::new();
    while started.elapsed() < Duration::from_millis(2500) {
        let ts = now_ms().max(sent.last().map_or(0, |t| t + 1));
        desktop.send(&cpu(1.0, Some(ts))).await;
        assert_eq!(web.next_named("cpu").await["ts"], ts);
        sent.push(ts);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let last = *sent.last().unwrap();
    a.kill();
    drop((desktop, web));

    // The other node answers for what the store acknowledged.
    let range = format!(
        "/api/history?id=desk&from={}&to={}&step=raw",
        sent[0],
        last + 1
    );
    let lost = |stored: &[u64]| last - stored.last().copied().unwrap_or(sent[0]);
    let body = api_until(b.addr(), &range, None, STORE_WAIT, |body| {
        lost(&stamps(body)) <= 1000
    })
    .await;
    let stored = stamps(&body);
    let expected: Vec<u64> = sent
        .iter()
        .copied()
        .filter(|&t| t <= *stored.last().unwrap())
        .collect();
    assert_eq!(
        stored, expected,
        "what was kept is every sample up to the newest kept"
    );

    // The killed node starts again cleanly, answers for the same history, and stores anew.
    let mut a = start_node_process(RELAY, &nats, "a", &flags);
    wait_cluster(a.addr(), "ok").await;
    let (status, again) = api_get(a.addr(), &range, None).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(stamps(&again), stored, "the restarted node reads the same");
    let mut desktop = Client::join(a.addr(), "desk", "desktop").await;
    let ts = last + 1000;
    desktop.send(&cpu(2.0, Some(ts))).await;
    let next = format!("/api/history?id=desk&from={ts}&to={}&step=raw", ts + 1);
    api_until(b.addr(), &next, None, STORE_WAIT, |body| {
        stamps(body) == [ts]
    })
    .await;
    assert!(a.try_wait().is_none(), "the restarted node runs on");
}

#[actix_web::test]
async fn jetstream_out_of_space_keeps_relaying_and_counts_and_logs_the_drops() {
    // Room for a few hundred samples in all of JetStream (packed, about 11 B each here, plus
    // each journal message's own overhead).
    let nats = Nats::start_with_jetstream("max_file_store: 8KB");
    let dir = tempfile::tempdir().unwrap();
    let data_arg = format!("--data-dir={}", dir.path().join("a").display());
    let flags = [
        data_arg.as_str(),
        "--message-rate",
        "10000",
        "--message-burst",
        "10000",
    ];
    let mut a = start_node_process(RELAY, &nats, "a", &flags);
    wait_cluster(a.addr(), "ok").await;
    let b = start_node(node(&nats, "b", &dir.path().join("b"))).await;
    let mut desktop = Client::join(a.addr(), "desk", "desktop").await;
    let mut near = Client::join(a.addr(), "desk", "web").await;
    let mut far = Client::join(b.addr(), "desk", "web").await;
    desktop.expect_presence("online", 2).await;
    // Rounds of samples until JetStream refuses some: how soon depends on when the journal of
    // a closed minute is purged (which frees room), so a fixed count could fit on a good day.
    const ROUND: u32 = 1500;
    let mut sent = 0;
    let (written, failed) = loop {
        for i in 0..ROUND {
            let value = f64::from(i % 100);
            desktop.send(&cpu(value, None)).await;
            assert_eq!(near.next_named("cpu").await["value"], value, "sample {i}");
            assert_eq!(far.next_named("cpu").await["value"], value, "sample {i}");
        }
        sent += ROUND;
        let (written, failed) = accounted(a.addr(), f64::from(sent)).await;
        if failed > 0.0 || sent >= 8 * ROUND {
            break (written, failed);
        }
    };
    assert!(failed > 0.0, "nothing failed: {written} written");
    assert!(written > 0.0, "nothing written before JetStream was full");

    // Logged, once (a full store must not turn into a log line per sample).
    let complaints = || {
        a.log_lines()
            .into_iter()
            .filter(|l| (l.contains(" ERROR ") || l.contains(" WARN ")) && l.contains("store"))
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + STORE_WAIT;
    while complaints().is_empty() {
        assert!(Instant::now() < deadline, "no complaint in the log");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logged = complaints();
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert!(
        logged[0].contains("insufficient resources"),
        "the log says why: {logged:#?}"
    );

    // Relaying goes on, near and far; reading a full store still answers.
    desktop.send(&cpu(42.0, None)).await;
    assert_eq!(near.next_named("cpu").await["value"], 42.0);
    assert_eq!(far.next_named("cpu").await["value"], 42.0);
    let (status, body) = api_get(b.addr(), "/api/history?id=desk&step=raw", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(points(&body).len() as f64 <= written, "{body}");
    assert!(a.try_wait().is_none(), "the node runs on");
    // And it still stops when asked, the full store notwithstanding.
    // SAFETY: kill(2) on our own child's pid; no memory is touched.
    unsafe { libc::kill(a.pid() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.try_wait().is_none() {
        assert!(Instant::now() < deadline, "no exit within 20 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn short_retention_removes_raw_samples_then_minutes() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let data_arg = format!("--data-dir={}", dir.path().display());
    let a = start_node_process(
        RELAY,
        &nats,
        "a",
        &[
            data_arg.as_str(),
            "--retention-raw",
            "3s",
            "--retention-minutes",
            "10s",
        ],
    );
    wait_cluster(a.addr(), "ok").await;
    let mut desktop = Client::join(a.addr(), "desk", "desktop").await;
    // Two samples in a minute well over, so its aggregate is stored without waiting for it to
    // end.
    let minute = (now_ms() - 240_000) / 60_000 * 60_000;
    for (value, ts) in [(10.0, minute + 1000), (30.0, minute + 2000)] {
        desktop.send(&cpu(value, Some(ts))).await;
    }
    let range = format!("id=desk&from={}&to={}", minute, minute + 60_000);
    let raw = format!("/api/history?{range}&step=raw");
    let minutes = format!("/api/history?{range}&step=60000");
    let aggregate = vec![minute as f64, 10.0, 20.0, 30.0];
    api_until(a.addr(), &raw, None, STORE_WAIT, |b| points(b).len() == 2).await;
    api_until(a.addr(), &minutes, None, STORE_WAIT, |b| {
        points(b) == [aggregate.clone()]
    })
    .await;

    // Raw samples go after --retention-raw; the minute stays until --retention-minutes.
    api_until(a.addr(), &raw, None, STORE_WAIT, |b| points(b).is_empty()).await;
    let (status, kept) = api_get(a.addr(), &minutes, None).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(
        points(&kept),
        [aggregate],
        "the minute outlives the raw samples"
    );
    api_until(a.addr(), &minutes, None, STORE_WAIT, |b| {
        points(b).is_empty()
    })
    .await;
}

#[actix_web::test]
async fn a_viewer_of_one_desktop_cannot_read_anothers_history_or_audit_on_any_node() {
    let nats = Nats::start();
    let keys = keys("k1", 7);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(secured(node(&nats, "a", dir_a.path()), &keys)).await;
    let b = start_node(secured(node(&nats, "b", dir_b.path()), &keys)).await;
    let mut desktop = Client::join_with_token(
        a.addr(),
        "b",
        "desktop",
        Some(&mint(&keys, "b", ClientMode::Desktop)),
    )
    .await;
    desktop.send(&cpu(5.0, None)).await;
    let web_a = mint(&keys, "a", ClientMode::Web);
    let web_b = mint(&keys, "b", ClientMode::Web);
    // B's history is there, on the other node too, for its own viewer...
    let path = "/api/history?id=b&step=raw";
    api_until(b.addr(), path, Some(&web_b), STORE_WAIT, |body| {
        points(body).len() == 1
    })
    .await;
    // ...and for no one else, on either node.
    for node in [a.addr(), b.addr()] {
        for path in [path, "/api/audit?desktop=b"] {
            let (status, body) = api_get(node, path, Some(&web_a)).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (403, Some("forbidden")),
                "{path}: {body}"
            );
            assert!(body.get("points").is_none() && body.get("records").is_none());
            let (status, _) = api_get(node, path, None).await;
            assert_eq!(status, 401, "{path} without a token");
        }
        let (status, body) = api_get(node, "/api/history?id=a", Some(&web_a)).await;
        assert_eq!(status, 200, "its own: {body}");
    }
}
