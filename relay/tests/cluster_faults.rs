//! Cluster mode when things break: NATS going away and coming back, and a relay node dying.
//! Pairs on one node never notice NATS; pairs across nodes resume by themselves; a dead node's
//! desktop stops counting as online within the heartbeat timeout, and comes back through another
//! node.

use std::time::{Duration, Instant};

use deskbridge_protocol::ErrorCode;
use deskbridge_relay::Config;
use deskbridge_testkit::cluster::{
    cluster_config, metric, start_node, start_node_process, wait_cluster, Nats, CLUSTER_WAIT,
};
use deskbridge_testkit::{Client, Received};

const RELAY: &str = env!("CARGO_BIN_EXE_deskbridge-relay");

#[actix_web::test]
async fn without_nats_same_node_pairs_go_on_and_cross_node_pairs_resume_after() {
    let mut nats = Nats::start();
    let a = start_node(cluster_config(&nats, "node-a")).await;
    let b = start_node(cluster_config(&nats, "node-b")).await;
    let mut desktop = Client::join(a.addr(), "pair", "desktop").await;
    let mut near = Client::join(a.addr(), "pair", "web").await;
    let mut far = Client::join(b.addr(), "pair", "web").await;
    desktop.expect_presence("online", 2).await;
    desktop.send(r#"{"event":"cpu","value":1}"#).await;
    assert_eq!(near.next_named("cpu").await["value"], 1);
    assert_eq!(far.next_named("cpu").await["value"], 1);

    nats.kill();
    wait_cluster(a.addr(), "degraded").await;
    wait_cluster(b.addr(), "degraded").await;
    for v in 2..=4 {
        desktop
            .send(&format!(r#"{{"event":"cpu","value":{v}}}"#))
            .await;
        assert_eq!(near.next_named("cpu").await["value"], v);
    }
    near.send(r#"{"event":"beep","id":"during-outage"}"#).await;
    assert_eq!(desktop.next_named("beep").await["id"], "during-outage");
    desktop
        .send(r#"{"event":"beep_result","id":"during-outage","ok":true}"#)
        .await;
    assert_eq!(near.next_named("beep_result").await["ok"], true);
    far.send(r#"{"event":"beep","id":"lost"}"#).await;
    far.expect_error(ErrorCode::PeerOffline).await;
    let dropped = r#"deskbridge_cluster_dropped_total{reason="disconnected"}"#;
    assert!(metric(a.addr(), dropped).await >= 1.0);

    nats.restart();
    wait_cluster(a.addr(), "ok").await;
    wait_cluster(b.addr(), "ok").await;
    // Cross-node traffic resumes: keep sampling until the far viewer sees a new sample.
    let deadline = Instant::now() + CLUSTER_WAIT;
    let mut value = 100;
    'resumed: loop {
        assert!(Instant::now() < deadline, "cpu never crossed nodes again");
        desktop
            .send(&format!(r#"{{"event":"cpu","value":{value}}}"#))
            .await;
        value += 1;
        while let Some(received) = far.recv_within(Duration::from_millis(200)).await {
            let Received::Text(text) = received else {
                panic!("the far viewer was disconnected")
            };
            let event: serde_json::Value = serde_json::from_str(&text).unwrap();
            if event["event"] == "cpu" && event["value"].as_u64() >= Some(100) {
                break 'resumed;
            }
        }
    }
    far.send(r#"{"event":"beep","id":"after-outage"}"#).await;
    assert_eq!(desktop.next_named("beep").await["id"], "after-outage");
    assert_eq!(
        metric(a.addr(), "deskbridge_cluster_nats_disconnects_total").await,
        1.0
    );
}

#[actix_web::test]
async fn a_dead_nodes_desktop_goes_offline_in_time_and_comes_back_through_another_node() {
    let nats = Nats::start();
    let (heartbeat, timeout) = (Duration::from_millis(250), Duration::from_millis(1500));
    let mut a = start_node_process(
        RELAY,
        &nats,
        "node-a",
        &[
            "--heartbeat-interval",
            "250ms",
            "--client-timeout",
            "1500ms",
        ],
    );
    wait_cluster(a.addr(), "ok").await;
    let fast = |node| Config {
        heartbeat_interval: heartbeat,
        client_timeout: timeout,
        ..cluster_config(&nats, node)
    };
    let b = start_node(fast("node-b")).await;
    let c = start_node(fast("node-c")).await;

    let mut desktop = Client::join(a.addr(), "phoenix", "desktop").await;
    let mut web = Client::join(c.addr(), "phoenix", "web").await;
    web.expect_presence("online", 1).await;
    desktop.expect_presence("online", 1).await;
    desktop.send(r#"{"event":"cpu","value":1}"#).await;
    assert_eq!(web.next_named("cpu").await["value"], 1);

    // Killed: no close frames, no goodbye on NATS. Its announcements simply stop.
    a.kill();
    let killed = Instant::now();
    web.expect_presence("offline", 1).await;
    let ghost = killed.elapsed();
    assert!(
        ghost < timeout * 3,
        "the dead node's desktop stayed online for {ghost:?} (timeout {timeout:?})"
    );

    // The agent reconnects through the load balancer and lands on B.
    let mut desktop = Client::join(b.addr(), "phoenix", "desktop").await;
    web.expect_presence("online", 1).await;
    desktop.expect_presence("online", 1).await;
    desktop.send(r#"{"event":"cpu","value":2}"#).await;
    assert_eq!(web.next_named("cpu").await["value"], 2);
    web.send(r#"{"event":"beep","id":"found-you"}"#).await;
    assert_eq!(desktop.next_named("beep").await["id"], "found-you");
}

#[actix_web::test]
async fn a_node_that_stops_tells_the_others_at_once() {
    let nats = Nats::start();
    // Default heartbeat timeout (30 s): only the node's farewell can make this quick.
    let a = start_node(cluster_config(&nats, "node-a")).await;
    let b = start_node(cluster_config(&nats, "node-b")).await;
    let mut desktop = Client::join(a.addr(), "bye", "desktop").await;
    let mut web = Client::join(b.addr(), "bye", "web").await;
    web.expect_presence("online", 1).await;

    let stopper = std::thread::spawn(move || a.stop());
    desktop.expect_error(ErrorCode::ShuttingDown).await;
    web.expect_presence("offline", 1).await;
    stopper.join().unwrap();
}
