//! The relay's plain HTTP endpoints: the embedded page, `/healthz` and `/metrics`.

use deskbridge_testkit::{http_get, start_relay, test_config, Client};

#[actix_web::test]
async fn serves_the_embedded_page_with_security_headers() {
    let relay = start_relay(test_config());
    let (status, body, headers) = http_get(relay.addr(), "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("<html"), "{body}");
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/html"));
    assert!(header("content-security-policy").contains("default-src 'self'"));
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert!(!header("etag").is_empty());

    let (status, _, headers) = http_get(relay.addr(), "/app.js").await;
    assert_eq!(status, 200);
    assert!(headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("javascript"));
    let (status, _, _) = http_get(relay.addr(), "/../Cargo.toml").await;
    assert_eq!(status, 404);
    let (status, _, _) = http_get(relay.addr(), "/no-such-file").await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn healthz_reports_sessions() {
    let relay = start_relay(test_config());
    let _desktop = Client::join(relay.addr(), "h", "desktop").await;
    let mut web = Client::join(relay.addr(), "h", "web").await;
    web.expect_presence("online", 1).await;
    let (status, body, _) = http_get(relay.addr(), "/healthz").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["desktops"], 1);
    assert_eq!(health["viewers"], 1);
}

#[actix_web::test]
async fn metrics_count_sessions_relayed_messages_and_errors() {
    let relay = start_relay(test_config());
    let mut desktop = Client::join(relay.addr(), "m", "desktop").await;
    let mut web = Client::join(relay.addr(), "m", "web").await;
    web.expect_presence("online", 1).await;
    desktop.send(r#"{"event":"cpu","value":1}"#).await;
    web.next_named("cpu").await;
    web.send(r#"{"event":"cpu","value":1}"#).await;
    web.next_named("error").await;
    let (status, text, _) = http_get(relay.addr(), "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        r#"deskbridge_sessions{mode="desktop"} 1"#,
        r#"deskbridge_sessions{mode="web"} 1"#,
        r#"deskbridge_messages_relayed_total{event="cpu"} 1"#,
        r#"deskbridge_errors_total{code="not_allowed"} 1"#,
        "deskbridge_connections_total 2",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
}
