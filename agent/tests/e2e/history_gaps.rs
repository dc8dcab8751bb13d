//! The history chart's gaps with their reasons (issue 16), in a real headless Chromium against a
//! real relay with a store and a real agent: the store holds two offline periods of the desktop
//! (lost 10 h–9 h ago, asleep 6 h–3 h ago); the 24 h chart draws both bands, and the read-out
//! says which is which when the pointer is inside one, and when the keyboard stops on one.
//!
//! The periods are written straight into the relay's `presence` table: a relay only records
//! changes as they happen, and a test cannot wait hours for a gap wide enough to point at.

use std::path::Path;
use std::time::Duration;

use deskbridge_testkit::store::{now_ms, test_store};
use deskbridge_testkit::tokens::{keys, secured};
use deskbridge_testkit::{start_relay, Config};
use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::Locator;

use crate::chromium::Browser;
use crate::fleet_page::{
    agent, click_css, sign_in, text_of, unexpected_console_errors, wait_grid, wait_view,
    write_users, ALICE,
};
use crate::harness::relay_config;

const WAIT: Duration = Duration::from_secs(20);
const HOUR: u64 = 3_600_000;

/// `id` lost connection from 10 h to 9 h before `now` and slept from 6 h to 3 h before it.
fn seed(database: &Path, id: &str, now: u64) {
    let deadline = std::time::Instant::now() + WAIT;
    while !database.exists() {
        assert!(std::time::Instant::now() < deadline, "no {database:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let conn = rusqlite::Connection::open(database).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    for (ago, reason) in [(10, Some("lost")), (9, None), (6, Some("sleep")), (3, None)] {
        conn.execute(
            "INSERT INTO presence (desktop, ts, reason) VALUES (?1, ?2, ?3)",
            rusqlite::params![id, (now - ago * HOUR) as i64, reason],
        )
        .unwrap();
    }
}

/// Moves the mouse over the history chart at the time `ago_ms` before the chart's end.
async fn hover_at(browser: &Browser, ago_ms: u64) {
    // The chart's plot starts 38 px from the left and ends 12 px from the right (history.js PAD);
    // WebDriver's offsets are from the element's centre.
    let offset = browser
        .js(&format!(
            "const c = document.getElementById('history-chart'); const w = c.clientWidth - 50; \
             return 38 + w * (1 - {ago_ms} / 86400000) - c.clientWidth / 2"
        ))
        .await
        .as_f64()
        .unwrap();
    let canvas = browser
        .client
        .find(Locator::Id("history-chart"))
        .await
        .unwrap();
    let hover = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element: canvas,
        duration: None,
        x: offset,
        y: 0.0,
    });
    browser.client.perform_actions(hover).await.unwrap();
}

/// The read-out the page should show for a gap from `went` to `back`, in the browser's locale.
async fn expected(browser: &Browser, words: &str, went: u64, back: u64) -> String {
    let clock = |t: u64| {
        format!("new Date({t}).toLocaleTimeString([], {{ hour: '2-digit', minute: '2-digit' }})")
    };
    let js = format!(
        "return '{words} ' + {} + '\u{2013}' + {}",
        clock(went),
        clock(back)
    );
    browser
        .js(&js)
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn wait_readout(browser: &Browser, reason: &str) -> String {
    browser
        .wait_until(
            &format!("the read-out of the {reason} gap"),
            WAIT,
            || async {
                browser.displayed("chart-readout").await
                    && browser
                        .attr("chart-readout", "data-reason")
                        .await
                        .as_deref()
                        == Some(reason)
            },
        )
        .await;
    text_of(browser, "chart-readout").await
}

#[actix_rt::test]
async fn the_history_chart_says_why_the_desktop_was_away() {
    let keys = keys("e2e", 9);
    let dir = tempfile::tempdir().unwrap();
    let users_file = dir.path().join("users.toml");
    write_users(&users_file);
    let store = test_store(&dir.path().join("data"));
    let relay = start_relay(Config {
        users_file: Some(users_file),
        store: Some(store.clone()),
        ..secured(relay_config(), &keys)
    });
    let addr = relay.addr();
    let now = now_ms();
    seed(&store.database(), "alice-1", now);
    let _desktop = agent(&keys, addr, "alice-1");

    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("http://{addr}/"))
        .await
        .unwrap();
    sign_in(&browser, ALICE).await;
    wait_grid(&browser, &["alice-1"]).await;
    click_css(&browser, "a.desk[data-id=\"alice-1\"]").await;
    wait_view(&browser, "detail").await;
    click_css(&browser, "#chart-ranges button[data-range=\"24h\"]").await;
    browser
        .wait_js(
            "the 24 h chart with both offline bands",
            WAIT,
            "const c = document.getElementById('history-chart'); \
             return c.dataset.state === 'ready' && c.dataset.offline === 'lost sleep'",
        )
        .await;
    browser.screenshot("history-gaps-24h").await;

    // Inside each band, the read-out says why and from when to when.
    hover_at(&browser, 4 * HOUR + HOUR / 2).await;
    let asleep = wait_readout(&browser, "sleep").await;
    let want = expected(&browser, "desktop asleep", now - 6 * HOUR, now - 3 * HOUR).await;
    assert_eq!(asleep, want);
    hover_at(&browser, 9 * HOUR + HOUR / 2).await;
    let lost = wait_readout(&browser, "lost").await;
    let want = expected(&browser, "connection lost", now - 10 * HOUR, now - 9 * HOUR).await;
    assert_eq!(lost, want);
    browser.screenshot("history-gaps-hover").await;
    let label = browser.attr("history-chart", "aria-label").await;
    assert!(
        label.as_deref().is_some_and(|l| l.contains(&want)),
        "{label:?}"
    );

    // The keyboard stops on the bands too: → from the lost one is the asleep one, Home the oldest.
    let canvas = browser
        .client
        .find(Locator::Id("history-chart"))
        .await
        .unwrap();
    canvas.send_keys("\u{E014}").await.unwrap(); // ArrowRight
    assert_eq!(wait_readout(&browser, "sleep").await, asleep);
    canvas.send_keys("\u{E011}").await.unwrap(); // Home
    assert_eq!(wait_readout(&browser, "lost").await, lost);

    let errors = unexpected_console_errors(&browser).await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}
