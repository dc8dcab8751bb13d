//! A real headless Chromium, driven through ChromeDriver (WebDriver) with fantoccini.
//!
//! Uses Debian's `chromium` and `chromium-driver` packages; if either is missing the test fails
//! and says which package to install — browser tests are never skipped.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// ChromeDriver plus one browser session; both end when this drops.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the Debian package `{package}` (apt-get install chromium chromium-driver; scripts/test does it)"
    );
}

impl Browser {
    pub async fn start() -> Self {
        require(CHROMIUM, "chromium");
        require(CHROMEDRIVER, "chromium-driver");
        let port = deskbridge_testkit::free_port();
        // Its own process group, so dropping the browser also ends the Chromium processes
        // ChromeDriver started, even when a test fails half-way.
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("a fresh user-data-dir");
        let capabilities = json!({
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let attempt = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await;
            match attempt {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    actix_rt::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot start a Chromium session through chromedriver: {e}"),
            }
        };
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// The process group of ChromeDriver and every Chromium process it started (the benchmark
    /// reads their CPU time from /proc).
    #[allow(dead_code)] // used by benches/fleet_page.rs, which includes this file
    pub fn process_group(&self) -> i32 {
        self.driver.id() as i32
    }

    pub async fn text(&self, id: &str) -> String {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id} not on the page: {e}"))
            .text()
            .await
            .unwrap_or_default()
    }

    pub async fn attr(&self, id: &str, name: &str) -> Option<String> {
        self.client
            .find(Locator::Id(id))
            .await
            .ok()?
            .attr(name)
            .await
            .ok()
            .flatten()
    }

    pub async fn is_enabled(&self, id: &str) -> bool {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id} not on the page: {e}"))
            .is_enabled()
            .await
            .unwrap_or(false)
    }

    /// Waits for the Beep button, presses it, and waits until the page says the tone played.
    pub async fn beep_until_played(&self, within: Duration) {
        self.wait_until("Beep enabled", within, || async {
            self.is_enabled("beep").await
        })
        .await;
        self.click("beep").await;
        self.wait_until("the beep played", within, || async {
            self.attr("beep-status", "data-state").await.as_deref() == Some("played")
        })
        .await;
    }

    pub async fn click(&self, id: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id} not on the page: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click #{id}: {e}"));
    }

    /// Runs `js` (a function body: `return …;`) in the page and returns its value.
    pub async fn js(&self, js: &str) -> serde_json::Value {
        self.client.execute(js, vec![]).await.unwrap_or_else(|e| {
            panic!(
                "script failed in the page: {e}
{js}"
            )
        })
    }

    /// Types `text` into the input `#id`, replacing what was there.
    pub async fn fill(&self, id: &str, text: &str) {
        let input = self
            .client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id} not on the page: {e}"));
        input.clear().await.expect("clear the input");
        input.send_keys(text).await.expect("type into the input");
    }

    /// Whether `#id` is displayed (present, not hidden, not inside something hidden).
    pub async fn displayed(&self, id: &str) -> bool {
        match self.client.find(Locator::Id(id)).await {
            Ok(el) => el.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Waits until the script `js` (a function body) returns `true`.
    pub async fn wait_js(&self, what: &str, within: Duration, js: &str) {
        self.wait_until(what, within, || async {
            self.js(js).await == serde_json::Value::Bool(true)
        })
        .await;
    }

    /// Waits until `check` holds, or panics with `what` and the page's visible state.
    pub async fn wait_until<F, Fut>(&self, what: &str, within: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + within;
        while !check().await {
            if Instant::now() >= deadline {
                let body = self
                    .client
                    .execute("return document.body.innerText", vec![])
                    .await
                    .unwrap_or_default();
                panic!(
                    "the page did not show {what} within {within:?}; it shows: conn={:?} presence={:?} beep={:?} error={:?}\n--- page text ---\n{}",
                    self.text("conn-state").await,
                    self.text("presence").await,
                    self.text("beep-status").await,
                    self.text("error").await,
                    body.as_str().unwrap_or_default(),
                );
            }
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Console messages at level SEVERE (errors, uncaught exceptions, CSP violations) since the
    /// last call; ChromeDriver hands each entry out once.
    pub async fn console_errors(&self) -> Vec<String> {
        let entries = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("read the browser's console log");
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Saves a PNG of the page into the test's output folder and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = output_dir();
        let path = dir.join(format!("{name}.png"));
        let png = self.client.screenshot().await.expect("take a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG image");
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }
}

/// ChromeDriver's console-log endpoint (not part of W3C WebDriver, so fantoccini has no method).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// Where browser tests leave what a person may want to look at.
pub fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).expect("create the test output folder");
    dir
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: signals our own child's process group (its pid is the group id).
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}
