//! Hostile and broken input against a real relay: every case gets its error or close code, and a
//! pair on the same relay keeps exchanging messages throughout.

use actix_http::ws::Item;
use awc::ws::{CloseCode, Message};
use deskbridge_protocol::ErrorCode;
use deskbridge_relay::Config;
use deskbridge_testkit::raw::{RawSocket, OP_CONTINUATION, OP_TEXT};
use deskbridge_testkit::{start_relay, test_config, Client};

/// A desktop and a viewer that must keep working while others misbehave.
struct Bystanders {
    desktop: Client,
    web: Client,
    round: u32,
}

impl Bystanders {
    async fn join(addr: std::net::SocketAddr) -> Self {
        let desktop = Client::join(addr, "bystander", "desktop").await;
        let mut web = Client::join(addr, "bystander", "web").await;
        web.expect_presence("online", 1).await;
        Self {
            desktop,
            web,
            round: 0,
        }
    }

    async fn still_exchange(&mut self) {
        self.round += 1;
        let value = self.round % 100;
        self.desktop
            .send(&format!(r#"{{"event":"cpu","value":{value}}}"#))
            .await;
        assert_eq!(self.web.next_named("cpu").await["value"], value);
        let id = format!("r{}", self.round);
        self.web
            .send(&format!(r#"{{"event":"beep","id":"{id}"}}"#))
            .await;
        assert_eq!(self.desktop.next_named("beep").await["id"], id.as_str());
    }
}

#[actix_web::test]
async fn each_bad_message_gets_its_error_and_the_session_stays_usable() {
    let relay = start_relay(test_config());
    let mut bystanders = Bystanders::join(relay.addr()).await;

    // Before authenticating.
    let mut fresh = Client::connect(relay.addr()).await;
    fresh.send(r#"{"event":"cpu","value":1}"#).await;
    fresh.expect_error(ErrorCode::AuthRequired).await;
    fresh.send("{").await;
    fresh.expect_error(ErrorCode::BadMessage).await;
    for bad_id in ["", "a/b", "..", "ünï", &"x".repeat(65)] {
        fresh
            .send(&format!(
                r#"{{"event":"authentication","client_id":"{bad_id}","client_mode":"web"}}"#
            ))
            .await;
        fresh.expect_error(ErrorCode::BadMessage).await;
    }
    bystanders.still_exchange().await;

    let mut web = Client::join(relay.addr(), "rude", "web").await;
    let mut desktop = Client::join(relay.addr(), "rude", "desktop").await;
    let table: Vec<(bool, &str, ErrorCode)> = vec![
        (true, "not json at all", ErrorCode::BadMessage),
        (true, "[1,2,3]", ErrorCode::BadMessage),
        (true, r#"{"no_event":1}"#, ErrorCode::BadMessage),
        (true, r#"{"event":"reboot"}"#, ErrorCode::UnknownEvent),
        (true, r#"{"event":"cpu","value":3}"#, ErrorCode::NotAllowed),
        (false, r#"{"event":"beep"}"#, ErrorCode::NotAllowed),
        (
            false,
            r#"{"event":"cpu","value":"NaN"}"#,
            ErrorCode::BadMessage,
        ),
        (
            false,
            r#"{"event":"cpu","value":1e400}"#,
            ErrorCode::BadMessage,
        ),
        (
            false,
            r#"{"event":"cpu","value":101}"#,
            ErrorCode::BadMessage,
        ),
        (
            true,
            r#"{"event":"authentication","client_id":"rude","client_mode":"web"}"#,
            ErrorCode::NotAllowed,
        ),
    ];
    for (from_web, text, code) in table {
        let client = if from_web { &mut web } else { &mut desktop };
        client.send(text).await;
        client.expect_error(code).await;
        bystanders.still_exchange().await;
    }
    let many_cores = format!(
        r#"{{"event":"cpu","value":1,"cores":[{}]}}"#,
        vec!["1"; 10_000].join(",")
    );
    desktop.send(&many_cores).await;
    desktop.expect_error(ErrorCode::BadMessage).await;
    let deep = format!(
        r#"{{"event":"cpu","value":{}1{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    desktop.send(&deep).await;
    desktop.expect_error(ErrorCode::BadMessage).await;

    // Binary frames are refused, but the session lives on.
    web.send_message(Message::Binary(vec![1, 2, 3].into()))
        .await;
    web.expect_error(ErrorCode::BadMessage).await;

    // After all that, the rude pair itself still works.
    desktop.send(r#"{"event":"cpu","value":9}"#).await;
    assert_eq!(web.next_named("cpu").await["value"], 9);
    bystanders.still_exchange().await;
}

#[actix_web::test]
async fn an_oversized_message_closes_with_1009() {
    let relay = start_relay(Config {
        max_message_size: 4096,
        ..test_config()
    });
    let mut bystanders = Bystanders::join(relay.addr()).await;
    let mut big = Client::join(relay.addr(), "big", "desktop").await;
    let padding = "x".repeat(5000);
    big.send(&format!(r#"{{"event":"cpu","value":1,"pad":"{padding}"}}"#))
        .await;
    big.expect_error(ErrorCode::TooLarge).await;
    assert_eq!(big.expect_close().await, Some(CloseCode::Size));
    bystanders.still_exchange().await;
}

#[actix_web::test]
async fn a_message_fragmented_into_continuations_is_reassembled() {
    let relay = start_relay(test_config());
    let mut desktop = Client::join(relay.addr(), "frag", "desktop").await;
    let mut web = Client::join(relay.addr(), "frag", "web").await;
    web.expect_presence("online", 1).await;
    let whole = r#"{"event":"cpu","value":55.5,"cores":[50,61]}"#;
    let (a, rest) = whole.split_at(10);
    let (b, c) = rest.split_at(15);
    desktop
        .send_message(Message::Continuation(Item::FirstText(
            a.as_bytes().to_vec().into(),
        )))
        .await;
    desktop
        .send_message(Message::Continuation(Item::Continue(
            b.as_bytes().to_vec().into(),
        )))
        .await;
    desktop
        .send_message(Message::Continuation(Item::Last(
            c.as_bytes().to_vec().into(),
        )))
        .await;
    assert_eq!(web.next_raw("cpu").await, whole);
}

#[actix_web::test]
async fn a_fragmented_message_over_the_limit_closes_with_1009() {
    let relay = start_relay(Config {
        max_message_size: 2048,
        ..test_config()
    });
    let mut bystanders = Bystanders::join(relay.addr()).await;
    let mut raw = RawSocket::connect(relay.addr());
    let chunk = vec![b' '; 1000];
    raw.frame(false, OP_TEXT, &chunk);
    raw.frame(false, OP_CONTINUATION, &chunk);
    raw.frame(false, OP_CONTINUATION, &chunk);
    raw.frame(true, OP_CONTINUATION, b"{}");
    let (texts, code) = raw.read_until_close();
    assert!(texts.iter().any(|t| t.contains("too_large")), "{texts:?}");
    assert_eq!(code, Some(1009));
    bystanders.still_exchange().await;
}

#[actix_web::test]
async fn text_that_is_not_utf8_closes_with_1007() {
    let relay = start_relay(test_config());
    let mut bystanders = Bystanders::join(relay.addr()).await;
    let mut raw = RawSocket::connect(relay.addr());
    raw.frame(true, OP_TEXT, b"{\"event\":\"cpu\",\"value\":\xff\xfe}");
    let (texts, code) = raw.read_until_close();
    assert!(texts.iter().any(|t| t.contains("bad_message")), "{texts:?}");
    assert_eq!(code, Some(1007));
    bystanders.still_exchange().await;
}

#[actix_web::test]
async fn a_huge_field_is_quoted_in_64_bytes_not_echoed_whole() {
    let relay = start_relay(test_config());
    let mut client = Client::connect(relay.addr()).await;
    let huge = "m".repeat(60_000);
    client
        .send(&format!(
            r#"{{"event":"authentication","client_id":"a","client_mode":"{huge}"}}"#
        ))
        .await;
    let error = client.expect_error(ErrorCode::BadMessage).await;
    let message = error["message"].as_str().unwrap();
    assert!(message.len() <= 300, "{} bytes echoed", message.len());
    assert!(
        message.contains("client_mode") || message.contains("variant"),
        "{message}"
    );
}
