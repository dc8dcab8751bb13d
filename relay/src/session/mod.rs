//! One actor per WebSocket connection: it authenticates the client, validates each message once,
//! and relays the original frame straight into its peers' outboxes.
//!
//! Reading happens here (the actix-ws message stream, continuations joined, sizes bounded);
//! writing happens in the session's writer task (see [`crate::outbox`]), so a slow socket never blocks
//! this actor or anyone relaying to it.

pub mod close;
mod liveness;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use std::pin::Pin;

use actix::prelude::*;
use actix_web::error::PayloadError;
use actix_web::{dev, web, FromRequest as _, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseReason, ProtocolError};
use bytes::Bytes;
use bytestring::ByteString;
use deskbridge_protocol::{
    parse_client_message, Authentication, ClientId, ClientMessage, ClientMode, ErrorCode,
    EventKind, OfflineReason, Route, ServerMessage,
};
use futures_util::Stream;
use tokio::sync::oneshot;

use crate::auth::SESSION_COOKIE;
use crate::limits::connections::ConnectionGuard;
use crate::limits::frame_guard::{FrameGuard, FrameRefused};
use crate::limits::rate::{RateVerdict, SessionRate};
use crate::matchmaker::messages::{
    Command, DesktopReply, Join, JoinRefused, Leave, PeerUpdate, Peers, Rescope, Unwatch, Watch,
};
use crate::metrics::Limit;
use crate::outbox::command::CommandOutcome;
use crate::outbox::fanout::fan_out;
use crate::outbox::{self, Outbound, Outbox, SendError, SessionId, FLUSH_GRACE};
use crate::state::RelayState;
use crate::store::record::AuditRecord;
use deskbridge_auth::Access;
use liveness::{Liveness, Verdict};

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// Where a session is in its life.
enum Phase {
    /// Connected; waiting for `authentication`.
    Unauthenticated,
    /// Credentials accepted; the matchmaker is registering it. Already counted in its mode's
    /// session gauge: the matchmaker may show it to its peers before its answer arrives here, and
    /// `/healthz` must not lag behind what a peer has been told.
    Joining(ClientMode),
    /// Paired and relaying.
    Joined(Member),
    /// A fleet connection: the matchmaker seats it as a watcher of every desktop it may see;
    /// it relays nothing itself.
    Watching(Access),
}

struct Member {
    client_id: ClientId,
    mode: ClientMode,
    peers: Peers,
    /// A viewer's access (what its role lets it send); `None` for a desktop.
    access: Option<Access>,
}

pub struct WsSession {
    id: SessionId,
    peer: Option<SocketAddr>,
    state: web::Data<RelayState>,
    outbox: Outbox,
    abort_writer: Option<oneshot::Sender<()>>,
    phase: Phase,
    /// When it was last heard from, when to ping it, when to drop it.
    liveness: Liveness,
    /// The pending liveness check, re-armed when the timeout changes.
    liveness_check: Option<SpawnHandle>,
    /// The close frame to send when the actor stops.
    close: Option<CloseReason>,
    rate: SessionRate,
    /// The id of the token this session authenticated with, for revocation.
    jti: Option<String>,
    /// When this session's token expires (Unix seconds), if it has one.
    expires: Option<u64>,
    /// Why the desktop said it is leaving (`going_away`); `None` until it does.
    going_away: Option<OfflineReason>,
    /// The signed-in page's session cookie, if the upgrade request carried one: the credential of
    /// a `web` or `fleet` connection that sends no token.
    cookie: Option<String>,
    /// Frees this connection's slot in the connection limits when the session ends.
    _slot: ConnectionGuard,
}

impl WsSession {
    /// Upgrades an admitted `/ws` request and starts its session: the payload bounded by frame
    /// headers before actix-ws buffers it (see `frame_guard`), frames and fragmented messages
    /// bounded by the message size, continuations joined. The answer is the upgrade response,
    /// whose body is everything the session writes.
    pub async fn accept(
        req: &HttpRequest,
        body: web::Payload,
        state: web::Data<RelayState>,
        slot: ConnectionGuard,
    ) -> Result<HttpResponse, actix_web::Error> {
        let limit = state.config.max_message_size;
        let guarded: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(FrameGuard::new(body.into_inner(), limit));
        let body = web::Payload::from_request(req, &mut dev::Payload::from(guarded)).await?;
        let (response, socket, stream) = actix_ws::handle(req, body)?;
        let stream = stream
            .max_frame_size(limit)
            .aggregate_continuations()
            .max_continuation_size(limit);
        let cookie = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        Self::start(state, socket, stream, req.peer_addr(), slot, cookie);
        Ok(response)
    }

    /// Starts the actor and the writer task for a freshly upgraded connection.
    fn start(
        state: web::Data<RelayState>,
        socket: actix_ws::Session,
        stream: AggregatedMessageStream,
        peer: Option<SocketAddr>,
        slot: ConnectionGuard,
        cookie: Option<String>,
    ) {
        let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
        let (outbox, rx) = Outbox::new(id, state.config.send_queue, state.config.fleet_send_queue);
        let (abort_tx, abort_rx) = oneshot::channel();
        actix_web::rt::spawn(outbox::run_writer(socket, rx, abort_rx, outbox.pacing()));
        state.metrics.connections().inc();
        state.metrics.sessions_unauthenticated().inc();
        log::info!("session {id}: connected from {}", fmt_peer(peer));
        let config = &state.config;
        let rate = SessionRate::new(
            config.message_rate,
            config.message_burst,
            config.flood_refusals,
        );
        let liveness = Liveness::new(
            config.heartbeat_interval,
            config.client_timeout,
            Instant::now(),
            liveness::grid_origin(),
        );
        WsSession::create(move |ctx| {
            ctx.add_stream(stream);
            WsSession {
                rate,
                jti: None,
                expires: None,
                going_away: None,
                cookie,
                _slot: slot,
                id,
                peer,
                state,
                outbox,
                abort_writer: Some(abort_tx),
                phase: Phase::Unauthenticated,
                liveness,
                liveness_check: None,
                close: None,
            }
        });
    }

    /// Sends an `error` event to this client.
    fn reject(&self, code: ErrorCode, message: &str) {
        self.state.metrics.errors(code).inc();
        log::debug!("session {}: error {code}: {message}", self.id);
        let frame = ServerMessage::error(code, message).to_json();
        if let Err(SendError::Full(reason)) = self.outbox.send_text(frame) {
            self.state.metrics.messages_dropped(reason).inc();
        }
    }

    /// Sends an `error` event, then closes the connection with `reason`.
    fn fail(
        &mut self,
        ctx: &mut Context<Self>,
        code: ErrorCode,
        message: &str,
        reason: CloseReason,
    ) {
        log::info!("session {}: closing: {code}: {message}", self.id);
        self.reject(code, message);
        self.close_with(ctx, reason);
    }

    fn close_with(&mut self, ctx: &mut Context<Self>, reason: CloseReason) {
        if self.close.is_none() {
            self.close = Some(reason);
        }
        ctx.stop();
    }

    /// Counts one frame against the session's rate. `false` means drop it (the client has been
    /// told, or is being closed).
    fn admit_frame(&mut self, ctx: &mut Context<Self>) -> bool {
        let verdict = self.rate.check();
        if verdict != RateVerdict::Allow {
            self.state.metrics.limited(Limit::MessageRate).inc();
        }
        match verdict {
            RateVerdict::Allow => return true,
            RateVerdict::RefuseQuietly => {}
            RateVerdict::Refuse => {
                let message = format!(
                    "more than {} frames per second; frames are dropped until you slow down, and a client that keeps on is disconnected",
                    self.state.config.message_rate
                );
                self.reject(ErrorCode::RateLimited, &message);
            }
            RateVerdict::Disconnect => {
                self.fail(
                    ctx,
                    ErrorCode::RateLimited,
                    "sustained flooding; disconnected",
                    close::policy("rate limit"),
                );
            }
        }
        false
    }

    fn on_text(&mut self, text: ByteString, ctx: &mut Context<Self>) {
        let parsed = parse_client_message(&text);
        match (&self.phase, parsed) {
            (_, Err(rejection)) => self.reject(rejection.code, &rejection.message),
            (Phase::Unauthenticated, Ok(ClientMessage::Authentication(auth))) => {
                self.authenticate(auth, ctx)
            }
            (Phase::Unauthenticated, Ok(_)) => self.reject(
                ErrorCode::AuthRequired,
                "send an authentication message first: {\"event\":\"authentication\",\"client_id\":…,\"client_mode\":\"desktop\"|\"web\",\"token\":…}",
            ),
            (Phase::Joining(_), Ok(_)) => {
                // ctx.wait() holds the stream while joining; reaching this is a bug, not input.
                log::error!("session {}: message while joining", self.id);
            }
            (Phase::Watching(_), Ok(message)) => {
                let message = match message.kind() {
                    EventKind::Authentication => "already authenticated; open a new connection to change id or mode".to_owned(),
                    kind => format!("a fleet connection only watches; open a web connection for the desktop to send {}", kind.name()),
                };
                self.reject(ErrorCode::NotAllowed, &message);
            }
            (Phase::Joined(member), Ok(ClientMessage::GoingAway(going)))
                if member.mode == ClientMode::Desktop =>
            {
                self.going_away(going.reason)
            }
            (Phase::Joined(member), Ok(message)) => {
                self.state.store.observe(&member.client_id, member.mode, &message);
                self.relay(&message, text, ctx)
            }
        }
    }

    /// The desktop says why it is about to disconnect; its viewers see that reason in `presence`
    /// when it has gone, instead of `lost`. The last word counts.
    fn going_away(&mut self, reason: OfflineReason) {
        self.state
            .metrics
            .messages_received(EventKind::GoingAway)
            .inc();
        log::info!("session {}: the desktop is going away: {reason}", self.id);
        self.going_away = Some(reason);
    }

    fn authenticate(&mut self, auth: Authentication, ctx: &mut Context<Self>) {
        let access = match self.state.auth.admit(&auth, self.cookie.as_deref()) {
            Ok(admitted) => {
                self.jti = admitted.jti;
                self.expires = admitted.expires;
                admitted.access
            }
            Err(why) => {
                self.state.metrics.auth_failures().inc();
                self.state.store.audit(AuditRecord::token_refused(
                    &auth,
                    self.peer.map(|p| p.ip()),
                    &why,
                ));
                // The reason goes to the log and the client; the token itself goes nowhere.
                log::info!(
                    "session {}: refused {} {} from {}: {why}",
                    self.id,
                    auth.client_mode,
                    fmt_id(auth.client_id.as_ref()),
                    fmt_peer(self.peer)
                );
                self.fail(
                    ctx,
                    ErrorCode::Unauthorized,
                    &format!("token refused: {why}"),
                    close::policy("unauthorized"),
                );
                return;
            }
        };
        let (Some(client_id), ClientMode::Desktop | ClientMode::Web) =
            (auth.client_id.clone(), auth.client_mode)
        else {
            match access {
                Some(access) => self.watch(access, ctx),
                // The authenticator gives every fleet connection an access; kept total.
                None => self.close_with(ctx, close::policy("unauthorized")),
            }
            return;
        };
        self.phase = Phase::Joining(auth.client_mode);
        let metrics = &self.state.metrics;
        metrics.sessions_unauthenticated().dec();
        metrics.sessions(auth.client_mode).inc();
        let join = Join {
            client_id: client_id.clone(),
            mode: auth.client_mode,
            token: self.jti.clone(),
            outbox: self.outbox.clone(),
            updates: ctx.address().recipient(),
            access: access.clone(),
        };
        self.state
            .matchmaker
            .send(join)
            .into_actor(self)
            .map(move |result, act, ctx| {
                act.joined(client_id, auth.client_mode, access, result, ctx)
            })
            .wait(ctx);
    }

    /// A fleet connection authenticated: from now on it carries every desktop its access may
    /// see, so its queue may hold more, and the matchmaker seats it wherever it may watch.
    fn watch(&mut self, access: Access, ctx: &mut Context<Self>) {
        let metrics = &self.state.metrics;
        metrics.sessions_unauthenticated().dec();
        metrics.sessions(ClientMode::Fleet).inc();
        log::info!(
            "session {}: authenticated as fleet of {} ({}, desktops {}) from {}",
            self.id,
            access.by,
            access.role,
            access.desktops,
            fmt_peer(self.peer)
        );
        self.outbox.raise_limit(self.state.config.fleet_send_queue);
        self.outbox.batch_writes();
        self.state.matchmaker.do_send(Watch {
            access: access.clone(),
            outbox: self.outbox.clone(),
            updates: ctx.address().recipient(),
        });
        self.follow_credentials(&access, ctx);
        self.phase = Phase::Watching(access);
    }

    fn joined(
        &mut self,
        client_id: ClientId,
        mode: ClientMode,
        access: Option<Access>,
        result: Result<Result<Peers, JoinRefused>, MailboxError>,
        ctx: &mut Context<Self>,
    ) {
        match result {
            Ok(Ok(joined)) => {
                let by = access
                    .as_ref()
                    .map(|a| format!(" by {} ({})", a.by, a.role))
                    .unwrap_or_default();
                log::info!(
                    "session {}: authenticated as {mode} {client_id}{by} from {}",
                    self.id,
                    fmt_peer(self.peer)
                );
                if let Some(access) = &access {
                    self.follow_credentials(access, ctx);
                } else {
                    self.watch_revocations(ctx);
                    self.end_at_expiry(ctx);
                }
                if mode == ClientMode::Desktop {
                    self.liveness.keep_informed(Instant::now());
                }
                self.phase = Phase::Joined(Member {
                    client_id,
                    mode,
                    peers: joined,
                    access,
                });
            }
            Ok(Err(JoinRefused::TooManyViewers { limit })) => {
                self.unjoin(mode);
                let message = format!("{client_id} already has {limit} viewers, the most allowed");
                self.fail(
                    ctx,
                    ErrorCode::TooManyViewers,
                    &message,
                    close::try_again_later("too many viewers"),
                );
            }
            Err(e) => {
                self.unjoin(mode);
                log::error!("session {}: matchmaker unavailable: {e}", self.id);
                self.close_with(ctx, close::going_away());
            }
        }
    }

    /// A join that did not happen: the session is unauthenticated again, and counted so.
    fn unjoin(&mut self, mode: ClientMode) {
        self.phase = Phase::Unauthenticated;
        self.state.metrics.sessions(mode).dec();
        self.state.metrics.sessions_unauthenticated().inc();
    }

    /// Routes one validated message from a joined client, as the protocol's routing table says.
    fn relay(&mut self, message: &ClientMessage, text: ByteString, ctx: &mut Context<Self>) {
        let kind = message.kind();
        let Phase::Joined(member) = &mut self.phase else {
            return;
        };
        let metrics = &self.state.metrics;
        metrics.messages_received(kind).inc();
        if kind.sender() != Some(member.mode) {
            let message = match kind {
                EventKind::Authentication => {
                    "already authenticated; open a new connection to change id or mode".to_owned()
                }
                _ => format!("a {} client may not send {}", member.mode, kind.name()),
            };
            self.reject(ErrorCode::NotAllowed, &message);
            return;
        }
        if let (Route::Command, Some(access)) = (kind.route(), &member.access) {
            if !access.may_act(member.client_id.as_str()) {
                let message = format!(
                    "{} may watch {} but not send {}: that takes the operator role",
                    access.by,
                    member.client_id,
                    kind.name()
                );
                self.reject(ErrorCode::NotAllowed, &message);
                self.audit_command(kind, "not_allowed");
                return;
            }
        }
        match (kind.route(), &member.peers) {
            (
                Route::Telemetry,
                Peers::Desktop {
                    viewers,
                    history,
                    cluster,
                },
            ) => {
                history.push(text.clone());
                fan_out(viewers, kind, &text, metrics);
                if let Some(cluster) = cluster {
                    cluster.forward(kind, &text);
                }
            }
            // An answer ends a command's life, which the matchmaker keeps: it forwards the
            // answer to every viewer, here and on other nodes.
            (Route::Reply, Peers::Desktop { .. }) => {
                if let Some(result) = message.reply() {
                    self.state.matchmaker.do_send(DesktopReply {
                        client_id: member.client_id.clone(),
                        kind,
                        result: result.clone(),
                        frame: text,
                    });
                }
            }
            (Route::Command, Peers::Web { commands, .. }) if commands.check().is_err() => {
                self.report_command(kind, CommandOutcome::Limited);
            }
            (Route::Command, Peers::Web { .. }) => {
                let Some(request) = message.command() else {
                    return;
                };
                let by = member
                    .access
                    .as_ref()
                    .map_or_else(|| "anonymous".to_owned(), |a| a.by.clone());
                let command = Command {
                    client_id: member.client_id.clone(),
                    kind,
                    id: request.id.map(str::to_owned),
                    wait_ms: request.wait_ms,
                    by,
                    frame: text,
                    sender: self.outbox.clone(),
                    from: self.peer.map(|p| p.ip()),
                };
                self.deliver(command, ctx);
            }
            (route, _) => {
                log::error!(
                    "session {}: no route {route:?} for {}",
                    self.id,
                    kind.name()
                );
            }
        }
    }

    /// Records a command and its outcome in the audit log (a no-op without a store).
    fn audit_command(&self, kind: EventKind, outcome: &str) {
        if let Phase::Joined(member) = &self.phase {
            let by = member
                .access
                .as_ref()
                .map_or("anonymous", |a| a.by.as_str());
            let (from, desktop) = (self.peer.map(|p| p.ip()), &member.client_id);
            let record = AuditRecord::command(by, from, desktop, kind.name(), outcome);
            self.state.store.audit(record);
        }
    }

    /// Counts a refused command and tells the viewer; a delivered one was counted where it was
    /// queued, so there is nothing left to do.
    fn report_command(&self, kind: EventKind, outcome: CommandOutcome) {
        self.audit_command(kind, outcome.as_str());
        if outcome != CommandOutcome::Delivered {
            outcome.count(kind, &self.state.metrics);
        }
        if let Some((code, message)) =
            outcome.rejection(kind, self.state.config.commands_per_second)
        {
            self.reject(code, &message);
        }
    }

    /// Hands a command to the matchmaker, which gives it its life (accepted, delivered now,
    /// through another node, or when the desktop is back). Holds further input until it
    /// answers, keeping order; a refusal is this sender's `error`.
    fn deliver(&mut self, command: Command, ctx: &mut Context<Self>) {
        self.state
            .matchmaker
            .send(command)
            .into_actor(self)
            .map(|answer, act, _| match answer {
                Ok(Ok(())) => {}
                Ok(Err(refused)) => act.reject(refused.code, &refused.message),
                Err(e) => {
                    log::error!("session {}: matchmaker unavailable: {e}", act.id);
                    act.reject(
                        ErrorCode::PeerOffline,
                        "the relay cannot reach the desktop now",
                    );
                }
            })
            .wait(ctx);
    }

    fn on_protocol_error(&mut self, error: ProtocolError, ctx: &mut Context<Self>) {
        let limit = self.state.config.max_message_size;
        match FrameRefused::of(&error) {
            Some(refused) if refused.is_size() => {
                log::info!("session {}: {refused}", self.id);
                self.state.metrics.limited(Limit::MessageSize).inc();
                let message = format!("message larger than {limit} bytes");
                self.fail(ctx, ErrorCode::TooLarge, &message, close::too_large());
                return;
            }
            Some(refused) => {
                log::info!("session {}: websocket protocol error: {refused}", self.id);
                self.close_with(ctx, close::protocol_error());
                return;
            }
            None => {}
        }
        let too_large = match &error {
            ProtocolError::Overflow => Some(format!("message larger than {limit} bytes")),
            ProtocolError::Io(e) if e.to_string().contains("maximum continuation size") => {
                Some(format!("fragmented message larger than {limit} bytes"))
            }
            _ => None,
        };
        if let Some(message) = too_large {
            self.state.metrics.limited(Limit::MessageSize).inc();
            self.fail(ctx, ErrorCode::TooLarge, &message, close::too_large());
            return;
        }
        match error {
            ProtocolError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => self.fail(
                ctx,
                ErrorCode::BadMessage,
                "text frame is not valid UTF-8",
                close::invalid_utf8(),
            ),
            other => {
                log::info!("session {}: websocket protocol error: {other}", self.id);
                self.close_with(ctx, close::protocol_error());
            }
        }
    }

    /// A viewer or fleet connection keeps to its credentials while it lives: it closes when its
    /// token is revoked, when it expires (for a signed-in page: when its session can no longer
    /// be renewed, see `Access::expires`), and, for a signed-in person, it follows every edit of
    /// the users file.
    fn follow_credentials(&self, access: &Access, ctx: &mut Context<Self>) {
        self.watch_revocations(ctx);
        self.end_at_expiry(ctx);
        if access.user.is_none() {
            return;
        }
        let mut users = self.state.auth.users.subscribe();
        users.mark_unchanged();
        let session = ctx.address();
        actix_web::rt::spawn(async move {
            while users.changed().await.is_ok() {
                if session.try_send(UsersChanged).is_err() && !session.connected() {
                    return;
                }
            }
        });
    }

    /// The users file changed: re-read this connection's access. A removed person is signed out;
    /// a viewer who may no longer see its desktop is closed; a fleet connection stops watching
    /// what it may no longer see; a changed role applies to the next command.
    fn credentials_changed(&mut self, ctx: &mut Context<Self>) {
        let users = self.state.auth.users.current();
        let current = match &self.phase {
            Phase::Joined(Member {
                access: Some(access),
                ..
            })
            | Phase::Watching(access) => access,
            _ => return,
        };
        let Some(fresh) = current.refreshed(users.as_deref()) else {
            let message = format!(
                "{} was removed from the users file; sign in again",
                current.by
            );
            self.credentials_ended(ctx, &message, "user removed");
            return;
        };
        if fresh == *current {
            return;
        }
        log::info!(
            "session {}: {}'s access changed: {} on {}",
            self.id,
            fresh.by,
            fresh.role,
            fresh.desktops
        );
        match &mut self.phase {
            Phase::Joined(member) if !fresh.may_see(member.client_id.as_str()) => {
                let message = format!("{} may no longer see {}", fresh.by, member.client_id);
                self.credentials_ended(ctx, &message, "no longer allowed");
            }
            Phase::Joined(member) => member.access = Some(fresh),
            Phase::Watching(access) => {
                *access = fresh.clone();
                self.state.matchmaker.do_send(Rescope {
                    session: self.id,
                    access: fresh,
                });
            }
            _ => {}
        }
    }

    /// Closes this session as soon as its token appears in the revocation list.
    fn watch_revocations(&self, ctx: &mut Context<Self>) {
        let (Some(jti), mut revoked) = (self.jti.clone(), self.state.auth.revocations.subscribe())
        else {
            return;
        };
        async move {
            // Resolves when the list contains our token; an error means the relay is going away.
            let _ = revoked.wait_for(|set| set.contains(&jti)).await;
        }
        .into_actor(self)
        .map(|_, act, ctx| {
            act.credentials_ended(
                ctx,
                "this session's token has been revoked",
                "token revoked",
            )
        })
        .spawn(ctx);
    }

    /// The token this session authenticated with stopped being good (revoked, expired): counted
    /// as a refusal, `unauthorized` to the client, close 1008 — unless it is closing anyway.
    fn credentials_ended(&mut self, ctx: &mut Context<Self>, message: &str, close_reason: &str) {
        if self.close.is_some() || self.state.shutting_down() {
            return;
        }
        self.state.metrics.auth_failures().inc();
        self.fail(
            ctx,
            ErrorCode::Unauthorized,
            message,
            close::policy(close_reason),
        );
    }

    /// Closes this session when its token expires (after the clock-skew allowance), so a stolen
    /// token is good only until then, as docs/security.md promises.
    fn end_at_expiry(&self, ctx: &mut Context<Self>) {
        let Some(expires) = self.expires else {
            return;
        };
        let deadline = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(expires)
            + self.state.config.clock_skew;
        let left = deadline
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        ctx.run_later(left, |act, ctx| {
            act.credentials_ended(
                ctx,
                "token expired; reconnect with a fresh token",
                "token expired",
            )
        });
    }

    /// Pings the session if it has been silent for its probe interval, drops it once silent
    /// for its timeout, and arms the next check (see `liveness.rs`).
    fn check_liveness(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let next = match self.liveness.check(now) {
            Verdict::Drop => {
                log::info!(
                    "session {}: nothing heard for {}, dropping",
                    self.id,
                    humantime::format_duration(self.liveness.timeout())
                );
                self.state.metrics.errors(ErrorCode::Timeout).inc();
                self.close_with(ctx, close::heartbeat_timeout());
                return;
            }
            Verdict::Ping(next) => {
                self.state.metrics.heartbeat_pings().inc();
                if self.outbox.send(Outbound::Ping(b"")).is_ok() {
                    self.liveness.told(now);
                }
                next
            }
            Verdict::Tell(next) => {
                self.state.metrics.heartbeat_pongs().inc();
                if self.outbox.send(Outbound::Pong(Bytes::new())).is_ok() {
                    self.liveness.told(now);
                }
                next
            }
            Verdict::Wait(next) => next,
        };
        // At the grid's instant itself, not after a duration computed from a slightly different
        // `now`: every session due at that instant then fires in the same timer tick.
        let at = tokio::time::sleep_until(tokio::time::Instant::from_std(next));
        let handle = ctx.spawn(
            actix::fut::wrap_future(at).map(|_, act: &mut Self, ctx| act.check_liveness(ctx)),
        );
        self.liveness_check = Some(handle);
    }

    /// The desktop's audience changed class: enforce the timeout it was told.
    fn set_timeout(&mut self, timeout: std::time::Duration, ctx: &mut Context<Self>) {
        if self.liveness.stated() == Some(timeout) {
            return;
        }
        let probe = self.state.config.heartbeat_interval;
        self.liveness.set_timeout(probe, timeout, Instant::now());
        if let Some(pending) = self.liveness_check.take() {
            ctx.cancel_future(pending);
        }
        self.check_liveness(ctx);
    }

    fn watch_shutdown(&self, ctx: &mut Context<Self>) {
        let mut shutdown = self.state.shutdown.clone();
        async move {
            // An error means the relay's state is gone: shut down as well.
            let _ = shutdown.wait_for(|down| *down).await;
        }
        .into_actor(self)
        .map(|_, act, ctx| {
            act.reject(
                ErrorCode::ShuttingDown,
                "the relay is shutting down; reconnect shortly",
            );
            act.close_with(ctx, close::going_away());
        })
        .spawn(ctx);
    }
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let config = &self.state.config;
        ctx.run_later(config.auth_timeout, |act, ctx| {
            if matches!(act.phase, Phase::Unauthenticated) {
                let message = format!(
                    "no authentication within {}",
                    humantime::format_duration(act.state.config.auth_timeout)
                );
                act.state.metrics.limited(Limit::AuthTimeout).inc();
                act.fail(
                    ctx,
                    ErrorCode::AuthTimeout,
                    &message,
                    close::policy("authentication timeout"),
                );
            }
        });
        self.check_liveness(ctx);
        self.watch_shutdown(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        let metrics = &self.state.metrics;
        match &self.phase {
            Phase::Joined(member) => {
                metrics.sessions(member.mode).dec();
                self.state.matchmaker.do_send(Leave {
                    session: self.id,
                    client_id: member.client_id.clone(),
                    mode: member.mode,
                    reason: self.going_away,
                });
                log::info!(
                    "session {}: {} {} disconnected",
                    self.id,
                    member.mode,
                    member.client_id
                );
            }
            Phase::Watching(access) => {
                metrics.sessions(ClientMode::Fleet).dec();
                self.state.matchmaker.do_send(Unwatch { session: self.id });
                log::info!("session {}: fleet of {} disconnected", self.id, access.by);
            }
            Phase::Joining(mode) => {
                metrics.sessions(*mode).dec();
                log::info!("session {}: disconnected while joining", self.id);
            }
            Phase::Unauthenticated => {
                metrics.sessions_unauthenticated().dec();
                log::info!("session {}: disconnected before authenticating", self.id);
            }
        }
        let reason = self.close.take().unwrap_or_else(close::normal);
        let _ = self.outbox.send(Outbound::Close(reason));
        // Give the writer a moment to flush the error and close frames, then cut it off even if
        // the client is not reading.
        if let Some(abort) = self.abort_writer.take() {
            actix_web::rt::spawn(async move {
                actix_web::rt::time::sleep(FLUSH_GRACE).await;
                let _ = abort.send(());
            });
        }
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        if self.close.is_some() {
            return; // closing: ignore whatever is still buffered
        }
        self.liveness.heard(Instant::now());
        // Every frame counts against the rate, control frames included; a close or an error does
        // not (both end the session).
        if matches!(
            item,
            Ok(AggregatedMessage::Text(_)
                | AggregatedMessage::Binary(_)
                | AggregatedMessage::Ping(_)
                | AggregatedMessage::Pong(_))
        ) && !self.admit_frame(ctx)
        {
            return;
        }
        match item {
            Ok(AggregatedMessage::Text(text)) => self.on_text(text, ctx),
            Ok(AggregatedMessage::Binary(_)) => self.reject(
                ErrorCode::BadMessage,
                "binary frames are not supported; send JSON text frames",
            ),
            Ok(AggregatedMessage::Ping(payload)) => {
                self.state.metrics.client_pings().inc();
                if self.outbox.send(Outbound::Pong(payload)).is_ok() {
                    self.liveness.told(Instant::now());
                }
            }
            Ok(AggregatedMessage::Pong(_)) => {}
            Ok(AggregatedMessage::Close(reason)) => {
                log::debug!("session {}: client closed: {reason:?}", self.id);
                self.close_with(ctx, close::normal());
            }
            Err(error) => self.on_protocol_error(error, ctx),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// The users file changed (see [`WsSession::follow_credentials`]).
#[derive(Message)]
#[rtype(result = "()")]
struct UsersChanged;

impl Handler<UsersChanged> for WsSession {
    type Result = ();

    fn handle(&mut self, _: UsersChanged, ctx: &mut Context<Self>) {
        self.credentials_changed(ctx);
    }
}

impl Handler<PeerUpdate> for WsSession {
    type Result = ();

    fn handle(&mut self, update: PeerUpdate, ctx: &mut Context<Self>) {
        match (update, &mut self.phase) {
            (PeerUpdate::Replaced, _) => self.fail(
                ctx,
                ErrorCode::Replaced,
                "a newer connection for this desktop took over; if another agent runs with the same id, stop one of them",
                close::replaced(),
            ),
            (PeerUpdate::Viewers(list), Phase::Joined(Member { peers: Peers::Desktop { viewers, .. }, .. })) => {
                *viewers = list;
            }
            // Only a desktop's room sends it, possibly before this session has seen its join
            // answered.
            (PeerUpdate::Timeout(timeout), _) => self.set_timeout(timeout, ctx),
            (update, _) => log::debug!("session {}: ignoring {update:?}", self.id),
        }
    }
}

fn fmt_id(id: Option<&ClientId>) -> String {
    id.map_or_else(|| "(no id)".to_owned(), ToString::to_string)
}

fn fmt_peer(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "unknown address".to_owned(), |p| p.to_string())
}
