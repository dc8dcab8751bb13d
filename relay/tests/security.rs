//! Who may connect, against a real relay: tokens bound to id and mode, refusals with 1008,
//! revocation that closes live sessions, the Origin check, and each abuse limit.

use std::time::Duration;

use awc::ws::CloseCode;
use deskbridge_auth::{Claims, KeySet};
use deskbridge_protocol::{ClientMode, ErrorCode};
use deskbridge_relay::Config;
use deskbridge_testkit::tokens::{claims, keys, mint, mint_for, secured, sign};
use deskbridge_testkit::{http_get, start_relay, test_config, Client};
use serde_json::json;

/// Tokens required, checked against `keys`.
fn secured_by(keys: &KeySet) -> Config {
    secured(test_config(), keys)
}

/// Connects, authenticates and expects `unauthorized` then close 1008.
async fn expect_refused(addr: std::net::SocketAddr, id: &str, mode: &str, token: Option<&str>) {
    let mut client = Client::connect(addr).await;
    client.authenticate(id, mode, token).await;
    client.expect_error(ErrorCode::Unauthorized).await;
    assert_eq!(
        client.expect_close().await,
        Some(CloseCode::Policy),
        "{id} {mode} {token:?}"
    );
}

#[actix_web::test]
async fn a_token_opens_only_its_own_id_and_mode() {
    let k = keys("k1", 1);
    let relay = start_relay(secured_by(&k));
    let addr = relay.addr();

    let mut desktop = Client::connect(addr).await;
    desktop
        .authenticate(
            "alice",
            "desktop",
            Some(&mint(&k, "alice", ClientMode::Desktop)),
        )
        .await;
    assert_eq!(desktop.next_event().await["event"], "welcome");
    let mut web = Client::connect(addr).await;
    web.authenticate("alice", "web", Some(&mint(&k, "alice", ClientMode::Web)))
        .await;
    assert_eq!(web.next_event().await["event"], "welcome");
    web.expect_presence("online", 1).await;

    let alice_web = mint(&k, "alice", ClientMode::Web);
    expect_refused(addr, "bob", "web", Some(&alice_web)).await;
    expect_refused(addr, "alice", "desktop", Some(&alice_web)).await;
    expect_refused(addr, "alice", "web", None).await;
    expect_refused(addr, "alice", "web", Some("not-a-jwt")).await;
    expect_refused(
        addr,
        "alice",
        "web",
        Some(&mint(&keys("k1", 2), "alice", ClientMode::Web)),
    )
    .await;
    expect_refused(
        addr,
        "alice",
        "web",
        Some(&mint(&keys("k9", 1), "alice", ClientMode::Web)),
    )
    .await;
    let now = jsonwebtoken::get_current_timestamp();
    let expired = sign(
        k.signing(),
        &claims(
            "alice",
            "web",
            json!({ "exp": now - 3600, "iat": now - 7200 }),
        ),
    );
    expect_refused(addr, "alice", "web", Some(&expired)).await;
    let none_alg = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(r#"{"alg":"none","kid":"k1"}"#);
        let body =
            b64.encode(r#"{"sub":"alice","mode":"web","exp":99999999999,"iat":0,"jti":"x"}"#);
        format!("{header}.{body}.")
    };
    expect_refused(addr, "alice", "web", Some(&none_alg)).await;

    // Through all of that, the real pair kept working.
    desktop.send(r#"{"event":"cpu","value":5}"#).await;
    assert_eq!(web.next_named("cpu").await["value"], 5);
    let (_, metrics, _) = http_get(addr, "/metrics").await;
    assert!(
        metrics.contains("deskbridge_auth_failures_total 8"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn a_token_not_valid_yet_or_for_another_audience_is_refused() {
    let k = keys("k1", 1);
    let relay = start_relay(secured_by(&k));
    let addr = relay.addr();
    let now = jsonwebtoken::get_current_timestamp();
    let future = sign(
        k.signing(),
        &claims("alice", "web", json!({ "nbf": now + 3600 })),
    );
    expect_refused(addr, "alice", "web", Some(&future)).await;
    let elsewhere = sign(k.signing(), &claims("alice", "web", json!({ "aud": 5 })));
    expect_refused(addr, "alice", "web", Some(&elsewhere)).await;

    // Within the clock-skew allowance (30 s by default), a not-before is no reason to refuse.
    let almost = sign(
        k.signing(),
        &claims("alice", "web", json!({ "nbf": now + 5 })),
    );
    Client::join_with_token(addr, "alice", "web", Some(&almost)).await;
}

#[actix_web::test]
async fn a_relay_without_keys_refuses_to_start_unless_anonymous() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = deskbridge_relay::RelayHandle::spawn(listener, Config::default())
        .err()
        .expect("no keys, no anonymous: must not start");
    assert!(err.to_string().contains("keygen"), "{err}");
}

#[actix_web::test]
async fn revoking_a_token_closes_its_live_session_and_refuses_it_later() {
    let dir = tempfile::tempdir().unwrap();
    let revoked = dir.path().join("revoked");
    let k = keys("k1", 1);
    let relay = start_relay(Config {
        revoked_file: Some(revoked.clone()),
        ..secured_by(&k)
    });
    let stolen = mint(&k, "laptop", ClientMode::Desktop);
    let mut desktop = Client::connect(relay.addr()).await;
    desktop
        .authenticate("laptop", "desktop", Some(&stolen))
        .await;
    assert_eq!(desktop.next_event().await["event"], "welcome");
    let viewer_token = mint(&k, "laptop", ClientMode::Web);
    let mut web = Client::connect(relay.addr()).await;
    web.authenticate("laptop", "web", Some(&viewer_token)).await;
    web.expect_presence("online", 1).await;

    let stolen_claims: Claims = jsonwebtoken::dangerous::insecure_decode(&stolen)
        .unwrap()
        .claims;
    std::fs::write(&revoked, format!("# stolen\n{}\n", stolen_claims.jti)).unwrap();

    // The relay notices the edit within its poll interval (2 s) and closes the session.
    let error = desktop.next_named("error").await;
    assert_eq!(error["code"], "unauthorized");
    assert!(error["message"].as_str().unwrap().contains("revoked"));
    assert_eq!(desktop.expect_close().await, Some(CloseCode::Policy));
    web.expect_presence("offline", 1).await;
    expect_refused(relay.addr(), "laptop", "desktop", Some(&stolen)).await;
}

async fn ws_status(
    addr: std::net::SocketAddr,
    origin: Option<&str>,
    xff: Option<&str>,
) -> Result<Client, u16> {
    let mut request = awc::Client::new().ws(format!("ws://{addr}/ws"));
    if let Some(origin) = origin {
        request = request.origin(origin);
    }
    if let Some(xff) = xff {
        request = request.set_header("x-forwarded-for", xff);
    }
    match request.connect().await {
        Ok((_, framed)) => Ok(Client::from_framed(framed)),
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status.as_u16()),
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

#[actix_web::test]
async fn pages_from_other_origins_cannot_open_sessions() {
    let relay = start_relay(Config {
        allowed_origins: vec!["https://app.example.com".into()],
        ..test_config()
    });
    let addr = relay.addr();
    assert_eq!(
        ws_status(addr, Some("http://evil.example"), None)
            .await
            .err(),
        Some(403)
    );
    assert!(ws_status(addr, Some(&format!("http://{addr}")), None)
        .await
        .is_ok());
    assert!(ws_status(addr, Some("https://app.example.com"), None)
        .await
        .is_ok());
    assert!(
        ws_status(addr, None, None).await.is_ok(),
        "non-browser clients send no Origin"
    );
    let (_, metrics, _) = http_get(addr, "/metrics").await;
    assert!(
        metrics.contains(r#"deskbridge_limited_total{limit="origin"} 1"#),
        "{metrics}"
    );
}

#[actix_web::test]
async fn connections_are_limited_per_address_and_forwarded_addresses_only_from_trusted_proxies() {
    let relay = start_relay(Config {
        max_connections_per_address: 2,
        ..test_config()
    });
    let addr = relay.addr();
    let _a = ws_status(addr, None, None).await.unwrap();
    let _b = ws_status(addr, None, Some("198.51.100.1")).await.unwrap();
    // The header is not believed from an untrusted peer: still 127.0.0.1's third connection.
    assert_eq!(
        ws_status(addr, None, Some("198.51.100.2")).await.err(),
        Some(429)
    );

    let proxied = start_relay(Config {
        max_connections_per_address: 1,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..test_config()
    });
    let addr = proxied.addr();
    let _c = ws_status(addr, None, Some("198.51.100.1")).await.unwrap();
    let _d = ws_status(addr, None, Some("198.51.100.2")).await.unwrap();
    assert_eq!(
        ws_status(addr, None, Some("198.51.100.1")).await.err(),
        Some(429)
    );
    let (_, metrics, _) = http_get(addr, "/metrics").await;
    assert!(metrics.contains(r#"deskbridge_limited_total{limit="connections_per_address"} 1"#));
}

#[actix_web::test]
async fn the_total_connection_limit_answers_503_and_frees_slots() {
    let relay = start_relay(Config {
        max_connections: 2,
        ..test_config()
    });
    let addr = relay.addr();
    let a = ws_status(addr, None, None).await.unwrap();
    let _b = ws_status(addr, None, None).await.unwrap();
    assert_eq!(ws_status(addr, None, None).await.err(), Some(503));
    drop(a);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match ws_status(addr, None, None).await {
            Ok(_) => break,
            Err(503) if std::time::Instant::now() < deadline => {
                actix_web::rt::time::sleep(Duration::from_millis(50)).await
            }
            Err(status) => panic!("slot never freed: {status}"),
        }
    }
}

#[actix_web::test]
async fn a_flooding_session_is_rate_limited_then_closed_while_others_carry_on() {
    let relay = start_relay(Config {
        message_rate: 5,
        message_burst: 5,
        flood_refusals: 20,
        ..test_config()
    });
    let mut desktop = Client::join(relay.addr(), "calm", "desktop").await;
    let mut web = Client::join(relay.addr(), "calm", "web").await;
    web.expect_presence("online", 1).await;

    let mut flooder = Client::join(relay.addr(), "flood", "desktop").await;
    for _ in 0..40 {
        flooder.send(r#"{"event":"cpu","value":1}"#).await;
    }
    flooder.expect_error(ErrorCode::RateLimited).await;
    assert_eq!(flooder.expect_close().await, Some(CloseCode::Policy));

    desktop.send(r#"{"event":"cpu","value":2}"#).await;
    assert_eq!(web.next_named("cpu").await["value"], 2);
}

#[actix_web::test]
async fn beeps_to_one_desktop_are_limited_per_second() {
    let relay = start_relay(Config {
        commands_per_second: 2,
        ..test_config()
    });
    let mut desktop = Client::join(relay.addr(), "ears", "desktop").await;
    let mut a = Client::join(relay.addr(), "ears", "web").await;
    let mut b = Client::join(relay.addr(), "ears", "web").await;
    b.expect_presence("online", 2).await;
    // The budget is the desktop's, shared by its viewers.
    a.send(r#"{"event":"beep","id":"1"}"#).await;
    b.send(r#"{"event":"beep","id":"2"}"#).await;
    // Two connections, so either may arrive first.
    let mut ids = [
        desktop.next_named("beep").await["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        desktop.next_named("beep").await["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    ids.sort();
    assert_eq!(ids, ["1", "2"]);
    a.send(r#"{"event":"beep","id":"3"}"#).await;
    let error = a.expect_error(ErrorCode::RateLimited).await;
    assert!(error["message"].as_str().unwrap().contains("per second"));
}

#[actix_web::test]
async fn a_session_ends_when_its_token_expires_and_its_commands_stop_with_it() {
    let k = keys("k1", 1);
    let relay = start_relay(Config {
        clock_skew: Duration::ZERO,
        ..secured_by(&k)
    });
    let desktop_token = mint(&k, "brief", ClientMode::Desktop);
    let short = mint_for(&k, "brief", ClientMode::Web, Duration::from_secs(2));
    let mut desktop = Client::connect(relay.addr()).await;
    desktop
        .authenticate("brief", "desktop", Some(&desktop_token))
        .await;
    assert_eq!(desktop.next_event().await["event"], "welcome");
    let mut web = Client::connect(relay.addr()).await;
    web.authenticate("brief", "web", Some(&short)).await;
    assert_eq!(web.next_event().await["event"], "welcome");
    web.send(r#"{"event":"beep","id":"before"}"#).await;
    assert_eq!(desktop.next_named("beep").await["id"], "before");

    // JWT expiry has one-second resolution: the session ends within about 3 s of minting.
    let error = web.expect_error(ErrorCode::Unauthorized).await;
    assert!(
        error["message"].as_str().unwrap().contains("token expired"),
        "{error}"
    );
    assert_eq!(web.expect_close().await, Some(CloseCode::Policy));
    // The desktop (long-lived token) is still connected and hears of the viewer leaving.
    desktop.expect_presence("online", 0).await;
}
