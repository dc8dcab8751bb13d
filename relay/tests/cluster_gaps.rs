//! The charts' gaps in a cluster, in a real `nats-server -js`: a desktop that goes to sleep on one
//! node and wakes on another; the other node's `/api/history` says when and why (the departure
//! written by the first node, the return by the second).

use deskbridge_relay::Config;
use deskbridge_testkit::cluster::{cluster_config, start_node, Nats, CLUSTER_WAIT};
use deskbridge_testkit::store::{api_get, api_until, now_ms, test_store};
use deskbridge_testkit::{Client, RelayHandle};

fn node(nats: &Nats, name: &str, dir: &std::path::Path) -> Config {
    Config {
        store: Some(test_store(dir)),
        ..cluster_config(nats, name)
    }
}

/// Waits until `node`'s store writes to JetStream (its streams made): a sample of a probe desktop
/// comes back out. Presence changes before that would be dropped (counted), and so would the
/// probe's samples: it sends one at every look.
async fn store_ready(node: &RelayHandle, probe: &str) {
    let mut desktop = Client::join(node.addr(), probe, "desktop").await;
    let path = format!("/api/history?id={probe}&step=raw");
    let deadline = std::time::Instant::now() + CLUSTER_WAIT;
    loop {
        desktop.send(r#"{"event":"cpu","value":1.0}"#).await;
        let (status, body) = api_get(node.addr(), &path, None).await;
        if status == 200 && body["points"].as_array().is_some_and(|p| !p.is_empty()) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{probe}'s store not writing within {CLUSTER_WAIT:?}: {status} {body}"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn a_gaps_reason_crosses_nodes() {
    let nats = Nats::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(node(&nats, "a", dir_a.path())).await;
    let b = start_node(node(&nats, "b", dir_b.path())).await;
    store_ready(&a, "probe-a").await;
    store_ready(&b, "probe-b").await;
    let start = now_ms();

    let mut desktop = Client::join(a.addr(), "desk", "desktop").await;
    let mut web = Client::join(b.addr(), "desk", "web").await;
    web.expect_presence("online", 1).await;
    desktop.go_away("sleep").await;
    assert_eq!(web.expect_presence("offline", 1).await["reason"], "sleep");
    let _desktop = Client::join(b.addr(), "desk", "desktop").await;
    web.expect_presence("online", 1).await;

    let path = format!("/api/history?id=desk&from={start}&to={}", now_ms() + 1000);
    let body = api_until(a.addr(), &path, None, CLUSTER_WAIT, |b| {
        b["offline"]
            .as_array()
            .is_some_and(|o| !o.is_empty() && !o[0]["to"].is_null())
    })
    .await;
    let gaps = body["offline"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{body}");
    assert_eq!(gaps[0]["reason"], "sleep", "{body}");
    let (went, back) = (gaps[0]["from"].as_u64(), gaps[0]["to"].as_u64());
    assert!(
        matches!((went, back), (Some(w), Some(k)) if start <= w && w <= k),
        "{body}"
    );
    // Node B, which wrote the return, reads the same.
    let (_, on_b) = api_get(b.addr(), &path, None).await;
    assert_eq!(on_b["offline"], body["offline"], "{on_b}");
}
