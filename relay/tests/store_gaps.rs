//! The charts' gaps through a real relay: a desktop that says it goes to sleep and comes back, then
//! one whose connection just ends; `GET /api/history` shows both intervals with their reasons
//! (`offline`), and a viewer of another id sees none of them.

use deskbridge_protocol::ClientMode;
use deskbridge_testkit::store::{api_get, api_until, now_ms, store_config};
use deskbridge_testkit::tokens::{keys, mint, secured};
use deskbridge_testkit::{start_relay, Client, WAIT};
use serde_json::{json, Value};

fn offline(body: &Value) -> Vec<Value> {
    body["offline"]
        .as_array()
        .unwrap_or_else(|| panic!("no offline in {body}"))
        .clone()
}

#[actix_web::test]
async fn history_says_when_and_why_the_desktop_was_away() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys("k1", 7);
    let relay = start_relay(secured(store_config(dir.path()), &keys));
    let addr = relay.addr();
    let desktop_token = mint(&keys, "desk", ClientMode::Desktop);
    let web_token = mint(&keys, "desk", ClientMode::Web);
    let start = now_ms();
    let mut web = Client::join_with_token(addr, "desk", "web", Some(&web_token)).await;
    web.expect_presence("offline", 1).await;

    let mut desktop = Client::join_with_token(addr, "desk", "desktop", Some(&desktop_token)).await;
    web.expect_presence("online", 1).await;
    desktop.go_away("sleep").await;
    assert_eq!(web.expect_presence("offline", 1).await["reason"], "sleep");
    let desktop = Client::join_with_token(addr, "desk", "desktop", Some(&desktop_token)).await;
    web.expect_presence("online", 1).await;
    drop(desktop); // without a word
    assert_eq!(web.expect_presence("offline", 1).await["reason"], "lost");

    let path = format!("/api/history?id=desk&from={start}&to={}", now_ms() + 1000);
    let body = api_until(addr, &path, Some(&web_token), WAIT, |b| {
        offline(b).len() == 2
    })
    .await;
    let gaps = offline(&body);
    assert_eq!(gaps[0]["reason"], "sleep", "{body}");
    assert_eq!(gaps[1]["reason"], "lost", "{body}");
    assert_eq!(gaps[1]["to"], Value::Null, "still away: {body}");
    let (went, back, lost) = (
        gaps[0]["from"].as_u64().unwrap(),
        gaps[0]["to"].as_u64().unwrap(),
        gaps[1]["from"].as_u64().unwrap(),
    );
    assert!(start <= went && went <= back && back <= lost, "{body}");
    // A range that ends before the desktop came back: only the nap, still open then.
    let path = format!("/api/history?id=desk&from={start}&to={back}");
    let (status, body) = api_get(addr, &path, Some(&web_token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        offline(&body),
        vec![json!({"from": went, "to": null, "reason": "sleep"})]
    );

    // A viewer of another id may not read this one's, and its own has no gaps.
    let other = mint(&keys, "other", ClientMode::Web);
    let (status, body) = api_get(addr, "/api/history?id=desk", Some(&other)).await;
    assert_eq!((status, body.get("offline")), (403, None), "{body}");
    let (status, body) = api_get(addr, "/api/history?id=other", Some(&other)).await;
    assert_eq!((status, offline(&body).len()), (200, 0), "{body}");
}

/// A relay that died under a connected desktop (SIGKILL, a crash, power) recorded no departure;
/// the next start learns it from `known.json` and records `lost` since the file was written, so
/// the chart's gap still says why — and the desktop's return closes it.
#[actix_web::test]
async fn a_gap_left_by_a_relay_that_died_reads_lost() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys("k1", 7);
    let saved_at = now_ms() - 30_000;
    let known = json!({
        "saved_at": saved_at,
        "desktops": [
            {"id": "cut", "online": true, "since": saved_at - 60_000},
            {"id": "napping", "online": false, "reason": "sleep", "since": saved_at - 5_000},
        ],
    });
    std::fs::write(dir.path().join("known.json"), known.to_string()).unwrap();
    let config = deskbridge_relay::Config {
        data_dir: Some(dir.path().to_owned()),
        ..secured(store_config(dir.path()), &keys)
    };
    let relay = start_relay(config);
    let addr = relay.addr();
    let web = mint(&keys, "cut", ClientMode::Web);
    let path = format!("/api/history?id=cut&from={}", saved_at - 120_000);
    let body = api_until(addr, &path, Some(&web), WAIT, |b| !offline(b).is_empty()).await;
    assert_eq!(
        offline(&body),
        vec![json!({"from": saved_at, "to": null, "reason": "lost"})]
    );
    // A desktop that had gone away on purpose before keeps its own record, none made up.
    let napper = mint(&keys, "napping", ClientMode::Web);
    let (status, body) = api_get(addr, "/api/history?id=napping", Some(&napper)).await;
    assert_eq!((status, offline(&body).len()), (200, 0), "{body}");

    let desktop = mint(&keys, "cut", ClientMode::Desktop);
    let _back = Client::join_with_token(addr, "cut", "desktop", Some(&desktop)).await;
    let body = api_until(addr, &path, Some(&web), WAIT, |b| {
        offline(b).first().is_some_and(|g| !g["to"].is_null())
    })
    .await;
    let gap = &offline(&body)[0];
    assert_eq!(
        (gap["from"].as_u64(), gap["reason"].as_str()),
        (Some(saved_at), Some("lost"))
    );
}
