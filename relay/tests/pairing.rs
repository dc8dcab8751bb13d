//! Pairing and routing through a real relay: desktop ↔ viewers, fan-out, presence, history,
//! `peer_offline`, the viewer limit, and the 2018 prototype's exact messages.

use deskbridge_protocol::{ErrorCode, ServerMessage};
use deskbridge_relay::Config;
use deskbridge_testkit::{decode, start_relay, test_config, Client, WAIT};

#[actix_web::test]
async fn desktop_and_viewer_exchange_messages_byte_for_byte() {
    let relay = start_relay(test_config());
    let mut desktop = Client::join(relay.addr(), "alice-laptop", "desktop").await;
    let mut web = Client::join(relay.addr(), "alice-laptop", "web").await;
    assert!(
        matches!(decode(&web.next_named("history").await), ServerMessage::History(h) if h.samples.is_empty())
    );
    web.expect_presence("online", 1).await;

    // Unknown fields and odd spacing survive: the relay forwards the original bytes.
    let cpu = r#"{"event":"cpu", "value":23.5,"cores":[10,37],"memory":{"used":1,"total":2},"ts":1,"gpu":{"x":[1]}}"#;
    desktop.send(cpu).await;
    assert_eq!(web.next_raw("cpu").await, cpu);

    let beep = r#"{"event":"beep","id":"b-1","volume":0.5}"#;
    web.send(beep).await;
    assert_eq!(desktop.next_raw("beep").await, beep);

    let result = r#"{"event":"beep_result","id":"b-1","ok":true}"#;
    desktop.send(result).await;
    // The command's own `command` events come too (requested, delivered, done); the answer is
    // still the desktop's bytes.
    assert_eq!(web.next_raw("beep_result").await, result);
}

#[actix_web::test]
async fn the_2018_prototypes_messages_work_unchanged() {
    let relay = start_relay(test_config());
    // Exactly what the Python prototype's json.dumps produced.
    let mut desktop = Client::connect(relay.addr()).await;
    desktop
        .send(r#"{"event": "authentication", "client_id": "1", "client_mode": "desktop"}"#)
        .await;
    assert_eq!(desktop.next_event().await["event"], "welcome");
    let mut web = Client::connect(relay.addr()).await;
    web.send(r#"{"event": "authentication", "client_id": "1", "client_mode": "web"}"#)
        .await;
    assert_eq!(web.next_event().await["event"], "welcome");
    web.expect_presence("online", 1).await;

    desktop.send(r#"{"event": "cpu", "value": 12.3}"#).await;
    assert_eq!(web.next_named("cpu").await["value"], 12.3);
    web.send(r#"{"event": "beep"}"#).await;
    assert_eq!(
        desktop.next_named("beep").await,
        serde_json::json!({"event": "beep"})
    );
}

#[actix_web::test]
async fn cpu_fans_out_to_every_viewer_and_only_to_its_own_id() {
    let relay = start_relay(test_config());
    let mut desktop = Client::join(relay.addr(), "box", "desktop").await;
    let mut viewers = Vec::new();
    for n in 1..=3 {
        let mut viewer = Client::join(relay.addr(), "box", "web").await;
        viewer.expect_presence("online", n).await;
        viewers.push(viewer);
    }
    let mut stranger = Client::join(relay.addr(), "other-box", "web").await;
    stranger.expect_presence("offline", 1).await;

    desktop.send(r#"{"event":"cpu","value":42}"#).await;
    for viewer in &mut viewers {
        assert_eq!(viewer.next_named("cpu").await["value"], 42);
    }
    stranger
        .expect_quiet(std::time::Duration::from_millis(300))
        .await;
}

#[actix_web::test]
async fn presence_follows_joins_and_leaves_on_both_sides() {
    let relay = start_relay(test_config());
    let mut web = Client::join(relay.addr(), "p", "web").await;
    let offline = web.expect_presence("offline", 1).await;
    assert_eq!(offline["client_id"], "p");

    let mut desktop = Client::join(relay.addr(), "p", "desktop").await;
    let online = web.expect_presence("online", 1).await;
    assert!(online["since"].as_u64().unwrap() >= offline["since"].as_u64().unwrap());
    desktop.expect_presence("online", 1).await;

    let second = Client::join(relay.addr(), "p", "web").await;
    web.expect_presence("online", 2).await;
    desktop.expect_presence("online", 2).await;
    drop(second);
    web.expect_presence("online", 1).await;
    desktop.expect_presence("online", 1).await;

    drop(desktop);
    web.expect_presence("offline", 1).await;
}

#[actix_web::test]
async fn a_new_viewer_gets_the_recent_history_at_once() {
    let relay = start_relay(Config {
        history_len: 3,
        ..test_config()
    });
    let mut desktop = Client::join(relay.addr(), "h", "desktop").await;
    let mut first = Client::join(relay.addr(), "h", "web").await;
    for v in 1..=5 {
        desktop
            .send(&format!(r#"{{"event":"cpu","value":{v}}}"#))
            .await;
    }
    // Once the first viewer saw the last sample, the relay has stored it.
    while first.next_named("cpu").await["value"] != 5 {}

    let mut late = Client::join(relay.addr(), "h", "web").await;
    let history = late.next_named("history").await;
    let ServerMessage::History(history) = decode(&history) else {
        unreachable!()
    };
    let values: Vec<f64> = history.samples.iter().map(|s| s.value).collect();
    assert_eq!(values, [3.0, 4.0, 5.0]);
}

#[actix_web::test]
async fn a_command_for_an_offline_desktop_gets_peer_offline() {
    let relay = start_relay(test_config());
    let mut web = Client::join(relay.addr(), "nobody-home", "web").await;
    web.send(r#"{"event":"beep","id":"x"}"#).await;
    let error = web.expect_error(ErrorCode::PeerOffline).await;
    assert!(error["message"].as_str().unwrap().contains("beep"));

    // And once the desktop is back, the same viewer's command goes through.
    let mut desktop = Client::join(relay.addr(), "nobody-home", "desktop").await;
    web.expect_presence("online", 1).await;
    web.send(r#"{"event":"beep","id":"y"}"#).await;
    assert_eq!(desktop.next_named("beep").await["id"], "y");
}

#[actix_web::test]
async fn viewers_beyond_the_limit_are_refused_with_1013() {
    let relay = start_relay(Config {
        max_viewers_per_id: 2,
        ..test_config()
    });
    let _a = Client::join(relay.addr(), "busy", "web").await;
    let _b = Client::join(relay.addr(), "busy", "web").await;
    let mut c = Client::connect(relay.addr()).await;
    c.send(r#"{"event":"authentication","client_id":"busy","client_mode":"web"}"#)
        .await;
    c.expect_error(ErrorCode::TooManyViewers).await;
    assert_eq!(c.expect_close().await, Some(awc::ws::CloseCode::Again));
    // Another id is not affected.
    let _d = Client::join(relay.addr(), "quiet", "web").await;
    let _ = WAIT;
}
