//! One WebSocket connection to the relay, as an actor: authenticate, keep the link provably alive,
//! pass commands up to the [`Agent`] and reports down to the relay, then tell the agent how it
//! ended.
//!
//! A session never reconnects by itself. It lives exactly as long as its socket, so stopping the
//! actor drops the socket and nothing from an old connection can leak into the next one; the
//! agent decides when to dial again from the [`Ending`] it receives.
//!
//! Liveness: the agent pings every `ping_interval`, and any frame at all from the relay (pong,
//! ping, message) counts as a sign of life. A relay that stays silent for `idle_timeout` is
//! treated as dead even if the TCP connection looks open, which is what a half-open connection
//! through a NAT or a suspended laptop looks like.

use std::time::{Duration, Instant};

use actix::io::{SinkWrite, WriteHandler};
use actix::prelude::*;
use awc::error::WsProtocolError;
use awc::ws::{CloseCode, CloseReason, Codec, Frame, Message};
use bytes::Bytes;
use deskbridge_protocol::{ErrorCode, ErrorEvent, ServerMessage};
use futures_util::stream::{SplitSink, StreamExt};

use crate::agent::{Agent, BeepRequested, SessionEnded, SessionReady};
use crate::settings::Timing;

type Socket = actix_codec::Framed<awc::BoxedSocket, Codec>;
type WsSink = SplitSink<Socket, Message>;

/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Why a session ended; the agent picks the next delay from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The transport failed or went silent: reconnect with backoff.
    Lost(String),
    /// The relay closed the connection, with its close frame's reason if any.
    Closed(Option<String>),
    /// The relay sent an `error` that ends the connection (`replaced`, `unauthorized`, …).
    Refused(ErrorEvent),
    /// The agent itself closed it, on shutdown.
    Stopped,
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Lost(why) => f.write_str(why),
            Ending::Closed(Some(why)) => write!(f, "the relay closed the connection: {why}"),
            Ending::Closed(None) => f.write_str("the relay closed the connection"),
            Ending::Refused(e) => write!(
                f,
                "the relay ended the connection: {}: {}",
                e.code, e.message
            ),
            Ending::Stopped => f.write_str("the agent is stopping"),
        }
    }
}

/// A text frame for the relay.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Outgoing(pub String);

/// Close the connection cleanly (1000) and stop; sent on shutdown.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseSession;

/// The connection actor. See the module docs.
pub struct Session {
    generation: u64,
    agent: Addr<Agent>,
    sink: SinkWrite<Message, WsSink>,
    /// The `authentication` frame; taken when sent. Holds the token, so it is never logged.
    authentication: Option<String>,
    timing: Timing,
    opened: Instant,
    last_heard: Instant,
    welcomed: Option<Instant>,
    ending: Option<Ending>,
    closing: bool,
    pings: u64,
}

impl Session {
    /// Starts the actor on a freshly upgraded connection.
    pub fn start(
        socket: Socket,
        generation: u64,
        agent: Addr<Agent>,
        authentication: String,
        timing: Timing,
    ) -> Addr<Self> {
        Session::create(move |ctx| {
            let (sink, stream) = socket.split();
            ctx.add_stream(stream);
            let now = Instant::now();
            Session {
                generation,
                agent,
                sink: SinkWrite::new(sink, ctx),
                authentication: Some(authentication),
                timing,
                opened: now,
                last_heard: now,
                welcomed: None,
                ending: None,
                closing: false,
                pings: 0,
            }
        })
    }

    fn write(&mut self, message: Message) {
        // Refused only once closing has begun, when nothing more needs to go out.
        let _ = self.sink.write(message);
    }

    /// Records the first reason only: the error event that explains a close beats the close.
    fn note_ending(&mut self, ending: Ending) {
        if self.ending.is_none() {
            self.ending = Some(ending);
        }
    }

    /// Starts the closing handshake, with a deadline after which the socket is dropped anyway.
    fn close(&mut self, reason: Option<CloseReason>, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        self.closing = true;
        self.write(Message::Close(reason));
        self.sink.close();
        ctx.run_later(CLOSE_GRACE, |_, ctx| ctx.stop());
    }

    /// Called every `ping_interval`: gives up on a silent relay, otherwise pings it.
    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        let silent = self.last_heard.elapsed();
        if silent > self.timing.idle_timeout {
            let why = format!(
                "nothing heard from the relay for over {}",
                humantime::format_duration(self.timing.idle_timeout)
            );
            self.note_ending(Ending::Lost(why));
            ctx.stop();
            return;
        }
        if self.welcomed.is_none() && self.opened.elapsed() > self.timing.idle_timeout {
            self.note_ending(Ending::Lost(
                "the relay did not answer the authentication".into(),
            ));
            ctx.stop();
            return;
        }
        self.pings += 1;
        self.write(Message::Ping(Bytes::copy_from_slice(
            &self.pings.to_be_bytes(),
        )));
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        let message = match serde_json::from_str::<ServerMessage>(text) {
            Ok(message) => message,
            Err(e) => {
                // Most likely an event a newer relay added; nothing this agent can act on.
                log::debug!("ignoring a relay message this agent does not understand: {e}");
                return;
            }
        };
        match message {
            ServerMessage::Welcome(welcome) => {
                log::info!(
                    "connected to the relay as {} ({}, protocol {})",
                    welcome.client_id,
                    welcome.server,
                    welcome.protocol
                );
                self.welcomed = Some(Instant::now());
                self.agent.do_send(SessionReady {
                    generation: self.generation,
                });
            }
            ServerMessage::Beep(beep) => self.agent.do_send(BeepRequested {
                generation: self.generation,
                id: beep.id,
            }),
            ServerMessage::Error(error) => self.on_error(error, ctx),
            other => log::debug!("ignoring {:?} from the relay", kind(&other)),
        }
    }

    fn on_error(&mut self, error: ErrorEvent, ctx: &mut Context<Self>) {
        match error.code {
            // These end the connection; the relay closes it too, but there is no reason to wait.
            ErrorCode::Replaced
            | ErrorCode::Unauthorized
            | ErrorCode::AuthTimeout
            | ErrorCode::ShuttingDown
            | ErrorCode::Timeout
            | ErrorCode::TooLarge => {
                self.note_ending(Ending::Refused(error));
                self.close(Some(CloseCode::Normal.into()), ctx);
            }
            _ => log::warn!(
                "the relay refused a message from this agent: {}: {}",
                error.code,
                error.message
            ),
        }
    }
}

fn kind(message: &ServerMessage) -> &'static str {
    match message {
        ServerMessage::Welcome(_) => "welcome",
        ServerMessage::Presence(_) => "presence",
        ServerMessage::History(_) => "history",
        ServerMessage::Error(_) => "error",
        ServerMessage::Cpu(_) => "cpu",
        ServerMessage::Beep(_) => "beep",
        ServerMessage::BeepResult(_) => "beep_result",
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some(auth) = self.authentication.take() {
            self.write(Message::Text(auth.into()));
        }
        ctx.run_interval(self.timing.ping_interval, |session, ctx| {
            session.heartbeat(ctx)
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.agent.do_send(SessionEnded {
            generation: self.generation,
            ending: self
                .ending
                .take()
                .unwrap_or_else(|| Ending::Lost("the connection was dropped".into())),
            lived: self.welcomed.map(|at| at.elapsed()),
        });
    }
}

impl StreamHandler<Result<Frame, WsProtocolError>> for Session {
    fn handle(&mut self, item: Result<Frame, WsProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        let frame = match item {
            Ok(frame) => frame,
            Err(e) => {
                self.note_ending(Ending::Lost(format!("WebSocket protocol error: {e}")));
                ctx.stop();
                return;
            }
        };
        match frame {
            Frame::Text(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.on_text(text, ctx),
                Err(_) => log::debug!("ignoring a text frame that is not UTF-8"),
            },
            Frame::Ping(payload) => self.write(Message::Pong(payload)),
            Frame::Pong(_) => {}
            Frame::Close(reason) => {
                let why = reason.as_ref().map(|r| match &r.description {
                    Some(d) => format!("{} ({:?})", d, r.code),
                    None => format!("{:?}", r.code),
                });
                self.note_ending(Ending::Closed(why));
                // Echo the close, as the protocol asks, then let the writer finish and stop us.
                self.close(reason, ctx);
            }
            Frame::Binary(_) | Frame::Continuation(_) => {
                log::debug!("ignoring a binary or fragmented frame from the relay")
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        self.note_ending(Ending::Lost("the relay closed the connection".into()));
        ctx.stop();
    }
}

impl WriteHandler<WsProtocolError> for Session {
    fn error(&mut self, err: WsProtocolError, _: &mut Self::Context) -> Running {
        self.note_ending(Ending::Lost(format!("cannot write to the relay: {err}")));
        Running::Stop
    }
}

impl Handler<Outgoing> for Session {
    type Result = ();

    fn handle(&mut self, msg: Outgoing, _: &mut Self::Context) {
        self.write(Message::Text(msg.0.into()));
    }
}

impl Handler<CloseSession> for Session {
    type Result = ();

    fn handle(&mut self, _: CloseSession, ctx: &mut Self::Context) {
        self.note_ending(Ending::Stopped);
        self.close(
            Some(CloseReason {
                code: CloseCode::Normal,
                description: Some("agent stopping".into()),
            }),
            ctx,
        );
    }
}
