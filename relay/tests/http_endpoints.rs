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

/// One request over a plain socket, read to the end: status, headers (lowercased names) and
/// whatever bytes followed them, so a HEAD response that carries a body is caught.
fn raw_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(deskbridge_testkit::WAIT))
        .expect("set a read timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write the request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .expect("the relay answers and closes");
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, response[end + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[actix_web::test]
async fn every_get_route_answers_head_with_the_same_status_and_headers_and_no_body() {
    let relay = start_relay(test_config());
    let addr = relay.addr();
    for path in [
        "/",
        "/index.html",
        "/app.js",
        "/healthz",
        "/metrics",
        "/no-such-file",
    ] {
        let (get_status, get_headers, get_body) = raw_request(addr, "GET", path);
        let (status, headers, body) = raw_request(addr, "HEAD", path);
        assert_eq!(status, get_status, "HEAD {path}");
        assert!(body.is_empty(), "HEAD {path} sent a body");
        assert!(!get_body.is_empty(), "GET {path} sent no body");
        for name in [
            "content-type",
            "etag",
            "cache-control",
            "content-security-policy",
            "x-content-type-options",
            "x-frame-options",
        ] {
            assert_eq!(
                header(&headers, name),
                header(&get_headers, name),
                "HEAD {path}: {name}"
            );
        }
        if !path.ends_with("metrics") && !path.ends_with("healthz") {
            // Static answers: HEAD announces exactly the length GET sends.
            assert_eq!(
                header(&headers, "content-length"),
                header(&get_headers, "content-length"),
                "HEAD {path}: content-length"
            );
        }
    }
    // The upgrade endpoint is GET only, and says so.
    let (status, headers, _) = raw_request(addr, "HEAD", "/ws");
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "allow"), Some("GET"));
}
