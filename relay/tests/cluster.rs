//! Cluster mode through a real NATS server: a desktop on one relay node and its viewers on others
//! get everything a single relay gives them — cpu, beep and its result, `peer_offline`, presence
//! counted over all nodes, the newest desktop winning, history on join, and commands to a desktop
//! on another node that go straight to it.

use awc::ws::CloseCode;
use deskbridge_protocol::{ErrorCode, ServerMessage};
use deskbridge_relay::Config;
use deskbridge_testkit::cluster::{cluster_config, metric, start_node, Nats};
use deskbridge_testkit::{decode, http_get, Client};

/// The next text frame that is not `presence`, `history` or a `command` event, verbatim.
async fn next_forwarded(client: &mut Client) -> String {
    loop {
        let text = client.next_text().await;
        if !text.contains(r#""event":"presence""#)
            && !text.contains(r#""event":"history""#)
            && !text.contains(r#""event":"command""#)
        {
            return text;
        }
    }
}

#[actix_web::test]
async fn cpu_beep_and_beep_result_cross_nodes_byte_for_byte() {
    let nats = Nats::start();
    let a = start_node(cluster_config(&nats, "node-a")).await;
    let b = start_node(cluster_config(&nats, "node-b")).await;
    let c = start_node(cluster_config(&nats, "node-c")).await;

    let mut desktop = Client::join(a.addr(), "alice-laptop", "desktop").await;
    let mut on_b = Client::join(b.addr(), "alice-laptop", "web").await;
    on_b.expect_presence("online", 1).await;
    let mut on_c = Client::join(c.addr(), "alice-laptop", "web").await;
    on_c.expect_presence("online", 2).await;
    on_b.expect_presence("online", 2).await;
    // Once the desktop counts both, its node knows other nodes want its telemetry.
    desktop.expect_presence("online", 2).await;

    let cpu = r#"{"event":"cpu", "value":23.5,"cores":[10,37],"ts":1,"gpu":{"x":[1]}}"#;
    desktop.send(cpu).await;
    assert_eq!(next_forwarded(&mut on_b).await, cpu);
    assert_eq!(next_forwarded(&mut on_c).await, cpu);

    let beep = r#"{"event":"beep","id":"from-b","volume":0.5}"#;
    on_b.send(beep).await;
    assert_eq!(next_forwarded(&mut desktop).await, beep);
    let result = r#"{"event":"beep_result","id":"from-b","ok":true}"#;
    desktop.send(result).await;
    assert_eq!(next_forwarded(&mut on_b).await, result);
    assert_eq!(next_forwarded(&mut on_c).await, result);

    let from_c = r#"{"event":"beep","id":"from-c"}"#;
    on_c.send(from_c).await;
    assert_eq!(next_forwarded(&mut desktop).await, from_c);
}

#[actix_web::test]
async fn a_command_gets_peer_offline_only_when_no_node_has_the_desktop() {
    let nats = Nats::start();
    let a = start_node(cluster_config(&nats, "node-a")).await;
    let b = start_node(cluster_config(&nats, "node-b")).await;

    let mut web = Client::join(b.addr(), "nobody-home", "web").await;
    web.expect_presence("offline", 1).await;
    web.send(r#"{"event":"beep","id":"x"}"#).await;
    let error = web.expect_error(ErrorCode::PeerOffline).await;
    assert!(error["message"].as_str().unwrap().contains("beep"));

    let mut desktop = Client::join(a.addr(), "nobody-home", "desktop").await;
    web.expect_presence("online", 1).await;
    web.send(r#"{"event":"beep","id":"y"}"#).await;
    assert_eq!(desktop.next_named("beep").await["id"], "y");

    drop(desktop);
    web.expect_presence("offline", 1).await;
    web.send(r#"{"event":"beep","id":"z"}"#).await;
    web.expect_error(ErrorCode::PeerOffline).await;
}

#[actix_web::test]
async fn presence_counts_the_viewers_of_every_node() {
    let nats = Nats::start();
    let a = start_node(cluster_config(&nats, "node-a")).await;
    let b = start_node(cluster_config(&nats, "node-b")).await;
    let c = start_node(cluster_config(&nats, "node-c")).await;

    let mut desktop = Client::join(a.addr(), "p", "desktop").await;
    desktop.expect_presence("online", 0).await;
    let on_b = Client::join(b.addr(), "p", "web").await;
    desktop.expect_presence("online", 1).await;
    let mut on_c = Client::join(c.addr(), "p", "web").await;
    desktop.expect_presence("online", 2).await;
    on_c.expect_presence("online", 2).await;
    let mut also_on_c = Client::join(c.addr(), "p", "web").await;
    also_on_c.expect_presence("online", 3).await;
    desktop.expect_presence("online", 3).await;

    drop(on_b);
    desktop.expect_presence("online", 2).await;
    on_c.expect_presence("online", 2).await;
    drop(desktop);
    on_c.expect_presence("offline", 2).await;
    also_on_c.expect_presence("offline", 2).await;
}

#[actix_web::test]
async fn the_newest_desktop_wins_across_nodes() {
    let nats = Nats::start();
    let a = start_node(cluster_config(&nats, "node-a")).await;
    let b = start_node(cluster_config(&nats, "node-b")).await;
    let c = start_node(cluster_config(&nats, "node-c")).await;

    let mut web = Client::join(c.addr(), "same", "web").await;
    let mut old = Client::join(a.addr(), "same", "desktop").await;
    web.expect_presence("online", 1).await;
    old.expect_presence("online", 1).await;

    let mut new = Client::join(b.addr(), "same", "desktop").await;
    old.expect_error(ErrorCode::Replaced).await;
    assert_eq!(old.expect_close().await, Some(CloseCode::Other(4001)));
    new.expect_presence("online", 1).await;

    web.send(r#"{"event":"beep","id":"to-new"}"#).await;
    assert_eq!(new.next_named("beep").await["id"], "to-new");
    new.send(r#"{"event":"cpu","value":7}"#).await;
    // The replaced desktop leaving must not have marked the id offline.
    loop {
        let event = web.next_event().await;
        assert_ne!(event["desktop"], "offline", "{event}");
        if event["event"] == "cpu" {
            assert_eq!(event["value"], 7);
            break;
        }
    }
}

#[actix_web::test]
async fn a_viewer_on_another_node_gets_the_desktops_history() {
    let nats = Nats::start();
    let config = |node| Config {
        history_len: 3,
        ..cluster_config(&nats, node)
    };
    let a = start_node(config("node-a")).await;
    let b = start_node(config("node-b")).await;

    let mut desktop = Client::join(a.addr(), "h", "desktop").await;
    let mut local = Client::join(a.addr(), "h", "web").await;
    for v in 1..=5 {
        desktop
            .send(&format!(r#"{{"event":"cpu","value":{v}}}"#))
            .await;
    }
    // Once the local viewer saw the last sample, node A has stored it.
    while local.next_named("cpu").await["value"] != 5 {}

    let mut remote = Client::join(b.addr(), "h", "web").await;
    let ServerMessage::History(history) = decode(&remote.next_named("history").await) else {
        unreachable!()
    };
    let values: Vec<f64> = history.samples.iter().map(|s| s.value).collect();
    assert_eq!(values, [3.0, 4.0, 5.0]);
    remote.expect_presence("online", 2).await;
}

#[actix_web::test]
async fn healthz_and_metrics_report_the_node_and_its_traffic() {
    let nats = Nats::start();
    let a = start_node(cluster_config(&nats, "node-a")).await;
    let b = start_node(cluster_config(&nats, "node-b")).await;
    let (status, body, _) = http_get(a.addr(), "/healthz").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["cluster"], "ok", "{body}");
    assert_eq!(health["node"], "node-a", "{body}");

    let mut desktop = Client::join(a.addr(), "m", "desktop").await;
    let mut web = Client::join(b.addr(), "m", "web").await;
    desktop.expect_presence("online", 1).await;
    desktop.send(r#"{"event":"cpu","value":1}"#).await;
    web.next_named("cpu").await;

    assert_eq!(
        metric(a.addr(), r#"deskbridge_cluster_node_info{node="node-a"}"#).await,
        1.0
    );
    assert_eq!(
        metric(a.addr(), "deskbridge_cluster_nats_connected").await,
        1.0
    );
    let sent = r#"deskbridge_cluster_published_total{kind="telemetry"}"#;
    assert_eq!(metric(a.addr(), sent).await, 1.0);
    let got = r#"deskbridge_cluster_received_total{kind="telemetry"}"#;
    assert_eq!(metric(b.addr(), got).await, 1.0);
    // The viewer on B counts as a relayed cpu on B.
    let relayed = r#"deskbridge_messages_relayed_total{event="cpu"}"#;
    assert_eq!(metric(b.addr(), relayed).await, 1.0);
    assert!(
        metric(
            a.addr(),
            r#"deskbridge_cluster_published_total{kind="state"}"#
        )
        .await
            >= 1.0
    );
}

#[actix_web::test]
async fn the_desktops_command_budget_is_shared_by_viewers_on_every_node() {
    let nats = Nats::start();
    let config = |node| Config {
        commands_per_second: 1,
        ..cluster_config(&nats, node)
    };
    let a = start_node(config("node-a")).await;
    let b = start_node(config("node-b")).await;
    let c = start_node(config("node-c")).await;
    let mut desktop = Client::join(a.addr(), "ears", "desktop").await;
    let mut on_b = Client::join(b.addr(), "ears", "web").await;
    let mut on_c = Client::join(c.addr(), "ears", "web").await;
    on_b.expect_presence("online", 2).await;
    on_c.expect_presence("online", 2).await;

    on_b.send(r#"{"event":"beep","id":"1"}"#).await;
    assert_eq!(desktop.next_named("beep").await["id"], "1");
    // Node C's own budget is untouched, but the desktop's node has spent this second's.
    on_c.send(r#"{"event":"beep","id":"2"}"#).await;
    let error = on_c.expect_error(ErrorCode::RateLimited).await;
    assert!(error["message"].as_str().unwrap().contains("per second"));
}

#[actix_web::test]
async fn a_viewer_whose_desktop_is_on_another_node_sends_commands_without_the_matchmaker() {
    let nats = Nats::start();
    let a = start_node(cluster_config(&nats, "node-a")).await;
    let b = start_node(cluster_config(&nats, "node-b")).await;
    let mut desktop = Client::join(a.addr(), "r", "desktop").await;
    let mut web = Client::join(b.addr(), "r", "web").await;
    // Node b has heard node a's announcement: its viewer's route to the desktop is `Remote`.
    web.expect_presence("online", 1).await;
    for id in ["1", "2", "3"] {
        web.send(&format!(r#"{{"event":"beep","id":"{id}"}}"#))
            .await;
        assert_eq!(desktop.next_named("beep").await["id"], id);
    }
    let lookups = "deskbridge_cluster_desktop_lookups_total";
    assert_eq!(metric(b.addr(), lookups).await, 0.0);

    // The desktop goes away: the route becomes `Unknown`, and a command asks the matchmaker
    // (the slow path that closes the race with a desktop joining) before `peer_offline`.
    drop(desktop);
    web.expect_presence("offline", 1).await;
    web.send(r#"{"event":"beep","id":"4"}"#).await;
    web.expect_error(ErrorCode::PeerOffline).await;
    assert_eq!(metric(b.addr(), lookups).await, 1.0);
}

#[actix_web::test]
async fn why_a_desktop_went_reaches_viewers_on_other_nodes() {
    let nats = Nats::start();
    let a = start_node(cluster_config(&nats, "node-a")).await;
    let b = start_node(cluster_config(&nats, "node-b")).await;

    let mut desktop = Client::join(a.addr(), "sleepy", "desktop").await;
    let mut on_b = Client::join(b.addr(), "sleepy", "web").await;
    on_b.expect_presence("online", 1).await;
    desktop.expect_presence("online", 1).await;
    desktop.go_away("sleep").await;
    let asleep = on_b.expect_presence("offline", 1).await;
    assert_eq!(asleep["reason"], "sleep", "{asleep}");

    // Back, then gone without a word: lost, on the other node too.
    let desktop = Client::join(a.addr(), "sleepy", "desktop").await;
    let online = on_b.expect_presence("online", 1).await;
    assert!(online.get("reason").is_none(), "{online}");
    drop(desktop);
    let lost = on_b.expect_presence("offline", 1).await;
    assert_eq!(lost["reason"], "lost", "{lost}");
}
