//! Reconnecting: the agent outlives a relay restart, and a replaced agent steps back.

use std::time::Duration;

use deskbridge_protocol::{DesktopState, ServerMessage};

use deskbridge_testkit::{start_relay, start_relay_on, ws_url, Client};

use crate::harness::{relay_config, AgentProcess, Home, FAST};

#[actix_rt::test]
async fn the_agent_is_back_after_the_relay_restarts_without_restarting_itself() {
    let relay = start_relay(relay_config());
    let addr = relay.addr();
    let home = Home::new();
    let mut agent = AgentProcess::run(&home, &ws_url(addr), "phoenix", FAST);
    let mut viewer = Client::join(addr, "phoenix", "web").await;
    viewer
        .expect_desktop(DesktopState::Online, Duration::from_secs(10))
        .await;
    drop(viewer);

    // Stop the relay (sessions get 1001) and start a new one on the same port.
    relay.stop();
    agent
        .wait_for_log("disconnected from the relay", Duration::from_secs(5))
        .await;
    let relay = start_relay_on(addr, relay_config());

    let mut viewer = Client::join(addr, "phoenix", "web").await;
    viewer
        .expect_desktop(DesktopState::Online, Duration::from_secs(15))
        .await;
    viewer
        .expect(
            "cpu from the reconnected agent",
            Duration::from_secs(5),
            |m| matches!(m, ServerMessage::Cpu(_)).then_some(()),
        )
        .await;
    assert!(agent.is_running(), "the agent exited:\n{}", agent.log());
    let log = agent.log();
    assert_eq!(
        log.matches("connected to the relay as phoenix").count(),
        2,
        "one connection before and one after the restart:\n{log}"
    );
    assert!(
        log.contains("shutting_down"),
        "the relay said why it closed:\n{log}"
    );
    relay.stop();
}

#[actix_rt::test]
async fn a_replaced_agent_backs_off_instead_of_fighting() {
    let relay = start_relay(relay_config());
    let url = ws_url(relay.addr());
    let first_home = Home::new();
    let mut args = FAST.to_vec();
    args.extend(["--replaced-backoff", "60s"]);
    let first = AgentProcess::run(&first_home, &url, "twin", &args);
    first
        .wait_for_log("connected to the relay as twin", Duration::from_secs(10))
        .await;

    let second_home = Home::new();
    let second = AgentProcess::run(&second_home, &url, "twin", FAST);
    second
        .wait_for_log("connected to the relay as twin", Duration::from_secs(10))
        .await;
    first
        .wait_for_log("took over", Duration::from_secs(5))
        .await;
    let first_log = first.log();
    assert!(
        first_log.contains("not fighting it, next try in 1m"),
        "{first_log}"
    );
    assert!(
        first_log.contains("--id"),
        "the log says how to fix it:\n{first_log}"
    );

    // With a 100 ms–1 s backoff the first agent would be back within a second if it fought.
    // Over three seconds it stays away, and the second one keeps the id.
    let mut viewer = Client::join(relay.addr(), "twin", "web").await;
    let seen = viewer.collect_for(Duration::from_secs(3)).await;
    assert_eq!(
        first
            .log()
            .matches("connected to the relay as twin")
            .count(),
        1,
        "the replaced agent reconnected:\n{}",
        first.log()
    );
    assert!(
        !second.log().contains("took over") && !second.log().contains("disconnected"),
        "the second agent was disturbed:\n{}",
        second.log()
    );
    assert!(
        seen.iter().any(|m| matches!(m, ServerMessage::Cpu(_))),
        "reports keep coming from the second agent"
    );
    let presence: Vec<DesktopState> = seen
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Presence(p) => Some(p.desktop),
            _ => None,
        })
        .collect();
    assert!(
        !presence.is_empty() && presence.iter().all(|d| *d == DesktopState::Online),
        "the desktop stayed online: {seen:?}"
    );
    relay.stop();
}

#[actix_rt::test]
async fn with_several_relays_the_agent_moves_to_the_next_when_one_goes_away() {
    let first = start_relay(relay_config());
    let second = start_relay(relay_config());
    let relays = format!("{},{}", ws_url(first.addr()), ws_url(second.addr()));
    let home = Home::new();
    let agent = AgentProcess::run(&home, &relays, "nomad", FAST);

    let mut on_first = Client::join(first.addr(), "nomad", "web").await;
    on_first
        .expect_desktop(DesktopState::Online, Duration::from_secs(10))
        .await;
    let mut on_second = Client::join(second.addr(), "nomad", "web").await;
    on_second
        .expect_desktop(DesktopState::Offline, Duration::from_secs(5))
        .await;
    drop(on_first);

    // The first relay goes away for good; the agent tries the next one in its list.
    first.stop();
    on_second
        .expect_desktop(DesktopState::Online, Duration::from_secs(10))
        .await;
    on_second
        .expect(
            "cpu through the second relay",
            Duration::from_secs(5),
            |m| matches!(m, ServerMessage::Cpu(_)).then_some(()),
        )
        .await;
    assert!(agent
        .log()
        .contains(&format!("reconnecting to {}", ws_url(second.addr()))));
}
