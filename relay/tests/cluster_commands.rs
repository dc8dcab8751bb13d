//! Commands in a cluster: a command waiting on node B is delivered to the desktop when it arrives
//! on node A — even after its sender left B — and every viewer on every node follows its life; a
//! viewer joining on another node sees it in its book.

use deskbridge_testkit::cluster::{cluster_config, metric, start_node, Nats};
use deskbridge_testkit::Client;
use serde_json::Value;

const ID: &str = "roaming-pc";

async fn step(client: &mut Client, id: &str, state: &str) -> Value {
    loop {
        let event = client.next_named("command").await;
        if event["id"] == id && event["state"] == state {
            return event;
        }
    }
}

#[actix_web::test]
async fn a_command_waiting_on_one_node_reaches_the_desktop_arriving_at_another() {
    let nats = Nats::start();
    let a = start_node(cluster_config(&nats, "node-a")).await;
    let b = start_node(cluster_config(&nats, "node-b")).await;

    let mut on_a = Client::join(a.addr(), ID, "web").await;
    on_a.expect_presence("offline", 1).await;
    let mut on_b = Client::join(b.addr(), ID, "web").await;
    on_b.expect_presence("offline", 2).await;
    on_a.expect_presence("offline", 2).await;

    on_b.send(r#"{"event":"beep","id":"hop","wait_ms":30000}"#)
        .await;
    let requested = step(&mut on_b, "hop", "requested").await;
    assert_eq!(requested["by"], "anonymous");
    // The viewer on the other node follows it too.
    assert_eq!(step(&mut on_a, "hop", "requested").await, requested);
    assert_eq!(metric(b.addr(), "deskbridge_commands_waiting").await, 1.0);

    // The sender goes; its node keeps the command and still delivers it.
    drop(on_b);
    on_a.expect_presence("offline", 1).await;

    let mut desktop = Client::join(a.addr(), ID, "desktop").await;
    let beep = desktop.next_named("beep").await;
    assert_eq!(beep["id"], "hop");
    step(&mut on_a, "hop", "delivered").await;
    desktop
        .send(r#"{"event":"beep_result","id":"hop","ok":true}"#)
        .await;
    assert_eq!(on_a.next_named("beep_result").await["ok"], true);
    let done = step(&mut on_a, "hop", "done").await;
    assert_eq!(done["client_id"], ID);
    assert_eq!(metric(b.addr(), "deskbridge_commands_waiting").await, 0.0);
    assert_eq!(
        metric(
            b.addr(),
            r#"deskbridge_commands_total{name="beep",state="done"}"#
        )
        .await,
        1.0,
        "counted once, by the node that owns it"
    );
    assert_eq!(
        metric(
            a.addr(),
            r#"deskbridge_commands_total{name="beep",state="done"}"#
        )
        .await,
        0.0
    );

    // A new viewer on node A sees it in A's book.
    let mut late = Client::join(a.addr(), ID, "web").await;
    late.next_named("history").await;
    let seen = late.next_named("command").await;
    assert_eq!(
        (&seen["id"], &seen["state"]),
        (&"hop".into(), &"done".into())
    );
    // Nothing was delivered twice.
    let more = desktop
        .collect_for(std::time::Duration::from_millis(300))
        .await;
    assert!(
        !more
            .iter()
            .any(|m| matches!(m, deskbridge_protocol::ServerMessage::Beep(_))),
        "{more:?}"
    );
}
