//! CPU reports reach the web viewer every second with sane values; the token never reaches the log;
//! SIGTERM closes the connection cleanly.

use std::time::Duration;

use deskbridge_protocol::{Cpu, DesktopState, ServerMessage};

use deskbridge_testkit::{start_relay, ws_url, Client};

use crate::harness::{relay_config, AgentProcess, Home, FAST};

const TOKEN: &str = "tok-do-not-log-4f9a2c";

#[actix_rt::test]
async fn cpu_reports_arrive_every_second_with_sane_values() {
    let relay = start_relay(relay_config());
    let mut viewer = Client::join(relay.addr(), "cpu-box", "web").await;
    let home = Home::new();
    let mut args = FAST.to_vec();
    args.extend(["--token", TOKEN]);
    let mut agent = AgentProcess::run(&home, &ws_url(relay.addr()), "cpu-box", &args);

    viewer
        .expect_desktop(DesktopState::Online, Duration::from_secs(10))
        .await;
    let mut samples: Vec<Cpu> = Vec::new();
    while samples.len() < 5 {
        let cpu = viewer
            .expect("cpu", Duration::from_secs(5), |m| match m {
                ServerMessage::Cpu(c) => Some(c.clone()),
                _ => None,
            })
            .await;
        samples.push(cpu);
    }
    for cpu in &samples {
        assert!((0.0..=100.0).contains(&cpu.value), "{cpu:?}");
        let cores = cpu.cores.as_ref().expect("per-core values");
        assert!(!cores.is_empty());
        assert!(cores.iter().all(|c| (0.0..=100.0).contains(c)), "{cpu:?}");
        let memory = cpu.memory.expect("memory figures");
        assert!(memory.total > 0 && memory.used <= memory.total, "{cpu:?}");
        cpu.validate().expect("a valid cpu message");
    }
    // Reports follow the 1 s interval: the timestamps of the last four are about a second apart.
    let ts: Vec<u64> = samples.iter().map(|c| c.ts.expect("ts")).collect();
    let gaps: Vec<u64> = ts.windows(2).skip(1).map(|w| w[1] - w[0]).collect();
    let mean = gaps.iter().sum::<u64>() as f64 / gaps.len() as f64;
    assert!(
        (800.0..=1250.0).contains(&mean),
        "gaps between reports: {gaps:?} ms"
    );

    // A stop signal closes the session cleanly: the viewer sees the desktop go offline at once
    // (well before the relay's 10 s timeout), and the agent exits with success.
    let status = agent.terminate(Duration::from_secs(5)).await;
    assert!(status.success(), "{status:?}\n{}", agent.log());
    viewer
        .expect_desktop(DesktopState::Offline, Duration::from_secs(3))
        .await;
    let log = agent.log();
    assert!(
        !log.contains(TOKEN),
        "the token leaked into the log:\n{log}"
    );
    assert!(log.contains("with a token"), "{log}");
    relay.stop();
}
