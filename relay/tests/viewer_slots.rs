//! Hostile viewers against a real relay: one token grabbing every viewer slot of an id, and a
//! token joining and leaving in a loop to flood everyone of the id with `presence`.

mod support;

use std::time::Duration;

use awc::ws::{CloseCode, Message};
use deskbridge_protocol::{ClientId, ClientMode, ErrorCode};
use deskbridge_relay::auth::keys::{Key, KeySet};
use deskbridge_relay::auth::token;
use deskbridge_relay::Config;
use support::{http_get, start_relay, test_config, Client};

fn keys() -> KeySet {
    KeySet::from_keys(vec![Key {
        kid: "k1".into(),
        secret: vec![7; 32],
    }])
    .unwrap()
}

fn mint(keys: &KeySet, id: &str, mode: ClientMode) -> String {
    token::mint(
        keys,
        &ClientId::new(id).unwrap(),
        mode,
        Duration::from_secs(600),
    )
}

/// Connects and authenticates with `token`, without reading the answer.
async fn connect_with(addr: std::net::SocketAddr, id: &str, mode: &str, token: &str) -> Client {
    let mut client = Client::connect(addr).await;
    client
        .send(&format!(
            r#"{{"event":"authentication","client_id":"{id}","client_mode":"{mode}","token":"{token}"}}"#
        ))
        .await;
    client
}

async fn join_with(addr: std::net::SocketAddr, id: &str, mode: &str, token: &str) -> Client {
    let mut client = connect_with(addr, id, mode, token).await;
    assert_eq!(client.next_event().await["event"], "welcome");
    client
}

#[actix_web::test]
async fn one_token_gets_at_most_its_share_of_the_viewer_slots() {
    let k = keys();
    let relay = start_relay(Config {
        allow_anonymous: false,
        keys: Some(k.clone()),
        max_viewers_per_id: 32,
        max_viewers_per_token: 4,
        ..test_config()
    });
    let addr = relay.addr();
    let _desktop = join_with(
        addr,
        "slots",
        "desktop",
        &mint(&k, "slots", ClientMode::Desktop),
    )
    .await;

    let greedy = mint(&k, "slots", ClientMode::Web);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(join_with(addr, "slots", "web", &greedy).await);
    }
    let mut fifth = connect_with(addr, "slots", "web", &greedy).await;
    let error = fifth.expect_error(ErrorCode::TooManyViewers).await;
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("per-token"), "{message}");
    assert_eq!(fifth.expect_close().await, Some(CloseCode::Again));

    // Everyone else still gets in.
    let mut other = join_with(addr, "slots", "web", &mint(&k, "slots", ClientMode::Web)).await;
    other.expect_presence("online", 5).await;

    let (_, metrics, _) = http_get(addr, "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"deskbridge_limited_total{limit="viewers_per_token"} 1"#),
        "{metrics}"
    );

    // A slot the token gives back is the token's again.
    let mut leaving = held.pop().unwrap();
    leaving.send_message(Message::Close(None)).await;
    other.expect_presence("online", 4).await;
    held.push(join_with(addr, "slots", "web", &greedy).await);
}

#[actix_web::test]
async fn anonymous_viewers_are_limited_per_id_only() {
    let relay = start_relay(Config {
        max_viewers_per_id: 8,
        max_viewers_per_token: 2,
        ..test_config()
    });
    let mut viewers = Vec::new();
    for _ in 0..3 {
        viewers.push(Client::join(relay.addr(), "anon", "web").await);
    }
    viewers[2].expect_presence("offline", 3).await;
}
