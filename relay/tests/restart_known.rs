//! What a relay knows of its desktops outlives a restart (`--data-dir`'s `known.json`): the fleet
//! still lists every desktop, one that was connected reads `lost` (the relay stopped under it,
//! never `quit`), one that had gone to sleep still reads `sleep`, and an id added from the page
//! still waits for its first connection.

use std::time::Duration;

use deskbridge_auth::{token, KeySet, Patterns, Role};
use deskbridge_protocol::ClientMode;
use deskbridge_testkit::tokens::{keys, mint, secured};
use deskbridge_testkit::{start_relay, test_config, Client, Config};
use serde_json::Value;

fn operator(keys: &KeySet) -> String {
    token::mint_fleet(
        keys,
        &Patterns::parse("*").unwrap(),
        Role::Operator,
        Duration::from_secs(3600),
    )
}

async fn api(addr: std::net::SocketAddr, token: &str, post: Option<Value>) -> Value {
    let client = awc::Client::new();
    let url = format!("http://{addr}/api/desktops");
    let mut response = match post {
        Some(body) => client.post(url).bearer_auth(token).send_json(&body).await,
        None => client.get(url).bearer_auth(token).send().await,
    }
    .expect("http request");
    let body = response.body().await.expect("body");
    serde_json::from_slice(&body).expect("a JSON body")
}

#[actix_web::test]
async fn a_restarted_relay_still_knows_its_desktops_and_says_lost_for_the_connected_one() {
    let keys = keys("k1", 1);
    let dir = tempfile::tempdir().unwrap();
    let config = || Config {
        data_dir: Some(dir.path().to_owned()),
        ..secured(test_config(), &keys)
    };
    let desktop = |id: &'static str| (id, mint(&keys, id, ClientMode::Desktop));

    let relay = start_relay(config());
    let addr = relay.addr();
    let (id, t) = desktop("box-1");
    let _up = Client::join_with_token(addr, id, "desktop", Some(&t)).await;
    let (id, t) = desktop("nap-1");
    let mut napper = Client::join_with_token(addr, id, "desktop", Some(&t)).await;
    napper.go_away("sleep").await;
    let added = api(
        addr,
        &operator(&keys),
        Some(serde_json::json!({"id": "new-1"})),
    )
    .await;
    assert_eq!(added["id"], "new-1", "{added}");
    relay.stop();

    let relay = start_relay(config());
    let addr = relay.addr();
    let listed = api(addr, &operator(&keys), None).await;
    let list = listed["desktops"].as_array().expect("a list");
    let find = |id: &str| {
        list.iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("{id} forgotten: {listed}"))
            .clone()
    };
    assert_eq!(find("box-1")["reason"], "lost", "{listed}");
    assert_eq!(find("nap-1")["reason"], "sleep", "{listed}");
    assert_eq!(find("new-1")["waiting"], true, "{listed}");

    // A viewer reads the same on the socket.
    let web = mint(&keys, "box-1", ClientMode::Web);
    let mut viewer = Client::join_with_token(addr, "box-1", "web", Some(&web)).await;
    let presence = viewer.next_named("presence").await;
    assert_eq!(
        (presence["desktop"].as_str(), presence["reason"].as_str()),
        (Some("offline"), Some("lost")),
        "{presence}"
    );
}
