//! Hostile viewers against a real relay: one token grabbing every viewer slot of an id, and a
//! token joining and leaving in a loop to flood everyone of the id with `presence`.

use std::time::Duration;

use awc::ws::{CloseCode, Message};
use deskbridge_protocol::{ClientMode, ErrorCode};
use deskbridge_testkit::tokens::mint;
use deskbridge_testkit::{http_get, start_relay, test_config, Client, Config, Received};
use serde_json::Value;

/// The coalescing window of `presence` the relay promises (docs/architecture.md).
const PRESENCE_WINDOW: Duration = Duration::from_millis(250);

fn keys() -> deskbridge_auth::KeySet {
    deskbridge_testkit::tokens::keys("k1", 7)
}

async fn join_with(addr: std::net::SocketAddr, id: &str, mode: &str, token: &str) -> Client {
    Client::join_with_token(addr, id, mode, Some(token)).await
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
    let mut fifth = Client::connect(addr).await;
    fifth.authenticate("slots", "web", Some(&greedy)).await;
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
    // The refused viewer is not counted as one; the five seated are, as soon as a peer sees them.
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"deskbridge_sessions{mode="web"} 5"#),
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

/// Reads presence frames until none came for `quiet`, returning them all.
async fn drain_presence(client: &mut Client, quiet: Duration) -> Vec<Value> {
    let mut seen = Vec::new();
    while let Some(received) = client.recv_within(quiet).await {
        match received {
            Received::Text(text) => {
                let event: Value = serde_json::from_str(&text).unwrap();
                if event["event"] == "presence" {
                    seen.push(event);
                }
            }
            Received::Closed(reason) => panic!("closed: {reason:?}"),
        }
    }
    seen
}

#[actix_web::test]
async fn presence_churn_is_coalesced_and_ends_on_the_true_state() {
    let k = keys();
    let relay = start_relay(Config {
        allow_anonymous: false,
        keys: Some(k.clone()),
        ..test_config()
    });
    let addr = relay.addr();
    let mut desktop = join_with(
        addr,
        "churn",
        "desktop",
        &mint(&k, "churn", ClientMode::Desktop),
    )
    .await;
    let mut legit = join_with(addr, "churn", "web", &mint(&k, "churn", ClientMode::Web)).await;
    legit.expect_presence("online", 1).await;
    desktop.expect_presence("online", 1).await;
    // Whatever the joins above still have in flight is not part of the churn.
    drain_presence(&mut legit, PRESENCE_WINDOW * 3).await;
    drain_presence(&mut desktop, PRESENCE_WINDOW * 3).await;

    let churner = mint(&k, "churn", ClientMode::Web);
    let started = tokio::time::Instant::now();
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..20 {
        pace.tick().await;
        let mut client = join_with(addr, "churn", "web", &churner).await;
        client.send_message(Message::Close(None)).await;
        client.expect_close().await;
    }
    let churn = started.elapsed();

    // The last change is followed by at most one window of silence before its frame.
    let bound = (churn.as_millis() / PRESENCE_WINDOW.as_millis()) as usize + 3;
    for (who, client) in [("viewer", &mut legit), ("desktop", &mut desktop)] {
        let frames = drain_presence(client, PRESENCE_WINDOW * 4).await;
        assert!(
            frames.len() <= bound,
            "{who}: {} presence frames for 40 changes in {churn:?} (at most {bound} expected)",
            frames.len()
        );
        let last = frames
            .last()
            .unwrap_or_else(|| panic!("{who}: no presence"));
        assert_eq!(last["viewers"], 1, "{who}: last presence {last}");
        assert_eq!(last["desktop"], "online", "{who}: last presence {last}");
    }
}
