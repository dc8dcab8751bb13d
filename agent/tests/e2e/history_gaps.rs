//! The history chart's gaps with their reasons (issue 16), in a real headless Chromium against a
//! real relay with a store and a real agent: the store holds two offline periods of the desktop
//! (lost 10 h–9 h ago, asleep 6 h–3 h ago); the 24 h chart draws both bands, and the read-out
//! says which is which when the pointer is inside one, and when the keyboard stops on one.
//!
//! The periods are written straight into the relay's `presence` table: a relay only records
//! changes as they happen, and a test cannot wait hours for a gap wide enough to point at.

use std::path::Path;
use std::time::Duration;

use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::Locator;

use crate::chromium::Browser;
use crate::fleet_page::{click_css, text_of, unexpected_console_errors, wait_view};
use crate::history_page::{open_store, SeededPage};

const WAIT: Duration = Duration::from_secs(20);
const HOUR: u64 = 3_600_000;

/// `id` lost connection from 10 h to 9 h before `now` and slept from 6 h to 3 h before it.
fn seed(database: &Path, id: &str, now: u64) {
    let conn = open_store(database);
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
    let page = SeededPage::open(seed).await;
    let (browser, now) = (&page.browser, page.now);
    click_css(browser, "a.desk[data-id=\"alice-1\"]").await;
    wait_view(browser, "detail").await;
    click_css(browser, "#chart-ranges button[data-range=\"24h\"]").await;
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
    hover_at(browser, 4 * HOUR + HOUR / 2).await;
    let asleep = wait_readout(browser, "sleep").await;
    let want = expected(browser, "desktop asleep", now - 6 * HOUR, now - 3 * HOUR).await;
    assert_eq!(asleep, want);
    hover_at(browser, 9 * HOUR + HOUR / 2).await;
    let lost = wait_readout(browser, "lost").await;
    let want = expected(browser, "connection lost", now - 10 * HOUR, now - 9 * HOUR).await;
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
    assert_eq!(wait_readout(browser, "sleep").await, asleep);
    canvas.send_keys("\u{E011}").await.unwrap(); // Home
    assert_eq!(wait_readout(browser, "lost").await, lost);

    let errors = unexpected_console_errors(browser).await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}
