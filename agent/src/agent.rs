//! The agent actor: owns the reconnect loop, the CPU sampler and the audio thread, and hands each
//! live [`Session`] what it should send. It supervises its sessions through the one message they
//! send, [`SessionEvent`]; sessions know nothing of this module.
//!
//! It dials the relay, and when a dial fails or a session ends it decides, in one place, how long
//! to wait before dialing again: exponential backoff with full jitter for ordinary failures (reset
//! once a connection stayed up for `stable_after`), and a long pause when another copy of the
//! agent took over the same id, so two copies never fight over it in a tight loop.
//!
//! It also reads when its desktop token expires and says so in its log while fewer than two weeks
//! are left (see [`crate::token_expiry`]).
//!
//! Samples are taken only when they are reported, at the interval the relay asks for (see
//! [`crate::cadence`]), so each one is the CPU average since the previous one and an unwatched
//! agent wakes once a minute, not every second. Nothing is sampled while disconnected: the first
//! report after the next `welcome` covers the whole gap.

use std::time::{Duration, Instant};

use actix::prelude::*;
use deskbridge_protocol::messages::MAX_REPLY_ERROR_LEN;
use deskbridge_protocol::{
    Authentication, BeepResult, ClientMessage, ClientMode, Cpu, ErrorCode, ErrorEvent,
    NotifyResult, OfflineReason,
};

use crate::audio::Audio;
use crate::backoff::Backoff;
use crate::cadence::Cadence;
use crate::ledger::{Begin, Ledger};
use crate::sampler::Sampler;
use crate::session::{CloseSession, Ending, Outgoing, Session, SessionEvent, SessionEventKind};
use crate::settings::Settings;
use crate::token_expiry;

/// Largest frame accepted from the relay. Desktops receive only small commands.
const MAX_FRAME: usize = 64 * 1024;
/// How long shutdown waits for the closing handshake.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The audio thread's answer to a beep.
#[derive(Message)]
#[rtype(result = "()")]
struct BeepFinished(BeepResult);

/// Close the connection, telling the relay why (`quit`, or `logout` when the user's session is
/// ending), and resolve once it is closed (or the grace period ran out).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown(pub OfflineReason);

/// The machine is about to sleep or shut down: tell the relay why, close, and stay away until
/// [`Woke`]. Resolves once the connection is closed (or the grace period ran out).
#[derive(Message)]
#[rtype(result = "()")]
pub struct GoingAway(pub OfflineReason);

/// The machine woke up: reconnect now, with no backoff left over from before.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Woke;

struct Live {
    addr: Addr<Session>,
    generation: u64,
    ready: bool,
}

/// See the module docs.
pub struct Agent {
    settings: Settings,
    client: awc::Client,
    backoff: Backoff,
    sampler: Sampler,
    audio: Audio,
    /// When to report, following the relay's `audience`.
    cadence: Cadence,
    /// The timer of the next report, while a session is ready.
    next_report: Option<SpawnHandle>,
    session: Option<Live>,
    /// Counts connection attempts, so late messages from an old session are recognised.
    generation: u64,
    /// Which of the configured relays the next attempt dials.
    relay_index: usize,
    /// Set on shutdown or sleep; resolved when the session is gone.
    stopping: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: bool,
    /// The machine is asleep (or shutting down): no reconnecting until it wakes.
    asleep: bool,
    /// The pending reconnect, cancelled when waking makes it moot.
    retry: Option<SpawnHandle>,
    /// The commands run lately and the answers still owed (exactly once, see `ledger.rs`).
    ledger: Ledger,
}

impl Agent {
    pub fn new(settings: Settings, client: awc::Client, sampler: Sampler, audio: Audio) -> Self {
        let backoff = Backoff::new(settings.timing.backoff_min, settings.timing.backoff_max);
        // The sampler took its baseline when it was made, a moment ago.
        let cadence = Cadence::new(
            settings.interval,
            sysinfo::MINIMUM_CPU_UPDATE_INTERVAL,
            Instant::now(),
        );
        Self {
            settings,
            client,
            backoff,
            sampler,
            audio,
            cadence,
            next_report: None,
            session: None,
            generation: 0,
            relay_index: 0,
            stopping: None,
            stopped: false,
            asleep: false,
            retry: None,
            ledger: Ledger::default(),
        }
    }

    fn authentication(&self) -> String {
        ClientMessage::Authentication(Authentication {
            client_id: Some(self.settings.id.clone()),
            client_mode: ClientMode::Desktop,
            token: self.settings.token.as_ref().map(|t| t.expose().to_owned()),
        })
        .to_json()
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        if self.stopped || self.asleep {
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        let relay = self.settings.relays.nth(self.relay_index).clone();
        log::debug!("connecting to {relay}");
        self.client
            .ws(relay.uri().clone())
            .max_frame_size(MAX_FRAME)
            .connect()
            .into_actor(self)
            .map(move |result, agent, ctx| {
                if agent.stopped || agent.asleep || generation != agent.generation {
                    return;
                }
                match result {
                    Ok((_, socket)) => {
                        let addr = Session::start(
                            socket,
                            generation,
                            ctx.address().recipient(),
                            agent.authentication(),
                            agent.settings.timing.clone(),
                        );
                        agent.session = Some(Live {
                            addr,
                            generation,
                            ready: false,
                        });
                    }
                    Err(e) => {
                        let ending = Ending::Unreachable {
                            relay: relay.to_string(),
                            error: e.to_string(),
                        };
                        agent.ended(generation, ending, None, ctx);
                    }
                }
            })
            .spawn(ctx);
    }

    /// Moves on to the next configured relay (a no-op with one): a node that failed or went
    /// away is not tried again before the others.
    fn next_relay(&mut self) {
        self.relay_index = (self.relay_index + 1) % self.settings.relays.len();
    }

    fn reconnect_after(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        let retry = ctx.run_later(delay, |agent, ctx| {
            agent.retry = None;
            agent.connect(ctx)
        });
        self.retry = Some(retry);
    }

    /// The one path after a failed dial or an ended session: forget the session, and unless
    /// stopping, wait and dial again.
    fn ended(
        &mut self,
        generation: u64,
        ending: Ending,
        lived: Option<Duration>,
        ctx: &mut Context<Self>,
    ) {
        // What this connection carried in its last moments may never have reached the relay.
        self.ledger.ended(generation, Instant::now());
        if self
            .session
            .as_ref()
            .is_some_and(|l| l.generation == generation)
        {
            self.session = None;
            self.cancel_report(ctx);
        }
        if self.stopped || self.asleep {
            if let Some(done) = self.stopping.take() {
                let _ = done.send(());
            }
            return;
        }
        if generation != self.generation {
            return;
        }
        if lived.is_some_and(|lived| lived >= self.settings.timing.stable_after) {
            self.backoff.reset();
        }
        let delay = self.delay_after(&ending);
        self.reconnect_after(delay, ctx);
    }

    /// Picks the wait before the next attempt and says, in the log, why and what to do.
    fn delay_after(&mut self, ending: &Ending) -> Duration {
        let id = self.settings.id.as_str();
        if ending.is_token_expired() {
            let delay = self.backoff.next_delay();
            log::error!(
                "the relay refused this agent's token for id {id:?} because it has expired \
                 ({ending}); {}, then restart the agent; retrying in {}",
                token_expiry::renew_hint(id),
                show(delay)
            );
            return delay;
        }
        match ending {
            Ending::Refused(ErrorEvent {
                code: ErrorCode::Replaced,
                message,
            }) => {
                let delay = self.settings.timing.replaced_backoff;
                log::warn!(
                    "another agent connected with id {id:?} and took over ({message}); not \
                     fighting it, next try in {}. If this computer should be the one, stop the \
                     agent on the other computer (`deskbridge-agent uninstall` there), or give \
                     each computer its own id with `deskbridge-agent install --id NAME`",
                    show(delay)
                );
                delay
            }
            Ending::Refused(ErrorEvent {
                code: ErrorCode::Unauthorized,
                message,
            }) => {
                let delay = self.backoff.next_delay();
                log::error!(
                    "the relay refused this agent's credentials for id {id:?}: {message}. Set the \
                     token the relay expects with `deskbridge-agent install --token TOKEN` (or \
                     DESKBRIDGE_TOKEN) and restart the agent; retrying in {}",
                    show(delay)
                );
                delay
            }
            other => {
                let delay = self.backoff.next_delay();
                self.next_relay();
                let next = self.settings.relays.nth(self.relay_index);
                match other {
                    Ending::Unreachable { .. } => {
                        log::warn!("{other}; trying {next} in {}", show(delay))
                    }
                    _ => log::warn!(
                        "disconnected from the relay: {other}; reconnecting to {next} in {}",
                        show(delay)
                    ),
                }
                delay
            }
        }
    }

    /// The report timer fired: samples (the average since the last sample), sends, and sets the
    /// timer for the next one.
    fn report(&mut self, ctx: &mut Context<Self>) {
        self.next_report = None;
        let Some(addr) = self.ready_session().map(|live| live.addr.clone()) else {
            return; // disconnected meanwhile; the next `welcome` sets the timer again
        };
        let cpu: Cpu = self.sampler.sample();
        addr.do_send(Outgoing(ClientMessage::Cpu(cpu).to_json()));
        let due = self.cadence.sampled(Instant::now());
        self.report_at(due, ctx);
    }

    /// (Re)sets the report timer to fire at `due`.
    fn report_at(&mut self, due: Instant, ctx: &mut Context<Self>) {
        self.cancel_report(ctx);
        let after = due.saturating_duration_since(Instant::now());
        self.next_report = Some(ctx.run_later(after, |agent, ctx| agent.report(ctx)));
    }

    fn cancel_report(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.next_report.take() {
            ctx.cancel_future(timer);
        }
    }

    fn ready_session(&self) -> Option<&Live> {
        self.session.as_ref().filter(|live| live.ready)
    }
}

/// An error text cut to what a reply may carry.
fn bounded(mut error: String) -> String {
    if error.len() > MAX_REPLY_ERROR_LEN {
        let mut end = MAX_REPLY_ERROR_LEN;
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        error.truncate(end);
    }
    error
}

fn show(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64))
}

impl Actor for Agent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.settings.token.is_some() {
            self.check_token();
            ctx.run_interval(token_expiry::CHECK_EVERY, |agent, _| agent.check_token());
        }
        self.connect(ctx);
    }
}

impl Agent {
    fn check_token(&self) {
        if let Some(token) = &self.settings.token {
            token_expiry::log_notice(token.expose(), self.settings.id.as_str());
        }
    }
}

impl Handler<SessionEvent> for Agent {
    type Result = ();

    fn handle(&mut self, msg: SessionEvent, ctx: &mut Self::Context) {
        match msg.kind {
            SessionEventKind::Welcomed { .. } => self.welcomed(msg.generation, ctx),
            SessionEventKind::Audience { interval } => self.audience(msg.generation, interval, ctx),
            SessionEventKind::Beep { id } => self.beep(msg.generation, id, ctx),
            SessionEventKind::Notify { id, text } => self.notify(msg.generation, id, text, ctx),
            SessionEventKind::Ended { ending, lived } => {
                self.ended(msg.generation, ending, lived, ctx)
            }
        }
    }
}

impl Agent {
    /// The session is authenticated: reports start at once (covering the time since the last
    /// one) and follow the agent's own interval until the relay says how often it wants them.
    fn welcomed(&mut self, generation: u64, ctx: &mut Context<Self>) {
        let Some(live) = self.session.as_mut().filter(|l| l.generation == generation) else {
            return;
        };
        live.ready = true;
        let due = self.cadence.welcomed(Instant::now());
        self.report_at(due, ctx);
        let owed = self.ledger.take_owed();
        if !owed.is_empty() {
            log::info!(
                "sending {} answer(s) owed from before the reconnect",
                owed.len()
            );
        }
        for answer in owed {
            self.answer(answer);
        }
    }

    /// The relay said how often it wants reports now (its `audience` changed).
    fn audience(&mut self, generation: u64, interval: Duration, ctx: &mut Context<Self>) {
        if self.ready_session().map(|l| l.generation) != Some(generation) {
            return;
        }
        let before = self.cadence.interval();
        let due = self.cadence.asked(interval, Instant::now());
        if self.cadence.interval() != before {
            log::info!(
                "reporting every {} ({})",
                show(self.cadence.interval()),
                if self.cadence.interval() < before {
                    "someone is watching more closely"
                } else {
                    "fewer are watching"
                }
            );
        }
        self.report_at(due, ctx);
    }

    /// Whether a command with `id` should run now; a repeat is answered (or waits for its
    /// answer) without running again.
    fn first_time(&mut self, what: &str, id: Option<&str>) -> bool {
        match self.ledger.begin(id, Instant::now()) {
            Begin::Run => true,
            Begin::Running => {
                log::info!("{what} {id:?} is already running; not running it twice");
                false
            }
            Begin::Answered(answer) => {
                log::info!("{what} {id:?} already ran; answering with its result again");
                self.answer(answer);
                false
            }
        }
    }

    /// A command ended: remember its answer and send it (now, or after reconnecting).
    fn finished(&mut self, id: Option<&str>, answer: String) {
        self.ledger.finish(id, &answer);
        self.answer(answer);
    }

    /// Sends an answer on the live connection, or keeps it for the next one.
    fn answer(&mut self, frame: String) {
        match self.ready_session() {
            Some(live) => {
                let generation = live.generation;
                live.addr.do_send(Outgoing(frame.clone()));
                self.ledger.sent(generation, frame, Instant::now());
            }
            None => {
                log::info!("not connected to the relay; the answer goes out after reconnecting");
                self.ledger.owe(frame);
            }
        }
    }

    fn notify(
        &mut self,
        generation: u64,
        id: Option<String>,
        text: String,
        ctx: &mut Context<Self>,
    ) {
        if generation != self.generation || !self.first_time("notify", id.as_deref()) {
            return;
        }
        log::info!("notification requested (id {id:?})");
        async move { crate::notify::show(&text).await }
            .into_actor(self)
            .map(move |shown, agent, _| {
                match &shown {
                    Ok(()) => log::info!("notification shown (id {id:?})"),
                    Err(e) => log::warn!("notification failed (id {id:?}): {e}"),
                }
                let result = NotifyResult {
                    id: id.clone(),
                    ok: shown.is_ok(),
                    error: shown.err().map(bounded),
                };
                agent.finished(id.as_deref(), ClientMessage::NotifyResult(result).to_json());
            })
            .spawn(ctx);
    }

    fn beep(&mut self, generation: u64, id: Option<String>, ctx: &mut Context<Self>) {
        if generation != self.generation || !self.first_time("beep", id.as_deref()) {
            return;
        }
        log::info!("beep requested (id {id:?})");
        let me = ctx.address();
        self.audio
            .request(id, Box::new(move |result| me.do_send(BeepFinished(result))));
    }
}

impl Handler<BeepFinished> for Agent {
    type Result = ();

    fn handle(&mut self, msg: BeepFinished, _: &mut Self::Context) {
        let id = msg.0.id.clone();
        self.finished(id.as_deref(), ClientMessage::BeepResult(msg.0).to_json());
    }
}

impl Agent {
    /// Closes the session, saying why, and resolves once it is gone (or the grace ran out).
    fn close_session(&mut self, going_away: OfflineReason) -> ResponseFuture<()> {
        let (done, closed) = tokio::sync::oneshot::channel();
        match &self.session {
            Some(live) => {
                live.addr.do_send(CloseSession {
                    going_away: Some(going_away),
                });
                self.stopping = Some(done);
            }
            None => {
                let _ = done.send(());
            }
        }
        Box::pin(async move {
            let _ = actix::clock::timeout(SHUTDOWN_GRACE, closed).await;
        })
    }
}

impl Handler<Shutdown> for Agent {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, stop: Shutdown, _: &mut Self::Context) -> Self::Result {
        log::info!("stopping ({})", stop.0);
        self.stopped = true;
        self.close_session(stop.0)
    }
}

impl Handler<GoingAway> for Agent {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, going: GoingAway, _: &mut Self::Context) -> Self::Result {
        self.asleep = true;
        self.close_session(going.0)
    }
}

impl Handler<Woke> for Agent {
    type Result = ();

    fn handle(&mut self, _: Woke, ctx: &mut Self::Context) {
        if !self.asleep || self.stopped {
            return;
        }
        self.asleep = false;
        // What failed before the sleep says nothing about now: dial at once, not when the
        // backoff from before the sleep says.
        self.backoff.reset();
        if let Some(retry) = self.retry.take() {
            ctx.cancel_future(retry);
        }
        if self.session.is_none() {
            self.connect(ctx);
        }
    }
}
