//! Frames built to hurt the relay, sent over raw sockets: a declared-huge frame is refused from its
//! header (before and after authentication, fragmented or not), reserved bits are a protocol error,
//! and floods of any frame kind — text just above the rate, binary, pings — end in a close, with one
//! `rate_limited` notice rather than one answer per frame.

use std::time::Duration;

use awc::ws::{CloseCode, Message};
use deskbridge_protocol::ErrorCode;
use deskbridge_relay::Config;
use deskbridge_testkit::raw::{frame_header, RawSocket, OP_CONTINUATION, OP_TEXT};
use deskbridge_testkit::{http_get, start_relay, test_config, Client, Received};

const FIN: u8 = 0x80;

fn limited(metrics: &str, limit: &str) -> u64 {
    let series = format!("deskbridge_limited_total{{limit=\"{limit}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// The declared length alone ends the connection: the test sends no payload, so a relay that waits
/// for the payload before comparing with the limit never answers.
#[actix_web::test]
async fn a_declared_huge_frame_is_refused_from_its_header_in_every_phase() {
    let relay = start_relay(test_config());
    let addr = relay.addr();
    let mut bystander = Client::join(addr, "calm", "web").await;

    // Before authentication: the issue's reproduction, 0x81 0xFF + 2^30 + a mask.
    let mut raw = RawSocket::connect(addr);
    raw.write_raw(&frame_header(FIN | OP_TEXT, 1 << 30))
        .unwrap();
    let (texts, code) = raw.read_until_close();
    assert_eq!(code, Some(1009), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("too_large")), "{texts:?}");

    // After authentication, a continuation that pushes a fragmented message past the limit.
    let mut raw = RawSocket::connect(addr);
    raw.frame(
        true,
        OP_TEXT,
        br#"{"event":"authentication","client_id":"frag","client_mode":"web"}"#,
    );
    raw.frame(false, OP_TEXT, &[b' '; 40 * 1024]);
    raw.write_raw(&frame_header(OP_CONTINUATION | FIN, 40 * 1024))
        .unwrap();
    let (texts, code) = raw.read_until_close();
    assert_eq!(code, Some(1009), "{texts:?}");
    assert!(texts[0].contains("welcome"), "{texts:?}");

    let (_, metrics, _) = http_get(addr, "/metrics").await;
    assert_eq!(limited(&metrics, "message_size"), 2, "{metrics}");
    // The bystander never noticed.
    bystander.send(r#"{"event":"beep"}"#).await;
    bystander.expect_error(ErrorCode::PeerOffline).await;
}

#[actix_web::test]
async fn reserved_bits_are_a_protocol_error_not_bad_utf8() {
    let relay = start_relay(test_config());
    let mut raw = RawSocket::connect(relay.addr());
    let payload = br#"{"event":"cpu","value":1}"#;
    let mut frame = frame_header(FIN | 0x40 | OP_TEXT, payload.len() as u64);
    let mask = [0x12, 0x34, 0x56, 0x78]; // the one frame_header writes
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    raw.write_raw(&frame).unwrap();
    let (_, code) = raw.read_until_close();
    assert_eq!(code, Some(1002));
}

/// Tight limits so floods end within a second or two.
fn strict() -> Config {
    Config {
        message_rate: 20,
        message_burst: 20,
        flood_refusals: 20,
        ..test_config()
    }
}

/// Reads until the close; returns how many error events of `code` came before it, and the close.
async fn count_until_close(client: &mut Client, code: ErrorCode) -> (usize, Option<CloseCode>) {
    let mut count = 0;
    loop {
        match client.recv_within(Duration::from_secs(15)).await {
            Some(Received::Text(text)) => {
                let event: serde_json::Value = serde_json::from_str(&text).unwrap();
                if event["event"] == "error" && event["code"] == code.as_str() {
                    count += 1;
                }
            }
            Some(Received::Closed(reason)) => return (count, reason.map(|r| r.code)),
            None => panic!("not closed within 15 s; {count} {code} errors"),
        }
    }
}

/// 40 messages a second against a limit of 20: one in two gets through, which used to reset the
/// strike count, so such a flood was never closed.
#[actix_web::test]
async fn a_flood_just_above_the_rate_is_closed_and_told_once() {
    let relay = start_relay(strict());
    let mut flooder = Client::join(relay.addr(), "flood", "desktop").await;
    let mut ticks = tokio::time::interval(Duration::from_millis(25));
    let mut notices = 0;
    // At most 15 s of flooding; the relay should close it within a few.
    for _ in 0..600 {
        ticks.tick().await;
        match flooder.recv_within(Duration::from_millis(1)).await {
            Some(Received::Closed(reason)) => {
                assert_eq!(reason.map(|r| r.code), Some(CloseCode::Policy));
                // One notice for the window, one with the close.
                assert!(notices <= 2, "{notices} rate_limited errors");
                return;
            }
            Some(Received::Text(text)) if text.contains("rate_limited") => notices += 1,
            _ => {}
        }
        flooder.send(r#"{"event":"cpu","value":1}"#).await;
    }
    panic!("a flood at twice the rate was not closed in 15 s ({notices} notices)");
}

#[actix_web::test]
async fn binary_frames_and_pings_count_against_the_rate() {
    let relay = start_relay(strict());
    let addr = relay.addr();

    let mut pinger = Client::join(addr, "pinger", "web").await;
    for _ in 0..200 {
        pinger
            .send_message(Message::Ping(b"p".to_vec().into()))
            .await;
    }
    let (_, close) = count_until_close(&mut pinger, ErrorCode::RateLimited).await;
    assert_eq!(close, Some(CloseCode::Policy));

    let mut binary = Client::join(addr, "binary", "web").await;
    for _ in 0..200 {
        binary
            .send_message(Message::Binary(b"x".to_vec().into()))
            .await;
    }
    let (bad, close) = count_until_close(&mut binary, ErrorCode::BadMessage).await;
    assert_eq!(close, Some(CloseCode::Policy));
    assert!(
        bad <= 21,
        "{bad} bad_message answers: one per admitted frame at most"
    );

    let (_, metrics, _) = http_get(addr, "/metrics").await;
    assert!(limited(&metrics, "message_rate") >= 40, "{metrics}");
}
