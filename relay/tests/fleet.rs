//! Fleet connections and roles through a real relay: one socket watching every desktop its
//! credential may see (and nothing else), frames forwarded byte for byte, desktops added as they
//! appear; viewers refused commands; users-file edits reaching live connections; `/api/desktops`.

use std::time::Duration;

use deskbridge_auth::{token, Patterns, Role, Users};
use deskbridge_protocol::{ClientMode, ErrorCode};
use deskbridge_testkit::tokens::{keys, mint, secured};
use deskbridge_testkit::{http_get, start_relay, test_config, Client, Config, Received, WAIT};
use serde_json::Value;

const HOUR: Duration = Duration::from_secs(3600);

fn fleet_token(keys: &deskbridge_auth::KeySet, patterns: &str, role: Role) -> String {
    token::mint_fleet(keys, &Patterns::parse(patterns).unwrap(), role, HOUR)
}

/// Connects and authenticates as a fleet with `token`, consuming and returning `welcome`.
async fn fleet(addr: std::net::SocketAddr, token: &str) -> (Client, Value) {
    let mut client = Client::connect(addr).await;
    client
        .send(&format!(
            r#"{{"event":"authentication","client_mode":"fleet","token":"{token}"}}"#
        ))
        .await;
    let welcome = client.next_event().await;
    assert_eq!(welcome["event"], "welcome", "{welcome}");
    assert_eq!(welcome["client_mode"], "fleet");
    assert!(welcome.get("client_id").is_none(), "{welcome}");
    (client, welcome)
}

/// Reads the greeting of `n` desktops (a `history` and a `presence` each), returning their ids.
async fn greeted(client: &mut Client, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < n {
        let event = client.next_event().await;
        match event["event"].as_str() {
            Some("history") => {}
            Some("presence") => ids.push(event["client_id"].as_str().unwrap().to_owned()),
            _ => panic!("unexpected {event} in the greeting"),
        }
    }
    ids.sort();
    ids
}

async fn desktop(addr: std::net::SocketAddr, keys: &deskbridge_auth::KeySet, id: &str) -> Client {
    Client::join_with_token(
        addr,
        id,
        "desktop",
        Some(&mint(keys, id, ClientMode::Desktop)),
    )
    .await
}

#[actix_web::test]
async fn a_fleet_watches_exactly_its_desktops_through_one_socket() {
    let keys = keys("k1", 1);
    let relay = start_relay(secured(test_config(), &keys));
    let addr = relay.addr();
    let mut alice1 = desktop(addr, &keys, "alice-1").await;
    let _alice2 = desktop(addr, &keys, "alice-2").await;
    let mut bob = desktop(addr, &keys, "bob-1").await;

    let (mut grid, welcome) = fleet(addr, &fleet_token(&keys, "alice-*", Role::Viewer)).await;
    assert_eq!(welcome["role"], "viewer");
    assert_eq!(greeted(&mut grid, 2).await, ["alice-1", "alice-2"]);

    // A desktop's frame arrives wrapped, its bytes untouched; another person's never does.
    bob.send(r#"{"event":"cpu","value":99}"#).await;
    let cpu = r#"{"event":"cpu", "value":23.5,"ts":1,"extra":[1]}"#;
    alice1.send(cpu).await;
    let forwarded = grid.next_raw("forward").await;
    assert_eq!(
        forwarded,
        format!(r#"{{"event":"forward","client_id":"alice-1","message":{cpu}}}"#)
    );

    // A desktop that appears later joins the grid: greeting first, then its samples.
    let mut alice3 = desktop(addr, &keys, "alice-3").await;
    assert_eq!(greeted(&mut grid, 1).await, ["alice-3"]);
    alice3.send(r#"{"event":"cpu","value":7}"#).await;
    let event = grid.next_named("forward").await;
    assert_eq!(event["client_id"], "alice-3");
    assert_eq!(event["message"]["value"], 7);

    // Watchers are not viewers: presence does not count them.
    let mut viewer = Client::join_with_token(
        addr,
        "alice-1",
        "web",
        Some(&mint(&keys, "alice-1", ClientMode::Web)),
    )
    .await;
    let presence = viewer.next_named("presence").await;
    assert_eq!(presence["viewers"], 1, "{presence}");

    // A fleet connection only watches.
    grid.send(r#"{"event":"beep"}"#).await;
    grid.expect_error(ErrorCode::NotAllowed).await;
    for event in grid.collect_for(Duration::from_millis(300)).await {
        let text = serde_json::to_string(&event).unwrap();
        assert!(
            !text.contains("bob-1"),
            "saw another person's desktop: {text}"
        );
    }
}

#[actix_web::test]
async fn a_viewer_watches_and_an_operator_acts() {
    let keys = keys("k1", 1);
    let relay = start_relay(secured(test_config(), &keys));
    let addr = relay.addr();
    let mut desk = desktop(addr, &keys, "office-1").await;

    let viewer_token = fleet_token(&keys, "office-*", Role::Viewer);
    let mut viewer = Client::join_with_token(addr, "office-1", "web", Some(&viewer_token)).await;
    viewer.send(r#"{"event":"beep","id":"v1"}"#).await;
    let refusal = viewer.expect_error(ErrorCode::NotAllowed).await;
    assert!(
        refusal["message"].as_str().unwrap().contains("operator"),
        "{refusal}"
    );
    let reached = desk.collect_for(Duration::from_millis(300)).await;
    assert!(
        !reached
            .iter()
            .any(|m| matches!(m, deskbridge_protocol::ServerMessage::Beep(_))),
        "a viewer's beep reached the desktop: {reached:?}"
    );

    let operator_token = fleet_token(&keys, "office-*", Role::Operator);
    let mut operator =
        Client::join_with_token(addr, "office-1", "web", Some(&operator_token)).await;
    operator.send(r#"{"event":"beep","id":"o1"}"#).await;
    assert_eq!(desk.next_named("beep").await["id"], "o1");

    // A credential for other desktops does not open this one.
    let mut stranger = Client::connect(addr).await;
    let other = fleet_token(&keys, "home-*", Role::Operator);
    stranger.authenticate("office-1", "web", Some(&other)).await;
    stranger.expect_error(ErrorCode::Unauthorized).await;
    assert!(stranger.expect_close().await.is_some());
}

/// A users file with one person, `alice`, seeing `desktops` with `role`.
fn write_users(path: &std::path::Path, desktops: &str, role: Role) {
    let mut users = Users::default();
    users
        .add("alice", role, Patterns::parse(desktops).unwrap(), "pw")
        .unwrap();
    users.save(path).unwrap();
}

#[actix_web::test]
async fn users_file_edits_reach_live_connections_within_two_seconds() {
    let keys = keys("k1", 1);
    let dir = tempfile::tempdir().unwrap();
    let users_file = dir.path().join("users.toml");
    write_users(&users_file, "lab-*", Role::Operator);
    let relay = start_relay(Config {
        users_file: Some(users_file.clone()),
        ..secured(test_config(), &keys)
    });
    let addr = relay.addr();
    let mut lab1 = desktop(addr, &keys, "lab-1").await;
    let _lab2 = desktop(addr, &keys, "lab-2").await;
    let (session, _) = token::mint_session(&keys, "alice", HOUR);
    let cookie = format!("deskbridge_session={session}");

    // The page's connections carry the session cookie and no token.
    let mut grid = Client::connect_with_headers(addr, &[("cookie", &cookie)]).await;
    grid.send(r#"{"event":"authentication","client_mode":"fleet"}"#)
        .await;
    let welcome = grid.next_named("welcome").await;
    assert_eq!(
        (welcome["by"].as_str(), welcome["role"].as_str()),
        (Some("alice"), Some("operator"))
    );
    assert_eq!(greeted(&mut grid, 2).await, ["lab-1", "lab-2"]);
    let mut detail = Client::connect_with_headers(addr, &[("cookie", &cookie)]).await;
    detail.authenticate("lab-1", "web", None).await;
    assert_eq!(detail.next_named("welcome").await["role"], "operator");
    detail.send(r#"{"event":"beep","id":"a"}"#).await;
    assert_eq!(lab1.next_named("beep").await["id"], "a");

    // Lowered to viewer on lab-2 only: the grid loses lab-1, the detail view of lab-1 closes.
    write_users(&users_file, "lab-2", Role::Viewer);
    let unwatched = grid.next_named("unwatched").await;
    assert_eq!(unwatched["client_id"], "lab-1");
    let closed = detail.expect_error(ErrorCode::Unauthorized).await;
    assert!(
        closed["message"].as_str().unwrap().contains("no longer"),
        "{closed}"
    );
    lab1.send(r#"{"event":"cpu","value":1}"#).await;

    // Removed: signed out everywhere.
    std::fs::write(&users_file, "").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match grid.recv_until(deadline).await {
            Some(Received::Text(text)) if text.contains("was removed") => break,
            Some(Received::Text(text)) => {
                assert!(!text.contains("\"lab-1\""), "lab-1 after unwatched: {text}")
            }
            other => panic!("no sign-out within 2 s: {other:?}"),
        }
    }
    assert!(grid.expect_close().await.is_some());
    // And the cookie opens nothing any more.
    let mut again = Client::connect_with_headers(addr, &[("cookie", &cookie)]).await;
    again
        .send(r#"{"event":"authentication","client_mode":"fleet"}"#)
        .await;
    again.expect_error(ErrorCode::Unauthorized).await;
}

#[actix_web::test]
async fn a_fleet_without_credentials_is_refused_even_when_anonymous_is_allowed() {
    let relay = start_relay(test_config());
    let mut client = Client::connect(relay.addr()).await;
    client
        .send(r#"{"event":"authentication","client_mode":"fleet"}"#)
        .await;
    client.expect_error(ErrorCode::Unauthorized).await;
}

async fn api_desktops(addr: std::net::SocketAddr, token: Option<&str>) -> (u16, Value) {
    let mut request = awc::Client::new().get(format!("http://{addr}/api/desktops"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await.expect("http request");
    let body = response.body().await.expect("body");
    (
        response.status().as_u16(),
        serde_json::from_slice(&body).expect("a JSON body"),
    )
}

#[actix_web::test]
async fn api_desktops_lists_what_the_caller_may_see() {
    let keys = keys("k1", 1);
    let relay = start_relay(secured(test_config(), &keys));
    let addr = relay.addr();
    let mut a1 = desktop(addr, &keys, "alice-1").await;
    let a2 = desktop(addr, &keys, "alice-2").await;
    let _bob = desktop(addr, &keys, "bob-1").await;
    a1.send(r#"{"event":"cpu","value":42.5}"#).await;
    // Going away with a reason: listed offline, with it.
    let mut a2 = a2;
    a2.go_away("sleep").await;

    let viewer = fleet_token(&keys, "alice-*", Role::Viewer);
    let deadline = std::time::Instant::now() + WAIT;
    let listed = loop {
        let (status, body) = api_desktops(addr, Some(&viewer)).await;
        assert_eq!(status, 200, "{body}");
        let list = body["desktops"].as_array().unwrap().clone();
        let settled = list.len() == 2 && list[0]["cpu"] == 42.5 && list[1]["online"] == false;
        if settled || std::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(listed[0]["id"], "alice-1");
    assert_eq!(listed[0]["online"], true);
    assert_eq!(listed[0]["cpu"], 42.5);
    assert_eq!(listed[1]["id"], "alice-2");
    assert_eq!(listed[1]["online"], false, "{listed:?}");
    assert_eq!(listed[1]["reason"], "sleep");

    // A v1 token sees its one desktop; a desktop token and no token see nothing.
    let (_, body) = api_desktops(addr, Some(&mint(&keys, "bob-1", ClientMode::Web))).await;
    let ids: Vec<&str> = body["desktops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["bob-1"]);
    let (status, body) = api_desktops(addr, Some(&mint(&keys, "bob-1", ClientMode::Desktop))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _, headers) = http_get(addr, "/api/desktops").await;
    assert_eq!(status, 401);
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
}
