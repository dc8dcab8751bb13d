//! Commands everyone can follow, through a real relay: every viewer sees each command's life
//! (`requested`, `delivered`, `done`/`failed`, `expired`) with who sent it; a command may wait
//! for an offline desktop; ids name one command; the limits; what a joining viewer sees; the
//! metrics.

use std::time::Duration;

use deskbridge_auth::KeySet;
use deskbridge_protocol::{ClientMode, ErrorCode, ServerMessage};
use deskbridge_relay::Config;
use deskbridge_testkit::cluster::metric;
use deskbridge_testkit::tokens::{keys, mint, secured};
use deskbridge_testkit::{start_relay, test_config, Client};
use serde_json::Value;

const ID: &str = "office-pc";

fn config(k: &KeySet) -> Config {
    secured(test_config(), k)
}

/// A viewer with a token of its own, so the relay names it `token <first 8 of its jti>`.
async fn viewer(relay: std::net::SocketAddr, k: &KeySet) -> (Client, String) {
    let mut client = Client::connect(relay).await;
    client
        .authenticate(ID, "web", Some(&mint(k, ID, ClientMode::Web)))
        .await;
    let welcome = client.next_named("welcome").await;
    let by = welcome["by"].as_str().expect("welcome says by").to_owned();
    (client, by)
}

async fn desktop(relay: std::net::SocketAddr, k: &KeySet) -> Client {
    let mut client = Client::connect(relay).await;
    client
        .authenticate(ID, "desktop", Some(&mint(k, ID, ClientMode::Desktop)))
        .await;
    client.next_named("welcome").await;
    client
}

/// The next `command` event for command `id` (skipping everything else).
async fn step(client: &mut Client, id: &str) -> Value {
    loop {
        let event = client.next_named("command").await;
        if event["id"] == id {
            return event;
        }
    }
}

/// The states a client sees for command `id` until `last`, and that last event.
async fn until(client: &mut Client, id: &str, last: &str) -> (Vec<String>, Value) {
    let mut seen = Vec::new();
    loop {
        let event = step(client, id).await;
        let state = event["state"].as_str().unwrap_or_default().to_owned();
        seen.push(state.clone());
        if state == last {
            return (seen, event);
        }
    }
}

async fn states_until(client: &mut Client, id: &str, last: &str) -> Vec<String> {
    until(client, id, last).await.0
}

#[actix_web::test]
async fn two_viewers_see_each_others_commands_through_every_state() {
    let k = keys("k1", 1);
    let relay = start_relay(config(&k));
    let mut desk = desktop(relay.addr(), &k).await;
    let (mut alice, alice_by) = viewer(relay.addr(), &k).await;
    let (mut bob, bob_by) = viewer(relay.addr(), &k).await;
    assert!(alice_by.starts_with("token ") && alice_by != bob_by);

    alice.send(r#"{"event":"beep","id":"a-1"}"#).await;
    for watcher in [&mut alice, &mut bob] {
        let requested = step(watcher, "a-1").await;
        assert_eq!(requested["state"], "requested", "{requested}");
        assert_eq!(requested["name"], "beep");
        assert_eq!(requested["by"], alice_by.as_str());
        assert_eq!(requested["client_id"], ID);
        assert!(requested["at"].as_u64().is_some_and(|at| at > 0));
        assert!(requested.get("error").is_none());
        assert_eq!(step(watcher, "a-1").await["state"], "delivered");
    }
    assert_eq!(
        desk.next_raw("beep").await,
        r#"{"event":"beep","id":"a-1"}"#,
        "the desktop gets the viewer's bytes"
    );
    desk.send(r#"{"event":"beep_result","id":"a-1","ok":true}"#)
        .await;
    for watcher in [&mut alice, &mut bob] {
        // v1 clients keep getting the answer itself, then the command's end follows.
        assert_eq!(watcher.next_named("beep_result").await["ok"], true);
        let done = step(watcher, "a-1").await;
        assert_eq!(done["state"], "done", "{done}");
        assert_eq!(done["by"], alice_by.as_str());
    }

    // Bob sends one without an id, the 2018 way: the relay names it, the desktop's answer
    // (without an id) ends it, and the failure's reason reaches everyone.
    bob.send(r#"{"event":"beep"}"#).await;
    let named = bob.next_named("command").await;
    assert_eq!(named["state"], "requested");
    assert_eq!(named["by"], bob_by.as_str());
    let bob_id = named["id"].as_str().unwrap().to_owned();
    assert_eq!(desk.next_raw("beep").await, r#"{"event":"beep"}"#);
    desk.send(r#"{"event":"beep_result","ok":false,"error":"no audio output device"}"#)
        .await;
    assert_eq!(
        states_until(&mut alice, &bob_id, "failed").await,
        ["requested", "delivered", "failed"]
    );
    let (_, failed) = until(&mut bob, &bob_id, "failed").await;
    assert_eq!(failed["error"], "no audio output device");

    // A viewer who joins later sees both, as they are now, after its history.
    let mut carol = Client::connect(relay.addr()).await;
    carol
        .authenticate(ID, "web", Some(&mint(&k, ID, ClientMode::Web)))
        .await;
    let mut order = Vec::new();
    while order.len() < 4 {
        let e = carol.next_event().await;
        order.push(match e["event"].as_str() {
            Some("command") => format!("command {} {}", e["id"].as_str().unwrap(), e["state"]),
            Some(other) => other.to_owned(),
            None => continue,
        });
    }
    assert_eq!(
        order,
        [
            "welcome".to_owned(),
            "history".to_owned(),
            "command a-1 \"done\"".to_owned(),
            format!("command {bob_id} \"failed\""),
        ]
    );
    let metrics = |series: &'static str| metric(relay.addr(), series);
    assert_eq!(
        metrics(r#"deskbridge_commands_total{name="beep",state="done"}"#).await,
        1.0
    );
    assert_eq!(
        metrics(r#"deskbridge_commands_total{name="beep",state="failed"}"#).await,
        1.0
    );
    relay.stop();
}

#[actix_web::test]
async fn a_waiting_command_is_delivered_when_the_desktop_comes_and_expires_when_it_does_not() {
    let k = keys("k1", 1);
    let relay = start_relay(config(&k));
    let (mut alice, _) = viewer(relay.addr(), &k).await;

    // Without wait_ms: now or never, as before.
    alice.send(r#"{"event":"beep","id":"now"}"#).await;
    assert_eq!(
        states_until(&mut alice, "now", "failed").await,
        ["requested", "failed"]
    );
    alice.expect_error(ErrorCode::PeerOffline).await;

    alice
        .send(r#"{"event":"beep","id":"soon","wait_ms":300}"#)
        .await;
    alice
        .send(r#"{"event":"beep","id":"later","wait_ms":60000}"#)
        .await;
    assert_eq!(step(&mut alice, "soon").await["state"], "requested");
    let expired = step(&mut alice, "soon").await;
    assert_eq!(expired["state"], "expired", "{expired}");
    assert!(expired["error"]
        .as_str()
        .is_some_and(|e| e.contains("did not come back")));
    assert_eq!(
        metric(relay.addr(), "deskbridge_commands_waiting").await,
        1.0,
        "`later` still waits"
    );

    let mut desk = desktop(relay.addr(), &k).await;
    assert_eq!(
        desk.next_raw("beep").await,
        r#"{"event":"beep","id":"later","wait_ms":60000}"#,
        "delivered on arrival, the expired one not"
    );
    let delivered = loop {
        let e = step(&mut alice, "later").await;
        if e["state"] != "requested" {
            break e;
        }
    };
    assert_eq!(delivered["state"], "delivered");
    assert_eq!(
        metric(relay.addr(), "deskbridge_commands_waiting").await,
        0.0
    );
    desk.send(r#"{"event":"beep_result","id":"later","ok":true}"#)
        .await;
    assert_eq!(step(&mut alice, "later").await["state"], "done");
    assert_eq!(
        metric(
            relay.addr(),
            r#"deskbridge_commands_total{name="beep",state="expired"}"#
        )
        .await,
        1.0
    );
    let more = desk.collect_for(Duration::from_millis(300)).await;
    assert!(
        !more.iter().any(|m| matches!(m, ServerMessage::Beep(_))),
        "{more:?}"
    );
    relay.stop();
}

#[actix_web::test]
async fn ids_name_one_command_waits_are_bounded_and_answers_count_once() {
    let k = keys("k1", 1);
    let relay = start_relay(config(&k));
    let (mut alice, _) = viewer(relay.addr(), &k).await;
    let (mut bob, _) = viewer(relay.addr(), &k).await;

    alice
        .send(r#"{"event":"beep","id":"x","wait_ms":600001}"#)
        .await;
    let bad = alice.expect_error(ErrorCode::BadMessage).await;
    assert!(
        bad["message"].as_str().unwrap().contains("wait_ms"),
        "{bad}"
    );

    for i in 0..16 {
        alice
            .send(&format!(
                r#"{{"event":"beep","id":"w{i}","wait_ms":60000}}"#
            ))
            .await;
        assert_eq!(
            step(&mut alice, &format!("w{i}")).await["state"],
            "requested"
        );
    }
    alice
        .send(r#"{"event":"beep","id":"w16","wait_ms":60000}"#)
        .await;
    alice.expect_error(ErrorCode::QueueFull).await;
    assert_eq!(
        metric(
            relay.addr(),
            r#"deskbridge_errors_total{code="queue_full"}"#
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(relay.addr(), "deskbridge_commands_waiting").await,
        16.0
    );

    // Another sender may not take an id; the same sender repeating one changes nothing.
    bob.send(r#"{"event":"beep","id":"w3","wait_ms":60000}"#)
        .await;
    bob.expect_error(ErrorCode::IdTaken).await;
    alice
        .send(r#"{"event":"beep","id":"w3","wait_ms":60000}"#)
        .await;
    assert_eq!(step(&mut alice, "w3").await["state"], "requested");

    let mut desk = desktop(relay.addr(), &k).await;
    let mut got = Vec::new();
    for _ in 0..16 {
        let beep = desk.next_named("beep").await;
        got.push(beep["id"].as_str().unwrap().to_owned());
    }
    let expected: Vec<String> = (0..16).map(|i| format!("w{i}")).collect();
    assert_eq!(got, expected, "each once, oldest first");
    let more = desk.collect_for(Duration::from_millis(300)).await;
    assert!(
        !more.iter().any(|m| matches!(m, ServerMessage::Beep(_))),
        "{more:?}"
    );

    // An answer the desktop sends twice (an agent unsure the first arrived) is passed on once.
    desk.send(r#"{"event":"beep_result","id":"w0","ok":true}"#)
        .await;
    desk.send(r#"{"event":"beep_result","id":"w0","ok":true}"#)
        .await;
    desk.send(r#"{"event":"beep_result","id":"w1","ok":true}"#)
        .await;
    let mut results = Vec::new();
    while results.len() < 2 {
        let r = bob.next_named("beep_result").await;
        results.push(r["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(results, ["w0", "w1"]);
    relay.stop();
}

#[actix_web::test]
async fn notify_lives_the_same_life_and_a_bad_text_never_reaches_the_desktop() {
    let relay = start_relay(test_config());
    let mut desk = Client::join(relay.addr(), ID, "desktop").await;
    let mut web = Client::join(relay.addr(), ID, "web").await;
    web.send(r#"{"event":"notify","id":"n1","text":"Lunch"}"#)
        .await;
    let requested = step(&mut web, "n1").await;
    assert_eq!(requested["name"], "notify");
    assert_eq!(requested["by"], "anonymous");
    assert_eq!(
        desk.next_raw("notify").await,
        r#"{"event":"notify","id":"n1","text":"Lunch"}"#
    );
    desk.send(
        r#"{"event":"notify_result","id":"n1","ok":false,"error":"no notification service"}"#,
    )
    .await;
    assert_eq!(web.next_named("notify_result").await["ok"], false);
    let failed = states_until(&mut web, "n1", "failed").await;
    assert_eq!(failed.last().map(String::as_str), Some("failed"));
    web.send(r#"{"event":"notify","text":"line\nbreak"}"#).await;
    web.expect_error(ErrorCode::BadMessage).await;
    let quiet = desk.collect_for(Duration::from_millis(300)).await;
    assert!(
        !quiet.iter().any(|m| matches!(m, ServerMessage::Notify(_))),
        "{quiet:?}"
    );
    relay.stop();
}

#[actix_web::test]
async fn a_waiting_command_waits_through_a_sleep() {
    let k = keys("k1", 1);
    let relay = start_relay(config(&k));
    let (mut alice, _) = viewer(relay.addr(), &k).await;
    let mut desk = desktop(relay.addr(), &k).await;
    desk.go_away("sleep").await;
    loop {
        let presence = alice.next_named("presence").await;
        if presence["reason"] == "sleep" {
            break;
        }
    }
    alice
        .send(r#"{"event":"beep","id":"wake-up","wait_ms":60000}"#)
        .await;
    assert_eq!(step(&mut alice, "wake-up").await["state"], "requested");
    let mut desk = desktop(relay.addr(), &k).await;
    assert_eq!(desk.next_named("beep").await["id"], "wake-up");
    assert_eq!(step(&mut alice, "wake-up").await["state"], "delivered");
    relay.stop();
}
