//! Offline with a reason: an agent stopped by a signal says `going_away: quit` before it closes,
//! so its viewers read "quit", while an agent killed without a word is "lost" — the real binary
//! against a real relay, as a viewer sees it, and the page's words for it in Chromium.

use std::time::Duration;

use deskbridge_testkit::{start_relay, ws_url, Client};

use crate::harness::{relay_config, AgentProcess, Home, FAST};

#[actix_rt::test]
async fn a_stopped_agent_is_quit_and_a_killed_one_is_lost() {
    let relay = start_relay(relay_config());
    let url = ws_url(relay.addr());
    let home = Home::new();
    let mut viewer = Client::join(relay.addr(), "leaver", "web").await;

    let mut agent = AgentProcess::run(&home, &url, "leaver", FAST);
    let online = viewer.expect_presence("online", 1).await;
    assert!(online.get("reason").is_none(), "{online}");
    let status = agent.terminate(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
    let gone = viewer.expect_presence("offline", 1).await;
    assert_eq!(gone["reason"], "quit", "{gone}");

    // A viewer who opens the page later still reads why.
    let mut later = Client::join(relay.addr(), "leaver", "web").await;
    let told = later.expect_presence("offline", 2).await;
    assert_eq!(told["reason"], "quit", "{told}");
    assert_eq!(told["since"], gone["since"]);

    let mut agent = AgentProcess::run(&home, &url, "leaver", FAST);
    viewer.expect_presence("online", 2).await;
    agent.kill();
    let lost = viewer.expect_presence("offline", 2).await;
    assert_eq!(lost["reason"], "lost", "{lost}");
}
