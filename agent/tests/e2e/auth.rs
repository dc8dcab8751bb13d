//! Tokens: a valid one lets the agent in, a refused one is logged with what to do next, and
//! the token itself never shows up in the agent's log.

use std::time::Duration;

use deskbridge_auth::KeySet;
use deskbridge_protocol::ClientMode;
use deskbridge_testkit::tokens::{mint, mint_for, secured};

use deskbridge_testkit::{start_relay, ws_url};

use crate::harness::{relay_config, AgentProcess, Home, FAST};

fn keyed_relay_config(home: &Home) -> (deskbridge_testkit::Config, KeySet) {
    let path = home.path().join("relay.keys");
    KeySet::generate(&path, false).unwrap();
    let keys = KeySet::load(&path).unwrap();
    (secured(relay_config(), &keys), keys)
}

#[actix_rt::test]
async fn a_valid_token_connects_and_a_refused_one_says_what_to_do() {
    let home = Home::new();
    let (config, keys) = keyed_relay_config(&home);
    let relay = start_relay(config);
    let url = ws_url(relay.addr());

    let good = mint(&keys, "locked", ClientMode::Desktop);
    let agent = AgentProcess::run(&home, &url, "locked", &[FAST, &["--token", &good]].concat());
    agent
        .wait_for_log("connected to the relay as locked", Duration::from_secs(10))
        .await;
    assert!(
        !agent.log().contains(&good),
        "token in the log:\n{}",
        agent.log()
    );
    drop(agent);

    // A token for another id is refused by the relay.
    let wrong = mint(&keys, "someone-else", ClientMode::Desktop);
    let other_home = Home::new();
    let refused = AgentProcess::run(
        &other_home,
        &url,
        "locked",
        &[FAST, &["--token", &wrong]].concat(),
    );
    refused
        .wait_for_log("refused this agent's credentials", Duration::from_secs(10))
        .await;
    let log = refused.log();
    assert!(log.contains("deskbridge-agent install --token"), "{log}");
    assert!(!log.contains(&wrong), "token in the log:\n{log}");
    assert!(!log.contains("connected to the relay as"), "{log}");
    relay.stop();
}

#[actix_rt::test]
async fn a_token_near_expiry_is_warned_about_and_its_expiry_explained_with_what_to_do() {
    let home = Home::new();
    let (mut config, keys) = keyed_relay_config(&home);
    // No allowance, so the relay ends the session the moment the token expires.
    config.clock_skew = Duration::ZERO;
    let relay = start_relay(config);
    let url = ws_url(relay.addr());
    let short = mint_for(&keys, "mayfly", ClientMode::Desktop, Duration::from_secs(3));
    let agent = AgentProcess::run(
        &home,
        &url,
        "mayfly",
        &[FAST, &["--token", &short]].concat(),
    );
    agent
        .wait_for_log("the desktop token expires on", Duration::from_secs(10))
        .await;
    agent
        .wait_for_log("connected to the relay as mayfly", Duration::from_secs(10))
        .await;
    // The relay closes the session at expiry (1008 "token expired"); the agent says why and how
    // to replace the token, rather than only that it was disconnected.
    agent
        .wait_for_log(
            "refused this agent's token for id \"mayfly\" because it has expired",
            Duration::from_secs(15),
        )
        .await;
    let log = agent.log();
    assert!(
        log.contains("deskbridge-relay token --id mayfly --mode desktop"),
        "{log}"
    );
    assert!(
        log.contains("deskbridge-agent install --id mayfly --token"),
        "{log}"
    );
    assert!(!log.contains(&short), "token in the log:\n{log}");
    relay.stop();
}
