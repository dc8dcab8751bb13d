//! The page's history in a real headless Chromium (issue 13), against a real relay with a store
//! and a real agent: the store seeded with 30 days of one-minute aggregates with a 3-hour hole
//! (the desktop offline), then the detail view's 1 h / 24 h / 30 d ranges show those points
//! with the hole as a break in the line and a read-out under the pointer; the grid's card shows
//! the last hour; an operator's beep is listed in the Log panel, which a viewer does not have.
//!
//! The aggregates are written straight into the relay's SQLite file (as scripts/lib/store_seed.py
//! does for the benchmark): the relay keeps an agent's own `ts` only within 5 minutes of its
//! clock, so a month cannot be sent through the socket in a test.

use std::path::Path;
use std::time::Duration;

use deskbridge_testkit::store::{now_ms, test_store};
use deskbridge_testkit::tokens::{keys, secured};
use deskbridge_testkit::{start_relay, Config, RelayHandle};
use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::Locator;

use crate::chromium::Browser;
use crate::fleet_page::{
    agent, click_css, sign_in, text_of, unexpected_console_errors, wait_grid, wait_view,
    write_users, Desktop, ALICE, VIC,
};
use crate::harness::relay_config;

const WAIT: Duration = Duration::from_secs(20);
const MINUTE: u64 = 60_000;
const DAY: u64 = 86_400_000;
/// The hole in the seeded data: from 6 h to 3 h ago the desktop was offline.
const HOLE: (u64, u64) = (6 * 3_600_000, 3 * 3_600_000);

/// 30 days of one-minute aggregates for `id` up to the minute before `now`, but none in HOLE.
fn seed(database: &Path, id: &str, now: u64) {
    let mut conn = open_store(database);
    let tx = conn.transaction().unwrap();
    tx.execute("INSERT OR IGNORE INTO desktops (id) VALUES (?1)", [id])
        .unwrap();
    let key: i64 = tx
        .query_row("SELECT key FROM desktops WHERE id = ?1", [id], |r| r.get(0))
        .unwrap();
    let end = now / MINUTE * MINUTE;
    let mut insert = tx
        .prepare(
            "INSERT OR REPLACE INTO minutes (key, minute, n, low, high, total, memory_n, memory_total) \
             VALUES (?1, ?2, 60, ?3, ?4, ?5, 60, ?6)",
        )
        .unwrap();
    let mut minute = end - 30 * DAY + 10 * MINUTE; // inside the retention, with room to spare
    while minute < end {
        if minute < now - HOLE.0 || minute >= now - HOLE.1 {
            // Busier by day than by night, with a little noise: something to look at.
            let day = (minute % DAY) as f64 / DAY as f64 * std::f64::consts::TAU;
            let low = 5.0 + 20.0 * (1.0 + day.sin()) + (minute / MINUTE % 7) as f64;
            insert
                .execute(rusqlite::params![
                    key,
                    minute as i64,
                    low,
                    low + 30.0,
                    (low + 10.0) * 60.0,
                    8e9 * 60.0
                ])
                .unwrap();
        }
        minute += MINUTE;
    }
    drop(insert);
    tx.commit().unwrap();
}

/// The relay's SQLite store at `database`, once the relay has created it; for seeding what a test
/// cannot wait hours for.
pub(crate) fn open_store(database: &Path) -> rusqlite::Connection {
    let deadline = std::time::Instant::now() + WAIT;
    while !database.exists() {
        assert!(std::time::Instant::now() < deadline, "no {database:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let conn = rusqlite::Connection::open(database).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

/// A relay with sign-in and a store that `seed` filled for alice-1 (given the store's path, the
/// id and now), alice-1's agent, and a browser signed in as alice looking at the grid.
pub(crate) struct SeededPage {
    pub browser: Browser,
    /// When the seed was written (Unix ms).
    pub now: u64,
    _desktop: Desktop,
    _relay: RelayHandle,
    _dir: tempfile::TempDir,
}

impl SeededPage {
    pub(crate) async fn open(seed: fn(&Path, &str, u64)) -> Self {
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
        let desktop = agent(&keys, addr, "alice-1");

        let browser = Browser::start().await;
        browser
            .client
            .goto(&format!("http://{addr}/"))
            .await
            .unwrap();
        sign_in(&browser, ALICE).await;
        wait_grid(&browser, &["alice-1"]).await;
        Self {
            browser,
            now,
            _desktop: desktop,
            _relay: relay,
            _dir: dir,
        }
    }
}

/// The history canvas's data-* attributes: (range, state, points, gaps).
async fn history_chart(browser: &Browser) -> (String, String, u64, u64) {
    let v = browser
        .js("const c = document.getElementById('history-chart'); \
             return [c.dataset.range || '', c.dataset.state || '', Number(c.dataset.points), Number(c.dataset.gaps)]")
        .await;
    (
        v[0].as_str().unwrap_or_default().to_owned(),
        v[1].as_str().unwrap_or_default().to_owned(),
        v[2].as_u64().unwrap_or(0),
        v[3].as_u64().unwrap_or(0),
    )
}

/// Clicks the range button `range` and waits until its history is drawn; returns (points, gaps).
async fn show_range(browser: &Browser, range: &str) -> (u64, u64) {
    click_css(
        browser,
        &format!("#chart-ranges button[data-range=\"{range}\"]"),
    )
    .await;
    browser
        .wait_until(&format!("the {range} history drawn"), WAIT, || async {
            let (shown, state, points, _) = history_chart(browser).await;
            shown == range && state == "ready" && points > 0
        })
        .await;
    let pressed = browser
        .js(
            "return Array.from(document.querySelectorAll('#chart-ranges button'), \
             b => b.dataset.range + '=' + b.getAttribute('aria-pressed')).join(' ')",
        )
        .await;
    assert_eq!(
        pressed.as_str().unwrap_or_default(),
        ["live", "1h", "24h", "30d"]
            .iter()
            .map(|r| format!("{r}={}", r == &range))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(
        !browser.displayed("chart").await,
        "the live chart makes way"
    );
    let (_, _, points, gaps) = history_chart(browser).await;
    (points, gaps)
}

#[actix_rt::test]
async fn the_page_charts_hours_days_and_a_month_and_lists_the_log() {
    let page = SeededPage::open(seed).await;
    let (browser, now) = (&page.browser, page.now);
    // The card's line is the last hour from the store (about 60 minutes), not just the socket's
    // last minute.
    browser
        .wait_js(
            "the card's last hour",
            WAIT,
            "return Number(document.querySelector('a.desk[data-id=\"alice-1\"] .desk-spark').dataset.points) >= 55",
        )
        .await;

    browser.screenshot("history-grid").await;
    click_css(browser, "a.desk[data-id=\"alice-1\"]").await;
    wait_view(browser, "detail").await;
    assert_eq!(
        browser
            .js("return document.getElementById('chart-ranges').dataset.range")
            .await,
        "live"
    );

    // 1 h: a point a minute, all of them joined.
    let (points, gaps) = show_range(browser, "1h").await;
    assert!((55..=62).contains(&points), "1 h: {points} points");
    assert_eq!(gaps, 0, "1 h has no hole");
    // 24 h: a point a minute but for the 3 hours offline, which break the line once.
    let (points, gaps) = show_range(browser, "24h").await;
    assert!((1_230..=1_262).contains(&points), "24 h: {points} points");
    assert_eq!(gaps, 1, "24 h: the offline hours are one gap");
    browser.screenshot("history-24h").await;

    // The read-out: the point under the pointer, with its min, mean and max.
    let canvas = browser
        .client
        .find(Locator::Id("history-chart"))
        .await
        .unwrap();
    let hover = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element: canvas,
        duration: None,
        x: 0.0,
        y: 0.0,
    });
    browser.client.perform_actions(hover).await.unwrap();
    browser
        .wait_until("the read-out", WAIT, || async {
            browser.displayed("chart-readout").await
        })
        .await;
    let readout = text_of(browser, "chart-readout").await;
    assert!(
        readout.contains(" · min ") && readout.contains(" · mean ") && readout.contains(" · max "),
        "{readout}"
    );
    let ts: u64 = browser
        .attr("chart-readout", "data-ts")
        .await
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    // The middle of the last 24 hours, give or take the padding of the axis.
    assert!(
        ts > now - 14 * 3_600_000 && ts < now - 10 * 3_600_000,
        "read-out of {ts}, now {now}"
    );

    // The keyboard: End moves the read-out to the newest point.
    browser
        .client
        .find(Locator::Id("history-chart"))
        .await
        .unwrap()
        .send_keys("\u{E010}")
        .await
        .unwrap();
    browser
        .wait_until("the read-out at the newest point", WAIT, || async {
            browser
                .attr("chart-readout", "data-ts")
                .await
                .and_then(|t| t.parse::<u64>().ok())
                .is_some_and(|t| t + 3 * MINUTE > now)
        })
        .await;

    // 30 d: the relay's ~2,000 points (22-minute buckets), the hole still a gap.
    let (points, gaps) = show_range(browser, "30d").await;
    assert!((1_800..=2_000).contains(&points), "30 d: {points} points");
    assert_eq!(gaps, 1, "30 d: the offline hours are one gap");
    browser.screenshot("history-30d").await;

    // Live is today's chart again.
    click_css(browser, "#chart-ranges button[data-range=\"live\"]").await;
    browser
        .wait_until("the live chart back", WAIT, || async {
            browser.displayed("chart").await && !browser.displayed("history-chart").await
        })
        .await;

    // The operator beeps; the Log panel lists it.
    browser.beep_until_played(WAIT).await;
    assert!(browser.displayed("log-card").await, "operators have a Log");
    browser.click("log-toggle").await;
    browser
        .wait_js(
            "the beep in the log",
            WAIT,
            "return Array.from(document.querySelectorAll('#log-list li'), li => li.textContent)\
             .some(t => t.endsWith(' · alice · beep · done'))",
        )
        .await;
    assert_eq!(
        browser.attr("log-toggle", "aria-expanded").await.as_deref(),
        Some("true")
    );
    // A view-only link, for later: its page reads the history with the link's token.
    browser
        .wait_until("the share card", WAIT, || async {
            browser.displayed("share-create").await
        })
        .await;
    browser.click("share-create").await;
    browser
        .wait_js(
            "the new link",
            WAIT,
            "return document.getElementById('share-url').value !== ''",
        )
        .await;
    let link = browser
        .js("return document.getElementById('share-url').value")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let errors = unexpected_console_errors(browser).await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // A viewer: the history too, but no Log.
    browser.click("signout").await;
    wait_view(browser, "signin").await;
    // (Signed in, the page would open the desktop the address names: start from the grid.)
    browser
        .js("history.replaceState(null, '', '/'); return null")
        .await;
    sign_in(browser, VIC).await;
    wait_grid(browser, &["alice-1"]).await;
    click_css(browser, "a.desk[data-id=\"alice-1\"]").await;
    browser
        .wait_until("the viewer's detail view connected", WAIT, || async {
            browser.attr("presence", "data-state").await.as_deref() == Some("online")
        })
        .await;
    let (points, _) = show_range(browser, "1h").await;
    assert!(points >= 55, "a viewer's 1 h: {points} points");
    assert!(!browser.displayed("log-card").await, "no Log for a viewer");
    assert!(!browser.displayed("beep").await, "no Beep for a viewer");

    // The view-only link's page, signed out (no cookie): the history with the link's token
    // (Authorization: Bearer).
    browser.click("signout").await;
    wait_view(browser, "signin").await;
    browser.client.goto(&link).await.unwrap();
    browser
        .wait_until("the shared view", WAIT, || async {
            browser.attr("presence", "data-state").await.as_deref() == Some("online")
        })
        .await;
    assert_eq!(
        browser.js("return document.body.dataset.mode").await,
        "share"
    );
    let (points, _) = show_range(browser, "24h").await;
    assert!(points >= 1_230, "a view-only link's 24 h: {points} points");
    assert!(
        !browser.displayed("log-card").await,
        "no Log on a view-only link"
    );
}
