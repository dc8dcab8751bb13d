//! Shared helpers for the relay's integration tests: a real relay on an ephemeral loopback port
//! and a real WebSocket client (awc) that reads JSON events with deadlines.

#![allow(dead_code)] // each test binary uses a different subset

pub mod process;
pub mod raw;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::web::Bytes;
use awc::ws::{self, CloseCode, Frame, Message};
use deskbridge_protocol::{ErrorCode, ServerMessage};
use deskbridge_relay::{Config, RelayHandle};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(5);

/// Anonymous clients and rate limits out of the way; tests of a limit set it themselves.
pub fn test_config() -> Config {
    Config {
        allow_anonymous: true,
        message_rate: 10_000,
        message_burst: 10_000,
        commands_per_second: 10_000,
        ..Config::default()
    }
}

pub fn start_relay(config: Config) -> RelayHandle {
    let _ = env_logger::builder().is_test(true).try_init();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    RelayHandle::spawn(listener, config).expect("relay starts")
}

type Framed = actix_codec::Framed<awc::BoxedSocket, ws::Codec>;

/// What a client saw when it tried to read.
#[derive(Debug)]
pub enum Received {
    Text(String),
    Closed(Option<ws::CloseReason>),
}

pub struct Client {
    framed: Framed,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (_, framed) = awc::Client::new()
            .ws(format!("ws://{addr}/ws"))
            .max_frame_size(1 << 20)
            .connect()
            .await
            .expect("websocket handshake");
        Self { framed }
    }

    pub fn from_framed(framed: Framed) -> Self {
        Self { framed }
    }

    /// Connects and authenticates, consuming `welcome`.
    pub async fn join(addr: SocketAddr, id: &str, mode: &str) -> Self {
        let mut client = Self::connect(addr).await;
        client
            .send(&format!(
                r#"{{"event":"authentication","client_id":"{id}","client_mode":"{mode}"}}"#
            ))
            .await;
        let welcome = client.next_event().await;
        assert_eq!(welcome["event"], "welcome", "{welcome}");
        assert_eq!(welcome["client_id"], id);
        assert_eq!(welcome["client_mode"], mode);
        client
    }

    pub async fn send(&mut self, text: &str) {
        self.framed
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("send text");
    }

    pub async fn send_message(&mut self, message: Message) {
        self.framed.send(message).await.expect("send frame");
    }

    /// Next text frame or close, answering pings on the way; panics after `WAIT`.
    pub async fn recv(&mut self) -> Received {
        self.recv_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("nothing received within {WAIT:?}"))
    }

    /// Like `recv`, but `None` if nothing arrives within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.framed.next())
                .await
                .ok()?;
            match frame {
                None => return Some(Received::Closed(None)),
                Some(Err(e)) => panic!("websocket error: {e}"),
                Some(Ok(Frame::Text(bytes))) => {
                    return Some(Received::Text(String::from_utf8(bytes.to_vec()).unwrap()))
                }
                Some(Ok(Frame::Close(reason))) => return Some(Received::Closed(reason)),
                Some(Ok(Frame::Ping(payload))) => {
                    let _ = self.framed.send(Message::Pong(payload)).await;
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next JSON event; panics on close or timeout.
    pub async fn next_event(&mut self) -> Value {
        match self.recv().await {
            Received::Text(text) => serde_json::from_str(&text).expect("relay sends JSON"),
            Received::Closed(reason) => panic!("closed while waiting for an event: {reason:?}"),
        }
    }

    /// The next event named `name`, skipping others (presence updates, cpu samples…).
    pub async fn next_named(&mut self, name: &str) -> Value {
        loop {
            let event = self.next_event().await;
            if event["event"] == name {
                return event;
            }
        }
    }

    /// The next text frame verbatim, for byte-for-byte forwarding checks.
    pub async fn next_text(&mut self) -> String {
        match self.recv().await {
            Received::Text(text) => text,
            Received::Closed(reason) => panic!("closed: {reason:?}"),
        }
    }

    /// The next frame whose event is `name`, verbatim, for byte-for-byte forwarding checks.
    pub async fn next_raw(&mut self, name: &str) -> String {
        loop {
            let text = self.next_text().await;
            let event: Value = serde_json::from_str(&text).expect("relay sends JSON");
            if event["event"] == name {
                return text;
            }
        }
    }

    /// Waits for an `error` event with `code` (skipping other events).
    pub async fn expect_error(&mut self, code: ErrorCode) -> Value {
        let error = self.next_named("error").await;
        assert_eq!(error["code"], code.as_str(), "{error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        error
    }

    /// Waits for the close frame and returns its code, skipping text frames.
    pub async fn expect_close(&mut self) -> Option<CloseCode> {
        loop {
            match self.recv().await {
                Received::Text(_) => continue,
                Received::Closed(reason) => return reason.map(|r| r.code),
            }
        }
    }

    /// Waits for a presence event matching `desktop` and `viewers`.
    pub async fn expect_presence(&mut self, desktop: &str, viewers: u64) -> Value {
        loop {
            let presence = self.next_named("presence").await;
            if presence["desktop"] == desktop && presence["viewers"] == viewers {
                return presence;
            }
        }
    }

    /// Asserts nothing but presence/history arrives within `wait`.
    pub async fn expect_quiet(&mut self, wait: Duration) {
        if let Some(Received::Text(text)) = self.recv_within(wait).await {
            panic!("expected nothing, got {text}");
        }
    }

    pub fn into_inner(self) -> Framed {
        self.framed
    }
}

/// Decodes an event with the protocol crate, to check it is a well-formed v1 message.
pub fn decode(value: &Value) -> ServerMessage {
    serde_json::from_value(value.clone()).expect("a v1 server message")
}

pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, awc::http::header::HeaderMap) {
    let mut response = awc::Client::new()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .expect("http request");
    let body: Bytes = response.body().await.expect("body");
    (
        response.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
        response.headers().clone(),
    )
}
