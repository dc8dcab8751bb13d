//! The relay's store in tests: a relay configuration with a store in a temporary directory and
//! short batch, rollup and cleanup intervals, and the JSON API read with or without a token.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use deskbridge_relay::{Config, StoreConfig};
use serde_json::{json, Value};

use crate::relay::test_config;

/// Store settings for tests in `dir`: batches every 100 ms, rollup and cleanup every 200 ms.
pub fn test_store(dir: &Path) -> StoreConfig {
    let mut store = StoreConfig::new(dir);
    store.batch_interval = Duration::from_millis(100);
    store.rollup_interval = Duration::from_millis(200);
    store.cleanup_interval = Duration::from_millis(200);
    store
}

/// [`test_config`] with [`test_store`] in `dir`.
pub fn store_config(dir: &Path) -> Config {
    Config {
        store: Some(test_store(dir)),
        ..test_config()
    }
}

/// `GET path` with `Authorization: Bearer token` if given: the status and the JSON body.
pub async fn api_get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = awc::Client::new().get(format!("http://{addr}{path}"));
    if let Some(token) = token {
        request = request.insert_header(("authorization", format!("Bearer {token}")));
    }
    let mut response = request.send().await.expect("http request");
    let body: Bytes = response.body().await.expect("body");
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (response.status().as_u16(), json)
}

/// Polls `GET path` (anonymously or with `token`) until `done` holds for its 200 answer, or
/// panics with the last answer after `within`.
pub async fn api_until(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    within: Duration,
    mut done: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = api_get(addr, path, token).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path}: not as expected within {within:?}; last answer {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The relay's clock, Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// A `cpu` frame of `value` (memory 100 of 200 bytes), with the agent's `ts` if given.
pub fn cpu(value: f64, ts: Option<u64>) -> String {
    let mut message =
        json!({"event": "cpu", "value": value, "memory": {"used": 100, "total": 200}});
    if let Some(ts) = ts {
        message["ts"] = json!(ts);
    }
    message.to_string()
}

/// The `points` of a `/api/history` answer, as numbers.
pub fn points(body: &Value) -> Vec<Vec<f64>> {
    body["points"]
        .as_array()
        .unwrap_or_else(|| panic!("no points in {body}"))
        .iter()
        .map(|p| {
            p.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect()
}
