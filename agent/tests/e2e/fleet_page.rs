//! The signed-in page in a real headless Chromium, against a real relay with a users file and
//! keys, and real agents: sign-in and its refusals, the grid of a person's desktops fed by one
//! fleet socket, the detail view with Beep for operators only (and the relay refusing a viewer's
//! beep sent by hand), view-only links opened in a fresh browser and revoked, adding a desktop, a
//! person removed from the users file, and a grid on one node of a cluster watching a desktop on
//! another.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use deskbridge_auth::{KeySet, Patterns, Role, Users};
use deskbridge_protocol::ClientMode;
use deskbridge_testkit::cluster::{cluster_config, start_node, Nats};
use deskbridge_testkit::tokens::{keys, mint, secured};
use deskbridge_testkit::{start_relay, ws_url, Config};
use fantoccini::Locator;

use crate::chromium::Browser;
use crate::harness::{capture_to_file, relay_config, AgentProcess, Home, FAST};

const WAIT: Duration = Duration::from_secs(20);
pub(crate) const ALICE: (&str, &str) = ("alice", "alice's long password");
pub(crate) const VIC: (&str, &str) = ("vic", "vic's long password");

/// A users file with alice (operator) and vic (viewer), both of `alice-*`.
pub(crate) fn write_users(path: &Path) -> Users {
    let mut users = Users::default();
    let mine = Patterns::parse("alice-*").unwrap();
    users
        .add(ALICE.0, Role::Operator, mine.clone(), ALICE.1)
        .unwrap();
    users.add(VIC.0, Role::Viewer, mine, VIC.1).unwrap();
    users.save(path).unwrap();
    users
}

/// One real agent for `id`, in its own HOME whose sound goes to `played.raw`.
pub(crate) struct Desktop {
    _home: Home,
    agent: AgentProcess,
}

pub(crate) fn agent(keys: &KeySet, relay: SocketAddr, id: &str) -> Desktop {
    let home = Home::new();
    capture_to_file(&home, &home.path().join("played.raw"));
    let token = mint(keys, id, ClientMode::Desktop);
    let args: Vec<&str> = FAST.iter().copied().chain(["--token", &token]).collect();
    let agent = AgentProcess::run(&home, &ws_url(relay), id, &args);
    Desktop { _home: home, agent }
}

async fn view(browser: &Browser) -> String {
    browser
        .js("return document.body.dataset.view")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub(crate) async fn wait_view(browser: &Browser, wanted: &str) {
    browser
        .wait_js(
            &format!("the {wanted} view"),
            WAIT,
            &format!("return document.body.dataset.view === '{wanted}'"),
        )
        .await;
}

/// Fills in and submits the sign-in form (which must be showing).
async fn submit_sign_in(browser: &Browser, user: &str, password: &str) {
    wait_view(browser, "signin").await;
    browser
        .js("document.getElementById('signin-error').dataset.code = ''; return null")
        .await;
    browser.fill("signin-user", user).await;
    browser.fill("signin-password", password).await;
    browser.click("signin-submit").await;
}

/// The sign-in form's answer: its error code and words, once it gave one.
async fn sign_in_refusal(browser: &Browser) -> (String, String) {
    browser
        .wait_js(
            "an answer to the sign-in",
            WAIT,
            "return document.getElementById('signin-error').dataset.code !== ''",
        )
        .await;
    let answer = browser
        .js("const e = document.getElementById('signin-error'); return [e.dataset.code, e.textContent]")
        .await;
    (
        answer[0].as_str().unwrap_or_default().to_owned(),
        answer[1].as_str().unwrap_or_default().to_owned(),
    )
}

pub(crate) async fn sign_in(browser: &Browser, (user, password): (&str, &str)) {
    submit_sign_in(browser, user, password).await;
    wait_view(browser, "grid").await;
}

/// The ids on the grid, in the order shown.
async fn grid_ids(browser: &Browser) -> Vec<String> {
    let ids = browser
        .js("return Array.from(document.querySelectorAll('#grid a.desk'), a => a.dataset.id)")
        .await;
    serde_json::from_value(ids).unwrap_or_default()
}

/// Waits until the grid shows exactly `ids` (any order).
pub(crate) async fn wait_grid(browser: &Browser, ids: &[&str]) {
    let mut wanted: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    wanted.sort();
    browser
        .wait_until(&format!("the grid of {wanted:?}"), WAIT, || async {
            let mut shown = grid_ids(browser).await;
            shown.sort();
            shown == wanted
        })
        .await;
}

/// Each card of `ids`: its state, CPU text and sparkline points.
async fn cards(browser: &Browser, ids: &[&str]) -> Vec<(String, String, u64)> {
    let script = format!(
        "return {ids:?}.map(id => {{ const a = document.querySelector(`a.desk[data-id=\"${{id}}\"]`); \
         return a ? [a.dataset.state, a.querySelector('.desk-cpu').textContent, \
         Number(a.querySelector('.desk-spark').dataset.points)] : ['missing', '', 0]; }})"
    );
    let value = browser.js(&script).await;
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c[0].as_str().unwrap_or_default().to_owned(),
                c[1].as_str().unwrap_or_default().to_owned(),
                c[2].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Waits until every card of `ids` is online with a CPU figure and a sparkline that keeps
/// growing (live samples, not just the history).
async fn wait_live(browser: &Browser, ids: &[&str]) {
    browser
        .wait_until("every card online with a CPU figure", WAIT, || async {
            cards(browser, ids)
                .await
                .iter()
                .all(|(state, cpu, points)| {
                    state == "online" && cpu.parse::<f64>().is_ok() && *points >= 1
                })
        })
        .await;
    let before = cards(browser, ids).await;
    browser
        .wait_until("every sparkline growing", WAIT, || async {
            cards(browser, ids)
                .await
                .iter()
                .zip(&before)
                .all(|(now, then)| now.2 > then.2)
        })
        .await;
}

pub(crate) async fn click_css(browser: &Browser, css: &str) {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} not on the page: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
}

async fn value_of(browser: &Browser, id: &str) -> String {
    browser
        .js(&format!("return document.getElementById('{id}').value"))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub(crate) async fn text_of(browser: &Browser, id: &str) -> String {
    browser
        .js(&format!(
            "return document.getElementById('{id}').textContent"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Opens a WebSocket from the page as a `web` client of `id` with the page's cookie, sends a
/// beep once welcomed, and returns "ROLE:CODE" (the welcome's role, the error code that
/// answered the beep).
async fn beep_by_hand(browser: &Browser, id: &str) -> String {
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
        let role = '?';
        const ws = new WebSocket(`ws://${{location.host}}/ws`);
        ws.onopen = () => ws.send(JSON.stringify({{event: 'authentication', client_id: '{id}', client_mode: 'web'}}));
        ws.onmessage = (e) => {{
          const m = JSON.parse(e.data);
          if (m.event === 'welcome') {{ role = m.role; ws.send(JSON.stringify({{event: 'beep', id: 'by-hand'}})); }}
          if (m.event === 'error') {{ ws.close(); done(role + ':' + m.code); }}
          if (m.event === 'beep_result') {{ ws.close(); done(role + ':played'); }}
        }};
        setTimeout(() => done(role + ':no answer'), 10000);"#
    );
    let answer = browser
        .client
        .execute_async(&script, vec![])
        .await
        .expect("the script ran");
    answer.as_str().unwrap_or_default().to_owned()
}

/// Console errors other than the browser's own notes on API refusals the page expects (401 from
/// /api/session while signed out, 403 for an id outside the patterns, a closed share link).
pub(crate) async fn unexpected_console_errors(browser: &Browser) -> Vec<String> {
    browser
        .console_errors()
        .await
        .into_iter()
        .filter(|e| !e.contains("the server responded with a status of"))
        .collect()
}

#[actix_rt::test]
async fn people_sign_in_see_their_desktops_act_by_role_share_and_add() {
    let keys = keys("e2e", 9);
    let dir = tempfile::tempdir().unwrap();
    let users_file = dir.path().join("users.toml");
    let mut users = write_users(&users_file);
    let relay = start_relay(Config {
        users_file: Some(users_file.clone()),
        ..secured(relay_config(), &keys)
    });
    let addr = relay.addr();
    let desktops: Vec<Desktop> = ["alice-1", "alice-2", "alice-3", "bob-1"]
        .iter()
        .map(|id| agent(&keys, addr, id))
        .collect();

    // Signed out: the sign-in form. A wrong password is said so, and nothing else shows.
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("http://{addr}/"))
        .await
        .unwrap();
    submit_sign_in(&browser, ALICE.0, "not the password").await;
    let (code, words) = sign_in_refusal(&browser).await;
    assert_eq!(code, "bad_credentials", "{words}");
    assert!(words.contains("Wrong user name or password"), "{words}");
    assert_eq!(view(&browser).await, "signin");

    // Signed in: the grid of alice-*, live, and not bob's desktop.
    sign_in(&browser, ALICE).await;
    let mine = ["alice-1", "alice-2", "alice-3"];
    wait_grid(&browser, &mine).await;
    wait_live(&browser, &mine).await;
    // Watched only from a grid, a desktop reports every 5 s (issue 14), and its card says so.
    browser
        .wait_until("a card telling its cadence", WAIT, || async {
            let status = browser
                .js("return document.querySelector('a.desk[data-id=\"alice-1\"] .desk-status').textContent")
                .await;
            status.as_str().is_some_and(|s| s.ends_with("updates every 5 s"))
        })
        .await;
    assert_eq!(text_of(&browser, "user-name").await, "alice");
    assert_eq!(text_of(&browser, "user-role").await, "operator");
    // The keyboard: cards take the focus, and "/" there jumps to the filter.
    browser
        .client
        .find(Locator::Css("a.desk[data-id=\"alice-3\"]"))
        .await
        .unwrap()
        .send_keys("/")
        .await
        .unwrap();
    browser
        .wait_js(
            "the filter focused by /",
            WAIT,
            "return document.activeElement === document.getElementById('filter')",
        )
        .await;
    browser.fill("filter", "ce-2").await;
    wait_grid(&browser, &["alice-2"]).await;
    browser.fill("filter", "").await;
    browser
        .js("document.getElementById('filter').dispatchEvent(new Event('input')); return null")
        .await;
    wait_grid(&browser, &mine).await;
    browser.screenshot("fleet-grid").await;

    // A card opens the detail view in the same page; the operator beeps, played for real.
    click_css(&browser, "a.desk[data-id=\"alice-1\"]").await;
    wait_view(&browser, "detail").await;
    assert!(browser
        .client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("#id=alice-1"));
    browser.beep_until_played(WAIT).await;
    desktops[0]
        .agent
        .wait_for_log("beep played", Duration::from_secs(5))
        .await;

    // A view-only link, opened in a fresh browser (its own profile): no sign-in, no Beep.
    browser
        .wait_until("the share card", WAIT, || async {
            browser.displayed("share-create").await
        })
        .await;
    browser
        .js("document.getElementById('share-ttl').value = '900'; return null")
        .await;
    browser.click("share-create").await;
    browser
        .wait_js(
            "the new link",
            WAIT,
            "return document.getElementById('share-url').value !== ''",
        )
        .await;
    let link = value_of(&browser, "share-url").await;
    assert!(
        link.starts_with(&format!("http://{addr}/#id=alice-1&share=")),
        "{link}"
    );
    browser
        .wait_js(
            "the link in the list",
            WAIT,
            "return document.querySelectorAll('#share-list li[data-share-id]').length === 1",
        )
        .await;

    let guest = Browser::start().await;
    guest.client.goto(&link).await.unwrap();
    guest
        .wait_until("the shared desktop online", WAIT, || async {
            guest.attr("presence", "data-state").await.as_deref() == Some("online")
        })
        .await;
    guest
        .wait_until("a CPU figure", WAIT, || async {
            guest.text("cpu-value").await.parse::<f64>().is_ok()
        })
        .await;
    assert_eq!(view(&guest).await, "detail");
    assert!(guest.displayed("view-only").await);
    assert!(
        !guest.displayed("beep").await,
        "no Beep on a view-only link"
    );
    assert!(!guest.displayed("share-card").await);
    let url = guest.client.current_url().await.unwrap();
    assert!(!url.as_str().contains("share="), "the token left in {url}");

    // Revoked from the operator's page: the guest's view stops within seconds.
    click_css(&browser, "#share-list li[data-share-id] button").await;
    browser
        .wait_js(
            "the list without the link",
            WAIT,
            "return document.querySelectorAll('#share-list li[data-share-id]').length === 0",
        )
        .await;
    let revoked = Instant::now();
    guest
        .wait_until(
            "the revoked link stopping",
            Duration::from_secs(5),
            || async {
                guest.attr("conn-state", "data-state").await.as_deref() == Some("disconnected")
            },
        )
        .await;
    eprintln!("revoked link stopped after {:?}", revoked.elapsed());
    guest
        .wait_until("the revocation explained", WAIT, || async {
            guest.text("error").await.contains("no longer works")
        })
        .await;

    // Back to the grid; add a desktop: outside the patterns refused in the relay's words, inside
    // it the exact install line, and the id on the grid waiting.
    browser.click("back").await;
    wait_view(&browser, "grid").await;
    browser.click("add-open").await;
    browser.fill("add-id", "bob-9").await;
    browser.click("add-submit").await;
    browser
        .wait_js(
            "the refusal",
            WAIT,
            "return document.getElementById('add-error').textContent !== ''",
        )
        .await;
    assert_eq!(
        browser.attr("add-error", "data-code").await.as_deref(),
        Some("forbidden")
    );
    browser.fill("add-id", "alice-new").await;
    browser.click("add-submit").await;
    browser
        .wait_js(
            "the install line",
            WAIT,
            "return document.getElementById('add-command').textContent !== ''",
        )
        .await;
    let command = text_of(&browser, "add-command").await;
    assert!(
        command.starts_with(&format!(
            "deskbridge-agent install --relay ws://{addr}/ws --id alice-new --token "
        )),
        "{command}"
    );
    browser.click("add-copy").await;
    browser
        .wait_js(
            "the copy answer",
            WAIT,
            "return document.getElementById('add-copy-status').textContent !== ''",
        )
        .await;
    browser.click("add-close").await;
    wait_grid(&browser, &["alice-1", "alice-2", "alice-3", "alice-new"]).await;
    browser
        .wait_js(
            "alice-new waiting",
            WAIT,
            "const a = document.querySelector('a.desk[data-id=\"alice-new\"]'); \
             return a.dataset.state === 'waiting' \
               && a.querySelector('.desk-status').textContent === 'waiting for first connection'",
        )
        .await;
    let errors = unexpected_console_errors(&browser).await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // Sign out.
    browser.click("signout").await;
    wait_view(&browser, "signin").await;

    // A viewer: the same grid, no Add, no Beep; a beep sent by hand is refused by the relay.
    guest.client.goto(&format!("http://{addr}/")).await.unwrap();
    sign_in(&guest, VIC).await;
    wait_grid(&guest, &["alice-1", "alice-2", "alice-3", "alice-new"]).await;
    assert!(!guest.displayed("add-open").await, "no Add for a viewer");
    click_css(&guest, "a.desk[data-id=\"alice-2\"]").await;
    guest
        .wait_until("the viewer's detail view online", WAIT, || async {
            guest.attr("presence", "data-state").await.as_deref() == Some("online")
        })
        .await;
    assert!(!guest.displayed("beep").await, "no Beep for a viewer");
    assert!(
        !guest.displayed("share-card").await,
        "no sharing for a viewer"
    );
    assert_eq!(beep_by_hand(&guest, "alice-2").await, "viewer:not_allowed");

    // Removed from the users file: the page says it is signed out within 2 s.
    users.remove(VIC.0).unwrap();
    users.save(&users_file).unwrap();
    guest
        .wait_until("signed out", Duration::from_secs(2), || async {
            view(&guest).await == "signin"
                && guest.attr("signin-error", "data-code").await.as_deref() == Some("signed_out")
        })
        .await;

    // Too many wrong passwords: the page says to wait, and for how long.
    let mut attempts = 0;
    loop {
        attempts += 1;
        submit_sign_in(&browser, "mallory", "guess").await;
        let (code, words) = sign_in_refusal(&browser).await;
        if code == "rate_limited" {
            assert!(words.contains("Try again in"), "{words}");
            assert!(
                !browser.is_enabled("signin-submit").await,
                "the button waits too"
            );
            break;
        }
        assert_eq!(code, "bad_credentials", "{words}");
        assert!(attempts < 10, "no limit after {attempts} wrong passwords");
    }
    drop(desktops);
}

#[actix_rt::test]
async fn a_grid_signed_in_on_one_node_watches_a_desktop_on_another() {
    let nats = Nats::start();
    let keys = keys("e2e", 11);
    let dir = tempfile::tempdir().unwrap();
    let users_file = dir.path().join("users.toml");
    write_users(&users_file);
    let node = |name: &str| Config {
        users_file: Some(users_file.clone()),
        ..secured(cluster_config(&nats, name), &keys)
    };
    let a = start_node(node("node-a")).await;
    let b = start_node(node("node-b")).await;
    let _desktop = agent(&keys, b.addr(), "alice-b");

    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("http://{}/", a.addr()))
        .await
        .unwrap();
    sign_in(&browser, ALICE).await;
    wait_grid(&browser, &["alice-b"]).await;
    wait_live(&browser, &["alice-b"]).await;
}
