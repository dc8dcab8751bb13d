//! The session actor without a network: its socket is an in-memory actix-ws pair — client frames
//! go into the request's payload, and what the session's writer sends is read off the upgrade
//! response's body — wired to a real matchmaker. Authentication, pairing, relaying, the rate
//! limit and the close codes, read frame by frame.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor as _;
use actix_codec::{Decoder as _, Encoder as _};
use actix_http::ws::{Codec, Frame, Message};
use actix_web::body::MessageBody as _;
use actix_web::error::PayloadError;
use actix_web::{dev, test::TestRequest, web, FromRequest as _};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::WsSession;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::limits::connections::ConnectionLimiter;
use crate::matchmaker::Matchmaker;
use crate::metrics::Metrics;
use crate::state::RelayState;

/// Within this, what the session sends has arrived.
const WITHIN: Duration = Duration::from_secs(3);

/// A relay's shared state without an HTTP server: a real matchmaker, anonymous clients allowed.
fn relay(config: Config) -> (web::Data<RelayState>, watch::Sender<bool>) {
    let metrics = Arc::new(Metrics::new());
    let auth =
        Authenticator::new(None, config.clock_skew, true, None, None).expect("anonymous auth");
    let (shutdown, shutdown_rx) = watch::channel(false);
    let state = RelayState {
        matchmaker: Matchmaker::new(&config, metrics.clone()).start(),
        connections: ConnectionLimiter::new(config.max_connections, 1000),
        config,
        metrics,
        cluster_metrics: None,
        shutdown: shutdown_rx,
        started: Instant::now(),
        auth: Arc::new(auth),
        signin: Default::default(),
        store: crate::store::Store::disabled(),
    };
    (web::Data::new(state), shutdown)
}

type Body = actix_web::body::BoxBody;

/// A client of one session, over memory.
struct Socket {
    input: mpsc::UnboundedSender<Result<Bytes, PayloadError>>,
    output: Body,
    codec: Codec,
    read: BytesMut,
}

impl Socket {
    async fn open(state: &web::Data<RelayState>) -> Self {
        let (input, rx) = mpsc::unbounded_channel();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(stream);
        let req = TestRequest::get()
            .insert_header(("upgrade", "websocket"))
            .insert_header(("connection", "upgrade"))
            .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
            .insert_header(("sec-websocket-version", "13"))
            .to_http_request();
        let body = web::Payload::from_request(&req, &mut dev::Payload::from(stream))
            .await
            .expect("a payload");
        let slot = state.connections.acquire(None).expect("a connection slot");
        // The same path as `/ws` after its admission checks.
        let response = WsSession::accept(&req, body, state.clone(), slot)
            .await
            .expect("an upgrade");
        Self {
            input,
            output: response.into_body(),
            codec: Codec::new().client_mode(),
            read: BytesMut::new(),
        }
    }

    fn send(&mut self, message: Message) {
        let mut frame = BytesMut::new();
        self.codec.encode(message, &mut frame).expect("encode");
        let _ = self.input.send(Ok(frame.freeze()));
    }

    fn send_text(&mut self, text: &str) {
        self.send(Message::Text(text.to_owned().into()));
    }

    /// The next frame the session wrote, or `None` once its side is closed.
    async fn next_frame(&mut self) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            if let Some(frame) = self.codec.decode(&mut self.read).expect("valid frames") {
                return Some(frame);
            }
            let chunk = tokio::time::timeout_at(
                deadline,
                futures_util::future::poll_fn(|cx| Pin::new(&mut self.output).poll_next(cx)),
            )
            .await
            .expect("the session writes in time");
            match chunk {
                Some(Ok(bytes)) => self.read.extend_from_slice(&bytes),
                Some(Err(e)) => panic!("the body failed: {e}"),
                None => return None,
            }
        }
    }

    /// The next JSON event, skipping pings.
    async fn next_event(&mut self) -> Value {
        loop {
            match self.next_frame().await {
                Some(Frame::Text(bytes)) => return serde_json::from_slice(&bytes).expect("JSON"),
                Some(Frame::Ping(_)) => {}
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    async fn next_named(&mut self, name: &str) -> Value {
        loop {
            let event = self.next_event().await;
            if event["event"] == name {
                return event;
            }
        }
    }

    /// Reads past events to the close frame; its code.
    async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.next_frame().await {
                Some(Frame::Close(reason)) => return reason.map(|r| r.code.into()),
                Some(_) => {}
                None => return None,
            }
        }
    }

    async fn join(state: &web::Data<RelayState>, id: &str, mode: &str) -> Self {
        let mut socket = Self::open(state).await;
        socket.send_text(&format!(
            r#"{{"event":"authentication","client_id":"{id}","client_mode":"{mode}"}}"#
        ));
        assert_eq!(socket.next_event().await["event"], "welcome");
        socket
    }
}

#[actix_web::test]
async fn nothing_but_authentication_is_accepted_first_and_a_pair_relays_both_ways() {
    let (state, _shutdown) = relay(Config::default());
    let mut early = Socket::open(&state).await;
    early.send_text(r#"{"event":"cpu","value":1}"#);
    assert_eq!(early.next_named("error").await["code"], "auth_required");

    let mut desktop = Socket::join(&state, "mem", "desktop").await;
    let mut viewer = Socket::join(&state, "mem", "web").await;
    assert_eq!(viewer.next_named("presence").await["desktop"], "online");
    let cpu = r#"{"event":"cpu","value":42}"#;
    desktop.send_text(cpu);
    // The desktop's original bytes, not a re-encoding.
    loop {
        if let Some(Frame::Text(bytes)) = viewer.next_frame().await {
            if bytes.as_ref() == cpu.as_bytes() {
                break;
            }
        }
    }
    viewer.send_text(r#"{"event":"beep","id":"b1"}"#);
    assert_eq!(desktop.next_named("beep").await["id"], "b1");
    // A viewer may not send telemetry.
    viewer.send_text(cpu);
    assert_eq!(viewer.next_named("error").await["code"], "not_allowed");
}

#[actix_web::test]
async fn a_flooding_session_is_told_once_then_closed_with_1008() {
    let (state, _shutdown) = relay(Config {
        message_rate: 5,
        message_burst: 5,
        flood_refusals: 10,
        ..Config::default()
    });
    let mut flooder = Socket::join(&state, "flood", "desktop").await;
    for _ in 0..40 {
        flooder.send(Message::Ping(Bytes::from_static(b"p")));
    }
    let mut notices = 0;
    let code = loop {
        match flooder.next_frame().await {
            Some(Frame::Text(text)) if text.as_ref().windows(12).any(|w| w == b"rate_limited") => {
                notices += 1
            }
            Some(Frame::Close(reason)) => break reason.map(|r| u16::from(r.code)),
            Some(_) => {}
            None => break None,
        }
    };
    assert_eq!(code, Some(1008));
    assert!(notices <= 2, "{notices} notices");
}

#[actix_web::test]
async fn a_declared_huge_frame_is_too_large_before_its_payload() {
    let (state, _shutdown) = relay(Config::default());
    let mut socket = Socket::open(&state).await;
    // The header alone: a 1 GiB text frame.
    let mut header = vec![0x81, 0xff];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    let _ = socket.input.send(Ok(Bytes::from(header)));
    assert_eq!(socket.close_code().await, Some(1009));
}

#[actix_web::test]
async fn on_shutdown_every_session_is_told_and_closed_with_1001() {
    let (state, shutdown) = relay(Config::default());
    let mut joined = Socket::join(&state, "bye", "web").await;
    let mut unauthenticated = Socket::open(&state).await;
    shutdown.send(true).expect("sessions watch the flag");
    for socket in [&mut joined, &mut unauthenticated] {
        assert_eq!(socket.next_named("error").await["code"], "shutting_down");
        assert_eq!(socket.close_code().await, Some(1001));
    }
}
