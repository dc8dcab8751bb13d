//! The 2018 prototype's own `web.html`, opened from disk as its article does: the browser sends
//! `Origin: null`. Under `--allow-anonymous` it connects and its messages work unchanged; with
//! tokens required, `null` is refused with 403 (docs/security.md says why).

use awc::ws::CloseCode;
use deskbridge_testkit::tokens::{keys, secured};
use deskbridge_testkit::{http_get, start_relay, test_config, Client};

/// Opens `/ws` as a page opened from disk would; the handshake's status if refused.
async fn connect_from_disk(addr: std::net::SocketAddr) -> Result<Client, u16> {
    let request = awc::Client::new()
        .ws(format!("ws://{addr}/ws"))
        .origin("null");
    match request.connect().await {
        Ok((_, framed)) => Ok(Client::from_framed(framed)),
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status.as_u16()),
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

#[actix_web::test]
async fn the_prototype_page_from_disk_works_under_allow_anonymous() {
    let relay = start_relay(test_config());
    let addr = relay.addr();
    let mut desktop = Client::connect(addr).await;
    desktop
        .send(r#"{"event": "authentication", "client_id": "1", "client_mode": "desktop"}"#)
        .await;
    assert_eq!(desktop.next_event().await["event"], "welcome");

    let mut page = connect_from_disk(addr)
        .await
        .unwrap_or_else(|status| panic!("the page's handshake was refused with {status}"));
    // Exactly what the prototype's web.html sends.
    page.send(r#"{"event": "authentication", "client_id": "1", "client_mode": "web"}"#)
        .await;
    let welcome = page.next_event().await;
    assert_eq!(welcome["event"], "welcome", "{welcome}");
    page.expect_presence("online", 1).await;
    desktop.send(r#"{"event": "cpu", "value": 7.5}"#).await;
    assert_eq!(page.next_named("cpu").await["value"], 7.5);
    page.send(r#"{"event": "beep"}"#).await;
    assert_eq!(desktop.next_named("beep").await["event"], "beep");
}

#[actix_web::test]
async fn a_null_origin_is_refused_when_tokens_are_required() {
    let relay = start_relay(secured(test_config(), &keys("k1", 7)));
    let addr = relay.addr();
    assert_eq!(connect_from_disk(addr).await.err(), Some(403));
    let (_, metrics, _) = http_get(addr, "/metrics").await;
    assert!(
        metrics.contains(r#"deskbridge_limited_total{limit="origin"} 1"#),
        "{metrics}"
    );
    // The refusal is about the page's origin only: a client without one still reaches the
    // token check (and is refused there, with 1008, for having no token).
    let mut agent = Client::connect(addr).await;
    agent
        .send(r#"{"event": "authentication", "client_id": "1", "client_mode": "desktop"}"#)
        .await;
    assert_eq!(agent.next_named("error").await["code"], "unauthorized");
    assert_eq!(agent.expect_close().await, Some(CloseCode::Policy));
}
