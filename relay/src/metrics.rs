//! Prometheus metrics of the relay, served on `/metrics`.
//!
//! Every counter on the per-message path is resolved to its label set once, at start, so counting a
//! relayed message is one atomic add and never a map lookup.

use deskbridge_protocol::{ClientMode, CommandState, ErrorCode, EventKind};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabel {
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabel {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Which abuse limit refused something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Connections,
    ConnectionsPerAddress,
    Origin,
    MessageRate,
    CommandRate,
    ViewersPerId,
    ViewersPerToken,
    MessageSize,
    AuthTimeout,
}

impl Limit {
    const ALL: [Limit; 9] = [
        Limit::Connections,
        Limit::ConnectionsPerAddress,
        Limit::Origin,
        Limit::MessageRate,
        Limit::CommandRate,
        Limit::ViewersPerId,
        Limit::ViewersPerToken,
        Limit::MessageSize,
        Limit::AuthTimeout,
    ];

    fn label(self) -> &'static str {
        match self {
            Limit::Connections => "connections",
            Limit::ConnectionsPerAddress => "connections_per_address",
            Limit::Origin => "origin",
            Limit::MessageRate => "message_rate",
            Limit::CommandRate => "command_rate",
            Limit::ViewersPerId => "viewers_per_id",
            Limit::ViewersPerToken => "viewers_per_token",
            Limit::MessageSize => "message_size",
            Limit::AuthTimeout => "auth_timeout",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

/// Why a frame for a client was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Telemetry to a client whose queue is above the telemetry limit.
    QueueFull,
    /// A reply or control message to a client whose queue is completely full (a stuck client).
    StuckClient,
}

/// How a sign-in attempt (`POST /api/login`) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInOutcome {
    Ok,
    BadCredentials,
    /// Refused by the per-address or per-user limit, before the password was checked.
    Limited,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The reporting interval a desktop was asked for, by who watches it (`matchmaker/audience.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalClass {
    /// Someone has its detail view open.
    Detail,
    /// It is only on fleet grids.
    Overview,
    /// Nobody watches it.
    Idle,
}

impl IntervalClass {
    const ALL: [IntervalClass; 3] = [
        IntervalClass::Detail,
        IntervalClass::Overview,
        IntervalClass::Idle,
    ];

    pub fn label(self) -> &'static str {
        match self {
            IntervalClass::Detail => "detail",
            IntervalClass::Overview => "overview",
            IntervalClass::Idle => "idle",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

/// Every client event, in declaration order (`kind as usize` indexes the counters; tested).
const EVENTS: [EventKind; 7] = [
    EventKind::Authentication,
    EventKind::Cpu,
    EventKind::Beep,
    EventKind::BeepResult,
    EventKind::GoingAway,
    EventKind::Notify,
    EventKind::NotifyResult,
];

/// The commands (`Route::Command` events), for `deskbridge_commands_total{name,state}`.
const COMMANDS: [EventKind; 2] = [EventKind::Beep, EventKind::Notify];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    name: &'static str,
    state: &'static str,
}

/// All relay metrics, shared by every worker thread.
pub struct Metrics {
    registry: Registry,
    sessions: [Gauge; 3],
    sessions_unauthenticated: Gauge,
    client_ids: Gauge,
    connections: Counter,
    messages_received: [Counter; EVENTS.len()],
    messages_relayed: [Counter; EVENTS.len()],
    /// Indexed by `ErrorCode as usize` (`ErrorCode::ALL` is in declaration order; tested).
    errors: [Counter; ErrorCode::ALL.len()],
    messages_dropped: [Counter; 2],
    limited: [Counter; 9],
    auth_failures: Counter,
    signins: [Counter; 3],
    /// Commands by name and final state (`done`, `failed`, `expired`), indexed like `COMMANDS`.
    commands: [[Counter; 3]; COMMANDS.len()],
    commands_waiting: Gauge,
    desktops_by_interval: [Gauge; 3],
    audience_changes: Counter,
    heartbeat_pings: Counter,
    client_pings: Counter,
    heartbeat_pongs: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("deskbridge");

        let sessions_family = Family::<ModeLabel, Gauge>::default();
        registry.register(
            "sessions",
            "Authenticated WebSocket sessions by client mode",
            sessions_family.clone(),
        );
        let sessions = [ClientMode::Desktop, ClientMode::Web, ClientMode::Fleet].map(|m| {
            sessions_family
                .get_or_create(&ModeLabel { mode: m.as_str() })
                .clone()
        });

        let sessions_unauthenticated = Gauge::default();
        registry.register(
            "sessions_unauthenticated",
            "Open WebSocket connections that have not authenticated yet",
            sessions_unauthenticated.clone(),
        );
        let client_ids = Gauge::default();
        registry.register(
            "client_ids",
            "Client ids with at least one session",
            client_ids.clone(),
        );
        let connections = Counter::default();
        registry.register(
            "connections",
            "WebSocket connections accepted",
            connections.clone(),
        );

        let received_family = Family::<EventLabel, Counter>::default();
        registry.register(
            "messages_received",
            "Valid messages received from clients, by event",
            received_family.clone(),
        );
        let delivered_family = Family::<EventLabel, Counter>::default();
        registry.register(
            "messages_relayed",
            "Messages queued to a receiving client, by event (one per receiver)",
            delivered_family.clone(),
        );
        let by_event = |family: &Family<EventLabel, Counter>| {
            EVENTS.map(|e| {
                family
                    .get_or_create(&EventLabel { event: e.name() })
                    .clone()
            })
        };
        let messages_received = by_event(&received_family);
        let messages_relayed = by_event(&delivered_family);

        let errors_family = Family::<CodeLabel, Counter>::default();
        registry.register(
            "errors",
            "Error events sent to clients, by code",
            errors_family.clone(),
        );
        let errors = ErrorCode::ALL.map(|c| {
            errors_family
                .get_or_create(&CodeLabel { code: c.as_str() })
                .clone()
        });

        let dropped_family = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "messages_dropped",
            "Messages not queued to a client because its send queue was full",
            dropped_family.clone(),
        );
        let messages_dropped = ["queue_full", "stuck_client"].map(|reason| {
            dropped_family
                .get_or_create(&ReasonLabel { reason })
                .clone()
        });

        let limited_family = Family::<LimitLabel, Counter>::default();
        registry.register(
            "limited",
            "Connections or messages refused by an abuse limit, by limit",
            limited_family.clone(),
        );
        let limited = Limit::ALL.map(|l| {
            limited_family
                .get_or_create(&LimitLabel { limit: l.label() })
                .clone()
        });
        let auth_failures = Counter::default();
        registry.register(
            "auth_failures",
            "Authentication attempts refused (bad, expired, revoked or missing tokens)",
            auth_failures.clone(),
        );

        let signins_family = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "signins",
            "Sign-in attempts (POST /api/login), by outcome",
            signins_family.clone(),
        );
        let signins = ["ok", "bad_credentials", "limited"].map(|outcome| {
            signins_family
                .get_or_create(&OutcomeLabel { outcome })
                .clone()
        });
        let by_interval_family = Family::<ClassLabel, Gauge>::default();
        registry.register(
            "desktops_by_interval",
            "Desktops on this node by the reporting interval asked of them (who watches them)",
            by_interval_family.clone(),
        );
        let desktops_by_interval = IntervalClass::ALL.map(|c| {
            by_interval_family
                .get_or_create(&ClassLabel { class: c.label() })
                .clone()
        });
        let audience_changes = Counter::default();
        registry.register(
            "audience_changes",
            "audience frames sent to desktops (on join and on every change of who watches)",
            audience_changes.clone(),
        );
        let heartbeat_pings = Counter::default();
        registry.register(
            "heartbeat_pings",
            "WebSocket pings the relay sent to sessions it had not heard from for their probe interval",
            heartbeat_pings.clone(),
        );
        let heartbeat_pongs = Counter::default();
        registry.register(
            "heartbeat_pongs",
            "Unsolicited WebSocket pongs (a one-way heartbeat) the relay sent desktops it had told nothing for a third of their timeout",
            heartbeat_pongs.clone(),
        );
        let client_pings = Counter::default();
        registry.register(
            "client_pings",
            "WebSocket pings clients sent the relay (each answered with a pong)",
            client_pings.clone(),
        );

        let commands_family = Family::<CommandLabel, Counter>::default();
        registry.register(
            "commands",
            "Commands viewers sent that ended, by name and final state (done, failed, expired)",
            commands_family.clone(),
        );
        let commands = COMMANDS.map(|kind| {
            [
                CommandState::Done,
                CommandState::Failed,
                CommandState::Expired,
            ]
            .map(|state| {
                commands_family
                    .get_or_create(&CommandLabel {
                        name: kind.name(),
                        state: state.as_str(),
                    })
                    .clone()
            })
        });
        let commands_waiting = Gauge::default();
        registry.register(
            "commands_waiting",
            "Commands waiting for an offline desktop to come back (wait_ms)",
            commands_waiting.clone(),
        );

        Self {
            registry,
            commands,
            commands_waiting,
            desktops_by_interval,
            audience_changes,
            heartbeat_pings,
            client_pings,
            heartbeat_pongs,
            limited,
            auth_failures,
            signins,
            sessions,
            sessions_unauthenticated,
            client_ids,
            connections,
            messages_received,
            messages_relayed,
            errors,
            messages_dropped,
        }
    }

    /// The registry, for callers that add metrics of their own (limits, cluster state).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Renders everything in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    // One accessor per metric, named after it, returning the metric itself: count with `.inc()`,
    // read with `.get()`. The labelled ones take their label and are pre-resolved (no map lookup).

    /// `deskbridge_sessions{mode}`.
    pub fn sessions(&self, mode: ClientMode) -> &Gauge {
        &self.sessions[mode_index(mode)]
    }

    /// `deskbridge_sessions_unauthenticated`.
    pub fn sessions_unauthenticated(&self) -> &Gauge {
        &self.sessions_unauthenticated
    }

    /// `deskbridge_client_ids`.
    pub fn client_ids(&self) -> &Gauge {
        &self.client_ids
    }

    /// `deskbridge_connections_total`.
    pub fn connections(&self) -> &Counter {
        &self.connections
    }

    /// `deskbridge_messages_received_total{event}`.
    pub fn messages_received(&self, kind: EventKind) -> &Counter {
        &self.messages_received[kind as usize]
    }

    /// `deskbridge_messages_relayed_total{event}`: one per receiver.
    pub fn messages_relayed(&self, kind: EventKind) -> &Counter {
        &self.messages_relayed[kind as usize]
    }

    /// `deskbridge_errors_total{code}`.
    pub fn errors(&self, code: ErrorCode) -> &Counter {
        &self.errors[code as usize]
    }

    /// `deskbridge_messages_dropped_total{reason}`.
    pub fn messages_dropped(&self, reason: DropReason) -> &Counter {
        &self.messages_dropped[reason as usize]
    }

    /// `deskbridge_limited_total{limit}`.
    pub fn limited(&self, limit: Limit) -> &Counter {
        &self.limited[limit as usize]
    }

    /// `deskbridge_auth_failures_total`.
    pub fn auth_failures(&self) -> &Counter {
        &self.auth_failures
    }

    /// `deskbridge_commands_total{name,state}`, for a command that ended in `state`; `None`
    /// for a state that is not final or an event that is not a command.
    pub fn commands(&self, kind: EventKind, state: CommandState) -> Option<&Counter> {
        let row = COMMANDS.iter().position(|k| *k == kind)?;
        let column = match state {
            CommandState::Done => 0,
            CommandState::Failed => 1,
            CommandState::Expired => 2,
            CommandState::Requested | CommandState::Delivered => return None,
        };
        Some(&self.commands[row][column])
    }

    /// `deskbridge_commands_waiting`.
    pub fn commands_waiting(&self) -> &Gauge {
        &self.commands_waiting
    }

    /// `deskbridge_signins_total{outcome}`.
    pub fn signins(&self, outcome: SignInOutcome) -> &Counter {
        &self.signins[outcome as usize]
    }

    /// `deskbridge_desktops_by_interval{class}`.
    pub fn desktops_by_interval(&self, class: IntervalClass) -> &Gauge {
        &self.desktops_by_interval[class as usize]
    }

    /// `deskbridge_audience_changes_total`.
    pub fn audience_changes(&self) -> &Counter {
        &self.audience_changes
    }

    /// `deskbridge_heartbeat_pings_total`.
    pub fn heartbeat_pings(&self) -> &Counter {
        &self.heartbeat_pings
    }

    /// `deskbridge_heartbeat_pongs_total`.
    pub fn heartbeat_pongs(&self) -> &Counter {
        &self.heartbeat_pongs
    }

    /// `deskbridge_client_pings_total`.
    pub fn client_pings(&self) -> &Counter {
        &self.client_pings
    }
}

fn mode_index(mode: ClientMode) -> usize {
    match mode {
        ClientMode::Desktop => 0,
        ClientMode::Web => 1,
        ClientMode::Fleet => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_its_own_counter() {
        // `errors` is indexed by `ErrorCode as usize`: ALL must list the codes in order.
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(*code as usize, i, "{code}");
        }
        let m = Metrics::new();
        m.errors(ErrorCode::Timeout).inc();
        assert!(m
            .render()
            .contains(r#"deskbridge_errors_total{code="timeout"} 1"#));
        assert_eq!(m.errors(ErrorCode::BadMessage).get(), 0);
    }

    #[test]
    fn every_event_and_command_has_its_counters() {
        for (i, kind) in EVENTS.iter().enumerate() {
            assert_eq!(*kind as usize, i, "{}", kind.name());
        }
        let m = Metrics::new();
        m.messages_received(EventKind::NotifyResult).inc();
        m.commands(EventKind::Notify, CommandState::Expired)
            .unwrap()
            .inc();
        assert!(m.commands(EventKind::Cpu, CommandState::Done).is_none());
        assert!(m
            .commands(EventKind::Beep, CommandState::Delivered)
            .is_none());
        let text = m.render();
        assert!(text.contains(r#"deskbridge_commands_total{name="notify",state="expired"} 1"#));
        assert!(text.contains(r#"deskbridge_commands_total{name="beep",state="done"} 0"#));
        assert!(text.contains("deskbridge_commands_waiting 0"));
    }

    #[test]
    fn renders_counters_with_labels_and_zeroes() {
        let m = Metrics::new();
        m.sessions(ClientMode::Web).inc();
        m.messages_received(EventKind::Cpu).inc();
        m.messages_relayed(EventKind::Cpu).inc_by(3);
        m.errors(ErrorCode::PeerOffline).inc();
        m.messages_dropped(DropReason::QueueFull).inc();
        m.desktops_by_interval(IntervalClass::Idle).inc();
        m.audience_changes().inc();
        let text = m.render();
        for line in [
            r#"deskbridge_sessions{mode="web"} 1"#,
            r#"deskbridge_sessions{mode="desktop"} 0"#,
            r#"deskbridge_messages_relayed_total{event="cpu"} 3"#,
            r#"deskbridge_errors_total{code="peer_offline"} 1"#,
            r#"deskbridge_errors_total{code="too_large"} 0"#,
            r#"deskbridge_messages_dropped_total{reason="queue_full"} 1"#,
            r#"deskbridge_desktops_by_interval{class="idle"} 1"#,
            r#"deskbridge_desktops_by_interval{class="detail"} 0"#,
            r#"deskbridge_audience_changes_total 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
