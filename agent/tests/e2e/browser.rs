//! The page in a real headless Chromium, against the real relay (tokens on) and the real agent
//! binary playing into ALSA's file sink: what a person sees, checked element by element.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deskbridge_protocol::ClientMode;
use deskbridge_testkit::tokens::{keys, mint, mint_for, secured};
use deskbridge_testkit::{start_relay, start_relay_on, ws_url, Client, Config};

use crate::chromium::Browser;
use crate::harness::{capture_to_file, relay_config, AgentProcess, Home, FAST};

const WAIT: Duration = Duration::from_secs(20);

/// Keeps one core busy on and off, so the desktop's CPU figure visibly moves.
struct Wobble(Arc<AtomicBool>);

impl Wobble {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut phase = 0u32;
            while !flag.load(Ordering::Relaxed) {
                let busy = Duration::from_millis(50 + u64::from(phase % 5) * 50);
                let start = std::time::Instant::now();
                while start.elapsed() < busy {
                    std::hint::spin_loop();
                }
                std::thread::sleep(Duration::from_millis(300));
                phase += 1;
            }
        });
        Self(stop)
    }
}

impl Drop for Wobble {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[actix_rt::test]
async fn the_page_shows_the_desktop_live_beeps_it_and_survives_restarts() {
    let keys = keys("e2e", 7);
    let id = "browser-box";
    let relay = start_relay(secured(relay_config(), &keys));
    let addr = relay.addr();
    let home = Home::new();
    capture_to_file(&home, &home.path().join("played.raw"));
    let desktop_token = mint(&keys, id, ClientMode::Desktop);
    let agent_args: Vec<&str> = FAST
        .iter()
        .copied()
        .chain(["--token", &desktop_token])
        .collect();
    let mut agent = AgentProcess::run(&home, &ws_url(addr), id, &agent_args);
    let _wobble = Wobble::start();

    let browser = Browser::start().await;
    let web_token = mint(&keys, id, ClientMode::Web);
    browser
        .client
        .goto(&format!("http://{addr}/#id={id}&token={web_token}"))
        .await
        .expect("open the page");

    // Connected, online, and the token gone from the address bar.
    browser
        .wait_until("connected", WAIT, || async {
            browser.attr("conn-state", "data-state").await.as_deref() == Some("connected")
        })
        .await;
    browser
        .wait_until("the desktop online", WAIT, || async {
            browser.attr("presence", "data-state").await.as_deref() == Some("online")
        })
        .await;
    let url = browser.client.current_url().await.unwrap();
    assert!(
        !url.as_str().contains("token"),
        "token still in the URL: {url}"
    );
    assert!(!url.as_str().contains(&web_token));

    // The CPU number changes at least twice, and the chart has points. A side viewer records
    // what the desktop really sent: on a machine pinned at 100 % the figure cannot change, and
    // then the page must at least show exactly what was sent.
    let side_token = mint(&keys, id, ClientMode::Web);
    let mut side = Client::join_with_token(addr, id, "web", Some(&side_token)).await;
    let mut shown: Vec<String> = Vec::new();
    let mut sent: Vec<f64> = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    while shown.len() < 3 && std::time::Instant::now() < deadline {
        let value = browser.text("cpu-value").await;
        if value.parse::<f64>().is_ok() && shown.last() != Some(&value) {
            shown.push(value);
        }
        for message in side.collect_for(Duration::from_millis(100)).await {
            if let deskbridge_protocol::ServerMessage::Cpu(cpu) = message {
                if sent.last() != Some(&cpu.value) {
                    sent.push(cpu.value);
                }
            }
        }
    }
    if shown.len() < 3 {
        assert!(
            sent.len() < 3,
            "the desktop sent {sent:?} but the page only showed {shown:?}"
        );
        let last = *sent.last().expect("the desktop sent cpu samples");
        let on_page: f64 = browser.text("cpu-value").await.parse().expect("a number");
        assert!(
            (on_page - last).abs() <= 0.05,
            "page shows {on_page}, desktop sent {last}"
        );
    }
    let points: usize = browser
        .attr("chart", "data-points")
        .await
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    assert!(points >= 2, "the chart has {points} points");
    assert!(!browser.text("memory").await.is_empty());

    // Beep: played for real, confirmed on the page.
    browser.beep_until_played(WAIT).await;
    assert!(browser.text("beep-status").await.contains("played"));
    agent
        .wait_for_log("beep played", Duration::from_secs(5))
        .await;
    // A probe first proves the console log is really captured; then nothing else may be there.
    browser
        .client
        .execute("console.error('deskbridge-test-probe')", vec![])
        .await
        .unwrap();
    let errors = browser.console_errors().await;
    assert!(
        errors.iter().any(|e| e.contains("deskbridge-test-probe")),
        "the browser's console log is not being captured: {errors:?}"
    );
    let errors: Vec<&String> = errors
        .iter()
        .filter(|e| !e.contains("deskbridge-test-probe"))
        .collect();
    assert!(errors.is_empty(), "console errors on the page: {errors:#?}");
    let shot = browser.screenshot("page-live").await;
    eprintln!("screenshot: {}", shot.display());

    // The agent stops: offline, Beep disabled. It starts again: online.
    let status = agent.terminate(Duration::from_secs(10)).await;
    assert!(status.success());
    browser
        .wait_until("the desktop offline", WAIT, || async {
            browser.attr("presence", "data-state").await.as_deref() == Some("offline")
        })
        .await;
    assert!(
        !browser.is_enabled("beep").await,
        "Beep must be disabled while offline"
    );
    // Stopped on purpose (`going_away: quit`), told apart from a lost connection.
    browser
        .wait_until("the reason in words", WAIT, || async {
            browser.text("presence-word").await == "agent stopped"
                && browser.attr("presence-box", "data-reason").await.as_deref() == Some("quit")
        })
        .await;
    browser.screenshot("page-offline").await;
    let _agent = AgentProcess::run(&home, &ws_url(addr), id, &agent_args);
    browser
        .wait_until("the desktop online again", WAIT, || async {
            browser.attr("presence", "data-state").await.as_deref() == Some("online")
        })
        .await;

    // The relay restarts on the same port: the page reconnects by itself.
    relay.stop();
    browser
        .wait_until("the page noticing the relay is gone", WAIT, || async {
            browser.attr("conn-state", "data-state").await.as_deref() != Some("connected")
        })
        .await;
    let relay = start_relay_on(addr, secured(relay_config(), &keys));
    browser
        .wait_until("reconnected", Duration::from_secs(40), || async {
            browser.attr("conn-state", "data-state").await.as_deref() == Some("connected")
        })
        .await;
    browser
        .wait_until(
            "the desktop online after the restart",
            Duration::from_secs(40),
            || async { browser.attr("presence", "data-state").await.as_deref() == Some("online") },
        )
        .await;
    browser.screenshot("page-after-relay-restart").await;
    // While the relay was down the browser itself may log refused connections; nothing else.
    let errors: Vec<String> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|e| !e.contains("WebSocket connection to") && !e.contains("ERR_CONNECTION_REFUSED"))
        .collect();
    assert!(errors.is_empty(), "console errors on the page: {errors:#?}");
    drop(relay);
}

#[actix_rt::test]
async fn a_prototype_desktop_is_shown_and_a_wrong_token_is_explained() {
    let relay = start_relay(relay_config()); // anonymous: the 2018 prototype had no tokens
    let addr = relay.addr();
    let mut prototype = Client::join(addr, "proto", "desktop").await;

    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("http://{addr}/#id=proto"))
        .await
        .expect("open the page");
    browser
        .wait_until("the desktop online", WAIT, || async {
            browser.attr("presence", "data-state").await.as_deref() == Some("online")
        })
        .await;
    // Exactly what the prototype's desktop sent: a value and nothing else.
    prototype.send(r#"{"event": "cpu", "value": 42.5}"#).await;
    browser
        .wait_until("the prototype's CPU figure", WAIT, || async {
            browser.text("cpu-value").await == "42.5"
        })
        .await;
    let displayed = |id: &'static str| {
        let browser = &browser;
        async move {
            browser
                .client
                .find(fantoccini::Locator::Id(id))
                .await
                .unwrap()
                .is_displayed()
                .await
                .unwrap()
        }
    };
    assert!(
        !displayed("cores").await,
        "no per-core bars for a value-only desktop"
    );
    assert!(
        !displayed("memory").await,
        "no memory for a value-only desktop"
    );
    // This relay keeps no history (no store): asked for an hour, the page says so and stays live.
    browser
        .client
        .find(fantoccini::Locator::Css(
            "#chart-ranges button[data-range=\"1h\"]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_until("no history said", WAIT, || async {
            browser.text("chart-note").await == "History is not kept on this relay."
        })
        .await;
    assert_eq!(
        browser
            .js("const g = document.getElementById('chart-ranges'); \
                 return [g.dataset.range, g.querySelector('[data-range=\"1h\"]').disabled]")
            .await,
        serde_json::json!(["live", true])
    );
    assert!(displayed("chart").await, "the live chart stays");

    // A relay that requires tokens refuses a forged one, and the page says so in words.
    let strict_keys = keys("k", 1);
    let strict = start_relay(secured(relay_config(), &strict_keys));
    let forged = mint(&keys("k", 2), "victim", ClientMode::Web);
    browser
        .client
        .goto(&format!(
            "http://{}/#id=victim&token={forged}",
            strict.addr()
        ))
        .await
        .unwrap();
    browser
        .wait_until("the refusal explained", WAIT, || async {
            browser.attr("error", "data-code").await.as_deref() == Some("unauthorized")
        })
        .await;
    assert!(!browser.text("error").await.is_empty());
    assert_ne!(
        browser.attr("conn-state", "data-state").await.as_deref(),
        Some("connected")
    );

    // A token that expires while the page is open: the relay ends the session, and the page asks
    // for a fresh token instead of retrying with the old one.
    let expiring = start_relay(Config {
        clock_skew: Duration::ZERO,
        ..secured(relay_config(), &strict_keys)
    });
    let brief = mint_for(
        &strict_keys,
        "brief",
        ClientMode::Web,
        Duration::from_secs(3),
    );
    browser
        .client
        .goto(&format!(
            "http://{}/#id=brief&token={brief}",
            expiring.addr()
        ))
        .await
        .unwrap();
    browser
        .wait_until("connected with the short token", WAIT, || async {
            browser.attr("conn-state", "data-state").await.as_deref() == Some("connected")
        })
        .await;
    browser
        .wait_until("the expiry explained", WAIT, || async {
            browser.attr("conn-state", "data-state").await.as_deref() == Some("disconnected")
                && browser.text("conn-detail").await.contains("expired")
        })
        .await;
}

#[actix_rt::test]
async fn the_page_says_live_or_that_nobody_was_watching_and_its_stale_marker_follows_the_interval()
{
    let relay = start_relay(relay_config());
    let addr = relay.addr();
    // A desktop that reported every 60 s while nobody watched: its history is a minute apart.
    let mut desktop = Client::join(addr, "cadence-box", "desktop").await;
    let now = deskbridge_protocol::unix_millis();
    for (value, ts) in [(10.0, now - 60_000), (20.0, now - 1_000)] {
        desktop
            .send(&format!(r#"{{"event":"cpu","value":{value},"ts":{ts}}}"#))
            .await;
    }

    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("http://{addr}/#id=cadence-box"))
        .await
        .expect("open the page");
    browser
        .wait_until("the history's figure", WAIT, || async {
            browser.text("cpu-value").await == "20.0"
        })
        .await;
    let text = browser.text("last-sample").await;
    assert!(
        text.contains("updates every 59 s — nobody was watching"),
        "{text}"
    );
    // Four seconds on, that sample is not stale: it was taken at the slow cadence.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        browser.attr("last-sample", "data-cadence").await.as_deref(),
        Some("slow")
    );
    let class = browser
        .attr("last-sample", "class")
        .await
        .unwrap_or_default();
    assert!(!class.contains("stale"), "{class}");

    // A report now (the agent sends one at once when a viewer comes): live, and a sample that is
    // late for the 1 s interval in force is marked stale after 3 s.
    desktop.send(r#"{"event":"cpu","value":30}"#).await;
    browser
        .wait_until("live", WAIT, || async {
            browser.attr("last-sample", "data-cadence").await.as_deref() == Some("live")
        })
        .await;
    assert!(browser.text("last-sample").await.contains("live"));
    browser
        .wait_until(
            "stale at the 1 s interval",
            Duration::from_secs(6),
            || async {
                browser
                    .attr("last-sample", "class")
                    .await
                    .is_some_and(|c| c.contains("stale"))
            },
        )
        .await;
    drop(relay);
}
