//! Sign-in across a cluster through a real NATS server: a session made on one node opens every
//! node, a share link made on one node opens another and a node that starts later, and revoking
//! the link or signing out on one node closes the connections on the others within 2 s.

use std::time::Duration;

use awc::http::Method;
use deskbridge_auth::{KeySet, Role};
use deskbridge_protocol::ClientMode;
use deskbridge_relay::Config;
use deskbridge_testkit::cluster::{cluster_config, start_node, Nats};
use deskbridge_testkit::signin::{post, request, signin, users_file, Auth, Person};
use deskbridge_testkit::tokens::{keys, mint};
use deskbridge_testkit::{Client, RelayHandle, WAIT};
use serde_json::json;
use tokio::time::Instant;

const PEOPLE: [Person<'static>; 1] = [("olive", Role::Operator, "office-*", "olive-pw")];

fn node(nats: &Nats, name: &str, keys: &KeySet, users: &std::path::Path) -> Config {
    Config {
        allow_anonymous: false,
        keys: Some(keys.clone()),
        users_file: Some(users.to_owned()),
        ..cluster_config(nats, name)
    }
}

/// A web connection for `id` with `token` on `relay`, retried until the node lets it in (it
/// learns of a link made elsewhere moments after it was made).
async fn web_when_known(relay: &RelayHandle, id: &str, token: &str) -> Client {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut client = Client::connect(relay.addr()).await;
        client.authenticate(id, "web", Some(token)).await;
        let answer = client.next_event().await;
        if answer["event"] == "welcome" {
            return client;
        }
        assert!(Instant::now() < deadline, "{id} never let in: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn sessions_and_share_links_hold_and_end_on_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys("k1", 6);
    let users = users_file(dir.path(), &PEOPLE);
    let nats = Nats::start();
    let a = start_node(node(&nats, "node-a", &keys, &users)).await;
    let b = start_node(node(&nats, "node-b", &keys, &users)).await;
    let _desktop = Client::join_with_token(
        b.addr(),
        "office-1",
        "desktop",
        Some(&mint(&keys, "office-1", ClientMode::Desktop)),
    )
    .await;

    // Signed in through A, the page's fleet socket on B is let in.
    let cookie = signin(a.addr(), "olive", "olive-pw").await;
    let header = format!("deskbridge_session={cookie}");
    let mut fleet = Client::connect_with_headers(b.addr(), &[("cookie", &header)]).await;
    fleet
        .send(r#"{"event":"authentication","client_mode":"fleet"}"#)
        .await;
    assert_eq!(fleet.next_named("welcome").await["by"], "olive");

    // A link made on A opens on B…
    let made = post(
        a.addr(),
        "/api/shares",
        Auth::Cookie(&cookie),
        &json!({"desktop": "office-1", "ttl": "1h"}),
    )
    .await;
    assert_eq!(made.status, 201, "{made:?}");
    let link = made.body["token"].as_str().unwrap().to_owned();
    let id = made.body["id"].as_str().unwrap().to_owned();
    let mut on_b = web_when_known(&b, "office-1", &link).await;
    // …and on a node that starts later (it asks the others for the list).
    let c = start_node(node(&nats, "node-c", &keys, &users)).await;
    let mut on_c = web_when_known(&c, "office-1", &link).await;

    // Revoked on A: its sessions on B and C close within 2 s.
    let revoked = request(
        a.addr(),
        Method::DELETE,
        &format!("/api/shares/{id}"),
        Auth::Cookie(&cookie),
        None,
        &[],
    )
    .await;
    assert_eq!(revoked.status, 204, "{revoked:?}");
    on_b.expect_close_within(Duration::from_secs(2)).await;
    on_c.expect_close_within(Duration::from_secs(2)).await;

    // Signed out on A: the fleet socket on B closes within 2 s.
    let out = post(a.addr(), "/api/logout", Auth::Cookie(&cookie), &json!({})).await;
    assert_eq!(out.status, 204);
    fleet.expect_close_within(Duration::from_secs(2)).await;
}
