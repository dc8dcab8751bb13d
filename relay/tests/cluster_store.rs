//! The store of a cluster, in a real `nats-server -js`: a desktop's samples go in on one node and
//! come out of every node, raw and as minute aggregates (the folded minutes and the current
//! one), and the audit log written on one node is read on another, also after the node that
//! wrote it has gone.

use std::time::Duration;

use deskbridge_relay::Config;
use deskbridge_testkit::cluster::{cluster_config, metric, start_node, Nats, CLUSTER_WAIT};
use deskbridge_testkit::store::{api_until, now_ms, points, test_store};
use deskbridge_testkit::Client;
use serde_json::json;

fn node(nats: &Nats, name: &str, dir: &std::path::Path) -> Config {
    Config {
        store: Some(test_store(dir)),
        ..cluster_config(nats, name)
    }
}

#[actix_web::test]
async fn every_node_answers_every_range_from_jetstream() {
    let nats = Nats::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(node(&nats, "a", dir_a.path())).await;
    let b = start_node(node(&nats, "b", dir_b.path())).await;
    let mut desktop = Client::join(a.addr(), "desk", "desktop").await;
    let mut web = Client::join(b.addr(), "desk", "web").await;
    web.expect_presence("online", 1).await;

    // A minute well over (its aggregate comes from the minutes stream), and the current one
    // (from raw samples).
    let old = (now_ms() - 270_000) / 60_000 * 60_000;
    let old = old.max(now_ms() - 290_000);
    for (value, ts) in [(10.0, Some(old)), (30.0, Some(old + 1)), (70.0, None)] {
        let mut cpu = json!({"event": "cpu", "value": value});
        if let Some(ts) = ts {
            cpu["ts"] = json!(ts);
        }
        desktop.send(&cpu.to_string()).await;
        assert_eq!(web.next_named("cpu").await["value"], value);
    }
    let range = format!("id=desk&from={}&to={}", old - 60_000, now_ms() + 60_000);
    let raw = api_until(
        b.addr(),
        &format!("/api/history?{range}&step=raw"),
        None,
        CLUSTER_WAIT,
        |body| points(body).len() == 3,
    )
    .await;
    assert_eq!(points(&raw)[0], vec![old as f64, 10.0, 10.0, 10.0]);
    let minute = old / 60_000 * 60_000;
    let expected = vec![minute as f64, 10.0, 20.0, 30.0];
    let minutes = api_until(
        b.addr(),
        &format!("/api/history?{range}&step=60000"),
        None,
        CLUSTER_WAIT,
        |body| points(body).first() == Some(&expected) && points(body).len() == 2,
    )
    .await;
    assert_eq!(
        points(&minutes)[1][2],
        70.0,
        "the current minute, on the fly"
    );
    // Samples counted once each, when JetStream acknowledged them; a minute's aggregate is not a
    // sample.
    let series = "deskbridge_store_written_total{kind=\"sample\"}";
    let deadline = std::time::Instant::now() + CLUSTER_WAIT;
    while metric(a.addr(), series).await < 3.0 {
        assert!(std::time::Instant::now() < deadline, "acknowledgements");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(a.addr(), series).await, 3.0);

    // A command sent through node B, audited there when it ends, read on node A.
    web.send(r#"{"event":"beep","id":"b-1"}"#).await;
    desktop.next_named("beep").await;
    desktop
        .send(r#"{"event":"beep_result","id":"b-1","ok":true}"#)
        .await;
    let audit = api_until(
        a.addr(),
        "/api/audit?desktop=desk",
        None,
        CLUSTER_WAIT,
        |body| body["records"].as_array().is_some_and(|r| !r.is_empty()),
    )
    .await;
    assert_eq!(
        audit["records"][0]["detail"],
        json!({"command": "beep", "id": "b-1", "outcome": "done"})
    );

    // Node A goes; what JetStream acknowledged stays, and B still answers for it.
    drop(desktop);
    a.stop();
    let raw = api_until(
        b.addr(),
        &format!("/api/history?{range}&step=raw"),
        None,
        Duration::from_secs(5),
        |body| points(body).len() == 3,
    )
    .await;
    assert_eq!(points(&raw)[1][1], 30.0);
}
