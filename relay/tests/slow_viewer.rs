//! A viewer that stops reading must cost the relay a bounded amount and must not hold up anyone
//! else: its telemetry is dropped (and counted) once its queue is full, while the other viewers of
//! the same desktop receive every message.

use deskbridge_relay::Config;
use deskbridge_testkit::{http_get, start_relay, test_config, Client};

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[actix_web::test]
async fn a_stuck_viewer_loses_telemetry_while_others_get_everything() {
    let relay = start_relay(Config {
        send_queue: 16,
        ..test_config()
    });
    let mut desktop = Client::join(relay.addr(), "busy-box", "desktop").await;
    let mut healthy = Client::join(relay.addr(), "busy-box", "web").await;
    let stuck = Client::join(relay.addr(), "busy-box", "web").await;
    healthy.expect_presence("online", 2).await;

    // Big samples (an unknown field the relay forwards as is) fill the stuck viewer's socket
    // buffers quickly; after that its queue fills and the relay starts dropping for it alone.
    let padding = "x".repeat(48 * 1024);
    let total = 400;
    for n in 0..total {
        desktop
            .send(&format!(
                r#"{{"event":"cpu","value":{},"pad":"{padding}"}}"#,
                n % 100
            ))
            .await;
        let got = healthy.next_named("cpu").await;
        assert_eq!(
            got["value"],
            n % 100,
            "the healthy viewer gets every sample, in order"
        );
    }

    // The desktop's session counts a sample once it has queued it to every viewer, which may be
    // a moment after the healthy viewer read it: wait for the counts to settle.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let (dropped, relayed) = loop {
        let (_, text, _) = http_get(relay.addr(), "/metrics").await;
        let dropped = metric(
            &text,
            r#"deskbridge_messages_dropped_total{reason="queue_full"}"#,
        );
        let relayed = metric(&text, r#"deskbridge_messages_relayed_total{event="cpu"}"#);
        if relayed + dropped >= 2 * total || std::time::Instant::now() > deadline {
            break (dropped, relayed);
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        dropped > 0,
        "the stuck viewer's samples are dropped, not queued without bound"
    );
    assert_eq!(
        relayed + dropped,
        2 * total,
        "every sample is either relayed or counted as dropped"
    );
    drop(stuck);
}
