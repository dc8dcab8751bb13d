//! The detail view's commands in a real headless Chromium: the live list of everyone's commands
//! ("token … · beep · played · 2 s ago"), "Beep when it's back" while the desktop is away —
//! played by the real agent once it starts — and the Notify control's refusal of a bad text.

use std::time::Duration;

use deskbridge_protocol::ClientMode;
use deskbridge_testkit::tokens::{keys, mint, secured};
use deskbridge_testkit::{start_relay, ws_url, Client};

use crate::chromium::Browser;
use crate::harness::{capture_to_file, relay_config, AgentProcess, Home, FAST};

const WAIT: Duration = Duration::from_secs(20);

#[actix_rt::test]
async fn the_detail_view_follows_commands_and_beeps_a_desktop_when_it_is_back() {
    let keys = keys("e2e", 9);
    let id = "later-box";
    let relay = start_relay(secured(relay_config(), &keys));
    let addr = relay.addr();
    let browser = Browser::start().await;
    let web_token = mint(&keys, id, ClientMode::Web);
    browser
        .client
        .goto(&format!("http://{addr}/#id={id}&token={web_token}"))
        .await
        .expect("open the page");
    browser
        .wait_until("the desktop offline", WAIT, || async {
            browser.attr("presence", "data-state").await.as_deref() == Some("offline")
        })
        .await;
    assert!(browser.displayed("commands-empty").await);
    assert!(!browser.is_enabled("beep").await, "offline: no plain beep");
    browser
        .wait_until("the offer to beep later", WAIT, || async {
            browser.displayed("beep-later").await && browser.is_enabled("beep-later").await
        })
        .await;
    browser.click("beep-later").await;
    browser
        .wait_until("the waiting beep in the list", WAIT, || async {
            browser
                .text("commands")
                .await
                .contains("· beep · requested ·")
        })
        .await;
    assert!(
        browser
            .text("beep-status")
            .await
            .contains("when the desktop is back"),
        "{}",
        browser.text("beep-status").await
    );

    // The desktop comes back: the beep plays, and the page says so.
    let home = Home::new();
    capture_to_file(&home, &home.path().join("played.raw"));
    let desktop_token = mint(&keys, id, ClientMode::Desktop);
    let args: Vec<&str> = FAST
        .iter()
        .copied()
        .chain(["--token", &desktop_token])
        .collect();
    let agent = AgentProcess::run(&home, &ws_url(addr), id, &args);
    browser
        .wait_until("played", WAIT, || async {
            browser.text("beep-status").await.contains("played")
        })
        .await;
    let list = browser.text("commands").await;
    assert!(
        list.contains("token ") && list.contains("· beep · played ·"),
        "{list}\n{}",
        agent.log()
    );

    // Another viewer's command shows up in the list too, with who sent it.
    let other_token = mint(&keys, id, ClientMode::Web);
    let mut other = Client::join_with_token(addr, id, "web", Some(&other_token)).await;
    other
        .send(r#"{"event":"notify","id":"from-other","text":"Hello"}"#)
        .await;
    browser
        .wait_until("the other viewer's notify", WAIT, || async {
            browser.text("commands").await.contains("· notify ·")
        })
        .await;

    // A text the relay would refuse is refused on the page, before sending.
    browser.fill("notify-text", "").await;
    browser.click("notify-send").await;
    browser
        .wait_until("the refusal", WAIT, || async {
            browser.attr("notify-status", "data-state").await.as_deref() == Some("failed")
        })
        .await;
    assert!(
        browser.console_errors().await.is_empty(),
        "{:?}",
        browser.console_errors().await
    );
    relay.stop();
}
