//! The store through a real relay: cpu samples in over the socket, ranges out of
//! `GET /api/history` with the right aggregates; history across a restart and across a SIGKILL;
//! a full disk that costs the store its samples but not the viewers theirs; retention; the audit
//! log; and who may read what.

use std::time::{Duration, Instant};

use deskbridge_auth::token::mint_fleet;
use deskbridge_auth::{Patterns, Role};
use deskbridge_protocol::ClientMode;
use deskbridge_relay::Config;
use deskbridge_testkit::cluster::metric;
use deskbridge_testkit::store::{
    api_get, api_until, cpu, now_ms, points, store_config, test_store,
};
use deskbridge_testkit::tokens::{keys, mint, secured};
use deskbridge_testkit::{start_relay, test_config, Client, RelayProcess, WAIT};
use serde_json::{json, Value};

const RELAY: &str = env!("CARGO_BIN_EXE_deskbridge-relay");

#[actix_web::test]
async fn samples_in_ranges_out_with_the_right_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(store_config(dir.path()));
    let addr = relay.addr();
    let mut desktop = Client::join(addr, "desk", "desktop").await;
    let mut web = Client::join(addr, "desk", "web").await;
    web.expect_presence("online", 1).await;
    // Two minutes ago, a minute boundary: two samples in one minute, one in the next.
    let m = now_ms() / 60_000 * 60_000 - 120_000;
    for (value, ts) in [(10.0, m + 1000), (30.0, m + 2000), (50.0, m + 61_000)] {
        desktop.send(&cpu(value, Some(ts))).await;
        assert_eq!(web.next_named("cpu").await["value"], value, "live as ever");
    }
    // Without ts: stored at the relay's receive time.
    let before = now_ms();
    desktop.send(&cpu(70.0, None)).await;
    web.next_named("cpu").await;
    let after = now_ms();

    let range = format!("from={m}&to={}", after + 1);
    let raw = api_until(
        addr,
        &format!("/api/history?id=desk&{range}&step=raw"),
        None,
        WAIT,
        |b| points(b).len() == 4,
    )
    .await;
    assert_eq!(raw["id"], "desk");
    assert_eq!(raw["step"], "raw");
    let raw = points(&raw);
    assert_eq!(raw[0], vec![(m + 1000) as f64, 10.0, 10.0, 10.0]);
    assert_eq!(raw[2], vec![(m + 61_000) as f64, 50.0, 50.0, 50.0]);
    let received = raw[3][0] as u64;
    assert!(
        (before..=after).contains(&received),
        "{received} not in {before}..={after}"
    );

    let (status, minutes) = api_get(
        addr,
        &format!("/api/history?id=desk&{range}&step=60000"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{minutes}");
    assert_eq!(minutes["step"], 60_000);
    let minutes_points = points(&minutes);
    assert_eq!(minutes_points[0], vec![m as f64, 10.0, 20.0, 30.0]);
    assert_eq!(
        minutes_points[1],
        vec![(m + 60_000) as f64, 50.0, 50.0, 50.0]
    );
    assert_eq!(minutes["memory_used"][0], 100.0);
    // Left to the relay, a short recent range is raw; a month is ~2,000 points at most.
    let (_, auto) = api_get(addr, &format!("/api/history?id=desk&{range}"), None).await;
    assert_eq!(auto["step"], "raw");
    let month = format!(
        "/api/history?id=desk&from={}&to={after}",
        after - 30 * 86_400_000
    );
    let (_, auto) = api_get(addr, &month, None).await;
    assert_eq!(auto["step"], 22 * 60_000);
    assert!(!points(&auto).is_empty());
    // Another desktop has nothing.
    let (status, other) = api_get(addr, &format!("/api/history?id=other&{range}"), None).await;
    assert_eq!((status, points(&other).len()), (200, 0));
    assert_eq!(
        metric(addr, "deskbridge_store_written_total{kind=\"sample\"}").await,
        4.0
    );
}

#[actix_web::test]
async fn bad_requests_get_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(store_config(dir.path()));
    let addr = relay.addr();
    for (path, status, code) in [
        ("/api/history", 400, "bad_request"),
        ("/api/history?id=../x", 400, "bad_id"),
        ("/api/history?id=a&from=10&to=5", 400, "bad_range"),
        ("/api/history?id=a&from=x", 400, "bad_request"),
        ("/api/history?id=a&step=hourly", 400, "bad_step"),
        (
            "/api/history?id=a&from=0&to=99999999999&step=raw",
            400,
            "too_many_points",
        ),
        ("/api/audit?desktop=", 400, "bad_id"),
    ] {
        let (got, body) = api_get(addr, path, None).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let plain = start_relay(test_config());
    let (status, body) = api_get(plain.addr(), "/api/history?id=a", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no_store")),
        "{body}"
    );
}

#[actix_web::test]
async fn history_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(store_config(dir.path()));
    let mut desktop = Client::join(relay.addr(), "desk", "desktop").await;
    let mut web = Client::join(relay.addr(), "desk", "web").await;
    web.expect_presence("online", 1).await;
    for i in 0..5 {
        desktop.send(&cpu(f64::from(i), None)).await;
        web.next_named("cpu").await;
    }
    // A graceful stop writes the last batch.
    relay.stop();
    let relay = start_relay(store_config(dir.path()));
    let (status, body) = api_get(relay.addr(), "/api/history?id=desk&step=raw", None).await;
    assert_eq!(status, 200, "{body}");
    let values: Vec<f64> = points(&body).iter().map(|p| p[2]).collect();
    assert_eq!(values, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
}

#[actix_web::test]
async fn sigkill_mid_write_loses_at_most_the_last_second_and_the_store_opens_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = format!("--data-dir={}", data.display());
    let flags = [
        data_arg.as_str(),
        "--message-rate",
        "1000",
        "--message-burst",
        "1000",
    ];
    let mut relay = RelayProcess::start(RELAY, &flags);
    let mut desktop = Client::join(relay.addr(), "desk", "desktop").await;
    let mut web = Client::join(relay.addr(), "desk", "web").await;
    web.expect_presence("online", 1).await;
    // Samples at about 200 a second for 2.5 s, each ts distinct; the viewer seeing
    // one proves the relay had it.
    let started = Instant::now();
    let mut last = 0;
    let mut sent = Vec::new();
    while started.elapsed() < Duration::from_millis(2500) {
        let ts = now_ms().max(last + 1);
        last = ts;
        desktop.send(&cpu(1.0, Some(ts))).await;
        assert_eq!(web.next_named("cpu").await["ts"], ts);
        sent.push(ts);
        // About 200 a second: within the rate limit, a few batches' worth.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let final_ts = last;
    relay.kill();
    let path = data.join("deskbridge.sqlite3");
    let check = rusqlite::Connection::open(&path).unwrap();
    let integrity: String = check
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    drop(check);

    let relay = RelayProcess::start(RELAY, &flags);
    let from = sent[0];
    let body = api_until(
        relay.addr(),
        &format!(
            "/api/history?id=desk&from={from}&to={}&step=raw",
            final_ts + 1
        ),
        None,
        WAIT,
        |_| true,
    )
    .await;
    let stored: Vec<u64> = points(&body).iter().map(|p| p[0] as u64).collect();
    let newest = stored.last().copied().unwrap_or(from);
    assert!(
        final_ts - newest <= 1500,
        "lost {} ms of samples; at most the last batch (1 s) may be lost",
        final_ts - newest
    );
    let expected: Vec<u64> = sent.iter().copied().filter(|&t| t <= newest).collect();
    assert_eq!(
        stored, expected,
        "what was kept is every sample up to the newest kept"
    );
}

#[actix_web::test]
async fn a_full_disk_keeps_relaying_and_counts_the_drops() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = test_store(dir.path());
    // The tables take ten pages; two more hold about 500 packed samples at most.
    store.max_page_count = Some(12);
    let relay = start_relay(Config {
        store: Some(store),
        send_queue: 8192,
        ..test_config()
    });
    let addr = relay.addr();
    let mut desktop = Client::join(addr, "desk", "desktop").await;
    let mut web = Client::join(addr, "desk", "web").await;
    web.expect_presence("online", 1).await;
    const N: u32 = 3000;
    for i in 0..N {
        desktop.send(&cpu(f64::from(i % 100), None)).await;
    }
    for _ in 0..N {
        web.next_named("cpu").await;
    }
    let deadline = Instant::now() + WAIT;
    let (written, failed) = loop {
        let written = metric(addr, "deskbridge_store_written_total{kind=\"sample\"}").await;
        let failed = metric(
            addr,
            "deskbridge_store_dropped_total{kind=\"sample\",reason=\"write_failed\"}",
        )
        .await;
        let full = metric(
            addr,
            "deskbridge_store_dropped_total{kind=\"sample\",reason=\"queue_full\"}",
        )
        .await;
        if written + failed + full == f64::from(N) {
            break (written, failed);
        }
        assert!(
            Instant::now() < deadline,
            "{written} + {failed} + {full} != {N}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(failed > 0.0, "nothing failed: {written} written");
    // The relay goes on: a new viewer still gets everything live.
    desktop.send(&cpu(42.0, None)).await;
    assert_eq!(web.next_named("cpu").await["value"], 42.0);
    let (status, _) = api_get(addr, "/api/history?id=desk&step=raw", None).await;
    assert_eq!(status, 200, "reading a full store still works");
}

#[actix_web::test]
async fn retention_deletes_raw_samples_and_then_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = test_store(dir.path());
    store.retention_raw = Duration::from_secs(60);
    store.retention_minutes = Duration::from_secs(180);
    let relay = start_relay(Config {
        store: Some(store),
        ..test_config()
    });
    let addr = relay.addr();
    let mut desktop = Client::join(addr, "desk", "desktop").await;
    let now = now_ms();
    // Past both retentions; past the raw one only; within both.
    let (old, middle) = (now - 270_000, now - 90_000);
    for (value, ts) in [(1.0, old), (2.0, middle), (3.0, now)] {
        desktop.send(&cpu(value, Some(ts))).await;
    }
    let range = format!("id=desk&from={}&to={}", old - 60_000, now + 1);
    let raw = api_until(
        addr,
        &format!("/api/history?{range}&step=raw"),
        None,
        WAIT,
        |b| points(b).len() == 1,
    )
    .await;
    assert_eq!(points(&raw)[0][1], 3.0);
    let minutes = api_until(
        addr,
        &format!("/api/history?{range}&step=60000"),
        None,
        WAIT,
        |b| points(b).len() == 2,
    )
    .await;
    let means: Vec<f64> = points(&minutes).iter().map(|p| p[2]).collect();
    assert_eq!(
        means,
        vec![2.0, 3.0],
        "the oldest minute is gone, the middle one kept"
    );
}

#[actix_web::test]
async fn a_viewer_of_one_desktop_cannot_read_anothers_history_or_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys("k1", 7);
    let relay = start_relay(secured(store_config(dir.path()), &keys));
    let addr = relay.addr();
    let web_a = mint(&keys, "a", ClientMode::Web);
    let desktop_a = mint(&keys, "a", ClientMode::Desktop);
    for path in ["/api/history?id=b", "/api/audit?desktop=b"] {
        let (status, body) = api_get(addr, path, Some(&web_a)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("forbidden")),
            "{path}: {body}"
        );
        let (status, body) = api_get(addr, path, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized")),
            "{body}"
        );
        let (status, _) = api_get(addr, path, Some("not.a.token")).await;
        assert_eq!(status, 401);
    }
    let (status, body) = api_get(addr, "/api/history?id=a", Some(&desktop_a)).await;
    assert_eq!(status, 401, "a desktop token is no viewer's: {body}");
    for path in ["/api/history?id=a", "/api/audit?desktop=a"] {
        let (status, body) = api_get(addr, path, Some(&web_a)).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // A viewer (not an operator) of `a` may read its history, not its audit log.
    let patterns = Patterns::parse("a").unwrap();
    let viewer = mint_fleet(&keys, &patterns, Role::Viewer, Duration::from_secs(600));
    let (status, _) = api_get(addr, "/api/history?id=a", Some(&viewer)).await;
    assert_eq!(status, 200);
    let (status, body) = api_get(addr, "/api/audit?desktop=a", Some(&viewer)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
}

#[actix_web::test]
async fn the_audit_log_records_refused_tokens_and_commands_but_never_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys("k1", 7);
    let relay = start_relay(secured(store_config(dir.path()), &keys));
    let addr = relay.addr();
    let web_token = mint(&keys, "desk", ClientMode::Web);
    let jti = deskbridge_auth::token::Verifier::new(keys.clone(), Duration::from_secs(30))
        .verify(&web_token, &"desk".parse().unwrap(), ClientMode::Web)
        .unwrap()
        .jti;

    // A viewer beeps an offline desktop, then an online one.
    let mut web = Client::join_with_token(addr, "desk", "web", Some(&web_token)).await;
    // What the viewer saw each command end as is what the audit log must say.
    let mut seen = std::collections::HashMap::new();
    let ended = |event: &Value| {
        ["done", "failed", "expired"].contains(&event["state"].as_str().unwrap_or(""))
    };
    web.send(r#"{"event":"beep","id":"b-1"}"#).await;
    loop {
        let event = web.next_event().await;
        match event["event"].as_str() {
            Some("error") => break,
            Some("command") if ended(&event) => {
                seen.insert(event["id"].as_str().unwrap().to_owned(), event);
            }
            _ => {}
        }
    }
    let desktop_token = mint(&keys, "desk", ClientMode::Desktop);
    let mut desktop = Client::join_with_token(addr, "desk", "desktop", Some(&desktop_token)).await;
    web.expect_presence("online", 1).await;
    web.send(r#"{"event":"beep","id":"b-2"}"#).await;
    desktop.next_named("beep").await;
    desktop
        .send(r#"{"event":"beep_result","id":"b-2","ok":true}"#)
        .await;
    while seen.len() < 2 {
        let event = web.next_named("command").await;
        if ended(&event) {
            seen.insert(event["id"].as_str().unwrap().to_owned(), event);
        }
    }
    // A token for another desktop, refused.
    let mut intruder = Client::connect(addr).await;
    let other = mint(&keys, "other", ClientMode::Web);
    intruder.authenticate("desk", "web", Some(&other)).await;
    intruder.next_named("error").await;

    let body = api_until(
        addr,
        "/api/audit?desktop=desk",
        Some(&web_token),
        WAIT,
        |b| b["records"].as_array().is_some_and(|r| r.len() == 3),
    )
    .await;
    let records = body["records"].as_array().unwrap();
    let by = format!("token {}", &jti[..8]);
    assert_eq!(records[0]["kind"], "command");
    assert_eq!(records[0]["by"], by.as_str());
    assert_eq!(records[0]["from"], "127.0.0.1");
    assert_eq!(records[0]["desktop"], "desk");
    assert_eq!(
        records[0]["detail"],
        json!({"command": "beep", "id": "b-1", "outcome": "failed",
               "error": seen["b-1"]["error"]})
    );
    assert_eq!(seen["b-1"]["state"], "failed");
    assert!(seen["b-1"]["error"].as_str().unwrap().contains("offline"));
    assert_eq!(
        records[1]["detail"],
        json!({"command": "beep", "id": "b-2", "outcome": seen["b-2"]["state"]})
    );
    assert_eq!(seen["b-2"]["state"], "done");
    assert_eq!(records[1]["by"], seen["b-2"]["by"]);
    assert_eq!(records[2]["kind"], "token_refused");
    assert_eq!(records[2]["detail"]["mode"], "web");
    assert!(records[2]["detail"]["reason"]
        .as_str()
        .unwrap()
        .contains("other"));
    let text = body.to_string();
    for token in [&web_token, &desktop_token, &other] {
        assert!(
            !text.contains(token.as_str()),
            "a token in the audit log: {text}"
        );
    }
    let since = records[2]["ts"].as_u64().unwrap();
    let path = format!("/api/audit?desktop=desk&since={since}");
    let (_, later) = api_get(addr, &path, Some(&web_token)).await;
    let expected: Vec<&Value> = records
        .iter()
        .filter(|r| r["ts"].as_u64().unwrap() >= since)
        .collect();
    let later_records: Vec<&Value> = later["records"].as_array().unwrap().iter().collect();
    assert_eq!(later_records, expected);
    assert_eq!(later["more"], false);
}
