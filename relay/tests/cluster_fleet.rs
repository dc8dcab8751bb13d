//! A fleet grid across a cluster: a grid on node A shows the desktops connected to node B — those
//! there before it opened and those that connect later — with their samples, byte for byte.

use std::time::Duration;

use deskbridge_auth::{token, Patterns, Role};
use deskbridge_protocol::ClientMode;
use deskbridge_testkit::cluster::{cluster_config, start_node, Nats};
use deskbridge_testkit::tokens::{keys, mint, secured};
use deskbridge_testkit::{Client, Received};
use serde_json::Value;

/// The next event about `id` of kind `event`, skipping everything else.
async fn next_about(client: &mut Client, event: &str, id: &str) -> Value {
    loop {
        let e = client.next_event().await;
        if e["event"] == event && e["client_id"] == id {
            return e;
        }
    }
}

/// Sends `frame` from `desktop` every 200 ms until the grid gets it forwarded for `id` (the
/// desktop's node forwards once it heard of the grid's node), and returns that `forward`.
async fn sample_reaches(grid: &mut Client, desktop: &mut Client, id: &str, frame: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        desktop.send(frame).await;
        while let Some(Received::Text(text)) = grid.recv_within(Duration::from_millis(200)).await {
            let e: Value = serde_json::from_str(&text).unwrap();
            if e["event"] == "forward" && e["client_id"] == id {
                return e;
            }
        }
    }
    panic!("no sample of {id} reached the grid; it saw {:?}", grid.seen);
}

#[actix_web::test]
async fn a_grid_on_one_node_watches_desktops_on_another() {
    let nats = Nats::start();
    let keys = keys("k1", 1);
    let a = start_node(secured(cluster_config(&nats, "node-a"), &keys)).await;
    let b = start_node(secured(cluster_config(&nats, "node-b"), &keys)).await;
    let desktop = |id: &'static str| {
        let keys = keys.clone();
        let addr = b.addr();
        async move {
            Client::join_with_token(
                addr,
                id,
                "desktop",
                Some(&mint(&keys, id, ClientMode::Desktop)),
            )
            .await
        }
    };
    let mut early = desktop("lab-1").await;

    let fleet_token = token::mint_fleet(
        &keys,
        &Patterns::parse("lab-*").unwrap(),
        Role::Viewer,
        Duration::from_secs(3600),
    );
    let mut grid = Client::connect(a.addr()).await;
    grid.send(&format!(
        r#"{{"event":"authentication","client_mode":"fleet","token":"{fleet_token}"}}"#
    ))
    .await;
    assert_eq!(grid.next_event().await["event"], "welcome");
    // Node A learned of lab-1 from the directory (node B listed it when A asked on joining).
    let presence = loop {
        let p = next_about(&mut grid, "presence", "lab-1").await;
        if p["desktop"] == "online" {
            break p;
        }
    };
    assert_eq!(presence["viewers"], 0);

    // Its samples reach the grid on the other node, wrapped, bytes untouched.
    let cpu = r#"{"event":"cpu","value":31.5, "ts":2}"#;
    let forwarded = sample_reaches(&mut grid, &mut early, "lab-1", cpu).await;
    let text = serde_json::to_string(&forwarded).unwrap();
    assert_eq!(
        forwarded["message"],
        serde_json::from_str::<Value>(cpu).unwrap(),
        "{text}"
    );

    // A desktop connecting to node B later shows up on node A's grid.
    let mut late = desktop("lab-2").await;
    loop {
        let p = next_about(&mut grid, "presence", "lab-2").await;
        if p["desktop"] == "online" {
            break;
        }
    }
    let forwarded = sample_reaches(
        &mut grid,
        &mut late,
        "lab-2",
        r#"{"event":"cpu","value":5}"#,
    )
    .await;
    assert_eq!(forwarded["message"]["value"], 5);
}
