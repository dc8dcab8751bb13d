//! What happens to a command for a desktop, decided once: queued to the desktop, refused because
//! its queue is full, or not deliverable because it is not here. The session (for its own node
//! and for the answer of another node) and the cluster link (answering another node) both use
//! it, so the three outcomes and the error texts a viewer sees are written only here.

use bytestring::ByteString;
use deskbridge_protocol::{ErrorCode, EventKind};

use super::{Outbound, Outbox, SendError};
use crate::metrics::{Limit, Metrics};

/// How a command for a desktop ended, wherever the desktop was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Queued to the desktop.
    Delivered,
    /// The desktop's queue is full: it is not keeping up.
    Busy,
    /// Too many commands per second for that desktop (its node refused it).
    Limited,
    /// No desktop (here, or on any node when the cluster answered).
    Offline,
    /// In cluster mode: NATS is unreachable or did not answer in time.
    Unreachable,
}

impl CommandOutcome {
    /// The outcome's name, as the audit log records it.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandOutcome::Delivered => "delivered",
            CommandOutcome::Busy => "busy",
            CommandOutcome::Limited => "limited",
            CommandOutcome::Offline => "offline",
            CommandOutcome::Unreachable => "unreachable",
        }
    }

    /// The `error` event a viewer gets for this outcome, if any: `(code, message)`.
    /// `commands_per_second` is the per-desktop budget, for the `rate_limited` text.
    pub fn rejection(
        self,
        kind: EventKind,
        commands_per_second: u32,
    ) -> Option<(ErrorCode, String)> {
        let name = kind.name();
        let (code, message) = match self {
            CommandOutcome::Delivered => return None,
            CommandOutcome::Busy => (
                ErrorCode::PeerBusy,
                format!("the desktop is not keeping up; {name} not delivered, try again"),
            ),
            CommandOutcome::Limited => (
                ErrorCode::RateLimited,
                format!(
                    "at most {commands_per_second} commands per second reach one desktop; {name} not delivered"
                ),
            ),
            CommandOutcome::Offline => (
                ErrorCode::PeerOffline,
                format!("the desktop is offline; {name} not delivered"),
            ),
            CommandOutcome::Unreachable => (
                ErrorCode::PeerOffline,
                format!(
                    "the desktop is not reachable from this relay node right now; {name} not delivered"
                ),
            ),
        };
        Some((code, message))
    }

    /// Counts this outcome where the relay's metrics count it: a delivery as a relayed message,
    /// a refusal by the command budget as a limit hit.
    pub fn count(self, kind: EventKind, metrics: &Metrics) {
        match self {
            CommandOutcome::Delivered => {
                metrics.messages_relayed(kind).inc();
            }
            CommandOutcome::Limited => {
                metrics.limited(Limit::CommandRate).inc();
            }
            _ => {}
        }
    }
}

/// Queues the command `text` to `desktop`, the desktop session's outbox on this node if known.
/// `Offline` means "not here": the caller decides whether to look further (the matchmaker, the
/// cluster). Counts a delivery; a refusal is the caller's to report.
pub fn deliver_command(
    desktop: Option<&Outbox>,
    kind: EventKind,
    text: &ByteString,
    metrics: &Metrics,
) -> CommandOutcome {
    let outcome = match desktop.map(|d| d.send(Outbound::Text(text.clone()))) {
        Some(Ok(())) => CommandOutcome::Delivered,
        Some(Err(SendError::Full(_))) => CommandOutcome::Busy,
        None | Some(Err(SendError::Closed)) => CommandOutcome::Offline,
    };
    if outcome == CommandOutcome::Delivered {
        outcome.count(kind, metrics);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEEP: &str = r#"{"event":"beep"}"#;

    #[test]
    fn a_command_is_delivered_busy_or_offline() {
        let metrics = Metrics::new();
        let text = ByteString::from_static(BEEP);
        let (desktop, rx) = Outbox::new(1, 4, 4);
        for _ in 0..4 {
            assert_eq!(
                deliver_command(Some(&desktop), EventKind::Beep, &text, &metrics),
                CommandOutcome::Delivered
            );
        }
        assert_eq!(
            deliver_command(Some(&desktop), EventKind::Beep, &text, &metrics),
            CommandOutcome::Busy
        );
        drop(rx);
        assert_eq!(
            deliver_command(Some(&desktop), EventKind::Beep, &text, &metrics),
            CommandOutcome::Offline
        );
        assert_eq!(
            deliver_command(None, EventKind::Beep, &text, &metrics),
            CommandOutcome::Offline
        );
    }

    #[test]
    fn each_refusal_names_its_code_and_the_command() {
        let cases = [
            (CommandOutcome::Busy, ErrorCode::PeerBusy),
            (CommandOutcome::Limited, ErrorCode::RateLimited),
            (CommandOutcome::Offline, ErrorCode::PeerOffline),
            (CommandOutcome::Unreachable, ErrorCode::PeerOffline),
        ];
        for (outcome, code) in cases {
            let (got, message) = outcome
                .rejection(EventKind::Beep, 5)
                .expect("a refusal has an error");
            assert_eq!(got, code);
            assert!(message.contains("beep not delivered"), "{message}");
        }
        assert!(CommandOutcome::Limited
            .rejection(EventKind::Beep, 5)
            .is_some_and(|(_, m)| m.starts_with("at most 5 commands")));
        assert_eq!(
            CommandOutcome::Delivered.rejection(EventKind::Beep, 5),
            None
        );
    }
}
