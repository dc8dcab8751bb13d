//! Connection lifecycle through a real relay: replacing a desktop, heartbeats, the auth timeout
//! and graceful shutdown.

use std::time::Duration;

use awc::ws::CloseCode;
use deskbridge_protocol::ErrorCode;
use deskbridge_relay::Config;
use deskbridge_testkit::{start_relay, test_config, Client, Received};

#[actix_web::test]
async fn a_new_desktop_replaces_the_old_one_and_viewers_stay_online() {
    let relay = start_relay(test_config());
    let mut web = Client::join(relay.addr(), "same", "web").await;
    let mut old = Client::join(relay.addr(), "same", "desktop").await;
    web.expect_presence("online", 1).await;

    let mut new = Client::join(relay.addr(), "same", "desktop").await;
    old.expect_error(ErrorCode::Replaced).await;
    assert_eq!(old.expect_close().await, Some(CloseCode::Other(4001)));

    new.send(r#"{"event":"cpu","value":7}"#).await;
    assert_eq!(web.next_named("cpu").await["value"], 7);
    // The old desktop leaving must not mark the id offline.
    web.expect_quiet(Duration::from_millis(300)).await;
    web.send(r#"{"event":"beep","id":"to-new"}"#).await;
    assert_eq!(new.next_named("beep").await["id"], "to-new");
}

#[actix_web::test]
async fn a_silent_client_is_dropped_after_the_timeout() {
    let relay = start_relay(Config {
        heartbeat_interval: Duration::from_millis(100),
        client_timeout: Duration::from_millis(500),
        ..test_config()
    });
    let mut web = Client::join(relay.addr(), "hb", "web").await;
    let silent = Client::join(relay.addr(), "hb", "desktop").await;
    web.expect_presence("online", 1).await;
    // `silent` never reads, so never answers a ping; `web` keeps reading and answering.
    web.expect_presence("offline", 1).await;
    drop(silent);
    // The live viewer outlived several timeouts.
    web.expect_quiet(Duration::from_millis(1200)).await;
    let mut again = Client::join(relay.addr(), "hb", "desktop").await;
    web.expect_presence("online", 1).await;
    again.send(r#"{"event":"cpu","value":1}"#).await;
    assert_eq!(web.next_named("cpu").await["value"], 1);
}

#[actix_web::test]
async fn a_connection_that_never_authenticates_is_closed() {
    let relay = start_relay(Config {
        auth_timeout: Duration::from_millis(300),
        ..test_config()
    });
    let mut lurker = Client::connect(relay.addr()).await;
    lurker.expect_error(ErrorCode::AuthTimeout).await;
    assert_eq!(lurker.expect_close().await, Some(CloseCode::Policy));
}

#[actix_web::test]
async fn shutdown_closes_every_session_with_going_away() {
    let relay = start_relay(test_config());
    let mut desktop = Client::join(relay.addr(), "s", "desktop").await;
    let mut web = Client::join(relay.addr(), "s", "web").await;
    let mut unauthenticated = Client::connect(relay.addr()).await;
    let stopper = std::thread::spawn(move || relay.stop());
    for client in [&mut desktop, &mut web, &mut unauthenticated] {
        client.expect_error(ErrorCode::ShuttingDown).await;
        assert_eq!(client.expect_close().await, Some(CloseCode::Away));
    }
    stopper.join().unwrap();
    assert!(matches!(
        desktop.recv_within(Duration::from_millis(500)).await,
        None | Some(Received::Closed(_))
    ));
}
