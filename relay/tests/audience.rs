//! `audience` through a real relay (issue 14): a desktop hears who watches it on join and on
//! every change — over every node of a cluster — with the interval it should report at; viewers
//! read that interval in `presence`; `/metrics` counts desktops per interval class; and the 2018
//! prototype's desktop, which ignores all of it and reports every second, still works.

use std::time::Duration;

use deskbridge_relay::Config;
use deskbridge_testkit::cluster::{cluster_config, metric, start_node, Nats};
use deskbridge_testkit::{start_relay, test_config, Client};
use serde_json::Value;

/// The next `audience` frame: `(detail, overview, interval_ms)`.
async fn audience(desktop: &mut Client) -> (u64, u64, u64) {
    let a: Value = desktop.next_named("audience").await;
    let n = |k: &str| a[k].as_u64().unwrap_or_else(|| panic!("{k} in {a}"));
    (n("detail"), n("overview"), n("interval_ms"))
}

const BY_CLASS: &str = "deskbridge_desktops_by_interval";

async fn class_gauge(relay: std::net::SocketAddr, class: &str) -> f64 {
    metric(relay, &format!("{BY_CLASS}{{class=\"{class}\"}}")).await
}

#[actix_web::test]
async fn a_desktop_hears_its_audience_on_join_and_on_every_change() {
    let relay = start_relay(Config {
        report_interval_idle: Duration::from_secs(90),
        ..test_config()
    });
    let mut desktop = Client::join(relay.addr(), "watched", "desktop").await;
    assert_eq!(
        audience(&mut desktop).await,
        (0, 0, 90_000),
        "configured idle"
    );
    assert_eq!(class_gauge(relay.addr(), "idle").await, 1.0);

    let mut first = Client::join(relay.addr(), "watched", "web").await;
    let presence = first.next_named("presence").await;
    assert_eq!(presence["interval_ms"], 1000, "{presence}");
    assert_eq!(audience(&mut desktop).await, (1, 0, 1000));
    let second = Client::join(relay.addr(), "watched", "web").await;
    assert_eq!(audience(&mut desktop).await, (2, 0, 1000));
    assert_eq!(class_gauge(relay.addr(), "detail").await, 1.0);
    assert_eq!(class_gauge(relay.addr(), "idle").await, 0.0);

    drop(first);
    assert_eq!(
        audience(&mut desktop).await,
        (1, 0, 1000),
        "one still watches"
    );
    drop(second);
    assert_eq!(audience(&mut desktop).await, (0, 0, 90_000));
    assert_eq!(class_gauge(relay.addr(), "idle").await, 1.0);
    assert!(metric(relay.addr(), "deskbridge_audience_changes_total").await >= 5.0);

    // Offline, presence says no interval.
    drop(desktop);
    let mut late = Client::join(relay.addr(), "watched", "web").await;
    let presence = late.next_named("presence").await;
    assert_eq!(presence["desktop"], "offline");
    assert!(presence.get("interval_ms").is_none(), "{presence}");
}

#[actix_web::test]
async fn the_prototype_desktop_ignores_audience_and_keeps_working() {
    let relay = start_relay(test_config());
    // Exactly the prototype's messages: no token, `cpu` with only `value`, once a second.
    let mut desktop = Client::join(relay.addr(), "proto", "desktop").await;
    desktop.send(r#"{"event":"cpu","value":12.5}"#).await;
    // Unwatched, reporting every second anyway: nothing refused, the connection stays.
    let seen = desktop.collect_for(Duration::from_millis(1000)).await;
    desktop.send(r#"{"event":"cpu","value":13.5}"#).await;
    let mut web = Client::join(relay.addr(), "proto", "web").await;
    let history = web.next_named("history").await;
    assert_eq!(
        history["samples"].as_array().map(Vec::len),
        Some(2),
        "{history}"
    );
    for value in [14.5, 15.5] {
        tokio::time::sleep(Duration::from_secs(1)).await;
        desktop
            .send(&format!(r#"{{"event":"cpu","value":{value}}}"#))
            .await;
        assert_eq!(web.next_named("cpu").await["value"], value);
    }
    let later = desktop.collect_for(Duration::from_millis(300)).await;
    for message in seen.iter().chain(&later) {
        assert!(
            !matches!(message, deskbridge_protocol::ServerMessage::Error(_)),
            "{message:?}"
        );
    }
    assert_eq!(
        metric(
            relay.addr(),
            r#"deskbridge_errors_total{code="bad_message"}"#
        )
        .await,
        0.0
    );
    // Still connected and relayed.
    desktop.send(r#"{"event":"cpu","value":1}"#).await;
    assert_eq!(web.next_named("cpu").await["value"], 1);
}

#[actix_web::test]
async fn across_nodes_the_desktop_hears_the_viewers_of_every_node() {
    let nats = Nats::start();
    let a = start_node(cluster_config(&nats, "node-a")).await;
    let b = start_node(cluster_config(&nats, "node-b")).await;

    let mut desktop = Client::join(a.addr(), "spread", "desktop").await;
    assert_eq!(audience(&mut desktop).await, (0, 0, 60_000));
    let on_b = Client::join(b.addr(), "spread", "web").await;
    assert_eq!(
        audience(&mut desktop).await,
        (1, 0, 1000),
        "a viewer on another node"
    );
    let on_a = Client::join(a.addr(), "spread", "web").await;
    assert_eq!(audience(&mut desktop).await, (2, 0, 1000));
    drop(on_b);
    assert_eq!(
        audience(&mut desktop).await,
        (1, 0, 1000),
        "one still watches"
    );
    // The viewer on B reads the same interval its own node computes.
    let mut again_b = Client::join(b.addr(), "spread", "web").await;
    loop {
        let presence = again_b.next_named("presence").await;
        if presence["desktop"] == "online" {
            assert_eq!(presence["interval_ms"], 1000, "{presence}");
            break;
        }
    }
    assert_eq!(audience(&mut desktop).await, (2, 0, 1000));
    drop(again_b);
    assert_eq!(audience(&mut desktop).await, (1, 0, 1000));
    drop(on_a);
    assert_eq!(
        audience(&mut desktop).await,
        (0, 0, 60_000),
        "nobody on any node"
    );
}
