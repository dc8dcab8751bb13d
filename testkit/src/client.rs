//! A real WebSocket client (awc) that plays a desktop or a viewer: it authenticates, reads events
//! with deadlines, answers the relay's pings on the way, and keeps what it saw for failure
//! messages. Must run inside an actix system (`#[actix_web::test]`, `#[actix_rt::test]`).

use std::net::SocketAddr;
use std::time::Duration;

use awc::ws::{self, CloseCode, Frame, Message};
use bytes::Bytes;
use deskbridge_protocol::{DesktopState, ErrorCode, ServerMessage};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::time::Instant;

use crate::relay::{ws_url, WAIT};

type Framed = actix_codec::Framed<awc::BoxedSocket, ws::Codec>;

/// What a client saw when it tried to read.
#[derive(Debug)]
pub enum Received {
    Text(String),
    Closed(Option<ws::CloseReason>),
}

pub struct Client {
    framed: Framed,
    /// Every text frame received so far, for failure messages.
    pub seen: Vec<String>,
}

impl Client {
    /// Opens `ws://ADDR/ws` without authenticating.
    pub async fn connect(addr: SocketAddr) -> Self {
        let (_, framed) = awc::Client::new()
            .ws(ws_url(addr))
            .max_frame_size(1 << 20)
            .connect()
            .await
            .expect("websocket handshake");
        Self::from_framed(framed)
    }

    /// Opens `ws://ADDR/ws` with extra handshake headers (a `Cookie`, an `Origin`), without
    /// authenticating.
    pub async fn connect_with_headers(addr: SocketAddr, headers: &[(&str, &str)]) -> Self {
        let mut request = awc::Client::new().ws(ws_url(addr)).max_frame_size(1 << 20);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (_, framed) = request.connect().await.expect("websocket handshake");
        Self::from_framed(framed)
    }

    /// Wraps a connection made some other way (TLS, custom headers).
    pub fn from_framed(framed: Framed) -> Self {
        Self {
            framed,
            seen: Vec::new(),
        }
    }

    /// Connects and authenticates anonymously as `id` in `mode`, consuming `welcome`.
    pub async fn join(addr: SocketAddr, id: &str, mode: &str) -> Self {
        Self::join_with_token(addr, id, mode, None).await
    }

    /// Connects and authenticates as `id` in `mode`, presenting `token` if given, consuming
    /// `welcome`.
    pub async fn join_with_token(
        addr: SocketAddr,
        id: &str,
        mode: &str,
        token: Option<&str>,
    ) -> Self {
        let mut client = Self::connect(addr).await;
        client.authenticate(id, mode, token).await;
        let welcome = client.next_event().await;
        assert_eq!(welcome["event"], "welcome", "{welcome}");
        assert_eq!(welcome["client_id"], id);
        assert_eq!(welcome["client_mode"], mode);
        client
    }

    /// Sends `authentication` for `id` in `mode`, with `token` if given.
    pub async fn authenticate(&mut self, id: &str, mode: &str, token: Option<&str>) {
        let token = token.map_or(String::new(), |t| format!(r#","token":"{t}""#));
        self.send(&format!(
            r#"{{"event":"authentication","client_id":"{id}","client_mode":"{mode}"{token}}}"#
        ))
        .await;
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
        self.recv_until(Instant::now() + wait).await
    }

    /// Like `recv`, but `None` if nothing arrives by `deadline`.
    pub async fn recv_until(&mut self, deadline: Instant) -> Option<Received> {
        loop {
            let frame = tokio::time::timeout_at(deadline, self.framed.next())
                .await
                .ok()?;
            match frame {
                None => return Some(Received::Closed(None)),
                Some(Err(e)) => panic!("websocket error: {e}; seen: {:#?}", self.seen),
                Some(Ok(Frame::Text(bytes))) => {
                    let text = String::from_utf8(bytes.to_vec()).expect("utf-8 text");
                    self.seen.push(text.clone());
                    return Some(Received::Text(text));
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

    /// The next protocol message by `deadline`, decoded as the protocol crate's v1 type; panics
    /// on close or on a message that is not v1.
    pub async fn next_message(&mut self, deadline: Instant) -> Option<ServerMessage> {
        match self.recv_until(deadline).await? {
            Received::Text(text) => Some(
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("not a v1 server message {text}: {e}")),
            ),
            Received::Closed(reason) => {
                panic!(
                    "the relay closed the client ({reason:?}); seen: {:#?}",
                    self.seen
                )
            }
        }
    }

    /// Waits for a message that `pick` accepts, skipping others; panics at the deadline with
    /// everything seen.
    pub async fn expect<T>(
        &mut self,
        what: &str,
        within: Duration,
        mut pick: impl FnMut(&ServerMessage) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        while let Some(message) = self.next_message(deadline).await {
            if let Some(found) = pick(&message) {
                return found;
            }
        }
        panic!(
            "saw no {what} within {within:?}; saw:\n{}",
            self.seen.join("\n")
        )
    }

    /// Waits for `presence` with the desktop in `state`.
    pub async fn expect_desktop(&mut self, state: DesktopState, within: Duration) {
        self.expect(&format!("presence {state:?}"), within, |m| match m {
            ServerMessage::Presence(p) if p.desktop == state => Some(()),
            _ => None,
        })
        .await
    }

    /// Collects messages for `window`; used only to check that something does *not* happen.
    pub async fn collect_for(&mut self, window: Duration) -> Vec<ServerMessage> {
        let deadline = Instant::now() + window;
        let mut got = Vec::new();
        while let Some(m) = self.next_message(deadline).await {
            got.push(m);
        }
        got
    }

    /// Waits for an `error` event with `code` (skipping other events).
    pub async fn expect_error(&mut self, code: ErrorCode) -> Value {
        let error = self.next_named("error").await;
        assert_eq!(error["code"], code.as_str(), "{error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        error
    }

    /// Leaves as the agent does: `going_away` with `reason`, a normal close frame, then waits
    /// (at most [`WAIT`]) for the relay's close. Dropping the client right after sending would
    /// race: with the relay's frames still unread, the kernel answers the close with a reset,
    /// which may discard the `going_away` before the relay reads it.
    pub async fn go_away(&mut self, reason: &str) {
        self.send(&format!(r#"{{"event":"going_away","reason":"{reason}"}}"#))
            .await;
        self.send_message(Message::Close(Some(CloseCode::Normal.into())))
            .await;
        self.expect_close_within(WAIT).await;
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

    /// Waits for the close frame, skipping text frames; panics if it does not come within `within`.
    pub async fn expect_close_within(&mut self, within: Duration) -> Option<CloseCode> {
        let deadline = Instant::now() + within;
        loop {
            match self.recv_until(deadline).await {
                Some(Received::Text(_)) => continue,
                Some(Received::Closed(reason)) => return reason.map(|r| r.code),
                None => panic!(
                    "not closed within {within:?}; seen:\n{}",
                    self.seen.join("\n")
                ),
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

    /// Asserts no text frame arrives within `wait`.
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

/// A plain HTTP GET against the relay: status, body and headers.
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
