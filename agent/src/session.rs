//! One WebSocket connection to the relay, as an actor: authenticate, keep the link provably alive,
//! pass commands up to its supervisor and reports down to the relay, then tell the supervisor how
//! it ended.
//!
//! A session reports through one message type, [`SessionEvent`], sent to a
//! `Recipient<SessionEvent>`: it does not know which actor supervises it (the agent, or a test),
//! so this module imports nothing from the agent and can be tested on its own.
//!
//! A session never reconnects by itself. It lives exactly as long as its socket, so stopping the
//! actor drops the socket and nothing from an old connection can leak into the next one; the
//! supervisor decides when to dial again from the [`Ending`] it receives.
//!
//! Liveness: any frame at all from the relay (pong, ping, message) counts as a sign of life. The
//! agent pings only when it has heard nothing for `ping_interval`, and a relay that stays silent
//! for `idle_timeout` is treated as dead even if the TCP connection looks open, which is what a
//! half-open connection through a NAT or a suspended laptop looks like. When the relay states how
//! long it waits for this desktop (`audience.timeout_ms`, longer while nobody watches), it also
//! pings the desktop after half of that (docs/protocol.md, Heartbeats): the agent then pings only
//! after two thirds of it without a word, and waits the whole of it, never more often or less
//! patiently than its own settings say. So a relay that states a timeout keeps the heartbeat on
//! its own clock, where it pings many desktops in one wake-up, and an unwatched agent wakes for
//! nothing but its report and the relay's ping, once a minute.

use std::time::{Duration, Instant};

use actix::io::{SinkWrite, WriteHandler};
use actix::prelude::*;
use awc::error::WsProtocolError;
use awc::ws::{CloseCode, CloseReason, Codec, Frame, Message};
use bytes::Bytes;
use deskbridge_protocol::{
    ClientMessage, ErrorCode, ErrorEvent, GoingAway, OfflineReason, ServerMessage,
};
use futures_util::stream::{SplitSink, StreamExt};

use crate::settings::Timing;

type Socket = actix_codec::Framed<awc::BoxedSocket, Codec>;
type WsSink = SplitSink<Socket, Message>;

/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Why a session ended (or never began); the supervisor picks the next delay from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The connection could not be opened at all; reported by the supervisor, which dials, so
    /// that a failed dial and a lost connection take the same backoff path.
    Unreachable { relay: String, error: String },
    /// The transport failed or went silent: reconnect with backoff.
    Lost(String),
    /// The relay closed the connection, with its close frame's code and reason if any.
    Closed(Option<CloseReason>),
    /// The relay sent an `error` that ends the connection (`replaced`, `unauthorized`, …).
    Refused(ErrorEvent),
    /// The agent itself closed it, on shutdown.
    Stopped,
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Unreachable { relay, error } => {
                write!(f, "cannot connect to the relay at {relay}: {error}")
            }
            Ending::Lost(why) => f.write_str(why),
            Ending::Closed(Some(CloseReason {
                code,
                description: Some(why),
            })) => write!(f, "the relay closed the connection: {why} ({code:?})"),
            Ending::Closed(Some(CloseReason { code, .. })) => {
                write!(f, "the relay closed the connection ({code:?})")
            }
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

impl Ending {
    /// Whether the relay ended the connection because the agent's token has expired: either its
    /// `unauthorized` error says so, or it closed with 1008 "token expired" (a token that expires
    /// while the session is up).
    pub fn is_token_expired(&self) -> bool {
        match self {
            Ending::Refused(ErrorEvent {
                code: ErrorCode::Unauthorized,
                message,
            }) => message.contains("expired"),
            Ending::Closed(Some(CloseReason {
                code: CloseCode::Policy,
                description: Some(why),
            })) => why.contains("expired"),
            _ => false,
        }
    }
}

/// What a session tells its supervisor. The one message type a session sends, so the session
/// needs only a `Recipient<SessionEvent>` and knows nothing else about who supervises it.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SessionEvent {
    /// Which connection attempt the session belongs to, so late events from an old one are
    /// recognised and dropped.
    pub generation: u64,
    pub kind: SessionEventKind,
}

/// See [`SessionEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEventKind {
    /// The relay said `welcome`: the session is authenticated, as `client_id`.
    Welcomed { client_id: String },
    /// The relay asked for a beep.
    Beep { id: Option<String> },
    /// The relay asked for a desktop notification showing `text` (validated by the relay: 1–200
    /// characters, no control characters).
    Notify { id: Option<String>, text: String },
    /// The relay said how often it wants reports (`audience`: who is watching).
    Audience { interval: Duration },
    /// The session stopped; sent exactly once, last.
    Ended {
        ending: Ending,
        /// How long the session was authenticated, if it ever was.
        lived: Option<Duration>,
    },
}

/// A text frame for the relay.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Outgoing(pub String);

/// Close the connection cleanly (1000) and stop; sent on shutdown. With a reason, the relay is
/// told first (`going_away`), so the desktop's viewers read why it went instead of "lost".
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseSession {
    pub going_away: Option<OfflineReason>,
}

/// After how much silence of the relay to ping it, and how long it may stay silent in all:
/// `ping_interval` and `idle_timeout`, or two thirds of the relay's stated timeout (the relay
/// pings at half of it) and the whole of it, where longer.
fn pacing(timing: &Timing, stated: Option<Duration>) -> (Duration, Duration) {
    let stated = stated.unwrap_or_default();
    (
        timing.ping_interval.max(stated * 2 / 3),
        timing.idle_timeout.max(stated),
    )
}

/// The connection actor. See the module docs.
pub struct Session {
    generation: u64,
    supervisor: Recipient<SessionEvent>,
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
    /// How long the relay said it waits for this desktop (`audience.timeout_ms`), if it did.
    stated_timeout: Option<Duration>,
    /// The next heartbeat, re-armed when the stated timeout changes.
    next_ping: Option<SpawnHandle>,
}

impl Session {
    /// Starts the actor on a freshly upgraded connection.
    pub fn start(
        socket: Socket,
        generation: u64,
        supervisor: Recipient<SessionEvent>,
        authentication: String,
        timing: Timing,
    ) -> Addr<Self> {
        Session::create(move |ctx| {
            let (sink, stream) = socket.split();
            ctx.add_stream(stream);
            let now = Instant::now();
            Session {
                generation,
                supervisor,
                sink: SinkWrite::new(sink, ctx),
                authentication: Some(authentication),
                timing,
                opened: now,
                last_heard: now,
                welcomed: None,
                ending: None,
                closing: false,
                pings: 0,
                stated_timeout: None,
                next_ping: None,
            }
        })
    }

    fn report(&self, kind: SessionEventKind) {
        self.supervisor.do_send(SessionEvent {
            generation: self.generation,
            kind,
        });
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
        // Not `sink.close()` here: that shuts the socket's write half without flushing what is
        // still buffered (this close frame, a `going_away` before it). The relay answers with
        // its own close and ends the connection, which stops this actor; the deadline covers a
        // relay that does not.
        ctx.run_later(CLOSE_GRACE, |_, ctx| ctx.stop());
    }

    fn ping_every(&self) -> Duration {
        pacing(&self.timing, self.stated_timeout).0
    }

    fn silence_limit(&self) -> Duration {
        pacing(&self.timing, self.stated_timeout).1
    }

    /// Arms the next heartbeat check for `after` from now.
    fn schedule_heartbeat(&mut self, after: Duration, ctx: &mut Context<Self>) {
        if let Some(pending) = self.next_ping.take() {
            ctx.cancel_future(pending);
        }
        self.next_ping = Some(ctx.run_later(after, |session, ctx| session.heartbeat(ctx)));
    }

    /// The relay said how long it waits for this desktop now.
    fn relay_timeout(&mut self, timeout: Duration, ctx: &mut Context<Self>) {
        if timeout.is_zero() || self.stated_timeout == Some(timeout) {
            return;
        }
        self.stated_timeout = Some(timeout);
        log::debug!(
            "the relay waits {} for this desktop: pinging every {}",
            humantime::format_duration(timeout),
            humantime::format_duration(self.ping_every())
        );
        self.heartbeat(ctx);
    }

    /// Gives up on a relay silent for [`Session::silence_limit`], pings one silent for
    /// [`Session::ping_every`], and arms the next check for when either can next be true.
    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        self.next_ping = None;
        let silent = self.last_heard.elapsed();
        let limit = self.silence_limit();
        if silent >= limit {
            let why = format!(
                "nothing heard from the relay for over {}",
                humantime::format_duration(limit)
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
        let every = self.ping_every();
        let next = if silent >= every {
            self.pings += 1;
            self.write(Message::Ping(Bytes::copy_from_slice(
                &self.pings.to_be_bytes(),
            )));
            every
        } else {
            every - silent
        };
        self.schedule_heartbeat(next.min(limit - silent), ctx);
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
                let client_id = welcome
                    .client_id
                    .map(|id| id.to_string())
                    .unwrap_or_default();
                log::info!(
                    "connected to the relay as {client_id} ({}, protocol {})",
                    welcome.server,
                    welcome.protocol
                );
                self.welcomed = Some(Instant::now());
                self.report(SessionEventKind::Welcomed { client_id });
            }
            ServerMessage::Beep(beep) => self.report(SessionEventKind::Beep { id: beep.id }),
            ServerMessage::Notify(notify) => self.report(SessionEventKind::Notify {
                id: notify.id,
                text: notify.text,
            }),
            ServerMessage::Audience(audience) => {
                log::debug!(
                    "audience: {} with the detail view open, {} on a grid; report every {} ms",
                    audience.detail,
                    audience.overview,
                    audience.interval_ms
                );
                if let Some(ms) = audience.timeout_ms {
                    self.relay_timeout(Duration::from_millis(ms), ctx);
                }
                self.report(SessionEventKind::Audience {
                    interval: Duration::from_millis(audience.interval_ms),
                });
            }
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
        ServerMessage::Audience(_) => "audience",
        ServerMessage::Error(_) => "error",
        ServerMessage::Cpu(_) => "cpu",
        ServerMessage::Beep(_) => "beep",
        ServerMessage::BeepResult(_) => "beep_result",
        ServerMessage::Forward(_) => "forward",
        ServerMessage::Unwatched(_) => "unwatched",
        ServerMessage::Command(_) => "command",
        ServerMessage::Notify(_) => "notify",
        ServerMessage::NotifyResult(_) => "notify_result",
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some(auth) = self.authentication.take() {
            self.write(Message::Text(auth.into()));
        }
        self.heartbeat(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        let ending = self
            .ending
            .take()
            .unwrap_or_else(|| Ending::Lost("the connection was dropped".into()));
        self.report(SessionEventKind::Ended {
            ending,
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
                self.note_ending(Ending::Closed(reason.clone()));
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

    fn handle(&mut self, msg: CloseSession, ctx: &mut Self::Context) {
        self.note_ending(Ending::Stopped);
        // Only an authenticated session may say it; before `welcome` the relay knows no desktop.
        if let (Some(reason), Some(_)) = (msg.going_away, self.welcomed) {
            self.write(Message::Text(
                ClientMessage::GoingAway(GoingAway { reason })
                    .to_json()
                    .into(),
            ));
        }
        self.close(
            Some(CloseReason {
                code: CloseCode::Normal,
                description: Some("agent stopping".into()),
            }),
            ctx,
        );
    }
}

/// The session alone, against a real relay on a loopback port, with a probe actor standing in
/// for the agent: what it reports is all a supervisor ever learns from it.
#[cfg(test)]
mod tests {
    use deskbridge_auth::KeySet;
    use deskbridge_protocol::{Authentication, ClientId, ClientMessage, ClientMode};
    use deskbridge_testkit::{start_relay, Config, RelayHandle};
    use tokio::sync::mpsc;

    use super::*;

    const WITHIN: Duration = Duration::from_secs(10);

    struct Probe(mpsc::UnboundedSender<SessionEvent>);

    impl Actor for Probe {
        type Context = Context<Self>;
    }

    impl Handler<SessionEvent> for Probe {
        type Result = ();

        fn handle(&mut self, msg: SessionEvent, _: &mut Self::Context) {
            let _ = self.0.send(msg);
        }
    }

    fn relay() -> RelayHandle {
        start_relay(Config {
            allow_anonymous: true,
            ..Default::default()
        })
    }

    /// A relay that verifies tokens, with a key of its own.
    fn keyed_relay(dir: &tempfile::TempDir) -> RelayHandle {
        let path = dir.path().join("relay.keys");
        KeySet::generate(&path, false).expect("generate a key");
        start_relay(Config {
            keys: Some(KeySet::load(&path).expect("load the key")),
            ..Default::default()
        })
    }

    fn timing() -> Timing {
        Timing {
            ping_interval: Duration::from_millis(200),
            idle_timeout: Duration::from_secs(5),
            ..Timing::default()
        }
    }

    /// Opens a session for `id` with `token`; returns the events it reports.
    async fn open(
        relay: &RelayHandle,
        generation: u64,
        id: &str,
        token: Option<&str>,
    ) -> (Addr<Session>, mpsc::UnboundedReceiver<SessionEvent>) {
        let (_, socket) = awc::Client::new()
            .ws(format!("ws://{}/ws", relay.addr()))
            .connect()
            .await
            .expect("connect to the relay");
        let authentication = ClientMessage::Authentication(Authentication {
            client_id: Some(ClientId::new(id).expect("a valid id")),
            client_mode: ClientMode::Desktop,
            token: token.map(str::to_owned),
        })
        .to_json();
        let (tx, rx) = mpsc::unbounded_channel();
        let probe = Probe(tx).start();
        let session = Session::start(
            socket,
            generation,
            probe.recipient(),
            authentication,
            timing(),
        );
        (session, rx)
    }

    /// The next event but `audience` (which the relay sends whenever who watches changes).
    async fn next(events: &mut mpsc::UnboundedReceiver<SessionEvent>) -> SessionEvent {
        loop {
            let event = actix::clock::timeout(WITHIN, events.recv())
                .await
                .expect("the session reports within the deadline")
                .expect("the probe is alive");
            if !matches!(event.kind, SessionEventKind::Audience { .. }) {
                return event;
            }
        }
    }

    #[test]
    fn an_agent_pings_after_two_thirds_of_the_relays_timeout_never_sooner_than_its_own() {
        let t = Timing::default();
        let s = Duration::from_secs;
        assert_eq!(
            pacing(&t, None),
            (s(10), s(30)),
            "an older relay: the agent's own"
        );
        assert_eq!(pacing(&t, Some(s(30))), (s(20), s(30)));
        assert_eq!(pacing(&t, Some(s(120))), (s(80), s(120)));
        assert_eq!(
            pacing(&t, Some(s(6))),
            (s(10), s(30)),
            "a short stated timeout never makes it ping faster or give up sooner"
        );
    }

    #[actix_rt::test]
    async fn reports_its_welcome_and_then_being_replaced_with_the_relays_reason() {
        let relay = relay();
        let (_first, mut first_events) = open(&relay, 7, "solo", None).await;
        let event = next(&mut first_events).await;
        assert_eq!(event.generation, 7);
        assert_eq!(
            event.kind,
            SessionEventKind::Welcomed {
                client_id: "solo".into()
            }
        );

        // Right after its welcome, the relay says nobody watches: report once a minute.
        let event = actix::clock::timeout(WITHIN, first_events.recv())
            .await
            .unwrap();
        assert_eq!(
            event.map(|e| e.kind),
            Some(SessionEventKind::Audience {
                interval: Duration::from_secs(60)
            })
        );

        let (_second, mut second_events) = open(&relay, 1, "solo", None).await;
        assert!(matches!(
            next(&mut second_events).await.kind,
            SessionEventKind::Welcomed { .. }
        ));
        let event = next(&mut first_events).await;
        assert_eq!(event.generation, 7);
        match event.kind {
            SessionEventKind::Ended {
                ending: Ending::Refused(ErrorEvent { code, .. }),
                lived,
            } => {
                assert_eq!(code, ErrorCode::Replaced);
                assert!(lived.is_some(), "it was authenticated before");
            }
            other => panic!("expected the first session to be replaced, got {other:?}"),
        }
    }

    #[actix_rt::test]
    async fn reports_a_refused_token_as_its_ending_without_a_welcome() {
        let keys = tempfile::tempdir().expect("a temp dir");
        let relay = keyed_relay(&keys);
        let (_session, mut events) = open(&relay, 1, "solo", Some("not.a.token")).await;
        match next(&mut events).await.kind {
            SessionEventKind::Ended {
                ending: ending @ Ending::Refused(_),
                lived: None,
            } => {
                let Ending::Refused(error) = &ending else {
                    unreachable!()
                };
                assert_eq!(error.code, ErrorCode::Unauthorized);
                assert!(!ending.is_token_expired(), "{ending}");
            }
            other => panic!("expected an unauthorized ending, got {other:?}"),
        }
    }

    #[actix_rt::test]
    async fn reports_the_relay_shutting_down_as_its_ending() {
        let relay = relay();
        let (_session, mut events) = open(&relay, 1, "solo", None).await;
        assert!(matches!(
            next(&mut events).await.kind,
            SessionEventKind::Welcomed { .. }
        ));
        // The relay waits for its sessions' closing handshakes, so it stops on a thread of its own.
        let stopping = std::thread::spawn(move || relay.stop());
        // The relay explains itself with an `error` before its 1001 close; the first reason wins.
        match next(&mut events).await.kind {
            SessionEventKind::Ended {
                ending: Ending::Refused(ErrorEvent { code, .. }),
                lived: Some(_),
            } => assert_eq!(code, ErrorCode::ShuttingDown),
            other => panic!("expected the relay's shutdown, got {other:?}"),
        }
        stopping.join().expect("the relay stops");
    }

    #[test]
    fn a_1008_token_expired_close_and_an_expired_token_error_are_told_apart() {
        let closed = Ending::Closed(Some(CloseReason {
            code: CloseCode::Policy,
            description: Some("token expired".into()),
        }));
        assert!(closed.is_token_expired());
        let refused = Ending::Refused(ErrorEvent {
            code: ErrorCode::Unauthorized,
            message: "token refused: the token has expired".into(),
        });
        assert!(refused.is_token_expired());
        let other = Ending::Closed(Some(CloseReason {
            code: CloseCode::Policy,
            description: Some("unauthorized".into()),
        }));
        assert!(!other.is_token_expired());
        assert!(!Ending::Lost("token expired".into()).is_token_expired());
    }
}
